//! Photos as content-addressed blobs: uploaded in chunks by the device of an officer on the
//! record's team, resumed after a broken connection, verified by SHA-256, stored once, read back
//! byte for byte by whoever may read a record that references them. Every refusal answers its
//! code and changes nothing: no row, no file.

use fieldsync_tests::harness::{Phone, TestServer, enroll};
use serde_json::{Value, json};
use server::service::blobs::content_address;
use sync_core::document::{Edit, RecordDocument, new_record_id};
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "correct horse battery";

/// A city with a supervisor, a reviewer, four certified officers, task T1 for O1 and O2 and
/// task T2 for O3 and O4.
async fn city_with(configure: impl FnOnce(&mut server::Config)) -> TestServer {
    let server = TestServer::start_with(configure).await;
    server.entities(10);
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    for officer in ["O1", "O2", "O3", "O4"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    let supervisor = server.token("SUP", PASSWORD).await;
    for (task, team) in [("T1", ["O1", "O2"]), ("T2", ["O3", "O4"])] {
        let response = server.task(&supervisor, task, &team).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    server
}

async fn city() -> TestServer {
    city_with(|_| {}).await
}

/// A real PNG of noise (so that it does not compress away), different for each seed.
fn png(seed: u32) -> Vec<u8> {
    png_of(seed, 64, 64)
}

/// A real PNG of noise of this size.
fn png_of(seed: u32, width: u32, height: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9);
    let image = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

/// A record of `task` made on the phone with these photos, synced to the server.
async fn record_with_photos(server: &TestServer, phone: &mut Phone, task: &str, n: u8, photos: &[&[u8]]) -> String {
    let now = server::now_ms();
    let id = new_record_id(now as u64, [n; 10]);
    let mut record = RecordDocument::create(&id, phone.actor.clone(), task, now).unwrap();
    record.apply(Edit::SetStartedAt(now - 60_000), now).unwrap();
    for (index, photo) in photos.iter().enumerate() {
        let edit = Edit::AddPhoto { sha256: content_address(photo), caption: format!("现场照片{index}") };
        record.apply(edit, now).unwrap();
    }
    phone.records.insert(record);
    phone.session.record_changed(&id);
    assert!(phone.sync(server).await.is_empty(), "the record is accepted");
    id
}

/// Every row a request could change ([`TestServer::snapshot`]) and every file of the
/// uploads and blobs folders, with its size.
fn everything(server: &TestServer) -> Vec<String> {
    let mut rows = server.snapshot();
    rows.extend(files(server).into_iter().map(|(path, size)| format!("file {path}: {size}")));
    rows
}

/// The files under the uploads and blobs folders, with their sizes.
fn files(server: &TestServer) -> Vec<(String, u64)> {
    fn walk(root: &std::path::Path, folder: &std::path::Path, found: &mut Vec<(String, u64)>) {
        let Ok(entries) = std::fs::read_dir(folder) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                found.push((name, std::fs::metadata(&path).unwrap().len()));
            }
        }
    }
    let mut found = Vec::new();
    for folder in ["uploads", "blobs"] {
        walk(server.dir.path(), &server.dir.path().join(folder), &mut found);
    }
    found.sort();
    found
}

/// Waits until the server has examined a stored blob, which it does after answering the
/// finish, without being asked (at most 30 s, then the test fails).
async fn examined_by_itself(server: &TestServer, sha256: &str) {
    let sql = format!("SELECT 1 FROM blob_metadata WHERE sha256 = '{sha256}'");
    for _ in 0..3_000 {
        if !server.query(&sql).is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("blob {sha256} was never examined");
}

/// Checks a refusal's status and code, and that nothing changed since `before`.
async fn refused(
    server: &TestServer,
    before: &[String],
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!((got, body["code"].as_str().unwrap_or("")), (status, code), "{body}");
    assert_eq!(everything(server), before, "{code}: nothing changed");
    body
}

async fn begin(server: &TestServer, token: &str, photo: &[u8], record_id: &str) -> reqwest::Response {
    let body = json!({ "sha256": content_address(photo), "size": photo.len(), "record_id": record_id });
    server.post("/v1/uploads", token, body).await
}

/// Starts a new upload and returns its id.
async fn started(server: &TestServer, token: &str, photo: &[u8], record_id: &str) -> String {
    let response = begin(server, token, photo, record_id).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["offset"].as_u64(), body["complete"].as_bool()), (Some(0), Some(false)), "{body}");
    body["upload_id"].as_str().unwrap().to_string()
}

async fn append(server: &TestServer, token: &str, upload_id: &str, offset: usize, bytes: &[u8]) -> reqwest::Response {
    server
        .client
        .patch(server.url(&format!("/v1/uploads/{upload_id}")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .header("upload-offset", offset)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

/// Appends a chunk that must be accepted; returns the new offset.
async fn appended(server: &TestServer, token: &str, upload_id: &str, offset: usize, bytes: &[u8]) -> u64 {
    let response = append(server, token, upload_id, offset, bytes).await;
    assert_eq!(response.status(), 200);
    let header: u64 = response.headers()["upload-offset"].to_str().unwrap().parse().unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["offset"].as_u64(), Some(header));
    assert_eq!(header, (offset + bytes.len()) as u64);
    header
}

/// The offset `HEAD /v1/uploads/{upload_id}` reports.
async fn head_offset(server: &TestServer, token: &str, upload_id: &str) -> u64 {
    let response =
        server.client.head(server.url(&format!("/v1/uploads/{upload_id}"))).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["upload-offset"].to_str().unwrap().parse().unwrap()
}

async fn finish(server: &TestServer, token: &str, upload_id: &str) -> reqwest::Response {
    server.post(&format!("/v1/uploads/{upload_id}/finish"), token, json!({})).await
}

/// Uploads a whole photo in `chunks` chunks and finishes; returns the upload id and the
/// finish's answer.
async fn upload(server: &TestServer, token: &str, photo: &[u8], record_id: &str, chunks: usize) -> (String, Value) {
    let upload_id = started(server, token, photo, record_id).await;
    let mut offset = 0;
    for chunk in photo.chunks(photo.len().div_ceil(chunks)) {
        offset = appended(server, token, &upload_id, offset, chunk).await as usize;
    }
    let response = finish(server, token, &upload_id).await;
    assert_eq!(response.status(), 200);
    (upload_id, response.json().await.unwrap())
}

async fn get_blob(server: &TestServer, token: &str, sha256: &str) -> reqwest::Response {
    server.get(&format!("/v1/blobs/{sha256}"), token).await
}

async fn missing(server: &TestServer, token: &str, record_id: &str) -> Vec<String> {
    let response = server.get(&format!("/v1/records/{record_id}/missing-blobs"), token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["record_id"], record_id);
    serde_json::from_value(body["missing"].clone()).unwrap()
}

#[tokio::test]
async fn a_photo_uploaded_in_three_chunks_reads_back_byte_equal() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let photo = png(1);
    let sha256 = content_address(&photo);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    let (_, finished) = upload(&server, &a.token, &photo, &record_id, 3).await;
    assert_eq!(finished, json!({ "sha256": sha256, "size": photo.len(), "media_type": "image/png", "complete": true }));
    let response = get_blob(&server, &a.token, &sha256).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["etag"], format!("\"{sha256}\"").as_str());
    let bytes = response.bytes().await.unwrap();
    assert!(bytes == photo, "the original, unchanged");
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 64);
    // One file where content addressing puts it, the upload's file gone, one row.
    assert_eq!(files(&server), [(format!("blobs/{}/{sha256}", &sha256[..2]), photo.len() as u64)]);
    let rows = server.query("SELECT sha256, size, media_type, uploaded_by FROM blobs");
    assert_eq!(rows, [[sha256, photo.len().to_string(), "image/png".into(), a.device_id.clone()]]);
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_offset_the_server_reports() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let photo = png(2);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    let upload_id = started(&server, &a.token, &photo, &record_id).await;
    let third = photo.len() / 3;
    appended(&server, &a.token, &upload_id, 0, &photo[..third]).await;
    // The connection breaks halfway through the second chunk's body.
    let address = server.base.trim_start_matches("http://").to_string();
    let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "PATCH /v1/uploads/{upload_id} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
         content-type: application/octet-stream\r\nupload-offset: {third}\r\ncontent-length: {third}\r\n\r\n",
        a.token
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    connection.write_all(&photo[third..third + third / 2]).await.unwrap();
    connection.shutdown().await.unwrap();
    drop(connection);
    assert_eq!(head_offset(&server, &a.token, &upload_id).await, third as u64, "nothing of the broken chunk");
    let state: Value = server.get(&format!("/v1/uploads/{upload_id}"), &a.token).await.json().await.unwrap();
    assert_eq!(
        state,
        json!({
            "upload_id": upload_id, "sha256": content_address(&photo), "size": photo.len(),
            "offset": third, "complete": false,
        })
    );
    // The next chunk goes through, but its answer is lost: the offset says where to go on.
    let _lost = append(&server, &a.token, &upload_id, third, &photo[third..2 * third]).await;
    let offset = head_offset(&server, &a.token, &upload_id).await as usize;
    assert_eq!(offset, 2 * third);
    appended(&server, &a.token, &upload_id, offset, &photo[offset..]).await;
    assert_eq!(finish(&server, &a.token, &upload_id).await.status(), 200);
    let bytes = get_blob(&server, &a.token, &content_address(&photo)).await.bytes().await.unwrap();
    assert!(bytes == photo, "byte-equal after the resumption");
    let state: Value = server.get(&format!("/v1/uploads/{upload_id}"), &a.token).await.json().await.unwrap();
    assert_eq!((state["offset"].as_u64(), state["complete"].as_bool()), (Some(photo.len() as u64), Some(true)));
}

#[tokio::test]
async fn a_chunk_at_another_offset_is_refused_with_the_current_one() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let photo = png(3);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    let upload_id = started(&server, &a.token, &photo, &record_id).await;
    appended(&server, &a.token, &upload_id, 0, &photo[..100]).await;
    let before = everything(&server);
    for (what, offset) in [("a chunk sent again", 0), ("a gap", 150), ("past the end", photo.len())] {
        let response =
            append(&server, &a.token, &upload_id, offset, &photo[offset.min(100)..offset.min(100) + 10]).await;
        let body = refused(&server, &before, response, 409, "offset_mismatch").await;
        assert_eq!(body["details"]["offset"], 100, "{what}");
    }
    let response = append(&server, &a.token, &upload_id, 100, &vec![0; photo.len()]).await;
    let body = refused(&server, &before, response, 413, "past_declared_size").await;
    assert_eq!(body["details"], json!({ "size": photo.len(), "offset": 100 }));
    let response = finish(&server, &a.token, &upload_id).await;
    let body = refused(&server, &before, response, 409, "upload_incomplete").await;
    assert_eq!(body["details"], json!({ "offset": 100, "size": photo.len() }));
    // A header that is not a number, and a body that is not declared as bytes.
    let response = server
        .client
        .patch(server.url(&format!("/v1/uploads/{upload_id}")))
        .bearer_auth(&a.token)
        .header("content-type", "application/octet-stream")
        .header("upload-offset", "one hundred")
        .body(photo[100..110].to_vec())
        .send()
        .await
        .unwrap();
    refused(&server, &before, response, 400, "invalid_upload_offset").await;
    let response = server
        .client
        .patch(server.url(&format!("/v1/uploads/{upload_id}")))
        .bearer_auth(&a.token)
        .header("content-type", "image/png")
        .header("upload-offset", 100)
        .body(photo[100..110].to_vec())
        .send()
        .await
        .unwrap();
    refused(&server, &before, response, 415, "unsupported_content_type").await;
    assert_eq!(head_offset(&server, &a.token, &upload_id).await, 100);
}

#[tokio::test]
async fn bytes_that_do_not_hash_to_the_declared_sha256_are_discarded_and_nothing_stored() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let photo = png(4);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    let before = everything(&server);
    let upload_id = started(&server, &a.token, &photo, &record_id).await;
    let mut tampered = photo.clone();
    *tampered.last_mut().unwrap() ^= 1;
    appended(&server, &a.token, &upload_id, 0, &tampered).await;
    let response = finish(&server, &a.token, &upload_id).await;
    let body = refused(&server, &before, response, 422, "hash_mismatch").await;
    assert_eq!(body["details"], json!({ "expected": content_address(&photo), "actual": content_address(&tampered) }));
    assert!(files(&server).is_empty(), "no file left");
    let (status, code) = fieldsync_tests::harness::error_code(finish(&server, &a.token, &upload_id).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"), "the upload is gone");
    assert_eq!(get_blob(&server, &a.token, &content_address(&photo)).await.status(), 404);
    assert_eq!(missing(&server, &a.token, &record_id).await, [content_address(&photo)]);
    // The right bytes go in afterwards.
    upload(&server, &a.token, &photo, &record_id, 1).await;
    assert!(missing(&server, &a.token, &record_id).await.is_empty());
}

#[tokio::test]
async fn the_same_blob_uploaded_twice_is_stored_once() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut b = enroll(&server, "O2", PASSWORD).await;
    let (photo, shared) = (png(5), png(6));
    let sha256 = content_address(&photo);
    let first = record_with_photos(&server, &mut a, "T1", 1, &[&photo, &shared]).await;
    let second = record_with_photos(&server, &mut b, "T1", 2, &[&photo, &shared]).await;
    let (first_upload, finished) = upload(&server, &a.token, &photo, &first, 2).await;
    examined_by_itself(&server, &sha256).await;
    let stored = everything(&server);
    // Asked again, by the same device or another, for either record: nothing to send.
    for (token, record_id) in [(&a.token, &first), (&b.token, &first), (&b.token, &second)] {
        let response = begin(&server, token, &photo, record_id).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({ "sha256": sha256, "size": photo.len(), "offset": photo.len(), "complete": true }));
    }
    let rows = |server: &TestServer| everything(server).into_iter().filter(|r| !r.starts_with("blob_records: "));
    assert!(rows(&server).eq(stored.iter().filter(|r| !r.starts_with("blob_records: ")).cloned()), "stored once");
    let mut linked = vec![vec![first.clone()], vec![second.clone()]];
    linked.sort();
    let sql = format!("SELECT record_id FROM blob_records WHERE sha256 = '{sha256}' ORDER BY record_id");
    assert_eq!(server.query(&sql), linked, "each record that asked is linked to the blob");
    // Two devices upload the same photo at once: both finish, one row, one file.
    let (from_a, from_b) =
        (started(&server, &a.token, &shared, &first).await, started(&server, &b.token, &shared, &second).await);
    appended(&server, &a.token, &from_a, 0, &shared).await;
    appended(&server, &b.token, &from_b, 0, &shared).await;
    assert_eq!(finish(&server, &b.token, &from_b).await.status(), 200);
    let again: Value = finish(&server, &a.token, &from_a).await.json().await.unwrap();
    assert_eq!(again["sha256"], content_address(&shared));
    // Finishing again answers the same.
    let repeated: Value = finish(&server, &a.token, &first_upload).await.json().await.unwrap();
    assert_eq!(repeated, finished);
    let mut expected =
        [[content_address(&photo), a.device_id.clone()], [content_address(&shared), b.device_id.clone()]];
    expected.sort();
    assert_eq!(
        server.query("SELECT sha256, uploaded_by FROM blobs ORDER BY sha256"),
        expected,
        "once each, by the first to finish"
    );
    assert_eq!(files(&server).len(), 2, "one file per blob");
    let bytes = get_blob(&server, &b.token, &content_address(&shared)).await.bytes().await.unwrap();
    assert!(bytes == shared);
}

#[tokio::test]
async fn a_sha256_the_record_does_not_reference_is_refused() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let (photo, other) = (png(7), png(8));
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    let before = everything(&server);
    refused(&server, &before, begin(&server, &a.token, &other, &record_id).await, 422, "blob_not_referenced").await;
    for (what, body) in [
        (
            "upper-case hex",
            json!({ "sha256": content_address(&photo).to_uppercase(), "size": 1, "record_id": record_id }),
        ),
        ("a short hash", json!({ "sha256": "abc", "size": 1, "record_id": record_id })),
        ("no bytes", json!({ "sha256": content_address(&photo), "size": 0, "record_id": record_id })),
    ] {
        let body =
            refused(&server, &before, server.post("/v1/uploads", &a.token, body).await, 422, "invalid_upload").await;
        assert!(body["details"]["field"].is_string(), "{what}");
    }
}

#[tokio::test]
async fn only_the_device_of_an_officer_on_the_team_may_upload() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let outsider = enroll(&server, "O3", PASSWORD).await;
    let teammate = enroll(&server, "O2", PASSWORD).await;
    let photo = png(9);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    let (no_device, supervisor) = (server.token("O1", PASSWORD).await, server.token("SUP", PASSWORD).await);
    let before = everything(&server);
    let cases = [
        ("an officer not on the team", outsider.token.as_str(), record_id.as_str(), 403, "not_on_team"),
        ("no such record", a.token.as_str(), "R-nowhere", 404, "not_found"),
        ("a token without a device", no_device.as_str(), record_id.as_str(), 403, "device_required"),
        ("a supervisor", supervisor.as_str(), record_id.as_str(), 403, "role_required"),
    ];
    for (who, token, record, status, code) in cases {
        let body = refused(&server, &before, begin(&server, token, &photo, record).await, status, code).await;
        assert!(body["message"].is_string(), "{who}");
    }
    // An upload belongs to its device: another one neither sees nor writes it.
    let upload_id = started(&server, &a.token, &photo, &record_id).await;
    let before = everything(&server);
    let other = teammate.token.as_str();
    refused(&server, &before, append(&server, other, &upload_id, 0, &photo).await, 404, "not_found").await;
    refused(&server, &before, finish(&server, other, &upload_id).await, 404, "not_found").await;
    refused(&server, &before, server.get(&format!("/v1/uploads/{upload_id}"), other).await, 404, "not_found").await;
    let response = server.get(&format!("/v1/uploads/{upload_id}"), &no_device).await;
    refused(&server, &before, response, 403, "device_required").await;
    let response = server.get("/v1/uploads/..%2Ffieldsync.sqlite3", &a.token).await;
    refused(&server, &before, response, 404, "not_found").await;
}

#[tokio::test]
async fn a_blob_above_the_size_limit_is_refused() {
    let photo = png(10);
    let limit = photo.len() as u64 - 1;
    let server = city_with(|config| config.max_blob_bytes = limit).await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    let before = everything(&server);
    let body =
        refused(&server, &before, begin(&server, &a.token, &photo, &record_id).await, 413, "blob_too_large").await;
    assert_eq!(body["details"]["limit"], limit);
    assert_eq!(server::Config::new("data".into()).max_blob_bytes, 64 << 20, "64 MiB by default");
}

#[tokio::test]
async fn a_device_holds_at_most_four_unfinished_uploads() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let b = enroll(&server, "O2", PASSWORD).await;
    let photos: Vec<Vec<u8>> = (20..25).map(png).collect();
    let references: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &references).await;
    let mut upload_ids = Vec::new();
    for photo in &photos[..4] {
        upload_ids.push(started(&server, &a.token, photo, &record_id).await);
    }
    let before = everything(&server);
    let body =
        refused(&server, &before, begin(&server, &a.token, &photos[4], &record_id).await, 429, "too_many_uploads")
            .await;
    assert_eq!(body["details"]["limit"], 4);
    // Asking again for an upload it holds goes on with it, and counts nothing more.
    let again = begin(&server, &a.token, &photos[0], &record_id).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!((again["upload_id"].as_str(), again["offset"].as_u64()), (Some(upload_ids[0].as_str()), Some(0)));
    assert_eq!(everything(&server), before);
    // Another device is not held by this one's uploads; a finished upload frees a slot.
    started(&server, &b.token, &photos[4], &record_id).await;
    appended(&server, &a.token, &upload_ids[0], 0, &photos[0]).await;
    assert_eq!(finish(&server, &a.token, &upload_ids[0]).await.status(), 200);
    started(&server, &a.token, &photos[4], &record_id).await;
}

/// An upload abandoned for longer than the expiry gives its place back when its device next
/// starts one: its row and partial file go, and the device would start that blob again.
#[tokio::test]
async fn an_abandoned_upload_expires_and_frees_its_place() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let photos: Vec<Vec<u8>> = (30..35).map(png).collect();
    let references: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &references).await;
    let mut upload_ids = Vec::new();
    for photo in &photos[..4] {
        upload_ids.push(started(&server, &a.token, photo, &record_id).await);
    }
    appended(&server, &a.token, &upload_ids[0], 0, &photos[0][..100]).await;
    let partial = server.dir.path().join("uploads").join(&upload_ids[0]);
    assert!(partial.exists());
    let before = everything(&server);
    refused(&server, &before, begin(&server, &a.token, &photos[4], &record_id).await, 429, "too_many_uploads").await;
    // Upload 0 untouched for four days (the expiry is three), the others recent.
    let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
    let sql = "UPDATE uploads SET updated_at_ms = updated_at_ms - 4 * 86400000 WHERE upload_id = ?1";
    conn.execute(sql, [&upload_ids[0]]).unwrap();
    drop(conn);
    started(&server, &a.token, &photos[4], &record_id).await;
    assert!(!partial.exists(), "the partial file is removed");
    let sql = format!("SELECT COUNT(*) FROM uploads WHERE upload_id = '{}'", upload_ids[0]);
    assert_eq!(server.query(&sql), [["0".to_string()]]);
    assert_eq!(append(&server, &a.token, &upload_ids[0], 100, &photos[0][100..200]).await.status(), 404);
    // The device starts that photo again from zero once it has a place.
    appended(&server, &a.token, &upload_ids[1], 0, &photos[1]).await;
    assert_eq!(finish(&server, &a.token, &upload_ids[1]).await.status(), 200);
    let again = begin(&server, &a.token, &photos[0], &record_id).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap()["offset"], 0);
}

#[tokio::test]
async fn a_reviewer_may_read_a_blob_and_an_unrelated_officer_may_not() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let photo = png(30);
    let sha256 = content_address(&photo);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    upload(&server, &a.token, &photo, &record_id, 1).await;
    let mut tokens = std::collections::HashMap::new();
    for who in ["SUP", "REV", "O2", "O3"] {
        tokens.insert(who, server.token(who, PASSWORD).await);
    }
    let before = everything(&server);
    let cases = [
        ("the uploading device", a.token.as_str(), sha256.clone(), 200, ""),
        ("a team member", tokens["O2"].as_str(), sha256.clone(), 200, ""),
        ("a reviewer", tokens["REV"].as_str(), sha256.clone(), 200, ""),
        ("a supervisor", tokens["SUP"].as_str(), sha256.clone(), 200, ""),
        ("an officer on another task", tokens["O3"].as_str(), sha256.clone(), 404, "not_found"),
        ("a blob nobody uploaded", tokens["REV"].as_str(), content_address(b"nothing"), 404, "not_found"),
        ("not a SHA-256", tokens["REV"].as_str(), "..".to_string(), 404, "not_found"),
    ];
    for (who, token, blob, status, code) in cases {
        let response = get_blob(&server, token, &blob).await;
        if status == 200 {
            assert_eq!(response.status(), 200, "{who}");
            assert!(response.bytes().await.unwrap() == photo, "{who}");
        } else {
            refused(&server, &before, response, status, code).await;
        }
    }
    // The same photo in a record of O3's own task: now O3 may read it, and O4 with them.
    let mut outsider = enroll(&server, "O3", PASSWORD).await;
    record_with_photos(&server, &mut outsider, "T2", 2, &[&photo]).await;
    assert_eq!(get_blob(&server, &tokens["O3"], &sha256).await.status(), 200);
    let o4 = server.token("O4", PASSWORD).await;
    assert!(get_blob(&server, &o4, &sha256).await.bytes().await.unwrap() == photo);
}

#[tokio::test]
async fn missing_blobs_lists_the_photos_the_server_lacks_until_they_are_uploaded() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let (first, second) = (png(40), png(41));
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&first, &second]).await;
    let mut both = vec![content_address(&first), content_address(&second)];
    both.sort();
    assert_eq!(missing(&server, &a.token, &record_id).await, both);
    let reviewer = server.token("REV", PASSWORD).await;
    assert_eq!(missing(&server, &reviewer, &record_id).await, both, "a reviewer sees it too");
    upload(&server, &a.token, &first, &record_id, 2).await;
    assert_eq!(missing(&server, &a.token, &record_id).await, [content_address(&second)]);
    upload(&server, &a.token, &second, &record_id, 2).await;
    assert!(missing(&server, &a.token, &record_id).await.is_empty());
    let outsider = server.token("O3", PASSWORD).await;
    let before = everything(&server);
    let response = server.get(&format!("/v1/records/{record_id}/missing-blobs"), &outsider).await;
    refused(&server, &before, response, 404, "not_found").await;
    let response = server.get("/v1/records/R-nowhere/missing-blobs", &reviewer).await;
    refused(&server, &before, response, 404, "not_found").await;
}

async fn metadata(server: &TestServer, token: &str, sha256: &str) -> reqwest::Response {
    server.get(&format!("/v1/blobs/{sha256}/metadata"), token).await
}

async fn thumbnail(server: &TestServer, token: &str, sha256: &str) -> reqwest::Response {
    server.get(&format!("/v1/blobs/{sha256}/thumbnail"), token).await
}

/// The metadata answer without the time of the examination, which it must have.
async fn metadata_of(server: &TestServer, token: &str, sha256: &str) -> Value {
    let response = metadata(server, token, sha256).await;
    assert_eq!(response.status(), 200);
    let mut body: Value = response.json().await.unwrap();
    let examined_at = body.as_object_mut().unwrap().remove("examined_at_ms").unwrap();
    assert!(examined_at.as_i64().is_some_and(|ms| ms > 0), "{examined_at}");
    body
}

#[tokio::test]
async fn a_stored_photo_has_a_thumbnail_and_metadata_for_those_who_may_read_it() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let photo = png_of(60, 640, 400);
    let sha256 = content_address(&photo);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&photo]).await;
    upload(&server, &a.token, &photo, &record_id, 2).await;
    // Examined after the upload finished, not only when first asked.
    examined_by_itself(&server, &sha256).await;
    let sql = "SELECT sha256, thumbnail IS NOT NULL, error_code IS NULL FROM blob_metadata";
    assert_eq!(server.query(sql), [[sha256.clone(), "1".into(), "1".into()]]);
    let expected = json!({
        "sha256": sha256, "size": photo.len(), "media_type": "image/png",
        "claimed": {
            "taken_at": null, "offset": null, "latitude": null, "longitude": null,
            "make": null, "model": null, "exif_error": null,
        },
        "width": 640, "height": 400, "thumbnail": true, "error": null,
    });
    let reviewer = server.token("REV", PASSWORD).await;
    let teammate = server.token("O2", PASSWORD).await;
    for (who, token) in [("the uploading device", &a.token), ("a team member", &teammate), ("a reviewer", &reviewer)] {
        assert_eq!(metadata_of(&server, token, &sha256).await, expected, "{who}");
        let response = thumbnail(&server, token, &sha256).await;
        assert_eq!(response.status(), 200, "{who}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let jpeg = response.bytes().await.unwrap();
        let small = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((small.width(), small.height()), (320, 200), "{who}: fits in 320 x 320, same shape");
    }
    // An officer on another task learns nothing, not even that the blob exists.
    let outsider = server.token("O3", PASSWORD).await;
    let before = everything(&server);
    refused(&server, &before, metadata(&server, &outsider, &sha256).await, 404, "not_found").await;
    refused(&server, &before, thumbnail(&server, &outsider, &sha256).await, 404, "not_found").await;
    let nobody = content_address(b"nothing");
    refused(&server, &before, metadata(&server, &reviewer, &nobody).await, 404, "not_found").await;
    refused(&server, &before, thumbnail(&server, &reviewer, "..").await, 404, "not_found").await;
    // A blob stored before the server examined blobs is examined when first asked.
    let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
    conn.execute("DELETE FROM blob_metadata WHERE sha256 = ?1", [&sha256]).unwrap();
    drop(conn);
    assert_eq!(metadata_of(&server, &reviewer, &sha256).await, expected, "examined again");
    assert_eq!(server.query("SELECT COUNT(*) FROM blob_metadata"), [["1"]]);
}

/// A one-bit grey PNG of `side` x `side` black pixels: a few tens of kilobytes that a decoder
/// would expand to a byte a pixel.
fn one_bit_png(side: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; side.div_ceil(8) as usize];
    for _ in 0..side {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
    writer.finish().unwrap();
    bytes
}

#[tokio::test]
async fn a_small_photo_of_too_many_pixels_is_stored_without_being_decoded() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    // 16 000 x 16 000 one-bit pixels: about 31 KB sent, 244 MiB if decoded.
    let bomb = one_bit_png(16_000);
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    let sha256 = content_address(&bomb);
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&bomb]).await;
    let (_, finished) = upload(&server, &a.token, &bomb, &record_id, 1).await;
    assert_eq!(finished["complete"], true, "stored all the same");
    examined_by_itself(&server, &sha256).await;
    let body = metadata_of(&server, &a.token, &sha256).await;
    assert_eq!((body["width"].as_u64(), body["height"].as_u64()), (Some(16_000), Some(16_000)), "{body}");
    assert_eq!((body["thumbnail"].as_bool(), body["error"]["code"].as_str()), (Some(false), Some("image_too_large")));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("megapixels"), "refused by its pixel count, from its header: {message}");
    let (status, code) = fieldsync_tests::harness::error_code(thumbnail(&server, &a.token, &sha256).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"), "no thumbnail");
}

#[tokio::test]
async fn a_photo_that_does_not_decode_is_stored_with_the_reason_it_has_no_thumbnail() {
    let server = city().await;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let whole = png_of(61, 200, 100);
    let (cut, not_an_image) = (whole[..whole.len() / 2].to_vec(), b"a voice memo, not a photo".to_vec());
    let record_id = record_with_photos(&server, &mut a, "T1", 1, &[&cut, &not_an_image]).await;
    for (bytes, media_type, code) in
        [(&cut, "image/png", "corrupt_image"), (&not_an_image, "application/octet-stream", "unsupported_image")]
    {
        let sha256 = content_address(bytes);
        let (_, finished) = upload(&server, &a.token, bytes, &record_id, 1).await;
        assert_eq!(finished["complete"], true, "{code}: stored all the same");
        let body = metadata_of(&server, &a.token, &sha256).await;
        assert_eq!((body["media_type"].as_str(), body["thumbnail"].as_bool()), (Some(media_type), Some(false)));
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        let (status, error) = fieldsync_tests::harness::error_code(thumbnail(&server, &a.token, &sha256).await).await;
        assert_eq!((status, error.as_str()), (404, "not_found"), "{code}: no thumbnail");
        assert!(get_blob(&server, &a.token, &sha256).await.bytes().await.unwrap() == *bytes, "{code}");
    }
    assert!(missing(&server, &a.token, &record_id).await.is_empty());
}
