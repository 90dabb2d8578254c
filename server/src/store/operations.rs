//! What an operator runs: backup and integrity checks.

use super::*;

/// What an operator runs: backup and integrity checks.
pub trait Operations {
    /// Copies the whole database to `path`, consistently, while serving. A backend whose data
    /// lives elsewhere (a database server with its own backups) answers
    /// [`StoreError::Unsupported`].
    fn backup(&self, path: &std::path::Path) -> StoreResult<()> {
        let _ = path;
        Err(StoreError::Unsupported("back up into a file"))
    }
    /// The backend's own integrity check; the problems it reports, if any.
    fn integrity_check(&self) -> StoreResult<Vec<String>>;
    /// Whether the store answers.
    fn ready(&self) -> bool;
    /// Finishes the writes already accepted and stops taking new ones; waits for them.
    fn close(&self) {}
}
