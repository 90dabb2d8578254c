//! What an evidence package of a record holds, gathered in one snapshot of the store against
//! the log's latest signed checkpoint, over the [`LogTx`] primitives; `service::evidence` writes
//! the package from it.
//!
//! It reads, against the latest checkpoint (signed first if the log grew): the document; the
//! team's devices' entries for the record, with each device's chain from its first such entry to
//! its newest in the checkpoint; the devices of those entries and of the document's actors, with
//! their enrolment leaves; the record's signature and lock leaves; the blobs the record and its
//! photo entries name; every such leaf's inclusion proof; and the proofs of each checkpoint the
//! entries name (its last leaf, and its consistency with the package's). Leaves are found by their
//! subject (`device:`, `record:`, `blob:`, see [`crate::store::leaf_subject`]).

use std::collections::BTreeSet;

use sync_core::merkle;

use super::transparency::signed_entry;
use crate::store::{
    EvidenceEntry, EvidenceRequest, EvidenceSource, LogTx, SeenTree, StoreError, StoreResult, StoredTree,
    TransparencyLog, read_log,
};

/// The document; the entries naming the record from devices of `request.officers` (and of every
/// device the record's state in the log names), with each device's chain from its first such
/// entry to its newest entry below the checkpoint; the devices of those entries and of
/// `request.actor_ids`, with their enrolment leaves; the record's signature, lock and state
/// leaves; `request.blobs` and the photos the entries name, with their leaves where stored;
/// every such leaf with its inclusion proof; and each checkpoint the entries name that the log
/// had. `None` if the record is unknown; an error if no checkpoint was ever signed.
pub fn evidence(
    store: &(impl TransparencyLog + ?Sized),
    request: &EvidenceRequest,
) -> StoreResult<Option<EvidenceSource>> {
    read_log(store, |tx| gather(tx, request))
}

fn gather(tx: &dyn LogTx, request: &EvidenceRequest) -> StoreResult<Option<EvidenceSource>> {
    let Some(record) = tx.stored_record(&request.record_id)? else {
        return Ok(None);
    };
    let Some(checkpoint) = tx.latest_checkpoint()? else {
        return Err(StoreError::Other("no checkpoint of the transparency log is signed yet".into()));
    };
    let size = checkpoint.size;
    let tree = StoredTree(tx);
    let mut leaf_indexes: BTreeSet<u64> = BTreeSet::new();

    // The record's entries from the team's devices, and each device's chain between them.
    // The record's state names every device with entries of it: those are all in.
    let state = tx.record_state(&request.record_id, size)?;
    let named: BTreeSet<&str> =
        state.iter().flat_map(|(_, items, _)| items.devices.iter().map(|d| d.device_id.as_str())).collect();
    let mut entries = Vec::new();
    let mut device_ids: BTreeSet<String> = BTreeSet::new();
    for (device_id, officer_id, first) in tx.record_chain_starts(&request.record_id, size)? {
        if !request.officers.contains(&officer_id) && !named.contains(device_id.as_str()) {
            continue;
        }
        // Up to the device's newest entry the checkpoint holds, so that no entry of the record
        // after its last one here can be left out unseen.
        let last = tx.chain_last_seq(&device_id, size)?.unwrap_or(first);
        for row in tx.chain_range(&device_id, first, last)? {
            leaf_indexes.insert(row.leaf_index);
            entries.push(EvidenceEntry {
                signed: signed_entry(&row.entry)?,
                payload: row.payload,
                leaf_index: row.leaf_index,
            });
        }
        device_ids.insert(device_id);
    }

    // The devices: those of the entries and those whose actors wrote the record.
    let mut devices = Vec::new();
    for device in tx.all_devices()? {
        if device_ids.contains(&device.device_id) || request.actor_ids.contains(&device.actor_id) {
            let leaf = tx.leaves_about(&format!("device:{}", device.device_id), size)?.first().copied();
            leaf_indexes.extend(leaf);
            devices.push((device, leaf));
        }
    }

    // The record's signatures and lock, and the blobs it and its entries name.
    leaf_indexes.extend(tx.leaves_about(&format!("record:{}", request.record_id), size)?);
    leaf_indexes.extend(state.as_ref().map(|(index, ..)| *index));
    let mut wanted: BTreeSet<String> = request.blobs.iter().cloned().collect();
    for entry in &entries {
        if entry.signed.entry.record_id.as_deref() == Some(request.record_id.as_str())
            && let schemas::log::EntryKind::PhotoTaken { sha256 } = &entry.signed.entry.kind
        {
            wanted.insert(sha256.clone());
        }
    }
    let mut blobs = Vec::new();
    for sha256 in &wanted {
        let stored = match tx.stored_blob(sha256)? {
            Some(blob) => tx.leaves_about(&format!("blob:{sha256}"), size)?.first().map(|leaf| (blob, *leaf)),
            None => None,
        };
        if let Some((_, leaf)) = &stored {
            leaf_indexes.insert(*leaf);
        }
        blobs.push((sha256.clone(), stored));
    }

    let mut leaves = Vec::new();
    for index in leaf_indexes {
        let leaf = tx.leaf(index)?.ok_or_else(|| StoreError::Other(format!("leaf {index} is missing")))?;
        let proof = merkle::inclusion_proof_of(&tree, size, index)?
            .ok_or_else(|| StoreError::Other(format!("leaf {index} is not below {size}")))?;
        leaves.push((leaf, proof));
    }

    // Each checkpoint the entries name that the log really had: its last leaf, proven.
    let mut seen = Vec::new();
    let named: BTreeSet<(u64, [u8; 32])> = entries
        .iter()
        .filter_map(|e| e.signed.entry.seen_checkpoint)
        .filter(|c| c.size >= 1 && c.size <= size)
        .map(|c| (c.size, c.root))
        .collect();
    for (seen_size, root) in named {
        if merkle::root_of(&tree, seen_size)? != root {
            continue;
        }
        let last =
            tx.leaf(seen_size - 1)?.ok_or_else(|| StoreError::Other(format!("leaf {} is missing", seen_size - 1)))?;
        let inclusion = merkle::inclusion_proof_of(&tree, seen_size, seen_size - 1)?.unwrap_or_default();
        let consistency = merkle::consistency_proof_of(&tree, size, seen_size)?.unwrap_or_default();
        seen.push(SeenTree { size: seen_size, root, last, inclusion, consistency });
    }
    let state = state.map(|(index, items, _)| (index, items));
    Ok(Some(EvidenceSource { document: record.document, checkpoint, devices, entries, blobs, leaves, seen, state }))
}
