//! End-to-end tests: the real server on a real port, real HTTP clients, a real SQLite file,
//! real Ed25519 keys, and devices running `sync-core`'s session over CBOR.
//!
//! Modules:
//! The harness (starting a server, seeding a city, enrolling devices, syncing) is `fieldsync_tests::harness`.
//!
//! - `access` (in `end_to_end/access.rs`): every route asked by a reviewer for a confidential
//!   campaign task's data, which none may give (`server::service::access`).
//! - `health`: the server starts on the embedded default, answers, and stops cleanly.
//! - `identity`: login, tokens, refresh rotation and reuse, rate limits, device enrollment and revocation.
//! - `roles`: every endpoint, for the roles allowed and each role refused.
//! - `records`: tasks, syncing records, validation refusals kept in quarantine, reading records.
//! - `bad_input`: malformed bodies, wrong content types, oversized bodies: a precise error and no change.
//! - `blobs`: resumable photo uploads, their limits and codes, and who may read a blob.
//! - `transparency` (in `end_to_end/transparency.rs`): devices' enforcement-log uploads (accepted,
//!   held, forked, refused), the transparency log's leaves, checkpoints and proofs checked as a
//!   reviewer would, and a record's log with its intervals and findings.
//! - `campaigns` (in `end_to_end/campaigns.rs`): random inspection over the synthetic city: the
//!   commitment before the draw, the draw's tasks on their teams, the public listing, the draw
//!   verified with `fieldsync verify-draw` and `fieldsync-server draw verify`, the registry's history.
//! - `hostile_changes` (in `end_to_end/hostile_changes.rs`): hand-made changes Automerge decodes
//!   but never makes, a relayed change, a device enrolled as a genesis actor, a refused creation:
//!   refused with their codes, the stored record loading, unchanged and still proving itself.
//! - `caps` (in `end_to_end/caps.rs`): devices per officer and unanswered enrollment challenges
//!   bounded by the bureau's settings, expired challenges purged.
//! - `connections` (in `end_to_end/connections.rs`): slow heads and bodies cut off, idle
//!   connections closed, connections per address capped, body limits per route, and the memory
//!   budget of request bodies, measured on the real server program.
//! - `edges` (in `end_to_end/edges.rs`): values out of bounds refused with their codes (certificate
//!   validity, recusals of unknown officers or entities), the `bearer` scheme in any case, and a
//!   non-UTF-8 path answered with the JSON error body.
//! - `registry` (in `end_to_end/registry.rs`): the entity registry imported from a spreadsheet's
//!   CSV export (UTF-8 with or without BOM, GB18030, CRLF, quoted fields), bad lines named by
//!   line and column.
//! - `contract` (in `end_to_end/contract.rs`): every operation answers only the statuses its
//!   OpenAPI document lists and refuses what its parameters' schemas forbid; `schemathesis` (in
//!   `end_to_end/schemathesis.rs`) runs the property-based fuzzer over the served document.
//! - `exposure` (in `end_to_end/exposure.rs`): inclusion proofs without the leaf's data for those
//!   who may not read its subject, `/metrics` behind a token or on its own address, security
//!   headers on HTML pages.
//! - `lockout` (in `end_to_end/lockout.rs`): a password guesser from other addresses slows
//!   itself and the account's password logins, not the officer's enrolled device.
//! - `session_end` (in `end_to_end/session_end.rs`): logout, a password change, a reused refresh token
//!   and a device's revocation end their sessions' access tokens at once.
//! - `field` (in `field/`): officers' devices (`field-client`, each with its own SQLite store)
//!   offline, merged in every order, refused, on a failing network, killed with SIGKILL, and
//!   driven through the `fieldsync` program.

#[path = "end_to_end/access.rs"]
mod access;
#[path = "end_to_end/campaigns.rs"]
mod campaigns;
#[path = "end_to_end/caps.rs"]
mod caps;
#[path = "end_to_end/connections.rs"]
mod connections;
#[path = "end_to_end/contract.rs"]
mod contract;
#[path = "end_to_end/edges.rs"]
mod edges;
#[path = "end_to_end/exposure.rs"]
mod exposure;
mod field;
#[path = "end_to_end/hostile_changes.rs"]
mod hostile_changes;
#[path = "end_to_end/lockout.rs"]
mod lockout;
#[path = "end_to_end/operations.rs"]
mod operations;
#[path = "end_to_end/registry.rs"]
mod registry;
#[path = "end_to_end/schemathesis.rs"]
mod schemathesis;
#[path = "end_to_end/session_end.rs"]
mod session_end;
#[path = "end_to_end/transparency.rs"]
mod transparency;

mod health {
    use fieldsync_tests::harness::TestServer;
    #[allow(unused_imports)]
    use server::store::prelude::*;

    #[tokio::test]
    async fn server_answers_on_a_real_port_and_stops_on_shutdown() {
        let server = TestServer::start().await;
        let body: serde_json::Value = reqwest::get(server.url("/healthz")).await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(reqwest::get(server.url("/readyz")).await.unwrap().status(), 200);
        let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
        assert!(metrics.contains("fieldsync_http_requests_total 3"), "{metrics}");
        let unknown = reqwest::get(server.url("/nowhere")).await.unwrap();
        assert_eq!(unknown.status(), 404);
        assert!(unknown.headers().contains_key("x-request-id"), "every answer carries a request id");
        let body: serde_json::Value = unknown.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
        let base = server.base.clone();
        server.stop().await;
        assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "stopped serving");
    }
}

mod identity {
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header};
    #[allow(unused_imports)]
    use server::store::prelude::*;

    use fieldsync_tests::harness::{TestServer, enroll, error_code as code};

    fn claims(exp_offset_s: i64, aud: &str) -> serde_json::Value {
        let now = server::now_ms() / 1000;
        serde_json::json!({
            "iss": "fieldsync-server", "aud": aud, "sub": "O1", "iat": now, "exp": now + exp_offset_s, "roles": ["admin"],
            "sid": "a-session",
        })
    }

    #[tokio::test]
    async fn forged_expired_and_misaddressed_tokens_are_refused_with_their_code() {
        let server = TestServer::start().await;
        server.account("O1", "correct horse battery", &["admin"]);
        let good = server.token("O1", "correct horse battery").await;
        assert_eq!(server.get("/v1/admin/officers", &good).await.status(), 200);
        let key = server.store.signing_keys().unwrap().remove(0);
        let sign = |claims: serde_json::Value, secret: &[u8], kid: &str| {
            let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = Some(kid.to_string());
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
        };
        let unsigned = {
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let header = engine.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key.kid));
            format!("{header}.{}.", engine.encode(claims(600, "fieldsync-api").to_string()))
        };
        let cases = [
            ("alg none", unsigned, "invalid_token"),
            (
                "another key",
                sign(claims(600, "fieldsync-api"), b"not the server's key at all!!!!!", &key.kid),
                "invalid_token",
            ),
            ("unknown kid", sign(claims(600, "fieldsync-api"), &key.secret, "nope"), "invalid_token"),
            ("wrong audience", sign(claims(600, "someone-else"), &key.secret, &key.kid), "invalid_token"),
            ("expired beyond leeway", sign(claims(-120, "fieldsync-api"), &key.secret, &key.kid), "token_expired"),
            ("garbage", "a.b.c".to_string(), "invalid_token"),
        ];
        for (name, token, expected) in cases {
            let before = server.snapshot();
            let response = server.get("/v1/admin/officers", &token).await;
            assert_eq!(code(response).await, (401, expected.to_string()), "{name}");
            assert_eq!(server.snapshot(), before, "{name}: nothing changed");
        }
        let within_leeway = sign(claims(-10, "fieldsync-api"), &key.secret, &key.kid);
        assert_eq!(server.get("/v1/admin/officers", &within_leeway).await.status(), 200, "30 s of leeway");
        let missing = server.client.get(server.url("/v1/admin/officers")).send().await.unwrap();
        assert_eq!(code(missing).await, (401, "missing_token".into()));
    }

    #[tokio::test]
    async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
        let server = TestServer::start().await;
        server.account("O1", "correct horse battery", &["officer"]);
        let first: serde_json::Value = server.login("O1", "correct horse battery", None).await.json().await.unwrap();
        let refresh = |token: serde_json::Value| {
            server
                .client
                .post(server.url("/v1/auth/refresh"))
                .json(&serde_json::json!({ "refresh_token": token }))
                .send()
        };
        let second: serde_json::Value = refresh(first["refresh_token"].clone()).await.unwrap().json().await.unwrap();
        assert_ne!(second["refresh_token"], first["refresh_token"], "rotated");
        assert_eq!(server.get("/v1/tasks", second["access_token"].as_str().unwrap()).await.status(), 200);
        // The first token again, its answer having been lost: a retry, so the unused second is
        // revoked and a new pair issued.
        let retried: serde_json::Value = refresh(first["refresh_token"].clone()).await.unwrap().json().await.unwrap();
        let replaced = refresh(second["refresh_token"].clone()).await.unwrap();
        assert_eq!(code(replaced).await, (401, "refresh_token_revoked".into()), "the lost answer's pair is void");
        let third: serde_json::Value = refresh(retried["refresh_token"].clone()).await.unwrap().json().await.unwrap();
        // The first token once more: its replacement has been used since, so this is a reuse.
        let reused = refresh(first["refresh_token"].clone()).await.unwrap();
        assert_eq!(code(reused).await, (401, "refresh_token_reused".into()));
        let after_reuse = refresh(third["refresh_token"].clone()).await.unwrap();
        assert_eq!(code(after_reuse).await, (401, "refresh_token_revoked".into()), "family revoked");
        // Logout revokes too.
        let fourth: serde_json::Value = server.login("O1", "correct horse battery", None).await.json().await.unwrap();
        let out = server
            .client
            .post(server.url("/v1/auth/logout"))
            .bearer_auth(fourth["access_token"].as_str().unwrap())
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 200);
        assert_eq!(code(refresh(fourth["refresh_token"].clone()).await.unwrap()).await.1, "refresh_token_revoked");
        // Stored only as a hash.
        let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
        let raw = fourth["refresh_token"].as_str().unwrap().as_bytes().to_vec();
        let found: i64 =
            conn.query_row("SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = ?1", [raw], |r| r.get(0)).unwrap();
        assert_eq!(found, 0);
    }

    #[tokio::test]
    async fn logins_are_rate_limited_per_account_and_per_address_with_retry_after() {
        let server = TestServer::start_with(|c| {
            c.auth_free_failures = 2;
            c.auth_backoff_base_ms = 60_000;
            c.auth_attempts_per_minute_per_address = 5;
        })
        .await;
        server.account("O1", "correct horse battery", &["officer"]);
        for _ in 0..3 {
            let response = server.login("O1", "wrong", None).await;
            assert_eq!(code(response).await, (401, "invalid_credentials".into()));
        }
        let limited = server.login("O1", "correct horse battery", None).await;
        assert_eq!(limited.status(), 429);
        let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after));
        assert_eq!(code(limited).await.1, "rate_limited");
        // Another account from the same address: the address's own limit (5 attempts, 4 used by O1,
        // counted before the account's) is reached after one more.
        server.account("O2", "correct horse battery", &["officer"]);
        assert_eq!(server.login("O2", "correct horse battery", None).await.status(), 200);
        let by_address = server.login("O2", "correct horse battery", None).await;
        assert_eq!(code(by_address).await, (429, "rate_limited".into()));
    }

    #[tokio::test]
    async fn a_device_enrolls_by_signature_and_stops_at_once_when_revoked() {
        let server = TestServer::start().await;
        server.account("O1", "correct horse battery", &["officer"]);
        server.account("ADM", "correct horse battery", &["admin"]);
        let phone = enroll(&server, "O1", "correct horse battery").await;
        assert_eq!(server.get("/v1/tasks", &phone.token).await.status(), 200);
        // A forged enrollment: the signature is over another challenge.
        let token = server.token("O1", "correct horse battery").await;
        let challenge: serde_json::Value =
            server.post("/v1/devices/challenge", &token, serde_json::json!({})).await.json().await.unwrap();
        let before = server.snapshot();
        let forged = server
            .post(
                "/v1/devices",
                &token,
                serde_json::json!({
                    "challenge": challenge["challenge"],
                    "public_key": base64::engine::general_purpose::STANDARD.encode(phone.key.verifying_key().to_bytes()),
                    "actor_id": "00112233445566778899aabbccddeeff",
                    "signature": base64::engine::general_purpose::STANDARD.encode([7u8; 64]),
                }),
            )
            .await;
        assert_eq!(code(forged).await, (401, "invalid_signature".into()));
        assert_eq!(server.snapshot(), before);
        let admin = server.token("ADM", "correct horse battery").await;
        let revoked =
            server.post(&format!("/v1/devices/{}/revoke", phone.device_id), &admin, serde_json::json!({})).await;
        assert_eq!(revoked.status(), 200);
        assert_eq!(code(server.get("/v1/tasks", &phone.token).await).await, (401, "device_revoked".into()));
        let login_on_revoked = server.login("O1", "correct horse battery", Some(&phone.device_id)).await;
        assert_eq!(code(login_on_revoked).await, (401, "device_revoked".into()));
    }
}

mod records {
    use schemas::{ChecklistResult, RecordStatus};
    use schemas::{TaskTeam, TeamMember};
    use server::store::Account;
    #[allow(unused_imports)]
    use server::store::prelude::*;
    use sync_core::document::{Edit, RecordDocument, new_record_id};

    use fieldsync_tests::harness::{DAY, Phone, TestServer, enroll};

    const PASSWORD: &str = "correct horse battery";

    /// A city with a supervisor, a reviewer, three certified officers and one task for O1 and O2.
    async fn city() -> (TestServer, String) {
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
        rejections
            .iter()
            .map(|r| serde_json::to_value(&r.reason).unwrap()["code"].as_str().unwrap().to_string())
            .collect()
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
        assert!(a.sync(&server).await.is_empty());
        assert!(b.sync(&server).await.is_empty());
        assert!(b.records.get(&id).is_some(), "the record reached the other phone");
        // Both offline: each fills a checklist item and types observations; conclusions differ.
        edit(
            &mut a,
            &id,
            Edit::SetChecklistItem { code: "LEDGER".into(), result: ChecklistResult::Compliant, note: None },
        );
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
        assert!(
            on_server.observations.contains("甲：设施运行正常。") && on_server.observations.contains("乙：台账齐全。")
        );
        assert_eq!(on_server.checklist.len(), 2);
        assert_eq!(on_server.conflicts.len(), 1, "the conclusion conflict is reported");
        // One resolves; both sign; the record locks; a later edit is refused and quarantined.
        a.records
            .get_mut(&id)
            .unwrap()
            .resolve("header/conclusion", "责令改正".into(), "O1", server::now_ms())
            .unwrap();
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
        for (days_ago, status) in
            [(20, schemas::CertificateStatus::Suspended), (10, schemas::CertificateStatus::Active)]
        {
            let change =
                schemas::CertificateStatusChange { at_ms: server::now_ms() - days_ago * DAY, status, reason: None };
            server.store.change_certificate_status("GX-O4", &change, "test", server::now_ms()).unwrap();
        }
        let mut expired = server.store.certificate("GX-O1").unwrap().unwrap();
        expired.number = "GX-O1-OLD".into();
        (expired.valid_from_ms, expired.valid_until_ms) =
            (expired.valid_from_ms - 3 * 365 * DAY, expired.valid_from_ms);
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
}

mod bad_input {
    use fieldsync_tests::harness::{TestServer, enroll, error_code as code};
    #[allow(unused_imports)]
    use server::store::prelude::*;

    const PASSWORD: &str = "correct horse battery";

    #[tokio::test]
    async fn each_bad_body_gets_its_code_and_changes_nothing() {
        let server = TestServer::start_with(|c| c.max_body_bytes = 64 * 1024).await;
        server.account("ADM", PASSWORD, &["admin"]);
        server.account("O1", PASSWORD, &["officer"]);
        let admin = server.token("ADM", PASSWORD).await;
        let phone = enroll(&server, "O1", PASSWORD).await;
        let sync = |body: Vec<u8>, content_type: &'static str| server.post_sync(&phone.token, content_type, body);
        let before = server.snapshot();
        let officers = |body: &str, content_type: &str| {
            server
                .client
                .post(server.url("/v1/admin/officers"))
                .bearer_auth(&admin)
                .header("content-type", content_type.to_string())
                .body(body.to_string())
                .send()
        };
        assert_eq!(
            code(officers("{\"officer_id\": ", "application/json").await.unwrap()).await,
            (400, "malformed_json".into())
        );
        assert_eq!(
            code(officers("{\"officer\": 1}", "application/json").await.unwrap()).await,
            (422, "invalid_body".into())
        );
        assert_eq!(code(officers("{}", "text/plain").await.unwrap()).await, (415, "unsupported_content_type".into()));
        assert_eq!(code(sync(vec![1, 2, 3], "application/cbor").await).await, (400, "malformed_sync_request".into()));
        assert_eq!(code(sync(b"{".to_vec(), "application/json").await).await, (400, "malformed_sync_request".into()));
        assert_eq!(code(sync(vec![], "text/plain").await).await, (415, "unsupported_content_type".into()));
        let huge = vec![0u8; 128 * 1024];
        assert_eq!(code(sync(huge, "application/cbor").await).await, (413, "body_too_large".into()));
        let many_changes = automerge::sync::Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: vec![vec![0u8]; 10_001].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        let request = schemas::SyncRequest {
            protocol: schemas::SYNC_PROTOCOL_VERSION,
            since: None,
            documents: vec![schemas::DocumentSyncMessage {
                record_id: sync_core::document::new_record_id(server::now_ms() as u64, [2; 10]),
                message: many_changes.encode(),
            }],
        };
        assert_eq!(
            code(sync(schemas::wire::to_cbor(&request), "application/cbor").await).await,
            (422, "too_many_changes".into())
        );
        let wrong_protocol =
            schemas::wire::to_cbor(&schemas::SyncRequest { protocol: 99, since: None, documents: vec![] });
        assert_eq!(code(sync(wrong_protocol, "application/cbor").await).await, (422, "unsupported_protocol".into()));
        // Malformed Automerge bytes inside a good request: a rejection for that record, nothing stored.
        let record_id = sync_core::document::new_record_id(server::now_ms() as u64, [1; 10]);
        let request = schemas::SyncRequest {
            protocol: schemas::SYNC_PROTOCOL_VERSION,
            since: None,
            documents: vec![schemas::DocumentSyncMessage {
                record_id: record_id.clone(),
                message: vec![0x42, 9, 9, 9],
            }],
        };
        let response = sync(schemas::wire::to_cbor(&request), "application/cbor").await;
        assert_eq!(response.status(), 200);
        let response: schemas::SyncResponse = schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(response.rejections.len(), 1);
        assert_eq!(serde_json::to_value(&response.rejections[0].reason).unwrap()["code"], "malformed_message");
        assert_eq!(server.snapshot(), before, "nothing was stored by any of these");
    }
}

mod sessions {
    use server::store::Account;
    #[allow(unused_imports)]
    use server::store::prelude::*;

    use fieldsync_tests::harness::{TestServer, enroll, error_code as code};

    const PASSWORD: &str = "correct horse battery";

    #[tokio::test]
    async fn a_one_time_password_only_sets_a_password_and_a_new_password_ends_old_sessions() {
        let server = TestServer::start().await;
        server
            .store
            .create_account(
                Account {
                    officer_id: "ADM".into(),
                    name: "管理员".into(),
                    unit: String::new(),
                    password_hash: Some(server::service::auth::hash_password("one-time-pass")),
                    must_change_password: true,
                    roles: vec!["admin".into()],
                },
                server::now_ms(),
            )
            .unwrap();
        let first: serde_json::Value = server.login("ADM", "one-time-pass", None).await.json().await.unwrap();
        assert_eq!(first["must_change_password"], true);
        let token = first["access_token"].as_str().unwrap();
        let refused =
            server.post("/v1/admin/officers", token, serde_json::json!({"officer_id": "X", "name": "X"})).await;
        assert_eq!(code(refused).await, (403, "password_change_required".into()));
        let changed = server
            .post(
                "/v1/auth/password",
                token,
                serde_json::json!({"current_password": "one-time-pass", "new_password": PASSWORD}),
            )
            .await;
        assert_eq!(changed.status(), 200);
        // The session opened with the old password is over; the new password works.
        let refresh = server
            .client
            .post(server.url("/v1/auth/refresh"))
            .json(&serde_json::json!({ "refresh_token": first["refresh_token"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(code(refresh).await, (401, "refresh_token_revoked".into()));
        assert_eq!(server.login("ADM", "one-time-pass", None).await.status(), 401);
        let admin = server.token("ADM", PASSWORD).await;
        let created = server
            .post(
                "/v1/admin/officers",
                &admin,
                serde_json::json!({"officer_id": "N1", "name": "新", "roles": ["officer", "officer"]}),
            )
            .await;
        assert_eq!(created.status(), 200, "a role named twice is one role");
        let wrong_method = server.client.get(server.url("/v1/sync")).send().await.unwrap();
        assert_eq!(code(wrong_method).await, (405, "method_not_allowed".into()));
    }

    #[tokio::test]
    async fn revoking_the_officer_role_stops_sync_at_once() {
        let server = TestServer::start().await;
        server.account("O1", PASSWORD, &["officer"]);
        let phone = enroll(&server, "O1", PASSWORD).await;
        server.store.revoke_role("O1", "officer").unwrap();
        let response =
            server.post_sync(&phone.token, "application/json", r#"{"protocol":1,"since":null,"documents":[]}"#).await;
        assert_eq!(code(response).await, (403, "role_required".into()));
    }

    #[tokio::test]
    async fn a_flood_of_logins_with_huge_ids_is_refused_by_address_first() {
        let server = TestServer::start_with(|c| c.auth_attempts_per_minute_per_address = 3).await;
        // As large as a login body may be (a megabyte is refused by its size first: `connections`).
        let huge = "x".repeat(3_000);
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(code(server.login(&huge, "p", None).await).await);
        }
        assert_eq!(statuses[0], (401, "invalid_credentials".into()));
        assert_eq!(statuses[4], (429, "rate_limited".into()));
    }
}

mod roles {
    use fieldsync_tests::harness::{TestServer, enroll};
    #[allow(unused_imports)]
    use server::store::prelude::*;

    const PASSWORD: &str = "correct horse battery";

    /// Every protected endpoint, with a body, and the roles allowed (empty: any signed-in officer).
    fn endpoints() -> Vec<(&'static str, &'static str, serde_json::Value, &'static [&'static str])> {
        let none = serde_json::Value::Null;
        vec![
            ("GET", "/v1/admin/officers", none.clone(), &["admin", "supervisor"]),
            ("POST", "/v1/admin/officers", serde_json::json!({"officer_id": "N1", "name": "新人"}), &["admin"]),
            ("POST", "/v1/admin/roles", serde_json::json!({"officer_id": "OFF", "role": "reviewer"}), &["admin"]),
            ("DELETE", "/v1/admin/roles", serde_json::json!({"officer_id": "OFF", "role": "reviewer"}), &["admin"]),
            ("GET", "/v1/admin/certificates", none.clone(), &["admin", "supervisor", "reviewer"]),
            (
                "POST",
                "/v1/admin/certificates",
                serde_json::json!({"number": "GX-N", "officer_id": "OFF", "issuing_authority": "厅", "valid_from_ms": 0,
                    "valid_until_ms": 4_000_000_000_000i64, "status_history": []}),
                &["admin"],
            ),
            (
                "POST",
                "/v1/admin/certificates/GX-OFF/renew",
                serde_json::json!({"valid_until_ms": 4_000_000_000_000i64}),
                &["admin"],
            ),
            ("POST", "/v1/admin/certificates/GX-OFF/status", serde_json::json!({"status": "active"}), &["admin"]),
            (
                "POST",
                "/v1/admin/recusals",
                serde_json::json!({"officer_id": "OFF", "entity_id": "E00002", "ground": "x"}),
                &["admin", "supervisor"],
            ),
            ("GET", "/v1/devices", none.clone(), &["admin"]),
            ("POST", "/v1/devices/D-none/revoke", none.clone(), &["admin"]),
            (
                "POST",
                "/v1/tasks",
                serde_json::json!({"entity_id": "E00001", "matter": "M01", "team": ["OFF", "SUP"],
                "window_start_ms": 0, "window_end_ms": 4_000_000_000_000i64}),
                &["supervisor"],
            ),
            ("GET", "/v1/tasks", none.clone(), &[]),
            ("GET", "/v1/tasks/T-none/team", none.clone(), &[]),
            ("GET", "/v1/records", none.clone(), &[]),
            ("GET", "/v1/quarantine", none.clone(), &["reviewer", "supervisor"]),
            ("POST", "/v1/devices/challenge", none.clone(), &["officer"]),
            (
                "POST",
                "/v1/admin/matters",
                serde_json::json!({"version": 1, "matters": [{"code": "M01", "zh": "排污许可证执行情况检查",
                    "targets": ["key"], "basis": "排污许可管理条例"}]}),
                &["admin"],
            ),
            ("GET", "/v1/admin/entities/E00001/history", none.clone(), &["admin", "supervisor"]),
            ("GET", "/v1/admin/calendar/2026", none.clone(), &["admin", "supervisor"]),
            (
                "PUT",
                "/v1/admin/calendar/2026",
                serde_json::json!({"holidays": ["2026-10-01"], "working_weekends": []}),
                &["admin"],
            ),
            ("GET", "/v1/inspectors", none.clone(), &["supervisor"]),
            (
                "POST",
                "/v1/campaigns",
                serde_json::json!({"matter": "M01", "tiers": [{"tier": "key", "count": 1}], "period": "2026-Q4",
                    "starts_on": "2026-10-01", "ends_on": "2026-12-31", "team_size": 2, "max_tasks_per_officer": 1}),
                &["supervisor"],
            ),
            ("GET", "/v1/campaigns", none.clone(), &["supervisor"]),
            ("GET", "/v1/campaigns/overdue", none.clone(), &["supervisor"]),
            ("GET", "/v1/campaigns/C-none", none.clone(), &["supervisor"]),
            ("POST", "/v1/campaigns/C-none/draw", serde_json::json!({}), &["supervisor"]),
            ("POST", "/v1/campaigns/C-none/results/T-none/publish", none.clone(), &["supervisor"]),
        ]
    }

    #[tokio::test]
    async fn every_endpoint_admits_its_roles_and_refuses_the_others() {
        let server = TestServer::start().await;
        server.entities(3);
        let accounts = [("OFF", "officer"), ("SUP", "supervisor"), ("REV", "reviewer"), ("ADM", "admin")];
        for (id, role) in accounts {
            server.account(id, PASSWORD, &[role]);
            server.certificate(id);
        }
        let mut tokens = Vec::new();
        for (id, role) in accounts {
            tokens.push((role, Some(server.token(id, PASSWORD).await)));
        }
        tokens.push(("anonymous", None));
        for (method, path, body, allowed) in endpoints() {
            for (role, token) in &tokens {
                let mut request = server.client.request(method.parse().unwrap(), server.url(path));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if !body.is_null() {
                    request = request.json(&body);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let code = response.json::<serde_json::Value>().await.unwrap_or_default()["code"].clone();
                let admitted = token.is_some() && (allowed.is_empty() || allowed.contains(role));
                if admitted {
                    assert!(status != 401 && status != 403, "{method} {path} as {role}: {status} {code}");
                } else if token.is_none() {
                    assert_eq!((status, code.as_str().unwrap()), (401, "missing_token"), "{method} {path} anonymous");
                } else {
                    assert_eq!((status, code.as_str().unwrap()), (403, "role_required"), "{method} {path} as {role}");
                }
            }
        }
        // Sync takes a device token only.
        let officer = server.token("OFF", PASSWORD).await;
        let response =
            server.post_sync(&officer, "application/json", r#"{"protocol":1,"since":null,"documents":[]}"#).await;
        assert_eq!(response.status(), 403);
        let phone = enroll(&server, "OFF", PASSWORD).await;
        let response =
            server.post_sync(&phone.token, "application/json", r#"{"protocol":1,"since":null,"documents":[]}"#).await;
        assert_eq!(response.status(), 200);
    }
}

mod durability {
    #[allow(unused_imports)]
    use server::store::prelude::*;
    use sync_core::document::{Edit, RecordDocument, new_record_id};

    use fieldsync_tests::harness::{TestServer, enroll};

    const PASSWORD: &str = "correct horse battery";

    async fn city(officers: usize) -> TestServer {
        let server = TestServer::start().await;
        server.entities(3);
        server.account("SUP", PASSWORD, &["supervisor"]);
        for n in 0..officers {
            let id = format!("O{n}");
            server.account(&id, PASSWORD, &["officer"]);
            server.certificate(&id);
        }
        let supervisor = server.token("SUP", PASSWORD).await;
        for n in (0..officers).step_by(2) {
            let team = [format!("O{n}"), format!("O{}", n + 1)];
            let response = server.task(&supervisor, &format!("T{n}"), &[&team[0], &team[1]]).await;
            assert_eq!(response.status(), 200);
        }
        server
    }

    #[tokio::test]
    async fn a_repeated_sync_request_changes_nothing() {
        let server = city(2).await;
        let mut phone = enroll(&server, "O0", PASSWORD).await;
        let id = new_record_id(server::now_ms() as u64, [1; 10]);
        let mut record = RecordDocument::create(&id, phone.actor.clone(), "T0", server::now_ms()).unwrap();
        record.apply(Edit::AppendObservations("现场".into()), server::now_ms()).unwrap();
        phone.records.insert(record);
        phone.session.record_changed(&id);
        phone.session.begin();
        let mut sent = Vec::new();
        while let Some(request) = phone.session.poll(&mut phone.records) {
            let body = schemas::wire::to_cbor(&request);
            sent.push(body.clone());
            let response = server.post_sync(&phone.token, "application/cbor", body).await;
            let response = schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap();
            phone.session.handle(response, &mut phone.records).unwrap();
        }
        let stored = server.store.record(&id).unwrap().expect("stored");
        let before = server.snapshot();
        for body in sent.iter().chain(sent.iter().rev()) {
            let response = server.post_sync(&phone.token, "application/cbor", body.clone()).await;
            assert_eq!(response.status(), 200);
        }
        let after = server.store.record(&id).unwrap().unwrap();
        assert_eq!((after.seq, &after.document), (stored.seq, &stored.document), "the record is untouched");
        let records_only = |rows: Vec<String>| -> Vec<String> {
            rows.into_iter().filter(|r| r.starts_with("records:") || r.starts_with("counters:")).collect()
        };
        assert_eq!(records_only(server.snapshot()), records_only(before));
    }

    /// After the database is restored from a backup, a device's cursor is of another epoch (or
    /// none the server made): the server lists everything again instead of nothing.
    #[tokio::test]
    async fn a_cursor_beyond_the_head_lists_every_record_again() {
        let server = city(2).await;
        let mut a = enroll(&server, "O0", PASSWORD).await;
        let id = new_record_id(server::now_ms() as u64, [3; 10]);
        a.records.insert(RecordDocument::create(&id, a.actor.clone(), "T0", server::now_ms()).unwrap());
        a.session.record_changed(&id);
        assert!(a.sync(&server).await.is_empty());
        let b = enroll(&server, "O1", PASSWORD).await;
        for since in [Some(0), Some(1_000_000)] {
            let request = schemas::SyncRequest { protocol: schemas::SYNC_PROTOCOL_VERSION, since, documents: vec![] };
            let response = server.post_sync(&b.token, "application/cbor", schemas::wire::to_cbor(&request)).await;
            let response: schemas::SyncResponse = schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap();
            assert_eq!(response.documents.len(), 1, "since {since:?}");
            assert_eq!(response.documents[0].record_id, id);
            let (epoch, position) = sync_core::session::decode_cursor(response.cursor);
            assert_eq!(epoch, server.store.sync_epoch(), "the cursor is the server's own");
            assert!(position <= 1_000, "the cursor is the server's own: {position}");
        }
    }

    #[tokio::test]
    async fn many_devices_sync_at_once_and_every_record_is_kept() {
        let server = std::sync::Arc::new(city(16).await);
        let mut tasks = Vec::new();
        for n in 0..16u8 {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let officer = format!("O{n}");
                let mut phone = enroll(&server, &officer, PASSWORD).await;
                let task = format!("T{}", n - n % 2);
                let mut ids = Vec::new();
                for r in 0..5u8 {
                    let id = new_record_id(server::now_ms() as u64, [n, r, 0, 0, 0, 0, 0, 0, 0, 1]);
                    let mut record = RecordDocument::create(&id, phone.actor.clone(), &task, server::now_ms()).unwrap();
                    record.apply(Edit::AppendObservations(format!("{officer} 记录 {r}")), server::now_ms()).unwrap();
                    phone.records.insert(record);
                    phone.session.record_changed(&id);
                    ids.push(id);
                }
                assert!(phone.sync(&server).await.is_empty());
                ids
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        // A backup taken while the server serves is a consistent database.
        let backup = server.dir.path().join("backup.sqlite3");
        server.store.backup(&backup).unwrap();
        let copy = server::store::sqlite::SqliteStore::open(&backup).unwrap();
        assert!(copy.integrity_check().unwrap().is_empty());
        for id in &all {
            let stored = server.store.record(id).unwrap().expect("every record is stored");
            let doc = automerge::Automerge::load(&stored.document).unwrap();
            assert!(sync_core::document::read_record(id, &doc).unwrap().observations.contains("记录"));
            assert!(copy.record(id).unwrap().is_some(), "and in the backup");
        }
        assert_eq!(all.len(), 80);
    }
}

mod concurrency {
    #[allow(unused_imports)]
    use server::store::prelude::*;
    use sync_core::document::{Edit, RecordDocument, new_record_id};

    use fieldsync_tests::harness::{TestServer, enroll};

    const PASSWORD: &str = "correct horse battery";

    /// Two phones edit one record and sync at the same instant, again and again: whichever
    /// commits second runs again inside the writer, and no edit is lost.
    #[tokio::test]
    async fn two_phones_syncing_one_record_at_once_lose_nothing() {
        let server = std::sync::Arc::new(TestServer::start().await);
        server.entities(2);
        server.account("SUP", PASSWORD, &["supervisor"]);
        for officer in ["O1", "O2"] {
            server.account(officer, PASSWORD, &["officer"]);
            server.certificate(officer);
        }
        let supervisor = server.token("SUP", PASSWORD).await;
        assert_eq!(server.task(&supervisor, "T1", &["O1", "O2"]).await.status(), 200);
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let mut b = enroll(&server, "O2", PASSWORD).await;
        let id = new_record_id(server::now_ms() as u64, [5; 10]);
        a.records.insert(RecordDocument::create(&id, a.actor.clone(), "T1", server::now_ms()).unwrap());
        a.session.record_changed(&id);
        assert!(a.sync(&server).await.is_empty());
        assert!(b.sync(&server).await.is_empty());
        for round in 0..6 {
            for (phone, name) in [(&mut a, "甲"), (&mut b, "乙")] {
                let record = phone.records.get_mut(&id).unwrap();
                record.apply(Edit::AppendObservations(format!("{name}{round}。")), server::now_ms()).unwrap();
                phone.session.record_changed(&id);
            }
            let (server_a, server_b) = (server.clone(), server.clone());
            let (ra, rb) = tokio::join!(async { a.sync(&server_a).await }, async { b.sync(&server_b).await });
            assert!(ra.is_empty() && rb.is_empty(), "{ra:?} {rb:?}");
        }
        assert!(a.sync(&server).await.is_empty());
        assert!(b.sync(&server).await.is_empty());
        assert!(a.sync(&server).await.is_empty());
        let text = a.records.get(&id).unwrap().read().unwrap().observations;
        assert_eq!(text, b.records.get(&id).unwrap().read().unwrap().observations);
        let stored = server.store.record(&id).unwrap().unwrap();
        let stored =
            sync_core::document::read_record(&id, &automerge::Automerge::load(&stored.document).unwrap()).unwrap();
        assert_eq!(stored.observations, text);
        for round in 0..6 {
            assert!(text.contains(&format!("甲{round}。")) && text.contains(&format!("乙{round}。")), "{text}");
        }
    }
}

/// Photos as content-addressed blobs: uploaded in chunks by the device of an officer on the
/// record's team, resumed after a broken connection, verified by SHA-256, stored once, read back
/// byte for byte by whoever may read a record that references them. Every refusal answers its
/// code and changes nothing: no row, no file.
mod blobs {
    use fieldsync_tests::harness::{Phone, TestServer, enroll};
    use serde_json::{Value, json};
    use server::service::blobs::content_address;
    #[allow(unused_imports)]
    use server::store::prelude::*;
    use sync_core::document::{Edit, RecordDocument, new_record_id};
    use tokio::io::AsyncWriteExt;

    const PASSWORD: &str = "correct horse battery";

    /// A city with a supervisor, a reviewer, four certified officers, task T1 for O1 and O2 and
    /// task T2 for O3 and O4.
    async fn city_with(configure: impl FnOnce(&mut server::Config)) -> TestServer {
        let server = TestServer::start_with(configure).await;
        server.entities(10);
        server.account("SUP", PASSWORD, &["supervisor"]);
        server.account("REV", PASSWORD, &["reviewer"]);
        for officer in ["O1", "O2", "O3", "O4"] {
            server.account(officer, PASSWORD, &["officer"]);
            server.certificate(officer);
        }
        let supervisor = server.token("SUP", PASSWORD).await;
        for (task, team) in [("T1", ["O1", "O2"]), ("T2", ["O3", "O4"])] {
            let response = server.task(&supervisor, task, &team).await;
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        }
        server
    }

    async fn city() -> TestServer {
        city_with(|_| {}).await
    }

    /// A real PNG of noise (so that it does not compress away), different for each seed.
    fn png(seed: u32) -> Vec<u8> {
        png_of(seed, 64, 64)
    }

    /// A real PNG of noise of this size.
    fn png_of(seed: u32, width: u32, height: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9);
        let image = image::RgbImage::from_fn(width, height, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let [r, g, b, _] = state.to_le_bytes();
            image::Rgb([r, g, b])
        });
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        bytes
    }

    /// A record of `task` made on the phone with these photos, synced to the server.
    async fn record_with_photos(server: &TestServer, phone: &mut Phone, task: &str, n: u8, photos: &[&[u8]]) -> String {
        let now = server::now_ms();
        let id = new_record_id(now as u64, [n; 10]);
        let mut record = RecordDocument::create(&id, phone.actor.clone(), task, now).unwrap();
        record.apply(Edit::SetStartedAt(now - 60_000), now).unwrap();
        for (index, photo) in photos.iter().enumerate() {
            let edit = Edit::AddPhoto { sha256: content_address(photo), caption: format!("现场照片{index}") };
            record.apply(edit, now).unwrap();
        }
        phone.records.insert(record);
        phone.session.record_changed(&id);
        assert!(phone.sync(server).await.is_empty(), "the record is accepted");
        id
    }

    /// Every row a request could change ([`TestServer::snapshot`]) and every file of the
    /// uploads and blobs folders, with its size.
    fn everything(server: &TestServer) -> Vec<String> {
        let mut rows = server.snapshot();
        rows.extend(files(server).into_iter().map(|(path, size)| format!("file {path}: {size}")));
        rows
    }

    /// The files under the uploads and blobs folders, with their sizes.
    fn files(server: &TestServer) -> Vec<(String, u64)> {
        fn walk(root: &std::path::Path, folder: &std::path::Path, found: &mut Vec<(String, u64)>) {
            let Ok(entries) = std::fs::read_dir(folder) else { return };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, found);
                } else {
                    let name = path.strip_prefix(root).unwrap().display().to_string();
                    found.push((name, std::fs::metadata(&path).unwrap().len()));
                }
            }
        }
        let mut found = Vec::new();
        for folder in ["uploads", "blobs"] {
            walk(server.dir.path(), &server.dir.path().join(folder), &mut found);
        }
        found.sort();
        found
    }

    /// Waits until the server has examined a stored blob, which it does after answering the
    /// finish, without being asked (at most 30 s, then the test fails).
    async fn examined_by_itself(server: &TestServer, sha256: &str) {
        let sql = format!("SELECT 1 FROM blob_metadata WHERE sha256 = '{sha256}'");
        for _ in 0..3_000 {
            if !server.query(&sql).is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("blob {sha256} was never examined");
    }

    /// Checks a refusal's status and code, and that nothing changed since `before`.
    async fn refused(
        server: &TestServer,
        before: &[String],
        response: reqwest::Response,
        status: u16,
        code: &str,
    ) -> Value {
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!((got, body["code"].as_str().unwrap_or("")), (status, code), "{body}");
        assert_eq!(everything(server), before, "{code}: nothing changed");
        body
    }

    async fn begin(server: &TestServer, token: &str, photo: &[u8], record_id: &str) -> reqwest::Response {
        let body = json!({ "sha256": content_address(photo), "size": photo.len(), "record_id": record_id });
        server.post("/v1/uploads", token, body).await
    }

    /// Starts a new upload and returns its id.
    async fn started(server: &TestServer, token: &str, photo: &[u8], record_id: &str) -> String {
        let response = begin(server, token, photo, record_id).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert_eq!((body["offset"].as_u64(), body["complete"].as_bool()), (Some(0), Some(false)), "{body}");
        body["upload_id"].as_str().unwrap().to_string()
    }

    async fn append(
        server: &TestServer,
        token: &str,
        upload_id: &str,
        offset: usize,
        bytes: &[u8],
    ) -> reqwest::Response {
        server
            .client
            .patch(server.url(&format!("/v1/uploads/{upload_id}")))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .header("upload-offset", offset)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Appends a chunk that must be accepted; returns the new offset.
    async fn appended(server: &TestServer, token: &str, upload_id: &str, offset: usize, bytes: &[u8]) -> u64 {
        let response = append(server, token, upload_id, offset, bytes).await;
        assert_eq!(response.status(), 200);
        let header: u64 = response.headers()["upload-offset"].to_str().unwrap().parse().unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["offset"].as_u64(), Some(header));
        assert_eq!(header, (offset + bytes.len()) as u64);
        header
    }

    /// The offset `HEAD /v1/uploads/{upload_id}` reports.
    async fn head_offset(server: &TestServer, token: &str, upload_id: &str) -> u64 {
        let response = server
            .client
            .head(server.url(&format!("/v1/uploads/{upload_id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.headers()["upload-offset"].to_str().unwrap().parse().unwrap()
    }

    async fn finish(server: &TestServer, token: &str, upload_id: &str) -> reqwest::Response {
        server.post(&format!("/v1/uploads/{upload_id}/finish"), token, json!({})).await
    }

    /// Uploads a whole photo in `chunks` chunks and finishes; returns the upload id and the
    /// finish's answer.
    async fn upload(server: &TestServer, token: &str, photo: &[u8], record_id: &str, chunks: usize) -> (String, Value) {
        let upload_id = started(server, token, photo, record_id).await;
        let mut offset = 0;
        for chunk in photo.chunks(photo.len().div_ceil(chunks)) {
            offset = appended(server, token, &upload_id, offset, chunk).await as usize;
        }
        let response = finish(server, token, &upload_id).await;
        assert_eq!(response.status(), 200);
        (upload_id, response.json().await.unwrap())
    }

    async fn get_blob(server: &TestServer, token: &str, sha256: &str) -> reqwest::Response {
        server.get(&format!("/v1/blobs/{sha256}"), token).await
    }

    async fn missing(server: &TestServer, token: &str, record_id: &str) -> Vec<String> {
        let response = server.get(&format!("/v1/records/{record_id}/missing-blobs"), token).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["record_id"], record_id);
        serde_json::from_value(body["missing"].clone()).unwrap()
    }

    #[tokio::test]
    async fn a_photo_uploaded_in_three_chunks_reads_back_byte_equal() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let photo = png(1);
        let sha256 = content_address(&photo);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        let (_, finished) = upload(&server, &a.token, &photo, &record_id, 3).await;
        assert_eq!(
            finished,
            json!({ "sha256": sha256, "size": photo.len(), "media_type": "image/png", "complete": true })
        );
        let response = get_blob(&server, &a.token, &sha256).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert_eq!(response.headers()["etag"], format!("\"{sha256}\"").as_str());
        let bytes = response.bytes().await.unwrap();
        assert!(bytes == photo, "the original, unchanged");
        assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 64);
        // One file where content addressing puts it, the upload's file gone, one row.
        assert_eq!(files(&server), [(format!("blobs/{}/{sha256}", &sha256[..2]), photo.len() as u64)]);
        let rows = server.query("SELECT sha256, size, media_type, uploaded_by FROM blobs");
        assert_eq!(rows, [[sha256, photo.len().to_string(), "image/png".into(), a.device_id.clone()]]);
    }

    #[tokio::test]
    async fn an_interrupted_upload_resumes_from_the_offset_the_server_reports() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let photo = png(2);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        let upload_id = started(&server, &a.token, &photo, &record_id).await;
        let third = photo.len() / 3;
        appended(&server, &a.token, &upload_id, 0, &photo[..third]).await;
        // The connection breaks halfway through the second chunk's body.
        let address = server.base.trim_start_matches("http://").to_string();
        let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "PATCH /v1/uploads/{upload_id} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
             content-type: application/octet-stream\r\nupload-offset: {third}\r\ncontent-length: {third}\r\n\r\n",
            a.token
        );
        connection.write_all(head.as_bytes()).await.unwrap();
        connection.write_all(&photo[third..third + third / 2]).await.unwrap();
        connection.shutdown().await.unwrap();
        drop(connection);
        assert_eq!(head_offset(&server, &a.token, &upload_id).await, third as u64, "nothing of the broken chunk");
        let state: Value = server.get(&format!("/v1/uploads/{upload_id}"), &a.token).await.json().await.unwrap();
        assert_eq!(
            state,
            json!({
                "upload_id": upload_id, "sha256": content_address(&photo), "size": photo.len(),
                "offset": third, "complete": false,
            })
        );
        // The next chunk goes through, but its answer is lost: the offset says where to go on.
        let _lost = append(&server, &a.token, &upload_id, third, &photo[third..2 * third]).await;
        let offset = head_offset(&server, &a.token, &upload_id).await as usize;
        assert_eq!(offset, 2 * third);
        appended(&server, &a.token, &upload_id, offset, &photo[offset..]).await;
        assert_eq!(finish(&server, &a.token, &upload_id).await.status(), 200);
        let bytes = get_blob(&server, &a.token, &content_address(&photo)).await.bytes().await.unwrap();
        assert!(bytes == photo, "byte-equal after the resumption");
        let state: Value = server.get(&format!("/v1/uploads/{upload_id}"), &a.token).await.json().await.unwrap();
        assert_eq!((state["offset"].as_u64(), state["complete"].as_bool()), (Some(photo.len() as u64), Some(true)));
    }

    #[tokio::test]
    async fn a_chunk_at_another_offset_is_refused_with_the_current_one() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let photo = png(3);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        let upload_id = started(&server, &a.token, &photo, &record_id).await;
        appended(&server, &a.token, &upload_id, 0, &photo[..100]).await;
        let before = everything(&server);
        for (what, offset) in [("a chunk sent again", 0), ("a gap", 150), ("past the end", photo.len())] {
            let response =
                append(&server, &a.token, &upload_id, offset, &photo[offset.min(100)..offset.min(100) + 10]).await;
            let body = refused(&server, &before, response, 409, "offset_mismatch").await;
            assert_eq!(body["details"]["offset"], 100, "{what}");
        }
        let response = append(&server, &a.token, &upload_id, 100, &vec![0; photo.len()]).await;
        let body = refused(&server, &before, response, 413, "past_declared_size").await;
        assert_eq!(body["details"], json!({ "size": photo.len(), "offset": 100 }));
        let response = finish(&server, &a.token, &upload_id).await;
        let body = refused(&server, &before, response, 409, "upload_incomplete").await;
        assert_eq!(body["details"], json!({ "offset": 100, "size": photo.len() }));
        // A header that is not a number, and a body that is not declared as bytes.
        let response = server
            .client
            .patch(server.url(&format!("/v1/uploads/{upload_id}")))
            .bearer_auth(&a.token)
            .header("content-type", "application/octet-stream")
            .header("upload-offset", "one hundred")
            .body(photo[100..110].to_vec())
            .send()
            .await
            .unwrap();
        refused(&server, &before, response, 400, "invalid_upload_offset").await;
        let response = server
            .client
            .patch(server.url(&format!("/v1/uploads/{upload_id}")))
            .bearer_auth(&a.token)
            .header("content-type", "image/png")
            .header("upload-offset", 100)
            .body(photo[100..110].to_vec())
            .send()
            .await
            .unwrap();
        refused(&server, &before, response, 415, "unsupported_content_type").await;
        assert_eq!(head_offset(&server, &a.token, &upload_id).await, 100);
    }

    #[tokio::test]
    async fn bytes_that_do_not_hash_to_the_declared_sha256_are_discarded_and_nothing_stored() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let photo = png(4);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        let before = everything(&server);
        let upload_id = started(&server, &a.token, &photo, &record_id).await;
        let mut tampered = photo.clone();
        *tampered.last_mut().unwrap() ^= 1;
        appended(&server, &a.token, &upload_id, 0, &tampered).await;
        let response = finish(&server, &a.token, &upload_id).await;
        let body = refused(&server, &before, response, 422, "hash_mismatch").await;
        assert_eq!(
            body["details"],
            json!({ "expected": content_address(&photo), "actual": content_address(&tampered) })
        );
        assert!(files(&server).is_empty(), "no file left");
        let (status, code) = fieldsync_tests::harness::error_code(finish(&server, &a.token, &upload_id).await).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "the upload is gone");
        assert_eq!(get_blob(&server, &a.token, &content_address(&photo)).await.status(), 404);
        assert_eq!(missing(&server, &a.token, &record_id).await, [content_address(&photo)]);
        // The right bytes go in afterwards.
        upload(&server, &a.token, &photo, &record_id, 1).await;
        assert!(missing(&server, &a.token, &record_id).await.is_empty());
    }

    #[tokio::test]
    async fn the_same_blob_uploaded_twice_is_stored_once() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let mut b = enroll(&server, "O2", PASSWORD).await;
        let (photo, shared) = (png(5), png(6));
        let sha256 = content_address(&photo);
        let first = record_with_photos(&server, &mut a, "T1", 1, &[&photo, &shared]).await;
        let second = record_with_photos(&server, &mut b, "T1", 2, &[&photo, &shared]).await;
        let (first_upload, finished) = upload(&server, &a.token, &photo, &first, 2).await;
        examined_by_itself(&server, &sha256).await;
        let stored = everything(&server);
        // Asked again, by the same device or another, for either record: nothing to send.
        for (token, record_id) in [(&a.token, &first), (&b.token, &first), (&b.token, &second)] {
            let response = begin(&server, token, &photo, record_id).await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body, json!({ "sha256": sha256, "size": photo.len(), "offset": photo.len(), "complete": true }));
        }
        let rows = |server: &TestServer| everything(server).into_iter().filter(|r| !r.starts_with("blob_records: "));
        assert!(rows(&server).eq(stored.iter().filter(|r| !r.starts_with("blob_records: ")).cloned()), "stored once");
        let mut linked = vec![vec![first.clone()], vec![second.clone()]];
        linked.sort();
        let sql = format!("SELECT record_id FROM blob_records WHERE sha256 = '{sha256}' ORDER BY record_id");
        assert_eq!(server.query(&sql), linked, "each record that asked is linked to the blob");
        // Two devices upload the same photo at once: both finish, one row, one file.
        let (from_a, from_b) =
            (started(&server, &a.token, &shared, &first).await, started(&server, &b.token, &shared, &second).await);
        appended(&server, &a.token, &from_a, 0, &shared).await;
        appended(&server, &b.token, &from_b, 0, &shared).await;
        assert_eq!(finish(&server, &b.token, &from_b).await.status(), 200);
        let again: Value = finish(&server, &a.token, &from_a).await.json().await.unwrap();
        assert_eq!(again["sha256"], content_address(&shared));
        // Finishing again answers the same.
        let repeated: Value = finish(&server, &a.token, &first_upload).await.json().await.unwrap();
        assert_eq!(repeated, finished);
        let mut expected =
            [[content_address(&photo), a.device_id.clone()], [content_address(&shared), b.device_id.clone()]];
        expected.sort();
        assert_eq!(
            server.query("SELECT sha256, uploaded_by FROM blobs ORDER BY sha256"),
            expected,
            "once each, by the first to finish"
        );
        assert_eq!(files(&server).len(), 2, "one file per blob");
        let bytes = get_blob(&server, &b.token, &content_address(&shared)).await.bytes().await.unwrap();
        assert!(bytes == shared);
    }

    #[tokio::test]
    async fn a_sha256_the_record_does_not_reference_is_refused() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let (photo, other) = (png(7), png(8));
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        let before = everything(&server);
        refused(&server, &before, begin(&server, &a.token, &other, &record_id).await, 422, "blob_not_referenced").await;
        for (what, body) in [
            (
                "upper-case hex",
                json!({ "sha256": content_address(&photo).to_uppercase(), "size": 1, "record_id": record_id }),
            ),
            ("a short hash", json!({ "sha256": "abc", "size": 1, "record_id": record_id })),
            ("no bytes", json!({ "sha256": content_address(&photo), "size": 0, "record_id": record_id })),
        ] {
            let body =
                refused(&server, &before, server.post("/v1/uploads", &a.token, body).await, 422, "invalid_upload")
                    .await;
            assert!(body["details"]["field"].is_string(), "{what}");
        }
    }

    #[tokio::test]
    async fn only_the_device_of_an_officer_on_the_team_may_upload() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let outsider = enroll(&server, "O3", PASSWORD).await;
        let teammate = enroll(&server, "O2", PASSWORD).await;
        let photo = png(9);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        let (no_device, supervisor) = (server.token("O1", PASSWORD).await, server.token("SUP", PASSWORD).await);
        let before = everything(&server);
        let cases = [
            ("an officer not on the team", outsider.token.as_str(), record_id.as_str(), 403, "not_on_team"),
            ("no such record", a.token.as_str(), "R-nowhere", 404, "not_found"),
            ("a token without a device", no_device.as_str(), record_id.as_str(), 403, "device_required"),
            ("a supervisor", supervisor.as_str(), record_id.as_str(), 403, "role_required"),
        ];
        for (who, token, record, status, code) in cases {
            let body = refused(&server, &before, begin(&server, token, &photo, record).await, status, code).await;
            assert!(body["message"].is_string(), "{who}");
        }
        // An upload belongs to its device: another one neither sees nor writes it.
        let upload_id = started(&server, &a.token, &photo, &record_id).await;
        let before = everything(&server);
        let other = teammate.token.as_str();
        refused(&server, &before, append(&server, other, &upload_id, 0, &photo).await, 404, "not_found").await;
        refused(&server, &before, finish(&server, other, &upload_id).await, 404, "not_found").await;
        refused(&server, &before, server.get(&format!("/v1/uploads/{upload_id}"), other).await, 404, "not_found").await;
        let response = server.get(&format!("/v1/uploads/{upload_id}"), &no_device).await;
        refused(&server, &before, response, 403, "device_required").await;
        let response = server.get("/v1/uploads/..%2Ffieldsync.sqlite3", &a.token).await;
        refused(&server, &before, response, 404, "not_found").await;
    }

    #[tokio::test]
    async fn a_blob_above_the_size_limit_is_refused() {
        let photo = png(10);
        let limit = photo.len() as u64 - 1;
        let server = city_with(|config| config.max_blob_bytes = limit).await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        let before = everything(&server);
        let body =
            refused(&server, &before, begin(&server, &a.token, &photo, &record_id).await, 413, "blob_too_large").await;
        assert_eq!(body["details"]["limit"], limit);
        assert_eq!(server::Config::new("data".into()).max_blob_bytes, 64 << 20, "64 MiB by default");
    }

    #[tokio::test]
    async fn a_device_holds_at_most_four_unfinished_uploads() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let b = enroll(&server, "O2", PASSWORD).await;
        let photos: Vec<Vec<u8>> = (20..25).map(png).collect();
        let references: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &references).await;
        let mut upload_ids = Vec::new();
        for photo in &photos[..4] {
            upload_ids.push(started(&server, &a.token, photo, &record_id).await);
        }
        let before = everything(&server);
        let body =
            refused(&server, &before, begin(&server, &a.token, &photos[4], &record_id).await, 429, "too_many_uploads")
                .await;
        assert_eq!(body["details"]["limit"], 4);
        // Asking again for an upload it holds goes on with it, and counts nothing more.
        let again = begin(&server, &a.token, &photos[0], &record_id).await;
        assert_eq!(again.status(), 200);
        let again: Value = again.json().await.unwrap();
        assert_eq!((again["upload_id"].as_str(), again["offset"].as_u64()), (Some(upload_ids[0].as_str()), Some(0)));
        assert_eq!(everything(&server), before);
        // Another device is not held by this one's uploads; a finished upload frees a slot.
        started(&server, &b.token, &photos[4], &record_id).await;
        appended(&server, &a.token, &upload_ids[0], 0, &photos[0]).await;
        assert_eq!(finish(&server, &a.token, &upload_ids[0]).await.status(), 200);
        started(&server, &a.token, &photos[4], &record_id).await;
    }

    /// An upload abandoned for longer than the expiry gives its place back when its device next
    /// starts one: its row and partial file go, and the device would start that blob again.
    #[tokio::test]
    async fn an_abandoned_upload_expires_and_frees_its_place() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let photos: Vec<Vec<u8>> = (30..35).map(png).collect();
        let references: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &references).await;
        let mut upload_ids = Vec::new();
        for photo in &photos[..4] {
            upload_ids.push(started(&server, &a.token, photo, &record_id).await);
        }
        appended(&server, &a.token, &upload_ids[0], 0, &photos[0][..100]).await;
        let partial = server.dir.path().join("uploads").join(&upload_ids[0]);
        assert!(partial.exists());
        let before = everything(&server);
        refused(&server, &before, begin(&server, &a.token, &photos[4], &record_id).await, 429, "too_many_uploads")
            .await;
        // Upload 0 untouched for four days (the expiry is three), the others recent.
        let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
        let sql = "UPDATE uploads SET updated_at_ms = updated_at_ms - 4 * 86400000 WHERE upload_id = ?1";
        conn.execute(sql, [&upload_ids[0]]).unwrap();
        drop(conn);
        started(&server, &a.token, &photos[4], &record_id).await;
        assert!(!partial.exists(), "the partial file is removed");
        let sql = format!("SELECT COUNT(*) FROM uploads WHERE upload_id = '{}'", upload_ids[0]);
        assert_eq!(server.query(&sql), [["0".to_string()]]);
        assert_eq!(append(&server, &a.token, &upload_ids[0], 100, &photos[0][100..200]).await.status(), 404);
        // The device starts that photo again from zero once it has a place.
        appended(&server, &a.token, &upload_ids[1], 0, &photos[1]).await;
        assert_eq!(finish(&server, &a.token, &upload_ids[1]).await.status(), 200);
        let again = begin(&server, &a.token, &photos[0], &record_id).await;
        assert_eq!(again.status(), 201);
        assert_eq!(again.json::<Value>().await.unwrap()["offset"], 0);
    }

    #[tokio::test]
    async fn a_reviewer_may_read_a_blob_and_an_unrelated_officer_may_not() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let photo = png(30);
        let sha256 = content_address(&photo);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        upload(&server, &a.token, &photo, &record_id, 1).await;
        let mut tokens = std::collections::HashMap::new();
        for who in ["SUP", "REV", "O2", "O3"] {
            tokens.insert(who, server.token(who, PASSWORD).await);
        }
        let before = everything(&server);
        let cases = [
            ("the uploading device", a.token.as_str(), sha256.clone(), 200, ""),
            ("a team member", tokens["O2"].as_str(), sha256.clone(), 200, ""),
            ("a reviewer", tokens["REV"].as_str(), sha256.clone(), 200, ""),
            ("a supervisor", tokens["SUP"].as_str(), sha256.clone(), 200, ""),
            ("an officer on another task", tokens["O3"].as_str(), sha256.clone(), 404, "not_found"),
            ("a blob nobody uploaded", tokens["REV"].as_str(), content_address(b"nothing"), 404, "not_found"),
            ("not a SHA-256", tokens["REV"].as_str(), "..".to_string(), 404, "not_found"),
        ];
        for (who, token, blob, status, code) in cases {
            let response = get_blob(&server, token, &blob).await;
            if status == 200 {
                assert_eq!(response.status(), 200, "{who}");
                assert!(response.bytes().await.unwrap() == photo, "{who}");
            } else {
                refused(&server, &before, response, status, code).await;
            }
        }
        // The same photo in a record of O3's own task: now O3 may read it, and O4 with them.
        let mut outsider = enroll(&server, "O3", PASSWORD).await;
        record_with_photos(&server, &mut outsider, "T2", 2, &[&photo]).await;
        assert_eq!(get_blob(&server, &tokens["O3"], &sha256).await.status(), 200);
        let o4 = server.token("O4", PASSWORD).await;
        assert!(get_blob(&server, &o4, &sha256).await.bytes().await.unwrap() == photo);
    }

    #[tokio::test]
    async fn missing_blobs_lists_the_photos_the_server_lacks_until_they_are_uploaded() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let (first, second) = (png(40), png(41));
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&first, &second]).await;
        let mut both = vec![content_address(&first), content_address(&second)];
        both.sort();
        assert_eq!(missing(&server, &a.token, &record_id).await, both);
        let reviewer = server.token("REV", PASSWORD).await;
        assert_eq!(missing(&server, &reviewer, &record_id).await, both, "a reviewer sees it too");
        upload(&server, &a.token, &first, &record_id, 2).await;
        assert_eq!(missing(&server, &a.token, &record_id).await, [content_address(&second)]);
        upload(&server, &a.token, &second, &record_id, 2).await;
        assert!(missing(&server, &a.token, &record_id).await.is_empty());
        let outsider = server.token("O3", PASSWORD).await;
        let before = everything(&server);
        let response = server.get(&format!("/v1/records/{record_id}/missing-blobs"), &outsider).await;
        refused(&server, &before, response, 404, "not_found").await;
        let response = server.get("/v1/records/R-nowhere/missing-blobs", &reviewer).await;
        refused(&server, &before, response, 404, "not_found").await;
    }

    async fn metadata(server: &TestServer, token: &str, sha256: &str) -> reqwest::Response {
        server.get(&format!("/v1/blobs/{sha256}/metadata"), token).await
    }

    async fn thumbnail(server: &TestServer, token: &str, sha256: &str) -> reqwest::Response {
        server.get(&format!("/v1/blobs/{sha256}/thumbnail"), token).await
    }

    /// The metadata answer without the time of the examination, which it must have.
    async fn metadata_of(server: &TestServer, token: &str, sha256: &str) -> Value {
        let response = metadata(server, token, sha256).await;
        assert_eq!(response.status(), 200);
        let mut body: Value = response.json().await.unwrap();
        let examined_at = body.as_object_mut().unwrap().remove("examined_at_ms").unwrap();
        assert!(examined_at.as_i64().is_some_and(|ms| ms > 0), "{examined_at}");
        body
    }

    #[tokio::test]
    async fn a_stored_photo_has_a_thumbnail_and_metadata_for_those_who_may_read_it() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let photo = png_of(60, 640, 400);
        let sha256 = content_address(&photo);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
        upload(&server, &a.token, &photo, &record_id, 2).await;
        // Examined after the upload finished, not only when first asked.
        examined_by_itself(&server, &sha256).await;
        let sql = "SELECT sha256, thumbnail IS NOT NULL, error_code IS NULL FROM blob_metadata";
        assert_eq!(server.query(sql), [[sha256.clone(), "1".into(), "1".into()]]);
        let expected = json!({
            "sha256": sha256, "size": photo.len(), "media_type": "image/png",
            "claimed": {
                "taken_at": null, "offset": null, "latitude": null, "longitude": null,
                "make": null, "model": null, "exif_error": null,
            },
            "width": 640, "height": 400, "thumbnail": true, "error": null,
        });
        let reviewer = server.token("REV", PASSWORD).await;
        let teammate = server.token("O2", PASSWORD).await;
        for (who, token) in
            [("the uploading device", &a.token), ("a team member", &teammate), ("a reviewer", &reviewer)]
        {
            assert_eq!(metadata_of(&server, token, &sha256).await, expected, "{who}");
            let response = thumbnail(&server, token, &sha256).await;
            assert_eq!(response.status(), 200, "{who}");
            assert_eq!(response.headers()["content-type"], "image/jpeg");
            let jpeg = response.bytes().await.unwrap();
            let small = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
            assert_eq!((small.width(), small.height()), (320, 200), "{who}: fits in 320 x 320, same shape");
        }
        // An officer on another task learns nothing, not even that the blob exists.
        let outsider = server.token("O3", PASSWORD).await;
        let before = everything(&server);
        refused(&server, &before, metadata(&server, &outsider, &sha256).await, 404, "not_found").await;
        refused(&server, &before, thumbnail(&server, &outsider, &sha256).await, 404, "not_found").await;
        let nobody = content_address(b"nothing");
        refused(&server, &before, metadata(&server, &reviewer, &nobody).await, 404, "not_found").await;
        refused(&server, &before, thumbnail(&server, &reviewer, "..").await, 404, "not_found").await;
        // A blob stored before the server examined blobs is examined when first asked.
        let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
        conn.execute("DELETE FROM blob_metadata WHERE sha256 = ?1", [&sha256]).unwrap();
        drop(conn);
        assert_eq!(metadata_of(&server, &reviewer, &sha256).await, expected, "examined again");
        assert_eq!(server.query("SELECT COUNT(*) FROM blob_metadata"), [["1"]]);
    }

    /// A one-bit grey PNG of `side` x `side` black pixels: a few tens of kilobytes that a decoder
    /// would expand to a byte a pixel.
    fn one_bit_png(side: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![0u8; side.div_ceil(8) as usize];
        for _ in 0..side {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
        writer.finish().unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_small_photo_of_too_many_pixels_is_stored_without_being_decoded() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        // 16 000 x 16 000 one-bit pixels: about 31 KB sent, 244 MiB if decoded.
        let bomb = one_bit_png(16_000);
        assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
        let sha256 = content_address(&bomb);
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&bomb]).await;
        let (_, finished) = upload(&server, &a.token, &bomb, &record_id, 1).await;
        assert_eq!(finished["complete"], true, "stored all the same");
        examined_by_itself(&server, &sha256).await;
        let body = metadata_of(&server, &a.token, &sha256).await;
        assert_eq!((body["width"].as_u64(), body["height"].as_u64()), (Some(16_000), Some(16_000)), "{body}");
        assert_eq!(
            (body["thumbnail"].as_bool(), body["error"]["code"].as_str()),
            (Some(false), Some("image_too_large"))
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("megapixels"), "refused by its pixel count, from its header: {message}");
        let (status, code) = fieldsync_tests::harness::error_code(thumbnail(&server, &a.token, &sha256).await).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "no thumbnail");
    }

    #[tokio::test]
    async fn a_photo_that_does_not_decode_is_stored_with_the_reason_it_has_no_thumbnail() {
        let server = city().await;
        let mut a = enroll(&server, "O1", PASSWORD).await;
        let whole = png_of(61, 200, 100);
        let (cut, not_an_image) = (whole[..whole.len() / 2].to_vec(), b"a voice memo, not a photo".to_vec());
        let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&cut, &not_an_image]).await;
        for (bytes, media_type, code) in
            [(&cut, "image/png", "corrupt_image"), (&not_an_image, "application/octet-stream", "unsupported_image")]
        {
            let sha256 = content_address(bytes);
            let (_, finished) = upload(&server, &a.token, bytes, &record_id, 1).await;
            assert_eq!(finished["complete"], true, "{code}: stored all the same");
            let body = metadata_of(&server, &a.token, &sha256).await;
            assert_eq!((body["media_type"].as_str(), body["thumbnail"].as_bool()), (Some(media_type), Some(false)));
            assert_eq!(body["error"]["code"], code, "{body}");
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
            let (status, error) =
                fieldsync_tests::harness::error_code(thumbnail(&server, &a.token, &sha256).await).await;
            assert_eq!((status, error.as_str()), (404, "not_found"), "{code}: no thumbnail");
            assert!(get_blob(&server, &a.token, &sha256).await.bytes().await.unwrap() == *bytes, "{code}");
        }
        assert!(missing(&server, &a.token, &record_id).await.is_empty());
    }
}
