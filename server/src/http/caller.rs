//! The [`Caller`] extractor: the `Authorization: Bearer` token of a request, authenticated by
//! [`authenticate`].
//!
//! The scheme is read case-insensitively (RFC 9110).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use crate::service::ApiError;
use crate::service::auth::{Caller, authenticate};

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing_token", "an Authorization: Bearer token is required"))?;
        // The scheme's name is case-insensitive (RFC 9110, section 11.1): `bearer` is `Bearer`.
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim_start_matches(' '))
            .ok_or_else(|| ApiError::unauthorized("missing_token", "an Authorization: Bearer token is required"))?;
        let changing_password = parts.uri.path() == "/v1/auth/password";
        authenticate(state, token, changing_password).await
    }
}
