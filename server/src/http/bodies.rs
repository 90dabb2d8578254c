//! Request bodies, bounded: in size by route, in time, and in memory all together.
//!
//! One middleware wraps every request's body before any handler reads it:
//!
//! - **Size by route** ([`body_limit`]): login, refresh, logout, password and device enrollment
//!   bodies are a few hundred bytes and most of these routes need no token, so they take at most
//!   [`Config::max_small_body_bytes`]; the other JSON forms [`Config::max_form_body_bytes`]; only
//!   sync, log uploads, upload chunks and the registry, matter and calendar imports take
//!   [`Config::max_body_bytes`]. A declared `Content-Length` past the limit is refused before a
//!   byte of the body is read.
//! - **Time**: the whole body must arrive within [`Config::body_read_timeout`] of its head, or
//!   the request is answered 408 `body_timeout` and its connection closed.
//! - **Memory**: every byte of body read holds a permit of [`AppState::body_memory`]
//!   ([`Config::max_body_memory_bytes`] in all) until its request is answered; a body that would
//!   go past it is answered 503 `server_busy` (with `Retry-After`), which devices retry.
//!
//! A handler sees a body that failed as a read error; the middleware then answers with the
//! failure's own status and code whatever the handler made of it.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::http::AppState;
use crate::service::error::ApiError;

/// Seconds a client refused for [`BodyFailure::MemoryFull`] is asked to wait.
const RETRY_AFTER_FULL_S: u64 = 2;

/// The largest body the route of `method` and `path` takes.
pub fn body_limit(config: &Config, method: &Method, path: &str) -> usize {
    let small = path.starts_with("/v1/auth/")
        || path == "/v1/devices"
        || path == "/v1/devices/challenge"
        || path == "/login"
        || path == "/logout"
        || path == "/password";
    let large = path == "/v1/sync"
        || path == "/v1/log/entries"
        || (path.starts_with("/v1/uploads/") && method == Method::PATCH)
        || path == "/v1/admin/entities"
        || path == "/v1/admin/matters"
        || path.starts_with("/v1/admin/calendar/")
        || path == "/admin/entities"
        || path == "/admin/matters";
    if small {
        config.max_small_body_bytes
    } else if large {
        config.max_body_bytes
    } else {
        config.max_form_body_bytes
    }
}

/// Why a body was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyFailure {
    #[error("the request body did not arrive in time")]
    TimedOut,
    #[error("the request body is larger than this route takes ({limit} bytes)")]
    TooLarge { limit: usize },
    #[error("the server holds as many request bodies as it may; try again shortly")]
    MemoryFull,
}

impl BodyFailure {
    fn into_response(self) -> Response {
        let mut response = match self {
            BodyFailure::TimedOut => ApiError::Refused {
                status: StatusCode::REQUEST_TIMEOUT.as_u16(),
                code: "body_timeout",
                message: self.to_string(),
                details: None,
            }
            .into_response(),
            BodyFailure::TooLarge { limit } => ApiError::TooLarge { limit }.into_response(),
            BodyFailure::MemoryFull => {
                let mut response = ApiError::Refused {
                    status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
                    code: "server_busy",
                    message: self.to_string(),
                    details: Some(serde_json::json!({ "retry_after_s": RETRY_AFTER_FULL_S })),
                }
                .into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_FULL_S));
                response
            }
        };
        // The rest of the body was never read: the connection cannot carry another request.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// The middleware: bounds the request's body, and answers a body that failed with its failure.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = body_limit(&state.config, request.method(), request.uri().path());
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return BodyFailure::TooLarge { limit }.into_response();
    }
    let failure = Arc::new(OnceLock::new());
    let held = Arc::new(Mutex::new(None));
    let deadline = tokio::time::Instant::now() + state.config.body_read_timeout;
    let budget = state.body_memory.clone();
    let (guard_failure, guard_held) = (failure.clone(), held.clone());
    let request = request.map(move |inner| {
        Body::new(GuardedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            limit,
            read: 0,
            budget,
            held: guard_held,
            failure: guard_failure,
        })
    });
    let response = next.run(request).await;
    // The body's bytes are held until the answer is made; then the handler has let them go.
    drop(held);
    match failure.get() {
        Some(failure) => failure.into_response(),
        None => response,
    }
}

/// A request body that fails once it is late, too long or past the memory budget.
struct GuardedBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: usize,
    read: usize,
    budget: Arc<Semaphore>,
    /// The permits of the bytes read so far, shared with the middleware that outlives the body.
    held: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    failure: Arc<OnceLock<BodyFailure>>,
}

impl GuardedBody {
    fn fail(&self, failure: BodyFailure) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let _ = self.failure.set(failure);
        Poll::Ready(Some(Err(axum::Error::new(failure))))
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Some(&failure) = this.failure.get() {
            return this.fail(failure);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len();
                    if this.read > this.limit {
                        return this.fail(BodyFailure::TooLarge { limit: this.limit });
                    }
                    let Ok(permits) = u32::try_from(data.len()) else {
                        return this.fail(BodyFailure::MemoryFull);
                    };
                    match this.budget.clone().try_acquire_many_owned(permits) {
                        Ok(permit) => {
                            let mut held = this.held.lock().unwrap_or_else(PoisonError::into_inner);
                            match held.as_mut() {
                                Some(all) => all.merge(permit),
                                None => *held = Some(permit),
                            }
                        }
                        Err(_) => return this.fail(BodyFailure::MemoryFull),
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return this.fail(BodyFailure::TimedOut);
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
