//! The HTTP API over the use cases of [`crate::service`]: the router with the layers every
//! request passes (body limits and timeout, request id, trace, metrics, security headers), the
//! extractors, the error answers, the OpenAPI description and the accept loop.
//!
//! One module per resource under [`routes`], each exposing `router()`; a handler parses, calls
//! one service function, and maps its answer.

pub mod bodies;
pub mod caller;
pub mod connections;
pub mod console;
pub mod error;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod store_schemas;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use self::routes::{
    admin, auth, blobs, campaigns, certificates, devices, enforcement_log, ops, records, recusals, review, sync, tasks,
    transparency,
};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::service::{ApiError, Context, Metrics};
use crate::store::Store;
use rate_limit::RateLimiter;

const REQUEST_ID: &str = "x-request-id";

/// Shared state of the handlers: the use cases' [`Context`] (which it dereferences to) and what
/// only HTTP needs: the attempt limits per account and address, and the memory request bodies
/// may hold.
#[derive(Clone)]
pub struct AppState {
    pub context: Context,
    pub account_limiter: Arc<RateLimiter>,
    pub address_limiter: Arc<RateLimiter>,
    /// One permit per byte of request body held in memory (see [`Config::max_body_memory_bytes`]).
    pub body_memory: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let (per_account, per_address) = (config.auth_attempts_per_minute, config.auth_attempts_per_minute_per_address);
        let body_memory = config.max_body_memory_bytes.min(tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            context: Context::new(config, store),
            account_limiter: Arc::new(RateLimiter::new(per_account, Duration::from_secs(60))),
            address_limiter: Arc::new(RateLimiter::new(per_address, Duration::from_secs(60))),
            body_memory: Arc::new(tokio::sync::Semaphore::new(body_memory)),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.context
    }
}

/// The HTTP routes.
pub fn app(state: AppState) -> Router {
    router(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then finishes in-flight requests.
///
/// Connections are served by [`connections`]: HTTP/1.1 with the timeouts and the per-address cap
/// of [`Config`], over TLS when [`Config::tls`] names a certificate and key.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = match &state.config.tls {
        Some(files) => Some(connections::tls_acceptor(files)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %listener.local_addr()?, %scheme, data = %state.config.data_dir.display(), "listening");
    let config = state.config.clone();
    connections::serve(listener, app(state), config, tls, shutdown).await
}

/// Every route, with its layers.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    Router::new()
        .merge(ops::router())
        .merge(auth::router())
        .merge(devices::router())
        .merge(admin::router())
        .merge(certificates::router())
        .merge(tasks::router().layer(middleware::from_fn(wire::validators)).layer(wire::compression()))
        .merge(records::router().layer(wire::compression()))
        .merge(review::router())
        .merge(recusals::router())
        .merge(
            sync::router()
                .layer(middleware::from_fn_with_state(state.clone(), wire::decode_request))
                .layer(wire::compression()),
        )
        .merge(blobs::router())
        .merge(
            enforcement_log::router()
                .layer(middleware::from_fn_with_state(state.clone(), wire::decode_request))
                .layer(wire::compression()),
        )
        .merge(transparency::router().layer(wire::compression()))
        .merge(campaigns::router())
        .merge(console::router())
        .fallback(|| async { ApiError::NotFound { what: "route" } })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), bodies::guard))
        .layer(middleware::from_fn(refuse_non_utf8_path))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Answers a path whose percent-decoding is not UTF-8 with the JSON error body, `invalid_path`,
/// before any route sees it (axum's own path extractor would answer in plain text).
async fn refuse_non_utf8_path(request: Request, next: Next) -> Response {
    if percent_decoded(request.uri().path()).is_err() {
        return ApiError::bad_request("invalid_path", "the path is not UTF-8 once percent-decoded").into_response();
    }
    next.run(request).await
}

/// `path` with its `%XX` escapes decoded, as UTF-8. A `%` not followed by two hex digits is kept
/// as it is, as axum keeps it.
fn percent_decoded(path: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[at], bytes.get(at + 1).copied().and_then(hex), bytes.get(at + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                at += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(decoded)
}

/// The Content-Security-Policy of every HTML page: the console's pages are server-rendered HTML
/// whose style sheet, images and forms are this site's own, with no script, nothing from
/// elsewhere, and no framing.
pub const HTML_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds headers that keep browsers from misreading answers: every answer is `nosniff` and sends
/// no referrer; an HTML page also gets [`HTML_CONTENT_SECURITY_POLICY`], may not be framed, and
/// sends its referrer (and so its `Origin`) to this site only.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    if html {
        // A page's own forms must carry its `Origin` (the console checks it), which browsers
        // replace with `null` under `no-referrer`; `same-origin` still sends nothing elsewhere.
        headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
        headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(HTML_CONTENT_SECURITY_POLICY));
        headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    }
    response
}

async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    Metrics::add(&state.metrics.requests, 1);
    next.run(request).await
}

/// The answer of an operation that has nothing to return but that it happened.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Status {
    /// What happened, for example `ok`, `logged_out` or `revoked`.
    pub status: &'static str,
}

/// How a device's body is encoded, by its `Content-Type`: CBOR on devices' links, JSON for people
/// and tools. The answer takes the request's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/cbor`, with raw byte strings (`schemas::wire`).
    Cbor,
    /// `application/json`, with base64 byte strings.
    Json,
}

impl BodyFormat {
    /// The format the request's `Content-Type` names (parameters ignored); any other is refused
    /// with `unsupported_content_type`.
    pub fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/cbor" => Ok(BodyFormat::Cbor),
            "application/json" => Ok(BodyFormat::Json),
            other => Err(ApiError::UnsupportedMediaType { found: other.to_string() }),
        }
    }

    /// Reads `body` in this format; a body that is not a `T` is refused with 400 and `code`, and
    /// the decoder's reason in `details.error`.
    pub fn decode<T: DeserializeOwned>(self, body: &[u8], code: &'static str, what: &str) -> Result<T, ApiError> {
        let error = match self {
            BodyFormat::Cbor => match schemas::wire::from_cbor(body) {
                Ok(value) => return Ok(value),
                Err(e) => e.detail,
            },
            BodyFormat::Json => match serde_json::from_slice(body) {
                Ok(value) => return Ok(value),
                Err(e) => e.to_string(),
            },
        };
        Err(ApiError::BadRequest {
            code,
            message: format!("the body is not {what}"),
            details: Some(serde_json::json!({ "error": error })),
        })
    }

    /// A 200 answer carrying `value` in this format.
    pub fn respond<T: Serialize>(self, value: &T) -> Response {
        match self {
            BodyFormat::Cbor => {
                (StatusCode::OK, [(header::CONTENT_TYPE, "application/cbor")], schemas::wire::to_cbor(value))
                    .into_response()
            }
            BodyFormat::Json => axum::Json(value).into_response(),
        }
    }
}

/// A device's body in the format its `Content-Type` names, decoded when the use case asks for
/// it (once it knows the caller may send it); the answer takes the same format.
pub struct DeviceBody<'a> {
    headers: &'a HeaderMap,
    body: axum::body::Bytes,
    /// The format, once the body was decoded.
    format: Option<BodyFormat>,
}

impl<'a> DeviceBody<'a> {
    pub fn new(headers: &'a HeaderMap, body: axum::body::Bytes) -> Self {
        Self { headers, body, format: None }
    }

    /// The body as a `T` (see [`BodyFormat::decode`]).
    pub fn decode<T: DeserializeOwned>(&mut self, code: &'static str, what: &str) -> Result<T, ApiError> {
        let format = *self.format.insert(BodyFormat::of(self.headers)?);
        format.decode(&self.body, code, what)
    }

    /// A 200 answer carrying `value` in the body's format.
    pub fn respond<T: Serialize>(&self, value: &T) -> Response {
        self.format.unwrap_or(BodyFormat::Json).respond(value)
    }
}

/// A JSON body whose every failure is an [`ApiError`] with a stable code.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        integral_numbers(&mut value);
        serde_json::from_value(value).map(ApiJson).map_err(|error| ApiError::Unprocessable {
            code: "invalid_body",
            message: "the body does not match the expected shape".into(),
            details: Some(serde_json::json!({ "error": error.to_string() })),
        })
    }
}

/// Writes every number with no fractional part (`2.0`, `1e3`) as an integer, in place.
///
/// JSON Schema calls `2.0` an integer, and so do the OpenAPI document's `integer` fields; serde
/// would refuse it for an integer field. Only numbers a float holds exactly (below 2^53) are
/// rewritten: a larger one came from text that may have been rounded (`-9223372036854775809`
/// reads as the float of `i64::MIN`) and stays a float, refused where an integer is expected.
pub fn integral_numbers(value: &mut serde_json::Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < EXACT) {
                *number = serde_json::Number::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// A raw body whose failures (too large, unreadable) are [`ApiError`]s with a stable code.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(ApiBytes(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge { limit: 0 })
            }
            Err(rejection) => Err(ApiError::bad_request("unreadable_body", rejection.body_text())),
        }
    }
}

/// A query string whose failure to parse is an [`ApiError`] with the code `invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request("invalid_query", rejection.body_text())),
        }
    }
}

fn json_rejection(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection;
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType { found: "not JSON".into() },
        JsonRejection::JsonDataError(error) => ApiError::Unprocessable {
            code: "invalid_body",
            message: "the body does not match the expected shape".into(),
            details: Some(serde_json::json!({ "error": error.body_text() })),
        },
        JsonRejection::JsonSyntaxError(error) => ApiError::BadRequest {
            code: "malformed_json",
            message: "the body is not valid JSON".into(),
            details: Some(serde_json::json!({ "error": error.body_text() })),
        },
        JsonRejection::BytesRejection(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge { limit: 0 }
        }
        other => ApiError::bad_request("unreadable_body", other.body_text()),
    }
}
