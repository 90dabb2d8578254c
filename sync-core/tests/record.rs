//! The record document: edits, typed read, input checks, conflicts, resolution, signing and lock.

mod common;

use common::*;
use schemas::{
    ChecklistResult, EntityRef, Measure, MeasureKind, PartySignature, PersonPresent, PersonRole, RecordStatus, Sample,
};
use sync_core::document::{Edit, EditError, RecordDocument, SignOutcome, genesis_change_hash};
use sync_core::input::Problem;

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

#[test]
fn two_devices_creating_one_record_share_its_genesis_and_never_duplicate_it() {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let mut on_a = new_record(1, &a);
    let mut on_b = RecordDocument::new(&record_id(1), b.actor.clone()).unwrap();
    on_b.apply(Edit::SetAddress("柳州市鹿寨县通江路749号".into()), T0).unwrap();
    let genesis = genesis_change_hash(&record_id(1));
    assert!(on_a.automerge().get_change_meta_by_hash(&genesis).is_some());
    assert!(on_b.automerge().get_change_meta_by_hash(&genesis).is_some());
    merge(&mut on_a, &on_b);
    let record = on_a.read().expect("one of every container after the merge");
    assert_eq!(record.header.task_id.as_deref(), Some(TASK));
    assert_eq!(record.header.address.as_deref(), Some("柳州市鹿寨县通江路749号"));
    assert!(record.conflicts.is_empty());
}

#[test]
fn every_edit_reaches_the_typed_view() {
    let officers = valid_officers();
    let a = device(1, &officers[0]);
    let mut doc = new_record(1, &a);
    let entity = EntityRef {
        entity_id: Some("E00001".into()),
        name: Some("柳州市泰信汽车零部件有限责任公司".into()),
        credit_code: Some("91450223416G3QBX69".into()),
        legal_representative: Some("蒙静军".into()),
        discharge_permit: Some("91450223416G3QBX69001X".into()),
        tier: Some("key".into()),
    };
    let person = PersonPresent {
        person_id: "P1".into(),
        name: "蒙静军".into(),
        role: PersonRole::LegalRepresentative,
        contact: Some("0772-1234567".into()),
        signature: PartySignature::NotYet,
    };
    let sample =
        Sample {
            sample_id: "S-2026-001".into(), description: "总排口废水".into(), taken_at_ms: Some(T0 + 600_000)
        };
    let edits = vec![
        Edit::SetStartedAt(T0),
        Edit::SetEndedAt(T0 + 3_600_000),
        Edit::SetAddress("广西壮族自治区柳州市鹿寨县通江路749号".into()),
        Edit::SetLocation { latitude: 24.297723, longitude: 109.637874 },
        Edit::SetConclusion("未发现环境违法行为。".into()),
        Edit::SetEntity(entity.clone()),
        Edit::SetRecusal { asked: true, answer: Some("不申请回避".into()) },
        Edit::SetChecklistItem { code: "FACILITY-RUNNING".into(), result: ChecklistResult::Compliant, note: None },
        Edit::SetChecklistItem {
            code: "LEDGER".into(),
            result: ChecklistResult::NonCompliant,
            note: Some("台账缺三月记录".into()),
        },
        Edit::AppendObservations("现场检查时，".into()),
        Edit::AppendObservations("废水处理设施正常运行。".into()),
        Edit::InsertObservations { index: 0, text: "一、".into() },
        Edit::DeleteObservations { index: 0, length: 2 },
        Edit::AddPhoto { sha256: sha(1), caption: "总排口".into() },
        Edit::CaptionPhoto { sha256: sha(1), caption: "总排口（西侧）".into() },
        Edit::AddOfficerPresent(officers[0].present(true)),
        Edit::AddOfficerPresent(officers[1].present(true)),
        Edit::AddPersonPresent(person.clone()),
        Edit::SetPartySignature {
            person_id: "P1".into(),
            signature: PartySignature::Signed { signed_at_ms: T0 + 3_500_000 },
        },
        Edit::AddSample(sample.clone()),
        Edit::AddMeasure(Measure { kind: MeasureKind::Photograph, note: "拍摄排口照片".into() }),
    ];
    for (index, edit) in edits.into_iter().enumerate() {
        doc.apply(edit, T0 + index as i64 * 1000).unwrap_or_else(|e| panic!("edit {index}: {e}"));
    }
    let record = doc.read().unwrap();
    assert_eq!(record.header.started_at_ms, Some(T0));
    assert_eq!(record.header.ended_at_ms, Some(T0 + 3_600_000));
    assert_eq!(record.header.latitude, Some(24.297723));
    assert_eq!(record.header.conclusion.as_deref(), Some("未发现环境违法行为。"));
    assert_eq!(record.entity, entity);
    assert_eq!(record.recusal.asked, Some(true));
    assert_eq!(record.checklist.len(), 2);
    assert_eq!(record.checklist[1].note.as_deref(), Some("台账缺三月记录"));
    assert_eq!(record.observations, "现场检查时，废水处理设施正常运行。");
    assert_eq!(record.photos[0].caption, "总排口（西侧）");
    assert_eq!(record.officers_present.len(), 2);
    assert_eq!(record.people_present[0].signature, PartySignature::Signed { signed_at_ms: T0 + 3_500_000 });
    assert_eq!(record.samples, vec![sample]);
    assert_eq!(record.measures[0].kind, MeasureKind::Photograph);
    assert_eq!(record.status, RecordStatus::Draft);
    assert!(record.conflicts.is_empty());
}

/// Bad input is a typed error naming the field and carrying the value, and changes nothing.
#[test]
fn bad_input_is_refused_with_the_value_and_leaves_the_document_unchanged() {
    let officers = valid_officers();
    let a = device(1, &officers[0]);
    let mut doc = new_record(1, &a);
    doc.apply(Edit::AppendObservations("abc".into()), T0).unwrap();
    let mut unknown_officer = officers[0].present(true);
    unknown_officer.officer_id = "O 1".into();
    let cases: Vec<(&str, Edit, &str, Problem)> = vec![
        (
            "time before 2000",
            Edit::SetStartedAt(0),
            "header/started_at_ms",
            Problem::OutOfRange { min: "946684800000".into(), max: "4102444800000".into() },
        ),
        (
            "latitude",
            Edit::SetLocation { latitude: 91.0, longitude: 0.0 },
            "header/latitude",
            Problem::OutOfRange { min: "-90".into(), max: "90".into() },
        ),
        (
            "longitude NaN",
            Edit::SetLocation { latitude: 0.0, longitude: f64::NAN },
            "header/longitude",
            Problem::OutOfRange { min: "-180".into(), max: "180".into() },
        ),
        ("empty address", Edit::SetAddress(" ".into()), "header/address", Problem::Empty),
        ("control character", Edit::SetConclusion("a\u{1b}b".into()), "header/conclusion", Problem::ControlCharacter),
        (
            "long conclusion",
            Edit::SetConclusion("字".repeat(4001)),
            "header/conclusion",
            Problem::TooLong { max: 4000, found: 4001 },
        ),
        (
            "credit code",
            Edit::SetEntity(EntityRef { credit_code: Some("91450223416G3QBX60".into()), ..Default::default() }),
            "entity/credit_code",
            Problem::NotCreditCode,
        ),
        (
            "checklist code",
            Edit::SetChecklistItem { code: "有设施".into(), result: ChecklistResult::Compliant, note: None },
            "checklist",
            Problem::NotAnIdentifier,
        ),
        ("photo hash", Edit::AddPhoto { sha256: "abc".into(), caption: String::new() }, "photos", Problem::NotSha256),
        (
            "photo hash uppercase",
            Edit::AddPhoto { sha256: "AB".repeat(32), caption: String::new() },
            "photos",
            Problem::NotSha256,
        ),
        ("officer id", Edit::AddOfficerPresent(unknown_officer), "officers_present", Problem::NotAnIdentifier),
        (
            "insert past the end",
            Edit::InsertObservations { index: 4, text: "x".into() },
            "observations",
            Problem::OutOfRange { min: "0".into(), max: "3".into() },
        ),
        (
            "delete past the end",
            Edit::DeleteObservations { index: 2, length: 2 },
            "observations",
            Problem::OutOfRange { min: "0".into(), max: "3".into() },
        ),
        (
            "observations too long",
            Edit::AppendObservations("x".repeat(100_000)),
            "observations",
            Problem::TooLong { max: 100_000, found: 100_003 },
        ),
    ];
    for (name, edit, field, problem) in cases {
        let heads = doc.automerge().get_heads();
        match doc.apply(edit, T0 + 1000) {
            Err(EditError::InvalidValue(invalid)) => {
                assert_eq!(invalid.field, field, "{name}");
                assert_eq!(invalid.problem, problem, "{name}");
                assert!(!invalid.value.is_empty() || name == "checklist code", "{name}: carries the value");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(doc.automerge().get_heads(), heads, "{name}: document unchanged");
    }
    let missing = doc.apply(Edit::CaptionPhoto { sha256: sha(9), caption: "x".into() }, T0);
    assert!(matches!(missing, Err(EditError::Missing { what: "photo", .. })), "{missing:?}");
    assert!(matches!(RecordDocument::new("not-a-uuid", a.actor.clone()), Err(EditError::InvalidValue(_))));
}

#[test]
fn two_officers_typing_into_the_observations_at_once_both_survive() {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let mut on_a = new_record(1, &a);
    on_a.apply(Edit::AppendObservations("现场检查。".into()), T0).unwrap();
    let mut on_b = replica(&on_a, &b);
    on_a.apply(Edit::AppendObservations("甲：废水设施运行。".into()), T0 + 1000).unwrap();
    on_b.apply(Edit::AppendObservations("乙：台账不全。".into()), T0 + 1000).unwrap();
    on_b.apply(Edit::InsertObservations { index: 0, text: "【乙】".into() }, T0 + 2000).unwrap();
    let mut merged_a = on_a.clone();
    merge(&mut merged_a, &on_b);
    merge(&mut on_b, &on_a);
    let text = merged_a.read().unwrap().observations;
    assert_eq!(text, on_b.read().unwrap().observations, "both replicas agree");
    for part in ["【乙】", "现场检查。", "甲：废水设施运行。", "乙：台账不全。"] {
        assert!(text.contains(part), "{part} kept in {text}");
    }
    assert!(merged_a.read().unwrap().conflicts.is_empty(), "text merges, it does not conflict");
}

#[test]
fn p1_concurrent_conclusions_are_a_conflict_that_blocks_signing_until_resolved() {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let certificates = vec![officers[0].certificate.clone(), officers[1].certificate.clone()];
    let mut on_a = new_record(1, &a);
    on_a.apply(Edit::SetStartedAt(T0), T0).unwrap();
    on_a.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    on_a.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    complete(&mut on_a, T0);
    let mut on_b = replica(&on_a, &b);
    let hash_a = on_a.apply(Edit::SetConclusion("合格".into()), T0 + 1000).unwrap().unwrap();
    let hash_b = on_b.apply(Edit::SetConclusion("责令改正".into()), T0 + 1000).unwrap().unwrap();
    // The same note written twice is no conflict; a different checklist note is one, but minor.
    on_a.apply(Edit::SetAddress("通江路749号".into()), T0 + 1000).unwrap();
    on_b.apply(Edit::SetAddress("通江路749号".into()), T0 + 1000).unwrap();
    merge(&mut on_a, &on_b);
    merge(&mut on_b, &on_a);

    let record = on_a.read().unwrap();
    assert_eq!(record, on_b.read().unwrap());
    assert_eq!(record.conflicts.len(), 1, "{:?}", record.conflicts);
    // The view shows Automerge's own winner.
    use automerge::ReadDoc;
    let header = on_a.automerge().get(automerge::ROOT, "header").unwrap().unwrap().1;
    let winner = on_a.automerge().get(&header, "conclusion").unwrap().unwrap().0.as_str().map(str::to_string);
    assert_eq!(record.header.conclusion, winner);
    let conflict = &record.conflicts[0];
    assert_eq!(conflict.field, "header/conclusion");
    assert!(conflict.legally_significant);
    let mut seen: Vec<(String, String, String)> = conflict
        .values
        .iter()
        .map(|v| (v.value.as_str().unwrap().to_string(), v.actor.clone(), v.change_hash.clone()))
        .collect();
    seen.sort();
    let mut expected = vec![
        ("合格".to_string(), a.actor.to_hex_string(), hash_a.to_string()),
        ("责令改正".to_string(), b.actor.to_hex_string(), hash_b.to_string()),
    ];
    expected.sort();
    assert_eq!(seen, expected);

    let refused = on_a.sign(&officers[0].id, T0 + 2000, &certificates);
    assert!(
        matches!(refused, Err(EditError::SigningRefused(ref r)) if r.rule == sync_core::rules::SigningRule::OpenConflict),
        "{refused:?}"
    );
    assert!(matches!(
        on_a.resolve("header/address", "x".into(), &officers[0].id, T0),
        Err(EditError::NoConflict { .. })
    ));

    on_a.resolve("header/conclusion", "责令改正".into(), &officers[0].id, T0 + 3000).unwrap();
    merge(&mut on_b, &on_a);
    let record = on_b.read().unwrap();
    assert!(record.conflicts.is_empty());
    assert_eq!(record.header.conclusion.as_deref(), Some("责令改正"));
    assert_eq!(record.resolutions[0].resolved_by_officer, officers[0].id);

    assert_eq!(on_a.sign(&officers[0].id, T0 + 4000, &certificates).unwrap(), SignOutcome::Signed);
    assert!(matches!(on_a.apply(Edit::SetConclusion("改".into()), T0 + 4500), Err(EditError::Signed)));
    merge(&mut on_b, &on_a);
    assert_eq!(on_b.sign(&officers[1].id, T0 + 5000, &certificates).unwrap(), SignOutcome::SignedAndLocked);
    assert_eq!(on_b.read().unwrap().status, RecordStatus::Locked);
    assert!(matches!(on_b.apply(Edit::AppendObservations("x".into()), T0 + 6000), Err(EditError::Locked)));
    assert!(matches!(on_b.sign(&officers[0].id, T0 + 6000, &certificates), Err(EditError::Locked)));
}

#[test]
fn p1_signing_alone_is_refused() {
    let officers = valid_officers();
    let a = device(1, &officers[0]);
    let mut doc = new_record(1, &a);
    doc.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    let heads = doc.automerge().get_heads();
    let refused = doc.sign(&officers[0].id, T0 + 1000, &[officers[0].certificate.clone()]);
    assert!(
        matches!(refused, Err(EditError::SigningRefused(ref r)) if r.rule == sync_core::rules::SigningRule::P1),
        "{refused:?}"
    );
    assert_eq!(doc.automerge().get_heads(), heads);
}

#[test]
fn a_minor_conflict_is_reported_but_does_not_block_signing() {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let certificates = vec![officers[0].certificate.clone(), officers[1].certificate.clone()];
    let mut on_a = new_record(1, &a);
    on_a.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    on_a.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    complete(&mut on_a, T0);
    let mut on_b = replica(&on_a, &b);
    let item = |note: &str| Edit::SetChecklistItem {
        code: "LEDGER".into(),
        result: ChecklistResult::Compliant,
        note: Some(note.into()),
    };
    on_a.apply(item("齐全"), T0 + 1000).unwrap();
    on_b.apply(item("基本齐全"), T0 + 1000).unwrap();
    merge(&mut on_a, &on_b);
    let record = on_a.read().unwrap();
    assert_eq!(record.conflicts.len(), 1);
    assert_eq!(record.conflicts[0].field, "checklist/LEDGER/note");
    assert!(!record.conflicts[0].legally_significant);
    assert_eq!(on_a.sign(&officers[0].id, T0 + 2000, &certificates).unwrap(), SignOutcome::Signed);
}

/// A checklist result decides what the record finds: compliant against non-compliant is a
/// legally significant conflict, and no one signs over it.
#[test]
fn open_conflict_on_a_checklist_result_blocks_signing() {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let certificates = vec![officers[0].certificate.clone(), officers[1].certificate.clone()];
    let mut on_a = new_record(1, &a);
    on_a.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    on_a.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    let mut on_b = replica(&on_a, &b);
    let item = |result| Edit::SetChecklistItem { code: "NO-BYPASS".into(), result, note: None };
    on_a.apply(item(ChecklistResult::Compliant), T0 + 1000).unwrap();
    on_b.apply(item(ChecklistResult::NonCompliant), T0 + 1000).unwrap();
    merge(&mut on_a, &on_b);
    let record = on_a.read().unwrap();
    assert_eq!(record.conflicts.len(), 1);
    assert_eq!(record.conflicts[0].field, "checklist/NO-BYPASS/result");
    assert!(record.conflicts[0].legally_significant);
    let refused = on_a.sign(&officers[0].id, T0 + 2000, &certificates).unwrap_err();
    assert!(refused.to_string().contains("open_conflict"), "{refused}");
}

#[test]
fn a_saved_record_loads_to_the_same_view() {
    let officers = valid_officers();
    let a = device(1, &officers[0]);
    let mut doc = new_record(1, &a);
    doc.apply(Edit::AppendObservations("现场检查".into()), T0).unwrap();
    let loaded = RecordDocument::load(doc.record_id(), &doc.save(), a.actor.clone()).unwrap();
    assert_eq!(loaded.read().unwrap(), doc.read().unwrap());
}

#[test]
fn p1_last_signatures_made_concurrently_leave_the_record_to_be_locked_explicitly() {
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let certificates = vec![officers[0].certificate.clone(), officers[1].certificate.clone()];
    let mut on_a = new_record(1, &a);
    on_a.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    on_a.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    complete(&mut on_a, T0);
    let mut on_b = replica(&on_a, &b);
    assert!(matches!(on_a.lock(T0 + 500), Err(EditError::NotAllSigned { missing }) if missing.len() == 2));
    assert_eq!(on_a.sign(&officers[0].id, T0 + 1000, &certificates).unwrap(), SignOutcome::Signed);
    assert_eq!(on_b.sign(&officers[1].id, T0 + 1000, &certificates).unwrap(), SignOutcome::Signed);
    merge(&mut on_a, &on_b);
    let record = on_a.read().unwrap();
    assert_eq!(record.signatures.len(), 2);
    assert_eq!(record.status, RecordStatus::Signing, "both signed, neither device locked");
    assert!(on_a.lock(T0 + 2000).unwrap().is_some());
    assert_eq!(on_a.read().unwrap().status, RecordStatus::Locked);
    assert_eq!(on_a.lock(T0 + 3000).unwrap(), None, "locking twice changes nothing");
}

/// The device refuses to sign or lock a record that lacks an item of a complete record, naming
/// each, as the server would (C7, P4).
#[test]
fn c7_p4_an_incomplete_record_is_neither_signed_nor_locked_on_the_device() {
    use sync_core::rules::{CompletenessPolicy, missing_items};
    let officers = valid_officers();
    let (a, b) = (device(1, &officers[0]), device(2, &officers[1]));
    let certificates = vec![officers[0].certificate.clone(), officers[1].certificate.clone()];
    let mut on_a = new_record(1, &a);
    on_a.apply(Edit::SetStartedAt(T0), T0).unwrap();
    on_a.apply(Edit::AddOfficerPresent(officers[0].present(true)), T0).unwrap();
    on_a.apply(Edit::AddOfficerPresent(officers[1].present(true)), T0).unwrap();
    let party = PersonPresent {
        person_id: "P1".into(),
        name: "韦某".into(),
        role: PersonRole::LegalRepresentative,
        contact: None,
        signature: PartySignature::NotYet,
    };
    on_a.apply(Edit::AddPersonPresent(party), T0).unwrap();
    let missing = |result: Result<SignOutcome, EditError>| match result {
        Err(EditError::SigningRefused(refusal)) if refusal.rule.as_str() == "incomplete_record" => {
            missing_items(&refusal.detail)
        }
        other => panic!("{other:?}"),
    };
    let heads = on_a.automerge().get_heads();
    assert_eq!(
        missing(on_a.sign(&officers[0].id, T0 + 1000, &certificates)),
        ["header/ended_at_ms", "recusal/asked", "recusal/answer", "people_present/P1/signature", "header/conclusion"]
    );
    assert_eq!(on_a.automerge().get_heads(), heads, "nothing written");
    complete(&mut on_a, T0 + 500);
    assert_eq!(missing(on_a.sign(&officers[0].id, T0 + 1000, &certificates)), ["people_present/P1/signature"]);
    let refusal = Edit::SetPartySignature {
        person_id: "P1".into(),
        signature: PartySignature::Refused { note: "拒绝签字".into() },
    };
    on_a.apply(refusal, T0 + 600).unwrap();
    // Where the bureau asks a witness for every refusal, one must have signed.
    let strict = CompletenessPolicy { witness_for_every_refusal: true };
    let refused = on_a.sign_under(&officers[0].id, T0 + 1000, &certificates, &strict);
    assert_eq!(missing(refused), ["people_present/witness"]);
    // Under the default, the refusal noted is enough.
    let mut on_b = replica(&on_a, &b);
    assert_eq!(on_a.sign(&officers[0].id, T0 + 1000, &certificates).unwrap(), SignOutcome::Signed);
    assert_eq!(on_b.sign(&officers[1].id, T0 + 1000, &certificates).unwrap(), SignOutcome::Signed);
    merge(&mut on_a, &on_b);
    // The lock asks the same of the record as each signature.
    match on_a.lock_under(T0 + 2000, &strict) {
        Err(EditError::SigningRefused(refusal)) => {
            assert_eq!(missing_items(&refusal.detail), ["people_present/witness"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(on_a.lock(T0 + 2000).unwrap().is_some());
    assert_eq!(on_a.read().unwrap().status, RecordStatus::Locked);
}

#[test]
fn expected_string_found_text_a_text_object_where_a_string_belongs_is_named() {
    use automerge::ReadDoc;
    use automerge::transaction::{CommitOptions, Transactable};
    let officers = valid_officers();
    let a = device(1, &officers[0]);
    let mut doc = new_record(1, &a);
    let header = doc.automerge().get(automerge::ROOT, "header").unwrap().unwrap().1;
    doc.automerge_mut()
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(T0),
            |tx| {
                let text = tx.put_object(&header, "conclusion", automerge::ObjType::Text)?;
                tx.splice_text(&text, 0, 0, "合格")?;
                Ok(())
            },
        )
        .unwrap();
    let error = doc.read().unwrap_err();
    assert_eq!(error.code(), "expected_string_found_text");
    assert_eq!(
        error.to_string(),
        "expected_string_found_text: header/conclusion holds a text object where a plain string belongs"
    );
    // A map where a value belongs is named for what it is.
    let mut doc = new_record(2, &a);
    let header = doc.automerge().get(automerge::ROOT, "header").unwrap().unwrap().1;
    doc.automerge_mut()
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(T0),
            |tx| tx.put_object(&header, "ended_at_ms", automerge::ObjType::Map).map(|_| ()),
        )
        .unwrap();
    assert_eq!(doc.read().unwrap_err().code(), "expected_scalar_found_object");
}

#[test]
fn only_the_genesis_itself_passes_as_genesis() {
    use automerge::transaction::{CommitOptions, Transactable};
    use sync_core::document::{genesis, genesis_actor, is_genesis_change};
    let id = record_id(1);
    let change = genesis(&id).get_changes(&[]).remove(0);
    assert!(is_genesis_change(&id, &change));
    assert_eq!(change.hash(), genesis_change_hash(&id));
    assert!(!is_genesis_change(&record_id(2), &change), "another record's genesis");
    // The genesis actor, time and message, with the record locked from the start.
    let mut forged = automerge::Automerge::new().with_actor(genesis_actor(&id));
    forged
        .transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(0).with_message("genesis"),
            |tx| {
                tx.put(automerge::ROOT, "schema", automerge::ScalarValue::Uint(schemas::RECORD_SCHEMA_VERSION))?;
                tx.put(automerge::ROOT, "record_id", id.as_str())?;
                tx.put(automerge::ROOT, "locked", true)?;
                Ok(())
            },
        )
        .unwrap();
    assert!(!is_genesis_change(&id, &forged.get_changes(&[]).remove(0)));
}
