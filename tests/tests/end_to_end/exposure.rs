//! Least exposure: an inclusion proof carries its leaf's data only for a caller who may read what
//! the leaf is about (others get its hash and can still check the proof); `/metrics` is behind a
//! token or on an address of its own; every HTML page forbids framing, scripts and referrers.

use serde_json::Value;

use fieldsync_tests::harness::{TestServer, enroll, error_code as code, spawn_server};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn a_leafs_data_goes_only_to_those_who_may_read_its_subject() {
    let server = TestServer::start().await;
    for officer in ["O1", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
    }
    server.account("ADM", PASSWORD, &["admin"]);
    let phone = enroll(&server, "O1", PASSWORD).await;
    let checkpoint = server.client.get(server.url("/v1/log/checkpoint")).send().await.unwrap();
    assert_eq!(checkpoint.status(), 200);
    let proof = |token: String| {
        let server = &server;
        async move {
            let response = server.get("/v1/log/proofs/inclusion?index=0", &token).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    // The enrolment leaf binds O1's device to O1: O1 and the administrator read it.
    let own = proof(phone.token.clone()).await;
    let data = hex::decode(own["leaf"].as_str().expect("the leaf's data for its officer")).unwrap();
    assert_eq!(own["leaf_hash"], hex::encode(sync_core::merkle::leaf_hash(&data)));
    assert!(String::from_utf8_lossy(&data).contains(&phone.device_id));
    assert_eq!(proof(server.token("ADM", PASSWORD).await).await["leaf"], own["leaf"]);
    // Another officer gets the same proof without the data.
    let other = proof(server.token("O3", PASSWORD).await).await;
    assert!(other.get("leaf").is_none(), "{other}");
    assert_eq!(other["leaf_hash"], own["leaf_hash"]);
    assert_eq!(other["proof"], own["proof"]);
    assert!(!other.to_string().contains(&phone.device_id));
}

#[tokio::test]
async fn metrics_need_their_token_when_one_is_set() {
    let server = TestServer::start_with(|c| c.metrics_token = Some("scrape-me".into())).await;
    let metrics = |token: Option<&str>| {
        let mut request = server.client.get(server.url("/metrics"));
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        request.send()
    };
    assert_eq!(code(metrics(None).await.unwrap()).await, (401, "metrics_token_required".into()));
    assert_eq!(code(metrics(Some("Bearer wrong")).await.unwrap()).await, (401, "metrics_token_required".into()));
    let scraped = metrics(Some("bearer scrape-me")).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("fieldsync_http_requests_total"));
    let off = TestServer::start_with(|c| c.metrics_on_api = false).await;
    let response = off.client.get(off.url("/metrics")).send().await.unwrap();
    assert_eq!(code(response).await, (404, "not_found".into()));
}

#[tokio::test]
async fn the_program_serves_metrics_on_their_own_address_and_not_on_the_apis() {
    let data = tempfile::tempdir().unwrap();
    // A free port for the metrics: the program is told it, as an operator would tell it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics_address = format!("127.0.0.1:{port}");
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let (mut child, address) =
        spawn_server(program, data.path(), "127.0.0.1:0", &["--metrics-listen", &metrics_address]).expect("serving");
    let api = reqwest::get(format!("http://{address}/metrics")).await.unwrap();
    let metrics = reqwest::get(format!("http://{metrics_address}/metrics")).await.unwrap();
    let elsewhere = reqwest::get(format!("http://{metrics_address}/healthz")).await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code(api).await, (404, "not_found".into()));
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("fieldsync_http_requests_total"));
    assert_eq!(elsewhere.status(), 404, "the metrics' address serves nothing else");
}

#[tokio::test]
async fn every_html_page_forbids_framing_scripts_and_referrers() {
    let server = TestServer::start().await;
    let page = server.client.get(server.url("/public/campaigns")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("script-src") && !policy.contains("unsafe"), "no script runs: {policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(
        headers["referrer-policy"], "same-origin",
        "a page's forms carry its Origin, and nothing goes elsewhere"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // JSON answers, errors included, are not sniffed either.
    let missing = server.client.get(server.url("/nothing-here")).send().await.unwrap();
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
    assert_eq!(missing.headers()["referrer-policy"], "no-referrer");
}
