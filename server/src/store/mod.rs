//! What the server keeps, behind traits, so that another backend (PostgreSQL) is an added
//! implementation, not a rewrite of the use cases.
//!
//! One trait per area, in the domain's words, each in its own module with its row types:
//! [`Accounts`], [`Devices`], [`Registry`], [`Tasks`], [`Records`] (with [`SyncTx`], what one
//! sync exchange reads and writes inside one transaction), [`Blobs`], [`TransparencyLog`],
//! [`Campaigns`] and [`Operations`]. [`Store`] is their sum, what the use cases hold.
//!
//! This module and its areas name no backend, no HTTP and no OpenAPI: besides std they use the
//! wire types (`schemas`), the rules (`sync_core`) and the crates their rows are made of (serde,
//! serde_json, thiserror, ed25519-dalek, hex); `server/tests/layers.rs` holds them to that.
//! [`sqlite::SqliteStore`] is the SQLite backend; only the composition root (`cli`) and tests
//! name it.

pub mod accounts;
pub mod blobs;
pub mod campaigns;
pub mod devices;
pub mod log;
pub mod operations;
pub mod records;
pub mod registry;
pub mod sqlite;
pub mod tasks;

/// The area traits, to call a store's methods on a concrete backend (`Arc<SqliteStore>`);
/// through `dyn Store` they need no import.
pub mod prelude {
    pub use super::{Accounts, Blobs, Campaigns, Devices, Operations, Records, Registry, Tasks, TransparencyLog};
}

pub use accounts::*;
pub use blobs::*;
pub use campaigns::*;
pub use devices::*;
pub use log::*;
pub use operations::*;
pub use records::*;
pub use registry::*;
pub use tasks::*;

/// A failure of the store. `Full`, `Busy`-like `LimitReached` and `Conflict` are the caller's to
/// report; `Backend` and `Other` are bugs or corruption, logged and never shown.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the disk is full")]
    Full,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("the store is shutting down")]
    Closed,
    /// The backend failed (its own message).
    #[error("store backend: {0}")]
    Backend(String),
    /// This backend does not do that (for example, a backup from inside the server).
    #[error("this store cannot {0}")]
    Unsupported(&'static str),
    /// A bound from the bureau's settings that this write would pass; nothing was written.
    #[error("{what}: the limit of {limit} is reached")]
    LimitReached { what: &'static str, limit: usize },
    #[error("{0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server keeps: the sum of the areas.
pub trait Store:
    Accounts
    + Devices
    + Registry
    + Tasks
    + Records
    + Blobs
    + TransparencyLog
    + Campaigns
    + Operations
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: Accounts
        + Devices
        + Registry
        + Tasks
        + Records
        + Blobs
        + TransparencyLog
        + Campaigns
        + Operations
        + Send
        + Sync
        + 'static
{
}
