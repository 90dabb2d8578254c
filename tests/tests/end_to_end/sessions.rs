//! One-time passwords, a new password ending old sessions, a revoked role stopping sync at once,
//! a flood of logins with huge ids refused by address first.

use server::store::Account;
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
    let refused = server.post("/v1/admin/officers", token, serde_json::json!({"officer_id": "X", "name": "X"})).await;
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
