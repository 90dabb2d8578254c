//! Hand-made changes that Automerge decodes but its own API never makes, sent by an enrolled
//! device of the team (or of no team) to a draft and to a locked record. Each is refused with its
//! code; the stored document still loads from its saved bytes and is unchanged; nothing panics.
//! A property test sends arbitrary well-formed-but-hostile changes and checks the same.

mod common;

use std::collections::BTreeMap;

use automerge::legacy::{ElementId, Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::sync::{Message, MessageVersion};
use automerge::{ActorId, Automerge, Change, ChangeHash, ExpandedChange, ObjType, ROOT, ReadDoc, ScalarValue};
use common::*;
use proptest::prelude::*;
use schemas::{DocumentSyncMessage, RecordStatus, SYNC_PROTOCOL_VERSION, SyncRequest};
use sync_core::change_check::containers;
use sync_core::document::{Edit, RecordDocument, genesis_actor, read_record};
use sync_core::session::{ChangedRecords, ServerReport, ServerSession};
use sync_core::validate::ValidationContext;

fn code(reason: &schemas::RejectionReason) -> String {
    serde_json::to_value(reason).unwrap()["code"].as_str().unwrap().to_string()
}

/// A record of two officers' devices, as stored on the server: a draft, or signed by both and
/// locked.
struct Scene {
    a: Device,
    b: Device,
    /// Device A's copy, from which hostile changes are made.
    on_a: RecordDocument,
    stored: Automerge,
}

fn scene(locked: bool) -> Scene {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let mut record = new_record(1, &a);
    record.apply(Edit::SetStartedAt(T0), T0).unwrap();
    record.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    record.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    record.apply(Edit::AppendObservations("现场检查。".into()), T0 + 100).unwrap();
    if locked {
        complete(&mut record, T0 + 500);
        let certificates = vec![officers[0].certificate.clone(), officers[1].certificate.clone()];
        record.sign(&officers[0].id, T0 + 1000, &certificates).unwrap();
        let mut on_b = replica(&record, &b);
        on_b.sign(&officers[1].id, T0 + 2000, &certificates).unwrap();
        merge(&mut record, &on_b);
        assert_eq!(record.read().unwrap().status, RecordStatus::Locked);
    }
    let stored = record.automerge().clone();
    Scene { on_a: replica(&record, &a), a, b, stored }
}

/// Sends `changes` as `sender` in one sync message; returns the rejection codes and the report.
fn send(
    stored: &mut Automerge,
    record_id: &str,
    context: &mut ValidationContext,
    changes: &[Change],
) -> (Vec<String>, ServerReport) {
    let mut docs = BTreeMap::from([(record_id.to_string(), stored.clone())]);
    let mut heads: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
    heads.sort();
    let message = Message {
        heads,
        need: vec![],
        have: vec![],
        changes: changes.iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into(),
        flags: None,
        version: MessageVersion::V1,
    };
    let request = SyncRequest {
        protocol: SYNC_PROTOCOL_VERSION,
        since: None,
        documents: vec![DocumentSyncMessage { record_id: record_id.to_string(), message: message.encode() }],
    };
    let mut session = ServerSession::new();
    let (response, report) =
        session.handle(&request, &mut docs, context, |_| ChangedRecords::default()).expect("answered");
    *stored = docs.remove(record_id).unwrap();
    (response.rejections.iter().map(|r| code(&r.reason)).collect(), report)
}

/// A change built by hand on `deps`, as `actor` with `seq`, starting at `start_op`.
fn change(actor: &ActorId, seq: u64, start_op: u64, deps: Vec<ChangeHash>, operations: Vec<Op>) -> Change {
    Change::from(ExpandedChange {
        operations,
        actor_id: actor.clone(),
        hash: None,
        seq,
        start_op: std::num::NonZeroU64::new(start_op).unwrap(),
        time: T0 + 5000,
        message: None,
        deps,
        extra_bytes: Vec::new(),
        author: None,
    })
}

fn put(obj: ObjectId, key: &str, value: ScalarValue, pred: Vec<OpId>) -> Op {
    Op { action: OpType::Put(value), obj, key: Key::Map(key.into()), pred: SortedVec::from(pred), insert: false }
}

fn container(record_id: &str, name: &str) -> ObjectId {
    containers(record_id).into_iter().find(|(_, (n, _))| *n == name).unwrap().0
}

/// The device's next change, as Automerge would make it: seq, start_op and deps from its copy.
fn next(scene: &Scene, operations: Vec<Op>) -> Change {
    let doc = scene.on_a.automerge();
    let heads = doc.get_heads();
    let max_op = heads.iter().map(|h| doc.get_change_meta_by_hash(h).unwrap().max_op).max().unwrap();
    let seq = doc.get_changes(&[]).iter().filter(|c| c.actor_id() == &scene.a.actor).count() as u64 + 1;
    change(&scene.a.actor, seq, max_op + 1, heads, operations)
}

fn loads_unchanged(before: &Automerge, after: &Automerge, record_id: &str) {
    let reloaded = Automerge::load(&after.save()).expect("the stored document loads from its bytes");
    assert_eq!(reloaded.get_heads(), before.get_heads(), "the record is unchanged");
    assert_eq!(read_record(record_id, &reloaded).unwrap(), read_record(record_id, before).unwrap());
}

fn team_context(s: &Scene) -> ValidationContext {
    context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer])
}

#[test]
fn malformed_change_a_lamport_violation_is_refused_and_the_record_still_loads() {
    for locked in [false, true] {
        let s = scene(locked);
        let id = s.on_a.record_id().to_string();
        let header = container(&id, "header");
        let good = next(&s, vec![put(header.clone(), "address", "柳州".into(), vec![])]);
        // The same change, but starting its counters at 2: below what it builds on.
        let mut expanded = good.decode();
        expanded.start_op = std::num::NonZeroU64::new(2).unwrap();
        let hostile = Change::from(expanded);
        let mut stored = s.stored.clone();
        let (codes, report) = send(&mut stored, &id, &mut team_context(&s), &[hostile]);
        assert_eq!(codes, ["malformed_change"], "locked: {locked}");
        assert!(report.updated.is_empty());
        loads_unchanged(&s.stored, &stored, &id);
    }
}

#[test]
fn malformed_change_repeated_operation_ids_are_refused_without_a_panic() {
    let s = scene(false);
    let id = s.on_a.record_id().to_string();
    let header = container(&id, "header");
    let first = next(&s, vec![put(header.clone(), "address", "一".into(), vec![])]);
    // A second change of the same actor, seq after the first, reusing the first's counters.
    let second = change(
        &s.a.actor,
        first.seq() + 1,
        first.start_op().get(),
        vec![first.hash()],
        vec![put(header.clone(), "conclusion", "二".into(), vec![])],
    );
    // A change of the actor that skips a sequence number, and one that forks its own chain.
    let skipping = change(&s.a.actor, first.seq() + 2, first.max_op() + 1, vec![first.hash()], vec![]);
    let mut stored = s.stored.clone();
    let (codes, _) = send(&mut stored, &id, &mut team_context(&s), &[first.clone(), second, skipping]);
    assert_eq!(codes, ["malformed_change", "malformed_change"]);
    let record = read_record(&id, &stored).unwrap();
    assert_eq!(record.header.address.as_deref(), Some("一"), "the well-formed change went in");
    assert_eq!(record.header.conclusion, None);
    Automerge::load(&stored.save()).unwrap();

    // Same sequence number twice, the second concurrent with the first: Automerge refuses it.
    let s = scene(false);
    let first = next(&s, vec![put(header.clone(), "address", "一".into(), vec![])]);
    let twin = next(&s, vec![put(header, "address", "二".into(), vec![])]);
    let mut stored = s.stored.clone();
    send(&mut stored, &id, &mut team_context(&s), std::slice::from_ref(&first));
    let (codes, _) = send(&mut stored, &id, &mut team_context(&s), &[twin]);
    assert_eq!(codes, ["malformed_change"]);
    Automerge::load(&stored.save()).unwrap();
}

#[test]
fn record_locked_nothing_goes_in_after_the_lock_whatever_its_effect() {
    let s = scene(true);
    let id = s.on_a.record_id().to_string();
    let header = container(&id, "header");
    let observations = container(&id, "observations");
    let doc = s.on_a.automerge();
    let (_, started_id) = doc.get(doc.get(ROOT, "header").unwrap().unwrap().1, "started_at_ms").unwrap().unwrap();
    let started = match started_id {
        automerge::ObjId::Id(counter, actor, _) => OpId(counter, actor),
        automerge::ObjId::Root => unreachable!(),
    };
    let hidden = |value: &str| Op {
        action: OpType::Put(ScalarValue::Str(value.into())),
        obj: observations.clone(),
        key: Key::Seq(ElementId::Head),
        pred: SortedVec::new(),
        insert: true,
    };
    let cases: Vec<(&str, Vec<Op>, &str)> = vec![
        ("an empty change", vec![], "record_locked"),
        (
            "the same value written again",
            vec![put(header.clone(), "started_at_ms", T0.into(), vec![started])],
            "record_locked",
        ),
        ("a lock again", vec![put(ObjectId::Root, "locked", true.into(), vec![])], "record_locked"),
        ("a character inserted", vec![hidden("x")], "record_locked"),
        (
            "a map made inside the observations",
            vec![Op {
                action: OpType::Make(ObjType::Map),
                obj: observations.clone(),
                key: Key::Seq(ElementId::Head),
                pred: SortedVec::new(),
                insert: true,
            }],
            "operation_not_allowed",
        ),
        ("a megabyte in one character", vec![hidden(&"x".repeat(1 << 20))], "operation_not_allowed"),
        ("a counter", vec![put(header.clone(), "address", ScalarValue::counter(1), vec![])], "operation_not_allowed"),
    ];
    for (name, operations, expected) in cases {
        let hostile = next(&s, operations);
        let mut stored = s.stored.clone();
        let (codes, _) = send(&mut stored, &id, &mut team_context(&s), &[hostile]);
        assert_eq!(codes, [expected], "{name}");
        loads_unchanged(&s.stored, &stored, &id);
    }
}

#[test]
fn officer_not_on_team_is_refused_on_a_locked_record_too() {
    let s = scene(true);
    let id = s.on_a.record_id().to_string();
    let outsider = device(3, &valid_officers()[5]);
    let mut on_c = replica(&s.on_a, &outsider);
    on_c.automerge_mut().empty_commit(automerge::transaction::CommitOptions::default().with_time(T0 + 5000));
    let hostile = on_c.automerge().get_last_local_change().unwrap();
    let mut context = context(&outsider, &[&s.a, &s.b, &outsider], &[&s.a.officer, &s.b.officer]);
    let mut stored = s.stored.clone();
    let (codes, _) = send(&mut stored, &id, &mut context, &[hostile]);
    assert_eq!(codes, ["officer_not_on_team"]);
    loads_unchanged(&s.stored, &stored, &id);
}

#[test]
fn not_genesis_and_reserved_actor_a_device_with_the_genesis_actor_writes_nothing() {
    let s = scene(false);
    let id = s.on_a.record_id().to_string();
    let genesis = genesis_actor(&id);
    // A device enrolled with the record's genesis actor as its actor id.
    let impostor = Device { id: "D9".into(), actor: genesis.clone(), officer: s.a.officer.clone() };
    let mut context = context(&impostor, &[&s.a, &s.b, &impostor], &[&s.a.officer, &s.b.officer]);
    let header = container(&id, "header");
    let doc = s.on_a.automerge();
    let max_op = doc.get_heads().iter().map(|h| doc.get_change_meta_by_hash(h).unwrap().max_op).max().unwrap();
    let hostile =
        change(&genesis, 2, max_op + 1, doc.get_heads(), vec![put(header, "conclusion", "伪造".into(), vec![])]);
    let mut stored = s.stored.clone();
    let (codes, _) = send(&mut stored, &id, &mut context, &[hostile]);
    assert_eq!(codes, ["not_genesis"]);
    loads_unchanged(&s.stored, &stored, &id);
    // A new record whose genesis actor is that device's is not created at all.
    let mut empty = Automerge::new();
    let whole = s.on_a.automerge().get_changes(&[]);
    let (codes, report) = send(&mut empty, &id, &mut context, &whole);
    assert!(codes.iter().all(|c| c == "reserved_actor"), "{codes:?}");
    assert!(report.updated.is_empty() && empty.get_heads().is_empty());
}

#[test]
fn wrong_author_a_resolution_in_another_officers_name_is_refused() {
    let s = scene(false);
    let id = s.on_a.record_id().to_string();
    let resolutions = container(&id, "resolutions");
    let entry = |by: &str| {
        serde_json::json!({
            "field": "header/conclusion", "resolved_by_officer": by, "resolved_at_ms": T0 + 5000, "value": "合格"
        })
        .to_string()
    };
    let forged = next(&s, vec![put(resolutions.clone(), "header/conclusion", entry(&s.b.officer.id).into(), vec![])]);
    let mut stored = s.stored.clone();
    assert_eq!(send(&mut stored, &id, &mut team_context(&s), &[forged]).0, ["wrong_author"]);
    let bad_key = next(&s, vec![put(resolutions, &"\u{7}".repeat(5000), entry(&s.a.officer.id).into(), vec![])]);
    assert_eq!(send(&mut stored, &id, &mut team_context(&s), &[bad_key]).0, ["schema_violation"]);
    loads_unchanged(&s.stored, &stored, &id);
}

#[test]
fn signing_rule_violated_a_losing_value_under_another_officers_signature_key() {
    let officers = valid_officers();
    let s = scene(false);
    let id = s.on_a.record_id().to_string();
    let signatures = container(&id, "signatures");
    let signature = |officer: &Officer| {
        serde_json::json!({
            "officer_id": officer.id, "certificate_number": officer.certificate.number, "signed_at_ms": T0 + 5000
        })
        .to_string()
    };
    // A signs, and writes in the same change a value under B's key, which B's would beat.
    let hostile = next(
        &s,
        vec![
            put(signatures.clone(), &officers[0].id, signature(&officers[0]).into(), vec![]),
            put(signatures, &officers[1].id, signature(&officers[1]).into(), vec![]),
        ],
    );
    let mut stored = s.stored.clone();
    assert_eq!(send(&mut stored, &id, &mut team_context(&s), &[hostile]).0, ["operation_not_allowed"]);
    loads_unchanged(&s.stored, &stored, &id);
}

#[test]
fn limit_exceeded_thousands_of_photo_keys_are_refused() {
    let s = scene(false);
    let id = s.on_a.record_id().to_string();
    let photos = container(&id, "photos");
    let operations = (0..600).map(|n| put(photos.clone(), &format!("{n:064x}"), "照片".into(), vec![])).collect();
    let mut stored = s.stored.clone();
    assert_eq!(send(&mut stored, &id, &mut team_context(&s), &[next(&s, operations)]).0, ["limit_exceeded"]);
    loads_unchanged(&s.stored, &stored, &id);
    // The device itself refuses to go past the bound, so it never makes such a change.
    let mut on_a = s.on_a.clone();
    for n in 0..500 {
        on_a.apply(Edit::AddPhoto { sha256: format!("{n:064x}"), caption: "照片".into() }, T0 + 200).unwrap();
    }
    let over = on_a.apply(Edit::AddPhoto { sha256: format!("{:064x}", 500), caption: "照片".into() }, T0 + 200);
    assert!(over.is_err());
    assert_eq!(on_a.read().unwrap().photos.len(), 500);
}

/// A delete with no predecessor, in any container: Automerge applies it, then panics when the
/// document's changes are collected again (`MissingOps`). Found by the property below; the
/// change is refused and the stored record is unchanged, instead of the exchange failing.
#[test]
fn malformed_change_a_delete_of_nothing_that_automerge_cannot_read_back_is_refused() {
    for locked in [false, true] {
        let s = scene(locked);
        let id = s.on_a.record_id().to_string();
        let objects: Vec<ObjectId> = containers(&id).into_keys().chain([ObjectId::Root]).collect();
        let mut malformed = 0;
        for obj in objects {
            let delete = Op {
                action: OpType::Delete,
                obj,
                key: Key::Map("locked".into()),
                pred: SortedVec::new(),
                insert: false,
            };
            let mut stored = s.stored.clone();
            let (codes, report) = send(&mut stored, &id, &mut team_context(&s), &[next(&s, vec![delete])]);
            assert!(
                matches!(codes.as_slice(), [c] if c == "malformed_change" || c == "operation_not_allowed"),
                "{codes:?}"
            );
            assert!(report.updated.is_empty(), "nothing changed");
            malformed += usize::from(codes[0] == "malformed_change");
            let reloaded = Automerge::load(&stored.save()).expect("a stored record always loads");
            read_record(&id, &reloaded).expect("a stored record always reads");
            if locked {
                assert_eq!(reloaded.get_heads(), s.stored.get_heads(), "a locked record never changes");
            }
        }
        assert!(malformed > 0, "the deletes Automerge cannot read back are refused as malformed");
    }
}

/// An operation a hostile device might write: anywhere, with any action, key and counters.
fn arbitrary_op(record_id: String) -> impl Strategy<Value = Op> {
    let objects: Vec<ObjectId> = containers(&record_id).into_keys().chain([ObjectId::Root]).collect();
    (
        proptest::sample::select(objects),
        0u8..7,
        prop_oneof![
            proptest::sample::select(vec!["locked", "conclusion", "address", "O1", "x"])
                .prop_map(|k| Key::Map(k.into())),
            (0u64..40).prop_map(|c| Key::Seq(if c == 0 { ElementId::Head } else { ElementId::Id(OpId(c, actor(1))) })),
        ],
        any::<bool>(),
        proptest::collection::vec((1u64..40, 1u8..4), 0..2),
        ".{0,3}",
    )
        .prop_map(|(obj, action, key, insert, pred, text)| Op {
            action: match action {
                0 => OpType::Make(ObjType::Map),
                1 => OpType::Delete,
                2 => OpType::Increment(1),
                3 => OpType::Put(ScalarValue::Boolean(true)),
                4 => OpType::Put(ScalarValue::Int(T0)),
                5 => OpType::Make(ObjType::Text),
                _ => OpType::Put(ScalarValue::Str(text.into())),
            },
            obj,
            key,
            pred: SortedVec::from(pred.into_iter().map(|(c, a)| OpId(c, actor(a))).collect::<Vec<_>>()),
            insert,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("FIELDSYNC_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
    ))]

    /// Arbitrary changes (counters, sequence numbers, dependencies, actors, objects, keys,
    /// predecessors) at a locked record and at a draft: a locked record never changes, and the
    /// stored document always loads from its bytes.
    #[test]
    fn a_locked_record_never_changes_and_a_stored_record_always_loads(
        locked in any::<bool>(),
        seq_delta in 0u64..3,
        start_delta in -3i64..3,
        which_actor in 0u8..3,
        keep_deps in any::<bool>(),
        ops in proptest::collection::vec(arbitrary_op(record_id(1)), 0..6),
    ) {
        let s = scene(locked);
        let id = s.on_a.record_id().to_string();
        let doc = s.on_a.automerge();
        let heads = doc.get_heads();
        let max_op = heads.iter().map(|h| doc.get_change_meta_by_hash(h).unwrap().max_op).max().unwrap();
        let own = doc.get_changes(&[]).iter().filter(|c| c.actor_id() == &s.a.actor).count() as u64;
        let actor = match which_actor { 0 => s.a.actor.clone(), 1 => s.b.actor.clone(), _ => genesis_actor(&id) };
        let start = (max_op as i64 + 1 + start_delta).max(1) as u64;
        let deps = if keep_deps { heads } else { Vec::new() };
        let hostile = change(&actor, own + seq_delta.max(1) - 1 + 1, start, deps, ops);
        let mut stored = s.stored.clone();
        let (_, report) = send(&mut stored, &id, &mut team_context(&s), &[hostile]);
        let reloaded = Automerge::load(&stored.save()).expect("a stored record always loads");
        if locked {
            prop_assert_eq!(reloaded.get_heads(), s.stored.get_heads());
            prop_assert!(report.updated.is_empty());
        }
        for (record, saved) in &report.saved {
            prop_assert!(Automerge::load(saved).is_ok(), "{} saved bytes load", record);
        }
        read_record(&id, &reloaded).expect("a stored record always reads");
    }
}

/// Changes under actors no device has, numbered as if they had earlier changes, are refused on
/// their actor before anything looks at the history; a device's change numbered past its own
/// latest is refused on its number.
#[test]
fn unknown_actor_and_malformed_change_for_made_up_lineages() {
    let s = scene(false);
    let id = s.on_a.record_id().to_string();
    let doc = s.on_a.automerge();
    let heads = doc.get_heads();
    let max_op = heads.iter().map(|h| doc.get_change_meta_by_hash(h).unwrap().max_op).max().unwrap();
    let made_up: Vec<Change> = (10..40u8).map(|n| change(&actor(n), 2, max_op + 1, heads.clone(), vec![])).collect();
    let mut stored = s.stored.clone();
    let (codes, _) = send(&mut stored, &id, &mut team_context(&s), &made_up);
    assert_eq!(codes.len(), made_up.len());
    assert!(codes.iter().all(|c| c == "unknown_actor"), "{codes:?}");
    let own = doc.get_changes(&[]).iter().filter(|c| c.actor_id() == &s.a.actor).count() as u64;
    let skipping = change(&s.a.actor, own + 5, max_op + 1, heads, vec![]);
    assert_eq!(send(&mut stored, &id, &mut team_context(&s), &[skipping]).0, ["malformed_change"]);
    loads_unchanged(&s.stored, &stored, &id);
}
