//! The transparency log's use cases, written once over the store's [`LogTx`] primitives: its
//! identity, checkpoints (signed when the tree grew), roots and proofs, the placement of the
//! devices' enforcement-log entries against their chains, a record's log, and the log's check
//! against itself. The leaf append itself is [`crate::store::append_leaf`], which every write
//! that adds to the log runs inside its own transaction.
//!
//! - Checkpoints are C2SP signed notes by an Ed25519 key made once with the log's origin
//!   (`--log-origin`, fixed once stored) and kept in the database. One is signed when asked for
//!   after the tree grew, and by every upload that grew it.
//! - Placement: an entry that extends its chain is stored with its leaf and lets held successors
//!   follow; one after a gap is held (`log_held`) until it can; a conflicting one is kept
//!   (`log_forks`) and flags its device. Nothing validly signed is dropped.
//! - Devices enrolled before the database had a log get their enrolment leaf when `serve` starts.
//! - The checkpoint, the log's key and consistency proofs are public; inclusion proofs need a
//!   signed-in caller, and carry the leaf's data only for one who may read what it is about
//!   ([`crate::service::access::Access::leaf`]; others get its hash).
//! - The log's check ([`log_check`]) holds leaves against their stored hashes, subtrees against
//!   their children, and checkpoints against the tree and the log's key.

use std::collections::BTreeMap;

use schemas::log::SignedEntry;
use sync_core::checkpoint::{Checkpoint, sign_note};
use sync_core::enforcement_log::{EntryEncoding, Placement, place};
use sync_core::merkle::{self, Hash, Subtrees};
use sync_core::transparency::{Leaf, LeafItem};

use schemas::log::{ConsistencyProof, InclusionProof};

use crate::service::access::Access;
use crate::service::auth::Caller;
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{
    BesideChain, ChainEntry, CheckedEntry, EntryPlacement, LogAppend, LogIdentity, LogTx, RecordItem, StoreError,
    StoreResult, StoredCheckpoint, StoredLeaf, StoredTree, TransparencyLog, append_leaf, enrolment_leaf, read_log,
    record_item_added, write_log,
};

/// The log's origin and key. The first call keeps `origin` and a key: the one the store was
/// given from outside ([`TransparencyLog::log_signing_key`], whose secret the database never
/// holds), else `secret`, kept in the database; every later call answers what was kept,
/// whatever it is given.
pub fn log_identity(
    store: &(impl TransparencyLog + ?Sized),
    origin: &str,
    secret: [u8; 32],
    now_ms: i64,
) -> StoreResult<LogIdentity> {
    if let Some(identity) = read_log(store, |tx| tx.log_identity())? {
        return Ok(identity);
    }
    let origin = origin.to_string();
    let outside = store.log_signing_key();
    write_log(store, move |tx| {
        match &outside {
            Some(key) => tx.insert_log_identity(&origin, key.verifying_key().as_bytes(), None, now_ms)?,
            None => {
                let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
                tx.insert_log_identity(&origin, public.as_bytes(), Some(&secret), now_ms)?
            }
        }
        tx.log_identity()?.ok_or_else(|| StoreError::Other("the log's identity was not kept".into()))
    })
}

/// Why the log cannot sign a checkpoint with the key it has.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogKeyProblem {
    /// The database does not hold the secret key and none was given from outside.
    #[error("the transparency log's signing key is kept outside the database and was not given (--log-key-file)")]
    Missing,
    /// The key given from outside is not the one the log's checkpoints open with.
    #[error("the log key given ({given}) is not this log's key ({expected}): a swapped key or another log's")]
    Mismatch { given: String, expected: String },
}

/// The key that signs the log's checkpoints: the one given from outside (`outside`), which must
/// be the log's, else the one the database holds.
pub fn log_signer(
    identity: &LogIdentity,
    outside: Option<&ed25519_dalek::SigningKey>,
) -> Result<ed25519_dalek::SigningKey, LogKeyProblem> {
    match (outside, &identity.key) {
        (Some(given), _) if given.verifying_key() != identity.public_key => Err(LogKeyProblem::Mismatch {
            given: hex::encode(given.verifying_key().as_bytes()),
            expected: hex::encode(identity.public_key.as_bytes()),
        }),
        (Some(given), _) => Ok(given.clone()),
        (None, Some(stored)) => Ok(stored.clone()),
        (None, None) => Err(LogKeyProblem::Missing),
    }
}

/// Appends an enrolment leaf, stamped `now_ms`, for every device that has none (enrolled before
/// the database had a transparency log), so that evidence packages can prove their keys from
/// then on. Returns how many were appended.
pub fn log_unlogged_enrolments(store: &(impl TransparencyLog + ?Sized), now_ms: i64) -> StoreResult<usize> {
    write_log(store, move |tx| {
        let devices = tx.devices_without_leaf()?;
        for device in &devices {
            append_leaf(tx, &enrolment_leaf(device, now_ms)?)?;
        }
        Ok(devices.len())
    })
}

/// How many leaves the log holds.
pub fn log_size(store: &(impl TransparencyLog + ?Sized)) -> StoreResult<u64> {
    read_log(store, |tx| tx.log_size())
}

/// The latest signed checkpoint, if any was signed.
pub fn latest_checkpoint(store: &(impl TransparencyLog + ?Sized)) -> StoreResult<Option<StoredCheckpoint>> {
    read_log(store, |tx| tx.latest_checkpoint())
}

/// The log's root at `size` leaves; `None` beyond the current size.
pub fn log_root(store: &(impl TransparencyLog + ?Sized), size: u64) -> StoreResult<Option<Hash>> {
    read_log(store, |tx| {
        if size > tx.log_size()? {
            return Ok(None);
        }
        Ok(Some(merkle::root_of(&StoredTree(tx), size)?))
    })
}

/// Leaf `index` and its inclusion proof in the tree of `size` leaves, read from the stored
/// subtrees; `None` unless `index < size <= ` the current size.
pub fn log_inclusion(
    store: &(impl TransparencyLog + ?Sized),
    index: u64,
    size: u64,
) -> StoreResult<Option<(StoredLeaf, Vec<Hash>)>> {
    read_log(store, |tx| {
        if size > tx.log_size()? {
            return Ok(None);
        }
        let Some(proof) = merkle::inclusion_proof_of(&StoredTree(tx), size, index)? else {
            return Ok(None);
        };
        let leaf = tx.leaf(index)?.ok_or_else(|| StoreError::Other(format!("the log lacks leaf {index}")))?;
        Ok(Some((leaf, proof)))
    })
}

/// The proof that the tree of `from` leaves is a prefix of the tree of `to`; `None` unless
/// `0 < from <= to <= ` the current size.
pub fn log_consistency(store: &(impl TransparencyLog + ?Sized), from: u64, to: u64) -> StoreResult<Option<Vec<Hash>>> {
    read_log(store, |tx| {
        if to > tx.log_size()? {
            return Ok(None);
        }
        merkle::consistency_proof_of(&StoredTree(tx), to, from)
    })
}

/// The checkpoint of the current tree: the latest one if the tree has not grown since, else a
/// new one signed now and kept (needs [`log_identity`] to have been called once).
pub fn checkpoint(store: &(impl TransparencyLog + ?Sized), now_ms: i64) -> StoreResult<StoredCheckpoint> {
    let current = read_log(store, |tx| {
        let size = tx.log_size()?;
        Ok(tx.latest_checkpoint()?.filter(|latest| latest.size == size))
    })?;
    match current {
        Some(checkpoint) => Ok(checkpoint),
        None => {
            let outside = store.log_signing_key();
            write_log(store, move |tx| current_checkpoint(tx, outside.as_ref(), now_ms))
        }
    }
}

/// [`checkpoint`] inside a write transaction, signed with the key given from outside, if any
/// ([`log_signer`]).
fn current_checkpoint(
    tx: &dyn LogTx,
    outside: Option<&ed25519_dalek::SigningKey>,
    now_ms: i64,
) -> StoreResult<StoredCheckpoint> {
    let size = tx.log_size()?;
    if let Some(latest) = tx.latest_checkpoint()?
        && latest.size == size
    {
        return Ok(latest);
    }
    let identity =
        tx.log_identity()?.ok_or_else(|| StoreError::Other("the transparency log has no signing key yet".into()))?;
    let root = merkle::root_of(&StoredTree(tx), size)?;
    let body = Checkpoint { origin: identity.origin.clone(), size, root }.body();
    let key = log_signer(&identity, outside).map_err(|problem| StoreError::Other(problem.to_string()))?;
    let note = sign_note(&body, &identity.origin, &key)
        .map_err(|e| StoreError::Other(format!("signing the checkpoint: {e}")))?;
    let checkpoint = StoredCheckpoint { size, note, signed_at_ms: now_ms };
    tx.insert_checkpoint(&checkpoint)?;
    Ok(checkpoint)
}

/// Places `entries` of `device_id`'s chain in chain order, in one write transaction: an entry
/// that extends the chain is stored and appended to the log (and held entries it unblocks
/// follow), a duplicate changes nothing, one after a gap is held, a conflicting one is kept as
/// a fork. Signs a checkpoint when the tree grew, or when none was ever signed. A device holds
/// at most `max_held` entries: one more that would be held is not kept
/// ([`EntryPlacement::TooManyHeld`]).
pub fn append_log_entries(
    store: &(impl TransparencyLog + ?Sized),
    device_id: &str,
    entries: Vec<CheckedEntry>,
    received_ms: i64,
    max_held: usize,
) -> StoreResult<LogAppend> {
    let device_id = device_id.to_string();
    let outside = store.log_signing_key();
    write_log(store, move |tx| place_entries(tx, outside.as_ref(), &device_id, &entries, received_ms, max_held))
}

fn place_entries(
    tx: &dyn LogTx,
    outside: Option<&ed25519_dalek::SigningKey>,
    device_id: &str,
    entries: &[CheckedEntry],
    received_ms: i64,
    max_held: usize,
) -> StoreResult<LogAppend> {
    let mut placing = Placing {
        tx,
        device_id,
        max_held,
        roots: BTreeMap::new(),
        append: LogAppend {
            placements: Vec::with_capacity(entries.len()),
            promoted: 0,
            promoted_forks: 0,
            unknown_checkpoints: 0,
            leaves: 0,
            checkpoint: StoredCheckpoint { size: 0, note: String::new(), signed_at_ms: 0 },
        },
    };
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].signed.entry.seq);
    let mut placements = vec![EntryPlacement::Duplicate; entries.len()];
    for i in order {
        placements[i] = placing.place(&entries[i], received_ms)?;
        if let EntryPlacement::Accepted { .. } = placements[i] {
            placing.promote_after(entries[i].signed.entry.seq)?;
        }
    }
    let mut append = placing.append;
    append.placements = placements;
    // An upload that added nothing to the tree leaves the checkpoints as they are.
    append.checkpoint = match tx.latest_checkpoint()? {
        Some(latest) if append.leaves == 0 => latest,
        _ => current_checkpoint(tx, outside, received_ms)?,
    };
    Ok(append)
}

/// What placing entries needs beyond the transaction: the device, and the roots of the log at
/// the sizes entries name, looked up once each.
struct Placing<'a> {
    tx: &'a dyn LogTx,
    device_id: &'a str,
    /// Most entries the device may have held.
    max_held: usize,
    roots: BTreeMap<u64, Option<Hash>>,
    append: LogAppend,
}

impl Placing<'_> {
    /// Places one entry against the chain; an entry that extends it is stored with its leaf.
    fn place(&mut self, entry: &CheckedEntry, received_ms: i64) -> StoreResult<EntryPlacement> {
        let (tx, device_id) = (self.tx, self.device_id);
        let signed = &entry.signed;
        let (seq, hash) = (signed.entry.seq, signed.entry.hash());
        let here = tx.chain_hash(device_id, seq)?;
        let before = if seq > 1 { tx.chain_hash(device_id, seq - 1)? } else { None };
        let placement = match place(&signed.entry, here, before) {
            Placement::Extends => {
                let leaf = Leaf {
                    received_ms,
                    item: LeafItem::LogEntry { device_id: device_id.to_string(), seq, entry_hash: hash },
                };
                let leaf_index = append_leaf(tx, &leaf)?;
                self.append.leaves += 1;
                tx.insert_chain_entry(device_id, entry, &hash, received_ms, leaf_index)?;
                if let Some(record_id) = &signed.entry.record_id {
                    let photo = match &signed.entry.kind {
                        schemas::log::EntryKind::PhotoTaken { sha256 } => Some(sha256.as_str()),
                        _ => None,
                    };
                    let item = RecordItem::Entry { device_id, seq, entry_hash: hash, photo };
                    record_item_added(tx, record_id, received_ms, item)?;
                    self.append.leaves += 1;
                }
                if let Some(seen) = &signed.entry.seen_checkpoint
                    && self.root_at(seen.size)? != Some(seen.root)
                {
                    self.append.unknown_checkpoints += 1;
                }
                EntryPlacement::Accepted { leaf_index }
            }
            Placement::Duplicate => EntryPlacement::Duplicate,
            Placement::Gap => {
                if !tx.is_held(device_id, seq, &hash)? && tx.held_count(device_id)? >= self.max_held {
                    return Ok(EntryPlacement::TooManyHeld);
                }
                tx.keep_beside_chain(BesideChain::Held, device_id, entry, &hash, received_ms)?;
                return Ok(EntryPlacement::Held);
            }
            Placement::Fork => {
                tx.keep_beside_chain(BesideChain::Fork, device_id, entry, &hash, received_ms)?;
                EntryPlacement::Fork
            }
        };
        // Placed for good: a copy held earlier goes.
        tx.remove_held(device_id, seq, &hash)?;
        Ok(placement)
    }

    /// Moves the held entries that now extend the chain after `seq` into it, seq by seq; held
    /// entries at those seqs that conflict with it become forks.
    fn promote_after(&mut self, mut seq: u64) -> StoreResult<()> {
        loop {
            seq += 1;
            let mut extended = false;
            for held in self.tx.held_at(self.device_id, seq)? {
                let signed = signed_entry(&held.entry)?;
                match self.place(&CheckedEntry { signed, payload: held.payload }, held.received_at_ms)? {
                    EntryPlacement::Accepted { .. } => {
                        self.append.promoted += 1;
                        extended = true;
                    }
                    EntryPlacement::Fork => self.append.promoted_forks += 1,
                    EntryPlacement::Duplicate | EntryPlacement::Held | EntryPlacement::TooManyHeld => {}
                }
            }
            if !extended {
                return Ok(());
            }
        }
    }

    /// The log's root at `size`, or `None` beyond its current size.
    fn root_at(&mut self, size: u64) -> StoreResult<Option<Hash>> {
        if let Some(root) = self.roots.get(&size) {
            return Ok(*root);
        }
        let root = if size <= self.tx.log_size()? { Some(merkle::root_of(&StoredTree(self.tx), size)?) } else { None };
        // A size beyond the log may be reached later in this append: only a root is kept.
        if root.is_some() {
            self.roots.insert(size, root);
        }
        Ok(root)
    }
}

/// A stored entry read back.
pub fn signed_entry(json: &str) -> StoreResult<SignedEntry> {
    serde_json::from_str(json).map_err(|e| StoreError::Other(format!("a stored log entry does not read: {e}")))
}

/// The chain entries naming `record_id` from devices of `officers`, by device and seq, each with
/// the log's root and last receipt time at the size of the checkpoint it names.
pub fn record_log(
    store: &(impl TransparencyLog + ?Sized),
    record_id: &str,
    officers: &[String],
) -> StoreResult<Vec<ChainEntry>> {
    read_log(store, |tx| {
        let size = tx.log_size()?;
        let tree = StoredTree(tx);
        let mut seen_trees: BTreeMap<u64, Option<(Hash, Option<i64>)>> = BTreeMap::new();
        let mut entries = Vec::new();
        for (officer_id, entry, received_at_ms, leaf_index) in tx.record_chain(record_id)? {
            if !officers.contains(&officer_id) {
                continue;
            }
            let signed = signed_entry(&entry)?;
            let seen_tree = match &signed.entry.seen_checkpoint {
                None => None,
                Some(seen) if seen.size > size => None,
                Some(seen) => match seen_trees.get(&seen.size) {
                    Some(known) => *known,
                    None => {
                        let root = merkle::root_of(&tree, seen.size)?;
                        let last = match seen.size.checked_sub(1) {
                            Some(index) => tx.leaf(index)?.map(|leaf| leaf.received_at_ms),
                            None => None,
                        };
                        seen_trees.insert(seen.size, Some((root, last)));
                        Some((root, last))
                    }
                },
            };
            entries.push(ChainEntry { signed, leaf_index, received_at_ms, seen_tree });
        }
        Ok(entries)
    })
}

/// Of the devices of `officers` with entries naming `record_id` (in their chains or forks),
/// those whose chain has a fork, in order.
pub fn forked_devices(
    store: &(impl TransparencyLog + ?Sized),
    record_id: &str,
    officers: &[String],
) -> StoreResult<Vec<String>> {
    let rows = read_log(store, |tx| tx.forked_record_devices(record_id))?;
    Ok(rows.into_iter().filter(|(_, officer)| officers.contains(officer)).map(|(device, _)| device).collect())
}

/// The transparency log checked against itself: each leaf's hash is its stored level-0 subtree,
/// each stored subtree the node over its two children, and each signed checkpoint's root the
/// tree's at its size, signed by the log's key. The problems found, if any.
pub fn log_check(store: &(impl TransparencyLog + ?Sized)) -> StoreResult<Vec<String>> {
    let outside = store.log_signing_key();
    read_log(store, |tx| {
        let mut problems = Vec::new();
        // A key given from outside that is not the log's: the database's key was swapped, or the
        // file is another log's.
        if let (Some(identity), Some(given)) = (tx.log_identity()?, &outside)
            && let Err(problem @ LogKeyProblem::Mismatch { .. }) = log_signer(&identity, Some(given))
        {
            problems.push(problem.to_string());
        }
        let tree = StoredTree(tx);
        let mut expected = 0u64;
        tx.each_leaf(&mut |index, data| {
            if index != expected {
                problems.push(format!("leaf {expected} is missing"));
                expected = index;
            }
            expected += 1;
            let Some(data) = data else {
                problems.push(format!("leaf {index} is not bytes"));
                return;
            };
            match tx.subtree(0, index) {
                Ok(Some(hash)) if hash == merkle::leaf_hash(data) => {}
                Ok(Some(_)) => problems.push(format!("leaf {index} does not hash to its stored subtree")),
                Ok(None) | Err(_) => problems.push(format!("leaf {index} has no stored subtree")),
            }
        })?;
        tx.each_inner_subtree(&mut |level, index, hash| {
            let children = (tree.subtree(level - 1, 2 * index), tree.subtree(level - 1, 2 * index + 1));
            match children {
                (Ok(left), Ok(right)) if merkle::node_hash(&left, &right).as_slice() == hash => {}
                (Ok(_), Ok(_)) => problems.push(format!("subtree {level}/{index} is not the node over its children")),
                _ => problems.push(format!("subtree {level}/{index} lacks a child")),
            }
        })?;
        let identity = tx.log_identity()?;
        for StoredCheckpoint { size, note, .. } in tx.checkpoints()? {
            let Some(identity) = &identity else {
                problems.push(format!("checkpoint {size} is stored but the log has no key"));
                continue;
            };
            let opened = sync_core::checkpoint::open_note(&note, &[(identity.origin.as_str(), identity.public_key)])
                .map_err(|e| e.to_string())
                .and_then(|(text, _)| Checkpoint::parse_body(&text).map_err(|e| e.to_string()));
            match opened {
                Ok(checkpoint) if checkpoint.size != size => {
                    problems.push(format!("checkpoint {size} names size {}", checkpoint.size))
                }
                Ok(checkpoint) => {
                    if expected < size || merkle::root_of(&tree, size).ok() != Some(checkpoint.root) {
                        problems.push(format!("checkpoint {size} is not the tree's root at that size"));
                    }
                }
                Err(error) => problems.push(format!("checkpoint {size} does not open: {error}")),
            }
        }
        Ok(problems)
    })
}

/// The signed note of the current tree, signed now if the tree grew since the last one.
pub async fn checkpoint_note(context: &Context) -> ApiResult<String> {
    context.log_identity().await?;
    let now = now_ms();
    Ok(context.blocking(move |store| checkpoint(store, now)).await?.note)
}

/// The note verifier key that opens the log's checkpoints.
pub async fn log_key(context: &Context) -> ApiResult<String> {
    Ok(context.log_identity().await?.verifier_key.clone())
}

/// The 422 answer of a tree size beyond the log.
fn size_out_of_range(size: u64, tree_size: u64) -> ApiError {
    ApiError::Unprocessable {
        code: "size_out_of_range",
        message: format!("the log holds {tree_size} leaves, not {size}"),
        details: Some(serde_json::json!({ "size": size, "tree_size": tree_size })),
    }
}

fn hex_hashes(hashes: Vec<[u8; 32]>) -> Vec<String> {
    hashes.into_iter().map(hex::encode).collect()
}

/// Leaf `index` of the transparency log with its inclusion proof in the tree of `size` leaves
/// (the latest signed checkpoint's when `None`); its data only if `caller` may read what it is
/// about.
pub async fn inclusion_proof(
    context: &Context,
    caller: &Caller,
    index: u64,
    size: Option<u64>,
) -> ApiResult<InclusionProof> {
    let caller = caller.clone();
    let (tree_size, latest) =
        context.blocking(|store| Ok((log_size(store)?, latest_checkpoint(store)?.map(|c| c.size)))).await?;
    let size = size.or(latest).unwrap_or(tree_size);
    if size > tree_size {
        return Err(size_out_of_range(size, tree_size));
    }
    if index >= size {
        return Err(ApiError::Unprocessable {
            code: "index_out_of_range",
            message: format!("leaf {index} is not in a tree of {size} leaves"),
            details: Some(serde_json::json!({ "index": index, "size": size })),
        });
    }
    let (leaf, readable, proof) = context
        .blocking(move |store| {
            let Some((leaf, proof)) = log_inclusion(store, index, size)? else {
                return Ok(None);
            };
            // A leaf names a device's officer, a record or a blob: its data goes only to those
            // who may read that; anyone signed in gets the proof, with the leaf's hash.
            let readable = Access::new(store, &caller, crate::service::access::today()?).leaf(&leaf.data)?;
            Ok(Some((leaf, readable, proof)))
        })
        .await?
        .ok_or_else(|| ApiError::Internal(format!("no inclusion proof of {index} in {size} leaves")))?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        leaf_hash: hex::encode(sync_core::merkle::leaf_hash(&leaf.data)),
        leaf: readable.then(|| hex::encode(&leaf.data)),
        proof: hex_hashes(proof),
    })
}

/// The proof that the tree of `from` leaves is a prefix of the tree of `to`.
pub async fn consistency_proof(context: &Context, from: u64, to: u64) -> ApiResult<ConsistencyProof> {
    if from == 0 || from > to {
        return Err(ApiError::Unprocessable {
            code: "invalid_range",
            message: "a consistency proof goes from a size of at least 1 to one at least as large".into(),
            details: Some(serde_json::json!({ "from": from, "to": to })),
        });
    }
    let tree_size = context.blocking(log_size).await?;
    if to > tree_size {
        return Err(size_out_of_range(to, tree_size));
    }
    let proof = context
        .blocking(move |store| log_consistency(store, from, to))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("no consistency proof from {from} to {to}")))?;
    Ok(ConsistencyProof { from, to, proof: hex_hashes(proof) })
}

/// Where a record stands in the transparency log: what of it the log holds, and the checkpoint
/// that covers it.
pub struct RecordInclusion {
    /// How many leaves the log holds now.
    pub log_size: u64,
    /// The latest signed checkpoint: its size and when it was signed.
    pub checkpoint: Option<(u64, i64)>,
    /// The leaf of the record's latest item state (its devices' entries, photos and anchors), if
    /// the log has one, with how many devices and photos it names.
    pub state: Option<(u64, usize, usize)>,
    /// The leaves about the record itself (its signatures and lock), ascending.
    pub record_leaves: Vec<u64>,
}

impl RecordInclusion {
    /// Whether every leaf of the record is below the latest checkpoint's size.
    pub fn covered(&self) -> bool {
        let Some((size, _)) = self.checkpoint else { return false };
        self.state.is_none_or(|(leaf, ..)| leaf < size) && self.record_leaves.iter().all(|leaf| *leaf < size)
    }
}

/// The transparency log's inclusion status of a record the caller may read.
pub async fn record_inclusion(context: &Context, caller: &Caller, record_id: String) -> ApiResult<RecordInclusion> {
    crate::service::records::readable(context, caller, record_id.clone()).await?;
    context
        .blocking(move |store| {
            crate::store::read_log(store, |tx| {
                let log_size = tx.log_size()?;
                let checkpoint = tx.latest_checkpoint()?.map(|c| (c.size, c.signed_at_ms));
                let state = tx
                    .record_state(&record_id, log_size)?
                    .map(|(leaf, items, _)| (leaf, items.devices.len(), items.photos.len()));
                let record_leaves = tx.leaves_about(&format!("record:{record_id}"), log_size)?;
                Ok(RecordInclusion { log_size, checkpoint, state, record_leaves })
            })
        })
        .await
}
