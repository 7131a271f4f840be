//! Why a reconcile failed: one variant per pipeline step that can fail (validate, tune and status
//! cannot: an invalid spec is an outcome reported in status, not a failure), plus cleanup and the
//! finalizer around them. Every one is retried with backoff.
use kube::runtime::finalizer;

/// A write the apply step makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Server-side apply, create, or the owner-reference patch of an adopted Secret.
    Apply,
    /// Deleting a superseded child.
    Delete,
}

impl Write {
    /// The write as a verb in messages: `applying`, `deleting`.
    pub fn as_str(self) -> &'static str {
        match self {
            Write::Apply => "applying",
            Write::Delete => "deleting",
        }
    }
}

/// Everything that can make a reconcile fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Observe: reading a child or a related object failed.
    #[error("reading {kind} {name}")]
    Observe {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Build: a desired child could not be serialized for its digest.
    #[error("rendering {kind} {name}")]
    Build {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// Apply: writing a child failed.
    #[error("{} {kind} {name}", write.as_str())]
    Apply {
        write: Write,
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Apply: the API server refused some writes; every other child was written, and the status
    /// (already written) names each refusal.
    #[error("{}", refusals(.0))]
    Refused(Vec<Error>),
    /// Update status: writing the stack's status failed.
    #[error("updating the stack's status")]
    UpdateStatus {
        #[source]
        source: kube::Error,
    },
    /// Cleanup (the stack is being deleted): a step failed.
    #[error("cleanup: {what}")]
    Cleanup {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    /// Adding or removing the finalizer failed, or the pipeline or cleanup failed inside it.
    #[error("{0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// The observe step's error for a read of `kind` `name` (a name, or a label selector).
    pub fn observing(kind: &'static str, name: &str) -> impl FnOnce(kube::Error) -> Error {
        let name = name.to_owned();
        move |source| Error::Observe { kind, name, source }
    }

    /// Short label for the reconcile error metric (`perfstack_operator_reconcile_errors_total`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Observe { .. } => "read",
            Error::Build { .. } => "serialize",
            Error::Apply {
                write: Write::Apply, ..
            } => "apply",
            Error::Apply {
                write: Write::Delete, ..
            } => "delete",
            Error::Refused(refused) => refused.first().map_or("apply", Error::metric_label),
            Error::UpdateStatus { .. } => "status",
            Error::Cleanup { .. } => "cleanup",
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
        }
    }
}

/// The refused writes, in one line: `2 writes refused: applying Service shop-api: … (403 Forbidden); …`.
fn refusals(refused: &[Error]) -> String {
    let each: Vec<String> = refused
        .iter()
        .map(|e| {
            e.condition()
                .map_or_else(|| ErrorChain(e).to_string(), |(_, m)| m)
        })
        .collect();
    format!("{} writes refused: {}", refused.len(), each.join("; "))
}

/// `result` of a request about an object that may be gone already: `Ok(None)` for a 404, which
/// cleanup and deletions count as done.
pub fn unless_gone<T>(result: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error),
    }
}

/// Displays an error with its sources, for logs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Many errors already print their source; skip a cause the previous message ends with.
        let mut shown = self.0.to_string();
        write!(f, "{shown}")?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let message = cause.to_string();
            if !shown.ends_with(&message) {
                write!(f, ": {message}")?;
            }
            shown = message;
            source = cause.source();
        }
        Ok(())
    }
}
