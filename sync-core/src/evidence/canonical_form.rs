//! One canonical package: the encodings the verifier refuses even when they say the same thing.
//!
//! A package is evidence by its bytes (its SHA-256 is what a court's file cites), so each
//! record must have exactly one package per checkpoint and export time. Beyond the archive's
//! own form and the JSON members' pretty encoding ([`super::canonical`]), that needs: hex in
//! lowercase, every list in its one order, the members in their one order, the document as
//! Automerge's uncompressed save of itself, and an export time no earlier than the log's last
//! leaf in the package. [`super::write_package`] writes that form whatever order its caller
//! gives; these checks refuse any other and blame the member whose bytes differ.

use schemas::evidence::{PackageBlob, PackageDevice, PackageEntry, PackageProofs};

use super::{BLOBS, CHECKPOINT, DEVICES, DOCUMENT, ENTRIES, LOG_KEY, PROOFS, RECORD, STATE};

/// Whether `text` is hex in the one accepted case.
pub(super) fn lowercase_hex(text: &str) -> bool {
    text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The rank of a member in the archive's one order; blobs come in ascending hash order, and a
/// member outside the format (refused on its own) after the rest.
fn rank(path: &str) -> usize {
    let fixed = [CHECKPOINT, LOG_KEY, DOCUMENT, RECORD, DEVICES, ENTRIES, STATE, BLOBS].iter().position(|f| *f == path);
    match fixed {
        Some(rank) => rank,
        None if path.starts_with("blobs/") => 8,
        None if path == PROOFS => 9,
        None => 10,
    }
}

/// The members in their canonical order.
pub(super) fn member_order<'a>(paths: &[&'a str]) -> Vec<&'a str> {
    let mut ordered = paths.to_vec();
    ordered.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    ordered
}

/// Sorts the lists of a package's members into their one order (what the writer does).
pub(super) fn sort_lists(
    devices: &mut [PackageDevice],
    entries: &mut [PackageEntry],
    blobs: &mut [(PackageBlob, Option<Vec<u8>>)],
    proofs: &mut PackageProofs,
) {
    devices.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    entries.sort_by(|a, b| {
        (&a.signed.entry.device_id, a.signed.entry.seq).cmp(&(&b.signed.entry.device_id, b.signed.entry.seq))
    });
    blobs.sort_by(|(a, _), (b, _)| a.sha256.cmp(&b.sha256));
    proofs.leaves.sort_by_key(|leaf| leaf.index);
    proofs.seen_checkpoints.sort_by_key(|seen| seen.size);
}

fn strictly_ascending<T: Ord>(keys: impl Iterator<Item = T>) -> bool {
    let keys: Vec<T> = keys.collect();
    keys.windows(2).all(|w| w[0] < w[1])
}

/// What is not canonical in `devices.json`.
pub(super) fn devices_problem(devices: &[PackageDevice]) -> Option<String> {
    if !strictly_ascending(devices.iter().map(|d| &d.device_id)) {
        return Some("devices are not in ascending order of device id, each once".into());
    }
    devices
        .iter()
        .find(|d| !lowercase_hex(&d.public_key) || !lowercase_hex(&d.actor_id))
        .map(|d| format!("device {}: its key or actor id is not lowercase hex", d.device_id))
}

/// What is not canonical in `log/entries.json` (hex inside entries is re-encoded lowercase by
/// the JSON check).
pub(super) fn entries_problem(entries: &[PackageEntry]) -> Option<String> {
    let ordered = strictly_ascending(entries.iter().map(|e| (&e.signed.entry.device_id, e.signed.entry.seq)));
    (!ordered).then(|| "entries are not in ascending order of device id and seq, each once".into())
}

/// What is not canonical in `blobs.json`.
pub(super) fn blobs_problem(blobs: &[PackageBlob]) -> Option<String> {
    if let Some(blob) = blobs.iter().find(|b| !lowercase_hex(&b.sha256)) {
        return Some(format!("blob {:?}: its SHA-256 is not lowercase hex", blob.sha256));
    }
    (!strictly_ascending(blobs.iter().map(|b| &b.sha256)))
        .then(|| "blobs are not in ascending order of SHA-256, each once".into())
}

/// What is not canonical in `proofs.json`.
pub(super) fn proofs_problem(proofs: &PackageProofs) -> Option<String> {
    for leaf in &proofs.leaves {
        if !lowercase_hex(&leaf.leaf) || !leaf.proof.iter().all(|h| lowercase_hex(h)) {
            return Some(format!("leaf {}: not lowercase hex", leaf.index));
        }
    }
    for seen in &proofs.seen_checkpoints {
        let hexes = [&seen.root, &seen.last_leaf].into_iter().chain(&seen.inclusion).chain(&seen.consistency);
        if !hexes.into_iter().all(|h| lowercase_hex(h)) {
            return Some(format!("seen checkpoint of size {}: not lowercase hex", seen.size));
        }
    }
    if !strictly_ascending(proofs.leaves.iter().map(|l| l.index)) {
        return Some("leaves are not in ascending order of index, each once".into());
    }
    (!strictly_ascending(proofs.seen_checkpoints.iter().map(|s| s.size)))
        .then(|| "seen checkpoints are not in ascending order of size, each once".into())
}
