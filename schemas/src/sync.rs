//! The batched sync exchange between a device and the server.
//!
//! A device sends a [`SyncRequest`] carrying one Automerge sync message per
//! record it has something to say about, plus the server change cursor it has
//! caught up to; the server answers with a [`SyncResponse`] carrying its own
//! messages, the new cursor, and one [`ChangeRejection`] per change it refused.
//! A sync with nothing new on either side is one small request and answer,
//! whatever the number of records.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the batched sync exchange.
pub const SYNC_PROTOCOL_VERSION: u32 = 1;

/// What a device sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncRequest {
    /// Must equal [`SYNC_PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The server change cursor the device has caught up to; `None` on a device's first sync.
    pub since: Option<u64>,
    /// At most one message per record.
    pub documents: Vec<DocumentSyncMessage>,
}

/// What the server answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SyncResponse {
    /// Must equal [`SYNC_PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The cursor to send as `since` next time: every record changed up to it is in this or an earlier response.
    pub cursor: u64,
    /// At most one message per record.
    pub documents: Vec<DocumentSyncMessage>,
    /// Changes the server refused, one per change hash; they are kept in quarantine, never merged.
    pub rejections: Vec<ChangeRejection>,
    /// True when the server has more changed records than fit in this response.
    pub more: bool,
}

/// One Automerge sync message for one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DocumentSyncMessage {
    pub record_id: String,
    /// An encoded Automerge sync message (base64 in JSON).
    #[serde(with = "crate::wire::bytes")]
    #[schemars(with = "String")]
    pub message: Vec<u8>,
}

/// A change the receiver refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeRejection {
    pub record_id: String,
    /// Hex hash of the refused change; empty when a whole message was refused.
    pub change_hash: String,
    /// Hex actor id of the refused change; empty when a whole message was refused.
    pub actor: String,
    pub reason: RejectionReason,
}

/// Why a change was refused. The `code` tag is stable and machine-readable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum RejectionReason {
    /// The actor id is not registered to any enrolled device.
    UnknownActor,
    /// The actor id belongs to another device than the one that sent it.
    ActorNotBoundToDevice { actor_device_id: String, sending_device_id: String },
    /// The officer held no valid certificate at the change's time (P2, P3).
    OfficerNotCertified { officer_id: String, at_ms: i64, certificate_status: String },
    /// The officer is not on the team of the record's task.
    OfficerNotOnTeam { officer_id: String, task_id: Option<String> },
    /// The record is locked: every officer present has signed.
    RecordLocked,
    /// An officer has signed; only further signatures may be added.
    RecordSigned,
    /// The document after this change would not be a valid record. An object where a plain
    /// value belongs is named first in `detail`: `expected_string_found_text` (a text object
    /// where a plain string belongs) or `expected_scalar_found_object`.
    SchemaViolation { detail: String },
    /// A signature or a lock that the signing rules do not allow; `rule` names the rule: `P1`,
    /// `P2`, `open_conflict`, `not_present`, `signer`, `signed_at`, `unseen_content`,
    /// `signature_changed`, `lock` (not every officer present signed), or `incomplete_record`
    /// (C7, P4: the record lacks an item; `detail` is `missing: ` and each missing item's stable
    /// name, separated by `, `: `header/ended_at_ms`, `recusal/asked`, `recusal/answer`,
    /// `people_present/<person id>/signature`, `people_present/witness`, `header/conclusion`).
    SigningRuleViolated { rule: String, detail: String },
    /// The change claims a time further in the future than the allowed clock skew.
    TimestampInFuture { timestamp_ms: i64, now_ms: i64, max_skew_ms: i64 },
    /// The change claims a time earlier than a change it builds on, beyond the allowed clock skew.
    TimestampBeforeDependency { timestamp_ms: i64, dependency_ms: i64, max_skew_ms: i64 },
    /// The change builds on a change that was refused; the change graph allows no holes.
    DependsOnRefusedChange { dependency: String },
    /// The change needs a change the receiver does not have and was not sent.
    MissingDependency { dependency: String },
    /// The sending device's officer may not read this record (not on its task's team): the
    /// server neither sends its content nor takes changes to it.
    RecordNotReadable,
    /// The sync message could not be decoded at all.
    MalformedMessage { detail: String },
    /// No task of this record is known to the server.
    UnknownTask { task_id: Option<String> },
    /// The change is not well formed, though Automerge could decode it: its operation counters,
    /// sequence number, actor lineage or dependencies are not what Automerge itself would make,
    /// or Automerge could not apply it, or the record would not load again with it.
    MalformedChange { detail: String },
    /// The change does an operation a record's schema never allows: an object, a mark or a counter
    /// below the genesis, a write outside the genesis containers, a text character overwritten.
    OperationNotAllowed { detail: String },
    /// The change, or the record with it, exceeds a bound (`what`: the bounded thing).
    LimitExceeded { what: String, limit: u64, found: u64 },
    /// The change is by the record's genesis actor, or builds on nothing (as only a genesis
    /// does), but is not the record's genesis change: the genesis actor is derived from the
    /// record id, so anyone could write as it, and another record's genesis is not this one's.
    NotGenesis,
    /// The record's genesis actor is an enrolled device's actor id: such a record cannot be
    /// created, since its genesis could not be told from that device's work.
    ReservedActor,
    /// A value names an officer other than the one whose device made the change.
    WrongAuthor { field: String, named_officer: String, officer_id: String },
    /// The change is dated before a suspension or revocation of its officer's certificate that
    /// was in force when the server received it: it is held, not merged, until a reviewer decides.
    HeldForReview { officer_id: String, claimed_at_ms: i64, suspended_at_ms: i64, certificate_status: String },
    /// A reviewer refused a change held for review.
    RefusedOnReview { reviewer_id: String, note: String },
    /// The change's officer is recused from the record's entity (P4).
    OfficerRecused { officer_id: String, entity_id: String },
    /// The change names as present an officer who is not on the team of the record's task.
    OfficerPresentNotOnTeam { officer_id: String },
    /// The change sets the record's entity to another than its task's.
    EntityNotOfTask { entity_id: String },
    /// The change writes a checklist item whose code is not on the checklist of the task's matter
    /// (the matter list's checklist, which travels with the task to the device).
    UnknownChecklistItem { item_code: String },
    /// The record states that the party refused the inspection because this officer showed no
    /// certificate, but the officer is not present or the record says they showed it (P2).
    InspectionRefusalUnfounded { officer_id: String },
}
