//! The typed view of an on-site inspection record (现场检查笔录).
//!
//! This is what `sync-core` reads out of a record's Automerge document and
//! what the server answers on `GET /v1/records/{id}`. It is a *view*: the
//! document is the truth, and a view also carries the document's open
//! conflicts so that nobody mistakes a merged value for an agreed one.
//!
//! Times are Unix milliseconds (UTC). Lists are sorted by their key so that
//! two replicas with the same document produce equal views.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the record document layout written into every document.
pub const RECORD_SCHEMA_VERSION: u64 = 1;

/// One on-site inspection record, merged from every device's edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InspectionRecord {
    /// Layout version of the document this view was read from.
    pub schema_version: u64,
    /// UUIDv7 made on the device that created the record.
    pub record_id: String,
    pub header: RecordHeader,
    pub entity: EntityRef,
    /// Officers on site, sorted by officer id.
    pub officers_present: Vec<OfficerPresent>,
    /// Party representatives and witnesses, sorted by person id.
    pub people_present: Vec<PersonPresent>,
    pub recusal: Recusal,
    /// Checklist results, sorted by item code.
    pub checklist: Vec<ChecklistItem>,
    /// Free text typed by the officers; concurrent typing is merged character by character.
    pub observations: String,
    /// Photo references, sorted by SHA-256; the photos themselves are blobs.
    pub photos: Vec<PhotoRef>,
    /// Samples taken, sorted by sample id.
    pub samples: Vec<Sample>,
    /// Measures taken, sorted by kind.
    pub measures: Vec<Measure>,
    /// Officers' signatures, sorted by officer id.
    pub signatures: Vec<OfficerSignature>,
    /// Who resolved which conflict, sorted by field.
    pub resolutions: Vec<ConflictResolution>,
    pub status: RecordStatus,
    /// Concurrent writes to one field that nobody has resolved yet, sorted by field.
    pub conflicts: Vec<FieldConflict>,
}

/// Header fields: each is a single value that officers may set and overwrite.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecordHeader {
    /// The inspection task this record belongs to; set once when the record is created.
    pub task_id: Option<String>,
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub address: Option<String>,
    /// WGS 84 latitude in degrees, -90..=90.
    pub latitude: Option<f64>,
    /// WGS 84 longitude in degrees, -180..=180.
    pub longitude: Option<f64>,
    /// The officers' conclusion of the inspection.
    pub conclusion: Option<String>,
    /// P2: the party refused the inspection because officers showed no certificate (亮证).
    #[serde(default)]
    pub inspection_refused: Option<InspectionRefusal>,
}

/// A party's refusal of the inspection because officers present showed no enforcement
/// certificate (P2: the party may refuse; the refusal is recorded, not left to a free note).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InspectionRefusal {
    /// When the party refused, Unix ms.
    pub at_ms: i64,
    /// The officers present who had not shown their certificate; at least one.
    pub officer_ids: Vec<String>,
    /// What the party said, if it was noted.
    pub statement: Option<String>,
}

/// The inspected entity as recorded on site.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntityRef {
    /// Registry id, for example `E00001`.
    pub entity_id: Option<String>,
    pub name: Option<String>,
    /// Unified social credit code (统一社会信用代码), 18 characters, GB 32100-2015.
    pub credit_code: Option<String>,
    pub legal_representative: Option<String>,
    pub discharge_permit: Option<String>,
    /// Registry tier, for example `special`, `key` or `general`.
    pub tier: Option<String>,
}

/// An officer on site, as entered into the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OfficerPresent {
    pub officer_id: String,
    pub name: String,
    /// Enforcement certificate number (执法证号); P1 counts distinct numbers.
    pub certificate_number: String,
    /// Whether the certificate was shown to the party (亮证, P2).
    pub certificate_shown: bool,
}

/// A person on site who is not an officer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PersonPresent {
    /// Id made on the device that added the person.
    pub person_id: String,
    pub name: String,
    pub role: PersonRole,
    pub contact: Option<String>,
    pub signature: PartySignature,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersonRole {
    LegalRepresentative,
    Staff,
    Witness,
    Other,
}

/// Whether a person present signed the record or refused to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PartySignature {
    NotYet,
    Signed {
        signed_at_ms: i64,
    },
    /// A refusal is recorded, with what was said, instead of a signature.
    Refused {
        note: String,
    },
}

/// The recusal question put to the party (回避, P4) and its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Recusal {
    pub asked: Option<bool>,
    pub answer: Option<String>,
}

/// One checklist item's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChecklistItem {
    /// Item code from the bureau's checklist, for example `FACILITY-RUNNING`.
    pub code: String,
    pub result: Option<ChecklistResult>,
    pub note: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChecklistResult {
    Compliant,
    NonCompliant,
    NotApplicable,
    NotChecked,
}

/// A photo referenced by the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PhotoRef {
    /// Lowercase hex SHA-256 of the original image bytes.
    pub sha256: String,
    pub caption: String,
}

/// A sample taken on site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sample {
    /// The sample's label id, as written on the container.
    pub sample_id: String,
    pub description: String,
    pub taken_at_ms: Option<i64>,
}

/// A measure taken on site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Measure {
    pub kind: MeasureKind,
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    Photograph,
    AudioVideoRecording,
    CopyDocuments,
    Questioning,
    Sampling,
    OrderToCorrect,
    OrderToStop,
    SealOrSeizure,
    Other,
}

/// An officer's signature on the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OfficerSignature {
    pub officer_id: String,
    pub certificate_number: String,
    pub signed_at_ms: i64,
}

/// Who resolved a conflict on which field, and to what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConflictResolution {
    /// Field path, as in [`FieldConflict::field`].
    pub field: String,
    pub resolved_by_officer: String,
    pub resolved_at_ms: i64,
    pub value: serde_json::Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Nobody has signed yet.
    Draft,
    /// At least one officer signed; the content is frozen, only signatures may be added.
    Signing,
    /// Every officer present signed; nothing may change.
    Locked,
}

/// Concurrent writes to one scalar field that disagree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldConflict {
    /// Path of the field, for example `header/conclusion` or `checklist/FACILITY-RUNNING/result`.
    pub field: String,
    /// Whether an open conflict here blocks signing (entity, times, conclusion, measures, officers present).
    pub legally_significant: bool,
    /// Every competing value, sorted by change hash.
    pub values: Vec<ConflictingValue>,
}

/// One competing value and who wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConflictingValue {
    pub value: serde_json::Value,
    /// Hex Automerge actor id of the device that wrote it.
    pub actor: String,
    /// Hex hash of the change that wrote it.
    pub change_hash: String,
}
