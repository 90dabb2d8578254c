//! The transparency log (leaves, subtrees, checkpoints) and the devices' enforcement-log chains.
//!
//! [`LogTx`] is the log's and the chains' primitives, each one statement, so that a backend
//! implements them without knowing the algorithms (those are in `service::transparency`);
//! [`write_log`] and [`read_log`] run a job over [`TransparencyLog`].
//!
//! [`append_leaf`] is the one way a leaf enters the log, whatever the backend: the leaf and every
//! subtree it completes, inside the transaction of the item it attests. Every entry, signature and
//! lock of a record is followed, in the same transaction, by a record-state leaf
//! ([`record_item_added`]): the record id, the heads of its latest signature or lock, and the
//! SHA-256 of its items (each device's entries of the record, the photos they took, the leaves of
//! its signatures and lock; `sync_core::transparency::record_items_hash`). [`StoredTree`] reads
//! roots and proofs from the stored subtrees, never all leaves.

use std::any::Any;

use schemas::evidence::RecordItems;
use schemas::log::SignedEntry;
use sync_core::merkle::{self, Hash, Subtrees};
use sync_core::transparency::{self, Leaf, LeafItem};

use super::*;

/// The transparency log's name and key: its origin (the first line of every checkpoint, and the
/// name of its key in signed notes) and the Ed25519 key that signs its checkpoints.
#[derive(Clone)]
pub struct LogIdentity {
    /// The first line of every checkpoint and the name of the key in signed notes.
    pub origin: String,
    /// The public key every checkpoint opens with.
    pub public_key: ed25519_dalek::VerifyingKey,
    /// The secret key that signs checkpoints, when the database holds it; `None` when it lives
    /// outside (a key file the operator gives the server: [`TransparencyLog::log_signing_key`]).
    pub key: Option<ed25519_dalek::SigningKey>,
}

impl std::fmt::Debug for LogIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogIdentity")
            .field("origin", &self.origin)
            .field("public_key", &hex::encode(self.public_key.as_bytes()))
            .field("secret_in_database", &self.key.is_some())
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

/// What `service::evidence_source::evidence` read.
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

/// Where an entry that does not extend its chain is kept: held until its gap is filled, or kept
/// as a fork of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BesideChain {
    Held,
    Fork,
}

/// An entry kept beside its device's chain, as stored.
#[derive(Clone, Debug)]
pub struct KeptEntry {
    /// The signed entry as JSON.
    pub entry: String,
    pub payload: Vec<u8>,
    pub received_at_ms: i64,
}

/// An entry of a device's chain as stored: the signed entry as JSON, its payload, its leaf.
#[derive(Clone, Debug)]
pub struct ChainRow {
    pub entry: String,
    pub payload: Vec<u8>,
    pub leaf_index: u64,
}

/// A record's state in the log: its leaf, its items and the heads of its latest anchor.
pub type RecordState = (u64, RecordItems, Vec<[u8; 32]>);

/// The transparency log's and the chains' rows, read and written inside one transaction: each
/// method is one statement. The algorithms over them (the leaf append below, checkpoints, chain
/// placement, evidence assembly, the log's check) are written once, over this trait.
pub trait LogTx {
    /// How many leaves the log holds.
    fn log_size(&self) -> StoreResult<u64>;
    /// The stored complete subtree at `level` and `index` (level 0: a leaf's hash).
    fn subtree(&self, level: u32, index: u64) -> StoreResult<Option<Hash>>;
    fn insert_subtree(&self, level: u32, index: u64, hash: &Hash) -> StoreResult<()>;
    /// Calls `visit` with every stored subtree above the leaves, by level and index, with the
    /// bytes stored as its hash (which the log's check compares; a corrupt row is a finding, not
    /// a failure), one at a time.
    fn each_inner_subtree(&self, visit: &mut dyn FnMut(u32, u64, &[u8])) -> StoreResult<()>;
    /// Stores leaf `index`, with what it is about (`device:…`, `record:…`, `blob:…`).
    fn insert_leaf(&self, index: u64, data: &[u8], received_ms: i64, subject: Option<&str>) -> StoreResult<()>;
    fn leaf(&self, index: u64) -> StoreResult<Option<StoredLeaf>>;
    /// Calls `visit` with every leaf's index and data, by index, one at a time (a log's check
    /// reads them all and holds none); the data is `None` where what is stored is not bytes.
    fn each_leaf(&self, visit: &mut dyn FnMut(u64, Option<&[u8]>)) -> StoreResult<()>;
    /// The leaves about `subject` below `size`, in order.
    fn leaves_about(&self, subject: &str, size: u64) -> StoreResult<Vec<u64>>;
    fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    /// Every signed checkpoint, by size.
    fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>>;
    fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> StoreResult<()>;
    fn log_identity(&self) -> StoreResult<Option<LogIdentity>>;
    /// Keeps the log's origin and public key, with its secret key when the database is to hold
    /// it, unless the log has an identity already.
    fn insert_log_identity(
        &self,
        origin: &str,
        public: &[u8; 32],
        secret: Option<&[u8; 32]>,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Erases the log's secret key from the database, keeping its public key.
    fn forget_log_secret(&self) -> StoreResult<()>;
    /// The latest state of a record's items below `size`.
    fn record_state(&self, record_id: &str, size: u64) -> StoreResult<Option<RecordState>>;
    fn insert_record_state(
        &self,
        leaf_index: u64,
        record_id: &str,
        items: &RecordItems,
        heads: &[[u8; 32]],
    ) -> StoreResult<()>;
    /// The hash of the entry at `seq` of `device_id`'s chain.
    fn chain_hash(&self, device_id: &str, seq: u64) -> StoreResult<Option<[u8; 32]>>;
    /// Adds an entry to its device's chain, with its leaf.
    fn insert_chain_entry(
        &self,
        device_id: &str,
        entry: &CheckedEntry,
        entry_hash: &[u8; 32],
        received_ms: i64,
        leaf_index: u64,
    ) -> StoreResult<()>;
    /// Keeps an entry beside its chain (nothing if the same entry is kept there already).
    fn keep_beside_chain(
        &self,
        place: BesideChain,
        device_id: &str,
        entry: &CheckedEntry,
        entry_hash: &[u8; 32],
        received_ms: i64,
    ) -> StoreResult<()>;
    /// Whether this very entry is held.
    fn is_held(&self, device_id: &str, seq: u64, entry_hash: &[u8; 32]) -> StoreResult<bool>;
    /// How many entries of the device are held.
    fn held_count(&self, device_id: &str) -> StoreResult<usize>;
    /// The entries of the device held at `seq`, oldest first.
    fn held_at(&self, device_id: &str, seq: u64) -> StoreResult<Vec<KeptEntry>>;
    fn remove_held(&self, device_id: &str, seq: u64, entry_hash: &[u8; 32]) -> StoreResult<()>;
    /// The entries naming `record_id`, by device and seq: each with its device's officer, the
    /// signed entry as JSON, its receipt time and its leaf (not its payload).
    fn record_chain(&self, record_id: &str) -> StoreResult<Vec<(String, String, i64, u64)>>;
    /// For each device with entries naming `record_id` below leaf `size`: the device, its officer
    /// and the first such entry's seq, by device.
    fn record_chain_starts(&self, record_id: &str, size: u64) -> StoreResult<Vec<(String, String, u64)>>;
    /// The newest seq of the device's chain below leaf `size`.
    fn chain_last_seq(&self, device_id: &str, size: u64) -> StoreResult<Option<u64>>;
    /// The device's chain from `first` to `last`, by seq.
    fn chain_range(&self, device_id: &str, first: u64, last: u64) -> StoreResult<Vec<ChainRow>>;
    /// Of the devices with entries naming `record_id` (in their chains or forks), those whose
    /// chain has a fork, with their officer, in order.
    fn forked_record_devices(&self, record_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Devices with no enrolment leaf, by enrolment.
    fn devices_without_leaf(&self) -> StoreResult<Vec<Device>>;
    /// Every device, by id.
    fn all_devices(&self) -> StoreResult<Vec<Device>>;
    /// A stored record (for its document).
    fn stored_record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>>;
    /// A stored blob's row.
    fn stored_blob(&self, sha256: &str) -> StoreResult<Option<Blob>>;
}

/// A job over the log, run in one transaction; its answer travels type-erased
/// ([`write_log`] and [`read_log`] give it back its type).
pub type LogJob = Box<dyn FnOnce(&dyn LogTx) -> StoreResult<Box<dyn Any + Send>> + Send>;

/// The transparency log and the devices' enforcement-log chains: jobs over [`LogTx`].
pub trait TransparencyLog {
    /// Runs `job` in one write transaction; returns once it is committed.
    fn log_write(&self, job: LogJob) -> StoreResult<Box<dyn Any + Send>>;
    /// Runs `job` against one consistent snapshot; nothing it writes is kept.
    fn log_read(&self, job: &mut dyn FnMut(&dyn LogTx) -> StoreResult<()>) -> StoreResult<()>;
    /// The log's signing key as the operator gave it when the store was opened (a key file kept
    /// outside the database), if any.
    fn log_signing_key(&self) -> Option<ed25519_dalek::SigningKey> {
        None
    }
}

/// Runs `job` in one write transaction of the log.
pub fn write_log<R: Send + 'static>(
    store: &(impl TransparencyLog + ?Sized),
    job: impl FnOnce(&dyn LogTx) -> StoreResult<R> + Send + 'static,
) -> StoreResult<R> {
    let answer = store.log_write(Box::new(move |tx| job(tx).map(|r| Box::new(r) as Box<dyn Any + Send>)))?;
    answer.downcast::<R>().map(|r| *r).map_err(|_| StoreError::Other("a log job answered another type".into()))
}

/// Runs `job` against one consistent snapshot of the log.
pub fn read_log<R>(
    store: &(impl TransparencyLog + ?Sized),
    job: impl FnOnce(&dyn LogTx) -> StoreResult<R>,
) -> StoreResult<R> {
    let (mut job, mut answer) = (Some(job), None);
    store.log_read(&mut |tx| {
        let job = job.take().ok_or_else(|| StoreError::Other("a log job ran twice".into()))?;
        answer = Some(job(tx)?);
        Ok(())
    })?;
    answer.ok_or_else(|| StoreError::Other("a log job did not run".into()))
}

/// The log's stored complete subtrees, read through one transaction: every root and proof is
/// of one consistent tree, built from O(log² n) lookups.
pub struct StoredTree<'a>(pub &'a dyn LogTx);

impl Subtrees for StoredTree<'_> {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> StoreResult<Hash> {
        self.0
            .subtree(level, index)?
            .ok_or_else(|| StoreError::Other(format!("the log lacks its subtree ({level}, {index})")))
    }
}

/// What a leaf is about, for finding the leaves of an evidence package; entries are found
/// through their chain instead.
pub fn leaf_subject(item: &LeafItem) -> Option<String> {
    match item {
        LeafItem::DeviceEnrolled { device_id, .. } => Some(format!("device:{device_id}")),
        LeafItem::RecordSigned { record_id, .. } | LeafItem::RecordLocked { record_id, .. } => {
            Some(format!("record:{record_id}"))
        }
        LeafItem::Blob { sha256, .. } => Some(format!("blob:{}", hex::encode(sha256))),
        // A package carries only the latest state, found through the record states.
        LeafItem::LogEntry { .. } | LeafItem::RecordState { .. } => None,
    }
}

/// The transparency-log leaf of a device's enrolment, received at `received_ms`.
pub fn enrolment_leaf(device: &Device, received_ms: i64) -> StoreResult<Leaf> {
    let public_key: [u8; 32] = device
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Other("a device key is not 32 bytes".into()))?;
    Ok(Leaf {
        received_ms,
        item: LeafItem::DeviceEnrolled {
            device_id: device.device_id.clone(),
            officer_id: device.officer_id.clone(),
            public_key,
            actor_id: device.actor_id.clone(),
        },
    })
}

/// What joins a record's items.
pub enum RecordItem<'a> {
    Entry { device_id: &'a str, seq: u64, entry_hash: [u8; 32], photo: Option<&'a str> },
    Anchor { leaf_index: u64, heads: &'a [[u8; 32]] },
}

/// Appends a leaf and every subtree it completes; returns its index. A signature or lock of a
/// record is followed by the record's next state.
///
/// Every write that adds to the log calls it inside its own transaction, whatever the backend:
/// the log then always holds what the store acknowledged, and nothing else.
pub fn append_leaf(tx: &dyn LogTx, leaf: &Leaf) -> StoreResult<u64> {
    let index = append_leaf_alone(tx, leaf)?;
    if let LeafItem::RecordSigned { record_id, heads, .. } | LeafItem::RecordLocked { record_id, heads } = &leaf.item {
        record_item_added(tx, record_id, leaf.received_ms, RecordItem::Anchor { leaf_index: index, heads })?;
    }
    Ok(index)
}

fn append_leaf_alone(tx: &dyn LogTx, leaf: &Leaf) -> StoreResult<u64> {
    let index = tx.log_size()?;
    let data = leaf.to_bytes();
    tx.insert_leaf(index, &data, leaf.received_ms, leaf_subject(&leaf.item).as_deref())?;
    let mut hash = merkle::leaf_hash(&data);
    tx.insert_subtree(0, index, &hash)?;
    let tree = StoredTree(tx);
    // Each completed subtree is the node over its left half (stored) and the one just completed.
    for (level, at) in merkle::subtrees_completed_by(index) {
        let left = tree.subtree(level - 1, 2 * at)?;
        hash = merkle::node_hash(&left, &hash);
        tx.insert_subtree(level, at, &hash)?;
    }
    Ok(index)
}

/// Appends the record's next state leaf with `item` among its items, in the transaction that
/// committed the item, so that the log always names every item of the record.
pub fn record_item_added(tx: &dyn LogTx, record_id: &str, received_ms: i64, item: RecordItem<'_>) -> StoreResult<()> {
    let (mut items, mut heads) = match tx.record_state(record_id, u64::MAX >> 1)? {
        Some((_, items, heads)) => (items, heads),
        None => (RecordItems::default(), Vec::new()),
    };
    match item {
        RecordItem::Entry { device_id, seq, entry_hash, photo } => {
            transparency::add_entry(&mut items, device_id, seq, &entry_hash, photo)
        }
        RecordItem::Anchor { leaf_index, heads: anchor_heads } => {
            transparency::add_anchor(&mut items, leaf_index);
            heads = anchor_heads.to_vec();
        }
    }
    let items_hash = transparency::record_items_hash(record_id, &items)
        .map_err(|e| StoreError::Other(format!("record {record_id}: {e}")))?;
    let leaf = Leaf {
        received_ms,
        item: LeafItem::RecordState { record_id: record_id.to_string(), heads: heads.clone(), items_hash },
    };
    let leaf_index = append_leaf_alone(tx, &leaf)?;
    tx.insert_record_state(leaf_index, record_id, &items, &heads)
}
