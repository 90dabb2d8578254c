//! Change validation: one table case per rejection reason, each checking that the stored
//! document keeps nothing of a refused change and that the outcome does not depend on the
//! order the changes arrived in.

mod common;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Change, ROOT, ReadDoc, ScalarValue};
use common::*;
use schemas::{OfficerSignature, RejectionReason};
use sync_core::document::{Edit, RecordDocument};
use sync_core::validate::{ValidationContext, validate};

/// Changes `device_doc` has that `stored` does not.
fn new_changes(stored: &RecordDocument, device_doc: &RecordDocument) -> Vec<Change> {
    device_doc.automerge().get_changes(&stored.automerge().get_heads())
}

/// Validates `incoming` against `stored`, forwards and backwards, and checks that the accepted
/// changes apply and the refused ones are absent. Returns the reason codes in causal order
/// (`None` for accepted).
fn check(stored: &RecordDocument, incoming: Vec<Change>, context: &ValidationContext) -> Vec<Option<RejectionReason>> {
    let forward = validate(stored.record_id(), stored.automerge(), incoming.clone(), context);
    let mut reversed = incoming.clone();
    reversed.reverse();
    let backward = validate(stored.record_id(), stored.automerge(), reversed, context);
    let hashes = |changes: &[Change]| changes.iter().map(Change::hash).collect::<Vec<_>>();
    assert_eq!(hashes(&forward.accepted), hashes(&backward.accepted), "order-independent accepted set");
    assert_eq!(
        forward.refused.iter().map(|r| (r.change.hash(), r.reason.clone())).collect::<Vec<_>>(),
        backward.refused.iter().map(|r| (r.change.hash(), r.reason.clone())).collect::<Vec<_>>(),
        "order-independent refusals"
    );
    let mut after = stored.automerge().clone();
    after.apply_changes(forward.accepted.clone()).unwrap();
    for refusal in &forward.refused {
        assert!(after.get_change_meta_by_hash(&refusal.change.hash()).is_none(), "refused change absent");
    }
    sync_core::document::read_record(stored.record_id(), &after).expect("the accepted changes give a valid record");
    let mut outcome: Vec<(usize, Option<RejectionReason>)> = Vec::new();
    for (index, change) in incoming.iter().enumerate() {
        let reason = forward.refused.iter().find(|r| r.change.hash() == change.hash()).map(|r| r.reason.clone());
        outcome.push((index, reason));
    }
    outcome.into_iter().map(|(_, reason)| reason).collect()
}

struct Scene {
    a: Device,
    b: Device,
    stored: RecordDocument,
}

/// A record created by officer A's device and already stored on the server, with both officers
/// present, complete enough to sign.
fn scene() -> Scene {
    let mut s = incomplete_scene();
    complete(&mut s.stored, T0);
    s
}

/// [`scene`] before its end time, recusal question and conclusion are filled.
fn incomplete_scene() -> Scene {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let mut stored = new_record(1, &a);
    stored.apply(Edit::SetStartedAt(T0), T0).unwrap();
    stored.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    stored.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    Scene { a, b, stored }
}

/// The stable code of a reason, or "accepted".
fn code(reason: &Option<RejectionReason>) -> String {
    match reason {
        None => "accepted".into(),
        Some(reason) => serde_json::to_value(reason).unwrap()["code"].as_str().unwrap().to_string(),
    }
}

fn codes(outcome: &[Option<RejectionReason>]) -> Vec<String> {
    outcome.iter().map(code).collect()
}

#[test]
fn a_whole_record_from_a_team_device_is_accepted_from_genesis() {
    let s = scene();
    let empty = automerge::Automerge::new();
    let incoming = s.stored.automerge().get_changes(&[]);
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let outcome = validate(s.stored.record_id(), &empty, incoming.clone(), &context);
    assert_eq!(outcome.accepted.len(), incoming.len());
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
}

#[test]
fn unknown_actor() {
    let s = scene();
    let stranger = device(9, &s.a.officer);
    let mut on_stranger = replica(&s.stored, &stranger);
    on_stranger.apply(Edit::SetConclusion("x".into()), T0 + 1000).unwrap();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    assert_eq!(codes(&check(&s.stored, new_changes(&s.stored, &on_stranger), &context)), ["unknown_actor"]);
}

#[test]
fn actor_not_bound_to_the_sending_device() {
    let s = scene();
    let mut on_b = replica(&s.stored, &s.b);
    on_b.apply(Edit::SetConclusion("x".into()), T0 + 1000).unwrap();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let outcome = check(&s.stored, new_changes(&s.stored, &on_b), &context);
    assert_eq!(
        outcome,
        [Some(RejectionReason::ActorNotBoundToDevice {
            actor_device_id: "D002".into(),
            sending_device_id: "D001".into()
        })]
    );
}

#[test]
fn p2_p3_officer_not_certified_at_the_change_time() {
    let s = scene();
    for officer in [officer_with("suspended", false), officer_with("active", true)] {
        let c = device(3, &officer);
        let mut on_c = replica(&s.stored, &c);
        on_c.apply(Edit::SetConclusion("x".into()), T0 + 1000).unwrap();
        let context = context(&c, &[&s.a, &s.b, &c], &[&s.a.officer, &s.b.officer, &officer]);
        let outcome = check(&s.stored, new_changes(&s.stored, &on_c), &context);
        let expected_status = if officer.status == "suspended" { "suspended" } else { "expired" };
        assert_eq!(
            outcome,
            [Some(RejectionReason::OfficerNotCertified {
                officer_id: officer.id.clone(),
                at_ms: T0 + 1000,
                certificate_status: expected_status.into()
            })]
        );
    }
}

/// Work dated before a suspension: kept when it arrives before the suspension is in force; held
/// for a reviewer when it arrives after (its date is only the device's claim); accepted once a
/// reviewer accepted it. Work dated after the suspension is refused.
#[test]
fn p3_work_dated_before_a_suspension_is_kept_before_it_and_held_for_review_after() {
    let s = scene();
    let mut officer = s.b.officer.clone();
    officer.certificate.status_history.push(schemas::CertificateStatusChange {
        at_ms: T0 + 5000,
        status: schemas::CertificateStatus::Suspended,
        reason: Some("停职".into()),
    });
    let b = device(2, &officer);
    let mut on_b = replica(&s.stored, &b);
    on_b.apply(Edit::AppendObservations("停职前".into()), T0 + 1000).unwrap();
    let before_suspension = new_changes(&s.stored, &on_b);
    on_b.apply(Edit::AppendObservations("停职后".into()), T0 + 6000).unwrap();
    let mut context = context(&b, &[&s.a, &b], &[&s.a.officer, &officer]);

    context.now_ms = T0 + 2000;
    assert_eq!(codes(&check(&s.stored, before_suspension.clone(), &context)), ["accepted"]);

    context.now_ms = T0 + DAY;
    let outcome = check(&s.stored, new_changes(&s.stored, &on_b), &context);
    assert_eq!(codes(&outcome), ["held_for_review", "depends_on_refused_change"]);
    assert_eq!(
        outcome[0],
        Some(RejectionReason::HeldForReview {
            officer_id: officer.id.clone(),
            claimed_at_ms: T0 + 1000,
            suspended_at_ms: T0 + 5000,
            certificate_status: "suspended".into(),
        })
    );

    context.reviewed.insert(before_suspension[0].hash());
    assert_eq!(
        codes(&check(&s.stored, new_changes(&s.stored, &on_b), &context)),
        ["accepted", "officer_not_certified"]
    );
}

#[test]
fn officer_not_on_the_team() {
    let s = scene();
    let outsider = valid_officers()[5].clone();
    let c = device(3, &outsider);
    let mut on_c = replica(&s.stored, &c);
    on_c.apply(Edit::SetConclusion("x".into()), T0 + 1000).unwrap();
    let context = context(&c, &[&s.a, &s.b, &c], &[&s.a.officer, &s.b.officer]);
    assert_eq!(
        check(&s.stored, new_changes(&s.stored, &on_c), &context),
        [Some(RejectionReason::OfficerNotOnTeam { officer_id: outsider.id.clone(), task_id: None })]
    );
}

#[test]
fn unknown_task() {
    let s = scene();
    let mut context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    context.teams.clear();
    let mut on_a = replica(&s.stored, &s.a);
    on_a.apply(Edit::SetConclusion("x".into()), T0 + 1000).unwrap();
    assert_eq!(codes(&check(&s.stored, new_changes(&s.stored, &on_a), &context)), ["unknown_task"]);
}

#[test]
fn timestamp_too_far_in_the_future() {
    let s = scene();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let mut on_a = replica(&s.stored, &s.a);
    let future = context.now_ms + context.max_clock_skew_ms + 1;
    on_a.apply(Edit::SetConclusion("x".into()), future).unwrap();
    assert_eq!(
        check(&s.stored, new_changes(&s.stored, &on_a), &context),
        [Some(RejectionReason::TimestampInFuture { timestamp_ms: future, now_ms: T0 + DAY, max_skew_ms: 300_000 })]
    );
    let mut within = replica(&s.stored, &s.a);
    within.apply(Edit::SetConclusion("x".into()), future - 1).unwrap();
    assert_eq!(codes(&check(&s.stored, new_changes(&s.stored, &within), &context)), ["accepted"]);
}

/// Writes raw Automerge operations as device A, bypassing the record's own checks.
fn raw_write(doc: &mut RecordDocument, at_ms: i64, write: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) {
    doc.automerge_mut()
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(at_ms),
            |tx| {
                write(tx);
                Ok(())
            },
        )
        .unwrap();
}

fn map(doc: &RecordDocument, key: &str) -> automerge::ObjId {
    doc.automerge().get(ROOT, key).unwrap().unwrap().1
}

#[test]
fn a_change_that_breaks_the_schema() {
    let s = scene();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    type Write = Box<dyn Fn(&mut automerge::transaction::Transaction<'_>, &RecordDocument)>;
    let (schema, operation) = ("schema_violation", "operation_not_allowed");
    let cases: Vec<(&str, &str, Write)> = vec![
        ("time as text", schema, Box::new(|tx, d| tx.put(map(d, "header"), "started_at_ms", "yesterday").unwrap())),
        (
            "unknown checklist result",
            schema,
            Box::new(|tx, d| tx.put(map(d, "checklist_results"), "LEDGER", "maybe").unwrap()),
        ),
        ("bad photo key", schema, Box::new(|tx, d| tx.put(map(d, "photos"), "not-a-hash", "").unwrap())),
        ("officer entry not JSON", schema, Box::new(|tx, d| tx.put(map(d, "officers_present"), "O0009", "{").unwrap())),
        ("container replaced", operation, Box::new(|tx, _| tx.put(ROOT, "header", "gone").unwrap())),
        ("container deleted", operation, Box::new(|tx, _| tx.delete(ROOT, "signatures").unwrap())),
        ("record id changed", operation, Box::new(|tx, _| tx.put(ROOT, "record_id", "other").unwrap())),
        ("schema version changed", operation, Box::new(|tx, _| tx.put(ROOT, "schema", ScalarValue::Uint(99)).unwrap())),
        ("task changed", schema, Box::new(|tx, d| tx.put(map(d, "header"), "task_id", "T0002").unwrap())),
        ("latitude out of range", schema, Box::new(|tx, d| tx.put(map(d, "header"), "latitude", 120.0).unwrap())),
    ];
    for (name, expected, write) in cases {
        let mut on_a = replica(&s.stored, &s.a);
        raw_write(&mut on_a, T0 + 1000, |tx| write(tx, &s.stored));
        let outcome = check(&s.stored, new_changes(&s.stored, &on_a), &context);
        assert_eq!(codes(&outcome), [expected], "{name}: {outcome:?}");
    }
}

#[test]
fn a_change_depending_on_a_refused_change_is_refused_and_an_independent_one_accepted() {
    let s = scene();
    let context = context_for_both(&s);
    let mut on_a = replica(&s.stored, &s.a);
    on_a.apply(Edit::SetConclusion("x".into()), context.now_ms + DAY).unwrap(); // refused: in the future
    on_a.apply(Edit::AppendObservations("after".into()), T0 + 2000).unwrap(); // builds on it
    // Officer B's concurrent change, in the same batch, builds only on what is stored.
    let mut on_b = replica(&s.stored, &s.b);
    on_b.apply(Edit::SetAddress("通江路".into()), T0 + 500).unwrap();
    let mut incoming = new_changes(&s.stored, &on_a);
    incoming.extend(new_changes(&s.stored, &on_b));
    let outcome = check(&s.stored, incoming, &context);
    assert_eq!(codes(&outcome), ["timestamp_in_future", "depends_on_refused_change", "accepted"]);
}

/// A context in which devices A and B both send (as when changes were relayed by the server).
fn context_for_both(s: &Scene) -> ValidationContext {
    let mut context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    context.actors.values_mut().for_each(|binding| binding.device_id = "D001".into());
    context
}

#[test]
fn a_change_building_on_a_change_refused_earlier_is_refused() {
    let s = scene();
    let mut context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let mut on_a = replica(&s.stored, &s.a);
    let first = on_a.apply(Edit::SetConclusion("x".into()), T0 + 1000).unwrap().unwrap();
    on_a.apply(Edit::SetConclusion("y".into()), T0 + 2000).unwrap();
    context.refused.insert(first, RejectionReason::RecordLocked);
    let incoming: Vec<Change> = new_changes(&s.stored, &on_a).into_iter().filter(|c| c.hash() != first).collect();
    let outcome = validate(s.stored.record_id(), s.stored.automerge(), incoming, &context);
    assert!(outcome.accepted.is_empty());
    assert_eq!(outcome.refused[0].reason, RejectionReason::DependsOnRefusedChange { dependency: first.to_string() });
}

fn signed_scene() -> (Scene, RecordDocument) {
    let s = scene();
    let certificates = vec![s.a.officer.certificate.clone(), s.b.officer.certificate.clone()];
    let mut signed = replica(&s.stored, &s.a);
    signed.sign(&s.a.officer.id, T0 + 1000, &certificates).unwrap();
    (s, signed)
}

#[test]
fn record_signed_allows_only_signatures() {
    let (s, signed) = signed_scene();
    let context = context(&s.b, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let mut on_b = replica(&signed, &s.b);
    raw_write(&mut on_b, T0 + 2000, |tx| tx.put(map(&signed, "header"), "conclusion", "改").unwrap());
    assert_eq!(codes(&check(&signed, new_changes(&signed, &on_b), &context)), ["record_signed"]);

    let mut on_b = replica(&signed, &s.b);
    let certificates = vec![s.a.officer.certificate.clone(), s.b.officer.certificate.clone()];
    on_b.sign(&s.b.officer.id, T0 + 2000, &certificates).unwrap();
    assert_eq!(codes(&check(&signed, new_changes(&signed, &on_b), &context)), ["accepted"]);
}

#[test]
fn record_locked_refuses_everything() {
    let (s, signed) = signed_scene();
    let certificates = vec![s.a.officer.certificate.clone(), s.b.officer.certificate.clone()];
    let mut locked = replica(&signed, &s.b);
    locked.sign(&s.b.officer.id, T0 + 2000, &certificates).unwrap();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let mut on_a = replica(&locked, &s.a);
    raw_write(&mut on_a, T0 + 3000, |tx| {
        tx.put(map(&locked, "header"), "conclusion", "改").unwrap();
    });
    raw_write(&mut on_a, T0 + 3000, |tx| tx.put(ROOT, "locked", false).unwrap());
    assert_eq!(
        codes(&check(&locked, new_changes(&locked, &on_a), &context)),
        ["record_locked", "operation_not_allowed"]
    );
}

#[test]
fn p1_p2_forged_or_premature_signatures_violate_the_signing_rules() {
    let s = scene();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let signature = |officer: &Officer, number: &str| {
        serde_json::to_string(&OfficerSignature {
            officer_id: officer.id.clone(),
            certificate_number: number.into(),
            signed_at_ms: T0 + 1000,
        })
        .unwrap()
    };
    let lone = {
        let mut lone = new_record(2, &s.a);
        lone.apply(Edit::AddOfficerPresent(s.a.officer.present(true)), T0).unwrap();
        lone
    };
    type Case<'a> = (&'a str, &'a RecordDocument, String, String, bool, &'a str);
    let cases: Vec<Case> = vec![
        (
            "signs for another officer",
            &s.stored,
            s.b.officer.id.clone(),
            signature(&s.b.officer, &s.b.officer.certificate_number),
            false,
            "signer",
        ),
        (
            "P1 alone",
            &lone,
            s.a.officer.id.clone(),
            signature(&s.a.officer, &s.a.officer.certificate_number),
            false,
            "P1",
        ),
        ("P2 wrong certificate", &s.stored, s.a.officer.id.clone(), signature(&s.a.officer, "GX0"), false, "P2"),
        (
            "locked with one signature",
            &s.stored,
            s.a.officer.id.clone(),
            signature(&s.a.officer, &s.a.officer.certificate_number),
            true,
            "lock",
        ),
    ];
    for (name, stored, key, entry, lock, rule) in cases {
        let mut on_a = replica(stored, &s.a);
        raw_write(&mut on_a, T0 + 1000, |tx| {
            tx.put(map(stored, "signatures"), key.as_str(), entry.as_str()).unwrap();
            if lock {
                tx.put(ROOT, "locked", true).unwrap();
            }
        });
        let outcome = check(stored, new_changes(stored, &on_a), &context);
        match &outcome[..] {
            [Some(RejectionReason::SigningRuleViolated { rule: found, .. })] => assert_eq!(found, rule, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// P4: a recusal binds whenever it was made: the recused officer's next change to a record of
/// that entity is refused, on a draft and on a signed record alike; the teammate writes on.
#[test]
fn p4_a_recused_officer_writes_nothing_to_a_record_of_that_entity() {
    let s = scene();
    let mut context = context(&s.b, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    context.task_entities.insert(TASK.into(), "E00001".into());
    let mut on_b = replica(&s.stored, &s.b);
    on_b.apply(Edit::AppendObservations("回避前".into()), T0 + 1000).unwrap();
    assert_eq!(codes(&check(&s.stored, new_changes(&s.stored, &on_b), &context)), ["accepted"]);
    context.recusals.insert((s.b.officer.id.clone(), "E00001".into()));
    assert_eq!(
        check(&s.stored, new_changes(&s.stored, &on_b), &context),
        [Some(RejectionReason::OfficerRecused { officer_id: s.b.officer.id.clone(), entity_id: "E00001".into() })]
    );
    // A recusal from another entity binds nothing here.
    context.recusals.clear();
    context.recusals.insert((s.b.officer.id.clone(), "E00002".into()));
    assert_eq!(codes(&check(&s.stored, new_changes(&s.stored, &on_b), &context)), ["accepted"]);
}

/// The server holds the record to its task: an officer named as present is on the team, and the
/// entity is the task's, whatever the device checked.
#[test]
fn a_record_names_only_its_teams_officers_and_its_tasks_entity() {
    let s = scene();
    let mut context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    context.task_entities.insert(TASK.into(), "E00001".into());
    let outsider = valid_officers()[5].clone();
    let mut on_a = replica(&s.stored, &s.a);
    on_a.apply(Edit::AddOfficerPresent(outsider.present(true)), T0 + 1000).unwrap();
    assert_eq!(
        check(&s.stored, new_changes(&s.stored, &on_a), &context),
        [Some(RejectionReason::OfficerPresentNotOnTeam { officer_id: outsider.id.clone() })]
    );
    let entity = |id: &str| schemas::EntityRef { entity_id: Some(id.into()), ..Default::default() };
    let mut on_a = replica(&s.stored, &s.a);
    on_a.apply(Edit::SetEntity(entity("E00999")), T0 + 1000).unwrap();
    assert_eq!(
        check(&s.stored, new_changes(&s.stored, &on_a), &context),
        [Some(RejectionReason::EntityNotOfTask { entity_id: "E00999".into() })]
    );
    let mut on_a = replica(&s.stored, &s.a);
    on_a.apply(Edit::SetEntity(entity("E00001")), T0 + 1000).unwrap();
    assert_eq!(codes(&check(&s.stored, new_changes(&s.stored, &on_a), &context)), ["accepted"]);
}

/// A device that skips the completeness check: its signatures and its lock over a record that
/// lacks an item are refused, the refusal naming each missing item (C7, P4); completed, the same
/// writes are accepted.
#[test]
fn c7_p4_a_hostile_device_signing_and_locking_an_incomplete_record_is_refused() {
    let s = incomplete_scene();
    let context = context_for_both(&s);
    let signature = |officer: &Officer, at: i64| {
        serde_json::to_string(&OfficerSignature {
            officer_id: officer.id.clone(),
            certificate_number: officer.certificate_number.clone(),
            signed_at_ms: at,
        })
        .unwrap()
    };
    let detail = |items: &[&str]| format!("missing: {}", items.join(", "));
    let everything = ["header/ended_at_ms", "recusal/asked", "recusal/answer", "header/conclusion"];
    let party = |signature| {
        Edit::AddPersonPresent(schemas::PersonPresent {
            person_id: "P1".into(),
            name: "韦某".into(),
            role: schemas::PersonRole::LegalRepresentative,
            contact: None,
            signature,
        })
    };
    type Prepare = Box<dyn Fn(&mut RecordDocument)>;
    let cases: Vec<(&str, Prepare, Option<String>)> = vec![
        ("nothing filled", Box::new(|_| {}), Some(detail(&everything))),
        (
            "the party has not signed",
            Box::new(move |r| {
                complete(r, T0);
                r.apply(party(schemas::PartySignature::NotYet), T0).unwrap();
            }),
            Some(detail(&["people_present/P1/signature"])),
        ),
        (
            "the party's refusal noted",
            Box::new(move |r| {
                complete(r, T0);
                r.apply(party(schemas::PartySignature::Refused { note: "拒绝签字".into() }), T0).unwrap();
            }),
            None,
        ),
        ("complete", Box::new(|r| complete(r, T0)), None),
    ];
    for (name, prepare, expected) in cases {
        let mut stored = s.stored.clone();
        prepare(&mut stored);
        // Both signatures and the lock in one change each, written as raw operations.
        let mut on_a = replica(&stored, &s.a);
        raw_write(&mut on_a, T0 + 1000, |tx| {
            tx.put(map(&stored, "signatures"), s.a.officer.id.as_str(), signature(&s.a.officer, T0 + 1000)).unwrap();
        });
        let mut on_b = replica(&on_a, &s.b);
        raw_write(&mut on_b, T0 + 2000, |tx| {
            tx.put(map(&stored, "signatures"), s.b.officer.id.as_str(), signature(&s.b.officer, T0 + 2000)).unwrap();
            tx.put(ROOT, "locked", true).unwrap();
        });
        let outcome = check(&stored, new_changes(&stored, &on_b), &context);
        let expected: Vec<Option<RejectionReason>> = match &expected {
            None => vec![None, None],
            Some(detail) => vec![
                Some(RejectionReason::SigningRuleViolated { rule: "incomplete_record".into(), detail: detail.clone() }),
                Some(RejectionReason::DependsOnRefusedChange {
                    dependency: on_a.automerge().get_heads()[0].to_string(),
                }),
            ],
        };
        assert_eq!(outcome, expected, "{name}");
    }
    // A lock alone, over signatures the record holds, is judged by the bureau's policy as it
    // stands: where every refusal now needs a witness, a record signed before is not locked.
    let mut stored = s.stored.clone();
    complete(&mut stored, T0);
    stored.apply(party(schemas::PartySignature::Refused { note: "拒绝签字".into() }), T0).unwrap();
    let certificates = vec![s.a.officer.certificate.clone(), s.b.officer.certificate.clone()];
    let mut signed = replica(&stored, &s.a);
    signed.sign(&s.a.officer.id, T0 + 1000, &certificates).unwrap();
    let mut on_b = replica(&stored, &s.b);
    on_b.sign(&s.b.officer.id, T0 + 1000, &certificates).unwrap();
    merge(&mut signed, &on_b);
    let mut locked = replica(&signed, &s.a);
    locked.lock(T0 + 2000).unwrap().unwrap();
    let mut strict = context.clone();
    strict.completeness.witness_for_every_refusal = true;
    assert_eq!(
        check(&signed, new_changes(&signed, &locked), &strict),
        [Some(RejectionReason::SigningRuleViolated {
            rule: "incomplete_record".into(),
            detail: "missing: people_present/witness".into()
        })]
    );
    assert_eq!(codes(&check(&signed, new_changes(&signed, &locked), &context)), ["accepted"]);
}

/// Checklist codes are those of the task's matter: an unknown code is refused, as a result or a
/// note, whatever the device checked; a task whose matter is in no matter list takes any code;
/// a code the record held before the list changed stays.
#[test]
fn checklist_codes_are_the_task_matters_checklist() {
    let s = scene();
    let item = |code: &str, note: Option<&str>| Edit::SetChecklistItem {
        code: code.into(),
        result: schemas::ChecklistResult::Compliant,
        note: note.map(str::to_string),
    };
    let unknown = |code: &str| Some(RejectionReason::UnknownChecklistItem { item_code: code.into() });
    let checklist = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>();
    let mut held = replica(&s.stored, &s.a);
    held.apply(item("NOISE", None), T0 + 500).unwrap();
    type Case<'a> = (&'a str, &'a RecordDocument, Option<Vec<&'a str>>, Edit, Option<RejectionReason>);
    let cases: Vec<Case> = vec![
        ("on the checklist", &s.stored, Some(vec!["LEDGER", "NO-BYPASS"]), item("LEDGER", None), None),
        ("not on it", &s.stored, Some(vec!["LEDGER", "NO-BYPASS"]), item("NOISE", None), unknown("NOISE")),
        ("a note alone", &s.stored, Some(vec!["LEDGER"]), item("NOISE", Some("厂界噪声")), unknown("NOISE")),
        ("an empty checklist", &s.stored, Some(vec![]), item("LEDGER", None), unknown("LEDGER")),
        ("no matter list", &s.stored, None, item("ANYTHING-WELL-FORMED", None), None),
        ("held before the list changed", &held, Some(vec!["LEDGER"]), item("NOISE", Some("复核")), None),
    ];
    for (name, stored, codes, edit, expected) in cases {
        let mut context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
        if let Some(codes) = codes {
            context.checklists.insert(TASK.into(), checklist(&codes));
        }
        let mut on_a = replica(stored, &s.a);
        on_a.apply(edit, T0 + 1000).unwrap();
        assert_eq!(check(stored, new_changes(stored, &on_a), &context), [expected], "{name}");
    }
}

/// A change that builds on nothing claims to be a genesis: another record's genesis, or one made
/// up under any actor, is `not_genesis`, not an unknown actor.
#[test]
fn not_genesis_a_genesis_that_is_not_the_records_own_is_named() {
    let s = scene();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let other = sync_core::document::genesis(&record_id(9)).get_changes(&[]).remove(0);
    let mut made_up = automerge::Automerge::new().with_actor(actor(77));
    made_up
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(T0),
            |tx| tx.put(ROOT, "locked", true),
        )
        .unwrap();
    let made_up = made_up.get_changes(&[]).remove(0);
    for (name, change) in [("another record's genesis", other), ("made up", made_up)] {
        assert_eq!(codes(&check(&s.stored, vec![change], &context)), ["not_genesis"], "{name}");
    }
}

/// P2: the record states a party's refusal of the inspection only for officers present who showed
/// no certificate; otherwise the change is refused (`inspection_refusal_unfounded`).
#[test]
fn p2_a_refusal_of_the_inspection_stands_only_where_no_certificate_was_shown() {
    let s = scene();
    let context = context(&s.a, &[&s.a, &s.b], &[&s.a.officer, &s.b.officer]);
    let refusal = |officer: &str| schemas::InspectionRefusal {
        at_ms: T0 + 500,
        officer_ids: vec![officer.to_string()],
        statement: Some("未出示执法证，拒绝检查".into()),
    };
    // Both showed their certificates: a refusal on that ground is unfounded.
    let mut on_a = replica(&s.stored, &s.a);
    on_a.apply(Edit::SetInspectionRefused(refusal(&s.a.officer.id)), T0 + 1000).unwrap();
    assert_eq!(
        check(&s.stored, new_changes(&s.stored, &on_a), &context),
        [Some(RejectionReason::InspectionRefusalUnfounded { officer_id: s.a.officer.id.clone() })]
    );
    // A did not show: the refusal is recorded, and read back as the record's field.
    let mut on_a = replica(&s.stored, &s.a);
    on_a.apply(Edit::AddOfficerPresent(s.a.officer.present(false)), T0 + 1000).unwrap();
    on_a.apply(Edit::SetInspectionRefused(refusal(&s.a.officer.id)), T0 + 1500).unwrap();
    assert_eq!(codes(&check(&s.stored, new_changes(&s.stored, &on_a), &context)), ["accepted", "accepted"]);
    assert_eq!(on_a.read().unwrap().header.inspection_refused, Some(refusal(&s.a.officer.id)));
    // An empty list of officers is no refusal at all: refused on the device before it is written.
    let mut on_a = replica(&s.stored, &s.a);
    let empty = schemas::InspectionRefusal { at_ms: T0, officer_ids: vec![], statement: None };
    assert!(on_a.apply(Edit::SetInspectionRefused(empty), T0 + 1000).is_err());
}
