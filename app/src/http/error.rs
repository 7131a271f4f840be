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
    /// A request that could not be understood (400): malformed JSON, bad query or path.
    #[error("{message}")]
    BadRequest { field: Option<String>, message: String },
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    #[error("request body is larger than the server accepts")]
    PayloadTooLarge,
    #[error("expected a request body with content type application/json")]
    UnsupportedMediaType,
    #[error("the database is busy; retry shortly")]
    Unavailable(#[source] sqlx::Error),
    #[error("not ready: {0} unreachable")]
    NotReady(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("could not encode the response")]
    Encode(#[source] serde_json::Error),
}

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

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) | Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
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
}

/// What a violated constraint means to a client: the field it concerns and why.
fn constraint_problem(constraint: &str) -> Option<ApiError> {
    let problem = match constraint {
        "users_email_key" => ApiError::conflict(Some("email"), "a user with this email already exists"),
        "users_username_key" => {
            ApiError::conflict(Some("username"), "a user with this username already exists")
        }
        "projects_owner_id_fkey" => ApiError::validation("ownerId", "no user has this id"),
        "tasks_project_id_fkey" => ApiError::validation("projectId", "no project has this id"),
        "tasks_assignee_id_fkey" => ApiError::validation("assigneeId", "no user has this id"),
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
        if matches!(err, sqlx::Error::PoolTimedOut) {
            return Self::Unavailable(err);
        }
        let Some(db_err) = err.as_database_error() else {
            return Self::Database(err);
        };
        if let Some(problem) = db_err.constraint().and_then(constraint_problem) {
            return problem;
        }
        match db_err.code().as_deref() {
            // invalid_text_representation, numeric_value_out_of_range, datetime_field_overflow
            Some("22P02" | "22003" | "22008") => {
                Self::bad_request(None, "a value is out of range or malformed")
            }
            // query_canceled (statement_timeout), too_many_connections
            Some("57014" | "53300") => Self::Unavailable(err),
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
        match &self {
            Self::Database(err) => {
                tracing::error!(error = %err, "database error");
                return problem(status, "the request could not be completed", None);
            }
            Self::Encode(err) => {
                tracing::error!(error = %err, "response encoding failed");
                return problem(status, "the response could not be encoded", None);
            }
            Self::Unavailable(err) => {
                tracing::warn!(error = %err, "database unavailable");
                let mut response = problem(status, self.to_string(), None);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            _ => {}
        }
        problem(status, self.to_string(), self.field())
    }
}
