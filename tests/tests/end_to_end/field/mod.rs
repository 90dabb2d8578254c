//! Officers' devices (`field-client`, each with its own SQLite store) against a real server on a
//! real port: offline work, merges in every order, refusals, failing networks, killed processes,
//! and the `fieldsync` CLI as an officer would script it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use field_client::remote::{SyncOptions, enroll};
use field_client::{Device, SyncSummary};
use fieldsync_tests::harness::TestServer;
use schemas::{ChecklistResult, InspectionRecord, RecordStatus};
use sync_core::document::{Edit, SignOutcome};

mod cli;
mod evidence;
mod evidence_report;
mod processes;
mod tls;

const PASSWORD: &str = "correct horse battery";

/// Quick retries: the tests' failures are injected, not congestion.
fn options() -> SyncOptions {
    SyncOptions {
        max_attempts: 12,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        ..SyncOptions::default()
    }
}

/// A bureau on a server: officers O1 and O2 on task T1, O3 an officer not on it, a supervisor
/// and a reviewer.
async fn bureau() -> TestServer {
    let server = TestServer::start().await;
    server.entities(5);
    for officer in ["O1", "O2", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    let supervisor = server.token("SUP", PASSWORD).await;
    assert_eq!(server.task(&supervisor, "T1", &["O1", "O2"]).await.status(), 200);
    server
}

/// A device of `officer` enrolled with the server at `base`, in a folder of its own.
async fn phone(base: &str, officer: &str) -> (Device, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let device = enroll(dir.path(), base, officer, PASSWORD).await.unwrap();
    (device, dir)
}

async fn sync(device: &mut Device) -> SyncSummary {
    device.sync(&options(), |_| {}).await.unwrap()
}

/// A reviewer's access token (logins are rate-limited: one per test).
async fn reviewer(server: &TestServer) -> String {
    server.token("REV", PASSWORD).await
}

/// The server's typed view of a record, as a reviewer reads it.
async fn server_record(server: &TestServer, reviewer: &str, record_id: &str) -> InspectionRecord {
    let response = server.get(&format!("/v1/records/{record_id}"), reviewer).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Change hashes in the server's quarantine for a record.
async fn quarantined(server: &TestServer, reviewer: &str, record_id: &str) -> Vec<String> {
    let response = server.get("/v1/quarantine", reviewer).await;
    assert_eq!(response.status(), 200);
    let rows: Vec<serde_json::Value> = response.json().await.unwrap();
    rows.iter()
        .filter(|r| r["record_id"] == record_id)
        .map(|r| r["change_hash"].as_str().unwrap().to_string())
        .collect()
}

/// O1 starts a record on T1 with both officers present and certificates shown, and both devices
/// have it.
async fn shared_record(a: &mut Device, b: &mut Device) -> String {
    sync(a).await;
    sync(b).await;
    let record_id = a.new_record("T1").unwrap();
    a.add_officer_present(&record_id, "O1", true).unwrap();
    a.add_officer_present(&record_id, "O2", true).unwrap();
    for completing in sync_core::sample::completing_edits(a.now_ms()) {
        a.edit(&record_id, completing).unwrap();
    }
    sync(a).await;
    let received = sync(b).await;
    assert!(received.received.contains(&record_id), "the partner receives the record");
    record_id
}

#[derive(Clone, Copy, Debug)]
enum Order {
    AThenB,
    BThenA,
    Together,
}

/// Syncs both devices until neither has anything more, in `order`.
async fn converge(a: &mut Device, b: &mut Device, order: Order) {
    for _ in 0..2 {
        match order {
            Order::AThenB => {
                sync(a).await;
                sync(b).await;
            }
            Order::BThenA => {
                sync(b).await;
                sync(a).await;
            }
            Order::Together => {
                let options = options();
                let (left, right) = tokio::join!(a.sync(&options, |_| {}), b.sync(&options, |_| {}));
                left.unwrap();
                right.unwrap();
            }
        }
    }
}

/// The whole inspection of the brief: two officers offline on one record, merged in every
/// order, a conflict resolved, both signatures, the lock, and an edit after the lock refused.
#[tokio::test]
async fn two_officers_offline_converge_in_every_order_then_sign_and_lock() {
    let server = bureau().await;
    let reviewer = reviewer(&server).await;
    let (mut a, _a_dir) = phone(&server.base, "O1").await;
    let (mut b, _b_dir) = phone(&server.base, "O2").await;
    let mut refused_so_far = 0;
    for order in [Order::AThenB, Order::BThenA, Order::Together] {
        let record_id = shared_record(&mut a, &mut b).await;
        // Offline: different checklist items, typing at once, different conclusions.
        let check = |code: &str, result| Edit::SetChecklistItem { code: code.into(), result, note: None };
        a.edit(&record_id, check("PERMIT-POSTED", ChecklistResult::Compliant)).unwrap();
        b.edit(&record_id, check("FACILITY-RUNNING", ChecklistResult::NonCompliant)).unwrap();
        a.edit(&record_id, Edit::AppendObservations("甲：排污口有异味。".into())).unwrap();
        b.edit(&record_id, Edit::AppendObservations("乙：在线监测数据缺失两小时。".into())).unwrap();
        a.edit(&record_id, Edit::SetConclusion("未发现违法行为".into())).unwrap();
        b.edit(&record_id, Edit::SetConclusion("责令限期改正".into())).unwrap();

        converge(&mut a, &mut b, order).await;
        for device in [&a, &b] {
            let status = device.status().unwrap();
            assert!(status.pending.is_empty() && status.missing_on_server.is_empty(), "{order:?}: {status:?}");
        }
        let on_a = a.record(&record_id).unwrap();
        assert_eq!(on_a, b.record(&record_id).unwrap(), "{order:?}: both devices hold the same record");
        assert_eq!(on_a, server_record(&server, &reviewer, &record_id).await, "{order:?}: and so does the server");
        assert!(on_a.observations.contains("甲：排污口有异味。"), "{order:?}: {}", on_a.observations);
        assert!(on_a.observations.contains("乙：在线监测数据缺失两小时。"), "{order:?}: {}", on_a.observations);
        assert_eq!(on_a.checklist.len(), 2, "{order:?}");
        let conflict = on_a.conflicts.iter().find(|c| c.field == "header/conclusion").expect("conclusion conflict");
        assert!(conflict.legally_significant && conflict.values.len() == 2, "{order:?}: {conflict:?}");

        // Nobody signs over an open conflict; O2 settles it, and both sign.
        assert_eq!(a.sign(&record_id).err().unwrap().code(), "edit_refused");
        b.resolve(&record_id, "header/conclusion", serde_json::json!("责令限期改正")).unwrap();
        converge(&mut a, &mut b, order).await;
        assert!(a.record(&record_id).unwrap().conflicts.is_empty(), "{order:?}");
        assert_eq!(a.sign(&record_id).unwrap(), SignOutcome::Signed);
        converge(&mut a, &mut b, order).await;
        assert_eq!(b.sign(&record_id).unwrap(), SignOutcome::SignedAndLocked);
        sync(&mut b).await;

        // Both devices refuse further edits themselves; an app that skipped that check (written
        // here straight into the document) is refused by the server, which quarantines the
        // change, and O1's device takes it out of its copy and keeps it with the reason.
        assert_eq!(a.edit(&record_id, Edit::SetAddress("x".into())).err().unwrap().code(), "edit_refused");
        assert_eq!(b.edit(&record_id, Edit::SetAddress("x".into())).err().unwrap().code(), "edit_refused");
        edit_bypassing_the_rules(&a, &record_id, "补充：");
        let summary = sync(&mut a).await;
        assert_eq!(summary.refused.len(), 1, "{order:?}: {:?}", summary.refused);
        assert!(
            ["record_locked", "record_signed"].contains(&summary.refused[0].reason["code"].as_str().unwrap()),
            "{order:?}: {:?}",
            summary.refused
        );
        refused_so_far += 1;
        assert_eq!(quarantined(&server, &reviewer, &record_id).await, [summary.refused[0].change_hash.clone()]);
        converge(&mut a, &mut b, order).await;
        let locked = server_record(&server, &reviewer, &record_id).await;
        assert_eq!(locked.status, RecordStatus::Locked);
        assert_eq!(a.record(&record_id).unwrap(), locked, "{order:?}");
        assert_eq!(b.record(&record_id).unwrap(), locked, "{order:?}");
        assert!(!locked.observations.contains("补充"), "{order:?}");
        assert_eq!(a.status().unwrap().refused.len(), refused_so_far, "{order:?}: refusals are kept");
    }
}

/// Appends to the observations of a record on `device` straight through Automerge, as an app
/// that skipped the device's own rules would, with the device's actor and clock.
fn edit_bypassing_the_rules(device: &Device, record_id: &str, text: &str) {
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{ROOT, ReadDoc};
    let stored = device.store().record(record_id).unwrap().unwrap();
    let actor = automerge::ActorId::from(hex::decode(&device.identity().actor_id).unwrap());
    let mut doc = automerge::Automerge::load(&stored.document).unwrap().with_actor(actor);
    let (_, observations) = doc.get(ROOT, "observations").unwrap().unwrap();
    let at = device.now_ms();
    doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default().with_time(at),
        |tx| {
            let length = tx.length(&observations);
            tx.splice_text(&observations, length, 0, text)
        },
    )
    .unwrap();
    device.store().put_local_record(record_id, Some("T1"), &doc.save(), Some(stored.version), at).unwrap();
}

/// A third officer's device that got hold of the team's record edits it: refused, quarantined,
/// and the team's record is as it was.
#[tokio::test]
async fn an_officer_not_on_the_team_is_refused_and_the_record_unaffected() {
    let server = bureau().await;
    let reviewer = reviewer(&server).await;
    let (mut a, _a_dir) = phone(&server.base, "O1").await;
    let (mut b, _b_dir) = phone(&server.base, "O2").await;
    let record_id = shared_record(&mut a, &mut b).await;
    let before = server_record(&server, &reviewer, &record_id).await;

    let (mut c, _c_dir) = phone(&server.base, "O3").await;
    sync(&mut c).await;
    assert_eq!(c.new_record("T1").err().unwrap().code(), "unknown_task", "T1 is not O3's task");
    // The document copied onto O3's device by hand (a shared phone, a backup).
    let copied = a.store().record(&record_id).unwrap().unwrap();
    c.store().put_local_record(&record_id, Some("T1"), &copied.document, None, c.now_ms()).unwrap();
    c.edit(&record_id, Edit::SetConclusion("O3 改的结论".into())).unwrap();
    let summary = sync(&mut c).await;
    assert!(!summary.refused.is_empty(), "O3's edit is refused");
    assert!(summary.refused.iter().all(|r| r.reason["code"] == "officer_not_on_team"), "{:?}", summary.refused);
    let quarantine = quarantined(&server, &reviewer, &record_id).await;
    assert!(summary.refused.iter().all(|r| quarantine.contains(&r.change_hash)));
    assert_eq!(server_record(&server, &reviewer, &record_id).await, before, "the team's record is unaffected");
    assert_ne!(c.record(&record_id).unwrap().header.conclusion.as_deref(), Some("O3 改的结论"), "O3's copy dropped it");
    assert_eq!(c.status().unwrap().refused.len(), summary.refused.len(), "and keeps it with the reason");
    sync(&mut a).await;
    assert_eq!(a.record(&record_id).unwrap(), before);
}

/// P2, P3: work timestamped before a suspension made while the officer was offline is held for
/// a reviewer (its time is only the device's claim), shown with the record, and merged once the
/// reviewer accepts it; work after it is refused.
#[tokio::test]
async fn a_certificate_suspended_while_offline_splits_the_work_at_the_suspension() {
    let server = bureau().await;
    let reviewer = reviewer(&server).await;
    let (mut a, _a_dir) = phone(&server.base, "O1").await;
    let (mut b, _b_dir) = phone(&server.base, "O2").await;
    // O1 works offline: the record two hours ago, an edit an hour ago, another a minute ago;
    // meanwhile the certificate is suspended from half an hour ago.
    let now = server::now_ms();
    a.set_clock(Arc::new(move || now - 7_200_000));
    let record_id = shared_record(&mut a, &mut b).await;
    a.set_clock(Arc::new(move || now - 3_600_000));
    a.edit(&record_id, Edit::AppendObservations("停证前记录。".into())).unwrap();
    a.set_clock(Arc::new(move || now - 60_000));
    a.edit(&record_id, Edit::AppendObservations("停证后记录。".into())).unwrap();

    let admin_token = {
        server.account("ADM", PASSWORD, &["admin"]);
        server.token("ADM", PASSWORD).await
    };
    let response = server
        .post(
            "/v1/admin/certificates/GX-O1/status",
            &admin_token,
            serde_json::json!({ "status": "suspended", "at_ms": now - 1_800_000, "reason": "停职调查" }),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let summary = sync(&mut a).await;
    let codes: Vec<&str> = summary.refused.iter().map(|r| r.reason["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["held_for_review", "depends_on_refused_change"], "{:?}", summary.refused);
    let held_hash = summary.refused[0].change_hash.clone();
    let record = server_record(&server, &reviewer, &record_id).await;
    assert!(!record.observations.contains("停证前记录。"), "held, not merged");

    // The record's readers see the held work, with the device's log beside it.
    let held: Vec<serde_json::Value> =
        server.get(&format!("/v1/records/{record_id}/held"), &reviewer).await.json().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["change_hash"], held_hash.as_str());
    assert_eq!(held[0]["reason"]["suspended_at_ms"], now - 1_800_000);
    assert!(held[0]["review"].is_null());

    // Only a reviewer decides; a note is required.
    let decide = |token: String, body: serde_json::Value| {
        let path = format!("/v1/records/{record_id}/held/{held_hash}");
        let server = &server;
        async move { server.post(&path, &token, body).await }
    };
    let refused = decide(admin_token.clone(), serde_json::json!({"decision": "accept", "note": "x"})).await;
    assert_eq!(refused.status(), 403);
    let before = server.snapshot();
    let empty = decide(reviewer.clone(), serde_json::json!({"decision": "accept", "note": " "})).await;
    assert_eq!(fieldsync_tests::harness::error_code(empty).await, (422, "invalid_decision".to_string()));
    assert_eq!(server.snapshot(), before, "nothing decided");

    let accepted =
        decide(reviewer.clone(), serde_json::json!({"decision": "accept", "note": "执法记录仪证实停证前形成"})).await;
    assert_eq!(accepted.status(), 200);
    let accepted: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(accepted["merged"].as_array().unwrap().len(), 1, "{accepted}");
    assert_eq!(accepted["still_refused"][0]["reason"]["code"], "officer_not_certified", "{accepted}");
    let again = decide(reviewer.clone(), serde_json::json!({"decision": "refuse", "note": "再次"})).await;
    assert_eq!(again.status(), 404, "decided once");
    let held: Vec<serde_json::Value> =
        server.get(&format!("/v1/records/{record_id}/held"), &reviewer).await.json().await.unwrap();
    assert_eq!(held[0]["review"]["decision"], "accepted");
    assert_eq!(held[0]["review"]["note"], "执法记录仪证实停证前形成");

    let record = server_record(&server, &reviewer, &record_id).await;
    assert!(record.observations.contains("停证前记录。"));
    assert!(!record.observations.contains("停证后记录。"));
    sync(&mut a).await;
    assert_eq!(a.record(&record_id).unwrap(), record, "the device converges on what was accepted");
}

/// Checks that the server holds every record of `device` exactly as the device does.
async fn server_matches(server: &TestServer, reviewer: &str, device: &Device) {
    for record in device.records().unwrap() {
        assert_eq!(server_record(server, reviewer, &record.record_id).await, record);
    }
}

/// Many records over a network that cuts answers, truncates uploads, drops and duplicates
/// requests, and goes down: the sync retries until it is through, and nothing is lost or doubled.
#[tokio::test]
async fn a_failing_network_loses_nothing_and_duplicates_nothing() {
    use fieldsync_tests::proxy::{Fault, FaultProxy};

    let server = bureau().await;
    let reviewer = reviewer(&server).await;
    let upstream = server.base.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream).await;
    let (mut a, _a_dir) = phone(&proxy.url(), "O1").await;
    let (mut b, _b_dir) = phone(&proxy.url(), "O2").await;
    let options = SyncOptions {
        keep_alive: false,
        session: sync_core::session::SessionConfig { max_documents_per_request: 4, max_request_bytes: 1 << 20 },
        ..options()
    };
    a.sync(&options, |_| {}).await.unwrap();
    for n in 0..20 {
        let record_id = a.new_record("T1").unwrap();
        a.add_officer_present(&record_id, "O1", true).unwrap();
        a.edit(&record_id, Edit::AppendObservations(format!("第{n}份记录。"))).unwrap();
    }
    // Each request is one connection: tasks, team, then the sync rounds.
    proxy.plan([
        Fault::Pass,
        Fault::Pass,
        Fault::CutResponseAfter(0),
        Fault::Drop,
        Fault::Duplicate,
        Fault::CutRequestAfter(200),
        Fault::Pass,
        Fault::Pass,
        Fault::CutResponseAfter(60),
        Fault::Duplicate,
        Fault::Pass,
        Fault::CutResponseAfter(0),
    ]);
    let summary = a.sync(&options, |_| {}).await.unwrap();
    assert!(summary.retries >= 4, "the faults were met: {summary:?}");
    assert!(a.status().unwrap().missing_on_server.is_empty());
    proxy.settled().await;
    server_matches(&server, &reviewer, &a).await;
    let stored = server.snapshot().iter().filter(|row| row.starts_with("records: ")).count();
    assert_eq!(stored, 20, "each record stored once");
    for record in a.records().unwrap() {
        assert_eq!(record.observations.matches("份记录。").count(), 1, "each text once: {}", record.observations);
    }
    assert!(quarantined_any(&server, &reviewer).await.is_empty(), "a duplicate is not a refusal");

    // The network goes down: the sync gives up with a network error and the device keeps
    // everything; once it is back, the partner receives every record.
    proxy.set_down(true);
    let down = b.sync(&SyncOptions { max_attempts: 3, ..options.clone() }, |_| {}).await;
    assert_eq!(down.err().unwrap().code(), "network");
    proxy.set_down(false);
    proxy.plan([Fault::Pass, Fault::Pass, Fault::CutResponseAfter(0), Fault::Duplicate]);
    b.sync(&options, |_| {}).await.unwrap();
    assert_eq!(b.records().unwrap(), a.records().unwrap());
    for record in b.records().unwrap() {
        let history = history_hashes(&server, &reviewer, &record.record_id).await;
        let unique: std::collections::BTreeSet<_> = history.iter().collect();
        assert_eq!(unique.len(), history.len(), "no change is stored twice");
    }
}

async fn quarantined_any(server: &TestServer, reviewer: &str) -> Vec<serde_json::Value> {
    server.get("/v1/quarantine", reviewer).await.json().await.unwrap()
}

async fn history_hashes(server: &TestServer, reviewer: &str, record_id: &str) -> Vec<String> {
    let response = server.get(&format!("/v1/records/{record_id}/history"), reviewer).await;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let changes = body.as_array().or_else(|| body["changes"].as_array()).expect("a list of changes");
    changes.iter().map(|c| c["change_hash"].as_str().or(c["hash"].as_str()).unwrap().to_string()).collect()
}

/// A device's error for a server that is not there at all.
#[tokio::test]
async fn enrolling_with_no_server_is_a_network_error_and_leaves_no_identity() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = enroll(dir.path(), &base, "O1", PASSWORD).await.err().unwrap();
    assert_eq!(error.code(), "network");
    assert_eq!(Device::open(dir.path()).err().unwrap().code(), "not_enrolled");
}

/// A wrong password is the server's refusal, with its code.
#[tokio::test]
async fn enrolling_with_a_wrong_password_says_why() {
    let server = bureau().await;
    let dir = tempfile::tempdir().unwrap();
    match enroll(dir.path(), &server.base, "O1", "wrong").await {
        Err(field_client::ClientError::Server { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
        }
        other => panic!("{:?}", other.err()),
    }
}

/// Devices sit in folders; a second enrollment into one is refused.
#[tokio::test]
async fn a_device_folder_is_enrolled_once() {
    let server = bureau().await;
    let (_device, dir) = phone(&server.base, "O1").await;
    let again = enroll(dir.path(), &server.base, "O1", PASSWORD).await;
    assert_eq!(again.err().unwrap().code(), "already_enrolled");
    assert!(Path::new(&dir.path().join(field_client::store::STORE_FILE)).exists());
}

/// Tokens on the device: an expired access token is refreshed (and the refresh token rotates);
/// a refresh token used twice ends the session (`login_required`) until the officer logs in
/// again; a revoked device stops at once, with the server's code.
#[tokio::test]
async fn device_tokens_refresh_rotate_end_and_stop_at_revocation() {
    use field_client::store::Tokens;

    let server = bureau().await;
    let (mut a, _a_dir) = phone(&server.base, "O1").await;
    let first = a.store().tokens().unwrap().unwrap();
    a.store().save_tokens(&Tokens { access_expires_at_ms: 0, ..first.clone() }).unwrap();
    sync(&mut a).await;
    let second = a.store().tokens().unwrap().unwrap();
    assert_ne!(second.refresh_token, first.refresh_token, "the refresh token rotated");
    assert!(second.access_expires_at_ms > 0, "a fresh access token");

    // The first refresh token again, after its replacement was used (a copy of an old backup):
    // its family is revoked.
    a.store().save_tokens(&Tokens { access_expires_at_ms: 0, ..second.clone() }).unwrap();
    sync(&mut a).await;
    a.store().save_tokens(&Tokens { access_expires_at_ms: 0, ..first }).unwrap();
    assert_eq!(a.sync(&options(), |_| {}).await.err().unwrap().code(), "login_required");
    a.login(PASSWORD).await.unwrap();
    sync(&mut a).await;

    // A refresh whose answer was lost: the device presents the same token again and goes on.
    let before = a.store().tokens().unwrap().unwrap();
    let lost = server
        .client
        .post(server.url("/v1/auth/refresh"))
        .json(&serde_json::json!({ "refresh_token": before.refresh_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(lost.status(), 200, "the server rotated; the device never heard");
    a.store().save_tokens(&Tokens { access_expires_at_ms: 0, ..before }).unwrap();
    sync(&mut a).await;

    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let device_id = a.identity().device_id.clone();
    let response = server.post(&format!("/v1/devices/{device_id}/revoke"), &admin, serde_json::json!({})).await;
    assert_eq!(response.status(), 200);
    match a.sync(&options(), |_| {}).await {
        Err(field_client::ClientError::Server { status: 401, code, .. }) => assert_eq!(code, "device_revoked"),
        other => panic!("a revoked device syncs: {:?}", other.map(|s| s.requests)),
    }
}

/// A server answer the device cannot apply (a corrupt message about one record, injected by a
/// fake server that answers nothing else) is reported for that record; the sync completes, the
/// stored cursor stays, and the next sync asks again.
#[tokio::test]
async fn a_message_that_does_not_apply_is_reported_and_asked_for_again() {
    use field_client::store::{DeviceStore, Identity, Tokens};
    use schemas::{DocumentSyncMessage, SYNC_PROTOCOL_VERSION, SyncResponse};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let record_id = "0190c6b1-0000-7000-8000-000000000001";
    let answer = schemas::wire::to_cbor(&SyncResponse {
        protocol: SYNC_PROTOCOL_VERSION,
        cursor: 7,
        documents: vec![DocumentSyncMessage { record_id: record_id.into(), message: vec![0x42, 1, 2, 3] }],
        rejections: Vec::new(),
        more: false,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let syncs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = syncs.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Reads the head and as much body as Content-Length names, then answers and closes.
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length || n == 0 {
                        break;
                    }
                }
            }
            let head = String::from_utf8_lossy(&request).to_string();
            let (content_type, body) = if head.starts_with("POST /v1/sync") {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ("application/cbor", answer.clone())
            } else {
                ("application/json", b"[]".to_vec())
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.write_all(&body).await.unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = DeviceStore::open(dir.path()).unwrap();
    let identity =
        Identity { server: base, device_id: "D-1".into(), officer_id: "O1".into(), actor_id: hex::encode([7u8; 16]) };
    let tokens = Tokens { access_token: "a".into(), access_expires_at_ms: i64::MAX / 2, refresh_token: "r".into() };
    store.enroll(&identity, &[1; 32], &tokens).unwrap();
    drop(store);
    let mut device = Device::open(dir.path()).unwrap();

    let first = device.sync(&options(), |_| {}).await.unwrap();
    assert_eq!(first.errors.len(), 1, "{first:?}");
    assert_eq!(first.errors[0].0, record_id);
    assert_eq!(device.store().sync_snapshot().unwrap().cursor, None, "the stored cursor stays");
    let second = device.sync(&options(), |_| {}).await.unwrap();
    assert_eq!(second.errors.len(), 1, "asked again: {second:?}");
    assert_eq!(syncs.load(std::sync::atomic::Ordering::SeqCst), 2, "one request per sync, no loop");
    device.store().check().unwrap();
}

/// Photos travel with the sync, after their records: in chunks, through a network that cuts
/// uploads halfway and loses answers, resuming from the offset the server holds; the server
/// ends with each photo once, byte-equal, and no record lacks one.
#[tokio::test]
async fn photos_reach_the_server_in_chunks_through_a_failing_network() {
    use fieldsync_tests::proxy::{Fault, FaultProxy};

    let server = bureau().await;
    let reviewer = reviewer(&server).await;
    let upstream = server.base.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream).await;
    let (mut a, a_dir) = phone(&proxy.url(), "O1").await;
    let options = SyncOptions { keep_alive: false, upload_chunk_bytes: 64 << 10, ..options() };
    a.sync(&options, |_| {}).await.unwrap();
    let record_id = a.new_record("T1").unwrap();
    let mut photos = Vec::new();
    for n in 0..2u32 {
        // Noise does not compress: a few hundred kilobytes of PNG, several chunks each.
        let path = a_dir.path().join(format!("photo-{n}.png"));
        fieldsync_tests::harness::noise_png(&path, 300, 0x9e37_79b9u32.wrapping_mul(n + 1));
        let sha256 = a.add_photo(&record_id, &path, &format!("第{n}张")).unwrap();
        photos.push((sha256, std::fs::read(&path).unwrap()));
    }
    assert_eq!(a.status().unwrap().photos_not_uploaded.len(), 2);
    // One request per connection: the task list, the team, the sync rounds, then the uploads.
    let mut plan = vec![Fault::Pass; 6];
    plan.extend([Fault::CutRequestAfter(30_000), Fault::Pass, Fault::CutResponseAfter(0), Fault::Pass]);
    plan.extend(
        std::iter::repeat_n([Fault::Pass, Fault::Pass, Fault::Pass, Fault::CutRequestAfter(50_000)], 3).flatten(),
    );
    proxy.plan(plan);
    let summary = a.sync(&options, |_| {}).await.unwrap();
    proxy.settled().await;
    assert!(summary.retries >= 1, "the faults were met: {summary:?}");
    let photo_bytes: usize = photos.iter().map(|(_, bytes)| bytes.len()).sum();
    assert!(summary.bytes_up < photo_bytes * 3 / 2, "uploads resumed, not restarted: {} bytes", summary.bytes_up);
    assert_eq!(summary.photos_uploaded.len(), 2, "{summary:?}");
    assert!(a.status().unwrap().photos_not_uploaded.is_empty());
    for (sha256, bytes) in &photos {
        let response = server.get(&format!("/v1/blobs/{sha256}"), &reviewer).await;
        assert_eq!(response.status(), 200);
        assert_eq!(&response.bytes().await.unwrap()[..], &bytes[..], "byte-equal");
    }
    let missing: serde_json::Value =
        server.get(&format!("/v1/records/{record_id}/missing-blobs"), &reviewer).await.json().await.unwrap();
    assert_eq!(missing["missing"], serde_json::json!([]));
    let stored = server.snapshot().iter().filter(|row| row.starts_with("blobs: ")).count();
    assert_eq!(stored, 2, "each photo stored once");
    // Nothing more to send: the next sync uploads nothing.
    assert!(a.sync(&options, |_| {}).await.unwrap().photos_uploaded.is_empty());
}
