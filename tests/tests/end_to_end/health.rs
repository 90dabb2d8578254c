//! The server starts on the embedded default, answers, and stops cleanly.

use fieldsync_tests::harness::TestServer;

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
