//! Regression tests for ways a device could get past validation, or stall a sync, found in review.
//! Each names the attack and checks that the stored record keeps nothing of it.

mod common;

use std::collections::BTreeMap;

use automerge::sync::{Message, MessageVersion};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ROOT, ReadDoc};
use common::sim::{Phone, Server};
use common::*;
use schemas::{DocumentSyncMessage, RecordStatus, RejectionReason, SYNC_PROTOCOL_VERSION, SyncRequest};
use sync_core::document::{Edit, RecordDocument, read_record};
use sync_core::session::{ChangedRecords, ServerSession, SessionConfig};

fn message(heads: Vec<automerge::ChangeHash>, changes: Vec<Vec<u8>>) -> Vec<u8> {
    Message { heads, need: vec![], have: vec![], changes: changes.into(), flags: None, version: MessageVersion::V1 }
        .encode()
}

fn code(reason: &RejectionReason) -> String {
    serde_json::to_value(reason).unwrap()["code"].as_str().unwrap().to_string()
}

/// A record stored on the server, with both officers present.
/// The conclusion of [`stored`]'s record, complete enough to sign: refused changes leave it.
const STORED_CONCLUSION: Option<&str> = Some("未发现环境违法行为。");

fn stored() -> (Device, Device, RecordDocument) {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let mut stored = new_record(1, &a);
    stored.apply(Edit::SetStartedAt(T0), T0).unwrap();
    stored.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    stored.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    complete(&mut stored, T0);
    (a, b, stored)
}

/// Device A sends a change X built on a valid change D, before D: Automerge would hold X until D
/// arrives and then apply it unchecked. X is made with `actor` at `time`.
fn out_of_order(actor: ActorId, time: i64, restart_between: bool) {
    let (a, b, stored) = stored();
    let record_id = stored.record_id().to_string();
    let mut docs: BTreeMap<String, Automerge> = BTreeMap::from([(record_id.clone(), stored.automerge().clone())]);
    let mut on_a = replica(&stored, &a);
    let d = on_a.apply(Edit::AppendObservations("ok".into()), T0 + 1000).unwrap().unwrap();
    let header = on_a.automerge().get(ROOT, "header").unwrap().unwrap().1;
    on_a.automerge_mut().set_actor(actor);
    on_a.automerge_mut()
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(time),
            |tx| tx.put(&header, "conclusion", "forged"),
        )
        .unwrap();
    let x = on_a.automerge().get_heads()[0];
    let bytes = |hash| on_a.automerge().get_change_by_hash(&hash).unwrap().raw_bytes().to_vec();
    let (d_bytes, x_bytes) = (bytes(d), bytes(x));
    let mut context = context(&a, &[&a, &b], &[&a.officer, &b.officer]);
    let mut session = ServerSession::new();
    let request = |changes| SyncRequest {
        protocol: SYNC_PROTOCOL_VERSION,
        since: None,
        documents: vec![DocumentSyncMessage { record_id: record_id.clone(), message: message(vec![x], changes) }],
    };
    let mut rejections = Vec::new();
    let (response, _) =
        session.handle(&request(vec![x_bytes]), &mut docs, &mut context, |_| ChangedRecords::default()).unwrap();
    rejections.extend(response.rejections);
    if restart_between {
        let saved = docs[&record_id].save();
        docs.insert(record_id.clone(), Automerge::load(&saved).unwrap());
        let state = session.encoded_state(&record_id).unwrap();
        session = ServerSession::new();
        session.restore_state(&record_id, &state).unwrap();
    }
    let (response, _) =
        session.handle(&request(vec![d_bytes]), &mut docs, &mut context, |_| ChangedRecords::default()).unwrap();
    rejections.extend(response.rejections);
    let doc = &docs[&record_id];
    assert!(doc.get_change_meta_by_hash(&d).is_some(), "the valid change went in");
    assert!(doc.get_change_meta_by_hash(&x).is_none(), "the refused change stays out");
    assert_eq!(read_record(&record_id, doc).unwrap().header.conclusion.as_deref(), STORED_CONCLUSION);
    assert!(rejections.iter().any(|r| r.change_hash == x.to_string()), "{rejections:?}");
}

#[test]
fn a_change_sent_before_its_dependency_is_validated_when_it_arrives_impersonation() {
    let officers = valid_officers();
    out_of_order(device(2, &officers[1]).actor, T0 + 2000, false);
}

#[test]
fn a_change_sent_before_its_dependency_is_validated_when_it_arrives_unknown_actor() {
    out_of_order(actor(99), T0 + 2000, false);
}

#[test]
fn a_change_sent_before_its_dependency_is_validated_when_it_arrives_across_a_restart() {
    out_of_order(actor(1), T0 + 100 * DAY, true);
}

struct World {
    server: Server,
    a: Phone,
    b: Phone,
    record_id: String,
}

/// Two phones of a team, a record both have, with both officers present.
fn world() -> World {
    let (da, db, record) = stored();
    let team = [&da.officer, &db.officer];
    let contexts = BTreeMap::from([
        (da.id.clone(), context(&da, &[&da, &db], &team)),
        (db.id.clone(), context(&db, &[&da, &db], &team)),
    ]);
    let mut w = World {
        server: Server::new(contexts),
        a: Phone::new(da, SessionConfig::default()),
        b: Phone::new(db, SessionConfig::default()),
        record_id: record.record_id().to_string(),
    };
    w.a.records.insert(record);
    w.a.session.record_changed(&w.record_id);
    w.a.sync(&mut w.server, 20);
    w.b.sync(&mut w.server, 20);
    w
}

fn certificates(w: &World) -> Vec<schemas::Certificate> {
    vec![w.a.device.officer.certificate.clone(), w.b.device.officer.certificate.clone()]
}

fn edit(phone: &mut Phone, id: &str, f: impl FnOnce(&mut RecordDocument)) {
    f(phone.records.get_mut(id).unwrap());
    phone.session.record_changed(id);
}

#[test]
fn p1_a_signature_over_content_the_signer_never_saw_is_refused() {
    let mut w = world();
    let id = w.record_id.clone();
    let certs = certificates(&w);
    let officer_a = w.a.device.officer.id.clone();
    edit(&mut w.a, &id, |r| {
        r.apply(Edit::SetConclusion("合格".into()), T0 + 500).unwrap();
    });
    w.a.sync(&mut w.server, 20);
    w.b.sync(&mut w.server, 20);
    // A signs offline having seen "合格"; B, offline, changes the conclusion, and syncs first.
    edit(&mut w.a, &id, |r| {
        r.sign(&officer_a, T0 + 2000, &certs).unwrap();
    });
    edit(&mut w.b, &id, |r| {
        r.apply(Edit::SetConclusion("不合格，责令停产".into()), T0 + 1500).unwrap();
    });
    w.b.sync(&mut w.server, 20);
    let stats = w.a.sync(&mut w.server, 20);
    let codes: Vec<String> = stats.rejections.iter().map(|r| code(&r.reason)).collect();
    assert_eq!(codes, ["signing_rule_violated"], "{:?}", stats.rejections);
    let record = read_record(&id, &w.server.docs[&id]).unwrap();
    assert!(record.signatures.is_empty(), "no signature stands over content its signer did not see");
    assert_eq!(record.header.conclusion.as_deref(), Some("不合格，责令停产"));
}

#[test]
fn p1_two_devices_locking_at_once_both_read_locked() {
    let mut w = world();
    let id = w.record_id.clone();
    let certs = certificates(&w);
    let (officer_a, officer_b) = (w.a.device.officer.id.clone(), w.b.device.officer.id.clone());
    edit(&mut w.a, &id, |r| {
        r.sign(&officer_a, T0 + 1000, &certs).unwrap();
    });
    edit(&mut w.b, &id, |r| {
        r.sign(&officer_b, T0 + 1000, &certs).unwrap();
    });
    w.a.sync(&mut w.server, 20);
    w.b.sync(&mut w.server, 20);
    w.a.sync(&mut w.server, 20);
    edit(&mut w.a, &id, |r| {
        r.lock(T0 + 3000).unwrap();
    });
    edit(&mut w.b, &id, |r| {
        r.lock(T0 + 3000).unwrap();
    });
    let stats_a = w.a.sync(&mut w.server, 20);
    let stats_b = w.b.sync(&mut w.server, 20);
    w.a.sync(&mut w.server, 20);
    w.b.sync(&mut w.server, 20);
    // A locked record takes no change at all: the second lock, made before its device saw the
    // first, is refused and leaves that device's copy, which is locked by the first.
    assert!(stats_a.rejections.is_empty(), "{stats_a:?}");
    assert_eq!(stats_b.rejections.iter().map(|r| code(&r.reason)).collect::<Vec<_>>(), ["record_locked"]);
    for record in [
        w.a.records.get(&id).unwrap().read().unwrap(),
        w.b.records.get(&id).unwrap().read().unwrap(),
        read_record(&id, &w.server.docs[&id]).unwrap(),
    ] {
        assert_eq!(record.status, RecordStatus::Locked);
    }
}

#[test]
fn a_device_whose_edit_was_refused_still_finishes_every_sync() {
    let mut w = world();
    let id = w.record_id.clone();
    let certs = certificates(&w);
    let (officer_a, officer_b) = (w.a.device.officer.id.clone(), w.b.device.officer.id.clone());
    edit(&mut w.a, &id, |r| {
        r.sign(&officer_a, T0 + 1000, &certs).unwrap();
    });
    edit(&mut w.b, &id, |r| {
        r.apply(Edit::SetConclusion("B".into()), T0 + 900).unwrap();
    });
    w.a.sync(&mut w.server, 20);
    let first = w.b.sync(&mut w.server, 20);
    assert_eq!(first.rejections.iter().map(|r| code(&r.reason)).collect::<Vec<_>>(), ["record_signed"]);
    edit(&mut w.b, &id, |r| {
        r.sign(&officer_b, T0 + 5000, &certs).unwrap();
    });
    let second = w.b.sync(&mut w.server, 20);
    // The refused edit travels again (a sync starts afresh) and is refused again, with the
    // signature built on it; the sync ends all the same.
    assert_eq!(
        second.rejections.iter().map(|r| code(&r.reason)).collect::<Vec<_>>(),
        ["record_signed", "depends_on_refused_change"],
        "{:?}",
        second.rejections
    );
    let record = read_record(&id, &w.server.docs[&id]).unwrap();
    assert_eq!(record.signatures.len(), 1);
    assert_eq!(record.header.conclusion.as_deref(), STORED_CONCLUSION);
}

/// Writes raw operations as `phone`, bypassing the record's own checks.
fn raw(
    phone: &mut Phone,
    id: &str,
    at: i64,
    write: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &Automerge),
) {
    let doc = phone.records.get(id).unwrap().automerge().clone();
    phone
        .records
        .get_mut(id)
        .unwrap()
        .automerge_mut()
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(at),
            |tx| {
                write(tx, &doc);
                Ok(())
            },
        )
        .unwrap();
    phone.session.record_changed(id);
}

fn container(doc: &Automerge, key: &str) -> automerge::ObjId {
    doc.get(ROOT, key).unwrap().unwrap().1
}

#[test]
fn signing_editing_and_unsigning_in_one_batch_is_refused() {
    let mut w = world();
    let id = w.record_id.clone();
    let certs = certificates(&w);
    let officer_a = w.a.device.officer.id.clone();
    edit(&mut w.a, &id, |r| {
        r.sign(&officer_a, T0 + 1000, &certs).unwrap();
    });
    edit(&mut w.a, &id, |r| {
        r.automerge_mut()
            .transact_with::<_, _, automerge::AutomergeError, _>(
                |_| CommitOptions::default().with_time(T0 + 2000),
                |tx| {
                    let doc_header = tx.get(ROOT, "header")?.unwrap().1;
                    tx.put(&doc_header, "conclusion", "改")?;
                    let signatures = tx.get(ROOT, "signatures")?.unwrap().1;
                    tx.delete(&signatures, officer_a.as_str())
                },
            )
            .unwrap();
    });
    let stats = w.a.sync(&mut w.server, 20);
    let codes: Vec<String> = stats.rejections.iter().map(|r| code(&r.reason)).collect();
    assert_eq!(codes, ["operation_not_allowed"], "{:?}", stats.rejections);
    assert_eq!(read_record(&id, &w.server.docs[&id]).unwrap().header.conclusion.as_deref(), STORED_CONCLUSION);
}

#[test]
fn writes_at_the_root_below_the_genesis_are_refused() {
    let mut w = world();
    let id = w.record_id.clone();
    raw(&mut w.a, &id, T0 + 1000, |tx, _| {
        tx.put(ROOT, "junk", "x".repeat(1000)).unwrap();
    });
    let stats = w.a.sync(&mut w.server, 20);
    assert_eq!(stats.rejections.iter().map(|r| code(&r.reason)).collect::<Vec<_>>(), ["operation_not_allowed"]);
    assert!(w.server.docs[&id].get(ROOT, "junk").unwrap().is_none());
    // Replacing the signatures container is a root write too.
    let mut w = world();
    raw(&mut w.a, &id, T0 + 1000, |tx, doc| {
        let _ = container(doc, "signatures");
        tx.put_object(ROOT, "signatures", automerge::ObjType::Map).unwrap();
    });
    let stats = w.a.sync(&mut w.server, 20);
    assert_eq!(stats.rejections.iter().map(|r| code(&r.reason)).collect::<Vec<_>>(), ["operation_not_allowed"]);
}

#[test]
fn p3_a_change_dated_before_what_it_builds_on_is_refused() {
    let mut w = world();
    let id = w.record_id.clone();
    edit(&mut w.a, &id, |r| {
        r.apply(Edit::AppendObservations("now".into()), T0 + 3_600_000).unwrap();
    });
    w.a.sync(&mut w.server, 20);
    edit(&mut w.a, &id, |r| {
        r.apply(Edit::AppendObservations("backdated".into()), T0 - DAY).unwrap();
    });
    let stats = w.a.sync(&mut w.server, 20);
    assert_eq!(
        stats.rejections.iter().map(|r| code(&r.reason)).collect::<Vec<_>>(),
        ["timestamp_before_dependency"],
        "{:?}",
        stats.rejections
    );
}

#[test]
fn a_change_refused_earlier_is_refused_again_when_resent() {
    let mut w = world();
    let id = w.record_id.clone();
    edit(&mut w.a, &id, |r| {
        r.apply(Edit::SetConclusion("future".into()), T0 + 3 * DAY).unwrap();
    });
    let first = w.a.sync(&mut w.server, 20);
    assert_eq!(first.rejections.len(), 1);
    // The server's clock moves past the change's time: it is still refused, for the same reason.
    for context in w.server.contexts.values_mut() {
        context.now_ms = T0 + 4 * DAY;
    }
    w.server.restart();
    w.a.session.record_changed(&id);
    let again = w.a.sync(&mut w.server, 20);
    assert_eq!(again.rejections.iter().map(|r| code(&r.reason)).collect::<Vec<_>>(), ["timestamp_in_future"]);
    assert_eq!(read_record(&id, &w.server.docs[&id]).unwrap().header.conclusion.as_deref(), STORED_CONCLUSION);
}

/// A change sent again and again before its dependency is held once; it goes in when the
/// dependency arrives.
#[test]
fn a_change_waiting_for_its_dependency_is_held_once_however_often_it_is_sent() {
    let (a, b, stored) = stored();
    let record_id = stored.record_id().to_string();
    let mut docs: BTreeMap<String, Automerge> = BTreeMap::from([(record_id.clone(), stored.automerge().clone())]);
    let mut on_a = replica(&stored, &a);
    let d = on_a.apply(Edit::AppendObservations("一".into()), T0 + 1000).unwrap().unwrap();
    let x = on_a.apply(Edit::AppendObservations("二".into()), T0 + 2000).unwrap().unwrap();
    let bytes = |hash| on_a.automerge().get_change_by_hash(&hash).unwrap().raw_bytes().to_vec();
    let request = |changes| SyncRequest {
        protocol: SYNC_PROTOCOL_VERSION,
        since: None,
        documents: vec![DocumentSyncMessage { record_id: record_id.clone(), message: message(vec![x], changes) }],
    };
    let mut context = context(&a, &[&a, &b], &[&a.officer, &b.officer]);
    let mut session = ServerSession::new();
    let mut sizes = Vec::new();
    for _ in 0..4 {
        let (response, _) =
            session.handle(&request(vec![bytes(x)]), &mut docs, &mut context, |_| ChangedRecords::default()).unwrap();
        assert!(response.rejections.is_empty(), "{:?}", response.rejections);
        assert_eq!(session.held(&record_id).len(), 1);
        sizes.push(session.encoded_state(&record_id).unwrap().len());
    }
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "the kept state does not grow: {sizes:?}");
    assert!(docs[&record_id].get_change_meta_by_hash(&x).is_none(), "held, not in the document");
    session.handle(&request(vec![bytes(d)]), &mut docs, &mut context, |_| ChangedRecords::default()).unwrap();
    assert!(docs[&record_id].get_change_meta_by_hash(&x).is_some(), "in once its dependency came");
    assert!(session.held(&record_id).is_empty());
    assert_eq!(read_record(&record_id, &docs[&record_id]).unwrap().observations, "一二");
}
