//! Reading a record: the typed view with its open conflicts, the quick reads of its task,
//! status and signatures, and the schema every stored value is checked against.

use std::collections::BTreeMap;

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use schemas::{
    ChecklistItem, ChecklistResult, ConflictResolution, ConflictingValue, EntityRef, FieldConflict, InspectionRecord,
    InspectionRefusal, Measure, MeasureKind, OfficerPresent, OfficerSignature, PartySignature, PersonPresent, PhotoRef,
    RECORD_SCHEMA_VERSION, RecordHeader, RecordStatus, Recusal, Sample,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RecordDocument;
use crate::input::{self, InvalidValue, Problem, invalid};

/// Why a document could not be read as a record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("missing {0}")]
    Missing(String),
    /// A genesis container made twice, concurrently: two objects under one key.
    #[error("{field}: concurrent objects under one key")]
    DuplicateObject { field: String },
    /// An object where a plain value belongs (below the genesis every value is a scalar): most
    /// often a text object where a plain string belongs, as Automerge's JavaScript API writes
    /// strings by default. The message starts with the error's [`SchemaError::code`].
    #[error("{}: {field} holds a {found} object where a plain {} belongs", self.code(), if *found == "text" { "string" } else { "value" })]
    ObjectWhereScalar {
        field: String,
        /// The object's type: `text`, `map`, `list` or `table`.
        found: &'static str,
    },
    #[error("schema version {found} is not {expected}")]
    Version { found: String, expected: u64 },
    #[error("record id {found:?} is not {expected:?}")]
    RecordId { found: String, expected: String },
    #[error(transparent)]
    Value(#[from] InvalidValue),
}

impl SchemaError {
    /// A stable machine-readable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            SchemaError::Missing(_) => "missing_field",
            SchemaError::DuplicateObject { .. } => "concurrent_objects",
            SchemaError::ObjectWhereScalar { found: "text", .. } => "expected_string_found_text",
            SchemaError::ObjectWhereScalar { .. } => "expected_scalar_found_object",
            SchemaError::Version { .. } => "schema_version",
            SchemaError::RecordId { .. } => "record_id",
            SchemaError::Value(_) => "invalid_value",
        }
    }
}

/// The name of an object type, as [`SchemaError::ObjectWhereScalar`] reports it.
fn object_kind(kind: ObjType) -> &'static str {
    match kind {
        ObjType::Text => "text",
        ObjType::Map => "map",
        ObjType::List => "list",
        ObjType::Table => "table",
    }
}

pub(super) fn check_entity(entity: &EntityRef) -> Result<(), InvalidValue> {
    if let Some(id) = &entity.entity_id {
        input::identifier("entity/entity_id", id)?;
    }
    if let Some(name) = &entity.name {
        input::short_text("entity/name", name)?;
    }
    if let Some(code) = &entity.credit_code {
        input::credit_code("entity/credit_code", code)?;
    }
    if let Some(person) = &entity.legal_representative {
        input::short_text("entity/legal_representative", person)?;
    }
    if let Some(permit) = &entity.discharge_permit {
        input::identifier("entity/discharge_permit", permit)?;
    }
    if let Some(tier) = &entity.tier {
        input::identifier("entity/tier", tier)?;
    }
    Ok(())
}

pub(super) fn check_officer(officer: &OfficerPresent) -> Result<(), InvalidValue> {
    input::identifier("officers_present", &officer.officer_id)?;
    let field = format!("officers_present/{}", officer.officer_id);
    input::short_text(&field, &officer.name)?;
    input::identifier(&field, &officer.certificate_number)
}

/// Most officers a party's refusal of the inspection names.
pub const MAX_REFUSAL_OFFICERS: usize = 32;

/// The values of a party's refusal of the inspection (P2): its time, 1 to
/// [`MAX_REFUSAL_OFFICERS`] officer ids, and the party's statement.
pub(super) fn check_refusal(refusal: &InspectionRefusal) -> Result<(), InvalidValue> {
    let field = "header/inspection_refused";
    input::time_ms(field, refusal.at_ms)?;
    let found = refusal.officer_ids.len();
    if found == 0 {
        return Err(invalid(field, "", Problem::Empty));
    }
    if found > MAX_REFUSAL_OFFICERS {
        return Err(invalid(field, found, Problem::TooMany { max: MAX_REFUSAL_OFFICERS, found }));
    }
    for officer in &refusal.officer_ids {
        input::identifier(field, officer)?;
    }
    match &refusal.statement {
        Some(statement) => input::long_text(field, statement, input::MAX_LONG_TEXT),
        None => Ok(()),
    }
}

pub(super) fn check_person(person: &PersonPresent) -> Result<(), InvalidValue> {
    input::identifier("people_present", &person.person_id)?;
    let field = format!("people_present/{}", person.person_id);
    input::short_text(&field, &person.name)?;
    if let Some(contact) = &person.contact {
        input::short_text(&field, contact)?;
    }
    check_party_signature(&field, &person.signature)
}

pub(super) fn check_party_signature(field: &str, signature: &PartySignature) -> Result<(), InvalidValue> {
    match signature {
        PartySignature::NotYet => Ok(()),
        PartySignature::Signed { signed_at_ms } => input::time_ms(field, *signed_at_ms),
        PartySignature::Refused { note } => input::long_text(field, note, input::MAX_LONG_TEXT),
    }
}

pub(super) fn check_sample(sample: &Sample) -> Result<(), InvalidValue> {
    input::identifier("samples", &sample.sample_id)?;
    let field = format!("samples/{}", sample.sample_id);
    input::short_text(&field, &sample.description)?;
    if let Some(t) = sample.taken_at_ms {
        input::time_ms(&field, t)?;
    }
    Ok(())
}

/// The object id of a genesis container; a missing or duplicated container is a schema error.
pub(super) fn map_in<R: ReadDoc>(doc: &R, key: &str) -> Result<ObjId, SchemaError> {
    let all = doc.get_all(ROOT, key).map_err(|_| SchemaError::Missing(key.to_string()))?;
    match all.as_slice() {
        [(Value::Object(_), id)] => Ok(id.clone()),
        [] | [(Value::Scalar(_), _)] => Err(SchemaError::Missing(key.to_string())),
        _ => Err(SchemaError::DuplicateObject { field: key.to_string() }),
    }
}

/// The snake_case name a unit enumeration serializes to.
pub fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("unit enumerations serialize to strings"),
    }
}

pub(super) fn from_json<T: DeserializeOwned>(
    container: &str,
    key: &str,
    value: &ScalarValue,
) -> Result<T, InvalidValue> {
    let field = format!("{container}/{key}");
    let ScalarValue::Str(text) = value else {
        return Err(invalid(&field, value, Problem::WrongType { expected: "a JSON string" }));
    };
    serde_json::from_str(text).map_err(|_| invalid(&field, text, Problem::WrongType { expected: "a JSON entry" }))
}

/// The signature entries of a record, as stored (what the transparency log records): officer id to the JSON string stored under
/// `signatures/<officer>` (the value Automerge shows when two were written concurrently).
pub fn signature_entries(doc: &Automerge) -> BTreeMap<String, String> {
    let Ok(Some((Value::Object(ObjType::Map), signatures))) = doc.get(ROOT, "signatures") else {
        return BTreeMap::new();
    };
    doc.keys(&signatures)
        .filter_map(|officer| match doc.get(&signatures, officer.as_str()) {
            Ok(Some((Value::Scalar(value), _))) => match value.as_ref() {
                ScalarValue::Str(text) => Some((officer, text.to_string())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The task a record belongs to, read without reading the whole record.
pub fn read_task_id(doc: &Automerge) -> Option<String> {
    let header = map_in(doc, "header").ok()?;
    match doc.get(&header, "task_id") {
        Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_string),
        _ => None,
    }
}

/// Reads whether the record is a draft, being signed, or locked, without reading all of it.
/// Locking is one-way: when devices locked concurrently, any `true` locks.
pub fn read_status(doc: &Automerge) -> Result<RecordStatus, SchemaError> {
    let locked = doc.get_all(ROOT, "locked").map_err(|_| SchemaError::Missing("locked".into()))?;
    status_of(doc, &locked, map_in(doc, "signatures"))
}

/// The status given every value of the root's `locked` and the signatures container.
fn status_of(
    doc: &Automerge,
    locked_values: &[(Value<'_>, ObjId)],
    signatures: Result<ObjId, SchemaError>,
) -> Result<RecordStatus, SchemaError> {
    let mut locked = false;
    for (value, _) in locked_values {
        match value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Boolean(b) => locked |= *b,
                other => {
                    return Err(invalid("locked", other, Problem::WrongType { expected: "a boolean" }).into());
                }
            },
            Value::Object(kind) => {
                return Err(SchemaError::ObjectWhereScalar { field: "locked".into(), found: object_kind(*kind) });
            }
        }
    }
    if locked_values.is_empty() {
        return Err(SchemaError::Missing("locked".into()));
    }
    if locked {
        return Ok(RecordStatus::Locked);
    }
    Ok(if doc.length(&signatures?) > 0 { RecordStatus::Signing } else { RecordStatus::Draft })
}

/// Every value of every key of a map, read in one pass (a key holding concurrent values is
/// looked up again for all of them); the winner is the last of each list, as with `get_all`.
fn all_values<'a>(doc: &'a Automerge, map: &ObjId) -> BTreeMap<String, Vec<(Value<'a>, ObjId)>> {
    doc.map_range(map, ..)
        .map(|item| {
            let all = if item.conflict {
                doc.get_all(map, item.key.as_ref()).unwrap_or_default()
            } else {
                vec![(item.value.clone().into_value(), item.id())]
            };
            (item.key.into_owned(), all)
        })
        .collect()
}

/// The object id of a genesis container among the root's values (see [`map_in`]).
fn container_in(root: &BTreeMap<String, Vec<(Value<'_>, ObjId)>>, key: &str) -> Result<ObjId, SchemaError> {
    match root.get(key).map(Vec::as_slice) {
        Some([(Value::Object(_), id)]) => Ok(id.clone()),
        None | Some([] | [(Value::Scalar(_), _)]) => Err(SchemaError::Missing(key.to_string())),
        Some(_) => Err(SchemaError::DuplicateObject { field: key.to_string() }),
    }
}

/// The schema of one scalar field: what a value under `container/key` must be.
pub(super) fn check_scalar(container: &str, key: &str, value: &ScalarValue) -> Result<(), InvalidValue> {
    let field = format!("{container}/{key}");
    let text = || match value {
        ScalarValue::Str(s) => Ok(s.to_string()),
        other => Err(invalid(&field, other, Problem::WrongType { expected: "text" })),
    };
    match (container, key) {
        ("header", "task_id") => input::identifier(&field, &text()?),
        ("header", "started_at_ms" | "ended_at_ms") => match value {
            ScalarValue::Int(t) => input::time_ms(&field, *t),
            other => Err(invalid(&field, other, Problem::WrongType { expected: "an integer" })),
        },
        ("header", "latitude" | "longitude") => {
            let limit = if key == "latitude" { 90.0 } else { 180.0 };
            match value {
                ScalarValue::F64(v) => input::coordinate(&field, *v, -limit, limit),
                other => Err(invalid(&field, other, Problem::WrongType { expected: "a number" })),
            }
        }
        ("header", "address") => input::short_text(&field, &text()?),
        ("header", "conclusion") => input::long_text(&field, &text()?, input::MAX_LONG_TEXT),
        ("header", "inspection_refused") => check_refusal(&from_json(container, key, value)?),
        ("entity", _) => check_entity(
            &entity_field(key, text()?)
                .ok_or_else(|| invalid(&field, key, Problem::UnknownEnumeration { expected: &ENTITY_FIELDS }))?,
        ),
        ("recusal", "asked") => match value {
            ScalarValue::Boolean(_) => Ok(()),
            other => Err(invalid(&field, other, Problem::WrongType { expected: "a boolean" })),
        },
        ("recusal", "answer") => input::long_text(&field, &text()?, input::MAX_LONG_TEXT),
        ("checklist_results", code) => {
            input::identifier("checklist", code)?;
            parse_enum::<ChecklistResult>(&field, &text()?, &CHECKLIST_RESULTS).map(|_| ())
        }
        ("checklist_notes", code) => {
            input::identifier("checklist", code)?;
            input::long_text(&field, &text()?, input::MAX_LONG_TEXT)
        }
        ("photos", sha) => {
            input::sha256_hex("photos", sha)?;
            input::long_text(&field, &text()?, input::MAX_SHORT_TEXT)
        }
        ("officers_present", id) => {
            let officer: OfficerPresent = from_json(container, key, value)?;
            if officer.officer_id != id {
                return Err(invalid(
                    &field,
                    officer.officer_id,
                    Problem::WrongType { expected: "the key's officer id" },
                ));
            }
            check_officer(&officer)
        }
        ("people_present", id) => {
            let person: PersonPresent = from_json(container, key, value)?;
            if person.person_id != id {
                return Err(invalid(&field, person.person_id, Problem::WrongType { expected: "the key's person id" }));
            }
            check_person(&person)
        }
        ("samples", id) => {
            let sample: Sample = from_json(container, key, value)?;
            if sample.sample_id != id {
                return Err(invalid(&field, sample.sample_id, Problem::WrongType { expected: "the key's sample id" }));
            }
            check_sample(&sample)
        }
        ("measures", kind) => {
            parse_enum::<MeasureKind>(&field, kind, &MEASURE_KINDS)?;
            input::long_text(&field, &text()?, input::MAX_LONG_TEXT)
        }
        ("signatures", id) => {
            let signature: OfficerSignature = from_json(container, key, value)?;
            if signature.officer_id != id {
                return Err(invalid(
                    &field,
                    signature.officer_id,
                    Problem::WrongType { expected: "the key's officer id" },
                ));
            }
            input::identifier(&field, &signature.certificate_number)?;
            input::time_ms(&field, signature.signed_at_ms)
        }
        ("resolutions", path) => {
            check_field_path(&field, path)?;
            if let ScalarValue::Str(text) = value
                && text.chars().count() > MAX_RESOLUTION_CHARS
            {
                let found = text.chars().count();
                return Err(invalid(&field, text, Problem::TooLong { max: MAX_RESOLUTION_CHARS, found }));
            }
            let resolution: ConflictResolution = from_json(container, key, value)?;
            if resolution.field != path {
                return Err(invalid(&field, resolution.field, Problem::WrongType { expected: "the key's field" }));
            }
            input::identifier(&field, &resolution.resolved_by_officer)?;
            input::time_ms(&field, resolution.resolved_at_ms)
        }
        _ => Err(invalid(&field, value, Problem::WrongType { expected: "a known field" })),
    }
}

/// Longest resolution entry, in characters: the longest field value with room for its framing.
const MAX_RESOLUTION_CHARS: usize = 2 * input::MAX_LONG_TEXT;

/// The containers a resolution may settle a field of, as field paths name them.
const RESOLVABLE: [&str; 9] =
    ["header", "entity", "recusal", "checklist", "photos", "officers_present", "people_present", "samples", "measures"];

/// A field path as conflicts and resolutions name it: `container/key`, or
/// `checklist/<code>/result` and `checklist/<code>/note`.
fn check_field_path(field: &str, path: &str) -> Result<(), InvalidValue> {
    let unknown = || invalid(field, path, Problem::UnknownEnumeration { expected: &RESOLVABLE });
    let (container, key) = path.split_once('/').ok_or_else(unknown)?;
    match container {
        "checklist" => match key.rsplit_once('/') {
            Some((code, "result" | "note")) => input::identifier(field, code),
            _ => Err(unknown()),
        },
        "photos" => input::sha256_hex(field, key),
        other if RESOLVABLE.contains(&other) => input::identifier(field, key),
        _ => Err(unknown()),
    }
}

/// Checks one scalar written under `container/key` against the record's schema, as reading the
/// record does: for checking a change's every write, visible in the record or not.
pub(crate) fn check_field(container: &str, key: &str, value: &ScalarValue) -> Result<(), InvalidValue> {
    check_scalar(container, key, value)
}

const ENTITY_FIELDS: [&str; 6] =
    ["entity_id", "name", "credit_code", "legal_representative", "discharge_permit", "tier"];
const CHECKLIST_RESULTS: [&str; 4] = ["compliant", "non_compliant", "not_applicable", "not_checked"];
const MEASURE_KINDS: [&str; 9] = [
    "photograph",
    "audio_video_recording",
    "copy_documents",
    "questioning",
    "sampling",
    "order_to_correct",
    "order_to_stop",
    "seal_or_seizure",
    "other",
];

fn entity_field(key: &str, value: String) -> Option<EntityRef> {
    let mut entity = EntityRef::default();
    let slot = match key {
        "entity_id" => &mut entity.entity_id,
        "name" => &mut entity.name,
        "credit_code" => &mut entity.credit_code,
        "legal_representative" => &mut entity.legal_representative,
        "discharge_permit" => &mut entity.discharge_permit,
        "tier" => &mut entity.tier,
        _ => return None,
    };
    *slot = Some(value);
    Some(entity)
}

fn parse_enum<T: DeserializeOwned>(
    field: &str,
    text: &str,
    expected: &'static [&'static str],
) -> Result<T, InvalidValue> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| invalid(field, text, Problem::UnknownEnumeration { expected }))
}

/// A scalar as the JSON shown in conflicts.
fn scalar_to_json(value: &ScalarValue) -> serde_json::Value {
    match value {
        ScalarValue::Str(s) => serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .filter(|v| v.is_object())
            .unwrap_or_else(|| serde_json::Value::String(s.to_string())),
        ScalarValue::Int(i) => (*i).into(),
        ScalarValue::Uint(u) => (*u).into(),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f).map(Into::into).unwrap_or(serde_json::Value::Null),
        ScalarValue::Boolean(b) => (*b).into(),
        ScalarValue::Null => serde_json::Value::Null,
        other => serde_json::Value::String(other.to_string()),
    }
}

fn is_legally_significant(container: &str, key: &str) -> bool {
    // A checklist result (compliant against non-compliant) decides what the record finds.
    matches!(container, "entity" | "measures" | "officers_present" | "checklist_results")
        || (container == "header"
            && matches!(key, "started_at_ms" | "ended_at_ms" | "conclusion" | "task_id" | "inspection_refused"))
}

/// The path shown for a field in conflicts and resolutions.
fn field_path(container: &str, key: &str) -> String {
    match container {
        "checklist_results" => format!("checklist/{key}/result"),
        "checklist_notes" => format!("checklist/{key}/note"),
        _ => format!("{container}/{key}"),
    }
}

/// The scalar maps of a record: every container except the observations text.
const SCALAR_MAPS: [&str; 12] = [
    "header",
    "entity",
    "recusal",
    "checklist_results",
    "checklist_notes",
    "photos",
    "officers_present",
    "people_present",
    "samples",
    "measures",
    "signatures",
    "resolutions",
];

impl RecordDocument {
    /// The typed view of the record, with its open conflicts.
    pub fn read(&self) -> Result<InspectionRecord, SchemaError> {
        read_record(self.record_id(), self.automerge())
    }
}

/// Reads a whole document as a record: every value checked, every conflict listed.
pub fn read_record(record_id: &str, doc: &Automerge) -> Result<InspectionRecord, SchemaError> {
    let root = all_values(doc, &ROOT);
    let winner = |key: &str| root.get(key).and_then(|all| all.last()).map(|(value, _)| value);
    match winner("schema") {
        Some(Value::Scalar(s)) if s.as_ref() == &ScalarValue::Uint(RECORD_SCHEMA_VERSION) => {}
        Some(value) => {
            return Err(SchemaError::Version { found: value.to_string(), expected: RECORD_SCHEMA_VERSION });
        }
        None => return Err(SchemaError::Missing("schema".into())),
    }
    match winner("record_id") {
        Some(Value::Scalar(s)) if s.as_str() == Some(record_id) => {}
        Some(value) => {
            return Err(SchemaError::RecordId { found: value.to_string(), expected: record_id.to_string() });
        }
        None => return Err(SchemaError::Missing("record_id".into())),
    }
    let status = status_of(doc, root.get("locked").map_or(&[][..], Vec::as_slice), container_in(&root, "signatures"))?;

    // Winning value of every key of every scalar map, plus the conflicts.
    let mut maps: BTreeMap<&str, BTreeMap<String, ScalarValue>> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for container in SCALAR_MAPS {
        let map = container_in(&root, container)?;
        let mut values = BTreeMap::new();
        for (key, all) in all_values(doc, &map) {
            let mut scalars = Vec::with_capacity(all.len());
            for (value, id) in &all {
                match value {
                    Value::Scalar(s) => {
                        check_scalar(container, &key, s)?;
                        scalars.push((s.as_ref().clone(), id.clone()));
                    }
                    Value::Object(kind) => {
                        return Err(SchemaError::ObjectWhereScalar {
                            field: field_path(container, &key),
                            found: object_kind(*kind),
                        });
                    }
                }
            }
            if scalars.iter().any(|(s, _)| s != &scalars[0].0) {
                let mut values: Vec<ConflictingValue> = scalars
                    .iter()
                    .map(|(s, id)| ConflictingValue {
                        value: scalar_to_json(s),
                        actor: match id {
                            automerge::ObjId::Id(_, actor, _) => actor.to_hex_string(),
                            automerge::ObjId::Root => String::new(),
                        },
                        change_hash: doc.hash_for_opid(id).map(|h| h.to_string()).unwrap_or_default(),
                    })
                    .collect();
                values.sort_by(|a, b| a.change_hash.cmp(&b.change_hash));
                conflicts.push(FieldConflict {
                    field: field_path(container, &key),
                    legally_significant: is_legally_significant(container, &key),
                    values,
                });
            }
            // Automerge's deterministic winner among concurrent values, the one `get` returns, is
            // the last of `get_all` (values come in operation-id order): no second lookup.
            if let Some((winner, _)) = scalars.last() {
                values.insert(key, winner.clone());
            }
        }
        maps.insert(container, values);
    }
    conflicts.sort_by(|a, b| a.field.cmp(&b.field));

    let text = |container: &str, key: &str| maps[container].get(key).and_then(|s| s.as_str()).map(str::to_string);
    let int = |container: &str, key: &str| match maps[container].get(key) {
        Some(ScalarValue::Int(i)) => Some(*i),
        _ => None,
    };
    let float = |key: &str| match maps["header"].get(key) {
        Some(ScalarValue::F64(f)) => Some(*f),
        _ => None,
    };
    let entries = |container: &str| -> Result<Vec<(String, ScalarValue)>, SchemaError> {
        Ok(maps[container].iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    };

    let observations_id = container_in(&root, "observations")?;
    let observations = doc.text(&observations_id).map_err(|_| SchemaError::Missing("observations".into()))?;
    input::long_text("observations", &observations, input::MAX_OBSERVATIONS)?;

    let mut checklist: BTreeMap<String, ChecklistItem> = BTreeMap::new();
    for (code, value) in entries("checklist_results")? {
        let result =
            parse_enum(&field_path("checklist_results", &code), value.as_str().unwrap_or(""), &CHECKLIST_RESULTS)?;
        checklist.entry(code.clone()).or_insert(ChecklistItem { code, result: None, note: None }).result = Some(result);
    }
    for (code, value) in entries("checklist_notes")? {
        checklist.entry(code.clone()).or_insert(ChecklistItem { code, result: None, note: None }).note =
            value.as_str().map(str::to_string);
    }

    Ok(InspectionRecord {
        schema_version: RECORD_SCHEMA_VERSION,
        record_id: record_id.to_string(),
        header: RecordHeader {
            task_id: text("header", "task_id"),
            started_at_ms: int("header", "started_at_ms"),
            ended_at_ms: int("header", "ended_at_ms"),
            address: text("header", "address"),
            latitude: float("latitude"),
            longitude: float("longitude"),
            conclusion: text("header", "conclusion"),
            inspection_refused: text("header", "inspection_refused").and_then(|json| serde_json::from_str(&json).ok()),
        },
        entity: EntityRef {
            entity_id: text("entity", "entity_id"),
            name: text("entity", "name"),
            credit_code: text("entity", "credit_code"),
            legal_representative: text("entity", "legal_representative"),
            discharge_permit: text("entity", "discharge_permit"),
            tier: text("entity", "tier"),
        },
        officers_present: entries("officers_present")?
            .iter()
            .map(|(k, v)| from_json("officers_present", k, v))
            .collect::<Result<_, _>>()?,
        people_present: entries("people_present")?
            .iter()
            .map(|(k, v)| from_json("people_present", k, v))
            .collect::<Result<_, _>>()?,
        recusal: Recusal {
            asked: match maps["recusal"].get("asked") {
                Some(ScalarValue::Boolean(b)) => Some(*b),
                _ => None,
            },
            answer: text("recusal", "answer"),
        },
        checklist: checklist.into_values().collect(),
        observations,
        photos: entries("photos")?
            .into_iter()
            .map(|(sha256, caption)| PhotoRef { sha256, caption: caption.as_str().unwrap_or("").to_string() })
            .collect(),
        samples: entries("samples")?.iter().map(|(k, v)| from_json("samples", k, v)).collect::<Result<_, _>>()?,
        measures: {
            let mut measures: Vec<Measure> = entries("measures")?
                .into_iter()
                .map(|(kind, note)| {
                    Ok(Measure {
                        kind: parse_enum(&field_path("measures", &kind), &kind, &MEASURE_KINDS)?,
                        note: note.as_str().unwrap_or("").to_string(),
                    })
                })
                .collect::<Result<_, InvalidValue>>()?;
            measures.sort_by_key(|m| m.kind);
            measures
        },
        signatures: entries("signatures")?
            .iter()
            .map(|(k, v)| from_json("signatures", k, v))
            .collect::<Result<_, _>>()?,
        resolutions: entries("resolutions")?
            .iter()
            .map(|(k, v)| from_json("resolutions", k, v))
            .collect::<Result<_, _>>()?,
        status,
        conflicts,
    })
}
