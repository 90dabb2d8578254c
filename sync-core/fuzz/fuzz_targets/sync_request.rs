//! Arbitrary bytes as a CBOR sync request, and as an Automerge sync message inside a well-formed
//! request: the server must not panic, and a stored record must not change.
#![no_main]

use std::collections::BTreeMap;

use automerge::{ActorId, Automerge};
use libfuzzer_sys::fuzz_target;
use schemas::{DocumentSyncMessage, SYNC_PROTOCOL_VERSION, SyncRequest};
use sync_core::document::{Edit, RecordDocument};
use sync_core::session::{ChangedRecords, ServerSession};
use sync_core::validate::{ActorBinding, ValidationContext};

const RECORD: &str = "0190f2a4-7c1e-7000-8000-000000000001";

fn stored() -> BTreeMap<String, Automerge> {
    let mut record = RecordDocument::create(RECORD, ActorId::from([1u8; 16]), "T0001", 1_780_000_000_000).unwrap();
    record.apply(Edit::AppendObservations("现场检查。".into()), 1_780_000_001_000).unwrap();
    BTreeMap::from([(RECORD.to_string(), record.into_automerge())])
}

/// The server's view: device D1 of officer O1, certified, on the task's team.
fn context() -> ValidationContext {
    ValidationContext {
        sending_device_id: "D1".into(),
        actors: [(ActorId::from([1u8; 16]), ActorBinding { device_id: "D1".into(), officer_id: "O1".into() })].into(),
        certificates: vec![schemas::Certificate {
            number: "C1".into(),
            officer_id: "O1".into(),
            issuing_authority: "bureau".into(),
            valid_from_ms: 0,
            valid_until_ms: i64::MAX,
            status_history: vec![],
            periods: vec![],
            reviews: vec![],
        }],
        teams: [("T0001".to_string(), ["O1".to_string()].into())].into(),
        now_ms: 1_780_100_000_000,
        max_clock_skew_ms: 300_000,
        refused: Default::default(),
    }
}

fn serve(request: &SyncRequest) {
    let mut docs = stored();
    let _ = ServerSession::new().handle(request, &mut docs, &mut context(), |_| ChangedRecords::default());
    // Whatever arrived, only validated changes went in: the record still reads.
    sync_core::document::read_record(RECORD, &docs[RECORD]).expect("a record that still reads");
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = schemas::wire::from_cbor::<SyncRequest>(bytes) {
        serve(&request);
    }
    serve(&SyncRequest {
        protocol: SYNC_PROTOCOL_VERSION,
        since: None,
        documents: vec![DocumentSyncMessage { record_id: RECORD.to_string(), message: bytes.to_vec() }],
    });
});
