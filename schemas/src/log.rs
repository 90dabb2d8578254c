//! The full-process enforcement log (全过程记录) and the transparency log, as they travel.
//!
//! A device appends [`LogEntry`]s to its own hash chain and signs each one ([`SignedEntry`]);
//! `sync-core`'s `enforcement_log` holds their deterministic encoding, hashing, signing and
//! checks. A device uploads its chain with [`LogUpload`] and hears back one [`EntryOutcome`]
//! per entry. The server appends every accepted entry, record signature and lock, enrolled
//! device and stored blob to its transparency log, a Merkle tree whose signed checkpoints and
//! proofs ([`InclusionProof`], [`ConsistencyProof`]) anyone can check offline.
//!
//! Hashes and signatures are lowercase hex in JSON and in CBOR alike: these types are read by
//! people as often as by programs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happened, with what the rules need to know about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EntryKind {
    /// The officers arrived on site.
    Arrive,
    /// Officers showed their enforcement certificates to the party (亮证, P2).
    CertificatesShown { officer_ids: Vec<String> },
    /// Audio-video recording started.
    RecordingStarted,
    /// Audio-video recording stopped, with the reason (R3: only for a technical reason, stated).
    RecordingStopped { reason: String },
    /// A photo was taken; the photo is the blob with this SHA-256 (hex).
    PhotoTaken { sha256: String },
    /// The party was questioned.
    PartyQuestioned,
    /// A sample was taken.
    SampleTaken { sample_id: String },
    /// Evidence was preserved (证据保全).
    EvidencePreserved,
    /// A seal or seizure (查封扣押): R2 requires a continuous recording.
    SealOrSeizure,
    /// A document was served on the party.
    DocumentServed { document: String },
    /// The party refused (to sign, to accept service, ...), with what was said.
    PartyRefused { note: String },
    /// An officer signed the record.
    Signed { officer_id: String },
    /// The party refused the inspection because these officers showed no certificate (P2).
    InspectionRefused { officer_ids: Vec<String> },
    /// The officers left the site.
    Left,
}

/// The transparency log's checkpoint a device had seen when it wrote an entry: the entry is no
/// older than that checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SeenCheckpoint {
    pub size: u64,
    #[serde(with = "crate::wire::hex_array")]
    #[schemars(with = "String")]
    pub root: [u8; 32],
}

/// One entry of a device's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogEntry {
    pub device_id: String,
    /// Position in the device's chain, from 1.
    pub seq: u64,
    /// Hash of the entry before (32 zero bytes for the first).
    #[serde(with = "crate::wire::hex_array")]
    #[schemars(with = "String")]
    pub previous: [u8; 32],
    /// The device's wall clock, Unix ms: a claim, which the transparency log bounds.
    pub device_time_ms: i64,
    /// The device's monotonic clock since boot, ms: orders entries within one boot.
    pub monotonic_ms: u64,
    /// Identifies one boot of the device; monotonic times compare only within one.
    pub boot_id: String,
    pub kind: EntryKind,
    pub record_id: Option<String>,
    /// SHA-256 of the payload (free text, JSON, ...), which travels beside the entry.
    #[serde(with = "crate::wire::hex_array")]
    #[schemars(with = "String")]
    pub payload_hash: [u8; 32],
    pub seen_checkpoint: Option<SeenCheckpoint>,
}

/// An entry with its device's Ed25519 signature over the entry's encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignedEntry {
    pub entry: LogEntry,
    #[serde(with = "crate::wire::hex_array")]
    #[schemars(with = "String")]
    pub signature: [u8; 64],
}

/// A rule a record's log entries break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum LogFinding {
    /// R2: a seal or seizure while no device of the record was recording.
    SealWithoutRecording { device_id: String, seq: u64 },
    /// R3: a recording stopped without a stated reason.
    RecordingStoppedWithoutReason { device_id: String, seq: u64 },
    /// P2: an officer present without a "certificates shown" entry.
    CertificateNotShown { officer_id: String },
    /// P2: the party refused the inspection (an `inspection_refused` entry). `not_shown` are the
    /// officers it names who had no "certificates shown" entry before it: the refusal's ground.
    /// Empty, the refusal came after every officer it names had shown their certificate.
    InspectionRefused { device_id: String, seq: u64, not_shown: Vec<String> },
    /// A photo whose EXIF time (Unix ms) lies outside the interval the log proves for the entry
    /// that took it: the photo may not be from the inspection.
    PhotoTimeOutsideInterval { sha256: String, device_id: String, seq: u64, exif_ms: i64 },
}

/// A device's upload of its chain: entries in any order, each with its payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogUpload {
    pub entries: Vec<UploadedEntry>,
}

/// One entry and its payload (base64 in JSON, raw in CBOR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadedEntry {
    pub signed: SignedEntry,
    #[serde(with = "crate::wire::bytes")]
    #[schemars(with = "String")]
    pub payload: Vec<u8>,
}

/// What the server did with each uploaded entry, and its latest signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogUploadResponse {
    /// One per uploaded entry, in the upload's order.
    pub outcomes: Vec<EntryOutcome>,
    /// The latest checkpoint as a signed note, for the device's next entries to name.
    pub checkpoint: String,
}

/// What became of one uploaded entry. Nothing validly signed is dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum EntryOutcome {
    /// It extends the device's chain and is in the transparency log at `leaf_index`.
    Accepted { seq: u64, leaf_index: u64 },
    /// The server already had this very entry.
    Duplicate { seq: u64 },
    /// An entry before it is missing: it is held until the gap is filled.
    Held { seq: u64 },
    /// Another entry with this seq, or another previous hash, is already in the chain: both are
    /// kept and the device is flagged for tampering.
    Fork { seq: u64 },
    /// Not taken, with a stable code (`bad_signature`, `payload_mismatch`, `not_own_device`,
    /// `invalid_entry`).
    Refused { seq: u64, code: String, message: String },
}

/// A leaf of the transparency log with its inclusion proof in a tree of `tree_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The leaf's data (its encoding, `sync-core`'s `transparency::Leaf`), hex; absent when the
    /// caller may not read what the leaf is about (a device, a record, a blob), whose proof then
    /// still checks with `leaf_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    /// The leaf's RFC 6962 hash (SHA-256 of `0x00 || data`), hex.
    #[serde(default)]
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up, hex (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
}

/// A proof that the tree of `from` leaves is a prefix of the tree of `to` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// RFC 9162 §2.1.4 proof hashes, hex.
    pub proof: Vec<String>,
}

/// A stored entry of a record's log, with the interval the transparency log proves for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordLogEntry {
    pub signed: SignedEntry,
    pub leaf_index: u64,
    pub interval: TimeInterval,
}

/// When an evidence item existed, as the transparency log proves it, beside the device's claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimeInterval {
    /// The device's claimed time, Unix ms.
    pub claimed_ms: i64,
    /// The server's receipt time of the last leaf of the checkpoint the device had seen: the
    /// item was made after it. `None` when the device had seen no checkpoint.
    pub not_before_ms: Option<i64>,
    /// The server's receipt time of the item: it existed by then.
    pub not_after_ms: i64,
    /// True when the claimed time is outside the interval by more than the allowed clock skew.
    pub claim_outside: bool,
}

/// A record's enforcement log as the server holds it, with the rules it breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordLog {
    pub record_id: String,
    pub entries: Vec<RecordLogEntry>,
    pub findings: Vec<LogFinding>,
    /// Devices of this record's entries with a forked chain (tampering).
    pub forked_devices: Vec<String>,
}
