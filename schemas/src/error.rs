//! The error body of every HTTP endpoint.
//!
//! Clients branch on `code`, a stable snake_case identifier; `message` is for
//! people and may change. Internal details are never put here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a server answers when a request fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, for example `token_expired` or `malformed_sync_request`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// Structured context (the offending value, a limit), when there is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}
