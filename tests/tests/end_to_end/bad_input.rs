//! Malformed bodies, wrong content types, oversized bodies: a precise error and no change.

use fieldsync_tests::harness::{TestServer, enroll, error_code as code};

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
    let wrong_protocol = schemas::wire::to_cbor(&schemas::SyncRequest { protocol: 99, since: None, documents: vec![] });
    assert_eq!(code(sync(wrong_protocol, "application/cbor").await).await, (422, "unsupported_protocol".into()));
    // Malformed Automerge bytes inside a good request: a rejection for that record, nothing stored.
    let record_id = sync_core::document::new_record_id(server::now_ms() as u64, [1; 10]);
    let request = schemas::SyncRequest {
        protocol: schemas::SYNC_PROTOCOL_VERSION,
        since: None,
        documents: vec![schemas::DocumentSyncMessage { record_id: record_id.clone(), message: vec![0x42, 9, 9, 9] }],
    };
    let response = sync(schemas::wire::to_cbor(&request), "application/cbor").await;
    assert_eq!(response.status(), 200);
    let response: schemas::SyncResponse = schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(response.rejections.len(), 1);
    assert_eq!(serde_json::to_value(&response.rejections[0].reason).unwrap()["code"], "malformed_message");
    assert_eq!(server.snapshot(), before, "nothing was stored by any of these");
}
