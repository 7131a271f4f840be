//! External services `/health` reports on: endpoints declared with `--health-external` (a TCP
//! connect) and the SMTP server the email jobs send through (connect and greeting). Unlike the
//! dependencies (database, Redis), an outage here makes the report `degraded` and never the API
//! unready: requests are served without them, and the jobs retry.
use std::time::Duration;

use crate::{config::ExternalEndpoint, jobs::mailer::Mailer};

/// Name of the SMTP server in the report.
pub const SMTP: &str = "smtp";

/// One external service and how it is checked.
#[derive(Clone)]
pub enum ExternalService {
    /// Up when a TCP connection opens.
    Tcp(ExternalEndpoint),
    /// Up when the SMTP server greets (an outbox-only mailer is not listed).
    Smtp(Mailer),
}

impl ExternalService {
    /// How the report names it.
    pub fn name(&self) -> &str {
        match self {
            Self::Tcp(endpoint) => &endpoint.name,
            Self::Smtp(_) => SMTP,
        }
    }

    /// Whether it answered within `timeout`.
    pub async fn is_up(&self, timeout: Duration) -> bool {
        match self {
            Self::Tcp(endpoint) => {
                let connect = tokio::net::TcpStream::connect(endpoint.addr.as_str());
                matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_)))
            }
            Self::Smtp(mailer) => mailer.reachable(timeout).await.unwrap_or(false),
        }
    }
}

/// Checks every service at once: `(name, up)` in the order given.
pub async fn check(services: &[ExternalService], timeout: Duration) -> Vec<(String, bool)> {
    let checks = services
        .iter()
        .map(|service| async move { (service.name().to_owned(), service.is_up(timeout).await) });
    futures::future::join_all(checks).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_endpoint_is_up_and_a_closed_one_down() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().to_string();
        let closed = {
            let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            spare.local_addr().unwrap().to_string()
        };
        let services = [
            ExternalService::Tcp(format!("open={open}").parse().unwrap()),
            ExternalService::Tcp(format!("closed={closed}").parse().unwrap()),
        ];
        let found = check(&services, Duration::from_secs(1)).await;
        assert_eq!(
            found,
            vec![("open".to_owned(), true), ("closed".to_owned(), false)]
        );
    }
}
