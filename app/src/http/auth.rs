//! Who may call what: bearer tokens, off unless configured (docs/api.md, "Who may do what").
//!
//! [`access`] is the one table of which route needs which token; the middleware [`guard`] applies
//! it and the OpenAPI document's security requirements are derived from it (`http::openapi`).
//! Tokens are kept as SHA-256 digests and compared in constant time; they are never logged.
use axum::{
    extract::{MatchedPath, Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use perfstack_contract::probes;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::config::AuthConfig;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Anyone: probes, `/metrics` for scrapers, the OpenAPI document.
    Open,
    /// The API token or the admin token.
    User,
    /// The admin token: deletes, jobs, the outbox and the dashboard.
    Admin,
}

/// Name of the OpenAPI security scheme of [`Access::User`] routes.
pub const USER_SCHEME: &str = "apiToken";
/// Name of the OpenAPI security scheme of [`Access::Admin`] routes.
pub const ADMIN_SCHEME: &str = "adminToken";

/// The access `method` on the route template `route` needs (unknown routes: a token).
pub fn access(method: &Method, route: &str) -> Access {
    const OPEN: [&str; 5] = [
        probes::LIVEZ,
        probes::READYZ,
        probes::HEALTH,
        probes::METRICS,
        "/openapi.json",
    ];
    const ADMIN_PREFIXES: [&str; 4] = [
        "/api/v1/jobs",
        "/api/v1/outbox",
        "/api/v1/performance/dashboard",
        "/dashboard",
    ];
    if OPEN.contains(&route) {
        Access::Open
    } else if method == Method::DELETE || ADMIN_PREFIXES.iter().any(|p| route.starts_with(p)) {
        Access::Admin
    } else {
        Access::User
    }
}

type TokenDigest = [u8; 32];

/// The configured tokens, as digests. Without any, nobody is asked.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    user: Option<TokenDigest>,
    admin: Option<TokenDigest>,
}

impl Tokens {
    pub fn from_config(cfg: &AuthConfig) -> Self {
        let digest = |token: &secrecy::SecretString| digest(token.expose_secret().as_bytes());
        Self {
            user: cfg.api_token.as_ref().map(digest),
            admin: cfg.admin_token.as_ref().map(digest),
        }
    }

    /// Whether any token is configured (otherwise every route is open).
    pub fn enabled(&self) -> bool {
        self.user.is_some() || self.admin.is_some()
    }

    /// What a presented token grants: `Admin`, `User`, or `None` when it is no token of ours.
    fn grant(&self, presented: &[u8]) -> Option<Access> {
        let presented = digest(presented);
        // Both comparisons always run, so timing tells nothing about which token matched.
        let admin = self.admin.is_some_and(|d| same(&d, &presented));
        let user = self.user.is_some_and(|d| same(&d, &presented));
        match (admin, user) {
            (true, _) => Some(Access::Admin),
            (false, true) => Some(Access::User),
            (false, false) => None,
        }
    }

    /// Checks the `Authorization` header of a request needing `needed`.
    pub fn check(&self, needed: Access, authorization: Option<&str>) -> Result<(), ApiError> {
        if !self.enabled() || needed == Access::Open {
            return Ok(());
        }
        let presented = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        match self.grant(presented.as_bytes()) {
            None => Err(ApiError::Unauthenticated),
            Some(granted) if granted < needed => Err(ApiError::Forbidden),
            Some(_) => Ok(()),
        }
    }
}

fn digest(bytes: &[u8]) -> TokenDigest {
    Sha256::digest(bytes).into()
}

/// Constant-time equality of two digests.
fn same(a: &TokenDigest, b: &TokenDigest) -> bool {
    a.iter().zip(b).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// A short, stable name of the caller's token for rate limits (never the token itself).
pub fn caller_of_token(authorization: &str) -> String {
    digest(authorization.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `axum::middleware::from_fn_with_state(tokens, guard)`: 401/403 before the handler runs.
pub async fn guard(State(tokens): State<std::sync::Arc<Tokens>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path(), MatchedPath::as_str);
    let needed = access(request.method(), route);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match tokens.check(needed, authorization) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn tokens() -> Tokens {
        Tokens::from_config(&AuthConfig {
            api_token: Some(SecretString::from("user-token")),
            admin_token: Some(SecretString::from("admin-token")),
        })
    }

    #[test]
    fn routes_need_what_the_table_says() {
        assert_eq!(access(&Method::GET, "/metrics"), Access::Open);
        assert_eq!(access(&Method::GET, "/api/v1/users/{id}"), Access::User);
        assert_eq!(access(&Method::DELETE, "/api/v1/users/{id}"), Access::Admin);
        assert_eq!(access(&Method::POST, "/api/v1/jobs/{id}/retry"), Access::Admin);
        assert_eq!(access(&Method::GET, "/dashboard"), Access::Admin);
        assert_eq!(access(&Method::POST, "/api/v1/reports"), Access::User);
    }

    #[test]
    fn tokens_grant_their_level_and_no_more() {
        let t = tokens();
        assert!(t.check(Access::User, Some("Bearer user-token")).is_ok());
        assert!(t.check(Access::Admin, Some("Bearer admin-token")).is_ok());
        assert!(t.check(Access::User, Some("Bearer admin-token")).is_ok());
        assert!(matches!(
            t.check(Access::Admin, Some("Bearer user-token")),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            t.check(Access::User, Some("Bearer nope")),
            Err(ApiError::Unauthenticated)
        ));
        assert!(matches!(
            t.check(Access::User, None),
            Err(ApiError::Unauthenticated)
        ));
        assert!(t.check(Access::Open, None).is_ok());
        assert!(Tokens::default().check(Access::Admin, None).is_ok());
    }
}
