//! Evidence end to end: two officers' devices log an inspection (entries, a photo, signatures),
//! sync their chains to the server, and a reviewer exports the record's evidence package and
//! checks it offline with `fieldsync verify`, as a court would.

use std::process::Command;

use field_client::Device;
use schemas::log::{EntryKind, RecordLog};
use sync_core::document::SignOutcome;
use sync_core::evidence::{DOCUMENT, KeyTrust, verify_package};

use super::{bureau, phone, reviewer, shared_record, sync};

/// A noise PNG of `side` pixels in `dir`: it does not compress, so its bytes are its own.
fn photo(dir: &std::path::Path, side: u32) -> std::path::PathBuf {
    let path = dir.join("outfall.png");
    fieldsync_tests::harness::noise_png(&path, side, 0x2545_f491);
    path
}

/// Runs `fieldsync --json verify ARGS`: needs no device and no network.
async fn verify(args: Vec<String>) -> (bool, serde_json::Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync"));
    command.arg("--json").arg("verify").args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let text = if output.status.success() { output.stdout } else { output.stderr };
    let text = String::from_utf8(text).unwrap();
    (output.status.success(), serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn log(device: &mut Device, kind: EntryKind, record_id: &str, payload: &str) {
    device.append_log(kind, Some(record_id), payload.as_bytes()).unwrap();
}

#[tokio::test]
async fn an_inspection_exported_as_evidence_verifies_offline_and_a_changed_byte_is_named() {
    let server = bureau().await;
    let reviewer = reviewer(&server).await;
    let (mut a, a_dir) = phone(&server.base, "O1").await;
    let (mut b, _b_dir) = phone(&server.base, "O2").await;
    // Both officers present with certificates shown: each device logs that itself.
    let record_id = shared_record(&mut a, &mut b).await;

    log(&mut a, EntryKind::Arrive, &record_id, "");
    log(&mut a, EntryKind::RecordingStarted, &record_id, "执法记录仪 01 开始录像");
    let photo = photo(a_dir.path(), 200);
    let sha256 = a.add_photo(&record_id, &photo, "总排口").unwrap();
    log(&mut a, EntryKind::SealOrSeizure, &record_id, "查封废水处理设备一套");
    log(&mut a, EntryKind::RecordingStopped { reason: "检查结束".into() }, &record_id, "");
    log(&mut b, EntryKind::Arrive, &record_id, "");
    log(&mut b, EntryKind::PartyQuestioned, &record_id, "询问笔录第 1 页");
    let waiting = a.status().unwrap().log_entries_not_uploaded;
    assert!(waiting >= 5, "{waiting}");
    let first = sync(&mut a).await;
    assert_eq!(a.status().unwrap().log_entries_not_uploaded, 0);
    assert_eq!(a.status().unwrap().seen_checkpoint, first.checkpoint);
    assert!(first.log_uploaded >= 5, "{first:?}");
    assert_eq!(first.photos_uploaded, vec![sha256.clone()]);
    let seen = first.checkpoint.expect("the device saw a checkpoint");
    sync(&mut b).await;

    // After the sync, entries name the checkpoint the device saw; the signatures end the record.
    log(&mut a, EntryKind::Left, &record_id, "");
    assert_eq!(a.log(Some(&record_id)).unwrap().last().unwrap().entry.seen_checkpoint, Some(seen));
    assert_eq!(a.sign(&record_id).unwrap(), SignOutcome::Signed);
    sync(&mut a).await;
    sync(&mut b).await;
    assert_eq!(b.sign(&record_id).unwrap(), SignOutcome::SignedAndLocked);
    sync(&mut b).await;
    sync(&mut a).await;

    // The server's view of the record's log: both chains, each entry's proven interval.
    let response = server.get(&format!("/v1/records/{record_id}/log"), &reviewer).await;
    assert_eq!(response.status(), 200);
    let record_log: RecordLog = response.json().await.unwrap();
    let devices: std::collections::BTreeSet<&str> =
        record_log.entries.iter().map(|e| e.signed.entry.device_id.as_str()).collect();
    assert_eq!(devices.len(), 2);
    assert!(record_log.entries.iter().any(|e| e.interval.not_before_ms.is_some()));
    assert!(record_log.entries.iter().all(|e| !e.interval.claim_outside));
    assert_eq!(record_log.findings, vec![], "a seal under a running recording, certificates shown");

    // The package, checked offline by the library and by the program, against the published key.
    let key = server.client.get(format!("{}/v1/log/key", server.base)).send().await.unwrap().text().await.unwrap();
    let response = server.get(&format!("/v1/records/{record_id}/evidence"), &reviewer).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    let package = response.bytes().await.unwrap().to_vec();
    let report = verify_package(&package, KeyTrust::Published(&key), 300_000);
    assert!(report.holds(), "{:#?}", report.checks.iter().filter(|c| !c.holds).collect::<Vec<_>>());
    assert_eq!(report.record_id.as_deref(), Some(record_id.as_str()));
    // Each device's entries signed the record's heads: every change is its device's own.
    assert!(
        report.checks.iter().any(|c| c.item == DOCUMENT && c.holds && c.detail.contains("heads their device signed")),
        "{:#?}",
        report.checks
    );
    assert!(report.unproven.iter().all(|u| !u.contains("changes of device")), "{:?}", report.unproven);
    // Every entry of the record, from both devices, with an interval.
    let entries = a.log(Some(&record_id)).unwrap().len() + b.log(Some(&record_id)).unwrap().len();
    assert_eq!(report.intervals.len(), entries);
    let file = a_dir.path().join("evidence.tar");
    std::fs::write(&file, &package).unwrap();
    let (ok, output) = verify(vec![file.display().to_string(), "--log-key".into(), key.clone()]).await;
    assert!(ok, "{output}");
    assert!(output["checks"].as_array().unwrap().iter().all(|c| c["holds"] == true));
    assert_eq!(output["log_key"], key.trim());
    assert_eq!(output["trusted_by"], "published_key");

    // No key given: nothing is trusted silently. The refusal names the package's key.
    let (ok, output) = verify(vec![file.display().to_string()]).await;
    assert!(!ok);
    assert_eq!(output["code"], "untrusted_key", "{output}");
    assert_eq!(output["details"]["package_key"], key.trim());
    // Told to trust the package's key, it verifies and the verdict names that key.
    let (ok, output) = verify(vec![file.display().to_string(), "--trust-package-key".into()]).await;
    assert!(ok, "{output}");
    assert_eq!(output["log_key"], key.trim());
    assert_eq!(output["trusted_by"], "package_key");

    // One byte of the photo changed: the package fails and names the photo.
    let photo_bytes = std::fs::read(&photo).unwrap();
    let at = package.windows(64).position(|w| w == &photo_bytes[1000..1064]).expect("the photo is in the package");
    let mut changed = package.clone();
    changed[at + 10] ^= 0x01;
    std::fs::write(&file, &changed).unwrap();
    let (ok, output) = verify(vec![file.display().to_string(), "--log-key".into(), key.clone()]).await;
    assert!(!ok);
    assert_eq!(output["code"], "evidence_invalid");
    let failed: Vec<&str> =
        output["details"]["failed_items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(failed.contains(&format!("blobs/{sha256}").as_str()), "{failed:?}");

    // Hashes only: no photo bytes, and it still verifies.
    let response = server.get(&format!("/v1/records/{record_id}/evidence?blobs=hashes"), &reviewer).await;
    assert_eq!(response.status(), 200);
    let hashes_only = response.bytes().await.unwrap().to_vec();
    assert!(hashes_only.len() + photo_bytes.len() / 2 < package.len());
    let report = verify_package(&hashes_only, KeyTrust::Published(&key), 300_000);
    assert!(report.holds());
    assert_eq!(report.not_included, vec![sha256.clone()]);
    let file = a_dir.path().join("hashes-only.tar");
    std::fs::write(&file, &hashes_only).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync"));
    command.arg("verify").arg(&file).args(["--log-key", &key]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{text}");
    assert!(text.contains(&format!("not included: photo {sha256}: this package carries only its hash")), "{text}");
    // Each item's proven interval is printed: the photo after the checkpoint its entry names.
    assert!(text.contains(&format!("interval: photo {sha256} (entry ")), "{text}");
    assert!(text.contains("interval: signature of O1: no lower bound, by "), "{text}");
    assert!(text.contains("interval: lock of the record: "), "{text}");
    let response = server.get(&format!("/v1/records/{record_id}/evidence?blobs=some"), &reviewer).await;
    assert_eq!(response.status(), 400);

    // The server program exports the same record from its database, and it verifies.
    let exported = a_dir.path().join("exported.tar");
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    command.arg("--data").arg(server.dir.path()).args(["evidence", "export", &record_id, "--to"]).arg(&exported);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = verify_package(&std::fs::read(&exported).unwrap(), KeyTrust::Published(&key), 300_000);
    assert!(report.holds(), "{:#?}", report.checks.iter().filter(|c| !c.holds).collect::<Vec<_>>());
    assert!(report.checks.iter().any(|c| c.item == DOCUMENT && c.holds));
}

#[tokio::test]
async fn only_readers_of_a_record_export_its_evidence() {
    let server = bureau().await;
    let (mut a, _a_dir) = phone(&server.base, "O1").await;
    let (mut b, _b_dir) = phone(&server.base, "O2").await;
    let record_id = shared_record(&mut a, &mut b).await;
    let path = format!("/v1/records/{record_id}/evidence");
    let outsider = server.token("O3", super::PASSWORD).await;
    assert_eq!(server.get(&path, &outsider).await.status(), 404);
    let member = server.token("O2", super::PASSWORD).await;
    assert_eq!(server.get(&path, &member).await.status(), 200);
    let supervisor = server.token("SUP", super::PASSWORD).await;
    assert_eq!(server.get(&path, &supervisor).await.status(), 200);
    assert_eq!(server.client.get(format!("{}{path}", server.base)).send().await.unwrap().status(), 401);
    assert_eq!(server.get("/v1/records/0190f2a4-7c1e-7000-8000-00000000dead/evidence", &member).await.status(), 404);
}
