//! What one signed-in officer can make the server keep is bounded by the bureau's settings:
//! devices per officer, unanswered enrollment challenges (expired ones purged), each refused with
//! its code and nothing stored. (Held log entries are in `transparency`, campaign lists and the
//! public listing's pages in `campaigns`.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fieldsync_tests::harness::{TestServer, enroll};

const PASSWORD: &str = "correct horse battery";

/// A refusal's status and code, and that it changed nothing.
async fn refused(server: &TestServer, response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let before = server.snapshot();
    assert_eq!(response.status().as_u16(), status);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(server.snapshot(), before, "nothing changed");
    body
}

#[tokio::test]
async fn an_officer_has_a_bounded_number_of_devices_until_one_is_revoked() {
    let server = TestServer::start_with(|c| c.max_devices_per_officer = 2).await;
    server.account("O1", PASSWORD, &["officer"]);
    server.account("O2", PASSWORD, &["officer"]);
    server.account("ADM", PASSWORD, &["admin"]);
    let first = enroll(&server, "O1", PASSWORD).await;
    enroll(&server, "O1", PASSWORD).await;
    // The third: a challenge is issued, but the enrollment is refused and the challenge kept.
    let token = server.token("O1", PASSWORD).await;
    let challenge: serde_json::Value =
        server.post("/v1/devices/challenge", &token, serde_json::json!({})).await.json().await.unwrap();
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let (public, actor) = (key.verifying_key().to_bytes(), [9u8; 16]);
    let nonce = STANDARD.decode(challenge["challenge"].as_str().unwrap()).unwrap();
    let signature = ed25519_dalek::Signer::sign(&key, &schemas::device::enrollment_message(&nonce, &public, &actor));
    let enrollment = serde_json::json!({
        "challenge": challenge["challenge"], "public_key": STANDARD.encode(public),
        "actor_id": hex::encode(actor), "signature": STANDARD.encode(signature.to_bytes()),
    });
    let body =
        refused(&server, server.post("/v1/devices", &token, enrollment.clone()).await, 409, "too_many_devices").await;
    assert_eq!(body["details"]["limit"], 2);
    // Another officer is not bounded by O1's devices.
    enroll(&server, "O2", PASSWORD).await;
    // Once one is revoked, the same enrollment goes through.
    let admin = server.token("ADM", PASSWORD).await;
    let revoked = server.post(&format!("/v1/devices/{}/revoke", first.device_id), &admin, serde_json::json!({})).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(server.post("/v1/devices", &token, enrollment).await.status(), 200);
}

#[tokio::test]
async fn unanswered_challenges_are_bounded_and_expired_ones_purged() {
    let server = TestServer::start_with(|c| c.max_open_challenges_per_officer = 3).await;
    server.account("O1", PASSWORD, &["officer"]);
    let token = server.token("O1", PASSWORD).await;
    let challenge = || server.post("/v1/devices/challenge", &token, serde_json::json!({}));
    for _ in 0..3 {
        assert_eq!(challenge().await.status(), 200);
    }
    let body = refused(&server, challenge().await, 429, "too_many_challenges").await;
    assert_eq!(body["details"]["limit"], 3);
    let count = |sql: &str| server.query(sql)[0][0].clone();
    assert_eq!(count("SELECT COUNT(*) FROM challenges"), "3");
    // Expired challenges, used or not, are purged when the next one is issued.
    let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
    conn.execute("UPDATE challenges SET expires_at_ms = 1", []).unwrap();
    drop(conn);
    assert_eq!(challenge().await.status(), 200);
    assert_eq!(count("SELECT COUNT(*) FROM challenges"), "1", "only the new one is left");
    // An answered challenge no longer counts: after an enrollment, two more may be open.
    enroll(&server, "O1", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(challenge().await.status(), 200);
    }
    refused(&server, challenge().await, 429, "too_many_challenges").await;
}
