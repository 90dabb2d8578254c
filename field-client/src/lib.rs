//! The officer's offline device: local store, sync loop and the `fieldsync` CLI.
//!
//! A mobile app embeds this library; the `fieldsync` binary drives it from a
//! shell, so that a whole inspection can be scripted and tested.
//!
//! # Layout
//!
//! - [`store`]: the device's SQLite file (identity, key, tokens, records,
//!   sync states, cached tasks, photos, refused changes).
//! - [`device`]: an enrolled device and everything it does offline.
//! - [`remote`]: enrollment, tokens and sync with the server, with retries.
//! - [`transport`]: HTTPS through rustls with the bureau's CA; plain HTTP only to loopback.
//! - [`error`]: one error type with stable codes.
//! - [`cli`]: the `fieldsync` program.
//! - [`report`]: the report of an evidence package's verification a court reads (PDF, HTML).
//!
//! Everything except enrollment, login and sync works with no network. This
//! crate never depends on the server: the two meet through `schemas` and the
//! wire protocol.

pub mod cli;
pub mod device;
pub mod error;
pub mod remote;
pub mod report;
pub mod store;
pub mod transport;

pub use device::{Device, TaskTeam};
pub use error::{ClientError, ClientResult};
pub use remote::{SyncOptions, SyncProgress, SyncSummary, enroll};
