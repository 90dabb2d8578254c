//! A repeated sync request changes nothing, a cursor beyond the head lists everything again,
//! and many devices syncing at once keep every record.

use server::store::prelude::*;
use sync_core::document::{Edit, RecordDocument, new_record_id};

use fieldsync_tests::harness::{TestServer, enroll};

const PASSWORD: &str = "correct horse battery";

async fn city(officers: usize) -> TestServer {
    let server = TestServer::start().await;
    server.entities(3);
    server.account("SUP", PASSWORD, &["supervisor"]);
    for n in 0..officers {
        let id = format!("O{n}");
        server.account(&id, PASSWORD, &["officer"]);
        server.certificate(&id);
    }
    let supervisor = server.token("SUP", PASSWORD).await;
    for n in (0..officers).step_by(2) {
        let team = [format!("O{n}"), format!("O{}", n + 1)];
        let response = server.task(&supervisor, &format!("T{n}"), &[&team[0], &team[1]]).await;
        assert_eq!(response.status(), 200);
    }
    server
}

#[tokio::test]
async fn a_repeated_sync_request_changes_nothing() {
    let server = city(2).await;
    let mut phone = enroll(&server, "O0", PASSWORD).await;
    let id = new_record_id(server::now_ms() as u64, [1; 10]);
    let mut record = RecordDocument::create(&id, phone.actor.clone(), "T0", server::now_ms()).unwrap();
    record.apply(Edit::AppendObservations("现场".into()), server::now_ms()).unwrap();
    phone.records.insert(record);
    phone.session.record_changed(&id);
    phone.session.begin();
    let mut sent = Vec::new();
    while let Some(request) = phone.session.poll(&mut phone.records) {
        let body = schemas::wire::to_cbor(&request);
        sent.push(body.clone());
        let response = server.post_sync(&phone.token, "application/cbor", body).await;
        let response = schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap();
        phone.session.handle(response, &mut phone.records).unwrap();
    }
    let stored = server.store.record(&id).unwrap().expect("stored");
    let before = server.snapshot();
    for body in sent.iter().chain(sent.iter().rev()) {
        let response = server.post_sync(&phone.token, "application/cbor", body.clone()).await;
        assert_eq!(response.status(), 200);
    }
    let after = server.store.record(&id).unwrap().unwrap();
    assert_eq!((after.seq, &after.document), (stored.seq, &stored.document), "the record is untouched");
    let records_only = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter().filter(|r| r.starts_with("records:") || r.starts_with("counters:")).collect()
    };
    assert_eq!(records_only(server.snapshot()), records_only(before));
}

/// After the database is restored from a backup, a device's cursor is of another epoch (or
/// none the server made): the server lists everything again instead of nothing.
#[tokio::test]
async fn a_cursor_beyond_the_head_lists_every_record_again() {
    let server = city(2).await;
    let mut a = enroll(&server, "O0", PASSWORD).await;
    let id = new_record_id(server::now_ms() as u64, [3; 10]);
    a.records.insert(RecordDocument::create(&id, a.actor.clone(), "T0", server::now_ms()).unwrap());
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    let b = enroll(&server, "O1", PASSWORD).await;
    for since in [Some(0), Some(1_000_000)] {
        let request = schemas::SyncRequest { protocol: schemas::SYNC_PROTOCOL_VERSION, since, documents: vec![] };
        let response = server.post_sync(&b.token, "application/cbor", schemas::wire::to_cbor(&request)).await;
        let response: schemas::SyncResponse = schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(response.documents.len(), 1, "since {since:?}");
        assert_eq!(response.documents[0].record_id, id);
        let (epoch, position) = sync_core::session::decode_cursor(response.cursor);
        assert_eq!(epoch, server.store.sync_epoch(), "the cursor is the server's own");
        assert!(position <= 1_000, "the cursor is the server's own: {position}");
    }
}

#[tokio::test]
async fn many_devices_sync_at_once_and_every_record_is_kept() {
    let server = std::sync::Arc::new(city(16).await);
    let mut tasks = Vec::new();
    for n in 0..16u8 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let officer = format!("O{n}");
            let mut phone = enroll(&server, &officer, PASSWORD).await;
            let task = format!("T{}", n - n % 2);
            let mut ids = Vec::new();
            for r in 0..5u8 {
                let id = new_record_id(server::now_ms() as u64, [n, r, 0, 0, 0, 0, 0, 0, 0, 1]);
                let mut record = RecordDocument::create(&id, phone.actor.clone(), &task, server::now_ms()).unwrap();
                record.apply(Edit::AppendObservations(format!("{officer} 记录 {r}")), server::now_ms()).unwrap();
                phone.records.insert(record);
                phone.session.record_changed(&id);
                ids.push(id);
            }
            assert!(phone.sync(&server).await.is_empty());
            ids
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    // A backup taken while the server serves is a consistent database.
    let backup = server.dir.path().join("backup.sqlite3");
    server.store.backup(&backup).unwrap();
    let copy = server::store::sqlite::SqliteStore::open(&backup).unwrap();
    assert!(copy.integrity_check().unwrap().is_empty());
    for id in &all {
        let stored = server.store.record(id).unwrap().expect("every record is stored");
        let doc = automerge::Automerge::load(&stored.document).unwrap();
        assert!(sync_core::document::read_record(id, &doc).unwrap().observations.contains("记录"));
        assert!(copy.record(id).unwrap().is_some(), "and in the backup");
    }
    assert_eq!(all.len(), 80);
}
