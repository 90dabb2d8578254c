//! Authorship: every change of the document is vouched for by its author's device key.
//!
//! Automerge changes carry no signature: anyone holding the document can write a change under
//! any actor id. A device's entries of a record sign the record's heads as the device held
//! them (a version 2 payload, `enforcement_log::content_payload`), and a change hash names its
//! whole history, so a change is the device's own exactly when it lies in the history of a head
//! that device signed. A change under a device's actor outside every head that device signed
//! was written by someone else, and fails. A device whose entries sign no heads (written before
//! version 2) proves nothing either way: its changes are listed as unproven. So is the change
//! that locks a record after crossed signatures, which no entry follows.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, ChangeHash};

use super::{DOCUMENT, Verification};
use crate::document::genesis_actor;

/// Checks each change against the heads its device signed: `actors` maps an actor id (bytes)
/// to its device, `signed` each device's signed heads (only devices with version 2 entries),
/// `lock_heads` the heads of the record's logged lock, if any.
pub(super) fn check(
    report: &mut Verification,
    doc: &Automerge,
    record_id: &str,
    actors: &BTreeMap<Vec<u8>, String>,
    signed: &BTreeMap<String, Vec<[u8; 32]>>,
    lock_heads: &[[u8; 32]],
) {
    let changes = doc.get_changes(&[]);
    let deps: BTreeMap<ChangeHash, Vec<ChangeHash>> =
        changes.iter().map(|change| (change.hash(), change.deps().to_vec())).collect();
    // Each device's signed history: every change behind a head it signed.
    let mut covered: BTreeMap<&str, BTreeSet<ChangeHash>> = BTreeMap::new();
    for (device_id, heads) in signed {
        let seen = covered.entry(device_id.as_str()).or_default();
        let mut stack: Vec<ChangeHash> =
            heads.iter().map(|h| ChangeHash(*h)).filter(|h| deps.contains_key(h)).collect();
        while let Some(hash) = stack.pop() {
            if seen.insert(hash) {
                stack.extend(deps.get(&hash).into_iter().flatten().copied());
            }
        }
    }
    let genesis = genesis_actor(record_id);
    let before = report.checks.len();
    let mut unsigned_devices: BTreeSet<&str> = BTreeSet::new();
    let mut proven = 0;
    for change in &changes {
        if *change.actor_id() == genesis {
            continue;
        }
        let Some(device_id) = actors.get(change.actor_id().to_bytes()) else { continue };
        match covered.get(device_id.as_str()) {
            Some(history) if history.contains(&change.hash()) => proven += 1,
            Some(_) if lock_heads.contains(&change.hash().0) => report.unproven.push(format!(
                "change {}: the record's lock by device {device_id}, which signed no heads after it",
                change.hash()
            )),
            Some(_) => report.fail(
                DOCUMENT,
                format!(
                    "change {} is under the actor of device {device_id}, but in no heads that device signed: someone else wrote it",
                    change.hash()
                ),
            ),
            None => {
                unsigned_devices.insert(device_id.as_str());
            }
        }
    }
    for device_id in unsigned_devices {
        report.unproven.push(format!(
            "the changes of device {device_id}: its entries sign no heads of the record (written before content-bound payloads), so its key does not vouch for them"
        ));
    }
    if proven > 0 && report.checks[before..].iter().all(|c| c.holds) {
        report.check(DOCUMENT, true, format!("{proven} changes each in the history of heads their device signed"));
    }
}
