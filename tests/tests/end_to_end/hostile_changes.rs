//! Hostile changes from enrolled devices, built by hand and sent through the real server: each is
//! refused with its code, the stored record still loads and is unchanged, every other device's
//! sync still answers, and the record's evidence package still verifies.

use automerge::legacy::{Key, Op, OpType, SortedVec};
use automerge::sync::{Message, MessageVersion};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Change, ChangeHash, ExpandedChange, ReadDoc, ScalarValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemas::{DocumentSyncMessage, RecordStatus, SYNC_PROTOCOL_VERSION, SyncRequest, SyncResponse};
use sync_core::change_check::containers;
use sync_core::document::{Edit, RecordDocument, genesis_actor, new_record_id};
use sync_core::evidence::{KeyTrust, verify_package};

use fieldsync_tests::harness::{Phone, TestServer, enroll, error_code};
use server::store::prelude::*;

const PASSWORD: &str = "correct horse battery";

/// A team (O1, O2 on T1), an officer on no team of it (O3), a reviewer and an administrator.
async fn city() -> TestServer {
    let server = TestServer::start().await;
    server.entities(3);
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    server.account("ADM", PASSWORD, &["admin"]);
    for officer in ["O1", "O2", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    let supervisor = server.token("SUP", PASSWORD).await;
    assert_eq!(server.task(&supervisor, "T1", &["O1", "O2"]).await.status(), 200);
    server
}

fn codes(rejections: &[schemas::ChangeRejection]) -> Vec<String> {
    rejections.iter().map(|r| serde_json::to_value(&r.reason).unwrap()["code"].as_str().unwrap().to_string()).collect()
}

/// A record of T1 by O1 and O2, both present, signed by both and locked on the server.
async fn locked_record(server: &TestServer, a: &mut Phone, b: &mut Phone) -> String {
    let now = server::now_ms();
    let id = new_record_id(now as u64, [7; 10]);
    let mut record = RecordDocument::create(&id, a.actor.clone(), "T1", now).unwrap();
    record.apply(Edit::SetStartedAt(now - 60_000), now).unwrap();
    for (officer, number) in [("O1", "GX-O1"), ("O2", "GX-O2")] {
        let present = schemas::OfficerPresent {
            officer_id: officer.into(),
            name: officer.into(),
            certificate_number: number.into(),
            certificate_shown: true,
        };
        record.apply(Edit::AddOfficerPresent(present), now).unwrap();
    }
    for completing in sync_core::sample::completing_edits(now) {
        record.apply(completing, now).unwrap();
    }
    a.records.insert(record);
    a.session.record_changed(&id);
    assert!(a.sync(server).await.is_empty());
    assert!(b.sync(server).await.is_empty());
    let certificates = server.store.certificates(None).unwrap();
    b.records.get_mut(&id).unwrap().sign("O2", server::now_ms(), &certificates).unwrap();
    b.session.record_changed(&id);
    assert!(b.sync(server).await.is_empty());
    assert!(a.sync(server).await.is_empty());
    a.records.get_mut(&id).unwrap().sign("O1", server::now_ms(), &certificates).unwrap();
    a.session.record_changed(&id);
    assert!(a.sync(server).await.is_empty());
    assert!(b.sync(server).await.is_empty());
    assert_eq!(a.records.get(&id).unwrap().read().unwrap().status, RecordStatus::Locked);
    id
}

/// A new draft of T1 made on `phone` and synced: its record id.
async fn new_draft(server: &TestServer, phone: &mut Phone, n: u8) -> String {
    let now = server::now_ms();
    let id = new_record_id(now as u64, [n; 10]);
    phone.records.insert(RecordDocument::create(&id, phone.actor.clone(), "T1", now).unwrap());
    phone.session.record_changed(&id);
    assert!(phone.sync(server).await.is_empty());
    id
}

/// Sends `changes` for `record_id` as `phone`'s device, in one hand-made sync message.
async fn send(server: &TestServer, phone: &Phone, record_id: &str, changes: &[Change]) -> SyncResponse {
    let mut heads: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
    heads.sort();
    let message = Message {
        heads,
        need: vec![],
        have: vec![],
        changes: changes.iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into(),
        flags: None,
        version: MessageVersion::V1,
    };
    let request = SyncRequest {
        protocol: SYNC_PROTOCOL_VERSION,
        since: None,
        documents: vec![DocumentSyncMessage { record_id: record_id.into(), message: message.encode() }],
    };
    let response = server.post_sync(&phone.token, "application/cbor", schemas::wire::to_cbor(&request)).await;
    assert_eq!(response.status(), 200, "a hostile change is refused, never a 500");
    schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap()
}

/// The next change `phone` could make on its copy of `record_id`, with the given counters.
fn hand_made(phone: &Phone, record_id: &str, start_delta: i64, operations: Vec<Op>) -> Change {
    let doc = phone.records.get(record_id).unwrap().automerge();
    let heads = doc.get_heads();
    let max_op = heads.iter().map(|h| doc.get_change_meta_by_hash(h).unwrap().max_op).max().unwrap();
    let seq = doc.get_changes(&[]).iter().filter(|c| c.actor_id() == &phone.actor).count() as u64 + 1;
    Change::from(ExpandedChange {
        operations,
        actor_id: phone.actor.clone(),
        hash: None,
        seq,
        start_op: std::num::NonZeroU64::new((max_op as i64 + 1 + start_delta).max(1) as u64).unwrap(),
        time: server::now_ms(),
        message: None,
        deps: heads,
        extra_bytes: Vec::new(),
        author: None,
    })
}

fn put_conclusion(record_id: &str, value: &str) -> Op {
    let header = containers(record_id).into_iter().find(|(_, (name, _))| *name == "header").unwrap().0;
    Op {
        action: OpType::Put(ScalarValue::Str(value.into())),
        obj: header,
        key: Key::Map("conclusion".into()),
        pred: SortedVec::new(),
        insert: false,
    }
}

/// The stored record loads, reads as `before`, its history and evidence answer, the package
/// verifies against the published key, and `check` finds nothing.
async fn still_whole(server: &TestServer, record_id: &str, before: &schemas::InspectionRecord) {
    let reviewer = server.token("REV", PASSWORD).await;
    let stored = server.store.record(record_id).unwrap().unwrap();
    automerge::Automerge::load(&stored.document).expect("the stored document loads from its bytes");
    let now: schemas::InspectionRecord =
        server.get(&format!("/v1/records/{record_id}"), &reviewer).await.json().await.unwrap();
    assert_eq!(&now, before, "the record is unchanged");
    assert_eq!(server.get(&format!("/v1/records/{record_id}/history"), &reviewer).await.status(), 200);
    let key = server.client.get(server.url("/v1/log/key")).send().await.unwrap().text().await.unwrap();
    let package = server.get(&format!("/v1/records/{record_id}/evidence"), &reviewer).await;
    assert_eq!(package.status(), 200);
    let report = verify_package(&package.bytes().await.unwrap(), KeyTrust::Published(&key), 300_000);
    assert!(report.holds(), "{:#?}", report.checks.iter().filter(|c| !c.holds).collect::<Vec<_>>());
    let admin = server.token("ADM", PASSWORD).await;
    let check: serde_json::Value = server.get("/v1/admin/check", &admin).await.json().await.unwrap();
    assert_eq!(check["ok"], true, "{check}");
}

#[tokio::test]
async fn malformed_change_a_lamport_violation_bricks_nothing_on_a_draft_or_a_locked_record() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut b = enroll(&server, "O2", PASSWORD).await;
    let mut c = enroll(&server, "O3", PASSWORD).await;
    let id = locked_record(&server, &mut a, &mut b).await;
    let before = a.records.get(&id).unwrap().read().unwrap();
    // A team member, and an officer on no team of the record who derived its genesis from its id.
    c.records.insert(RecordDocument::from_automerge(
        &id,
        a.records.get(&id).unwrap().automerge().clone(),
        c.actor.clone(),
    ));
    for phone in [&b, &c] {
        let hostile = hand_made(phone, &id, -5, vec![put_conclusion(&id, "伪造")]);
        let response = send(&server, phone, &id, &[hostile]).await;
        assert_eq!(codes(&response.rejections), ["malformed_change"]);
    }
    still_whole(&server, &id, &before).await;
    // Every device of the team still syncs.
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    assert!(b.sync(&server).await.is_empty());

    // The same on a draft of another record: refused, and the draft still loads and syncs.
    let draft = new_draft(&server, &mut a, 8).await;
    assert!(b.sync(&server).await.is_empty());
    let hostile = hand_made(&b, &draft, -3, vec![put_conclusion(&draft, "伪造")]);
    assert_eq!(codes(&send(&server, &b, &draft, &[hostile]).await.rejections), ["malformed_change"]);
    let stored = server.store.record(&draft).unwrap().unwrap();
    automerge::Automerge::load(&stored.document).unwrap();
    b.records.get_mut(&draft).unwrap().apply(Edit::SetConclusion("合格".into()), server::now_ms()).unwrap();
    b.session.record_changed(&draft);
    assert!(b.sync(&server).await.is_empty());
    assert!(a.sync(&server).await.is_empty());
    assert_eq!(a.records.get(&draft).unwrap().read().unwrap().header.conclusion.as_deref(), Some("合格"));
}

#[tokio::test]
async fn record_locked_an_empty_change_and_a_rewrite_of_the_same_value_after_the_lock() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut b = enroll(&server, "O2", PASSWORD).await;
    let mut c = enroll(&server, "O3", PASSWORD).await;
    let id = locked_record(&server, &mut a, &mut b).await;
    let before = a.records.get(&id).unwrap().read().unwrap();
    let empty = hand_made(&b, &id, 0, vec![]);
    assert_eq!(codes(&send(&server, &b, &id, &[empty]).await.rejections), ["record_locked"]);
    let same = hand_made(&b, &id, 0, vec![put_conclusion(&id, "未发现环境违法行为")]);
    assert_eq!(codes(&send(&server, &b, &id, &[same]).await.rejections), ["record_locked"]);
    // An officer on no team of the record is refused as such, locked or not.
    c.records.insert(RecordDocument::from_automerge(
        &id,
        a.records.get(&id).unwrap().automerge().clone(),
        c.actor.clone(),
    ));
    let outsider = hand_made(&c, &id, 0, vec![]);
    assert_eq!(codes(&send(&server, &c, &id, &[outsider]).await.rejections), ["officer_not_on_team"]);
    still_whole(&server, &id, &before).await;

    // A large refused change is kept in quarantine only in part, with its size.
    let large = "大".repeat(300_000);
    let huge = hand_made(&b, &id, 0, vec![put_conclusion(&id, &large)]);
    let size = huge.raw_bytes().len();
    send(&server, &b, &id, std::slice::from_ref(&huge)).await;
    let rows = server
        .query(&format!("SELECT length(change), change_bytes FROM quarantine WHERE change_hash = '{}'", huge.hash()));
    assert_eq!(rows, [[server::store::QUARANTINE_PREFIX_BYTES.to_string(), size.to_string()]]);
}

#[tokio::test]
async fn reserved_actor_a_device_cannot_enroll_as_a_records_genesis_actor() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let id = new_draft(&server, &mut a, 9).await;

    let token = server.token("O2", PASSWORD).await;
    let challenge: serde_json::Value =
        server.post("/v1/devices/challenge", &token, serde_json::json!({})).await.json().await.unwrap();
    let challenge = STANDARD.decode(challenge["challenge"].as_str().unwrap()).unwrap();
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let actor = genesis_actor(&id).to_bytes().to_vec();
    let public = key.verifying_key().to_bytes();
    use ed25519_dalek::Signer;
    let signature = key.sign(&schemas::device::enrollment_message(&challenge, &public, &actor));
    let before = server.snapshot();
    let response = server
        .post(
            "/v1/devices",
            &token,
            serde_json::json!({
                "challenge": STANDARD.encode(&challenge),
                "public_key": STANDARD.encode(public),
                "actor_id": hex::encode(&actor),
                "signature": STANDARD.encode(signature.to_bytes()),
            }),
        )
        .await;
    assert_eq!(error_code(response).await, (409, "reserved_actor".to_string()));
    assert_eq!(server.snapshot(), before, "nothing enrolled, the challenge not used");
}

#[tokio::test]
async fn a_refused_creation_stores_nothing() {
    let server = city().await;
    let mut c = enroll(&server, "O3", PASSWORD).await;
    let now = server::now_ms();
    let id = new_record_id(now as u64, [10; 10]);
    c.records.insert(RecordDocument::create(&id, c.actor.clone(), "T1", now).unwrap());
    c.session.record_changed(&id);
    let rejections = c.sync(&server).await;
    assert!(!rejections.is_empty());
    assert!(server.store.record(&id).unwrap().is_none(), "no genesis-only draft is stored");
}

/// After a restore from a backup, a device re-uploads a teammate's change it holds: refused to
/// it alone (it is not that change's device) and kept on it, so that the teammate's own device
/// can still deliver the change, which the server then takes.
#[tokio::test]
async fn actor_not_bound_to_device_a_relayed_change_stays_deliverable_by_its_own_device() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut b = enroll(&server, "O2", PASSWORD).await;
    let id = new_draft(&server, &mut a, 11).await;
    assert!(b.sync(&server).await.is_empty());
    // A's change reaches B's phone but not the server (as after a restore from an older backup).
    let x =
        a.records.get_mut(&id).unwrap().apply(Edit::SetAddress("柳州市".into()), server::now_ms()).unwrap().unwrap();
    let change = a.records.get(&id).unwrap().automerge().get_change_by_hash(&x).unwrap();
    b.records.get_mut(&id).unwrap().automerge_mut().apply_changes([change.clone()]).unwrap();
    let response = send(&server, &b, &id, &[change]).await;
    assert_eq!(codes(&response.rejections), ["actor_not_bound_to_device"]);
    let rows = server.query(&format!("SELECT device_id, final FROM quarantine WHERE change_hash = '{x}'"));
    assert_eq!(rows, [[b.device_id.clone(), "0".to_string()]], "refused to B alone, not for good");
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty(), "A's own device delivers it");
    let stored = automerge::Automerge::load(&server.store.record(&id).unwrap().unwrap().document).unwrap();
    assert!(stored.get_change_meta_by_hash(&x).is_some());
}

#[tokio::test]
async fn check_reports_a_stored_record_that_does_not_load() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let id = new_draft(&server, &mut a, 12).await;
    // An operator's mistake, or a bug of an older server: bytes that are not a document.
    let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    conn.execute("UPDATE records SET document = x'856f4a83deadbeef' WHERE record_id = ?1", [&id]).unwrap();
    drop(conn);
    let admin = server.token("ADM", PASSWORD).await;
    let check: serde_json::Value = server.get("/v1/admin/check", &admin).await.json().await.unwrap();
    assert_eq!(check["ok"], false);
    assert_eq!(check["records"][0]["record_id"], id.as_str(), "{check}");
}

/// P4: a recusal recorded after the task exists binds the recused officer's next change, and the
/// task is listed to supervisors for reassignment; the teammate writes on.
#[tokio::test]
async fn officer_recused_after_the_task_exists_writes_nothing_more() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut b = enroll(&server, "O2", PASSWORD).await;
    let id = new_draft(&server, &mut a, 13).await;
    assert!(b.sync(&server).await.is_empty());
    let admin = server.token("ADM", PASSWORD).await;
    let response = server
        .post(
            "/v1/admin/recusals",
            &admin,
            serde_json::json!({"officer_id": "O2", "entity_id": "E00001", "ground": "relative_is_party"}),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    b.records.get_mut(&id).unwrap().apply(Edit::SetAddress("回避后".into()), server::now_ms()).unwrap();
    b.session.record_changed(&id);
    assert_eq!(codes(&b.sync(&server).await), ["officer_recused"]);
    a.records.get_mut(&id).unwrap().apply(Edit::SetAddress("柳州市".into()), server::now_ms()).unwrap();
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    let supervisor = server.token("SUP", PASSWORD).await;
    let listed: Vec<serde_json::Value> = server.get("/v1/recusals/tasks", &supervisor).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["task_id"], "T1");
    assert_eq!(listed[0]["recused"][0]["officer_id"], "O2");
    assert_eq!(server.get("/v1/recusals/tasks", &a.token).await.status(), 403);
}

/// A device that does not hold the record to its task (a hostile app) names an officer outside
/// the team as present, or another entity: refused, the stored record unchanged.
#[tokio::test]
async fn officer_present_not_on_team_and_entity_not_of_task_from_a_hostile_device() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let id = new_draft(&server, &mut a, 14).await;
    let stored = server.store.record(&id).unwrap().unwrap().document;
    let outsider = schemas::OfficerPresent {
        officer_id: "O3".into(),
        name: "O3".into(),
        certificate_number: "GX-O3".into(),
        certificate_shown: true,
    };
    let edits = [
        (Edit::AddOfficerPresent(outsider), "officer_present_not_on_team"),
        (
            Edit::SetEntity(schemas::EntityRef { entity_id: Some("E00002".into()), ..Default::default() }),
            "entity_not_of_task",
        ),
    ];
    for (edit, code) in edits {
        let mut copy = a.records.get(&id).unwrap().clone();
        let hash = copy.apply(edit, server::now_ms()).unwrap().unwrap();
        let change = copy.automerge().get_change_by_hash(&hash).unwrap();
        assert_eq!(codes(&send(&server, &a, &id, &[change]).await.rejections), [code]);
        assert_eq!(server.store.record(&id).unwrap().unwrap().document, stored, "{code}: unchanged");
    }
}

/// Writes `write` on a copy of `phone`'s record as one change made at `at_ms`, bypassing the
/// record's own checks (a device that skips them), and returns that change.
fn raw_change(
    phone: &Phone,
    record_id: &str,
    at_ms: i64,
    write: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &automerge::Automerge),
) -> Change {
    let mut copy = phone.records.get(record_id).unwrap().clone();
    let doc = copy.automerge().clone();
    copy.automerge_mut()
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(at_ms),
            |tx| {
                write(tx, &doc);
                Ok(())
            },
        )
        .unwrap();
    copy.automerge().get_last_local_change().unwrap().clone()
}

/// A device that signs and locks without checking the record is complete (C7, P4): refused with
/// each missing item named, the stored record unchanged; completed, its signature is taken.
#[tokio::test]
async fn c7_p4_a_hostile_device_signing_and_locking_an_incomplete_record_is_refused() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let id = new_draft(&server, &mut a, 15).await;
    let now = server::now_ms();
    for officer in ["O1", "O2"] {
        let present = schemas::OfficerPresent {
            officer_id: officer.into(),
            name: officer.into(),
            certificate_number: format!("GX-{officer}"),
            certificate_shown: true,
        };
        a.records.get_mut(&id).unwrap().apply(Edit::AddOfficerPresent(present), now).unwrap();
    }
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    let stored = server.store.record(&id).unwrap().unwrap().document;
    let sign_and_lock = |phone: &Phone, at_ms: i64| {
        raw_change(phone, &id, at_ms, |tx, doc| {
            let signatures = doc.get(automerge::ROOT, "signatures").unwrap().unwrap().1;
            let signature = schemas::OfficerSignature {
                officer_id: "O1".into(),
                certificate_number: "GX-O1".into(),
                signed_at_ms: at_ms,
            };
            tx.put(&signatures, "O1", serde_json::to_string(&signature).unwrap()).unwrap();
            tx.put(automerge::ROOT, "locked", true).unwrap();
        })
    };
    let response = send(&server, &a, &id, &[sign_and_lock(&a, server::now_ms())]).await;
    match &response.rejections[..] {
        [rejection] => assert_eq!(
            rejection.reason,
            schemas::RejectionReason::SigningRuleViolated {
                rule: "incomplete_record".into(),
                detail: "missing: header/ended_at_ms, recusal/asked, recusal/answer, header/conclusion".into(),
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.store.record(&id).unwrap().unwrap().document, stored, "unchanged");
    // Completed through the ordinary path, the same signature (without a lock over O2's
    // missing one) is accepted.
    for completing in sync_core::sample::completing_edits(server::now_ms()) {
        a.records.get_mut(&id).unwrap().apply(completing, server::now_ms()).unwrap();
    }
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    let certificates = server.store.certificates(None).unwrap();
    a.records.get_mut(&id).unwrap().sign("O1", server::now_ms(), &certificates).unwrap();
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    let on_server = sync_core::document::read_record(
        &id,
        &automerge::Automerge::load(&server.store.record(&id).unwrap().unwrap().document).unwrap(),
    )
    .unwrap();
    assert_eq!(on_server.status, RecordStatus::Signing);
}

/// The checklist of the task's matter travels with the task, and a device that writes another
/// code (a hostile app) is refused `unknown_checklist_item`; a code of the matter is taken.
#[tokio::test]
async fn unknown_checklist_item_from_a_hostile_device() {
    let server = city().await;
    let admin = server.token("ADM", PASSWORD).await;
    let matters = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/matters.json")).unwrap();
    let imported = server
        .client
        .post(server.url("/v1/admin/matters"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(matters)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200);
    let mut a = enroll(&server, "O1", PASSWORD).await;
    // T1's matter is `M01 排污许可证执行情况检查`: M01's checklist.
    let team: schemas::TaskTeam = server.get("/v1/tasks/T1/team", &a.token).await.json().await.unwrap();
    let m01 = ["PERMIT-HELD", "PERMIT-LIMITS", "OUTLET-STANDARD", "SELF-MONITORING", "LEDGER"];
    assert_eq!(team.checklist, Some(m01.iter().map(|c| c.to_string()).collect()));
    let id = new_draft(&server, &mut a, 16).await;
    let stored = server.store.record(&id).unwrap().unwrap().document;
    let item = |code: &str| Edit::SetChecklistItem {
        code: code.into(),
        result: schemas::ChecklistResult::NonCompliant,
        note: Some("现场核查".into()),
    };
    let mut copy = a.records.get(&id).unwrap().clone();
    let hash = copy.apply(item("NOISE"), server::now_ms()).unwrap().unwrap();
    let change = copy.automerge().get_change_by_hash(&hash).unwrap();
    let response = send(&server, &a, &id, &[change]).await;
    assert_eq!(codes(&response.rejections), ["unknown_checklist_item"]);
    assert_eq!(
        response.rejections[0].reason,
        schemas::RejectionReason::UnknownChecklistItem { item_code: "NOISE".into() }
    );
    assert_eq!(server.store.record(&id).unwrap().unwrap().document, stored, "unchanged");
    a.records.get_mut(&id).unwrap().apply(item("LEDGER"), server::now_ms()).unwrap();
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty(), "a code of the matter is taken");
}

/// Another record's genesis sent as this record's change is `not_genesis`, not an unknown actor.
#[tokio::test]
async fn not_genesis_another_records_genesis_is_named() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let id = new_draft(&server, &mut a, 17).await;
    let other = new_record_id(server::now_ms() as u64, [18; 10]);
    let genesis = sync_core::document::genesis(&other).get_changes(&[]).remove(0);
    let response = send(&server, &a, &id, &[genesis]).await;
    assert_eq!(codes(&response.rejections), ["not_genesis"]);
}
