//! What crosses the wire to devices, smaller: content codings both ways and validators.
//!
//! - **Answers** of the device routes are compressed when the request's `Accept-Encoding`
//!   names zstd or gzip ([`compression`]: tower-http's layer, at zstd's default level 3 and
//!   gzip's 6; bodies under 32 bytes, images, event streams and evidence packages are sent as
//!   they are, so stored photos are never compressed again).
//! - **Requests** to `POST /v1/sync` and `POST /v1/log/entries` may come with
//!   `Content-Encoding: zstd` or `gzip` ([`decode_request`]). The compressed body is bounded
//!   like any body (`http::bodies`), and its decompressed form by the route's own limit: a body
//!   that inflates past it is refused 413 `body_too_large`, a body that does not decode 400
//!   `invalid_content_encoding`, any other coding 415 `unsupported_content_encoding` with the
//!   codings the server takes in `Accept-Encoding` (RFC 7694), so that a device sends the body
//!   again as it is.
//! - **Validators**: a task list or a team answers with a strong `ETag` (the first 16 bytes of
//!   the SHA-256 of its body, in hex); a request whose `If-None-Match` names it is answered
//!   304 with no body ([`validators`]), so a sync with nothing new spends no bytes on them.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use crate::http::AppState;
use crate::http::bodies::body_limit;
use crate::service::ApiError;

/// The request codings [`decode_request`] takes, as `Accept-Encoding` says them.
pub const REQUEST_CODINGS: &str = "zstd, gzip";

/// Compresses the answers of the routes it wraps, for the codings the client accepts; evidence
/// packages (tar files of photos) go as they are.
pub fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .zstd(true)
        .gzip(true)
        .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/x-tar")))
}

/// Decompresses a request body sent with `Content-Encoding: zstd` or `gzip`, within the
/// route's body limit; a body with no coding (or `identity`) goes through untouched.
pub async fn decode_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let coding = match request.headers().get(header::CONTENT_ENCODING).map(HeaderValue::to_str) {
        None => return next.run(request).await,
        Some(Ok(coding)) => coding.trim().to_ascii_lowercase(),
        Some(Err(_)) => String::from("?"),
    };
    if coding == "identity" {
        return next.run(request).await;
    }
    if coding != "zstd" && coding != "gzip" {
        let mut response = ApiError::Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE.as_u16(),
            code: "unsupported_content_encoding",
            message: format!("the server takes request bodies in {REQUEST_CODINGS} or as they are"),
            details: Some(serde_json::json!({ "supported": ["zstd", "gzip", "identity"] })),
        }
        .into_response();
        response.headers_mut().insert(header::ACCEPT_ENCODING, HeaderValue::from_static(REQUEST_CODINGS));
        return response;
    }
    let limit = body_limit(&state.config, request.method(), request.uri().path());
    let (mut parts, body) = request.into_parts();
    let compressed = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        // The body guard answers its own failures (size, time, memory) whatever is returned here.
        Err(error) => return ApiError::bad_request("unreadable_body", error.to_string()).into_response(),
    };
    let decoded = match coding.as_str() {
        "zstd" => zstd::stream::read::Decoder::new(&compressed[..]).map(|d| inflate(d, limit)),
        _ => Ok(inflate(flate2::read::GzDecoder::new(&compressed[..]), limit)),
    };
    let body = match decoded {
        Ok(Ok(body)) => body,
        Ok(Err(Inflated::TooLarge)) => return ApiError::TooLarge { limit }.into_response(),
        Ok(Err(Inflated::Invalid(detail))) | Err(detail) => {
            return ApiError::bad_request(
                "invalid_content_encoding",
                format!("the {coding} body does not decode: {detail}"),
            )
            .into_response();
        }
    };
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Why a coded body could not be read.
enum Inflated {
    TooLarge,
    Invalid(std::io::Error),
}

impl From<std::io::Error> for Inflated {
    fn from(error: std::io::Error) -> Self {
        Inflated::Invalid(error)
    }
}

/// Reads `decoder` to its end, refusing more than `limit` bytes without reading them all.
fn inflate(decoder: impl Read, limit: usize) -> Result<Vec<u8>, Inflated> {
    let mut body = Vec::new();
    decoder.take(limit as u64 + 1).read_to_end(&mut body)?;
    if body.len() > limit {
        return Err(Inflated::TooLarge);
    }
    Ok(body)
}

/// Answers a successful `GET` with a strong `ETag` over its body, and 304 with no body when the
/// request's `If-None-Match` names it already.
pub async fn validators(request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::GET {
        return next.run(request).await;
    }
    let asked: Option<String> =
        request.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Task lists and teams are small JSON answers the handler has already made whole.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::Internal("an answer's body could not be read again".into()).into_response();
    };
    let tag = etag(&bytes);
    let matches = asked.is_some_and(|asked| asked.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let Ok(value) = HeaderValue::from_str(&tag) else { return Response::from_parts(parts, Body::from(bytes)) };
    parts.headers.insert(header::ETAG, value);
    if matches {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The strong entity tag of `body`: the first 16 bytes of its SHA-256, quoted hex.
pub fn etag(body: &Bytes) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_inflating_past_the_limit_is_refused_without_reading_it_all() {
        let bomb = zstd::encode_all(&vec![0u8; 10 << 20][..], 3).unwrap();
        assert!(bomb.len() < 4096, "ten MiB of zeros compress to {} bytes", bomb.len());
        let decoder = zstd::stream::read::Decoder::new(&bomb[..]).unwrap();
        assert!(matches!(inflate(decoder, 1 << 20), Err(Inflated::TooLarge)));
        let decoder = zstd::stream::read::Decoder::new(&bomb[..]).unwrap();
        assert_eq!(inflate(decoder, 10 << 20).ok().map(|b| b.len()), Some(10 << 20), "exactly the limit passes");
    }

    #[test]
    fn a_body_that_is_not_its_coding_is_invalid() {
        let decoder = zstd::stream::read::Decoder::new(&b"not zstd at all"[..]).unwrap();
        assert!(matches!(inflate(decoder, 1 << 20), Err(Inflated::Invalid(_))));
        let decoder = flate2::read::GzDecoder::new(&b"not gzip either"[..]);
        assert!(matches!(inflate(decoder, 1 << 20), Err(Inflated::Invalid(_))));
    }

    #[test]
    fn an_etag_is_quoted_hex_of_the_body_hash() {
        let tag = etag(&Bytes::from_static(b"[]"));
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_ne!(tag, etag(&Bytes::from_static(b"[ ]")));
    }
}
