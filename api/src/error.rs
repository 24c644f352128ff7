use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::Problem;

/// Everything the API refuses, each with its stable code; mapped to HTTP once, here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("forbidden")]
    Forbidden,
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("{0}")]
    TooManyStreams(&'static str),
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<schemas::UnknownValue> for ApiError {
    fn from(e: schemas::UnknownValue) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::Invalid(code, detail) => Problem::invalid(code, detail),
            ApiError::NotFound(what) => Problem::not_found(what),
            ApiError::Forbidden => Problem::forbidden(),
            ApiError::Conflict(code, detail) => Problem::new(StatusCode::CONFLICT, code, detail),
            ApiError::TooManyStreams(detail) => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", detail);
                p.retry_after_secs = Some(5);
                p
            }
            ApiError::Problem(p) => p,
            ApiError::Internal(e) => Problem::internal(&e),
        };
        problem.into_response()
    }
}
