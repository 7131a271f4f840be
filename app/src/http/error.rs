//! The one error type handlers return; every 4xx/5xx body is `application/problem+json` (RFC 9457).
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem body: `type`, `title`, `status`, `detail`, and the offending `field` when there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem class.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the class (the HTTP reason phrase).
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request field (camelCase body field, path or query parameter) at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A well-formed request whose content breaks a rule (422).
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    /// A value PostgreSQL refused as data (SQLSTATE class 22) that no field could be named for (422).
    #[error("a value is out of range or malformed")]
    DataException(#[source] sqlx::Error),
    /// A request that could not be understood (400): malformed JSON, bad query or path.
    #[error("{message}")]
    BadRequest { field: Option<String>, message: String },
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    #[error("request body is larger than the server accepts")]
    PayloadTooLarge,
    #[error("expected a request body with content type application/json")]
    UnsupportedMediaType,
    /// No or an unknown bearer token (401).
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// A valid token without the right to this route (403).
    #[error("this route needs the admin token")]
    Forbidden,
    /// The caller asked too often (429).
    #[error("too many requests; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// The database is busy (pool exhausted or its wait queue full) or gone, or a statement ran
    /// past its limit: 503 with `Retry-After`.
    #[error("the database is busy or unreachable; retry shortly")]
    Unavailable(#[source] sqlx::Error),
    /// A limit of this process turned the request away before it did any work: 503 + `Retry-After`.
    #[error("{message}")]
    Overloaded { reason: &'static str, message: String },
    /// The job queue (Redis) is not configured or does not answer: 503 + `Retry-After`.
    #[error("background jobs are not available right now")]
    QueueUnavailable,
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("could not encode the response")]
    Encode(#[source] serde_json::Error),
}

/// Why a request was turned away, as the response carries it to the metrics middleware
/// (`perfstack_http_rejections_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection(pub &'static str);

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_S: &str = "1";

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(field: Option<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field,
            message: message.into(),
        }
    }

    pub fn conflict(field: Option<&str>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    pub fn overloaded(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Overloaded {
            reason,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Validation { .. } | Self::DataException(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded { .. } | Self::QueueUnavailable | Self::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Database(_) | Self::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::Validation { field, .. } => Some(field.clone()),
            Self::BadRequest { field, .. } | Self::Conflict { field, .. } => field.clone(),
            _ => None,
        }
    }

    /// The reason label of a request turned away by a limit or a missing dependency; `None` for
    /// answers about the request itself.
    fn rejection(&self) -> Option<&'static str> {
        Some(match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(err) => unavailable_reason(err),
            Self::Overloaded { reason, .. } => reason,
            Self::QueueUnavailable => "queue_unavailable",
            Self::NotReady(_) => "not_ready",
            _ => return None,
        })
    }
}

/// Which limit or outage a 503 of the database came from.
fn unavailable_reason(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::PoolTimedOut => "database_busy",
        _ => match err.as_database_error().and_then(|e| e.code()).as_deref() {
            Some("57014") => "statement_timeout",
            Some("55P03") => "lock_timeout",
            _ => "database_unavailable",
        },
    }
}

/// Whether `err` says the database is busy, gone or past a time limit (a 503 worth retrying)
/// rather than that this request or the code is wrong.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db_err) => db_err.code().is_some_and(|code| {
            // connection exception, insufficient resources, operator intervention (shutdown,
            // statement_timeout), lock_not_available (lock_timeout), serialization failure and
            // deadlock, idle_in_transaction_session_timeout
            code.get(..2)
                .is_some_and(|class| matches!(class, "08" | "53" | "57"))
                || matches!(code.as_ref(), "55P03" | "40001" | "40P01" | "25P03")
        }),
        _ => false,
    }
}

/// What a violated constraint means to a client: the field it concerns and why.
fn constraint_problem(constraint: &str) -> Option<ApiError> {
    let problem = match constraint {
        "users_email_key" => ApiError::conflict(Some("email"), "a user with this email already exists"),
        "users_username_key" => {
            ApiError::conflict(Some("username"), "a user with this username already exists")
        }
        // A reference to a row that does not exist (now): the request is well-formed, the state is
        // not what it assumes.
        "projects_owner_id_fkey" => ApiError::conflict(Some("ownerId"), "no user has this id"),
        "tasks_project_id_fkey" => ApiError::conflict(Some("projectId"), "no project has this id"),
        "tasks_assignee_id_fkey" => ApiError::conflict(Some("assigneeId"), "no user has this id"),
        "users_role_check" => ApiError::validation("role", "not a known role"),
        "users_status_check" | "projects_status_check" | "tasks_status_check" => {
            ApiError::validation("status", "not a known status")
        }
        "tasks_priority_check" => ApiError::validation("priority", "must be between 0 and 4"),
        _ => return None,
    };
    Some(problem)
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            return Self::Unavailable(err);
        }
        let Some(db_err) = err.as_database_error() else {
            return Self::Database(err);
        };
        if let Some(problem) = db_err.constraint().and_then(constraint_problem) {
            return problem;
        }
        match db_err.code() {
            // data exception: a value PostgreSQL cannot take (NUL in text, out of range, ...)
            Some(code) if code.starts_with("22") => Self::DataException(err),
            _ => Self::Database(err),
        }
    }
}

/// Builds a problem response; used by [`ApiError`] and by the fallbacks.
pub fn problem(status: StatusCode, detail: impl Into<String>, field: Option<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error").to_owned();
    let body = Problem {
        kind: format!("https://perfstack.dev/problems/{}", status.as_u16()),
        title,
        status: status.as_u16(),
        detail: detail.into(),
        field,
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match &self {
            Self::Database(err) => {
                tracing::error!(error = %err, "database error");
                problem(status, "the request could not be completed", None)
            }
            Self::Encode(err) => {
                tracing::error!(error = %err, "response encoding failed");
                problem(status, "the response could not be encoded", None)
            }
            Self::DataException(err) => {
                tracing::info!(error = %err, "PostgreSQL refused a value");
                problem(status, self.to_string(), None)
            }
            Self::Unavailable(err) => {
                tracing::warn!(error = %err, "database unavailable");
                problem(status, self.to_string(), None)
            }
            _ => problem(status, self.to_string(), self.field()),
        };
        let headers = response.headers_mut();
        match &self {
            Self::RateLimited { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            Self::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
            }
            _ => {}
        }
        if let Some(reason) = self.rejection() {
            response.extensions_mut().insert(Rejection(reason));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_is_a_retryable_503() {
        let gone = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        for err in [gone, sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let response = ApiError::from(err).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_S);
            assert!(response.extensions().get::<Rejection>().is_some());
        }
        let response = ApiError::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
