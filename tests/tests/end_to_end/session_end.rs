//! Sessions end when they end: an access token names its session (`sid`), and once the session
//! is ended (logout, a password change, its refresh family revoked for a reused token, its device
//! revoked) every access token of it is refused at once with `session_revoked`, not when it
//! expires ten minutes later. Logout needs the access token of the session it ends.

use serde_json::{Value, json};

use fieldsync_tests::harness::{TestServer, enroll, error_code as code};

const PASSWORD: &str = "correct horse battery";

async fn login(server: &TestServer, officer_id: &str, password: &str) -> (String, String) {
    let response = server.login(officer_id, password, None).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    (tokens["access_token"].as_str().unwrap().into(), tokens["refresh_token"].as_str().unwrap().into())
}

async fn refresh(server: &TestServer, refresh_token: &str) -> reqwest::Response {
    server
        .client
        .post(server.url("/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap()
}

async fn logout(server: &TestServer, access_token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = server.client.post(server.url("/v1/auth/logout")).json(&body);
    if let Some(token) = access_token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The code `GET /v1/tasks` answers with this access token: 200 and "" when it works.
async fn works(server: &TestServer, access_token: &str) -> (u16, String) {
    code(server.get("/v1/tasks", access_token).await).await
}

#[tokio::test]
async fn logout_ends_its_session_at_once_and_needs_its_access_token() {
    let server = TestServer::start().await;
    server.account("O1", PASSWORD, &["officer"]);
    let (access, refresh_token) = login(&server, "O1", PASSWORD).await;
    let (other_access, _) = login(&server, "O1", PASSWORD).await;
    assert_eq!(works(&server, &access).await, (200, String::new()));

    // Holding a refresh token is not enough to end a session.
    let before = server.snapshot();
    let anonymous = logout(&server, None, json!({ "refresh_token": refresh_token })).await;
    assert_eq!(code(anonymous).await, (401, "missing_token".into()));
    assert_eq!(server.snapshot(), before);
    assert_eq!(works(&server, &access).await, (200, String::new()), "the session goes on");

    let out = logout(&server, Some(&access), json!({})).await;
    assert_eq!(out.status(), 200);
    assert_eq!(works(&server, &access).await, (401, "session_revoked".into()), "refused at once");
    assert_eq!(code(refresh(&server, &refresh_token).await).await, (401, "refresh_token_revoked".into()));
    assert_eq!(works(&server, &other_access).await, (200, String::new()), "another session goes on");
}

#[tokio::test]
async fn a_password_change_ends_every_session_of_the_officer() {
    let server = TestServer::start().await;
    server.account("O1", PASSWORD, &["officer"]);
    let (changing, _) = login(&server, "O1", PASSWORD).await;
    let (elsewhere, elsewhere_refresh) = login(&server, "O1", PASSWORD).await;
    let new_password = json!({ "current_password": PASSWORD, "new_password": "another long password" });
    assert_eq!(server.post("/v1/auth/password", &changing, new_password).await.status(), 200);
    // Every session opened with the old password ends, the one that changed it too.
    assert_eq!(works(&server, &elsewhere).await, (401, "session_revoked".into()));
    assert_eq!(works(&server, &changing).await, (401, "session_revoked".into()));
    assert_eq!(code(refresh(&server, &elsewhere_refresh).await).await, (401, "refresh_token_revoked".into()));
    let (fresh, _) = login(&server, "O1", "another long password").await;
    assert_eq!(works(&server, &fresh).await, (200, String::new()));
}

#[tokio::test]
async fn a_reused_refresh_token_ends_its_session() {
    let server = TestServer::start().await;
    server.account("O1", PASSWORD, &["officer"]);
    let (_, first) = login(&server, "O1", PASSWORD).await;
    let second: Value = refresh(&server, &first).await.json().await.unwrap();
    let third: Value = refresh(&server, second["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    let access = third["access_token"].as_str().unwrap();
    assert_eq!(works(&server, access).await, (200, String::new()));
    assert_eq!(code(refresh(&server, &first).await).await, (401, "refresh_token_reused".into()));
    assert_eq!(works(&server, access).await, (401, "session_revoked".into()));
}

#[tokio::test]
async fn a_revoked_devices_sessions_end() {
    let server = TestServer::start().await;
    server.account("O1", PASSWORD, &["officer"]);
    server.account("ADM", PASSWORD, &["admin"]);
    let phone = enroll(&server, "O1", PASSWORD).await;
    let admin = server.token("ADM", PASSWORD).await;
    let revoked = server.post(&format!("/v1/devices/{}/revoke", phone.device_id), &admin, json!({})).await;
    assert_eq!(revoked.status(), 200);
    // The device check answers first; the session is ended all the same.
    assert_eq!(works(&server, &phone.token).await, (401, "device_revoked".into()));
    let sessions = server.query("SELECT COUNT(*) FROM revoked_sessions WHERE reason = 'device_revoked'");
    assert_eq!(sessions[0][0], "1");
}

#[tokio::test]
async fn a_token_that_names_no_session_is_refused() {
    let server = TestServer::start().await;
    server.account("O1", PASSWORD, &["officer"]);
    let key = server::store::Accounts::signing_keys(server.store.as_ref()).unwrap().remove(0);
    let now = server::now_ms() / 1000;
    let claims = json!({
        "iss": "fieldsync-server", "aud": "fieldsync-api", "sub": "O1", "iat": now, "exp": now + 600, "roles": ["officer"],
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&key.secret)).unwrap();
    assert_eq!(works(&server, &token).await, (401, "invalid_token".into()));
}

#[tokio::test]
async fn an_ended_session_stays_ended_on_another_server_sharing_the_database() {
    let server = TestServer::start().await;
    server.account("O1", PASSWORD, &["officer"]);
    let (access, _) = login(&server, "O1", PASSWORD).await;
    let (other, _) = login(&server, "O1", PASSWORD).await;
    assert_eq!(logout(&server, Some(&access), json!({})).await.status(), 200);
    // The server program on the same database: it reads the ended sessions at its first request.
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let (mut child, address) =
        fieldsync_tests::harness::spawn_server(program, server.dir.path(), "127.0.0.1:0", &[]).expect("serving");
    let ask = |token: String| {
        let url = format!("http://{address}/v1/tasks");
        async move { code(reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap()).await }
    };
    let ended = ask(access.clone()).await;
    let going_on = ask(other.clone()).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ended, (401, "session_revoked".into()));
    assert_eq!(going_on, (200, String::new()));
}
