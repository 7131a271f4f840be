//! The one error type handlers return; every 4xx/5xx body is `application/problem+json` (RFC 9457).
use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// A problem body: `type`, `title`, `status`, `detail`, and the offending `field` when there is one.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

/// Builds a problem response; used by [`ApiError`] and by the rejection handlers.
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
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Database(err) = &self {
            tracing::error!(error = %err, "database error");
            return problem(status, "the request could not be completed", None);
        }
        let field = match &self {
            Self::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        problem(status, self.to_string(), field)
    }
}
