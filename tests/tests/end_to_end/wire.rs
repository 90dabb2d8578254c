//! What crosses the wire, smaller: compressed sync bodies both ways, refusals of codings the
//! server does not take or that do not decode, a body inflating past its limit, and task lists
//! and teams answered 304 when the device holds them already.

use sync_core::document::{Edit, RecordDocument, new_record_id};

use fieldsync_tests::harness::{Phone, TestServer, enroll, error_code};

use super::records::city;

const PASSWORD: &str = "correct horse battery";

/// A draft record on `phone` with a few edits, marked changed.
fn draft(phone: &mut Phone, n: u8) -> String {
    let id = new_record_id(server::now_ms() as u64, [n; 10]);
    let mut record = RecordDocument::create(&id, phone.actor.clone(), "T1", server::now_ms()).unwrap();
    record.apply(Edit::SetStartedAt(server::now_ms() - 60_000), server::now_ms()).unwrap();
    record
        .apply(
            Edit::AppendObservations("现场检查：废水排放口标识清楚，在线监测设备运行正常。".repeat(20)),
            server::now_ms(),
        )
        .unwrap();
    phone.records.insert(record);
    phone.session.record_changed(&id);
    id
}

/// `POST /v1/sync` of `body` with `Content-Encoding: coding`, asking for zstd answers when
/// `accept` names it.
async fn post_coded(server: &TestServer, token: &str, coding: &str, accept: &str, body: Vec<u8>) -> reqwest::Response {
    server
        .client
        .post(server.url("/v1/sync"))
        .bearer_auth(token)
        .header("content-type", "application/cbor")
        .header("content-encoding", coding)
        .header("accept-encoding", accept)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sync_sent_compressed_is_merged_and_answered_compressed() {
    let (server, _) = city().await;
    let mut phone = enroll(&server, "O1", PASSWORD).await;
    let id = draft(&mut phone, 1);
    phone.session.begin();
    let (mut plain_bytes, mut sent_bytes, mut last) = (0, 0, Vec::new());
    while let Some(request) = phone.session.poll(&mut phone.records) {
        let plain = schemas::wire::to_cbor(&request);
        let compressed = zstd::encode_all(&plain[..], 3).unwrap();
        (plain_bytes, sent_bytes) = (plain_bytes + plain.len(), sent_bytes + compressed.len());
        let response = post_coded(&server, &phone.token, "zstd", "zstd", compressed).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("content-encoding").map(|v| v.to_str().unwrap()), Some("zstd"));
        let answer = zstd::decode_all(&response.bytes().await.unwrap()[..]).unwrap();
        let answer: schemas::SyncResponse = schemas::wire::from_cbor(&answer).unwrap();
        assert!(answer.rejections.is_empty(), "{:?}", answer.rejections);
        phone.session.handle(answer, &mut phone.records).unwrap();
        last = plain;
    }
    assert!(sent_bytes < plain_bytes, "the record's changes compress: {sent_bytes} < {plain_bytes}");
    let stored = server.query(&format!("SELECT COUNT(*) FROM records WHERE record_id = '{id}'"));
    assert_eq!(stored, [["1"]], "the record sent compressed is stored");
    let plain = last;

    // gzip is taken as well; the record is already there, so nothing changes.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, &plain).unwrap();
    let response = post_coded(&server, &phone.token, "gzip", "identity", gzip.finish().unwrap()).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_coding_not_taken_or_not_decoding_or_inflating_too_far_is_refused_and_nothing_changes() {
    let (server, _) = city().await;
    let phone = enroll(&server, "O1", PASSWORD).await;
    let before = server.snapshot();

    let response = post_coded(&server, &phone.token, "br", "identity", vec![1, 2, 3]).await;
    let offered = response.headers().get("accept-encoding").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(error_code(response).await, (415, "unsupported_content_encoding".into()));
    assert_eq!(offered.as_deref(), Some("zstd, gzip"), "the codings the server takes (RFC 7694)");

    let response = post_coded(&server, &phone.token, "zstd", "identity", b"not zstd".to_vec()).await;
    assert_eq!(error_code(response).await, (400, "invalid_content_encoding".into()));
    let response = post_coded(&server, &phone.token, "gzip", "identity", b"not gzip".to_vec()).await;
    assert_eq!(error_code(response).await, (400, "invalid_content_encoding".into()));

    // A few kilobytes that inflate past the route's limit (a decompression bomb).
    let limit = server::Config::new(std::env::temp_dir()).max_body_bytes;
    let bomb = zstd::encode_all(&vec![0u8; limit + 1][..], 19).unwrap();
    assert!(bomb.len() < limit / 100, "{} bytes", bomb.len());
    let response = post_coded(&server, &phone.token, "zstd", "identity", bomb).await;
    assert_eq!(error_code(response).await, (413, "body_too_large".into()));
    assert_eq!(server.snapshot(), before, "nothing changed");
}

#[tokio::test]
async fn a_task_list_and_a_team_the_device_holds_come_back_304_until_they_change() {
    let (server, supervisor) = city().await;
    let token = server.token("O1", PASSWORD).await;
    let get = |path: &'static str, etag: Option<String>| {
        let mut request = server.client.get(server.url(path)).bearer_auth(&token);
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    for path in ["/v1/tasks", "/v1/tasks/T1/team"] {
        let first = get(path, None).await.unwrap();
        assert_eq!(first.status(), 200, "{path}");
        let etag = first.headers().get("etag").expect("an ETag").to_str().unwrap().to_string();
        let again = get(path, Some(etag.clone())).await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers().get("etag").unwrap().to_str().unwrap(), etag);
        assert!(again.bytes().await.unwrap().is_empty(), "no body");
        let other = get(path, Some("\"00\"".into())).await.unwrap();
        assert_eq!(other.status(), 200, "{path}: another validator gets the body");
    }
    // A new task changes the list: the held validator no longer matches.
    let held = get("/v1/tasks", None).await.unwrap().headers().get("etag").unwrap().to_str().unwrap().to_string();
    assert_eq!(server.task(&supervisor, "T2", &["O1", "O2"]).await.status(), 200);
    let changed = get("/v1/tasks", Some(held.clone())).await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers().get("etag").unwrap().to_str().unwrap(), held);
}

#[tokio::test]
async fn a_devices_sync_with_nothing_new_spends_no_bytes_on_tasks_and_its_records_travel_compressed() {
    let (server, supervisor) = city().await;
    let dir = tempfile::tempdir().unwrap();
    let mut device = field_client::remote::enroll(dir.path(), &server.url(""), "O1", PASSWORD).await.unwrap();
    let options = field_client::remote::SyncOptions::default();
    device.sync(&options, |_| {}).await.unwrap();
    let record_id = device.new_record("T1").unwrap();
    device.edit(&record_id, Edit::AppendObservations("现场检查：废水排放口标识清楚。".repeat(40))).unwrap();
    let first = device.sync(&options, |_| {}).await.unwrap();
    assert!(first.uploaded.contains(&record_id));
    let stored = server.query(&format!("SELECT length(document) FROM records WHERE record_id = '{record_id}'"));
    let document_bytes: usize = stored[0][0].parse().unwrap();
    assert!(
        first.bytes_up < document_bytes,
        "sent compressed: {} bytes for a {document_bytes}-byte record",
        first.bytes_up
    );

    // Nothing new: the task list and the team come back 304, only the sync exchange has a body.
    let quiet = device.sync(&options, |_| {}).await.unwrap();
    assert!(quiet.bytes_up + quiet.bytes_down <= 200, "a no-op of {} + {} bytes", quiet.bytes_up, quiet.bytes_down);
    assert_eq!(quiet.tasks, 1, "the held task list and team are used");
    // A new task for the officer is fetched again.
    assert_eq!(server.task(&supervisor, "T2", &["O1", "O2"]).await.status(), 200);
    let changed = device.sync(&options, |_| {}).await.unwrap();
    assert_eq!(changed.tasks, 2);
}
