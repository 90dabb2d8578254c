//! How a use case refuses: one error type for the whole API, each variant with its stable
//! `code` (`http::error` turns it into a status and a [`schemas::ErrorBody`]). Internal details
//! (store messages, paths) are logged with the request id, never sent.

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
    Refused { status: u16, code: &'static str, message: String, details: Option<serde_json::Value> },
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

    /// The HTTP status and the stable code.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (400, code),
            ApiError::Unprocessable { code, .. } => (422, code),
            ApiError::Unauthorized { code, .. } => (401, code),
            ApiError::Forbidden { code, .. } => (403, code),
            ApiError::NotFound { .. } => (404, "not_found"),
            ApiError::Conflict { code, .. } => (409, code),
            ApiError::MethodNotAllowed => (405, "method_not_allowed"),
            ApiError::TooLarge { .. } => (413, "body_too_large"),
            ApiError::UnsupportedMediaType { .. } => (415, "unsupported_content_type"),
            ApiError::RateLimited { .. } => (429, "rate_limited"),
            ApiError::StorageFull => (507, "storage_full"),
            ApiError::Unavailable => (503, "unavailable"),
            ApiError::Internal(_) => (500, "internal"),
            ApiError::Refused { status, code, .. } => (*status, code),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Full => ApiError::StorageFull,
            StoreError::Closed => ApiError::Unavailable,
            StoreError::Unsupported(what) => ApiError::Refused {
                status: 501,
                code: "unsupported",
                message: format!("this server's store cannot {what}"),
                details: None,
            },
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

pub type ApiResult<T> = Result<T, ApiError>;
