//! The answer of a refused request: the status and the [`schemas::ErrorBody`] of an
//! [`ApiError`], with `Retry-After` when it is a rate limit.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemas::ErrorBody;

use crate::service::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
