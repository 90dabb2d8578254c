//! The transparency log (leaves, subtrees, checkpoints) and the devices' enforcement-log chains.

use schemas::log::SignedEntry;
use sync_core::merkle::Hash;

use super::*;

/// The transparency log's name and key: its origin (the first line of every checkpoint, and the
/// name of its key in signed notes) and the Ed25519 key that signs its checkpoints.
#[derive(Clone)]
pub struct LogIdentity {
    /// The first line of every checkpoint and the name of the key in signed notes.
    pub origin: String,
    /// The secret key that signs checkpoints.
    pub key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for LogIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogIdentity")
            .field("origin", &self.origin)
            .field("public_key", &hex::encode(self.key.verifying_key().as_bytes()))
            .finish_non_exhaustive()
    }
}

/// A leaf of the transparency log as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLeaf {
    /// The leaf's position in the log, from 0.
    pub index: u64,
    /// The leaf's data (`sync_core::transparency::Leaf::to_bytes`).
    pub data: Vec<u8>,
    /// The receipt time the leaf's data holds.
    pub received_at_ms: i64,
}

/// A signed checkpoint of the transparency log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// How many leaves the tree it signs holds.
    pub size: u64,
    /// The C2SP signed note of the checkpoint.
    pub note: String,
    /// When the server signed it.
    pub signed_at_ms: i64,
}

/// An enforcement-log entry whose signature, payload and fields the caller has checked, ready to
/// be placed against its device's chain.
#[derive(Clone, Debug)]
pub struct CheckedEntry {
    /// The entry and its device's signature.
    pub signed: SignedEntry,
    /// The payload, whose SHA-256 the entry names.
    pub payload: Vec<u8>,
}

/// Where an uploaded entry went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPlacement {
    /// It extends its device's chain and is the log's leaf `leaf_index`.
    Accepted { leaf_index: u64 },
    /// The chain holds this very entry already.
    Duplicate,
    /// An earlier entry of its chain is missing: it waits, and joins the chain once that arrives.
    Held,
    /// It conflicts with the chain (another entry at its seq, or another previous entry): it is
    /// kept beside the chain and its device is flagged.
    Fork,
    /// It would be held, but its device has as many entries held as it may: not kept; the device
    /// sends it again once its gap is filled.
    TooManyHeld,
}

/// What appending a device's entries did.
#[derive(Clone, Debug)]
pub struct LogAppend {
    /// One per entry, in the order given.
    pub placements: Vec<EntryPlacement>,
    /// Held entries (from earlier uploads or this one) that joined the chain.
    pub promoted: u64,
    /// Held entries that turned out to conflict with the chain once their gap was filled.
    pub promoted_forks: u64,
    /// Entries that joined the chain naming a checkpoint the log never had (another root at that
    /// size, or a size the log has not reached).
    pub unknown_checkpoints: u64,
    /// Leaves appended.
    pub leaves: u64,
    /// The latest signed checkpoint: signed now if this append grew the tree.
    pub checkpoint: StoredCheckpoint,
}

/// What to gather for a record's evidence package.
#[derive(Clone, Debug)]
pub struct EvidenceRequest {
    pub record_id: String,
    /// The officers of the record's team: entries of their devices are included.
    pub officers: Vec<String>,
    /// Actor ids of the record's changes: their devices are included.
    pub actor_ids: Vec<Vec<u8>>,
    /// SHA-256 (hex) of the blobs the record names; those of its photo entries are added.
    pub blobs: Vec<String>,
}

/// An entry of a device's chain as an evidence package holds it.
#[derive(Clone, Debug)]
pub struct EvidenceEntry {
    pub signed: SignedEntry,
    pub payload: Vec<u8>,
    pub leaf_index: u64,
}

/// A checkpoint an entry named, as the log had it: its last leaf and the proofs that bind it
/// to the package's checkpoint.
#[derive(Clone, Debug)]
pub struct SeenTree {
    pub size: u64,
    pub root: Hash,
    pub last: StoredLeaf,
    /// Inclusion proof of the last leaf in the tree of `size` leaves.
    pub inclusion: Vec<Hash>,
    /// Consistency proof from `size` to the package's checkpoint.
    pub consistency: Vec<Hash>,
}

/// What [`Store::evidence`] read.
#[derive(Clone, Debug)]
pub struct EvidenceSource {
    pub document: Vec<u8>,
    pub checkpoint: StoredCheckpoint,
    /// Each device with its enrolment leaf (`None` if enrolled before the log existed).
    pub devices: Vec<(Device, Option<u64>)>,
    pub entries: Vec<EvidenceEntry>,
    /// Each blob asked for, with its row and leaf when stored.
    pub blobs: Vec<(String, Option<(Blob, u64)>)>,
    /// Every leaf the package names, with its inclusion proof at the checkpoint's size.
    pub leaves: Vec<(StoredLeaf, Vec<Hash>)>,
    pub seen: Vec<SeenTree>,
    /// The record's latest state in the checkpoint: its leaf and items (`None` if the log has
    /// none yet).
    pub state: Option<(u64, schemas::evidence::RecordItems)>,
}

/// An entry of a device's chain, as a record's log lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEntry {
    /// The entry and its device's signature.
    pub signed: SignedEntry,
    /// Its leaf in the transparency log.
    pub leaf_index: u64,
    /// When the server received it: its leaf's receipt time.
    pub received_at_ms: i64,
    /// The log at the size of the checkpoint the entry names: its root and the receipt time of
    /// its last leaf (`None` for the empty tree). `None` when the entry names no checkpoint or the
    /// log has not reached that size.
    pub seen_tree: Option<(Hash, Option<i64>)>,
}

/// The transparency log (leaves, subtrees, checkpoints) and the devices' enforcement-log chains.
pub trait TransparencyLog {
    /// Appends an enrolment leaf, stamped `now_ms`, for every device that has none (enrolled
    /// before the database had a transparency log), so that evidence packages can prove their
    /// keys from then on. Returns how many were appended.
    fn log_unlogged_enrolments(&self, now_ms: i64) -> StoreResult<usize>;
    /// The log's origin and signing key. The first call stores `origin` and the key `secret`;
    /// every later call answers what was stored, whatever it is given.
    fn log_identity(&self, origin: &str, secret: [u8; 32], now_ms: i64) -> StoreResult<LogIdentity>;
    /// How many leaves the log holds.
    fn log_size(&self) -> StoreResult<u64>;
    /// The log's root at `size` leaves; `None` beyond the current size.
    fn log_root(&self, size: u64) -> StoreResult<Option<Hash>>;
    /// Leaf `index` and its inclusion proof in the tree of `size` leaves, read from the stored
    /// subtrees; `None` unless `index < size <= ` the current size.
    fn log_inclusion(&self, index: u64, size: u64) -> StoreResult<Option<(StoredLeaf, Vec<Hash>)>>;
    /// The proof that the tree of `from` leaves is a prefix of the tree of `to`; `None` unless
    /// `0 < from <= to <= ` the current size.
    fn log_consistency(&self, from: u64, to: u64) -> StoreResult<Option<Vec<Hash>>>;
    /// The latest signed checkpoint, if any was signed.
    fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    /// The checkpoint of the current tree: the latest stored one if the tree has not grown since,
    /// else a new one signed now (needs [`Store::log_identity`] to have been called once).
    fn checkpoint(&self, now_ms: i64) -> StoreResult<StoredCheckpoint>;
    /// Places `entries` of `device_id`'s chain in chain order, in one write transaction: an entry
    /// that extends the chain is stored and appended to the log (and held entries it unblocks
    /// follow), a duplicate changes nothing, one after a gap is held, a conflicting one is kept
    /// as a fork. Signs a checkpoint when the tree grew, or when none was ever signed. A device
    /// holds at most `max_held` entries: one more that would be held is not kept
    /// ([`EntryPlacement::TooManyHeld`]).
    fn append_log_entries(
        &self,
        device_id: &str,
        entries: Vec<CheckedEntry>,
        received_ms: i64,
        max_held: usize,
    ) -> StoreResult<LogAppend>;
    /// The chain entries naming `record_id` from devices of `officers`, by device and seq.
    fn record_log(&self, record_id: &str, officers: &[String]) -> StoreResult<Vec<ChainEntry>>;
    /// Of the devices of `officers` with entries naming `record_id` (in their chains or forks),
    /// those whose chain has a fork, in order.
    fn forked_devices(&self, record_id: &str, officers: &[String]) -> StoreResult<Vec<String>>;
    /// What an evidence package of a record holds, read in one snapshot against the latest
    /// signed checkpoint: the document; the entries naming the record from devices of
    /// `request.officers`, with each device's chain from its first such entry to its newest
    /// entry below the checkpoint; the
    /// devices of those entries and of `request.actor_ids`, with their enrolment leaves; the
    /// record's signature and lock leaves; `request.blobs` with their leaves where stored; every
    /// such leaf with its inclusion proof; and each checkpoint the entries name that the log had.
    /// `None` if the record is unknown; an error if no checkpoint was ever signed.
    fn evidence(&self, request: &EvidenceRequest) -> StoreResult<Option<EvidenceSource>>;
    /// The transparency log checked against itself: each leaf's hash is its stored level-0
    /// subtree, each stored subtree the node over its two children, and each signed checkpoint's
    /// root the tree's at its size, signed by the log's key. The problems found, if any.
    fn log_check(&self) -> StoreResult<Vec<String>>;
}
