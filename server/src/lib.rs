//! The bureau's fieldsync server.
//!
//! So far it serves only its health endpoint; identity, authorization, the
//! validated sync endpoint and storage come next (see ARCHITECTURE.md).
//!
//! [`app`] builds the router from the state, [`run`] serves it on a listener
//! until `shutdown` completes; `main.rs` is a thin binary over both.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

/// Settings of one running server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Folder of the database and blobs.
    pub data_dir: PathBuf,
}

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
}

/// The HTTP routes.
pub fn app(state: AppState) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    std::fs::create_dir_all(&state.config.data_dir)?;
    tracing::info!(address = %listener.local_addr()?, data = %state.config.data_dir.display(), "listening");
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
