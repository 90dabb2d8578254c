//! Evidence packages: a package built the way the server builds one verifies offline, and a
//! change to any single byte of it fails and names the member the byte belongs to.

use std::collections::BTreeSet;

use automerge::{ActorId, ReadDoc};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use schemas::evidence::{
    LeafProof, PackageBlob, PackageDevice, PackageEntry, PackageProofs, PackageRecordState, RecordItems,
    SeenCheckpointProof,
};
use schemas::log::{EntryKind, LogEntry, SeenCheckpoint, SignedEntry};
use schemas::{Certificate, EntityRef};
use sha2::{Digest, Sha256};
use sync_core::checkpoint::{Checkpoint, sign_note, verifier_key};
use sync_core::document::Edit;
use sync_core::enforcement_log::{EntryEncoding, GENESIS_PREVIOUS, content_payload, payload_hash};
use sync_core::evidence::{
    ARCHIVE_END, BLOBS, CHECKPOINT, DEVICES, DOCUMENT, ENTRIES, KeyTrust, LOG_KEY, MANIFEST, PROOFS, PackageContents,
    RECORD, STATE, TrustedBy, verify_package, write_package,
};
use sync_core::merkle::{SubtreeCache, consistency_proof_of, inclusion_proof_of, root_of};
use sync_core::sample::{SampleInspection, inspection_record};
use sync_core::transparency::{Leaf, LeafItem, add_anchor, add_entry, record_items_hash};

const T0: i64 = 1_790_000_000_000;
const ORIGIN: &str = "fieldsync.test/transparency-log";
const SKEW: i64 = 60_000;
const RECORD_ID: &str = "0190f2a4-7c1e-7000-8000-0000000000e1";

/// The server's transparency log, in memory, with the record's items as the server keeps them.
#[derive(Default)]
struct Log {
    leaves: Vec<Vec<u8>>,
    tree: SubtreeCache,
    items: RecordItems,
    heads: Vec<[u8; 32]>,
    state: Option<u64>,
}

impl Log {
    /// Appends the record's next state after an item joined it, as the store does.
    fn append_state(&mut self, received_ms: i64) {
        let items_hash = record_items_hash(RECORD_ID, &self.items).unwrap();
        let item = LeafItem::RecordState { record_id: RECORD_ID.into(), heads: self.heads.clone(), items_hash };
        self.state = Some(self.append(received_ms, item));
    }

    fn append(&mut self, received_ms: i64, item: LeafItem) -> u64 {
        let leaf = Leaf { received_ms, item };
        self.tree.push(leaf.hash());
        self.leaves.push(leaf.to_bytes());
        self.leaves.len() as u64 - 1
    }

    fn root(&self, size: u64) -> [u8; 32] {
        let Ok(root) = root_of(&self.tree, size);
        root
    }

    fn proof(&self, index: u64, size: u64) -> LeafProof {
        let Ok(proof) = inclusion_proof_of(&self.tree, size, index);
        let proof = proof.expect("the index is in the tree");
        LeafProof {
            index,
            leaf: hex::encode(&self.leaves[index as usize]),
            proof: proof.iter().map(hex::encode).collect(),
        }
    }
}

struct Phone {
    device_id: String,
    officer_id: String,
    key: SigningKey,
    actor: ActorId,
    chain: Vec<(SignedEntry, Vec<u8>)>,
}

impl Phone {
    fn new(n: u8, officer_id: &str) -> Self {
        Phone {
            device_id: format!("device-{n}"),
            officer_id: officer_id.into(),
            key: SigningKey::from_bytes(&[n; 32]),
            actor: ActorId::from([n; 16]),
            chain: Vec::new(),
        }
    }

    fn append(&mut self, at_ms: i64, kind: EntryKind, record_id: &str, payload: &[u8], seen: Option<SeenCheckpoint>) {
        let previous = self.chain.last().map_or(GENESIS_PREVIOUS, |(s, _)| s.entry.hash());
        let entry = LogEntry {
            device_id: self.device_id.clone(),
            seq: self.chain.len() as u64 + 1,
            previous,
            device_time_ms: at_ms,
            monotonic_ms: (at_ms - T0) as u64 + 5_000,
            boot_id: "boot-1".into(),
            kind,
            record_id: Some(record_id.into()),
            payload_hash: payload_hash(payload),
            seen_checkpoint: seen,
        };
        self.chain.push((entry.sign(&self.key), payload.to_vec()));
    }
}

fn certificate(officer_id: &str, number: &str) -> Certificate {
    Certificate {
        number: number.into(),
        officer_id: officer_id.into(),
        issuing_authority: "市生态环境局".into(),
        valid_from_ms: T0 - 86_400_000 * 365,
        valid_until_ms: T0 + 86_400_000 * 365,
        status_history: vec![],
        periods: vec![],
        reviews: vec![],
    }
}

/// A signed and locked record of two officers on two phones, their chains with a seal under a
/// running recording, one photo stored and five only referenced, and `last_claim_ms` as the
/// claimed time of the last entry; built as the server would.
fn contents_with(last_claim_ms: i64) -> (PackageContents, String) {
    contents_with_exif(last_claim_ms, None)
}

/// As [`contents_with`], with the stored photo's EXIF time as the server read it.
fn contents_with_exif(last_claim_ms: i64, exif_taken_at: Option<&str>) -> (PackageContents, String) {
    let server_key = SigningKey::from_bytes(&[42; 32]);
    let log_key = verifier_key(ORIGIN, &server_key.verifying_key()).unwrap();
    let mut log = Log::default();
    let mut a = Phone::new(1, "O001");
    let mut b = Phone::new(2, "O002");
    let mut devices = Vec::new();
    for phone in [&a, &b] {
        let leaf_index = log.append(
            T0,
            LeafItem::DeviceEnrolled {
                device_id: phone.device_id.clone(),
                officer_id: phone.officer_id.clone(),
                public_key: phone.key.verifying_key().to_bytes(),
                actor_id: phone.actor.to_bytes().to_vec(),
            },
        );
        devices.push(PackageDevice {
            device_id: phone.device_id.clone(),
            officer_id: phone.officer_id.clone(),
            public_key: hex::encode(phone.key.verifying_key().to_bytes()),
            actor_id: phone.actor.to_hex_string(),
            leaf_index: Some(leaf_index),
        });
    }
    let seen = SeenCheckpoint { size: 2, root: log.root(2) };

    let checklist = vec!["HP-01".to_string(), "HP-02".to_string()];
    let mut record = inspection_record(&SampleInspection {
        record_id: RECORD_ID,
        task_id: "T0001",
        actor: a.actor.clone(),
        started_at_ms: T0 + 1_000,
        entity: EntityRef {
            entity_id: Some("E00001".into()),
            name: Some("柳州市泰信汽车零部件有限责任公司".into()),
            credit_code: Some("91450223416G3QBX69".into()),
            legal_representative: Some("蒙静军".into()),
            discharge_permit: Some("91450223416G3QBX69001X".into()),
            tier: Some("key".into()),
        },
        address: "示例市工业园区1号",
        latitude: 24.3,
        longitude: 109.4,
        officers: [("O001", "张三", "GX0001"), ("O002", "李四", "GX0002")],
        checklist: &checklist,
        photo_seed: 7,
    })
    .unwrap();
    let photo = b"\xff\xd8\xff\xe0 a photo of the outfall \xff\xd9".to_vec();
    let photo_sha = hex::encode(Sha256::digest(&photo));
    record.apply(Edit::AddPhoto { sha256: photo_sha.clone(), caption: "排污口".into() }, T0 + 400_000).unwrap();
    let blob_leaf =
        log.append(T0 + 500_000, LeafItem::Blob { sha256: Sha256::digest(&photo).into(), size: photo.len() as u64 });

    let t = T0 + 2_000;
    // Device 1 holds the record and signs its heads in each entry (content-bound payloads);
    // device 2 writes notes alone, as devices did before.
    let held: Vec<[u8; 32]> = record.automerge().get_heads().iter().map(|h| h.0).collect();
    let bound = |note: &[u8]| content_payload(&held, note);
    a.append(t, EntryKind::Arrive, RECORD_ID, &bound(b""), Some(seen));
    a.append(
        t + 1_000,
        EntryKind::CertificatesShown { officer_ids: vec!["O001".into(), "O002".into()] },
        RECORD_ID,
        &bound(b""),
        Some(seen),
    );
    a.append(t + 2_000, EntryKind::RecordingStarted, RECORD_ID, &bound("执法记录仪开始录像".as_bytes()), Some(seen));
    a.append(t + 3_000, EntryKind::PhotoTaken { sha256: photo_sha.clone() }, RECORD_ID, &bound(b""), Some(seen));
    a.append(t + 4_000, EntryKind::SealOrSeizure, RECORD_ID, &bound("查封废水处理设备一套".as_bytes()), Some(seen));
    a.append(t + 5_000, EntryKind::RecordingStopped { reason: "检查结束".into() }, RECORD_ID, &bound(b""), Some(seen));
    b.append(t + 500, EntryKind::Arrive, RECORD_ID, b"", None);
    b.append(t + 900, EntryKind::PartyQuestioned, "0190f2a4-7c1e-7000-8000-0000000000ff", "另一记录".as_bytes(), None);
    b.append(last_claim_ms, EntryKind::Left, RECORD_ID, b"", None);

    let mut entries = Vec::new();
    for (phone, received) in [(&a, T0 + 600_000), (&b, T0 + 600_000)] {
        for (signed, payload) in &phone.chain {
            let leaf_index = log.append(
                received,
                LeafItem::LogEntry {
                    device_id: phone.device_id.clone(),
                    seq: signed.entry.seq,
                    entry_hash: signed.entry.hash(),
                },
            );
            let ours = signed.entry.record_id.as_deref() == Some(RECORD_ID);
            if ours {
                let photo = match &signed.entry.kind {
                    EntryKind::PhotoTaken { sha256 } => Some(sha256.as_str()),
                    _ => None,
                };
                add_entry(&mut log.items, &phone.device_id, signed.entry.seq, &signed.entry.hash(), photo);
                log.append_state(received);
            }
            entries.push(PackageEntry {
                signed: signed.clone(),
                payload: ours.then(|| STANDARD.encode(payload)),
                leaf_index,
            });
        }
    }

    let certificates = [certificate("O001", "GX0001"), certificate("O002", "GX0002")];
    for (officer, at) in [("O001", T0 + 700_000), ("O002", T0 + 710_000)] {
        record.sign(officer, at, &certificates).unwrap();
        let doc = record.automerge();
        let signatures = doc.get(automerge::ROOT, "signatures").unwrap().unwrap().1;
        let signature = doc.get(&signatures, officer).unwrap().unwrap().0.into_string().unwrap();
        let heads = doc.get_heads().iter().map(|h| h.0).collect::<Vec<_>>();
        let signed = log.append(
            at + 1_000,
            LeafItem::RecordSigned {
                record_id: RECORD_ID.into(),
                officer_id: officer.into(),
                signature,
                heads: heads.clone(),
            },
        );
        log.heads = heads.clone();
        add_anchor(&mut log.items, signed);
        log.append_state(at + 1_000);
        if officer == "O002" {
            let locked = log.append(at + 1_000, LeafItem::RecordLocked { record_id: RECORD_ID.into(), heads });
            add_anchor(&mut log.items, locked);
            log.append_state(at + 1_000);
        }
    }

    // Device 1 made both signatures' changes and the lock: its next entry signs those heads.
    let held: Vec<[u8; 32]> = record.automerge().get_heads().iter().map(|h| h.0).collect();
    let signed_at = T0 + 720_000;
    a.append(
        signed_at,
        EntryKind::Signed { officer_id: "O001".into() },
        RECORD_ID,
        &content_payload(&held, b""),
        Some(seen),
    );
    let (signed, payload) = a.chain.last().unwrap().clone();
    let entry_hash = signed.entry.hash();
    let leaf_index = log.append(
        signed_at + 1_000,
        LeafItem::LogEntry { device_id: a.device_id.clone(), seq: signed.entry.seq, entry_hash },
    );
    add_entry(&mut log.items, &a.device_id, signed.entry.seq, &entry_hash, None);
    log.append_state(signed_at + 1_000);
    entries.push(PackageEntry { signed, payload: Some(STANDARD.encode(payload)), leaf_index });

    let size = log.leaves.len() as u64;
    let checkpoint = Checkpoint { origin: ORIGIN.into(), size, root: log.root(size) };
    let note = sign_note(&checkpoint.body(), ORIGIN, &server_key).unwrap();
    let Ok(consistency) = consistency_proof_of(&log.tree, size, 2);
    let Ok(inclusion) = inclusion_proof_of(&log.tree, 2, 1);
    let (consistency, inclusion) = (consistency.unwrap(), inclusion.unwrap());
    // Every leaf but the record's earlier states, as the server exports.
    let leaves: Vec<LeafProof> = (0..size)
        .filter(|index| {
            let leaf = Leaf::from_bytes(&log.leaves[*index as usize]).unwrap();
            !matches!(leaf.item, LeafItem::RecordState { .. }) || Some(*index) == log.state
        })
        .map(|index| log.proof(index, size))
        .collect();
    let mut blobs: Vec<(PackageBlob, Option<Vec<u8>>)> = record
        .read()
        .unwrap()
        .photos
        .iter()
        .filter(|p| p.sha256 != photo_sha)
        .map(|p| (PackageBlob { sha256: p.sha256.clone(), size: None, leaf_index: None, exif_taken_at: None }, None))
        .collect();
    blobs.push((
        PackageBlob {
            sha256: photo_sha.clone(),
            size: Some(photo.len() as u64),
            leaf_index: Some(blob_leaf),
            exif_taken_at: exif_taken_at.map(str::to_string),
        },
        Some(photo.clone()),
    ));
    let contents = PackageContents {
        record_id: RECORD_ID.into(),
        exported_at_ms: T0 + 900_000,
        checkpoint_note: note,
        log_key: log_key.clone(),
        document: record.save(),
        devices,
        entries,
        blobs,
        state: Some(PackageRecordState { leaf_index: log.state.unwrap(), items: log.items.clone() }),
        proofs: PackageProofs {
            tree_size: size,
            leaves,
            seen_checkpoints: vec![SeenCheckpointProof {
                size: 2,
                root: hex::encode(log.root(2)),
                last_leaf: hex::encode(&log.leaves[1]),
                inclusion: inclusion.iter().map(hex::encode).collect(),
                consistency: consistency.iter().map(hex::encode).collect(),
            }],
        },
    };
    (contents, log_key)
}

fn package_with(last_claim_ms: i64) -> (Vec<u8>, String) {
    let (contents, key) = contents_with(last_claim_ms);
    (write_package(&contents).unwrap(), key)
}

fn package() -> (Vec<u8>, String) {
    package_with(T0 + 8_000)
}

#[test]
fn a_package_verifies_offline_item_by_item() {
    let (package, key) = package();
    let report = verify_package(&package, KeyTrust::Published(&key), SKEW);
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.holds).collect();
    assert!(report.holds(), "{failed:#?}");
    let checked: BTreeSet<&str> = report.checks.iter().map(|c| c.item.as_str()).collect();
    for item in [MANIFEST, CHECKPOINT, LOG_KEY, DOCUMENT, RECORD, DEVICES, ENTRIES, STATE, BLOBS, PROOFS] {
        assert!(checked.contains(item), "{item} was not checked");
    }
    // The record's entries: A's seven and B's two; B's entry of another record is only a link.
    assert_eq!(report.intervals.len(), 9);
    assert!(report.intervals.iter().all(|(_, _, i)| !i.claim_outside));
    // A's entries name the checkpoint of size 2, whose last leaf was received at T0.
    assert!(report.intervals.iter().filter(|(d, ..)| d == "device-1").all(|(_, _, i)| i.not_before_ms == Some(T0)));
    // The seal happened under a running recording, certificates were shown: nothing to find.
    assert_eq!(report.findings, vec![]);
    // The five photos the server never received are said to be unproven, not to hold.
    assert_eq!(report.unproven.len(), 5, "{:?}", report.unproven);
    // Every change of device 1 lies in the history of heads its entries signed.
    assert!(
        report.checks.iter().any(|c| c.item == DOCUMENT && c.holds && c.detail.contains("heads their device signed")),
        "{:#?}",
        report.checks
    );
    assert_eq!(report.trusted_by, Some(TrustedBy::PublishedKey));
    // Told to trust the package's own key, the verdict names that key and how it was trusted.
    let untrusted = verify_package(&package, KeyTrust::PackageKey, SKEW);
    assert!(untrusted.holds());
    assert_eq!(untrusted.log_key.as_deref(), Some(key.as_str()));
    assert_eq!(untrusted.trusted_by, Some(TrustedBy::PackageKey));
}

#[test]
fn a_claimed_time_after_the_server_received_the_entry_is_flagged() {
    let (package, key) = package_with(T0 + 3_600_000);
    let report = verify_package(&package, KeyTrust::Published(&key), SKEW);
    assert!(report.holds());
    let flagged: Vec<_> = report.intervals.iter().filter(|(_, _, i)| i.claim_outside).collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!((flagged[0].0.as_str(), flagged[0].1), ("device-2", 3));
}

#[test]
fn another_log_key_than_the_trusted_one_fails() {
    let (package, _) = package();
    let other = verifier_key(ORIGIN, &SigningKey::from_bytes(&[43; 32]).verifying_key()).unwrap();
    let report = verify_package(&package, KeyTrust::Published(&other), SKEW);
    assert!(!report.holds());
    assert!(report.failed_items().contains(LOG_KEY));
}

#[test]
fn truncated_and_empty_packages_fail() {
    let (package, key) = package();
    for cut in [0, 100, 512, package.len() / 2, package.len() - 1024, package.len() - 1] {
        let report = verify_package(&package[..cut], KeyTrust::Published(&key), SKEW);
        assert!(!report.holds(), "cut at {cut}");
        assert!(!report.failed_items().is_empty());
    }
}

/// The members of a package: path, first byte of its header, end of its padded data.
fn layout(package: &[u8]) -> Vec<(String, usize, usize)> {
    let mut archive = tar::Archive::new(package);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let start = entry.raw_header_position() as usize;
        let end = entry.raw_file_position() as usize + (entry.size() as usize).div_ceil(512) * 512;
        out.push((path, start, end));
    }
    out
}

/// Every member, each part of it (header fields, data, padding) and the end of the archive:
/// one byte changed makes the package fail, and the failure names the member of that byte.
/// About 1,500 bytes spread over every member; `FIELDSYNC_EVERY_BYTE=1` changes every byte of
/// the package, one at a time (a longer run).
#[test]
fn changing_any_single_byte_fails_and_names_its_member() {
    let (package, key) = package();
    let members = layout(&package);
    assert!(members.iter().any(|(p, ..)| p.starts_with("blobs/")));
    let mut positions: Vec<(usize, String)> = Vec::new();
    let every_byte = std::env::var("FIELDSYNC_EVERY_BYTE").is_ok_and(|v| v == "1");
    for (path, start, end) in &members {
        if every_byte {
            positions.extend((*start..*end).map(|o| (o, path.clone())));
            continue;
        }
        let data = start + 512;
        let mut offsets: BTreeSet<usize> = (*start..data).step_by(13).collect();
        offsets.extend([start + 100, start + 124, start + 136, start + 148, start + 155, start + 257]);
        let length = end - data;
        let step = (length / 96).max(1);
        offsets.extend((data..*end).step_by(step));
        offsets.extend(data..(data + 8).min(*end));
        offsets.extend(end.saturating_sub(8).max(data)..*end);
        positions.extend(offsets.into_iter().map(|o| (o, path.clone())));
    }
    let archive_end = members.last().unwrap().2;
    let step = if every_byte { 1 } else { 97 };
    positions.extend((archive_end..package.len()).step_by(step).map(|o| (o, ARCHIVE_END.to_string())));
    assert!(positions.len() > 1_000, "{} positions", positions.len());
    for (offset, member) in positions {
        let mut changed = package.clone();
        changed[offset] ^= if offset % 2 == 0 { 0x01 } else { 0x80 };
        let report = verify_package(&changed, KeyTrust::Published(&key), SKEW);
        assert!(!report.holds(), "byte {offset} of {member} changed and the package still verifies");
        let failed = report.failed_items();
        assert!(failed.contains(member.as_str()), "byte {offset} of {member} changed; failures name {failed:?}");
    }
}

/// A server that leaves a record's signatures and lock out of its log cannot export a package
/// that verifies.
#[test]
fn a_record_whose_signatures_are_not_in_the_log_fails() {
    let (mut contents, key) = contents_with(T0 + 8_000);
    contents.proofs.leaves.retain(|proof| {
        let leaf = Leaf::from_bytes(&hex::decode(&proof.leaf).unwrap()).unwrap();
        !matches!(leaf.item, LeafItem::RecordSigned { .. } | LeafItem::RecordLocked { .. })
    });
    let report = verify_package(&write_package(&contents).unwrap(), KeyTrust::Published(&key), SKEW);
    assert_eq!(report.failed_items(), BTreeSet::from([DOCUMENT, PROOFS]));
    let details: Vec<&str> = report.checks.iter().filter(|c| !c.holds).map(|c| c.detail.as_str()).collect();
    assert!(details.iter().any(|d| d.contains("signature of O001")), "{details:?}");
    assert!(details.iter().any(|d| d.contains("no lock")), "{details:?}");
}

/// An entry's payload that is not the one it was signed over, and a photo the entries name
/// that the package does not list, are each named.
#[test]
fn a_swapped_payload_and_an_unlisted_photo_fail() {
    let (mut contents, key) = contents_with(T0 + 8_000);
    contents.entries[2].payload = Some(STANDARD.encode("另一段录像".as_bytes()));
    contents.blobs.retain(|(blob, _)| blob.leaf_index.is_none());
    let report = verify_package(&write_package(&contents).unwrap(), KeyTrust::Published(&key), SKEW);
    assert_eq!(report.failed_items(), BTreeSet::from([ENTRIES, BLOBS]));
}

/// Anyone can write as the genesis actor (it derives from the record id) or as a device's
/// actor (Automerge changes are not signed): a change added to a locked record's document that
/// unlocks it and rewrites its conclusion fails, though the rest of the package is rebuilt to
/// match.
#[test]
fn a_document_changed_after_its_logged_lock_fails() {
    use automerge::transaction::Transactable;
    for actor in [sync_core::document::genesis_actor(RECORD_ID), ActorId::from([1u8; 16])] {
        let (mut contents, key) = contents_with(T0 + 8_000);
        let mut doc = automerge::Automerge::load(&contents.document).unwrap().with_actor(actor.clone());
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "locked", false).unwrap();
        let header = tx.get(automerge::ROOT, "header").unwrap().unwrap().1;
        tx.put(&header, "conclusion", "未发现问题").unwrap();
        tx.commit();
        contents.document = doc.save();
        let report = verify_package(&write_package(&contents).unwrap(), KeyTrust::Published(&key), SKEW);
        assert!(report.failed_items().contains(DOCUMENT), "{:?}", report.checks);
        let details: Vec<&str> = report.checks.iter().filter(|c| !c.holds).map(|c| c.detail.as_str()).collect();
        assert!(details.iter().any(|d| d.contains("does not end where the log")), "{details:?}");
        // Under a device's actor, the device's own signed heads expose it, whatever the log says.
        if actor == ActorId::from([1u8; 16]) {
            assert!(details.iter().any(|d| d.contains("someone else wrote it")), "{details:?}");
        }
    }
}

/// A member the format does not have is named, even listed in a consistent manifest.
#[test]
fn a_member_outside_the_format_fails() {
    use schemas::evidence::{Manifest, ManifestItem};
    let (package, key) = package();
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(package.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        members.push((path, bytes));
    }
    members.push(("record/notes.txt".into(), "补充说明".as_bytes().to_vec()));
    let mut manifest: Manifest = serde_json::from_slice(&members[0].1).unwrap();
    manifest.items.push(ManifestItem {
        path: "record/notes.txt".into(),
        size: members.last().unwrap().1.len() as u64,
        sha256: hex::encode(Sha256::digest(&members.last().unwrap().1)),
    });
    let mut encoded = serde_json::to_vec_pretty(&manifest).unwrap();
    encoded.push(b'\n');
    members[0].1 = encoded;
    let forged = sync_core::evidence::archive(&members, manifest.exported_at_ms).unwrap();
    let report = verify_package(&forged, KeyTrust::Published(&key), SKEW);
    assert_eq!(report.failed_items(), BTreeSet::from(["record/notes.txt"]));
}

/// The failures of a package rebuilt from `contents`: (member, detail) of every failing check.
fn failures(contents: &PackageContents, key: &str) -> Vec<(String, String)> {
    let report = verify_package(&write_package(contents).unwrap(), KeyTrust::Published(key), SKEW);
    report.checks.iter().filter(|c| !c.holds).map(|c| (c.item.clone(), c.detail.clone())).collect()
}

fn names(failures: &[(String, String)], member: &str, words: &str) -> bool {
    failures.iter().any(|(item, detail)| item == member && detail.contains(words))
}

/// Each way of leaving something out of a genuine package, the rest rebuilt to match, fails
/// and names what is missing: the log's latest state of the record lists every item.
#[test]
fn a_package_missing_any_item_of_the_record_fails_naming_it() {
    let (genuine, key) = contents_with(T0 + 8_000);
    assert_eq!(failures(&genuine, &key), vec![]);
    let leaf_of = |proof: &LeafProof| Leaf::from_bytes(&hex::decode(&proof.leaf).unwrap()).unwrap();

    // The last entries of one device's chain (the seal and the recording's end).
    let mut contents = genuine.clone();
    contents.entries.retain(|e| !(e.signed.entry.device_id == "device-1" && e.signed.entry.seq >= 5));
    assert_eq!(contents.entries.iter().filter(|e| e.signed.entry.device_id == "device-1").count(), 4);
    let found = failures(&contents, &key);
    assert!(names(&found, ENTRIES, "missing: entries of device device-1 for the record up to seq 7"), "{found:#?}");

    // One officer's whole chain.
    let mut contents = genuine.clone();
    contents.entries.retain(|e| e.signed.entry.device_id != "device-2");
    let found = failures(&contents, &key);
    assert!(names(&found, ENTRIES, "missing: all 2 entries of device device-2"), "{found:#?}");

    // The last signature's and the lock's proofs and the document's last change: a locked record
    // rolled back to one signature.
    let mut contents = genuine.clone();
    let first_signature = contents
        .proofs
        .leaves
        .iter()
        .find_map(|proof| match leaf_of(proof).item {
            LeafItem::RecordSigned { officer_id, heads, .. } if officer_id == "O001" => Some(heads),
            _ => None,
        })
        .unwrap();
    let doc = automerge::Automerge::load(&contents.document).unwrap();
    let heads: Vec<automerge::ChangeHash> = first_signature.iter().map(|h| automerge::ChangeHash(*h)).collect();
    contents.document = doc.fork_at(&heads).unwrap().save();
    let mut dropped = Vec::new();
    contents.proofs.leaves.retain(|proof| {
        let keep = !matches!(leaf_of(proof).item,
            LeafItem::RecordSigned { ref officer_id, .. } if officer_id == "O002")
            && !matches!(leaf_of(proof).item, LeafItem::RecordLocked { .. });
        if !keep {
            dropped.push(proof.index);
        }
        keep
    });
    assert_eq!(dropped.len(), 2);
    let found = failures(&contents, &key);
    for index in dropped {
        assert!(
            names(&found, PROOFS, &format!("missing: the signature or lock of the record at leaf {index}")),
            "{found:#?}"
        );
    }
    assert!(names(&found, DOCUMENT, "does not end at the heads the record's latest state"), "{found:#?}");

    // A photo taken under a log entry, left out with `blobs_included: false`.
    let mut contents = genuine.clone();
    let photo = contents.blobs.iter().find(|(blob, _)| blob.leaf_index.is_some()).unwrap().0.sha256.clone();
    contents.blobs.retain(|(blob, _)| blob.sha256 != photo);
    let found = failures(&contents, &key);
    assert!(names(&found, BLOBS, &format!("missing: photo {photo}")), "{found:#?}");

    // The record's state itself left out: nothing proves the package complete.
    let mut contents = genuine.clone();
    contents.state = None;
    let found = failures(&contents, &key);
    assert!(names(&found, STATE, "missing"), "{found:#?}");

    // A state whose items are not those its leaf binds.
    let mut contents = genuine;
    let state = contents.state.as_mut().unwrap();
    state.items.anchors.pop();
    let found = failures(&contents, &key);
    assert!(names(&found, STATE, ""), "{found:#?}");
}

/// A package made with hashes only verifies, and names each stored photo it does not carry.
#[test]
fn a_package_without_blobs_names_each_photo_not_included() {
    let (mut contents, key) = contents_with(T0 + 8_000);
    let stored: Vec<String> =
        contents.blobs.iter().filter(|(blob, _)| blob.leaf_index.is_some()).map(|(b, _)| b.sha256.clone()).collect();
    for (_, bytes) in &mut contents.blobs {
        *bytes = None;
    }
    let package = write_package(&contents).unwrap();
    let report = verify_package(&package, KeyTrust::Published(&key), SKEW);
    assert!(report.holds(), "{:#?}", report.checks.iter().filter(|c| !c.holds).collect::<Vec<_>>());
    assert_eq!(report.not_included, stored);
    let blobs = report.checks.iter().find(|c| c.item == BLOBS && c.holds).unwrap();
    assert!(blobs.detail.contains("1 by hash only (not included)"), "{}", blobs.detail);
}

/// The members of a package, path and bytes, in archive order.
fn members_of(package: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(package);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        members.push((path, bytes));
    }
    members
}

fn pretty<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).unwrap();
    out.push(b'\n');
    out
}

/// A package re-made by someone who changed members and then made everything else agree: the
/// manifest lists the members as they now are, in their new order, and the archive is encoded
/// canonically around them.
fn remade(
    package: &[u8],
    change: impl FnOnce(&mut Vec<(String, Vec<u8>)>, &mut schemas::evidence::Manifest),
) -> Vec<u8> {
    use schemas::evidence::{Manifest, ManifestItem};
    let mut members = members_of(package);
    let mut manifest: Manifest = serde_json::from_slice(&members.remove(0).1).unwrap();
    change(&mut members, &mut manifest);
    manifest.items = members
        .iter()
        .map(|(path, bytes)| ManifestItem {
            path: path.clone(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        })
        .collect();
    members.insert(0, ("manifest.json".into(), pretty(&manifest)));
    sync_core::evidence::archive(&members, manifest.exported_at_ms).unwrap()
}

/// Changes the typed content of one JSON member.
fn edit<T: serde::de::DeserializeOwned + serde::Serialize>(
    members: &mut [(String, Vec<u8>)],
    path: &str,
    change: impl FnOnce(&mut T),
) {
    let member = members.iter_mut().find(|(p, _)| p == path).unwrap();
    let mut value: T = serde_json::from_slice(&member.1).unwrap();
    change(&mut value);
    member.1 = pretty(&value);
}

/// Every way of encoding the same content differently fails and blames the member whose bytes
/// differ: hex case, the order of a member's lists, the order of the members, a re-saved
/// document, and an export time before the log received what the package holds.
#[test]
fn only_the_canonical_encoding_of_a_package_verifies() {
    use schemas::evidence::{PackageBlob, PackageDevice, PackageEntry, PackageProofs, PackageRecordState};
    type Change = Box<dyn FnOnce(&mut Vec<(String, Vec<u8>)>, &mut schemas::evidence::Manifest)>;
    let (package, key) = package();
    assert!(verify_package(&remade(&package, |_, _| {}), KeyTrust::Published(&key), SKEW).holds());
    let upper = |text: &mut String| *text = text.to_uppercase();
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "hex case in proofs.json",
            PROOFS,
            Box::new(move |m, _| edit(m, PROOFS, |p: &mut PackageProofs| upper(&mut p.leaves[0].proof[0]))),
        ),
        (
            "hex case in a seen checkpoint",
            PROOFS,
            Box::new(move |m, _| edit(m, PROOFS, |p: &mut PackageProofs| upper(&mut p.seen_checkpoints[0].root))),
        ),
        (
            "hex case in devices.json",
            DEVICES,
            Box::new(move |m, _| edit(m, DEVICES, |d: &mut Vec<PackageDevice>| upper(&mut d[0].public_key))),
        ),
        (
            "hex case in blobs.json",
            BLOBS,
            Box::new(move |m, _| {
                edit(m, BLOBS, |b: &mut Vec<PackageBlob>| {
                    let lettered = b.iter_mut().find(|b| b.sha256.bytes().any(|c| c.is_ascii_alphabetic())).unwrap();
                    upper(&mut lettered.sha256)
                })
            }),
        ),
        (
            "hex case in record/state.json",
            STATE,
            Box::new(move |m, _| {
                edit(m, STATE, |s: &mut PackageRecordState| upper(&mut s.items.devices[0].last_entry_hash))
            }),
        ),
        (
            "hex case in log/entries.json",
            ENTRIES,
            Box::new(|m, _| {
                let member = m.iter_mut().find(|(p, _)| p == ENTRIES).unwrap();
                let text = String::from_utf8(member.1.clone()).unwrap();
                let at = text.find("\"payload_hash\": \"").unwrap() + 17;
                member.1 =
                    format!("{}{}{}", &text[..at], text[at..at + 64].to_uppercase(), &text[at + 64..]).into_bytes();
            }),
        ),
        ("devices out of order", DEVICES, Box::new(|m, _| edit(m, DEVICES, |d: &mut Vec<PackageDevice>| d.reverse()))),
        ("entries out of order", ENTRIES, Box::new(|m, _| edit(m, ENTRIES, |e: &mut Vec<PackageEntry>| e.reverse()))),
        ("blobs out of order", BLOBS, Box::new(|m, _| edit(m, BLOBS, |b: &mut Vec<PackageBlob>| b.reverse()))),
        ("leaves out of order", PROOFS, Box::new(|m, _| edit(m, PROOFS, |p: &mut PackageProofs| p.leaves.reverse()))),
        (
            "members reordered with the manifest",
            DEVICES,
            Box::new(|m, _| {
                let devices = m.iter().position(|(p, _)| p == DEVICES).unwrap();
                m.swap(devices, devices + 1);
            }),
        ),
        (
            "the document re-saved",
            DOCUMENT,
            Box::new(|m, _| {
                let member = m.iter_mut().find(|(p, _)| p == DOCUMENT).unwrap();
                member.1 = automerge::Automerge::load(&member.1).unwrap().save();
            }),
        ),
        (
            "exported a year before the inspection",
            MANIFEST,
            Box::new(|_, manifest| {
                manifest.exported_at_ms -= 365 * 86_400_000;
            }),
        ),
    ];
    for (what, member, change) in cases {
        let changed = remade(&package, change);
        assert!(changed != package, "{what}: nothing changed");
        let report = verify_package(&changed, KeyTrust::Published(&key), SKEW);
        let failed = report.failed_items();
        assert!(!report.holds(), "{what}: still verifies");
        assert!(failed.contains(member), "{what}: blames {failed:?}, not {member}");
    }
}

/// Every item the log can bound gets its interval: entries, the photo (after the checkpoint its
/// entry names, by the blob's receipt), signatures, the lock and enrolments; an entry naming no
/// checkpoint has no lower bound; a photo whose EXIF time is 400 days before the interval of the
/// entry that took it is a finding, and one inside it is not.
#[test]
fn every_item_gets_its_proven_interval_and_an_old_photo_is_a_finding() {
    use schemas::log::LogFinding;
    // T0 + 100 s in the bureau's time, with and without the offset stated.
    for exif in ["2026-09-21T22:15:00+08:00", "2026-09-21T22:15:00"] {
        let (contents, key) = contents_with_exif(T0 + 8_000, Some(exif));
        let report = verify_package(&write_package(&contents).unwrap(), KeyTrust::Published(&key), SKEW);
        assert!(report.holds());
        assert_eq!(report.findings, vec![], "{exif}");
        let photo = report.item_intervals.iter().find(|i| i.item.starts_with("photo ")).unwrap();
        assert_eq!((photo.not_before_ms, photo.not_after_ms), (Some(T0), T0 + 500_000), "{photo:?}");
        assert_eq!(photo.claimed_ms, Some(T0 + 100_000));
    }
    let (contents, key) = contents_with_exif(T0 + 8_000, Some("2025-08-17T22:13:20+08:00"));
    let report = verify_package(&write_package(&contents).unwrap(), KeyTrust::Published(&key), SKEW);
    assert!(report.holds(), "a finding, not a broken package");
    assert!(
        matches!(report.findings.as_slice(), [LogFinding::PhotoTimeOutsideInterval { device_id, seq: 4, exif_ms, .. }]
            if device_id == "device-1" && *exif_ms == T0 - 400 * 86_400_000),
        "{:?}",
        report.findings
    );
    let items: Vec<&str> = report.item_intervals.iter().map(|i| i.item.as_str()).collect();
    for expected in [
        "enrolment of device device-1",
        "enrolment of device device-2",
        "entry 1 of device device-1",
        "signature of O001",
        "signature of O002",
        "lock of the record",
    ] {
        assert!(items.contains(&expected), "{expected} not in {items:?}");
    }
    // Device 2's entries name no checkpoint: no lower bound.
    let unbounded: Vec<&str> = report
        .item_intervals
        .iter()
        .filter(|i| i.not_before_ms.is_none() && i.item.starts_with("entry "))
        .map(|i| i.item.as_str())
        .collect();
    assert_eq!(unbounded, ["entry 1 of device device-2", "entry 3 of device device-2"]);
}
