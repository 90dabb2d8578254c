//! Round trips and refusals of the wire codecs.

use schemas::wire::{from_cbor, to_cbor};
use schemas::*;

fn request() -> SyncRequest {
    SyncRequest {
        protocol: SYNC_PROTOCOL_VERSION,
        since: Some(42),
        documents: vec![DocumentSyncMessage {
            record_id: "0190f2a4-7c1e-7000-8000-000000000001".into(),
            message: vec![0x42, 0, 1, 2, 255],
        }],
    }
}

#[test]
fn sync_request_round_trips_in_json_and_cbor() {
    let value = request();
    let json = serde_json::to_string(&value).unwrap();
    assert!(json.contains("\"message\":\"QgABAv8=\""), "bytes are base64 in JSON: {json}");
    assert_eq!(serde_json::from_str::<SyncRequest>(&json).unwrap(), value);
    let cbor = to_cbor(&value);
    assert_eq!(from_cbor::<SyncRequest>(&cbor).unwrap(), value);
    assert!(cbor.len() < json.len());
}

#[test]
fn truncated_cbor_is_an_error_at_every_length() {
    let cbor = to_cbor(&request());
    for cut in 0..cbor.len() {
        assert!(from_cbor::<SyncRequest>(&cbor[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn bad_base64_is_an_error() {
    let json = r#"{"protocol":1,"since":null,"documents":[{"record_id":"x","message":"***"}]}"#;
    let error = serde_json::from_str::<SyncRequest>(json).unwrap_err();
    assert!(error.to_string().contains("invalid base64"), "{error}");
}

#[test]
fn rejection_reasons_carry_a_stable_code() {
    let rejection = ChangeRejection {
        record_id: "r".into(),
        change_hash: "ab".into(),
        actor: "cd".into(),
        reason: RejectionReason::OfficerNotOnTeam { officer_id: "O0003".into(), task_id: Some("T1".into()) },
    };
    let json = serde_json::to_value(&rejection).unwrap();
    assert_eq!(json["reason"]["code"], "officer_not_on_team");
    assert_eq!(json["reason"]["officer_id"], "O0003");
}
