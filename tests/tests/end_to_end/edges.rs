//! Values checked at the edge: each out-of-bounds value is refused with its own code and changes
//! nothing, and what the standards allow is accepted (a lower-case `bearer` scheme).

use fieldsync_tests::harness::TestServer;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// A refusal's status and code, and that it changed nothing.
async fn check(server: &TestServer, what: &str, response: reqwest::Response, status: u16, code: &str) {
    let before = server.snapshot();
    let got = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{what}: {body}");
    assert_eq!(content_type.as_deref(), Some("application/json"), "{what}: a JSON error body");
    assert_eq!(server.snapshot(), before, "{what}: nothing changed");
}

#[tokio::test]
async fn values_out_of_bounds_are_refused_with_their_code_and_change_nothing() {
    let server = TestServer::start().await;
    server.entities(3);
    server.account("ADM", PASSWORD, &["admin"]);
    server.account("O1", PASSWORD, &["officer"]);
    server.certificate("O1");
    let admin = server.token("ADM", PASSWORD).await;
    let before = server.snapshot();
    let certificate = |from: i64, until: i64| {
        json!({
            "number": "GX-EDGE", "officer_id": "O1", "issuing_authority": "广西壮族自治区人民政府",
            "valid_from_ms": from, "valid_until_ms": until, "status_history": [],
        })
    };
    let now = server::now_ms();
    let cases = [
        (
            "validity over all of i64",
            "/v1/admin/certificates",
            certificate(i64::MIN, i64::MAX),
            422,
            "invalid_certificate",
        ),
        (
            "validity to the end of i64",
            "/v1/admin/certificates",
            certificate(now, i64::MAX),
            422,
            "invalid_certificate",
        ),
        ("validity from before 1970", "/v1/admin/certificates", certificate(-1, now), 422, "invalid_certificate"),
        (
            "a renewal to the end of i64",
            "/v1/admin/certificates/GX-O1/renew",
            json!({ "valid_until_ms": i64::MAX }),
            422,
            "invalid_certificate",
        ),
        (
            "a recusal from an unknown entity",
            "/v1/admin/recusals",
            json!({ "officer_id": "O1", "entity_id": "E99999", "ground": "亲属" }),
            422,
            "unknown_entity",
        ),
        (
            "a recusal of an unknown officer",
            "/v1/admin/recusals",
            json!({ "officer_id": "NOBODY", "entity_id": "E00001", "ground": "亲属" }),
            422,
            "unknown_officer",
        ),
    ];
    for (what, path, body, status, code) in cases {
        let response = server.post(path, &admin, body).await;
        check(&server, what, response, status, code).await;
    }
    assert_eq!(server.snapshot(), before);
    // What is within bounds still goes through.
    let response = server
        .post("/v1/admin/recusals", &admin, json!({ "officer_id": "O1", "entity_id": "E00001", "ground": "亲属" }))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_a_non_utf8_path_answers_json() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = server
            .client
            .get(server.url("/v1/admin/officers"))
            .header("authorization", format!("{scheme} {admin}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    for header in [format!("Basic {admin}"), format!("Bearer{admin}"), admin.clone()] {
        let response =
            server.client.get(server.url("/v1/admin/officers")).header("authorization", header).send().await.unwrap();
        check(&server, "another scheme", response, 401, "missing_token").await;
    }
    for path in ["/v1/records/%FF%FE", "/v1/admin/certificates/%C3%28/renew", "/v1/blobs/%80/metadata", "/nowhere/%FF"]
    {
        let response = server.client.get(server.url(path)).bearer_auth(&admin).send().await.unwrap();
        check(&server, path, response, 400, "invalid_path").await;
    }
    // Percent-encoded UTF-8 is a path like any other.
    let response =
        server.client.get(server.url("/v1/records/%E8%AE%B0%E5%BD%95")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
