//! A failed reconcile in the stack's status: what failed, in the API server's words, as the Ready
//! condition (never a Secret's text), so `kubectl get pstack` shows it and not only the log.
use super::context::Context;
use super::error::{Error, ErrorChain, Write};
use super::{status, update_status};
use crate::crd::PerformanceStack;

/// Longest message a failed reconcile puts into the Ready condition.
const FAILURE_MESSAGE_MAX: usize = 1024;

impl Error {
    /// The Ready condition's reason and message for this failure, when the stack's status should show
    /// it (not for a failed status write itself, nor during cleanup). The API server's own words are
    /// included, except for Secrets: a refusal there could quote what the Secret holds.
    pub fn condition(&self) -> Option<(&'static str, String)> {
        let (reason, message) = match self {
            Error::Observe { kind, source, .. } => {
                ("ReadFailed", format!("{self}: {}", api_words(kind, source)))
            }
            Error::Apply {
                write, kind, source, ..
            } => (
                match write {
                    Write::Apply => "ApplyFailed",
                    Write::Delete => "DeleteFailed",
                },
                format!("{self}: {}", api_words(kind, source)),
            ),
            Error::Build { .. } => ("RenderFailed", self.to_string()),
            // Refused writes are in the status the pipeline wrote, with every other child's state.
            Error::Refused(_) | Error::UpdateStatus { .. } | Error::Cleanup { .. } => return None,
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) => return e.condition(),
                _ => return None,
            },
        };
        Some((reason, message.chars().take(FAILURE_MESSAGE_MAX).collect()))
    }
}

/// The Ready condition's reason and message for writes the API server refused while the others
/// went ahead: the first refusal's reason, every refusal's message.
pub(crate) fn refused_verdict(refused: &[Error]) -> Option<(&'static str, String)> {
    let conditions: Vec<(&'static str, String)> = refused.iter().filter_map(Error::condition).collect();
    let (reason, _) = conditions.first()?;
    let messages: Vec<&str> = conditions.iter().map(|(_, m)| m.as_str()).collect();
    Some((
        reason,
        messages.join("; ").chars().take(FAILURE_MESSAGE_MAX).collect(),
    ))
}

/// What the API server said about a request for a `kind`, fit for status.
fn api_words(kind: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if kind == "Secret" => {
            format!("the API server refused it ({} {})", status.code, status.reason)
        }
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        kube::Error::Service(_) | kube::Error::HyperError(_) => "the API server did not answer".into(),
        other if kind == "Secret" => format!("the request failed ({})", error_kind(other)),
        other => other.to_string(),
    }
}

/// The variant of a kube error, without its text.
fn error_kind(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::SerdeError(_) => "unreadable answer",
        kube::Error::Auth(_) => "authentication",
        _ => "client error",
    }
}

/// Writes the failure into the stack's status (best effort: the reconcile fails with `error` either
/// way, and is retried with backoff), so `kubectl get pstack` shows it rather than a stale state.
pub(super) async fn report_failure(ctx: &Context, stack: &PerformanceStack, error: Error) -> Error {
    if let Some((reason, message)) = error.condition() {
        let failed = status::reconcile_failed(stack, reason, message, &status::now());
        if let Err(status_error) = update_status::write(ctx, stack, failed).await {
            tracing::warn!(error = %ErrorChain(&status_error), "could not report the failure in status");
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn the_ready_condition_carries_the_api_servers_words() {
        let error = Error::Apply {
            write: Write::Apply,
            kind: "Service",
            name: "shop-api".into(),
            source: refused(
                403,
                "Forbidden",
                "services \"shop-api\" is forbidden: exceeded quota: q",
            ),
        };
        let (reason, message) = error.condition().unwrap();
        assert_eq!(reason, "ApplyFailed");
        assert_eq!(
            message,
            "applying Service shop-api: services \"shop-api\" is forbidden: exceeded quota: q (403 Forbidden)"
        );
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(error)));
        assert_eq!(wrapped.condition().unwrap().0, "ApplyFailed");
    }

    #[test]
    fn a_refused_secret_is_reported_without_the_servers_text() {
        let error = Error::Apply {
            write: Write::Apply,
            kind: "Secret",
            name: "shop-credentials".into(),
            source: refused(
                422,
                "Invalid",
                "Secret \"shop-credentials\" is invalid: data[password]: s3cr3t-value",
            ),
        };
        let (_, message) = error.condition().unwrap();
        assert!(!message.contains("s3cr3t"), "{message}");
        assert_eq!(
            message,
            "applying Secret shop-credentials: the API server refused it (422 Invalid)"
        );
    }

    #[test]
    fn status_and_cleanup_failures_are_not_written_into_status_and_long_text_is_cut() {
        let status = Error::UpdateStatus {
            source: refused(409, "Conflict", "x"),
        };
        assert!(status.condition().is_none());
        let long = Error::Observe {
            kind: "Pod",
            name: "p".into(),
            source: refused(500, "InternalError", &"x".repeat(5000)),
        };
        assert_eq!(long.condition().unwrap().1.chars().count(), FAILURE_MESSAGE_MAX);
    }
}
