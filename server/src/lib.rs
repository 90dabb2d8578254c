//! The bureau's fieldsync server.
//!
//! It knows who may act (identity, roles, certificates, devices), accepts only what the rules
//! allow (the validated sync endpoint), and never loses what it acknowledged (committed before
//! answering).
//!
//! # Layers
//!
//! - [`http`]: routes, extractors, error answers, OpenAPI, the accept loop. It parses a request,
//!   calls one use case and maps its answer.
//! - [`service`]: the use cases (auth, access, sync, blobs, transparency log, evidence,
//!   campaigns, admin, media), over the store's traits; no HTTP.
//! - [`store`]: the row types and the traits a backend implements; [`store::sqlite`] is the
//!   SQLite backend, named only by the composition root ([`cli`]) and tests.
//! - [`config`]: the settings every layer reads.
//! - [`demo`]: `fieldsync-server demo`, a demonstration bureau made through the real paths; it
//!   stands beside the composition root and may name every layer and the device library.
//!
//! `main.rs` only calls [`cli::main`].

pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod service;
pub mod store;

pub use config::{Config, DEFAULT_LOG_ORIGIN, TlsFiles};
pub use http::{AppState, app, run};
pub use service::now_ms;
