//! Tasks, syncing records, validation refusals kept in quarantine, reading records.

use schemas::{ChecklistResult, RecordStatus};
use schemas::{TaskTeam, TeamMember};
use server::store::Account;
use server::store::prelude::*;
use sync_core::document::{Edit, RecordDocument, new_record_id};

use fieldsync_tests::harness::{DAY, Phone, TestServer, enroll};

const PASSWORD: &str = "correct horse battery";

/// A city with a supervisor, a reviewer, three certified officers and one task for O1 and O2.
pub(crate) async fn city() -> (TestServer, String) {
    let server = TestServer::start().await;
    server.entities(10);
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    for officer in ["O1", "O2", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    let supervisor = server.token("SUP", PASSWORD).await;
    let response = server.task(&supervisor, "T1", &["O1", "O2"]).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    (server, supervisor)
}

fn new_record(phone: &mut Phone, n: u8) -> String {
    let id = new_record_id(server::now_ms() as u64, [n; 10]);
    let mut record = RecordDocument::create(&id, phone.actor.clone(), "T1", server::now_ms()).unwrap();
    record.apply(Edit::SetStartedAt(server::now_ms() - 60_000), server::now_ms()).unwrap();
    phone.records.insert(record);
    phone.session.record_changed(&id);
    id
}

fn edit(phone: &mut Phone, id: &str, edit: Edit) {
    phone.records.get_mut(id).unwrap().apply(edit, server::now_ms()).unwrap();
    phone.session.record_changed(id);
}

fn codes(rejections: &[schemas::ChangeRejection]) -> Vec<String> {
    rejections.iter().map(|r| serde_json::to_value(&r.reason).unwrap()["code"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn p1_p4_a_task_needs_two_certified_officers_none_recused() {
    let (server, supervisor) = city().await;
    server.store.add_recusal("O3", "E00001", "relative_is_party").unwrap();
    server.account("O4", PASSWORD, &["officer"]);
    let cases = [
        ("T2", vec!["O1"], 422, "team_too_small"),
        ("T3", vec!["O1", "O3"], 422, "officer_recused"),
        ("T4", vec!["O1", "O4"], 422, "officer_not_certified"),
        ("T5", vec!["O1", "O2"], 200, ""),
    ];
    for (task, team, status, code) in cases {
        let before = server.snapshot();
        let response = server.task(&supervisor, task, &team).await;
        assert_eq!(response.status(), status, "{task}");
        if status != 200 {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["code"], code, "{task}");
            assert_eq!(server.snapshot(), before, "{task}: nothing changed");
        }
    }
}

#[tokio::test]
async fn two_officers_record_offline_sync_and_the_server_merges_and_locks() {
    let (server, _) = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut b = enroll(&server, "O2", PASSWORD).await;
    let tasks: Vec<serde_json::Value> = server.get("/v1/tasks", &a.token).await.json().await.unwrap();
    assert_eq!(tasks.len(), 1, "the task reaches its team");
    let id = new_record(&mut a, 1);
    let officers = [("O1", "GX-O1"), ("O2", "GX-O2")];
    for (officer, number) in officers {
        edit(
            &mut a,
            &id,
            Edit::AddOfficerPresent(schemas::OfficerPresent {
                officer_id: officer.into(),
                name: officer.into(),
                certificate_number: number.into(),
                certificate_shown: true,
            }),
        );
    }
    for completing in sync_core::sample::completing_edits(server::now_ms()) {
        edit(&mut a, &id, completing);
    }
    assert!(a.sync(&server).await.is_empty());
    assert!(b.sync(&server).await.is_empty());
    assert!(b.records.get(&id).is_some(), "the record reached the other phone");
    // Both offline: each fills a checklist item and types observations; conclusions differ.
    edit(&mut a, &id, Edit::SetChecklistItem { code: "LEDGER".into(), result: ChecklistResult::Compliant, note: None });
    edit(&mut a, &id, Edit::AppendObservations("甲：设施运行正常。".into()));
    edit(&mut a, &id, Edit::SetConclusion("合格".into()));
    edit(
        &mut b,
        &id,
        Edit::SetChecklistItem { code: "NO-BYPASS".into(), result: ChecklistResult::Compliant, note: None },
    );
    edit(&mut b, &id, Edit::AppendObservations("乙：台账齐全。".into()));
    edit(&mut b, &id, Edit::SetConclusion("责令改正".into()));
    assert!(a.sync(&server).await.is_empty());
    assert!(b.sync(&server).await.is_empty());
    assert!(a.sync(&server).await.is_empty());
    let on_server: schemas::InspectionRecord =
        server.get(&format!("/v1/records/{id}"), &a.token).await.json().await.unwrap();
    assert_eq!(on_server, a.records.get(&id).unwrap().read().unwrap());
    assert_eq!(on_server, b.records.get(&id).unwrap().read().unwrap());
    assert!(on_server.observations.contains("甲：设施运行正常。") && on_server.observations.contains("乙：台账齐全。"));
    assert_eq!(on_server.checklist.len(), 2);
    assert_eq!(on_server.conflicts.len(), 1, "the conclusion conflict is reported");
    // One resolves; both sign; the record locks; a later edit is refused and quarantined.
    a.records.get_mut(&id).unwrap().resolve("header/conclusion", "责令改正".into(), "O1", server::now_ms()).unwrap();
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    assert!(b.sync(&server).await.is_empty());
    let certificates = server.store.certificates(None).unwrap();
    b.records.get_mut(&id).unwrap().sign("O2", server::now_ms(), &certificates).unwrap();
    b.session.record_changed(&id);
    assert!(b.sync(&server).await.is_empty());
    assert!(a.sync(&server).await.is_empty());
    a.records.get_mut(&id).unwrap().sign("O1", server::now_ms(), &certificates).unwrap();
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    let locked: schemas::InspectionRecord =
        server.get(&format!("/v1/records/{id}"), &b.token).await.json().await.unwrap();
    assert_eq!(locked.status, RecordStatus::Locked);
    assert!(b.sync(&server).await.is_empty());
    // B's phone writes past its own checks (as a tampered app would).
    let doc = b.records.get_mut(&id).unwrap().automerge_mut();
    let header = automerge::ReadDoc::get(doc, automerge::ROOT, "header").unwrap().unwrap().1;
    doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| automerge::transaction::CommitOptions::default().with_time(server::now_ms()),
        |tx| automerge::transaction::Transactable::put(tx, &header, "conclusion", "改"),
    )
    .unwrap();
    b.session.record_changed(&id);
    assert_eq!(codes(&b.sync(&server).await), ["record_locked"]);
    let reviewer = server.token("REV", PASSWORD).await;
    let quarantine: Vec<serde_json::Value> = server.get("/v1/quarantine", &reviewer).await.json().await.unwrap();
    assert_eq!(quarantine.len(), 1);
    assert_eq!(quarantine[0]["reason"]["code"], "record_locked");
    assert_eq!(quarantine[0]["officer_id"], "O2");
    let after: schemas::InspectionRecord =
        server.get(&format!("/v1/records/{id}"), &reviewer).await.json().await.unwrap();
    assert_eq!(after, locked, "the locked record is untouched");
    let history: Vec<serde_json::Value> =
        server.get(&format!("/v1/records/{id}/history"), &reviewer).await.json().await.unwrap();
    assert!(history.iter().any(|h| h["officer_id"] == "O2" && h["device_id"] == b.device_id.as_str()));
    // A revoked device's work stays, marked.
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let revoked = server.post(&format!("/v1/devices/{}/revoke", b.device_id), &admin, serde_json::json!({})).await;
    assert_eq!(revoked.status(), 200);
    let history: Vec<serde_json::Value> =
        server.get(&format!("/v1/records/{id}/history"), &reviewer).await.json().await.unwrap();
    let by_b: Vec<&serde_json::Value> = history.iter().filter(|h| h["device_id"] == b.device_id.as_str()).collect();
    assert!(!by_b.is_empty() && by_b.iter().all(|h| h["device_revoked_at_ms"].is_i64()));
    let after_revocation: schemas::InspectionRecord =
        server.get(&format!("/v1/records/{id}"), &reviewer).await.json().await.unwrap();
    assert_eq!(after_revocation, locked, "nothing it captured is dropped");
    let page: serde_json::Value =
        server.get("/v1/records?task=T1&status=locked", &reviewer).await.json().await.unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_officer_not_on_the_team_is_refused_and_the_record_unaffected() {
    let (server, _) = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut outsider = enroll(&server, "O3", PASSWORD).await;
    let id = new_record(&mut a, 1);
    assert!(a.sync(&server).await.is_empty());
    // The outsider cannot read it through sync: only its own empty copy exists.
    let mut copy = a.records.get(&id).unwrap().clone();
    copy = RecordDocument::from_automerge(&id, copy.into_automerge(), outsider.actor.clone());
    copy.apply(Edit::SetConclusion("外人".into()), server::now_ms()).unwrap();
    outsider.records.insert(copy);
    outsider.session.record_changed(&id);
    let rejections = outsider.sync(&server).await;
    assert_eq!(codes(&rejections), ["officer_not_on_team"]);
    let record: schemas::InspectionRecord =
        server.get(&format!("/v1/records/{id}"), &a.token).await.json().await.unwrap();
    assert_eq!(record.header.conclusion, None);
    assert_eq!(server.get(&format!("/v1/records/{id}"), &outsider.token).await.status(), 404);
}

/// The status and JSON body of `GET path`, with a token or without one.
async fn get_json(server: &TestServer, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = server.client.get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_team_member_caches_the_team_names_and_every_certificate_for_offline_signing() {
    let (server, supervisor) = city().await;
    // A name that is not the officer's id, and certificates with a past: O1 also holds an
    // expired one, O4's was suspended and reinstated.
    let account = Account {
        officer_id: "O4".into(),
        name: "李四".into(),
        unit: "支队".into(),
        password_hash: None,
        must_change_password: false,
        roles: vec!["officer".into()],
    };
    server.store.create_account(account, server::now_ms()).unwrap();
    server.certificate("O4");
    for (days_ago, status) in [(20, schemas::CertificateStatus::Suspended), (10, schemas::CertificateStatus::Active)] {
        let change =
            schemas::CertificateStatusChange { at_ms: server::now_ms() - days_ago * DAY, status, reason: None };
        server.store.change_certificate_status("GX-O4", &change, "test", server::now_ms()).unwrap();
    }
    let mut expired = server.store.certificate("GX-O1").unwrap().unwrap();
    expired.number = "GX-O1-OLD".into();
    (expired.valid_from_ms, expired.valid_until_ms) = (expired.valid_from_ms - 3 * 365 * DAY, expired.valid_from_ms);
    server.store.issue_certificate(&expired, "test", server::now_ms()).unwrap();
    assert_eq!(server.task(&supervisor, "T2", &["O1", "O4"]).await.status(), 200);
    let o1 = server.token("O1", PASSWORD).await;
    let response = server.get("/v1/tasks/T2/team", &o1).await;
    assert_eq!(response.status(), 200);
    let team: TaskTeam = response.json().await.unwrap();
    let task: schemas::Task = server.get("/v1/tasks/T2", &o1).await.json().await.unwrap();
    assert_eq!(team.task, task);
    let member = |officer_id: &str, name: &str| TeamMember {
        officer_id: officer_id.into(),
        name: name.into(),
        certificates: server.store.certificates(Some(&[officer_id.to_string()])).unwrap(),
    };
    assert_eq!(team.members, [member("O1", "O1"), member("O4", "李四")]);
    assert_eq!(team.members[0].certificates.len(), 2, "the expired certificate too");
    assert_eq!(team.members[1].certificates[0].status_history.len(), 2, "with its status history");
}

/// The team is answered to exactly whoever `GET /v1/tasks/{task_id}` answers, and refused
/// with the same status and code to everyone else.
#[tokio::test]
async fn the_task_team_is_shown_to_whoever_may_see_the_task() {
    let (server, supervisor) = city().await;
    let mut tokens = std::collections::HashMap::from([("SUP", supervisor)]);
    for officer in ["O2", "REV", "O3"] {
        tokens.insert(officer, server.token(officer, PASSWORD).await);
    }
    let cases = [
        ("a team member", Some("O2"), "T1", 200, ""),
        ("a supervisor", Some("SUP"), "T1", 200, ""),
        ("a reviewer", Some("REV"), "T1", 200, ""),
        ("an officer not on the team", Some("O3"), "T1", 404, "not_found"),
        ("a supervisor, for no such task", Some("SUP"), "T9", 404, "not_found"),
        ("no token", None, "T1", 401, "missing_token"),
    ];
    for (who, caller, task, status, code) in cases {
        let token = caller.map(|caller| tokens[caller].as_str());
        let (got, body) = get_json(&server, &format!("/v1/tasks/{task}/team"), token).await;
        assert_eq!((got, body["code"].as_str().unwrap_or("")), (status, code), "{who}");
        assert_eq!(get_json(&server, &format!("/v1/tasks/{task}"), token).await.0, status, "{who}: as the task");
        if status == 200 {
            let team: TaskTeam = serde_json::from_value(body).unwrap();
            let members: Vec<&str> = team.members.iter().map(|m| m.officer_id.as_str()).collect();
            assert_eq!(members, ["O1", "O2"], "{who}");
            assert!(team.members.iter().all(|m| m.certificates.len() == 1), "{who}");
        }
    }
}

#[tokio::test]
async fn p3_work_after_a_suspension_is_refused_work_before_it_accepted() {
    let (server, _) = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let id = new_record(&mut a, 1);
    edit(&mut a, &id, Edit::AppendObservations("停职前".into()));
    let suspended_at = server::now_ms() + 500;
    a.records.get_mut(&id).unwrap().apply(Edit::AppendObservations("停职后".into()), suspended_at + 1000).unwrap();
    let admin_change = schemas::CertificateStatusChange {
        at_ms: suspended_at,
        status: schemas::CertificateStatus::Suspended,
        reason: Some("停职".into()),
    };
    server.store.change_certificate_status("GX-O1", &admin_change, "test", suspended_at).unwrap();
    let rejections = a.sync(&server).await;
    assert_eq!(codes(&rejections), ["officer_not_certified"]);
    assert_eq!(
        rejections[0].reason,
        schemas::RejectionReason::OfficerNotCertified {
            officer_id: "O1".into(),
            at_ms: suspended_at + 1000,
            certificate_status: "suspended".into(),
        }
    );
    let record: schemas::InspectionRecord = {
        let supervisor = server.token("SUP", PASSWORD).await;
        server.get(&format!("/v1/records/{id}"), &supervisor).await.json().await.unwrap()
    };
    assert_eq!(record.observations, "停职前");
    let _ = DAY;
}
