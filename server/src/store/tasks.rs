//! Inspection tasks and their teams.

use super::*;

/// An inspection task and its team (the wire type, stored as it is).
pub use schemas::Task;

/// Inspection tasks and their teams.
pub trait Tasks {
    fn create_task(&self, task: &Task) -> StoreResult<()>;
    fn task(&self, task_id: &str) -> StoreResult<Option<Task>>;
    /// Tasks `officer_id` is on, or all tasks when `None`.
    fn tasks(&self, officer_id: Option<&str>) -> StoreResult<Vec<Task>>;
    /// Gives the task `team` in place of its team, in one transaction, unless a record of the
    /// task exists (its team is then part of what was recorded): `Ok(false)` then, and
    /// `NotFound` for an unknown task.
    fn reassign_task(&self, task_id: &str, team: &[String]) -> StoreResult<bool>;
}
