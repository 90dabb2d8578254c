//! Liveness, readiness, metrics and the OpenAPI description of the API.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::http::AppState;
use crate::http::Status;
use crate::http::openapi::{self, InternalError};
use crate::service::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses((status = 200, description = "Always `{\"status\": \"ok\"}`.", body = Status)),
)]
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The process can serve: the store answers and the writer runs.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`.", body = Status),
        (status = 503, description = "`unavailable`: the store does not answer or takes no more writes.", body = openapi::ErrorBodySchema),
        InternalError,
    ),
)]
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    state.ready().await?;
    Ok(Json(Status { status: "ready" }))
}

/// Prometheus text exposition of the server's counters.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((
        status = 200,
        description = "The counters `fieldsync_http_requests_total`, `fieldsync_sync_requests_total`, \
            `fieldsync_records_merged_total`, `fieldsync_changes_refused_total`, \
            `fieldsync_logins_failed_total`, `fieldsync_sync_retries_total`, \
            `fieldsync_log_entries_accepted_total`, `fieldsync_log_entries_held_total`, \
            `fieldsync_log_entries_forked_total`, `fieldsync_log_entries_refused_total`, \
            `fieldsync_log_unknown_checkpoints_total` and `fieldsync_log_leaves_appended_total`, in the \
            Prometheus text format 0.0.4.",
        body = String,
        content_type = "text/plain; version=0.0.4",
    ),
    (
        status = 401,
        description = "`metrics_token_required`: the server keeps its metrics behind a token \
            (`--metrics-token`): send it as `Authorization: Bearer`.",
        body = openapi::ErrorBodySchema,
    ),
    (
        status = 404,
        description = "`not_found`: the server serves its metrics on another address (`--metrics-listen`) \
            and not here.",
        body = openapi::ErrorBodySchema,
    )),
)]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    state.metrics_access(presented)?;
    Ok(exposition(&state))
}

/// Serves the metrics alone on `listener` (`--metrics-listen`: an address the monitoring system
/// reaches and the public does not) until `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(|State(state): State<AppState>| async move { exposition(&state) }))
        .fallback(|| async { ApiError::NotFound { what: "route" } })
        .with_state(state);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// The Prometheus text exposition of the counters.
fn exposition(state: &AppState) -> Response {
    let m = &state.metrics;
    let counters = [
        ("fieldsync_http_requests_total", "HTTP requests received.", m.requests.load(Ordering::Relaxed)),
        ("fieldsync_sync_requests_total", "Sync requests handled.", m.sync_requests.load(Ordering::Relaxed)),
        (
            "fieldsync_records_merged_total",
            "Records whose content a sync changed.",
            m.records_merged.load(Ordering::Relaxed),
        ),
        (
            "fieldsync_changes_refused_total",
            "Changes refused and quarantined.",
            m.changes_refused.load(Ordering::Relaxed),
        ),
        ("fieldsync_logins_failed_total", "Failed login attempts.", m.logins_failed.load(Ordering::Relaxed)),
        (
            "fieldsync_sync_retries_total",
            "Sync exchanges run again in the writer because a record changed under them.",
            m.sync_retries.load(Ordering::Relaxed),
        ),
        (
            "fieldsync_log_entries_accepted_total",
            "Enforcement-log entries that joined their device's chain, held ones included once their gap filled.",
            m.log_entries_accepted.load(Ordering::Relaxed),
        ),
        (
            "fieldsync_log_entries_held_total",
            "Enforcement-log entries held until an earlier entry of their chain arrives.",
            m.log_entries_held.load(Ordering::Relaxed),
        ),
        (
            "fieldsync_log_entries_forked_total",
            "Enforcement-log entries that conflict with their device's chain, kept as forks.",
            m.log_entries_forked.load(Ordering::Relaxed),
        ),
        (
            "fieldsync_log_entries_refused_total",
            "Enforcement-log entries refused: another device's, invalid, badly signed or with another payload.",
            m.log_entries_refused.load(Ordering::Relaxed),
        ),
        (
            "fieldsync_log_unknown_checkpoints_total",
            "Accepted enforcement-log entries naming a checkpoint the transparency log never had.",
            m.log_unknown_checkpoints.load(Ordering::Relaxed),
        ),
        (
            "fieldsync_log_leaves_appended_total",
            "Leaves appended to the transparency log.",
            m.log_leaves_appended.load(Ordering::Relaxed),
        ),
    ];
    let mut text = String::new();
    for (name, help, value) in counters {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"));
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This OpenAPI 3.1 description of the API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json"),
        InternalError,
    ),
)]
async fn openapi_json() -> ApiResult<Json<&'static serde_json::Value>> {
    openapi::document().map(Json).map_err(ApiError::Internal)
}
