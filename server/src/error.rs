//! The one error type of the HTTP API.
//!
//! Every failure answers with a status and a [`schemas::ErrorBody`] whose
//! `code` is stable and listed in the OpenAPI description. Internal details
//! (SQLite messages, paths) are logged with the request id, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemas::ErrorBody;

use crate::store::StoreError;

/// What went wrong, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, details: Option<serde_json::Value> },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String, details: Option<serde_json::Value> },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("this path does not take that method")]
    MethodNotAllowed,
    #[error("the request body is larger than the server accepts")]
    TooLarge { limit: usize },
    #[error("unsupported content type {found:?}")]
    UnsupportedMediaType { found: String },
    #[error("too many attempts")]
    RateLimited { retry_after_s: u64 },
    #[error("the disk is full")]
    StorageFull,
    #[error("the server is shutting down")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
    /// A refusal with its own status (409, 413, 429, ...), code and details, for the answers the
    /// variants above do not name.
    #[error("{message}")]
    Refused { status: StatusCode, code: &'static str, message: String, details: Option<serde_json::Value> },
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into(), details: None }
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable { code, message: message.into(), details: None }
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized { code, message: message.into() }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden { code, message: message.into() }
    }

    /// The status and the stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::UnsupportedMediaType { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_content_type"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Refused { status, code, .. } => (*status, code),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Full => ApiError::StorageFull,
            StoreError::Closed => ApiError::Unavailable,
            StoreError::NotFound(_) => ApiError::NotFound { what: "row" },
            StoreError::Conflict(_) => {
                ApiError::Conflict { code: "already_exists", message: "it already exists".into() }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::StorageFull => ApiError::StorageFull,
            _ => ApiError::Internal(format!("file: {error}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let details = match &self {
            ApiError::BadRequest { details, .. }
            | ApiError::Unprocessable { details, .. }
            | ApiError::Refused { details, .. } => details.clone(),
            ApiError::TooLarge { limit } if *limit > 0 => Some(serde_json::json!({ "limit": limit })),
            ApiError::RateLimited { retry_after_s } => Some(serde_json::json!({ "retry_after_s": retry_after_s })),
            _ => None,
        };
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody { code: code.to_string(), message, details };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after_s } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
