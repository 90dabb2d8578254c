//! Confidentiality through every route: a campaign's drawn task, its record, the record's photo,
//! log entry, signature leaf and quarantined change exist; before the draw is public a reviewer
//! asks every operation `/openapi.json` describes (which `server/tests/openapi.rs` holds equal to
//! the router's routes) with the confidential ids filled in, and no answer may hold any of them
//! that the request did not name itself, and none that names one in its path may succeed. An operation this file does not classify fails the test,
//! so that a route added later is looked at before it ships.

use std::collections::BTreeSet;

use schemas::log::{EntryKind, LogEntry, LogUpload, UploadedEntry};
use serde_json::{Value, json};
use server::service::blobs::content_address;
use server::store::prelude::*;
use sync_core::document::{Edit, RecordDocument, new_record_id};
use sync_core::enforcement_log::{EntryEncoding, GENESIS_PREVIOUS, payload_hash};

use fieldsync_tests::harness::{DAY, Phone, TestServer, enroll, noise_png};

const PASSWORD: &str = "correct horse battery";

/// How the test treats an operation when a reviewer calls it.
enum Class {
    /// Reads: asked with the confidential ids in its path and with each of these query strings.
    Read(&'static [&'static str]),
    /// Writes the reviewer may not make: asked with an empty JSON body, refused, nothing changes.
    Refused,
    /// Not asked: ends the reviewer's own session or changes their password, and answers a status only.
    Session,
}

/// Every operation of the API and how it is checked. A new operation must be added here.
const ROUTES: &[(&str, &str, Class)] = &[
    ("get", "/healthz", Class::Read(&[""])),
    ("get", "/readyz", Class::Read(&[""])),
    ("get", "/metrics", Class::Read(&[""])),
    ("get", "/openapi.json", Class::Read(&[""])),
    ("post", "/v1/auth/login", Class::Refused),
    ("post", "/v1/auth/challenge", Class::Read(&[""])),
    ("post", "/v1/auth/refresh", Class::Refused),
    ("post", "/v1/auth/logout", Class::Session),
    ("post", "/v1/auth/password", Class::Session),
    ("post", "/v1/devices/challenge", Class::Refused),
    ("post", "/v1/devices", Class::Refused),
    ("get", "/v1/devices", Class::Read(&[""])),
    ("post", "/v1/devices/{device_id}/revoke", Class::Refused),
    ("post", "/v1/admin/officers", Class::Refused),
    ("get", "/v1/admin/officers", Class::Read(&[""])),
    ("post", "/v1/admin/roles", Class::Refused),
    ("delete", "/v1/admin/roles", Class::Refused),
    ("post", "/v1/admin/certificates", Class::Refused),
    ("get", "/v1/admin/certificates", Class::Read(&[""])),
    ("post", "/v1/admin/certificates/{number}/renew", Class::Refused),
    ("post", "/v1/admin/certificates/{number}/status", Class::Refused),
    ("post", "/v1/admin/certificates/{number}/surrender", Class::Refused),
    ("post", "/v1/admin/certificates/{number}/review", Class::Refused),
    ("get", "/v1/admin/certificates/review-due", Class::Read(&["", "?within_days=3660"])),
    ("get", "/v1/admin/certificates/{number}/affected", Class::Read(&[""])),
    ("post", "/v1/admin/entities", Class::Refused),
    ("post", "/v1/admin/recusals", Class::Refused),
    ("post", "/v1/tasks", Class::Refused),
    ("get", "/v1/tasks", Class::Read(&[""])),
    ("get", "/v1/tasks/{task_id}", Class::Read(&[""])),
    ("get", "/v1/tasks/{task_id}/team", Class::Read(&[""])),
    (
        "get",
        "/v1/records",
        Class::Read(&["", "?task={task_id}", "?entity={entity_id}", "?officer={officer_id}", "?status=signing"]),
    ),
    ("get", "/v1/records/{record_id}", Class::Read(&[""])),
    ("get", "/v1/records/{record_id}/history", Class::Read(&[""])),
    ("get", "/v1/records/{record_id}/held", Class::Read(&[""])),
    ("post", "/v1/records/{record_id}/held/{change_hash}", Class::Refused),
    ("get", "/v1/recusals/tasks", Class::Read(&[""])),
    ("get", "/v1/quarantine", Class::Read(&["", "?record={record_id}"])),
    ("post", "/v1/sync", Class::Refused),
    ("post", "/v1/uploads", Class::Refused),
    ("get", "/v1/uploads/{upload_id}", Class::Read(&[""])),
    ("head", "/v1/uploads/{upload_id}", Class::Read(&[""])),
    ("patch", "/v1/uploads/{upload_id}", Class::Refused),
    ("post", "/v1/uploads/{upload_id}/finish", Class::Refused),
    ("get", "/v1/blobs/{sha256}", Class::Read(&[""])),
    ("get", "/v1/blobs/{sha256}/metadata", Class::Read(&[""])),
    ("get", "/v1/blobs/{sha256}/thumbnail", Class::Read(&[""])),
    ("get", "/v1/records/{record_id}/missing-blobs", Class::Read(&[""])),
    ("post", "/v1/log/entries", Class::Refused),
    ("get", "/v1/log/checkpoint", Class::Read(&[""])),
    ("get", "/v1/log/key", Class::Read(&[""])),
    // Every leaf's proof is asked below, one index at a time.
    ("get", "/v1/log/proofs/inclusion", Class::Read(&[])),
    ("get", "/v1/log/proofs/consistency", Class::Read(&["?from=1&to={log_size}"])),
    ("get", "/v1/records/{record_id}/log", Class::Read(&[""])),
    ("get", "/v1/records/{record_id}/evidence", Class::Read(&["", "?blobs=hashes"])),
    ("get", "/v1/admin/check", Class::Read(&[""])),
    ("post", "/v1/admin/backup", Class::Refused),
    ("get", "/v1/public/matters", Class::Read(&[""])),
    ("post", "/v1/admin/matters", Class::Refused),
    ("get", "/v1/admin/entities/{entity_id}/history", Class::Read(&[""])),
    ("get", "/v1/admin/calendar/{year}", Class::Read(&[""])),
    ("put", "/v1/admin/calendar/{year}", Class::Refused),
    ("get", "/v1/inspectors", Class::Read(&[""])),
    ("post", "/v1/campaigns", Class::Refused),
    ("get", "/v1/campaigns", Class::Read(&[""])),
    ("get", "/v1/campaigns/overdue", Class::Read(&[""])),
    ("get", "/v1/campaigns/{campaign_id}", Class::Read(&[""])),
    ("post", "/v1/campaigns/{campaign_id}/draw", Class::Refused),
    ("post", "/v1/campaigns/{campaign_id}/results/{task_id}/publish", Class::Refused),
    ("get", "/v1/public/campaigns", Class::Read(&[""])),
    ("get", "/v1/public/campaigns/{campaign_id}", Class::Read(&[""])),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// A bureau with four certified officers, a supervisor, a reviewer and an administrator, the
/// synthetic city's entities and the matter list.
async fn bureau() -> TestServer {
    let server = TestServer::start().await;
    server.entities(3000);
    for officer in ["O1", "O2", "O3", "O4"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("ADM", PASSWORD, &["admin"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    let admin = server.token("ADM", PASSWORD).await;
    let matters = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/matters.json")).unwrap();
    let response = server
        .client
        .post(server.url("/v1/admin/matters"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(matters)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// What was made in confidence, and the ids a request may name.
struct Secret {
    campaign_id: String,
    task_id: String,
    entity_id: String,
    record_id: String,
    sha256: String,
    upload_id: String,
    device_id: String,
    officer_id: String,
}

impl Secret {
    /// The strings no reviewer may read: the drawn task and entity, the record and the photo,
    /// as text and as the hex a leaf's data would carry them in.
    fn markers(&self) -> Vec<String> {
        let mut markers =
            vec![self.task_id.clone(), self.entity_id.clone(), self.record_id.clone(), self.sha256.clone()];
        markers.extend([&self.task_id, &self.entity_id, &self.record_id].map(|id| hex::encode(id.as_bytes())));
        markers
    }

    fn fill(&self, template: &str, log_size: u64) -> String {
        template
            .replace("{campaign_id}", &self.campaign_id)
            .replace("{task_id}", &self.task_id)
            .replace("{entity_id}", &self.entity_id)
            .replace("{record_id}", &self.record_id)
            .replace("{sha256}", &self.sha256)
            .replace("{upload_id}", &self.upload_id)
            .replace("{device_id}", &self.device_id)
            .replace("{officer_id}", &self.officer_id)
            .replace("{number}", &format!("GX-{}", self.officer_id))
            .replace("{year}", "2026")
            .replace("{log_size}", &log_size.to_string())
    }
}

/// The next entry of a device's chain, signed.
fn entry(phone: &Phone, seq: u64, previous: [u8; 32], record_id: &str) -> UploadedEntry {
    let entry = LogEntry {
        device_id: phone.device_id.clone(),
        seq,
        previous,
        device_time_ms: server::now_ms(),
        monotonic_ms: 10_000 + seq,
        boot_id: "6f1c0e5e-2b5d-4c53-9d1e-3f0b8c1a7e21".into(),
        kind: EntryKind::Arrive,
        record_id: Some(record_id.into()),
        payload_hash: payload_hash(b""),
        seen_checkpoint: None,
    };
    UploadedEntry { signed: entry.sign(&phone.key), payload: Vec::new() }
}

/// A confidential campaign task with everything a reviewer could read of it.
async fn confidential(server: &TestServer) -> Secret {
    let supervisor = server.token("SUP", PASSWORD).await;
    let today = |days: i64| sync_core::campaigns::date_of_ms(server::now_ms() + days * DAY).unwrap().to_string();
    let campaign = json!({
        "campaign_id": "C-SECRET", "matter": "M06", "tiers": [{"tier": "special", "count": 1}],
        "period": "2026-Q4", "starts_on": today(0), "ends_on": today(30),
        "team_size": 2, "max_tasks_per_officer": 1, "joint_departments": [],
    });
    json_of(server.post("/v1/campaigns", &supervisor, campaign).await).await;
    let drawn = json_of(server.post("/v1/campaigns/C-SECRET/draw", &supervisor, json!({})).await).await;
    let task = &drawn["tasks"][0];
    let task_id = task["task_id"].as_str().unwrap().to_string();
    let team: Vec<String> = task["team"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().into()).collect();

    // The first officer of the team makes a record with a photo and signs it.
    let mut a = enroll(server, &team[0], PASSWORD).await;
    let now = server::now_ms();
    let record_id = new_record_id(now as u64, [7; 10]);
    let photos = tempfile::tempdir().unwrap();
    noise_png(&photos.path().join("p.png"), 32, 7);
    let photo = std::fs::read(photos.path().join("p.png")).unwrap();
    let sha256 = content_address(&photo);
    let mut record = RecordDocument::create(&record_id, a.actor.clone(), &task_id, now).unwrap();
    record.apply(Edit::SetStartedAt(now - 60_000), now).unwrap();
    for officer in &team {
        let present = schemas::OfficerPresent {
            officer_id: officer.clone(),
            name: officer.clone(),
            certificate_number: format!("GX-{officer}"),
            certificate_shown: true,
        };
        record.apply(Edit::AddOfficerPresent(present), now).unwrap();
    }
    record.apply(Edit::AddPhoto { sha256: sha256.clone(), caption: "现场照片".into() }, now).unwrap();
    for completing in sync_core::sample::completing_edits(now) {
        record.apply(completing, now).unwrap();
    }
    a.records.insert(record);
    a.session.record_changed(&record_id);
    assert!(a.sync(server).await.is_empty(), "the record is accepted");
    let begin = json!({ "sha256": sha256, "size": photo.len(), "record_id": record_id });
    let started = json_of(server.post("/v1/uploads", &a.token, begin).await).await;
    let upload_id = started["upload_id"].as_str().unwrap().to_string();
    let appended = server
        .client
        .patch(server.url(&format!("/v1/uploads/{upload_id}")))
        .bearer_auth(&a.token)
        .header("content-type", "application/octet-stream")
        .header("upload-offset", 0)
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 200);
    json_of(server.post(&format!("/v1/uploads/{upload_id}/finish"), &a.token, json!({})).await).await;
    let certificates = server.store.certificates(None).unwrap();
    a.records.get_mut(&record_id).unwrap().sign(&team[0], server::now_ms(), &certificates).unwrap();
    a.session.record_changed(&record_id);
    assert!(a.sync(server).await.is_empty(), "the signature is accepted");
    let upload = LogUpload { entries: vec![entry(&a, 1, GENESIS_PREVIOUS, &record_id)] };
    let response = server
        .client
        .post(server.url("/v1/log/entries"))
        .bearer_auth(&a.token)
        .header("content-type", "application/cbor")
        .body(schemas::wire::to_cbor(&upload))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The second officer's signature, made a month ahead of the server's clock, is quarantined.
    let mut b = enroll(server, &team[1], PASSWORD).await;
    assert!(b.sync(server).await.is_empty());
    b.records.get_mut(&record_id).unwrap().sign(&team[1], server::now_ms() + 30 * DAY, &certificates).unwrap();
    b.session.record_changed(&record_id);
    assert!(!b.sync(server).await.is_empty(), "a change from the future is refused");

    Secret {
        campaign_id: "C-SECRET".into(),
        task_id,
        entity_id: task["entity_id"].as_str().unwrap().into(),
        record_id,
        sha256,
        upload_id,
        device_id: a.device_id.clone(),
        officer_id: team[0].clone(),
    }
}

/// The markers an answer holds that its request did not name.
fn leaked(markers: &[String], request: &str, body: &[u8]) -> Vec<String> {
    let body = String::from_utf8_lossy(body);
    markers.iter().filter(|m| !request.contains(m.as_str()) && body.contains(m.as_str())).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_gets_no_confidential_task_data_from_any_route() {
    let server = bureau().await;
    let secret = confidential(&server).await;
    let markers = secret.markers();
    let reviewer = server.token("REV", PASSWORD).await;
    let supervisor = server.token("SUP", PASSWORD).await;
    let log_size: u64 = server.query("SELECT COUNT(*) FROM log_leaves")[0][0].parse().unwrap();

    // The markers are there to be found: a supervisor reads them.
    let path = secret.fill("/v1/records?task={task_id}", log_size);
    let seen = server.get(&path, &supervisor).await.text().await.unwrap();
    assert!(seen.contains(&secret.record_id), "{seen}");
    let quarantine = server.get("/v1/quarantine", &supervisor).await.text().await.unwrap();
    assert!(quarantine.contains(&secret.record_id), "{quarantine}");

    // Every operation the server describes is classified here.
    let document = json_of(server.client.get(server.url("/openapi.json")).send().await.unwrap()).await;
    let mut described = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|m| METHODS.contains(&m.as_str())) {
            described.insert((method.clone(), path.clone()));
        }
    }
    let classified: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(method, path, _)| (method.to_string(), path.to_string())).collect();
    let unclassified: Vec<_> = described.difference(&classified).collect();
    assert!(unclassified.is_empty(), "operations not classified for confidentiality: {unclassified:?}");
    let gone: Vec<_> = classified.difference(&described).collect();
    assert!(gone.is_empty(), "classified operations the server no longer has: {gone:?}");

    let mut requests: Vec<(String, String, bool)> = Vec::new();
    for (method, template, class) in ROUTES {
        match class {
            Class::Read(queries) => {
                for query in *queries {
                    requests.push((method.to_string(), secret.fill(&format!("{template}{query}"), log_size), false));
                }
            }
            Class::Refused => requests.push((method.to_string(), secret.fill(template, log_size), true)),
            Class::Session => {}
        }
    }
    for index in 0..log_size {
        requests.push(("get".into(), format!("/v1/log/proofs/inclusion?index={index}"), false));
    }
    // What a reader's first request would write is written now: the checkpoint over the log as
    // it stands, and the photo's examination.
    assert_eq!(server.client.get(server.url("/v1/log/checkpoint")).send().await.unwrap().status(), 200);
    let metadata = server.get(&secret.fill("/v1/blobs/{sha256}/metadata", log_size), &supervisor).await;
    assert_eq!(metadata.status(), 200);
    let before = server.snapshot();
    let leaks = ask_every_route(&server, &reviewer, &requests, &markers, true).await;
    assert!(leaks.is_empty(), "a reviewer read confidential data:\n{}", leaks.join("\n"));
    assert_eq!(server.snapshot(), before, "a reviewer's requests changed nothing");

    // An officer on no team of the campaign reads none of it either (an officer's writes may
    // rightly store something, a device challenge for one, so only what is read is checked).
    let team: Vec<String> =
        server.query(&format!("SELECT officer_id FROM task_team WHERE task_id = '{}'", secret.task_id)).concat();
    let outsider = ["O1", "O2", "O3", "O4"].into_iter().find(|o| !team.iter().any(|t| t == o)).unwrap();
    let outsider = server.token(outsider, PASSWORD).await;
    let leaks = ask_every_route(&server, &outsider, &requests, &markers, false).await;
    assert!(leaks.is_empty(), "an officer off the team read confidential data:\n{}", leaks.join("\n"));
}

/// Asks every request with `token`; what the answers give away of `markers`. With
/// `writes_refused`, a write must be refused too.
async fn ask_every_route(
    server: &TestServer,
    token: &str,
    requests: &[(String, String, bool)],
    markers: &[String],
    writes_refused: bool,
) -> Vec<String> {
    let mut leaks = Vec::new();
    for (method, path, write) in requests {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = server.client.request(method.clone(), server.url(path)).bearer_auth(token);
        if *write {
            request = request.json(&json!({}));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if *write && writes_refused {
            assert!(status.is_client_error(), "{method} {path}: a write answered {status}");
        }
        // A photo's bytes or thumbnail name nothing: what names the secret is answering at all.
        let route = path.split('?').next().unwrap_or_default();
        if status.is_success() && markers.iter().any(|m| route.contains(m.as_str())) {
            leaks.push(format!("{method} {path} answered {status}"));
        }
        let body = response.bytes().await.unwrap();
        let found = leaked(markers, path, &body);
        if !found.is_empty() {
            leaks.push(format!("{method} {path} ({status}) holds {found:?}"));
        }
    }
    leaks
}
