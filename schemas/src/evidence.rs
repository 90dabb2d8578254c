//! An evidence package: everything a reviewer or a court needs to check a record offline,
//! without trusting the server that exported it.
//!
//! A package is one uncompressed POSIX tar archive in a canonical form (`sync-core`'s
//! `evidence` writes and verifies it). Its first member is `manifest.json` ([`Manifest`]),
//! which lists every other member in archive order with its size and SHA-256. The members:
//!
//! | path | content |
//! |---|---|
//! | `checkpoint.txt` | the server's signed checkpoint (C2SP signed note) of its transparency log |
//! | `log-key.txt` | the note verifier key of the log, to compare with the bureau's published key |
//! | `record/document.automerge` | the record's Automerge document: every change, with its author and time |
//! | `record/record.json` | the record as read from that document ([`crate::InspectionRecord`]) |
//! | `devices.json` | the devices whose changes or entries are in the package ([`PackageDevice`]) |
//! | `log/entries.json` | the devices' enforcement-log entries ([`PackageEntry`]) |
//! | `record/state.json` | the record's latest state in the log: the items that belong to it ([`PackageRecordState`]) |
//! | `blobs.json` | the blobs the record and its entries name ([`PackageBlob`]) |
//! | `blobs/<sha256>` | a blob's bytes, unless the package carries hashes only |
//! | `proofs.json` | inclusion proofs of every leaf the package relies on ([`PackageProofs`]) |
//!
//! JSON members are written pretty-printed with two-space indents and a final newline, and
//! each must be exactly that encoding of its content.
//!
//! A package has one encoding, so that its SHA-256 identifies it; a verifier refuses any other
//! and blames the member whose bytes differ:
//!
//! - members in the order of the table above, the `blobs/<sha256>` members in ascending order
//!   of hash, right after `blobs.json` (`record/state.json` is absent only when the log holds no
//!   state of the record, and such a package does not verify as complete);
//! - every hex string (hashes, keys, actor ids, leaves, proofs) in lowercase;
//! - `devices.json` in ascending order of device id, `log/entries.json` of device id then
//!   seq, `blobs.json` of SHA-256, the proofs' leaves of index and seen checkpoints of size,
//!   each element once;
//! - `record/document.automerge` exactly Automerge's uncompressed save (`save_nocompress`) of
//!   the document it loads as;
//! - `exported_at_ms` no earlier than the receipt time of any leaf in `proofs.json` (rounded
//!   down to whole seconds): the checkpoint was signed after those leaves arrived, and the
//!   package after the checkpoint.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::log::SignedEntry;

/// The format name and version a package's manifest carries.
pub const EVIDENCE_FORMAT: &str = "fieldsync-evidence/v1";

/// The first member of a package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must equal [`EVIDENCE_FORMAT`].
    pub format: String,
    pub record_id: String,
    /// When the server exported the package, Unix ms in whole seconds: the members' modification
    /// time in the archive.
    pub exported_at_ms: i64,
    /// The size of the transparency log at `checkpoint.txt`, which every proof is against.
    pub tree_size: u64,
    /// Whether the blobs' bytes are in the package, or only their hashes.
    pub blobs_included: bool,
    /// Every other member, in archive order.
    pub items: Vec<ManifestItem>,
}

/// One member of the package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestItem {
    pub path: String,
    pub size: u64,
    /// SHA-256 of the member's bytes, hex.
    pub sha256: String,
}

/// A device whose enrolment is in the transparency log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageDevice {
    pub device_id: String,
    pub officer_id: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Automerge actor id, hex.
    pub actor_id: String,
    /// The leaf of its enrolment; `None` for a device enrolled before the log existed, whose
    /// key the package then cannot prove.
    pub leaf_index: Option<u64>,
}

/// An entry of a device's chain. The package holds, per device, every entry from the first it
/// has for the record to the device's newest entry in the package's checkpoint, so that the
/// chain's links can be checked and no later entry of the record left out; entries of other
/// records come without their payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageEntry {
    pub signed: SignedEntry,
    /// The payload, base64; `None` for entries of other records.
    pub payload: Option<String>,
    pub leaf_index: u64,
}

/// The record's state as the log last recorded it in the package's checkpoint: its leaf and
/// the items the leaf's hash binds. The package must hold exactly these items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageRecordState {
    /// The record-state leaf (`sync_core::transparency`, item code 6).
    pub leaf_index: u64,
    pub items: RecordItems,
}

/// The items that belong to a record, as the log binds them in a record-state leaf (its
/// encoding and hash: `sync_core::transparency::record_items_hash`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordItems {
    /// Each device with entries of the record, by device id.
    pub devices: Vec<DeviceItems>,
    /// SHA-256 (hex, lowercase) of each photo an entry of the record took, ascending.
    pub photos: Vec<String>,
    /// The leaves of the record's signatures and lock, ascending.
    pub anchors: Vec<u64>,
}

/// A device's entries of a record: the first and last, how many, and the last one's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceItems {
    pub device_id: String,
    pub first_seq: u64,
    pub last_seq: u64,
    /// How many entries of the record the device's chain holds between the first and the last.
    pub entries: u64,
    /// SHA-256 of the last entry (hex, lowercase).
    pub last_entry_hash: String,
}

/// A blob the record or its entries name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageBlob {
    /// SHA-256 of the blob, hex; its bytes are the member `blobs/<sha256>` when included.
    pub sha256: String,
    /// Its size; `None` when the server lacks the blob.
    pub size: Option<u64>,
    /// The leaf recording that the server stored it; `None` when the server lacks the blob.
    pub leaf_index: Option<u64>,
    /// When the photo's EXIF says it was taken, as the server read it (`2026-05-04T10:20:30`,
    /// with its `+08:00` offset when the file states one): a claim, compared with the interval
    /// the log proves for the entry that took the photo. Absent when the file claims none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif_taken_at: Option<String>,
}

/// The proofs, all against the checkpoint of the package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageProofs {
    pub tree_size: u64,
    /// Every leaf the package names, by index.
    pub leaves: Vec<LeafProof>,
    /// Each checkpoint an entry names as seen, proven to be an earlier state of the log.
    pub seen_checkpoints: Vec<SeenCheckpointProof>,
}

/// A leaf's data and its inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeafProof {
    pub index: u64,
    /// The leaf's data, hex.
    pub leaf: String,
    /// Sibling hashes from the leaf up, hex.
    pub proof: Vec<String>,
}

/// A checkpoint a device had seen: its last leaf (whose receipt time bounds the entries that
/// name it from below), proven in it, and the checkpoint proven a prefix of the package's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeenCheckpointProof {
    pub size: u64,
    /// Root, hex.
    pub root: String,
    /// The data of leaf `size - 1`, hex.
    pub last_leaf: String,
    /// Inclusion proof of that leaf in the tree of `size` leaves, hex.
    pub inclusion: Vec<String>,
    /// Consistency proof from `size` to the package's tree size, hex.
    pub consistency: Vec<String>,
}
