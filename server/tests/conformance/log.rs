//! The transparency log and the devices' chains, through the use cases written over the
//! store's log primitives.

use server::service::transparency;
use server::store::{CheckedEntry, EntryPlacement, Store, append_leaf, read_log, write_log};
use sync_core::checkpoint::Checkpoint;
use sync_core::enforcement_log::{EntryEncoding, GENESIS_PREVIOUS, payload_hash};
use sync_core::merkle::{self, Hash};
use sync_core::transparency::{Leaf, LeafItem};

use super::{Backend, device, officer};

fn blob_leaf(n: u64) -> Leaf {
    Leaf { received_ms: 1_000 + n as i64, item: LeafItem::Blob { sha256: [n as u8; 32], size: n } }
}

fn append(store: &dyn Store, leaf: Leaf) -> u64 {
    write_log(store, move |tx| append_leaf(tx, &leaf)).unwrap()
}

/// Roots and proofs built from the stored subtrees are those built from all the leaves, at every
/// size they are asked for, including sizes the tree has since grown past.
pub fn proofs_from_stored_subtrees_equal_proofs_from_all_leaves(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    assert_eq!(transparency::log_root(store, 0).unwrap(), Some(merkle::empty_root()));
    assert_eq!(transparency::log_inclusion(store, 0, 0).unwrap(), None);
    let mut hashes = Vec::new();
    let check = |hashes: &[Hash], size: u64| {
        let leaves = &hashes[..size as usize];
        assert_eq!(transparency::log_root(store, size).unwrap(), Some(merkle::root(leaves)), "root at {size}");
        for index in 0..size {
            let (leaf, proof) = transparency::log_inclusion(store, index, size).unwrap().unwrap();
            assert_eq!(leaf.data, blob_leaf(index).to_bytes());
            assert_eq!(Some(proof), merkle::inclusion_proof(leaves, index as usize), "leaf {index} of {size}");
        }
        for from in 1..=size {
            assert_eq!(
                transparency::log_consistency(store, from, size).unwrap(),
                merkle::consistency_proof(leaves, from as usize),
                "from {from} to {size}"
            );
        }
    };
    for n in 0..70u64 {
        let leaf = blob_leaf(n);
        hashes.push(leaf.hash());
        assert_eq!(append(store, leaf), n);
        if [1, 2, 3, 7, 8, 13, 32, 33, 64].contains(&(n + 1)) {
            check(&hashes, n + 1);
        }
    }
    for size in [5, 13, 32, 70] {
        check(&hashes, size);
    }
    assert_eq!(transparency::log_size(store).unwrap(), 70);
    assert_eq!(transparency::log_root(store, 71).unwrap(), None, "beyond the log");
    assert_eq!(transparency::log_inclusion(store, 3, 71).unwrap(), None);
    assert_eq!(transparency::log_consistency(store, 3, 71).unwrap(), None);
    let subtrees = read_log(store, |tx| {
        let mut count = 0;
        tx.each_inner_subtree(&mut |_, _, _| count += 1)?;
        Ok(count)
    })
    .unwrap();
    assert!(subtrees < 70, "fewer than two hashes per leaf: {subtrees} above the leaves");
    assert_eq!(transparency::log_check(store).unwrap(), Vec::<String>::new(), "the log checks against itself");
}

pub fn a_checkpoint_is_signed_when_the_tree_grew_and_opens_with_the_logs_key(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    assert!(transparency::checkpoint(store, 1).is_err(), "no key yet");
    let identity = transparency::log_identity(store, "example.org/log", [7; 32], 1).unwrap();
    let again = transparency::log_identity(store, "another.org/log", [8; 32], 2).unwrap();
    assert_eq!(
        (again.origin.as_str(), again.key.map(|k| k.to_bytes())),
        ("example.org/log", Some([7; 32])),
        "made once"
    );
    let empty = transparency::checkpoint(store, 2).unwrap();
    assert_eq!(transparency::checkpoint(store, 3).unwrap(), empty, "the same tree is not signed again");
    for n in 0..5 {
        append(store, blob_leaf(n));
    }
    let grown = transparency::checkpoint(store, 4).unwrap();
    assert_eq!((grown.size, grown.signed_at_ms), (5, 4));
    assert_eq!(transparency::latest_checkpoint(store).unwrap(), Some(grown.clone()));
    let verifiers = [(identity.origin.clone(), identity.public_key)];
    let (text, _) = sync_core::checkpoint::open_note(&grown.note, &verifiers).unwrap();
    let checkpoint = Checkpoint::parse_body(&text).unwrap();
    assert_eq!((checkpoint.size, Some(checkpoint.root)), (5, transparency::log_root(store, 5).unwrap()));
    assert_eq!(transparency::log_check(store).unwrap(), Vec::<String>::new());
}

/// Once the log's secret key leaves the database, its public key stays and nothing signs a
/// checkpoint without the key given from outside, which must be the log's.
pub fn a_log_whose_secret_left_the_database_signs_only_with_its_own_key_given(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    let identity = transparency::log_identity(store, "example.org/log", [7; 32], 1).unwrap();
    write_log(store, |tx| tx.forget_log_secret()).unwrap();
    let after = read_log(store, |tx| tx.log_identity()).unwrap().unwrap();
    assert_eq!((after.public_key, after.key.is_none()), (identity.public_key, true), "the public key stays");
    append(store, blob_leaf(0));
    let refused = transparency::checkpoint(store, 2).unwrap_err().to_string();
    assert!(refused.contains("outside the database"), "{refused}");
    let own = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    assert_eq!(transparency::log_signer(&after, Some(&own)).map(|k| k.to_bytes()), Ok([7; 32]));
    let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    assert!(matches!(
        transparency::log_signer(&after, Some(&other)),
        Err(transparency::LogKeyProblem::Mismatch { .. })
    ));
    assert_eq!(transparency::log_check(store).unwrap(), Vec::<String>::new(), "the log itself is sound");
}

/// Whatever is appended, every earlier tree stays a prefix of every later one, and every signed
/// checkpoint stays the root of the tree at its size.
pub fn the_log_only_grows(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    let identity = transparency::log_identity(store, "example.org/log", [7; 32], 1).unwrap();
    let verifiers = [(identity.origin.clone(), identity.public_key)];
    let mut checkpoints = Vec::new();
    for n in 0..40 {
        append(store, blob_leaf(n));
        if n % 7 == 0 {
            checkpoints.push(transparency::checkpoint(store, n as i64).unwrap());
        }
    }
    let size = transparency::log_size(store).unwrap();
    let root = transparency::log_root(store, size).unwrap().unwrap();
    for earlier in &checkpoints {
        // The root each checkpoint signed, not one recomputed now: a backend that rewrote an
        // old leaf would recompute a root consistent with its rewritten tree.
        let (text, _) = sync_core::checkpoint::open_note(&earlier.note, &verifiers).unwrap();
        let signed = Checkpoint::parse_body(&text).unwrap();
        assert_eq!(signed.size, earlier.size);
        let proof = transparency::log_consistency(store, signed.size, size).unwrap().unwrap();
        assert!(
            merkle::verify_consistency(signed.size, size, &proof, &signed.root, &root).is_ok(),
            "the tree of {} signed then is a prefix of the tree of {size}",
            signed.size
        );
    }
    let sizes: Vec<u64> = checkpoints.iter().map(|c| c.size).collect();
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "checkpoints only grow: {sizes:?}");
    assert_eq!(transparency::log_check(store).unwrap(), Vec::<String>::new());
}

/// A chain of `n` entries of device D1 signed with a fixed key, each with its payload.
fn chain(n: u64) -> Vec<CheckedEntry> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let mut previous = GENESIS_PREVIOUS;
    (1..=n)
        .map(|seq| {
            let payload = format!("entry {seq}").into_bytes();
            let entry = schemas::log::LogEntry {
                device_id: "D1".into(),
                seq,
                previous,
                device_time_ms: 1_790_000_000_000 + seq as i64,
                monotonic_ms: seq,
                boot_id: "boot".into(),
                kind: schemas::log::EntryKind::Arrive,
                record_id: Some("R1".into()),
                payload_hash: payload_hash(&payload),
                seen_checkpoint: None,
            };
            previous = entry.hash();
            CheckedEntry { signed: entry.sign(&key), payload }
        })
        .collect()
}

/// Another entry at `seq` of the chain, with the previous hash the chain has there.
fn other_at(chain: &[CheckedEntry], seq: u64) -> CheckedEntry {
    let mut entry = chain[seq as usize - 1].clone();
    entry.signed.entry.monotonic_ms += 1_000;
    entry
}

fn open(backend: Backend) -> (Box<dyn std::any::Any>, std::sync::Arc<dyn Store>) {
    let (guard, store) = backend();
    transparency::log_identity(store.as_ref(), "example.org/log", [7; 32], 1).unwrap();
    store.create_account(officer("O1"), 1).unwrap();
    store.enroll_device(&device("D1", "O1", 1), 5).unwrap();
    (guard, store)
}

fn held(store: &dyn Store) -> usize {
    read_log(store, |tx| tx.held_count("D1")).unwrap()
}

pub fn entries_extend_wait_for_a_gap_and_join_once_it_is_filled(backend: Backend) {
    let (_guard, store) = open(backend);
    let store = store.as_ref();
    let entries = chain(5);
    let pick = |seqs: &[u64]| seqs.iter().map(|&s| entries[s as usize - 1].clone()).collect::<Vec<_>>();
    let first = transparency::append_log_entries(store, "D1", pick(&[4, 1, 2]), 10, usize::MAX).unwrap();
    assert_eq!(
        first.placements,
        [EntryPlacement::Held, EntryPlacement::Accepted { leaf_index: 1 }, EntryPlacement::Accepted { leaf_index: 3 }],
        "placed in chain order, answered in upload order; each entry followed by its record's state"
    );
    assert_eq!((first.checkpoint.size, first.leaves), (5, 4), "signed at the grown size");
    assert_eq!(held(store), 1);
    let again = transparency::append_log_entries(store, "D1", pick(&[2, 4]), 11, usize::MAX).unwrap();
    assert_eq!(again.placements, [EntryPlacement::Duplicate, EntryPlacement::Held]);
    assert_eq!(again.checkpoint, first.checkpoint, "nothing appended: the checkpoint stays");
    let filled = transparency::append_log_entries(store, "D1", pick(&[3]), 12, usize::MAX).unwrap();
    assert_eq!(filled.placements, [EntryPlacement::Accepted { leaf_index: 5 }]);
    assert_eq!((filled.promoted, filled.leaves, filled.checkpoint.size), (1, 4, 9));
    assert_eq!(held(store), 0, "the held entry joined the chain");
    let log = transparency::record_log(store, "R1", &["O1".into()]).unwrap();
    assert_eq!(log.iter().map(|e| e.signed.entry.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(log[3].received_at_ms, 10, "the promoted entry keeps its own receipt time");
    assert!(transparency::record_log(store, "R1", &["O2".into()]).unwrap().is_empty(), "another officer's");
    assert_eq!(transparency::log_check(store).unwrap(), Vec::<String>::new());
}

pub fn a_conflicting_entry_is_kept_as_a_fork_and_nothing_is_dropped(backend: Backend) {
    let (_guard, store) = open(backend);
    let store = store.as_ref();
    let entries = chain(4);
    transparency::append_log_entries(store, "D1", entries[..2].to_vec(), 10, usize::MAX).unwrap();
    // Another entry at a stored seq, and a held entry that turns out to name another previous.
    let other = other_at(&entries, 2);
    let mut stray = entries[3].clone();
    stray.signed.entry.previous = [9; 32];
    let placed = transparency::append_log_entries(store, "D1", vec![other.clone(), stray], 11, usize::MAX).unwrap();
    assert_eq!(placed.placements, [EntryPlacement::Fork, EntryPlacement::Held]);
    let filled = transparency::append_log_entries(store, "D1", vec![entries[2].clone()], 12, usize::MAX).unwrap();
    assert_eq!(filled.placements, [EntryPlacement::Accepted { leaf_index: 5 }]);
    assert_eq!((filled.promoted, filled.promoted_forks), (0, 1));
    assert_eq!(held(store), 0);
    assert_eq!(transparency::forked_devices(store, "R1", &["O1".into()]).unwrap(), ["D1"]);
    let again = transparency::append_log_entries(store, "D1", vec![other], 13, usize::MAX).unwrap();
    assert_eq!(again.placements, [EntryPlacement::Fork], "a fork sent again stays a fork");
    assert_eq!(transparency::record_log(store, "R1", &["O1".into()]).unwrap().len(), 3, "the chain is untouched");
}

pub fn a_device_holds_a_bounded_number_of_entries(backend: Backend) {
    let (_guard, store) = open(backend);
    let store = store.as_ref();
    let entries = chain(6);
    let placed = transparency::append_log_entries(store, "D1", entries[2..].to_vec(), 10, 2).unwrap();
    assert_eq!(
        placed.placements,
        [EntryPlacement::Held, EntryPlacement::Held, EntryPlacement::TooManyHeld, EntryPlacement::TooManyHeld]
    );
    assert_eq!(held(store), 2, "nothing past the bound is kept");
    let again = transparency::append_log_entries(store, "D1", vec![entries[2].clone()], 11, 2).unwrap();
    assert_eq!(again.placements, [EntryPlacement::Held], "an entry held already is not one more");
}

/// What an evidence package gathers, from any backend: the record, every entry of the team's
/// device from its first naming the record to its newest below the checkpoint, the device with
/// its enrolment leaf, the record's state, and each leaf with a proof that opens at the
/// checkpoint's root.
pub fn an_evidence_package_gathers_the_records_items_with_their_proofs(backend: Backend) {
    let (_guard, store) = open(backend);
    let store = store.as_ref();
    server::service::sync_commit::run_in_writer(
        store,
        Box::new(|tx| {
            tx.put_record("R1", None, b"the document", "draft", 1)?;
            Ok(schemas::SyncResponse {
                protocol: schemas::SYNC_PROTOCOL_VERSION,
                cursor: 0,
                documents: vec![],
                rejections: vec![],
                more: false,
            })
        }),
    )
    .unwrap();
    let mut entries = chain(4);
    // The third entry is about no record: it is still in, between the record's entries.
    entries[2].signed.entry.record_id = None;
    let entries = {
        // Re-chain after the change, so that each entry names its predecessor's hash.
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut previous = GENESIS_PREVIOUS;
        entries
            .into_iter()
            .map(|mut e| {
                e.signed.entry.previous = previous;
                previous = e.signed.entry.hash();
                CheckedEntry { signed: e.signed.entry.sign(&key), payload: e.payload }
            })
            .collect::<Vec<_>>()
    };
    let placed = transparency::append_log_entries(store, "D1", entries, 10, usize::MAX).unwrap();
    assert!(placed.placements.iter().all(|p| matches!(p, EntryPlacement::Accepted { .. })));
    let request = server::store::EvidenceRequest {
        record_id: "R1".into(),
        officers: vec!["O1".into()],
        actor_ids: vec![],
        blobs: vec![],
    };
    let source = server::service::evidence_source::evidence(store, &request).unwrap().unwrap();
    assert_eq!(source.document, b"the document");
    assert_eq!(source.entries.iter().map(|e| e.signed.entry.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(source.devices.len(), 1);
    assert_eq!(source.devices[0].0.device_id, "D1");
    assert!(source.devices[0].1.is_some(), "the device's enrolment leaf");
    let (state_leaf, items) = source.state.clone().expect("the record's state in the log");
    assert_eq!(items.devices.len(), 1, "the state names the one device with entries of the record");
    let root = transparency::log_root(store, source.checkpoint.size).unwrap().unwrap();
    let indexes: Vec<u64> = source.leaves.iter().map(|(leaf, _)| leaf.index).collect();
    assert!(indexes.contains(&state_leaf) && indexes.contains(&source.devices[0].1.unwrap()));
    for entry in &source.entries {
        assert!(indexes.contains(&entry.leaf_index), "entry {} has its leaf", entry.signed.entry.seq);
    }
    for (leaf, proof) in &source.leaves {
        let hash = merkle::leaf_hash(&leaf.data);
        assert!(
            merkle::verify_inclusion(leaf.index, source.checkpoint.size, &hash, proof, &root).is_ok(),
            "leaf {} opens at the checkpoint",
            leaf.index
        );
    }
    assert!(
        server::service::evidence_source::evidence(
            store,
            &server::store::EvidenceRequest { record_id: "R9".into(), ..request }
        )
        .unwrap()
        .is_none(),
        "an unknown record has no package"
    );
}
