//! Property: arbitrary or corrupted bytes, given as a batch or as an Automerge sync message,
//! never panic and never change a stored document.

mod common;

use std::collections::BTreeMap;

use automerge::Automerge;
use common::*;
use proptest::prelude::*;
use schemas::wire::from_cbor;
use schemas::{DocumentSyncMessage, SYNC_PROTOCOL_VERSION, SyncRequest, SyncResponse};
use sync_core::document::Edit;
use sync_core::session::{ChangedRecords, DeviceRecords, DeviceSession, ServerSession};

/// A server holding one record, a real first message for it, and the context to validate with.
fn stored() -> (BTreeMap<String, Automerge>, Vec<u8>, sync_core::validate::ValidationContext) {
    let officers = valid_officers();
    let a = device(1, &officers[0]);
    let mut record = new_record(1, &a);
    record.apply(Edit::AppendObservations("现场检查。".into()), T0).unwrap();
    let mut device_copy = record.clone();
    device_copy.apply(Edit::SetConclusion("合格".into()), T0 + 1000).unwrap();
    let mut state = automerge::sync::State::new();
    use automerge::sync::SyncDoc;
    // A message that carries changes: the device already knows what the server has.
    let first = device_copy.automerge().generate_sync_message(&mut state).unwrap();
    let mut server_state = automerge::sync::State::new();
    let mut server_doc = record.automerge().clone();
    server_doc.receive_sync_message(&mut server_state, first).unwrap();
    let reply = server_doc.generate_sync_message(&mut server_state).unwrap();
    device_copy.automerge_mut().receive_sync_message(&mut state, reply).unwrap();
    let with_changes = device_copy.automerge().generate_sync_message(&mut state).unwrap().encode();
    let docs = BTreeMap::from([(record.record_id().to_string(), record.into_automerge())]);
    (docs, with_changes, context(&a, &[&a], &[&officers[0]]))
}

fn snapshot(docs: &BTreeMap<String, Automerge>) -> Vec<(String, Vec<u8>)> {
    docs.iter().filter(|(_, d)| !d.get_heads().is_empty()).map(|(k, d)| (k.clone(), d.save())).collect()
}

fn serve(
    docs: &mut BTreeMap<String, Automerge>,
    request: &SyncRequest,
    gate: &mut sync_core::validate::ValidationContext,
) {
    let _ = ServerSession::new().handle(request, docs, gate, |_| ChangedRecords::default());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FIELDSYNC_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_as_a_batch_change_nothing(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (mut docs, _, mut gate) = stored();
        let before = snapshot(&docs);
        if let Ok(request) = from_cbor::<SyncRequest>(&bytes) {
            serve(&mut docs, &request, &mut gate);
        }
        let _ = serde_json::from_slice::<SyncRequest>(&bytes);
        prop_assert_eq!(snapshot(&docs), before);
    }

    #[test]
    fn arbitrary_bytes_as_a_sync_message_change_nothing(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (mut docs, _, mut gate) = stored();
        let before = snapshot(&docs);
        let record_id = docs.keys().next().unwrap().clone();
        let request = SyncRequest {
            protocol: SYNC_PROTOCOL_VERSION,
            since: None,
            documents: vec![DocumentSyncMessage { record_id, message: bytes }],
        };
        serve(&mut docs, &request, &mut gate);
        prop_assert_eq!(snapshot(&docs), before);
    }

    /// A real message with one byte changed: it is refused, or (a changed head or Bloom bit) it
    /// applies only real changes; the record always still reads.
    #[test]
    fn a_corrupted_sync_message_never_corrupts_the_record(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (mut docs, message, mut gate) = stored();
        let record_id = docs.keys().next().unwrap().clone();
        let mut corrupted = message.clone();
        let at = index.index(corrupted.len());
        corrupted[at] ^= flip;
        let request = SyncRequest {
            protocol: SYNC_PROTOCOL_VERSION,
            since: None,
            documents: vec![DocumentSyncMessage { record_id: record_id.clone(), message: corrupted }],
        };
        serve(&mut docs, &request, &mut gate);
        let record = sync_core::document::read_record(&record_id, &docs[&record_id]);
        prop_assert!(record.is_ok(), "{:?}", record);
        let conclusion = record.unwrap().header.conclusion;
        prop_assert!(conclusion.is_none() || conclusion.as_deref() == Some("合格"));
    }

    #[test]
    fn arbitrary_bytes_as_an_answer_change_nothing_on_the_device(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let officers = valid_officers();
        let a = device(1, &officers[0]);
        let mut records = DeviceRecords::new(a.actor.clone());
        records.insert(new_record(1, &a));
        let before = records.get(&record_id(1)).unwrap().save();
        let mut session = DeviceSession::new(Default::default());
        session.record_changed(&record_id(1));
        session.begin();
        let _ = session.poll(&mut records).unwrap();
        if let Ok(response) = from_cbor::<SyncResponse>(&bytes) {
            let _ = session.handle(response, &mut records);
        }
        prop_assert_eq!(records.get(&record_id(1)).unwrap().save(), before);
    }
}
