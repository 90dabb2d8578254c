//! Completeness: a package must hold every item the log says belongs to its record.
//!
//! Each entry, signature and lock of a record is followed in the log by a record-state leaf
//! (`transparency`, item code 6) that binds the record's items so far. The package carries the
//! latest such state in its checkpoint (`record/state.json`); this check holds the package to
//! it in both directions. An item the state names that the package lacks fails and is named (a
//! device's last entries, a whole chain, a signature, a photo): leaving something out is how a
//! package lies without changing a byte of what it keeps. An item of the record the package
//! holds that the state does not name means the state is not the latest, and fails too.

use std::collections::{BTreeMap, BTreeSet};

use schemas::evidence::{Manifest, PackageRecordState};

use super::{BLOBS, DEVICES, ENTRIES, PROOFS, STATE, Verification, canonical};
use crate::transparency::{Leaf, LeafItem, record_items_hash};

/// Per device, the package's entries of the record: seq to (entry hash, leaf index).
pub(super) type RecordChains = BTreeMap<String, BTreeMap<u64, ([u8; 32], u64)>>;

/// Checks the package's items against the record's state; returns the heads the state names
/// (those of the record's latest signature or lock) when the state holds.
pub(super) fn check(
    report: &mut Verification,
    manifest: &Manifest,
    state: Option<&[u8]>,
    leaves: &BTreeMap<u64, Leaf>,
    chains: &RecordChains,
    blobs_listed: &BTreeSet<String>,
    devices: BTreeSet<&str>,
) -> Option<Vec<[u8; 32]>> {
    let record_id = manifest.record_id.as_str();
    let Some(bytes) = state else {
        report.fail(STATE, "missing: nothing proves the package holds every item of the record");
        return None;
    };
    let state = match canonical::<PackageRecordState>(bytes) {
        Ok(state) => state,
        Err(problem) => {
            report.fail(STATE, problem);
            return None;
        }
    };
    let before = report.checks.len();
    let index = state.leaf_index;
    let items = &state.items;
    let heads = match (leaves.get(&index), record_items_hash(record_id, items)) {
        (_, Err(e)) => {
            report.fail(STATE, e.to_string());
            return None;
        }
        (Some(Leaf { item: LeafItem::RecordState { record_id: r, heads, items_hash }, .. }), Ok(hash))
            if r == record_id && *items_hash == hash =>
        {
            heads.clone()
        }
        (Some(Leaf { item: LeafItem::RecordState { .. }, .. }), Ok(_)) => {
            report.fail(STATE, format!("is not the state of record {record_id} at leaf {index}"));
            return None;
        }
        _ => {
            report.fail(STATE, format!("leaf {index}, the record's state, is not a proven record-state leaf"));
            return None;
        }
    };

    // Each device's entries of the record: all of them, up to the one the state names last.
    for device in &items.devices {
        let name = &device.device_id;
        if !devices.contains(name.as_str()) {
            report
                .fail(DEVICES, format!("missing: device {name}, which wrote {} entries of the record", device.entries));
        }
        let held = chains.get(name);
        let seqs: Vec<u64> = held.map(|chain| chain.keys().copied().collect()).unwrap_or_default();
        match held.and_then(|chain| chain.get(&device.last_seq)) {
            None if seqs.is_empty() => report.fail(
                ENTRIES,
                format!(
                    "missing: all {} entries of device {name} for the record (seq {} to {})",
                    device.entries, device.first_seq, device.last_seq
                ),
            ),
            None => report.fail(
                ENTRIES,
                format!(
                    "missing: entries of device {name} for the record up to seq {} (the package ends at seq {})",
                    device.last_seq,
                    seqs.last().expect("not empty")
                ),
            ),
            Some((hash, _)) if hex::encode(hash) != device.last_entry_hash => {
                report.fail(ENTRIES, format!("entry {} of device {name} is not the one the state names", device.last_seq))
            }
            Some(_) if seqs.first() != Some(&device.first_seq) || seqs.len() as u64 != device.entries => report.fail(
                ENTRIES,
                format!(
                    "missing: entries of device {name} for the record: the state names {} from seq {}, the package holds {} from seq {}",
                    device.entries,
                    device.first_seq,
                    seqs.len(),
                    seqs.first().expect("not empty")
                ),
            ),
            Some(_) => {}
        }
        if let Some(later) = seqs.iter().find(|seq| **seq > device.last_seq) {
            report.fail(STATE, format!("is not the record's latest: entry {later} of device {name} follows it"));
        }
    }
    for (device_id, chain) in chains {
        if !items.devices.iter().any(|d| d.device_id == *device_id) {
            report.fail(STATE, format!("is not the record's latest: it names no entry of device {device_id}"));
        }
        if let Some((seq, _)) = chain.iter().find(|(_, (_, leaf))| *leaf > index) {
            report.fail(STATE, format!("is not the record's latest: entry {seq} of device {device_id} follows it"));
        }
    }

    // The photos its entries took, each listed (by hash at least).
    for photo in &items.photos {
        if !blobs_listed.contains(photo) {
            report.fail(BLOBS, format!("missing: photo {photo}, which an entry of the record took"));
        }
    }

    // The record's signatures and lock: each proven, and none the state does not name.
    for anchor in &items.anchors {
        let proven = matches!(leaves.get(anchor), Some(Leaf { item: LeafItem::RecordSigned { record_id: r, .. } | LeafItem::RecordLocked { record_id: r, .. }, .. }) if r == record_id);
        if !proven || *anchor > index {
            let what = if proven { "follows the state" } else { "is missing" };
            report.fail(PROOFS, format!("missing: the signature or lock of the record at leaf {anchor} {what}"));
        }
    }
    for (at, leaf) in leaves {
        let anchor = matches!(&leaf.item, LeafItem::RecordSigned { record_id: r, .. } | LeafItem::RecordLocked { record_id: r, .. } if r == record_id);
        if anchor && !items.anchors.contains(at) {
            report.fail(STATE, format!("is not the record's latest: the signature or lock at leaf {at} follows it"));
        }
    }

    let holds = report.checks[before..].iter().all(|c| c.holds);
    if holds {
        let entries: u64 = items.devices.iter().map(|d| d.entries).sum();
        report.check(
            STATE,
            true,
            format!(
                "the record's state at leaf {index}: the package holds all its {entries} entries from {} devices, {} photos and {} signatures or locks",
                items.devices.len(),
                items.photos.len(),
                items.anchors.len()
            ),
        );
    }
    Some(heads)
}
