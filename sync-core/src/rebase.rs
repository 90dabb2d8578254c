//! Dropping refused changes from a device's working copy of a record.
//!
//! The server refuses some changes (an edit after the record was locked, an officer not on the
//! team) and quarantines them; it never merges them. A device that keeps them in its document
//! never converges with the server again, and every later change it makes depends on a refused
//! one and is refused too. So the device rebuilds its document without them: every change except
//! the refused ones and everything that depends on them, transitively. The dropped changes are
//! returned so the caller can keep them beside the record, with the server's reasons, for the
//! officer to see.
//!
//! An Automerge document cannot forget a change, so the document is rebuilt from the changes
//! kept, with the device's own actor id, so that local editing goes on as the same device. The
//! next local change reuses the sequence number of the first dropped change of that actor; it is
//! a different change (another hash), and the server, which never merged the dropped one, takes
//! it as the next of that actor. Because the rebuilt history is shorter, the device must also
//! forget its sync state for the record ([`crate::session::DeviceSession::forget_record_state`]).

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, AutomergeError, Change, ChangeHash};

/// `doc` without the `refused` changes and every change that depends on them, transitively,
/// with the same actor id; and the changes dropped, in causal order. A hash `doc` does not hold
/// is ignored; when nothing is dropped, the document returned has the same history as `doc`.
pub fn without_changes(doc: &Automerge, refused: &[ChangeHash]) -> Result<(Automerge, Vec<Change>), AutomergeError> {
    let mut dropped: BTreeSet<ChangeHash> =
        refused.iter().filter(|hash| doc.get_change_meta_by_hash(hash).is_some()).copied().collect();
    if dropped.is_empty() {
        return Ok((doc.clone(), Vec::new()));
    }
    let changes = doc.get_changes(&[]);
    // Descendants are found through the reverse dependency graph, so the result does not rest on
    // the order in which Automerge lists changes.
    let mut dependents: BTreeMap<ChangeHash, Vec<ChangeHash>> = BTreeMap::new();
    for change in &changes {
        for dependency in change.deps() {
            dependents.entry(*dependency).or_default().push(change.hash());
        }
    }
    let mut stack: Vec<ChangeHash> = dropped.iter().copied().collect();
    while let Some(hash) = stack.pop() {
        for dependent in dependents.get(&hash).into_iter().flatten() {
            if dropped.insert(*dependent) {
                stack.push(*dependent);
            }
        }
    }
    // Automerge lists a document's changes in the order it applied them: each after its
    // dependencies, which is the causal order.
    let (gone, kept): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|change| dropped.contains(&change.hash()));
    let mut rebuilt = Automerge::new_with_encoding(doc.text_encoding());
    rebuilt.apply_changes(kept)?;
    rebuilt.set_actor(doc.get_actor().clone());
    Ok((rebuilt, gone))
}

#[cfg(test)]
mod tests {
    use automerge::sync::{self, SyncDoc};
    use automerge::{ActorId, ReadDoc};

    use super::*;
    use crate::document::{Edit, RecordDocument, new_record_id, read_record};

    /// 2026-06-01T00:00:00Z.
    const T0: i64 = 1_780_272_000_000;

    fn actor(n: u8) -> ActorId {
        ActorId::from([n; 16])
    }

    /// A record created by actor 1 for task T0001, with its first observations.
    fn record() -> RecordDocument {
        let record_id = new_record_id(T0 as u64, [9; 10]);
        let mut record = RecordDocument::create(&record_id, actor(1), "T0001", T0).unwrap();
        record.apply(Edit::AppendObservations("现场检查。".into()), T0 + 1000).unwrap();
        record
    }

    /// `record` edited as another actor, from the same history.
    fn replica(record: &RecordDocument, n: u8) -> RecordDocument {
        RecordDocument::from_automerge(record.record_id(), record.automerge().clone(), actor(n))
    }

    fn edit(record: &mut RecordDocument, edit: Edit, at_ms: i64) -> ChangeHash {
        record.apply(edit, at_ms).unwrap().expect("the edit changes the record")
    }

    fn hashes(changes: &[Change]) -> Vec<ChangeHash> {
        changes.iter().map(Change::hash).collect()
    }

    fn has(doc: &Automerge, hash: &ChangeHash) -> bool {
        doc.get_change_meta_by_hash(hash).is_some()
    }

    #[test]
    fn dropping_a_leaf_change_leaves_the_history_before_it() {
        let mut record = record();
        let before = record.automerge().get_heads();
        let leaf = edit(&mut record, Edit::SetConclusion("合格".into()), T0 + 2000);
        let (doc, dropped) = without_changes(record.automerge(), &[leaf]).unwrap();
        assert_eq!(hashes(&dropped), [leaf]);
        assert_eq!(doc.get_heads(), before);
        assert_eq!(doc.get_actor(), &actor(1), "local editing goes on as the same device");
        // The next local edit is a new change of the same actor, on the history that was kept.
        let mut record = RecordDocument::from_automerge(record.record_id(), doc, actor(1));
        let next = edit(&mut record, Edit::SetConclusion("不合格".into()), T0 + 3000);
        assert_ne!(next, leaf);
        assert_eq!(record.automerge().get_change_by_hash(&next).unwrap().deps(), before.as_slice());
        assert_eq!(record.read().unwrap().header.conclusion.as_deref(), Some("不合格"));
    }

    #[test]
    fn dropping_a_change_drops_its_descendants_but_keeps_concurrent_siblings() {
        let mut on_a = record();
        let mut on_b = replica(&on_a, 2);
        let refused = edit(&mut on_a, Edit::SetAddress("柳州市鹿寨县通江路749号".into()), T0 + 2000);
        let child = edit(&mut on_a, Edit::AppendObservations("甲补充。".into()), T0 + 3000);
        let sibling = edit(&mut on_b, Edit::SetConclusion("合格".into()), T0 + 2500);
        on_a.automerge_mut().merge(&mut on_b.automerge().clone()).unwrap();
        // A change that depends on the refused one and on the sibling goes too.
        let merge_child = edit(&mut on_a, Edit::AppendObservations("乙已到场。".into()), T0 + 4000);
        assert_eq!(on_a.automerge().get_heads(), [merge_child]);

        let (doc, dropped) = without_changes(on_a.automerge(), &[refused]).unwrap();
        assert_eq!(hashes(&dropped), [refused, child, merge_child], "in causal order");
        assert_eq!(doc.get_heads(), [sibling]);
        assert!(has(&doc, &sibling));
        assert_eq!(doc.get_changes(&[]).len() + dropped.len(), on_a.automerge().get_changes(&[]).len());
        let read = read_record(on_a.record_id(), &doc).unwrap();
        assert_eq!(read.header.conclusion.as_deref(), Some("合格"), "the sibling's edit is kept");
        assert_eq!(read.header.address, None);
        assert_eq!(read.observations, "现场检查。");
    }

    #[test]
    fn dropping_a_change_reads_as_the_record_did_before_it() {
        let record_id = new_record_id(T0 as u64, [9; 10]);
        let mut record = RecordDocument::new(&record_id, actor(1)).unwrap();
        let at_genesis = record.read().unwrap();
        let first = edit(&mut record, Edit::SetAddress("柳州市鹿寨县通江路749号".into()), T0);
        edit(&mut record, Edit::AppendObservations("现场检查。".into()), T0 + 1000);
        let before = record.read().unwrap();
        let refused = edit(&mut record, Edit::SetConclusion("合格".into()), T0 + 2000);
        edit(&mut record, Edit::AppendObservations("补充。".into()), T0 + 3000);

        let mut dropped_last = record.clone();
        assert_eq!(dropped_last.drop_changes(&[refused]).unwrap().len(), 2);
        assert_eq!(dropped_last.read().unwrap(), before);
        assert_eq!(read_record(&record_id, dropped_last.automerge()).unwrap(), before);

        // The device's first change goes with everything after it; the genesis stays.
        let dropped = record.drop_changes(&[first]).unwrap();
        assert_eq!(dropped.len(), 4);
        assert_eq!(record.read().unwrap(), at_genesis);
    }

    #[test]
    fn an_unknown_hash_drops_nothing() {
        let record = record();
        let elsewhere = {
            let mut other = replica(&record, 2);
            edit(&mut other, Edit::SetConclusion("合格".into()), T0 + 2000)
        };
        for refused in [vec![], vec![elsewhere], vec![ChangeHash([7; 32])]] {
            let (doc, dropped) = without_changes(record.automerge(), &refused).unwrap();
            assert!(dropped.is_empty());
            assert_eq!(doc.get_heads(), record.automerge().get_heads());
            assert_eq!(doc.save(), record.save());
            assert_eq!(doc.get_actor(), &actor(1));
        }
    }

    /// Runs Automerge's sync protocol between two documents until neither has anything to say.
    fn sync(a: &mut Automerge, b: &mut Automerge) {
        let (mut state_a, mut state_b) = (sync::State::new(), sync::State::new());
        for _ in 0..20 {
            let to_b = a.generate_sync_message(&mut state_a);
            let to_a = b.generate_sync_message(&mut state_b);
            if to_b.is_none() && to_a.is_none() {
                return;
            }
            if let Some(message) = to_b {
                b.receive_sync_message(&mut state_b, message).unwrap();
            }
            if let Some(message) = to_a {
                a.receive_sync_message(&mut state_a, message).unwrap();
            }
        }
        panic!("the sync did not end");
    }

    #[test]
    fn the_result_merges_cleanly_with_a_peer_that_never_had_the_refused_changes() {
        let mut device = record();
        let mut server = replica(&device, 2);
        edit(&mut server, Edit::SetConclusion("合格".into()), T0 + 2000);
        let refused = edit(&mut device, Edit::SetAddress("柳州市鹿寨县通江路749号".into()), T0 + 2000);
        edit(&mut device, Edit::AppendObservations("补充。".into()), T0 + 3000);
        device.automerge_mut().merge(&mut server.automerge().clone()).unwrap();
        edit(&mut device, Edit::AppendObservations("又补充。".into()), T0 + 4000);

        device.drop_changes(&[refused]).unwrap();
        // The device edits again, as itself, before it talks to the server.
        edit(&mut device, Edit::AppendObservations("重新补充。".into()), T0 + 5000);

        let mut merged = server.automerge().clone();
        merged.merge(&mut device.automerge().clone()).unwrap();
        device.automerge_mut().merge(&mut server.automerge().clone()).unwrap();
        assert_eq!(merged.get_heads(), device.automerge().get_heads());
        assert!(!has(&merged, &refused));

        let (mut on_device, mut on_server) = (device.automerge().clone(), server.automerge().clone());
        sync(&mut on_device, &mut on_server);
        assert_eq!(on_device.get_heads(), on_server.get_heads());
        assert!(!has(&on_server, &refused));
        let read = read_record(device.record_id(), &on_server).unwrap();
        assert_eq!(read.header.conclusion.as_deref(), Some("合格"));
        assert_eq!(read.header.address, None);
        assert_eq!(read.observations, "现场检查。重新补充。");
    }
}
