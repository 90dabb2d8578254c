//! Lockout without denial of service: logins are limited per address first, then each account
//! backs off exponentially after its free failed passwords; an enrolled device that signs a
//! login challenge with its key logs in past the account's back-off, so a guesser elsewhere
//! cannot lock the officer out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use serde_json::{Value, json};

use fieldsync_tests::harness::{TestServer, enroll, error_code as code};

const PASSWORD: &str = "correct horse battery";

/// A client whose connections come from `address` on the loopback network.
fn from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(address)).build().unwrap()
}

async fn login(server: &TestServer, client: &reqwest::Client, body: Value) -> reqwest::Response {
    client.post(server.url("/v1/auth/login")).json(&body).send().await.unwrap()
}

/// A challenge from the server, signed by the device's key for `officer_id`.
async fn proof(
    server: &TestServer,
    client: &reqwest::Client,
    phone: &fieldsync_tests::harness::Phone,
    officer_id: &str,
) -> (String, String) {
    let response = client.post(server.url("/v1/auth/challenge")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let challenge = STANDARD.decode(body["challenge"].as_str().unwrap()).unwrap();
    let message = server::service::auth::device_login_message(&challenge, &phone.device_id, officer_id);
    (STANDARD.encode(&challenge), STANDARD.encode(phone.key.sign(&message).to_bytes()))
}

#[tokio::test]
async fn a_guesser_elsewhere_slows_itself_not_the_officers_device() {
    let server = TestServer::start_with(|c| {
        c.auth_backoff_base_ms = 60_000;
        c.auth_attempts_per_minute_per_address = 20;
    })
    .await;
    server.account("O1", PASSWORD, &["officer"]);
    server.account("O2", PASSWORD, &["officer"]);
    let phone = enroll(&server, "O1", PASSWORD).await;
    let guesser = from([127, 0, 0, 2]);
    let officer = from([127, 0, 0, 3]);
    let before = server.snapshot();

    // Five free failures, the sixth starts the account's wait, and the next guess waits.
    let first_guess = std::time::Instant::now();
    for guess in 0..6 {
        let response =
            login(&server, &guesser, json!({ "officer_id": "O1", "password": format!("guess {guess}") })).await;
        assert_eq!(code(response).await, (401, "invalid_credentials".into()), "guess {guess}");
    }
    let waiting = login(&server, &guesser, json!({ "officer_id": "O1", "password": "guess 6" })).await;
    assert_eq!(waiting.status(), 429);
    let retry_after: u64 = waiting.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");

    // The officer's enrolled phone proves its key and logs in from another address.
    let (challenge, signature) = proof(&server, &officer, &phone, "O1").await;
    let with_device = json!({
        "officer_id": "O1", "password": PASSWORD, "device_id": phone.device_id,
        "device_challenge": challenge, "device_signature": signature,
    });
    let response = login(&server, &officer, with_device.clone()).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(server.get("/v1/tasks", tokens["access_token"].as_str().unwrap()).await.status(), 200);
    // A challenge is answered once; a signature by another key, or for another officer, is refused.
    assert_eq!(code(login(&server, &officer, with_device).await).await, (401, "invalid_device_proof".into()));
    let (challenge, _) = proof(&server, &officer, &phone, "O1").await;
    let forged = json!({
        "officer_id": "O1", "password": PASSWORD, "device_id": phone.device_id,
        "device_challenge": challenge, "device_signature": STANDARD.encode([7u8; 64]),
    });
    assert_eq!(code(login(&server, &officer, forged).await).await, (401, "invalid_device_proof".into()));
    let (challenge, signature) = proof(&server, &officer, &phone, "O2").await;
    let elsewhere = json!({
        "officer_id": "O2", "password": PASSWORD, "device_id": phone.device_id,
        "device_challenge": challenge, "device_signature": signature,
    });
    assert_eq!(code(login(&server, &officer, elsewhere).await).await, (401, "invalid_device_proof".into()));
    let half =
        json!({ "officer_id": "O1", "password": PASSWORD, "device_id": phone.device_id, "device_challenge": "AA==" });
    // Half a proof is none: the account's back-off applies.
    assert_eq!(code(login(&server, &officer, half).await).await, (429, "rate_limited".into()));

    // A password alone waits for the account, whoever sends it; another account does not.
    let password_only = login(&server, &officer, json!({ "officer_id": "O1", "password": PASSWORD })).await;
    assert_eq!(code(password_only).await, (429, "rate_limited".into()));
    let other = login(&server, &officer, json!({ "officer_id": "O2", "password": PASSWORD })).await;
    assert_eq!(other.status(), 200);

    // The guesser's address is limited first, whatever account it tries: 7 attempts so far, 13 more.
    for n in 0..13 {
        let response = login(&server, &guesser, json!({ "officer_id": format!("X{n}"), "password": "guess" })).await;
        assert_eq!(code(response).await, (401, "invalid_credentials".into()), "X{n}");
    }
    // The address's attempts come back one every 3 s (20 a minute, no window edge to wait for):
    // on a slow machine the guesser may have earned a few more since its first, and no more.
    let earned = first_guess.elapsed().as_secs() / 3 + 1;
    let mut extra = 0;
    loop {
        let response = login(&server, &guesser, json!({ "officer_id": "X-extra", "password": "guess" })).await;
        match code(response).await {
            (429, code) if code == "rate_limited" => break,
            (401, _) => extra += 1,
            other => panic!("{other:?}"),
        }
        assert!(extra <= earned, "{extra} attempts past the burst, {earned} earned");
    }
    let limited = login(&server, &guesser, json!({ "officer_id": "O2", "password": PASSWORD })).await;
    assert_eq!(code(limited).await, (429, "rate_limited".into()));
    let challenge = guesser.post(server.url("/v1/auth/challenge")).send().await.unwrap();
    assert_eq!(code(challenge).await, (429, "rate_limited".into()));
    assert_eq!(server.snapshot(), before, "guesses and proofs change nothing stored");
}
