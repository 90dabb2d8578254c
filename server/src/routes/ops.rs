//! Liveness, readiness and metrics.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The process can serve: the store answers and the writer runs.
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let ready = state.blocking(|store| Ok(store.ready())).await?;
    if ready { Ok(Json(serde_json::json!({ "status": "ready" }))) } else { Err(ApiError::Unavailable) }
}

/// Prometheus text exposition of the server's counters.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
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
    ];
    let mut text = String::new();
    for (name, help, value) in counters {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"));
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
