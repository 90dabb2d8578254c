//! Login, tokens, refresh rotation and reuse, rate limits, device enrollment and revocation.

use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
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
        server.client.post(server.url("/v1/auth/refresh")).json(&serde_json::json!({ "refresh_token": token })).send()
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
    let revoked = server.post(&format!("/v1/devices/{}/revoke", phone.device_id), &admin, serde_json::json!({})).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(code(server.get("/v1/tasks", &phone.token).await).await, (401, "device_revoked".into()));
    let login_on_revoked = server.login("O1", "correct horse battery", Some(&phone.device_id)).await;
    assert_eq!(code(login_on_revoked).await, (401, "device_revoked".into()));
}
