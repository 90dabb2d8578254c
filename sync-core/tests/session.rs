//! The batched sync session between phones and the server, in process, with real validation.

mod common;

use std::collections::BTreeMap;

use automerge::sync::{Message, MessageVersion, SyncDoc};
use common::sim::{Phone, Server};
use common::*;
use schemas::wire::{from_cbor, to_cbor};
use schemas::{DocumentSyncMessage, RejectionReason, SYNC_PROTOCOL_VERSION, SyncRequest};
use sync_core::document::{Edit, read_record};
use sync_core::session::{ChangedRecords, DeviceSession, ServerSession, SessionConfig, SessionError};

struct World {
    server: Server,
    a: Phone,
    b: Phone,
}

/// Two phones of a team, and the server that knows both.
fn world(config: SessionConfig) -> World {
    let officers = valid_officers();
    let (da, db) = (device(1, &officers[0]), device(2, &officers[1]));
    let team = [&officers[0], &officers[1]];
    let contexts = BTreeMap::from([
        (da.id.clone(), context(&da, &[&da, &db], &team)),
        (db.id.clone(), context(&db, &[&da, &db], &team)),
    ]);
    World { server: Server::new(contexts), a: Phone::new(da, config), b: Phone::new(db, config) }
}

/// Creates `count` records on a phone with a realistic first edit each.
fn create_records(phone: &mut Phone, first: u8, count: u8) -> Vec<String> {
    (first..first + count)
        .map(|n| {
            let mut record = new_record(n, &phone.device);
            record.apply(Edit::SetStartedAt(T0), T0).unwrap();
            record.apply(Edit::AppendObservations(format!("记录{n}：现场检查。")), T0 + 1000).unwrap();
            let id = record.record_id().to_string();
            phone.records.insert(record);
            phone.session.record_changed(&id);
            id
        })
        .collect()
}

fn heads_of(phone: &Phone, record_id: &str) -> Vec<automerge::ChangeHash> {
    phone.records.get(record_id).unwrap().automerge().get_heads()
}

#[test]
fn records_made_offline_reach_the_server_and_the_other_phone() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 5);
    let stats = w.a.sync(&mut w.server, 20);
    assert!(stats.rejections.is_empty(), "{:?}", stats.rejections);
    for id in &ids {
        assert_eq!(w.server.docs[id].get_heads(), heads_of(&w.a, id));
    }
    w.b.sync(&mut w.server, 20);
    for id in &ids {
        assert_eq!(heads_of(&w.b, id), heads_of(&w.a, id));
        let record = w.b.records.get(id).unwrap().read().unwrap();
        assert!(record.observations.ends_with("现场检查。"));
    }
}

#[test]
fn a_no_op_sync_is_one_small_request_and_answer_whatever_the_number_of_records() {
    let mut sizes = Vec::new();
    for count in [5u8, 120] {
        let mut w = world(SessionConfig::default());
        create_records(&mut w.a, 1, count);
        w.a.sync(&mut w.server, 50);
        let noop = w.a.sync(&mut w.server, 50);
        assert_eq!(noop.requests, 1);
        assert_eq!(noop.documents_up + noop.documents_down, 0);
        sizes.push(noop.bytes_up + noop.bytes_down);
    }
    // Only the cursor grows, by the width of a CBOR integer.
    assert!(sizes[1] <= sizes[0] + 8, "a no-op sync does not grow with the number of records: {sizes:?}");
    assert!(sizes[1] < 100, "{sizes:?} bytes");
}

#[test]
fn concurrent_edits_through_the_server_converge_with_the_conflict_reported() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 1);
    let id = &ids[0];
    w.a.sync(&mut w.server, 20);
    w.b.sync(&mut w.server, 20);
    let rec_a = w.a.records.get_mut(id).unwrap();
    rec_a.apply(Edit::SetConclusion("合格".into()), T0 + 2000).unwrap();
    rec_a.apply(Edit::AppendObservations("甲补充。".into()), T0 + 2000).unwrap();
    let rec_b = w.b.records.get_mut(id).unwrap();
    rec_b.apply(Edit::SetConclusion("不合格".into()), T0 + 2000).unwrap();
    rec_b.apply(Edit::AppendObservations("乙补充。".into()), T0 + 2000).unwrap();
    w.a.session.record_changed(id);
    w.b.session.record_changed(id);
    w.a.sync(&mut w.server, 20);
    w.b.sync(&mut w.server, 20);
    w.a.sync(&mut w.server, 20);
    let on_a = w.a.records.get(id).unwrap().read().unwrap();
    let on_b = w.b.records.get(id).unwrap().read().unwrap();
    let on_server = read_record(id, &w.server.docs[id]).unwrap();
    assert_eq!(on_a, on_b);
    assert_eq!(on_a, on_server);
    assert!(on_a.observations.contains("甲补充。") && on_a.observations.contains("乙补充。"));
    assert_eq!(on_a.conflicts.len(), 1);
    assert_eq!(on_a.conflicts[0].field, "header/conclusion");
}

#[test]
fn a_refused_change_ends_the_exchange_is_reported_and_never_reaches_the_record() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 2);
    w.a.sync(&mut w.server, 20);
    let stored = w.server.docs[&ids[0]].get_heads();
    // A change stamped a day ahead of the server's clock, then an edit that builds on it, and
    // an edit of another record that does not.
    let record = w.a.records.get_mut(&ids[0]).unwrap();
    record.apply(Edit::SetConclusion("x".into()), T0 + 3 * DAY).unwrap();
    record.apply(Edit::AppendObservations("y".into()), T0 + 2000).unwrap();
    w.a.records.get_mut(&ids[1]).unwrap().apply(Edit::AppendObservations("z".into()), T0 + 2000).unwrap();
    w.a.session.record_changed(&ids[0]);
    w.a.session.record_changed(&ids[1]);
    let stats = w.a.sync(&mut w.server, 20);
    let codes: Vec<_> =
        stats.rejections.iter().map(|r| serde_json::to_value(&r.reason).unwrap()["code"].clone()).collect();
    assert_eq!(codes, ["timestamp_in_future", "depends_on_refused_change"]);
    assert_eq!(w.server.docs[&ids[0]].get_heads(), stored, "nothing of the refused changes is stored");
    assert_eq!(w.server.docs[&ids[1]].get_heads(), heads_of(&w.a, &ids[1]), "the other record went in");
    // The next sync, after a server restart, ends too.
    w.server.restart();
    w.a.sync(&mut w.server, 20);
    assert_eq!(w.server.docs[&ids[0]].get_heads(), stored);
}

#[test]
fn a_backlog_is_split_into_bounded_requests() {
    let config = SessionConfig { max_documents_per_request: 8, max_request_bytes: 1 << 20 };
    let mut w = world(config);
    let ids = create_records(&mut w.a, 1, 50);
    w.server.changed_limit = 7;
    let up = w.a.sync(&mut w.server, 100);
    assert!(up.requests >= 50 / 8, "{up:?}");
    let down = w.b.sync(&mut w.server, 100);
    assert!(down.requests > 50 / 7, "the server's answers are split too: {down:?}");
    for id in &ids {
        assert_eq!(heads_of(&w.b, id), heads_of(&w.a, id));
    }
}

#[test]
fn a_request_bounded_by_bytes_carries_fewer_records() {
    let config = SessionConfig { max_documents_per_request: 512, max_request_bytes: 1 };
    let mut w = world(config);
    create_records(&mut w.a, 1, 3);
    w.a.session.begin();
    let request = w.a.session.poll(&mut w.a.records).unwrap();
    assert_eq!(request.documents.len(), 1, "a request stops adding records once it reaches its byte bound");
}

#[test]
fn redelivered_and_reordered_requests_change_nothing() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 3);
    w.a.session.begin();
    let mut sent = Vec::new();
    while let Some(request) = w.a.session.poll(&mut w.a.records) {
        let bytes = to_cbor(&request);
        sent.push(bytes.clone());
        let response = w.server.exchange(&w.a.device.id, &bytes);
        w.a.session.handle(schemas::wire::from_cbor(&response).unwrap(), &mut w.a.records).unwrap();
    }
    let snapshot: Vec<_> = ids.iter().map(|id| w.server.docs[id].save()).collect();
    let feed_head = w.server.feed.head();
    for bytes in sent.iter().rev().chain(sent.iter()) {
        w.server.exchange(&w.a.device.id, bytes);
    }
    let after: Vec<_> = ids.iter().map(|id| w.server.docs[id].save()).collect();
    assert_eq!(snapshot, after, "stored documents are byte-identical after redelivery");
    assert_eq!(w.server.feed.head(), feed_head, "nothing counted as a change");
    // A response delivered twice is refused by the phone, which is left as it was.
    let response = w.server.exchange(&w.a.device.id, &sent[0]);
    let response: schemas::SyncResponse = schemas::wire::from_cbor(&response).unwrap();
    assert_eq!(w.a.session.handle(response, &mut w.a.records), Err(SessionError::NoRequestInFlight));
    w.a.sync(&mut w.server, 20);
    for id in &ids {
        assert_eq!(w.server.docs[id].get_heads(), heads_of(&w.a, id));
    }
}

#[test]
fn an_interrupted_sync_resumes_from_persisted_state_without_resending_what_the_server_has() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 20);
    // Sync until the server has every change, then lose the answer.
    w.a.session.begin();
    loop {
        let request = w.a.session.poll(&mut w.a.records).unwrap();
        let response = w.server.exchange(&w.a.device.id, &to_cbor(&request));
        if ids.iter().all(|id| w.server.docs.get(id).is_some_and(|d| d.get_heads() == heads_of(&w.a, id))) {
            break; // this answer is lost
        }
        w.a.session.handle(schemas::wire::from_cbor(&response).unwrap(), &mut w.a.records).unwrap();
    }
    // The phone restarts from what it persisted.
    let persisted: Vec<(String, Vec<u8>)> =
        ids.iter().filter_map(|id| w.a.session.encoded_state(id).map(|s| (id.clone(), s))).collect();
    let pending: Vec<String> = w.a.session.pending().iter().cloned().collect();
    w.a.session.abandon();
    w.a.session = DeviceSession::restore(SessionConfig::default(), w.a.session.cursor(), pending, persisted).unwrap();
    w.server.restart();
    let resumed = w.a.sync(&mut w.server, 20);
    let total_change_bytes: usize = ids.iter().map(|id| w.a.records.get(id).unwrap().save().len()).sum();
    assert!(
        resumed.bytes_up < total_change_bytes / 2,
        "the resumed sync sent {} bytes; the records hold {total_change_bytes}",
        resumed.bytes_up
    );
    for id in &ids {
        assert_eq!(w.server.docs[id].get_heads(), heads_of(&w.a, id));
    }
}

#[test]
fn malformed_messages_are_refused_one_by_one_and_the_rest_is_applied() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 1);
    w.a.session.begin();
    let mut request = w.a.session.poll(&mut w.a.records).unwrap();
    let good = request.documents[0].clone();
    request.documents = vec![
        DocumentSyncMessage { record_id: record_id(50), message: vec![0x42, 0xff, 0xff] },
        DocumentSyncMessage { record_id: "../../etc/passwd".into(), message: good.message.clone() },
        DocumentSyncMessage { record_id: good.record_id.to_uppercase(), message: good.message.clone() },
        DocumentSyncMessage { record_id: record_id(51), message: vec![] },
        good.clone(),
        // The same record again in the same request.
        good,
    ];
    let response: schemas::SyncResponse =
        schemas::wire::from_cbor(&w.server.exchange(&w.a.device.id, &to_cbor(&request))).unwrap();
    let malformed: Vec<&str> = response
        .rejections
        .iter()
        .filter(|r| matches!(r.reason, RejectionReason::MalformedMessage { .. }))
        .map(|r| r.record_id.as_str())
        .collect();
    assert_eq!(malformed.len(), 5, "{:?}", response.rejections);
    assert!(malformed.contains(&ids[0].as_str()), "the second message of a record is refused");
    assert!(response.documents.iter().any(|d| d.record_id == ids[0]), "the good record is answered");
    assert!(!w.server.docs.contains_key("../../etc/passwd"));
    let mut session = ServerSession::new();
    let wrong_version = SyncRequest { protocol: SYNC_PROTOCOL_VERSION + 1, since: None, documents: vec![] };
    let mut docs = BTreeMap::new();
    let refused =
        session.handle(&wrong_version, &mut docs, &mut sync_core::session::AcceptAll, |_| ChangedRecords::default());
    assert_eq!(refused.err(), Some(SessionError::UnsupportedProtocol { found: 2, expected: 1 }));
}

/// A message carrying a whole document chunk (the newer format) is validated change by change too.
#[test]
fn a_document_chunk_message_is_validated_like_single_changes() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 1);
    let id = &ids[0];
    w.a.records.get_mut(id).unwrap().apply(Edit::SetConclusion("x".into()), T0 + 3 * DAY).unwrap();
    let doc = w.a.records.get(id).unwrap().automerge().clone();
    let mut state = automerge::sync::State::new();
    let mut message = doc.generate_sync_message(&mut state).unwrap();
    message.version = MessageVersion::V2;
    message.changes = doc.save().into();
    message.heads = doc.get_heads();
    let request = SyncRequest {
        protocol: SYNC_PROTOCOL_VERSION,
        since: None,
        documents: vec![DocumentSyncMessage { record_id: id.clone(), message: message.encode() }],
    };
    let bytes = to_cbor(&request);
    assert!(Message::decode(&request.documents[0].message).is_ok());
    let response: schemas::SyncResponse = schemas::wire::from_cbor(&w.server.exchange(&w.a.device.id, &bytes)).unwrap();
    assert_eq!(response.rejections.len(), 1, "{:?}", response.rejections);
    assert!(matches!(response.rejections[0].reason, RejectionReason::TimestampInFuture { .. }));
    let stored = read_record(id, &w.server.docs[id]).unwrap();
    assert_eq!(stored.header.conclusion, None, "the refused change is not in the document");
    assert!(stored.observations.contains("现场检查"), "the accepted changes are");
}

/// The server never merges a refused change; a device that kept it would never converge again,
/// and each later edit would build on it and be refused too. Dropping the refused changes and
/// forgetting the record's sync state brings device and server back to the same heads.
#[test]
fn a_device_that_drops_its_refused_changes_converges_with_the_server_again() {
    let mut w = world(SessionConfig::default());
    let ids = create_records(&mut w.a, 1, 1);
    let id = &ids[0];
    w.a.sync(&mut w.server, 20);
    // A change stamped a day ahead of the server's clock, and an edit that builds on it.
    let record = w.a.records.get_mut(id).unwrap();
    record.apply(Edit::SetConclusion("x".into()), T0 + 3 * DAY).unwrap();
    record.apply(Edit::AppendObservations("y".into()), T0 + 2000).unwrap();
    w.a.session.record_changed(id);
    let stats = w.a.sync(&mut w.server, 20);
    let refused: Vec<automerge::ChangeHash> = stats.rejections.iter().map(|r| r.change_hash.parse().unwrap()).collect();
    assert_eq!(refused.len(), 2, "{:?}", stats.rejections);
    assert_ne!(heads_of(&w.a, id), w.server.docs[id].get_heads());

    // The first refused change is enough: what builds on it goes too.
    let dropped = w.a.records.get_mut(id).unwrap().drop_changes(&refused[..1]).unwrap();
    assert_eq!(dropped.iter().map(|c| c.hash()).collect::<Vec<_>>(), refused);
    w.a.session.forget_record_state(id);
    assert!(w.a.session.pending().contains(id));
    let stats = w.a.sync(&mut w.server, 20);
    assert!(stats.rejections.is_empty(), "{:?}", stats.rejections);
    assert_eq!(heads_of(&w.a, id), w.server.docs[id].get_heads());

    // The device's next edit, as the same actor, is accepted and converges.
    w.a.records.get_mut(id).unwrap().apply(Edit::SetConclusion("合格".into()), T0 + 4000).unwrap();
    w.a.session.record_changed(id);
    let stats = w.a.sync(&mut w.server, 20);
    assert!(stats.rejections.is_empty(), "{:?}", stats.rejections);
    assert_eq!(heads_of(&w.a, id), w.server.docs[id].get_heads());
    let on_server = read_record(id, &w.server.docs[id]).unwrap();
    assert_eq!(on_server, w.a.records.get(id).unwrap().read().unwrap());
    assert_eq!(on_server.header.conclusion.as_deref(), Some("合格"));
    assert!(!on_server.observations.ends_with('y'));
}

/// Two phones of a team and a server that keeps records saved, as the real one does.
fn saved_world() -> World {
    let mut w = world(SessionConfig::default());
    w.server.keeps_saved_documents = true;
    w
}

/// Runs `phone`'s session until it is quiet, from wherever it is.
fn finish_sync(phone: &mut Phone, server: &mut Server) {
    for _ in 0..20 {
        let Some(request) = phone.session.poll(&mut phone.records) else { return };
        let response = server.exchange(&phone.device.id, &to_cbor(&request));
        let report = phone.session.handle(from_cbor(&response).unwrap(), &mut phone.records).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    panic!("the sync did not end");
}

#[test]
fn a_record_new_to_a_phone_arrives_whole_in_one_answer_and_its_acknowledgement_loads_nothing() {
    let mut w = saved_world();
    let ids = create_records(&mut w.a, 1, 5);
    w.a.sync(&mut w.server, 20);
    let loads = w.server.loads;
    let stats = w.b.sync(&mut w.server, 20);
    // One request that asks (answered with every record whole) and one that acknowledges them.
    assert_eq!(stats.requests, 2, "{stats:?}");
    assert_eq!(stats.documents_down, 5);
    assert_eq!(w.server.loads, loads, "no record was loaded to deliver or to settle it");
    for id in &ids {
        assert_eq!(heads_of(&w.b, id), heads_of(&w.a, id));
        assert!(w.b.records.get(id).unwrap().read().unwrap().observations.ends_with("现场检查。"));
    }
    assert_eq!(w.b.sync(&mut w.server, 20).requests, 1, "then a no-op sync");

    // The acknowledgement was kept as b's sync state (what survives a restart), so a's next edit
    // reaches b through Automerge's protocol, not as the whole record again.
    w.server.restart();
    let id = &ids[0];
    let state = w.server.sessions[&w.b.device.id].encoded_state(id).expect("a state for the settled record");
    assert_eq!(automerge::sync::State::decode(&state).unwrap().shared_heads, heads_of(&w.a, id));
    w.a.records.get_mut(id).unwrap().apply(Edit::SetConclusion("合格".into()), T0 + 2000).unwrap();
    w.a.session.record_changed(id);
    w.a.sync(&mut w.server, 20);
    let loads = w.server.loads;
    w.b.sync(&mut w.server, 20);
    assert_eq!(heads_of(&w.b, id), heads_of(&w.a, id));
    assert!(w.server.loads > loads, "a record b has a state for goes through Automerge's protocol");
}

#[test]
fn a_record_is_delivered_whole_only_to_a_phone_whose_officer_is_on_its_team() {
    let mut w = saved_world();
    let officers = valid_officers();
    let outsider = device(3, &officers[2]);
    let team = [&officers[0], &officers[1]];
    let everyone = [&w.a.device, &w.b.device, &outsider];
    w.server.contexts.insert(outsider.id.clone(), context(&outsider, &everyone, &team));
    let mut c = Phone::new(outsider, SessionConfig::default());
    create_records(&mut w.a, 1, 2);
    w.a.sync(&mut w.server, 20);
    let stats = c.sync(&mut w.server, 20);
    assert_eq!(stats.documents_down, 0);
    assert!(c.records.is_empty());
}

#[test]
fn an_acknowledgement_of_heads_the_record_has_moved_on_from_goes_through_automerge() {
    let mut w = saved_world();
    let ids = create_records(&mut w.a, 1, 1);
    let id = &ids[0];
    w.a.sync(&mut w.server, 20);
    // b asks and is answered with the record whole...
    w.b.session.begin();
    let request = w.b.session.poll(&mut w.b.records).unwrap();
    let response = w.server.exchange(&w.b.device.id, &to_cbor(&request));
    w.b.session.handle(from_cbor(&response).unwrap(), &mut w.b.records).unwrap();
    assert_eq!(heads_of(&w.b, id), heads_of(&w.a, id));
    // ...then a changes it before b acknowledges what it got.
    w.a.records.get_mut(id).unwrap().apply(Edit::AppendObservations("甲补充。".into()), T0 + 2000).unwrap();
    w.a.session.record_changed(id);
    w.a.sync(&mut w.server, 20);
    let loads = w.server.loads;
    finish_sync(&mut w.b, &mut w.server);
    assert!(w.server.loads > loads, "heads that are not the stored ones are not settled");
    assert_eq!(heads_of(&w.b, id), heads_of(&w.a, id));
    assert!(w.b.records.get(id).unwrap().read().unwrap().observations.ends_with("甲补充。"));
}

#[test]
fn records_delivered_whole_in_one_answer_stay_within_its_bound_and_the_rest_follow() {
    let mut w = saved_world();
    let ids = create_records(&mut w.a, 1, 12);
    w.a.sync(&mut w.server, 20);
    let size = w.server.docs[&ids[0]].save_nocompress().len();
    // Room for five records with their message framing, not for a sixth.
    let bound = 6 * size - 1;
    w.server.whole_delivery_bytes = Some(bound);
    w.b.session.begin();
    let request = w.b.session.poll(&mut w.b.records).unwrap();
    let response = w.server.exchange(&w.b.device.id, &to_cbor(&request));
    let response: schemas::SyncResponse = from_cbor(&response).unwrap();
    let whole: usize = response
        .documents
        .iter()
        .map(|d| sync_core::session::decode_message(&d.message).unwrap())
        .filter(|m| !m.changes.is_empty())
        .count();
    assert_eq!(whole, 5, "five records fit in the bound");
    assert_eq!(response.documents.len(), 12, "the others are announced, heads and Bloom filter");
    w.b.session.handle(response, &mut w.b.records).unwrap();
    finish_sync(&mut w.b, &mut w.server);
    for id in &ids {
        assert_eq!(heads_of(&w.b, id), heads_of(&w.a, id));
    }
}

#[test]
fn records_stored_behind_a_lost_answer_are_settled_and_not_sent_back() {
    let mut w = saved_world();
    let ids = create_records(&mut w.a, 1, 3);
    // a's records reach the server, but the answer to the request that carried them is lost:
    // a's cursor stays behind them.
    w.a.session.begin();
    loop {
        let request = w.a.session.poll(&mut w.a.records).unwrap();
        let carries_changes = request
            .documents
            .iter()
            .any(|d| !sync_core::session::decode_message(&d.message).unwrap().changes.is_empty());
        let response = w.server.exchange(&w.a.device.id, &to_cbor(&request));
        if carries_changes {
            w.a.session.abandon();
            break;
        }
        w.a.session.handle(from_cbor(&response).unwrap(), &mut w.a.records).unwrap();
    }
    for id in &ids {
        assert_eq!(w.server.docs[id].get_heads(), heads_of(&w.a, id));
    }
    // The next sync says a holds what is stored, and the server lists the same records after
    // a's cursor: each is settled, none loaded, none sent back.
    let loads = w.server.loads;
    let stats = w.a.sync(&mut w.server, 20);
    assert_eq!(w.server.loads, loads);
    assert_eq!(stats.documents_down, 0, "{stats:?}");
    assert_eq!(w.a.sync(&mut w.server, 20).requests, 1, "then a no-op sync");
}
