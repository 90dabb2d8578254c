//! Wire and storage types of fieldsync.
//!
//! Everything that crosses a process boundary (device to server, server to
//! reviewer, the typed view of a record) is one of these types. They are plain
//! serde structs with no behaviour beyond encoding, so that every other crate
//! can depend on them without pulling in Automerge, SQLite or HTTP.
//!
//! Each public type derives [`schemars::JsonSchema`]; `json_schemas()` lists
//! them, the `generate-json-schemas` binary writes them into `schemas/json/`,
//! and a test fails when the checked-in files are stale.
//!
//! # Versioning
//!
//! A record document carries [`record::RECORD_SCHEMA_VERSION`]; a sync request
//! and response carry [`sync::SYNC_PROTOCOL_VERSION`]. A peer refuses a version
//! it does not know with a typed error instead of guessing.
//!
//! # Layout
//!
//! - [`record`]: the typed view of an inspection record and its conflicts.
//! - [`sync`]: the batched sync request and response, and change rejections.
//! - [`registry`]: certificates and tasks with their teams, which rules and devices read as data.
//! - [`device`]: the bytes a device signs to enroll.
//! - [`evidence`]: the evidence package a reviewer checks offline.
//! - [`log`]: the enforcement log's entries, their upload, and the transparency log's proofs.
//! - [`error`]: the error body every HTTP endpoint answers with.
//! - [`wire`]: byte fields (base64 in JSON, raw in CBOR) and the CBOR codec.

pub mod device;
pub mod error;
pub mod evidence;
pub mod log;
pub mod record;
pub mod registry;
pub mod sync;
pub mod wire;

pub use error::ErrorBody;
pub use record::*;
pub use registry::*;
pub use sync::*;

/// Every public type with its JSON Schema, in a stable order, keyed by the
/// file name it is written to under `schemas/json/`.
pub fn json_schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn schema<T: schemars::JsonSchema>() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(T)).expect("a JSON Schema is plain JSON")
    }
    vec![
        ("inspection_record.json", schema::<record::InspectionRecord>()),
        ("sync_request.json", schema::<sync::SyncRequest>()),
        ("sync_response.json", schema::<sync::SyncResponse>()),
        ("change_rejection.json", schema::<sync::ChangeRejection>()),
        ("error_body.json", schema::<error::ErrorBody>()),
        ("certificate.json", schema::<registry::Certificate>()),
        ("task.json", schema::<registry::Task>()),
        ("task_team.json", schema::<registry::TaskTeam>()),
        ("signed_entry.json", schema::<log::SignedEntry>()),
        ("log_upload.json", schema::<log::LogUpload>()),
        ("log_upload_response.json", schema::<log::LogUploadResponse>()),
        ("inclusion_proof.json", schema::<log::InclusionProof>()),
        ("consistency_proof.json", schema::<log::ConsistencyProof>()),
        ("record_log.json", schema::<log::RecordLog>()),
        ("evidence_manifest.json", schema::<evidence::Manifest>()),
        ("evidence_record_state.json", schema::<evidence::PackageRecordState>()),
    ]
}
