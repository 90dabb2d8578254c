//! The device with no network: a store enrolled and given a task by hand (as enrollment and a
//! sync would), then everything an officer does on site, and every mistake they can make.

use std::path::Path;

use field_client::device::{TaskTeam, field_edit};
use field_client::store::{CachedTask, DeviceStore, ExchangeWrite, Identity, SyncedDocument, Tokens};
use field_client::{ClientError, Device};
use schemas::{Certificate, CertificateStatus, CertificateStatusChange, ChecklistResult, RecordStatus};
use sync_core::document::Edit;

const NOW: i64 = 1_790_000_000_000;
const YEAR: i64 = 365 * 86_400_000;

fn certificate(officer_id: &str) -> Certificate {
    Certificate {
        number: format!("GX-{officer_id}"),
        officer_id: officer_id.into(),
        issuing_authority: "市生态环境局".into(),
        valid_from_ms: NOW - YEAR,
        valid_until_ms: NOW + YEAR,
        status_history: vec![CertificateStatusChange {
            at_ms: NOW - YEAR,
            status: CertificateStatus::Active,
            reason: None,
        }],
        periods: vec![],
        reviews: vec![],
    }
}

/// An enrolled device of officer O0001 holding task T1 (team O0001, O0002), clock at `NOW`.
fn device(dir: &Path) -> Device {
    let store = DeviceStore::open(dir).unwrap();
    store
        .enroll(
            &Identity {
                server: "http://127.0.0.1:9".into(),
                device_id: "D-1".into(),
                officer_id: "O0001".into(),
                actor_id: hex::encode([7u8; 16]),
            },
            &[1u8; 32],
            &Tokens { access_token: "a".into(), access_expires_at_ms: NOW, refresh_token: "r".into() },
        )
        .unwrap();
    let team = serde_json::json!({
        "task": {
            "task_id": "T1", "entity_id": "E00001", "matter": "M01",
            "window_start_ms": NOW - 86_400_000, "window_end_ms": NOW + 86_400_000,
            "team": ["O0001", "O0002"],
            "created_by": "SUP", "created_at_ms": NOW - 86_400_000,
        },
        "members": [
            { "officer_id": "O0001", "name": "甲", "certificates": [certificate("O0001")] },
            { "officer_id": "O0002", "name": "乙", "certificates": [certificate("O0002")] },
        ],
        "checklist": ["FACILITY-RUNNING", "LEDGER"],
    });
    store.replace_tasks(&[CachedTask { task_id: "T1".into(), team, fetched_at_ms: NOW }]).unwrap();
    drop(store);
    let mut device = Device::open(dir).unwrap();
    device.set_clock(std::sync::Arc::new(|| NOW));
    device
}

/// Fills what a record needs before it is signed: the recusal question, a conclusion, the end.
fn complete(device: &mut Device, record_id: &str) {
    for edit in sync_core::sample::completing_edits(NOW) {
        device.edit(record_id, edit).unwrap();
    }
}

fn png(path: &Path) {
    let image = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 90]));
    image.save_with_format(path, image::ImageFormat::Png).unwrap();
}

#[test]
fn an_unenrolled_folder_says_so() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Device::open(dir.path()).err().unwrap().code(), "not_enrolled");
}

#[test]
fn the_cached_task_reads_back_with_its_team() {
    let dir = tempfile::tempdir().unwrap();
    let device = device(dir.path());
    let task: TaskTeam = device.task("T1").unwrap();
    assert_eq!(task.task.team, ["O0001", "O0002"]);
    assert_eq!(task.certificates().len(), 2);
    assert_eq!(device.task("T9").err().unwrap().code(), "unknown_task");
}

#[test]
fn a_record_made_offline_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let record_id = device.new_record("T1").unwrap();
    assert_eq!(device.record_id(None).unwrap(), record_id, "a new record is selected");
    device
        .edit(
            &record_id,
            Edit::SetChecklistItem { code: "FACILITY-RUNNING".into(), result: ChecklistResult::Compliant, note: None },
        )
        .unwrap();
    device.edit(&record_id, Edit::AppendObservations("废水处理设施正常运行。".into())).unwrap();
    drop(device);

    let device = Device::open(dir.path()).unwrap();
    let record = device.record(&record_id).unwrap();
    assert_eq!(record.header.task_id.as_deref(), Some("T1"));
    assert_eq!(record.entity.entity_id.as_deref(), Some("E00001"));
    assert_eq!(record.observations, "废水处理设施正常运行。");
    assert_eq!(record.checklist[0].result, Some(ChecklistResult::Compliant));
    let status = device.status().unwrap();
    assert_eq!(status.pending, std::slice::from_ref(&record_id));
    assert_eq!(status.missing_on_server, [record_id]);
    device.store().check().unwrap();
}

#[test]
fn officer_mistakes_get_their_own_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    assert_eq!(device.record_id(None).err().unwrap().code(), "no_current_record");
    assert_eq!(device.new_record("T9").err().unwrap().code(), "unknown_task");
    let record_id = device.new_record("T1").unwrap();
    assert_eq!(device.record("0190c6b1-0000-7000-8000-000000000000").err().unwrap().code(), "unknown_record");
    assert_eq!(device.add_officer_present(&record_id, "O0003", true).err().unwrap().code(), "not_on_team");
    let missing = dir.path().join("no-such.jpg");
    assert_eq!(device.add_photo(&record_id, &missing, "").err().unwrap().code(), "photo_missing");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not a picture").unwrap();
    assert_eq!(device.add_photo(&record_id, &text, "").err().unwrap().code(), "not_an_image");
    let truncated = dir.path().join("truncated.png");
    png(&truncated);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..12]).unwrap();
    assert_eq!(device.add_photo(&record_id, &truncated, "").err().unwrap().code(), "not_an_image");
    let out_of_range = device.edit(&record_id, Edit::SetLocation { latitude: 91.0, longitude: 0.0 });
    assert_eq!(out_of_range.err().unwrap().code(), "invalid_input");
    // A checklist code not on the checklist of the task's matter, as cached with the task.
    let unknown = device
        .edit(
            &record_id,
            Edit::SetChecklistItem { code: "NOISE".into(), result: ChecklistResult::Compliant, note: None },
        )
        .err()
        .unwrap();
    assert_eq!(unknown.code(), "unknown_checklist_item");
    assert_eq!(unknown.details(), serde_json::json!({ "code": "NOISE", "task_id": "T1" }));
    // Nothing of the refused edits reached the record.
    let record = device.record(&record_id).unwrap();
    assert!(record.photos.is_empty() && record.header.latitude.is_none() && record.officers_present.is_empty());
    assert!(record.checklist.is_empty());
}

#[test]
fn p1_signing_alone_is_refused_and_two_officers_may_sign() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let record_id = device.new_record("T1").unwrap();
    device.add_officer_present(&record_id, "O0001", true).unwrap();
    match device.sign(&record_id) {
        Err(ClientError::EditRefused { rule: Some(rule), .. }) => assert_eq!(rule, "P1"),
        other => panic!("signing with one officer present: {other:?}"),
    }
    device.add_officer_present(&record_id, "O0002", false).unwrap();
    match device.sign(&record_id) {
        Err(ClientError::EditRefused { rule: Some(rule), .. }) => assert_eq!(rule, "P1"),
        other => panic!("the second certificate was not shown: {other:?}"),
    }
    device.add_officer_present(&record_id, "O0002", true).unwrap();
    // C7, P4: not before the record is complete, each missing item named.
    let incomplete = device.sign(&record_id).err().unwrap();
    assert_eq!(incomplete.code(), "edit_refused");
    assert_eq!(
        incomplete.details(),
        serde_json::json!({
            "rule": "incomplete_record",
            "missing": ["header/ended_at_ms", "recusal/asked", "recusal/answer", "header/conclusion"],
        })
    );
    complete(&mut device, &record_id);
    device.sign(&record_id).unwrap();
    let record = device.record(&record_id).unwrap();
    assert_eq!(record.status, RecordStatus::Signing);
    assert_eq!(record.signatures[0].certificate_number, "GX-O0001");
    assert_eq!(device.edit(&record_id, Edit::SetConclusion("改".into())).err().unwrap().code(), "edit_refused");
}

#[test]
fn a_photo_is_kept_by_its_sha256_and_referenced() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let record_id = device.new_record("T1").unwrap();
    let path = dir.path().join("outfall.png");
    png(&path);
    let sha256 = device.add_photo(&record_id, &path, "排污口").unwrap();
    use sha2::Digest;
    assert_eq!(sha256, hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap())));
    let photo = device.store().photo(&sha256).unwrap().unwrap();
    assert_eq!((photo.width, photo.height, photo.media_type.as_str()), (8, 6, "image/png"));
    assert_eq!(device.record(&record_id).unwrap().photos[0].caption, "排污口");
}

#[test]
fn field_names_map_to_edits() {
    let cases: &[(&str, &str, Option<Edit>)] = &[
        ("address", "南宁市青秀区", Some(Edit::SetAddress("南宁市青秀区".into()))),
        ("conclusion", "未发现违法行为", Some(Edit::SetConclusion("未发现违法行为".into()))),
        ("started_at", "now", Some(Edit::SetStartedAt(NOW))),
        ("ended_at", "1790000000001", Some(Edit::SetEndedAt(1_790_000_000_001))),
        ("ended_at", "yesterday", None),
        ("location", "22.8, 108.3", Some(Edit::SetLocation { latitude: 22.8, longitude: 108.3 })),
        ("location", "22.8", None),
        ("recusal_asked", "true", Some(Edit::SetRecusal { asked: true, answer: None })),
        ("recusal_asked", "yes", None),
        ("recusal_answer", "不申请回避", Some(Edit::SetRecusal { asked: true, answer: Some("不申请回避".into()) })),
        ("colour", "red", None),
    ];
    for (field, value, expected) in cases {
        let got = field_edit(field, value, NOW);
        match expected {
            Some(edit) => assert_eq!(&got.unwrap(), edit, "{field} {value}"),
            None => assert_eq!(got.err().unwrap().code(), "invalid_input", "{field} {value}"),
        }
    }
}

#[test]
fn an_edit_from_another_process_is_merged_not_overwritten_by_a_sync_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let record_id = device.new_record("T1").unwrap();
    let loaded = device.store().record(&record_id).unwrap().unwrap();
    let pending_before = device.store().sync_snapshot().unwrap().pending;
    assert_eq!(pending_before.get(&record_id), Some(&loaded.version));
    // Another process edits the record after the sync loaded it.
    let mut other = Device::open(dir.path()).unwrap();
    other.edit(&record_id, Edit::AppendObservations("另一进程".into())).unwrap();
    // The sync writes what it received on top of the version it loaded.
    let mut synced = automerge::Automerge::load(&loaded.document).unwrap();
    let mut theirs = sync_core::document::RecordDocument::load(&record_id, &loaded.document, [9u8; 16].into()).unwrap();
    theirs.apply(Edit::SetConclusion("同步来的".into()), NOW).unwrap();
    synced.merge(&mut theirs.automerge().clone()).unwrap();
    let write = ExchangeWrite {
        documents: vec![SyncedDocument {
            record_id: record_id.clone(),
            loaded_version: Some(loaded.version),
            task_id: Some("T1".into()),
            document: synced.save(),
        }],
        // The sync has said all it had about the record: it would clear the pending mark it saw.
        pending_before,
        ..Default::default()
    };
    let written = device
        .store()
        .write_exchange(&write, NOW, |stored, synced| {
            let mut stored = automerge::Automerge::load(stored).unwrap();
            stored.merge(&mut automerge::Automerge::load(synced).unwrap()).unwrap();
            Ok(stored.save())
        })
        .unwrap();
    assert!(written.documents[0].merged.is_some(), "the write merged");
    let record = device.record(&record_id).unwrap();
    assert_eq!(record.observations, "另一进程");
    assert_eq!(record.header.conclusion.as_deref(), Some("同步来的"));
    assert_eq!(device.status().unwrap().pending, [record_id], "the local edit is still pending");
}

#[test]
fn a_stale_local_write_is_refused_rather_than_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let record_id = device.new_record("T1").unwrap();
    let stale = device.store().record(&record_id).unwrap().unwrap();
    device.edit(&record_id, Edit::AppendObservations("先".into())).unwrap();
    let result = device.store().put_local_record(&record_id, Some("T1"), &stale.document, Some(stale.version), NOW);
    assert_eq!(result.err().unwrap().code(), "concurrent_edit");
    assert_eq!(device.record(&record_id).unwrap().observations, "先");
}

#[test]
fn a_store_from_a_newer_fieldsync_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(DeviceStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(field_client::store::STORE_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert_eq!(DeviceStore::open(dir.path()).err().unwrap().code(), "store_too_new");
}

/// The device's enforcement log: entries it writes itself (certificates shown, photo,
/// signature) and entries the officer adds form one chain, each entry signed with the device's
/// key and naming the one before; the chain survives reopening.
#[test]
fn the_enforcement_log_is_a_signed_hash_chain() {
    use sync_core::enforcement_log::{EntryEncoding, EntryKind, EntryVerification, Placement, place};

    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let record_id = device.new_record("T1").unwrap();
    device.append_log(EntryKind::Arrive, Some(&record_id), b"").unwrap();
    device.append_log(EntryKind::RecordingStarted, Some(&record_id), "执法记录仪开始录像".as_bytes()).unwrap();
    device.add_officer_present(&record_id, "O0001", true).unwrap();
    device.add_officer_present(&record_id, "O0002", true).unwrap();
    let path = dir.path().join("outfall.png");
    png(&path);
    let sha256 = device.add_photo(&record_id, &path, "排污口").unwrap();
    complete(&mut device, &record_id);
    device.sign(&record_id).unwrap();
    drop(device);

    let device = Device::open(dir.path()).unwrap();
    let entries = device.log(Some(&record_id)).unwrap();
    let kinds: Vec<&EntryKind> = entries.iter().map(|e| &e.entry.kind).collect();
    assert_eq!(
        kinds,
        [
            &EntryKind::Arrive,
            &EntryKind::RecordingStarted,
            &EntryKind::CertificatesShown { officer_ids: vec!["O0001".into()] },
            &EntryKind::CertificatesShown { officer_ids: vec!["O0002".into()] },
            &EntryKind::PhotoTaken { sha256 },
            &EntryKind::Signed { officer_id: "O0001".into() },
        ]
    );
    let key = ed25519_dalek::SigningKey::from_bytes(&device.store().signing_key().unwrap().unwrap()).verifying_key();
    let mut previous = None;
    for (signed, payload) in device.store().log(Some(&record_id)).unwrap() {
        signed.verify(&key).unwrap();
        signed.check_payload(&payload).unwrap();
        assert_eq!(place(&signed.entry, None, previous), Placement::Extends, "entry {}", signed.entry.seq);
        assert_eq!(signed.entry.device_id, "D-1");
        previous = Some(signed.entry.hash());
    }
    assert_eq!(device.log_findings(&record_id).unwrap(), [], "recording on, both certificates shown");
}

#[test]
fn r2_p2_log_findings_on_the_device() {
    use sync_core::enforcement_log::{EntryKind, LogFinding};

    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let record_id = device.new_record("T1").unwrap();
    device.add_officer_present(&record_id, "O0001", true).unwrap();
    device.add_officer_present(&record_id, "O0002", false).unwrap();
    let seal = device.append_log(EntryKind::SealOrSeizure, Some(&record_id), b"").unwrap();
    assert_eq!(
        device.log_findings(&record_id).unwrap(),
        [
            LogFinding::SealWithoutRecording { device_id: "D-1".into(), seq: seal.entry.seq },
            LogFinding::CertificateNotShown { officer_id: "O0002".into() },
        ]
    );
}

#[test]
fn log_entry_kinds_from_the_command_line() {
    use field_client::device::{LogDetails, entry_kind};
    use sync_core::enforcement_log::EntryKind;

    let with = |reason: Option<&str>, officers: &[&str]| LogDetails {
        reason: reason.map(str::to_string),
        officers: officers.iter().map(|o| o.to_string()).collect(),
        ..LogDetails::default()
    };
    assert_eq!(entry_kind("arrive", with(None, &[])).unwrap(), EntryKind::Arrive);
    assert_eq!(
        entry_kind("recording-stopped", with(Some("存储卡已满"), &[])).unwrap(),
        EntryKind::RecordingStopped { reason: "存储卡已满".into() }
    );
    assert_eq!(
        entry_kind("certificates-shown", with(None, &["O1", "O2"])).unwrap(),
        EntryKind::CertificatesShown { officer_ids: vec!["O1".into(), "O2".into()] }
    );
    for (kind, details) in [
        ("recording-stopped", with(None, &[])),
        ("recording-stopped", with(Some("  "), &[])),
        ("certificates-shown", with(None, &[])),
        ("document-served", with(None, &[])),
        ("dance", with(None, &[])),
    ] {
        assert_eq!(entry_kind(kind, details).err().unwrap().code(), "invalid_input", "{kind}");
    }
}

/// The checkpoint a device's entries name only moves forward: an older one (a replayed or
/// reordered answer) is not kept, and the next entry names the newest seen.
#[test]
fn the_checkpoint_seen_never_goes_back() {
    use sync_core::enforcement_log::{EntryKind, SeenCheckpoint};

    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let (newer, older) = (SeenCheckpoint { size: 9, root: [9; 32] }, SeenCheckpoint { size: 4, root: [4; 32] });
    assert!(device.store().see_checkpoint(&newer, "note 9").unwrap());
    assert!(!device.store().see_checkpoint(&older, "note 4").unwrap());
    assert!(!device.store().see_checkpoint(&newer, "note 9").unwrap(), "the same size again changes nothing");
    assert_eq!(device.store().seen_checkpoint().unwrap(), Some(newer));
    let signed = device.append_log(EntryKind::Arrive, None, b"").unwrap();
    assert_eq!(signed.entry.seen_checkpoint, Some(newer));
    assert_eq!(device.status().unwrap().log_entries_not_uploaded, 1);
}

/// An entry the server would refuse (a field over its limit, a payload too large) is refused on
/// the device before it is signed, and the chain does not move.
#[test]
fn a_log_entry_over_its_limits_is_refused_before_it_is_signed() {
    use sync_core::enforcement_log::{EntryKind, MAX_PAYLOAD_BYTES};

    let dir = tempfile::tempdir().unwrap();
    let mut device = device(dir.path());
    let long = EntryKind::RecordingStopped { reason: "断".repeat(sync_core::input::MAX_LONG_TEXT + 1) };
    assert_eq!(device.append_log(long, None, b"").unwrap_err().code(), "invalid_input");
    let large = vec![0u8; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(device.append_log(EntryKind::Arrive, None, &large).unwrap_err().code(), "invalid_input");
    assert!(device.log(None).unwrap().is_empty(), "nothing appended");
    let at_limit = EntryKind::RecordingStopped { reason: "断".repeat(sync_core::input::MAX_LONG_TEXT) };
    assert_eq!(device.append_log(at_limit, None, &vec![0u8; MAX_PAYLOAD_BYTES]).unwrap().entry.seq, 1);
}
