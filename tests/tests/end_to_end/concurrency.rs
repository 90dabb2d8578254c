//! Two phones syncing one record at the same instant lose nothing.

use server::store::prelude::*;
use sync_core::document::{Edit, RecordDocument, new_record_id};

use fieldsync_tests::harness::{TestServer, enroll};

const PASSWORD: &str = "correct horse battery";

/// Two phones edit one record and sync at the same instant, again and again: whichever
/// commits second runs again inside the writer, and no edit is lost.
#[tokio::test]
async fn two_phones_syncing_one_record_at_once_lose_nothing() {
    let server = std::sync::Arc::new(TestServer::start().await);
    server.entities(2);
    server.account("SUP", PASSWORD, &["supervisor"]);
    for officer in ["O1", "O2"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    let supervisor = server.token("SUP", PASSWORD).await;
    assert_eq!(server.task(&supervisor, "T1", &["O1", "O2"]).await.status(), 200);
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let mut b = enroll(&server, "O2", PASSWORD).await;
    let id = new_record_id(server::now_ms() as u64, [5; 10]);
    a.records.insert(RecordDocument::create(&id, a.actor.clone(), "T1", server::now_ms()).unwrap());
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    assert!(b.sync(&server).await.is_empty());
    for round in 0..6 {
        for (phone, name) in [(&mut a, "甲"), (&mut b, "乙")] {
            let record = phone.records.get_mut(&id).unwrap();
            record.apply(Edit::AppendObservations(format!("{name}{round}。")), server::now_ms()).unwrap();
            phone.session.record_changed(&id);
        }
        let (server_a, server_b) = (server.clone(), server.clone());
        let (ra, rb) = tokio::join!(async { a.sync(&server_a).await }, async { b.sync(&server_b).await });
        assert!(ra.is_empty() && rb.is_empty(), "{ra:?} {rb:?}");
    }
    assert!(a.sync(&server).await.is_empty());
    assert!(b.sync(&server).await.is_empty());
    assert!(a.sync(&server).await.is_empty());
    let text = a.records.get(&id).unwrap().read().unwrap().observations;
    assert_eq!(text, b.records.get(&id).unwrap().read().unwrap().observations);
    let stored = server.store.record(&id).unwrap().unwrap();
    let stored = sync_core::document::read_record(&id, &automerge::Automerge::load(&stored.document).unwrap()).unwrap();
    assert_eq!(stored.observations, text);
    for round in 0..6 {
        assert!(text.contains(&format!("甲{round}。")) && text.contains(&format!("乙{round}。")), "{text}");
    }
}
