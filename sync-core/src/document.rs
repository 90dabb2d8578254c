//! The inspection record as one Automerge document.
//!
//! # Layout
//!
//! Every replica starts from the same *genesis* change: made with an actor id
//! and a time derived from the record id alone, so two devices that create
//! the same record make byte-identical genesis changes and never duplicate
//! the document's objects. The genesis creates every container:
//!
//! ```text
//! ROOT
//! ├── schema            uint   RECORD_SCHEMA_VERSION
//! ├── record_id         str
//! ├── header            map    task_id, started_at_ms, ended_at_ms, address, latitude, longitude, conclusion
//! ├── entity            map    entity_id, name, credit_code, legal_representative, discharge_permit, tier
//! ├── recusal           map    asked, answer
//! ├── checklist_results map    item code -> result
//! ├── checklist_notes   map    item code -> note
//! ├── observations      text   merged character by character
//! ├── photos            map    sha256 -> caption
//! ├── officers_present  map    officer id -> JSON entry
//! ├── people_present    map    person id -> JSON entry
//! ├── samples           map    sample id -> JSON entry
//! ├── measures          map    measure kind -> note
//! ├── signatures        map    officer id -> JSON entry
//! ├── resolutions       map    field path -> JSON entry
//! └── locked            bool
//! ```
//!
//! Below the genesis, every value is a scalar. A compound entry (an officer
//! present, a signature) is one JSON string written whole: nested objects
//! created concurrently under one key would shadow each other, while two
//! scalars under one key are a visible conflict. That is the point: concurrent
//! writes to one field are never resolved silently; [`RecordDocument::read`]
//! reports them, and [`RecordDocument::resolve`] settles one explicitly.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use schemas::{
    Certificate, ChecklistItem, ChecklistResult, ConflictResolution, ConflictingValue, EntityRef, FieldConflict,
    InspectionRecord, Measure, MeasureKind, OfficerPresent, OfficerSignature, PartySignature, PersonPresent, PhotoRef,
    RECORD_SCHEMA_VERSION, RecordHeader, RecordStatus, Recusal, Sample,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::input::{self, InvalidValue, Problem, invalid};
use crate::rules::{self, SigningRefusal};

/// The containers made by the genesis change, with their types.
pub(crate) const CONTAINERS: [(&str, ObjType); 13] = [
    ("header", ObjType::Map),
    ("entity", ObjType::Map),
    ("recusal", ObjType::Map),
    ("checklist_results", ObjType::Map),
    ("checklist_notes", ObjType::Map),
    ("observations", ObjType::Text),
    ("photos", ObjType::Map),
    ("officers_present", ObjType::Map),
    ("people_present", ObjType::Map),
    ("samples", ObjType::Map),
    ("measures", ObjType::Map),
    ("signatures", ObjType::Map),
    ("resolutions", ObjType::Map),
];

const GENESIS_DOMAIN: &[u8] = b"fieldsync/record-genesis/v1\0";

/// Most entries of each map container: checked by the device before it writes a new key, and by
/// validation on every change, so that no device can grow a record without bound.
pub const MAX_ENTRIES: [(&str, usize); 9] = [
    ("checklist_results", 500),
    ("checklist_notes", 500),
    ("photos", 500),
    ("officers_present", 20),
    ("people_present", 100),
    ("samples", 200),
    ("measures", 9),
    ("signatures", 20),
    ("resolutions", 2_000),
];

/// The most entries a map container may hold ([`MAX_ENTRIES`]).
pub fn max_entries(container: &str) -> Option<usize> {
    MAX_ENTRIES.iter().find(|(name, _)| *name == container).map(|(_, max)| *max)
}

/// The first map container of `doc` holding more entries than [`MAX_ENTRIES`] allows, with its
/// count.
pub fn entries_over_limit<R: ReadDoc>(doc: &R) -> Option<(&'static str, usize, usize)> {
    MAX_ENTRIES.iter().find_map(|(container, max)| {
        let map = map_in(doc, container).ok()?;
        let found = doc.length(&map);
        (found > *max).then_some((*container, *max, found))
    })
}

/// The actor id of a record's genesis change: derived from the record id, never a device's.
pub fn genesis_actor(record_id: &str) -> ActorId {
    let digest = Sha256::new().chain_update(GENESIS_DOMAIN).chain_update(record_id.as_bytes()).finalize();
    ActorId::from(&digest[..16])
}

/// The genesis document of a record: the same bytes on every device.
pub fn genesis(record_id: &str) -> Automerge {
    let mut doc = Automerge::new().with_actor(genesis_actor(record_id));
    doc.transact_with::<_, _, AutomergeError, _>(
        |_| CommitOptions::default().with_time(0).with_message("genesis"),
        |tx| {
            tx.put(ROOT, "schema", ScalarValue::Uint(RECORD_SCHEMA_VERSION))?;
            tx.put(ROOT, "record_id", record_id)?;
            for (key, kind) in CONTAINERS {
                tx.put_object(ROOT, key, kind)?;
            }
            tx.put(ROOT, "locked", false)?;
            Ok(())
        },
    )
    .expect("the genesis change writes only fixed keys");
    doc
}

/// The hash of a record's genesis change, which every validator accepts without an actor binding.
pub fn genesis_change_hash(record_id: &str) -> ChangeHash {
    genesis(record_id).get_heads()[0]
}

/// Whether `change` is the genesis change of `record_id`, decided without building the genesis
/// document: the genesis actor, first of its sequence, no dependencies, time 0, and exactly the
/// genesis operations. A change that passes is byte for byte the genesis (same hash).
pub fn is_genesis_change(record_id: &str, change: &automerge::Change) -> bool {
    use automerge::legacy::{Key, ObjectId, OpType};
    if change.actor_id() != &genesis_actor(record_id)
        || change.seq() != 1
        || !change.deps().is_empty()
        || change.timestamp() != 0
        || change.message() != Some("genesis")
    {
        return false;
    }
    let Ok(expanded) = crate::change_check::decode(change) else { return false };
    let mut expected: Vec<(&str, Option<ScalarValue>, Option<ObjType>)> = vec![
        ("schema", Some(ScalarValue::Uint(RECORD_SCHEMA_VERSION)), None),
        ("record_id", Some(ScalarValue::Str(record_id.into())), None),
    ];
    expected.extend(CONTAINERS.iter().map(|(key, kind)| (*key, None, Some(*kind))));
    expected.push(("locked", Some(ScalarValue::Boolean(false)), None));
    expanded.operations.len() == expected.len()
        && expanded.operations.iter().zip(&expected).all(|(op, (key, value, kind))| {
            let right_place = op.obj == ObjectId::Root
                && op.pred.is_empty()
                && !op.insert
                && matches!(&op.key, Key::Map(k) if k == key);
            let right_action = match (&op.action, value, kind) {
                (OpType::Put(found), Some(value), None) => found == value,
                (OpType::Make(found), None, Some(kind)) => found == kind,
                _ => false,
            };
            right_place && right_action
        })
}

/// A new record id: a UUIDv7 from the device's clock and ten random bytes, both given by the caller.
pub fn new_record_id(unix_ms: u64, random: [u8; 10]) -> String {
    uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid().to_string()
}

/// Why an edit was not made. The document is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    InvalidValue(#[from] InvalidValue),
    #[error("the record is locked: every officer present has signed")]
    Locked,
    #[error("the record has been signed: only further signatures may be added")]
    Signed,
    #[error("signing refused: {0}")]
    SigningRefused(#[from] SigningRefusal),
    #[error("officers present have not all signed: {missing:?} missing")]
    NotAllSigned { missing: Vec<String> },
    #[error("no open conflict on {field}")]
    NoConflict { field: String },
    #[error("unknown field {field}")]
    UnknownField { field: String },
    #[error("no {what} {key} in the record")]
    Missing { what: &'static str, key: String },
    #[error("the document is not a valid record: {0}")]
    Schema(#[from] SchemaError),
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
}

/// Why a document could not be read as a record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("missing {0}")]
    Missing(String),
    #[error("{field}: concurrent objects under one key")]
    DuplicateObject { field: String },
    #[error("schema version {found} is not {expected}")]
    Version { found: String, expected: u64 },
    #[error("record id {found:?} is not {expected:?}")]
    RecordId { found: String, expected: String },
    #[error(transparent)]
    Value(#[from] InvalidValue),
}

/// A change to a record, as an officer makes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    SetStartedAt(i64),
    SetEndedAt(i64),
    SetAddress(String),
    SetLocation {
        latitude: f64,
        longitude: f64,
    },
    SetConclusion(String),
    /// Sets every field of the entity that is `Some`.
    SetEntity(EntityRef),
    SetRecusal {
        asked: bool,
        answer: Option<String>,
    },
    SetChecklistItem {
        code: String,
        result: ChecklistResult,
        note: Option<String>,
    },
    /// Inserts text at a character index of the observations.
    InsertObservations {
        index: usize,
        text: String,
    },
    /// Deletes characters of the observations.
    DeleteObservations {
        index: usize,
        length: usize,
    },
    /// Appends text to the observations.
    AppendObservations(String),
    AddPhoto {
        sha256: String,
        caption: String,
    },
    CaptionPhoto {
        sha256: String,
        caption: String,
    },
    AddOfficerPresent(OfficerPresent),
    AddPersonPresent(PersonPresent),
    SetPartySignature {
        person_id: String,
        signature: PartySignature,
    },
    AddSample(Sample),
    AddMeasure(Measure),
}

/// What signing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignOutcome {
    /// The signature is in; other officers present have yet to sign.
    Signed,
    /// The signature was the last one missing: the record is now locked.
    SignedAndLocked,
}

/// One inspection record's document, with the device's own actor id for local edits.
#[derive(Clone, Debug)]
pub struct RecordDocument {
    record_id: String,
    doc: Automerge,
}

impl RecordDocument {
    /// A new record at its genesis, edited as `actor` (the device's own actor id).
    pub fn new(record_id: &str, actor: ActorId) -> Result<Self, EditError> {
        let parsed = uuid::Uuid::parse_str(record_id)
            .map_err(|_| invalid("record_id", record_id, Problem::WrongType { expected: "a UUID" }))?;
        let record_id = parsed.hyphenated().to_string();
        let mut doc = genesis(&record_id);
        doc.set_actor(actor);
        Ok(Self { record_id, doc })
    }

    /// A new record for a task: the genesis plus the device's first change, which names the task.
    pub fn create(record_id: &str, actor: ActorId, task_id: &str, at_ms: i64) -> Result<Self, EditError> {
        input::identifier("header/task_id", task_id)?;
        let mut record = Self::new(record_id, actor)?;
        record.transact(at_ms, |tx| {
            let header = map_in(tx, "header")?;
            tx.put(&header, "task_id", task_id)?;
            Ok(())
        })?;
        Ok(record)
    }

    /// Wraps a document received from elsewhere (a sync, the store).
    pub fn from_automerge(record_id: &str, mut doc: Automerge, actor: ActorId) -> Self {
        doc.set_actor(actor);
        Self { record_id: record_id.to_string(), doc }
    }

    /// Loads a saved document.
    pub fn load(record_id: &str, bytes: &[u8], actor: ActorId) -> Result<Self, AutomergeError> {
        Ok(Self::from_automerge(record_id, Automerge::load(bytes)?, actor))
    }

    pub fn record_id(&self) -> &str {
        &self.record_id
    }

    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    pub fn automerge_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    pub fn into_automerge(self) -> Automerge {
        self.doc
    }

    /// Drops changes the server refused, and every change built on them, from this replica
    /// ([`crate::rebase::without_changes`]); returns the dropped changes, in causal order.
    pub fn drop_changes(&mut self, refused: &[ChangeHash]) -> Result<Vec<automerge::Change>, AutomergeError> {
        let (doc, dropped) = crate::rebase::without_changes(&self.doc, refused)?;
        self.doc = doc;
        Ok(dropped)
    }

    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// Makes one edit as one Automerge change timestamped `at_ms`. Returns the change's hash, or
    /// `None` when the edit changed nothing (the field already held that value).
    pub fn apply(&mut self, edit: Edit, at_ms: i64) -> Result<Option<ChangeHash>, EditError> {
        check_edit(&edit)?;
        let status = read_status(&self.doc)?;
        match status {
            RecordStatus::Locked => return Err(EditError::Locked),
            RecordStatus::Signing => return Err(EditError::Signed),
            RecordStatus::Draft => {}
        }
        if let Edit::CaptionPhoto { sha256, .. } = &edit
            && !has_key(&self.doc, "photos", sha256)?
        {
            return Err(EditError::Missing { what: "photo", key: sha256.clone() });
        }
        if let Edit::SetPartySignature { person_id, .. } = &edit
            && !has_key(&self.doc, "people_present", person_id)?
        {
            return Err(EditError::Missing { what: "person", key: person_id.clone() });
        }
        if let Edit::DeleteObservations { index, length } = &edit {
            let text = map_in(&self.doc, "observations")?;
            let available = self.doc.length(&text);
            if index + length > available {
                return Err(invalid(
                    "observations",
                    format!("{index}+{length}"),
                    Problem::OutOfRange { min: "0".into(), max: available.to_string() },
                )
                .into());
            }
        }
        if let Edit::InsertObservations { text: added, .. } | Edit::AppendObservations(added) = &edit {
            let text = map_in(&self.doc, "observations")?;
            let available = self.doc.length(&text);
            if let Edit::InsertObservations { index, .. } = &edit
                && *index > available
            {
                return Err(invalid(
                    "observations",
                    index,
                    Problem::OutOfRange { min: "0".into(), max: available.to_string() },
                )
                .into());
            }
            let found = available + added.chars().count();
            if found > input::MAX_OBSERVATIONS {
                return Err(
                    invalid("observations", added, Problem::TooLong { max: input::MAX_OBSERVATIONS, found }).into()
                );
            }
        }
        let hash = self.transact(at_ms, |tx| {
            write_edit(tx, &edit)?;
            // Rolled back, never made: the server would refuse the change for ever.
            match entries_over_limit(tx) {
                Some((container, max, found)) => Err(invalid(container, found, Problem::TooMany { max, found }).into()),
                None => Ok(()),
            }
        })?;
        Ok(hash)
    }

    /// Signs the record as `officer_id` at `at_ms`, if the signing rules allow it (P1, P2, no open
    /// legally significant conflict); locks it when this was the last officer present to sign.
    pub fn sign(
        &mut self,
        officer_id: &str,
        at_ms: i64,
        certificates: &[Certificate],
    ) -> Result<SignOutcome, EditError> {
        let record = self.read()?;
        if record.status == RecordStatus::Locked {
            return Err(EditError::Locked);
        }
        let signature = rules::check_signing(&record, officer_id, at_ms, certificates)?;
        let mut signed: Vec<&str> = record.signatures.iter().map(|s| s.officer_id.as_str()).collect();
        signed.push(officer_id);
        let locks = rules::all_present_signed(&record, &signed);
        self.transact(at_ms, |tx| {
            let signatures = map_in(tx, "signatures")?;
            tx.put(&signatures, officer_id, to_json(&signature))?;
            if locks {
                tx.put(ROOT, "locked", true)?;
            }
            Ok(())
        })?;
        Ok(if locks { SignOutcome::SignedAndLocked } else { SignOutcome::Signed })
    }

    /// Locks a record that every officer present has signed. Signing locks by itself when the
    /// signer is the last; this is for when the last signatures were made concurrently on two
    /// devices, each of which saw the other's as missing. Returns `None` if already locked.
    pub fn lock(&mut self, at_ms: i64) -> Result<Option<ChangeHash>, EditError> {
        let record = self.read()?;
        if record.status == RecordStatus::Locked {
            return Ok(None);
        }
        let signed: Vec<&str> = record.signatures.iter().map(|s| s.officer_id.as_str()).collect();
        if !rules::all_present_signed(&record, &signed) {
            let missing = record
                .officers_present
                .iter()
                .filter(|o| !signed.contains(&o.officer_id.as_str()))
                .map(|o| o.officer_id.clone())
                .collect();
            return Err(EditError::NotAllSigned { missing });
        }
        self.transact(at_ms, |tx| {
            tx.put(ROOT, "locked", true)?;
            Ok(())
        })
    }

    /// Settles an open conflict on `field` with `value`, and records who did it. The value is checked
    /// as if it were written by the ordinary edit of that field.
    pub fn resolve(
        &mut self,
        field: &str,
        value: serde_json::Value,
        officer_id: &str,
        at_ms: i64,
    ) -> Result<Option<ChangeHash>, EditError> {
        input::identifier("resolutions/resolved_by_officer", officer_id)?;
        let record = self.read()?;
        match record.status {
            RecordStatus::Locked => return Err(EditError::Locked),
            RecordStatus::Signing => return Err(EditError::Signed),
            RecordStatus::Draft => {}
        }
        if !record.conflicts.iter().any(|c| c.field == field) {
            return Err(EditError::NoConflict { field: field.to_string() });
        }
        let (container, key) =
            field.split_once('/').ok_or_else(|| EditError::UnknownField { field: field.to_string() })?;
        let (map, key) = match container {
            "checklist" => match key.rsplit_once('/') {
                Some((code, "result")) => ("checklist_results", code),
                Some((code, "note")) => ("checklist_notes", code),
                _ => return Err(EditError::UnknownField { field: field.to_string() }),
            },
            other => (other, key),
        };
        let scalar = scalar_from_json(map, key, &value)?;
        check_scalar(map, key, &scalar)?;
        let resolution = ConflictResolution {
            field: field.to_string(),
            resolved_by_officer: officer_id.to_string(),
            resolved_at_ms: at_ms,
            value,
        };
        self.transact(at_ms, |tx| {
            let target = map_in(tx, map)?;
            tx.put(&target, key, scalar.clone())?;
            let resolutions = map_in(tx, "resolutions")?;
            tx.put(&resolutions, field, to_json(&resolution))?;
            Ok(())
        })
    }

    /// The typed view of the record, with its open conflicts.
    pub fn read(&self) -> Result<InspectionRecord, SchemaError> {
        read_record(&self.record_id, &self.doc)
    }

    fn transact(
        &mut self,
        at_ms: i64,
        write: impl FnOnce(&mut Transaction<'_>) -> Result<(), EditError>,
    ) -> Result<Option<ChangeHash>, EditError> {
        let result = self
            .doc
            .transact_with(|_| CommitOptions::default().with_time(at_ms), |tx| write(tx))
            .map_err(|failure| failure.error)?;
        Ok(result.hash)
    }
}

fn check_edit(edit: &Edit) -> Result<(), InvalidValue> {
    match edit {
        Edit::SetStartedAt(t) => input::time_ms("header/started_at_ms", *t),
        Edit::SetEndedAt(t) => input::time_ms("header/ended_at_ms", *t),
        Edit::SetAddress(a) => input::short_text("header/address", a),
        Edit::SetLocation { latitude, longitude } => {
            input::coordinate("header/latitude", *latitude, -90.0, 90.0)?;
            input::coordinate("header/longitude", *longitude, -180.0, 180.0)
        }
        Edit::SetConclusion(c) => input::long_text("header/conclusion", c, input::MAX_LONG_TEXT),
        Edit::SetEntity(entity) => check_entity(entity),
        Edit::SetRecusal { answer, .. } => match answer {
            Some(answer) => input::long_text("recusal/answer", answer, input::MAX_LONG_TEXT),
            None => Ok(()),
        },
        Edit::SetChecklistItem { code, note, .. } => {
            input::identifier("checklist", code)?;
            match note {
                Some(note) => input::long_text(&format!("checklist/{code}/note"), note, input::MAX_LONG_TEXT),
                None => Ok(()),
            }
        }
        Edit::InsertObservations { text, .. } | Edit::AppendObservations(text) => {
            input::long_text("observations", text, input::MAX_OBSERVATIONS)
        }
        Edit::DeleteObservations { .. } => Ok(()),
        Edit::AddPhoto { sha256, caption } | Edit::CaptionPhoto { sha256, caption } => {
            input::sha256_hex("photos", sha256)?;
            input::long_text(&format!("photos/{sha256}"), caption, input::MAX_SHORT_TEXT)
        }
        Edit::AddOfficerPresent(officer) => check_officer(officer),
        Edit::AddPersonPresent(person) => check_person(person),
        Edit::SetPartySignature { person_id, signature } => {
            input::identifier("people_present", person_id)?;
            check_party_signature(&format!("people_present/{person_id}"), signature)
        }
        Edit::AddSample(sample) => check_sample(sample),
        Edit::AddMeasure(measure) => {
            input::long_text(&format!("measures/{}", enum_name(&measure.kind)), &measure.note, input::MAX_LONG_TEXT)
        }
    }
}

fn check_entity(entity: &EntityRef) -> Result<(), InvalidValue> {
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

fn check_officer(officer: &OfficerPresent) -> Result<(), InvalidValue> {
    input::identifier("officers_present", &officer.officer_id)?;
    let field = format!("officers_present/{}", officer.officer_id);
    input::short_text(&field, &officer.name)?;
    input::identifier(&field, &officer.certificate_number)
}

fn check_person(person: &PersonPresent) -> Result<(), InvalidValue> {
    input::identifier("people_present", &person.person_id)?;
    let field = format!("people_present/{}", person.person_id);
    input::short_text(&field, &person.name)?;
    if let Some(contact) = &person.contact {
        input::short_text(&field, contact)?;
    }
    check_party_signature(&field, &person.signature)
}

fn check_party_signature(field: &str, signature: &PartySignature) -> Result<(), InvalidValue> {
    match signature {
        PartySignature::NotYet => Ok(()),
        PartySignature::Signed { signed_at_ms } => input::time_ms(field, *signed_at_ms),
        PartySignature::Refused { note } => input::long_text(field, note, input::MAX_LONG_TEXT),
    }
}

fn check_sample(sample: &Sample) -> Result<(), InvalidValue> {
    input::identifier("samples", &sample.sample_id)?;
    let field = format!("samples/{}", sample.sample_id);
    input::short_text(&field, &sample.description)?;
    if let Some(t) = sample.taken_at_ms {
        input::time_ms(&field, t)?;
    }
    Ok(())
}

fn write_edit(tx: &mut Transaction<'_>, edit: &Edit) -> Result<(), EditError> {
    match edit {
        Edit::SetStartedAt(t) => put(tx, "header", "started_at_ms", ScalarValue::Int(*t)),
        Edit::SetEndedAt(t) => put(tx, "header", "ended_at_ms", ScalarValue::Int(*t)),
        Edit::SetAddress(a) => put(tx, "header", "address", a.as_str().into()),
        Edit::SetLocation { latitude, longitude } => {
            put(tx, "header", "latitude", ScalarValue::F64(*latitude))?;
            put(tx, "header", "longitude", ScalarValue::F64(*longitude))
        }
        Edit::SetConclusion(c) => put(tx, "header", "conclusion", c.as_str().into()),
        Edit::SetEntity(entity) => {
            let fields = [
                ("entity_id", &entity.entity_id),
                ("name", &entity.name),
                ("credit_code", &entity.credit_code),
                ("legal_representative", &entity.legal_representative),
                ("discharge_permit", &entity.discharge_permit),
                ("tier", &entity.tier),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    put(tx, "entity", key, value.as_str().into())?;
                }
            }
            Ok(())
        }
        Edit::SetRecusal { asked, answer } => {
            put(tx, "recusal", "asked", ScalarValue::Boolean(*asked))?;
            if let Some(answer) = answer {
                put(tx, "recusal", "answer", answer.as_str().into())?;
            }
            Ok(())
        }
        Edit::SetChecklistItem { code, result, note } => {
            put(tx, "checklist_results", code, enum_name(result).into())?;
            if let Some(note) = note {
                put(tx, "checklist_notes", code, note.as_str().into())?;
            }
            Ok(())
        }
        Edit::InsertObservations { index, text } => {
            let observations = map_in(tx, "observations")?;
            tx.splice_text(&observations, *index, 0, text)?;
            Ok(())
        }
        Edit::DeleteObservations { index, length } => {
            let observations = map_in(tx, "observations")?;
            tx.splice_text(&observations, *index, *length as isize, "")?;
            Ok(())
        }
        Edit::AppendObservations(text) => {
            let observations = map_in(tx, "observations")?;
            let end = tx.length(&observations);
            tx.splice_text(&observations, end, 0, text)?;
            Ok(())
        }
        Edit::AddPhoto { sha256, caption } | Edit::CaptionPhoto { sha256, caption } => {
            put(tx, "photos", sha256, caption.as_str().into())
        }
        Edit::AddOfficerPresent(officer) => put(tx, "officers_present", &officer.officer_id, to_json(officer).into()),
        Edit::AddPersonPresent(person) => put(tx, "people_present", &person.person_id, to_json(person).into()),
        Edit::SetPartySignature { person_id, signature } => {
            let people = map_in(tx, "people_present")?;
            let current = tx.get(&people, person_id.as_str())?;
            let Some((Value::Scalar(s), _)) = current else {
                return Err(EditError::Missing { what: "person", key: person_id.clone() });
            };
            let mut person: PersonPresent = from_json("people_present", person_id, &s)?;
            person.signature = signature.clone();
            tx.put(&people, person_id.as_str(), to_json(&person))?;
            Ok(())
        }
        Edit::AddSample(sample) => put(tx, "samples", &sample.sample_id, to_json(sample).into()),
        Edit::AddMeasure(measure) => put(tx, "measures", &enum_name(&measure.kind), measure.note.as_str().into()),
    }
}

fn put(tx: &mut Transaction<'_>, container: &str, key: &str, value: ScalarValue) -> Result<(), EditError> {
    let map = map_in(tx, container)?;
    tx.put(&map, key, value)?;
    Ok(())
}

/// The object id of a genesis container; a missing or duplicated container is a schema error.
fn map_in<R: ReadDoc>(doc: &R, key: &str) -> Result<ObjId, SchemaError> {
    let all = doc.get_all(ROOT, key).map_err(|_| SchemaError::Missing(key.to_string()))?;
    match all.as_slice() {
        [(Value::Object(_), id)] => Ok(id.clone()),
        [] | [(Value::Scalar(_), _)] => Err(SchemaError::Missing(key.to_string())),
        _ => Err(SchemaError::DuplicateObject { field: key.to_string() }),
    }
}

fn has_key(doc: &Automerge, container: &str, key: &str) -> Result<bool, SchemaError> {
    let map = map_in(doc, container)?;
    Ok(doc.get(&map, key).ok().flatten().is_some())
}

/// The snake_case name a unit enumeration serializes to.
pub fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("unit enumerations serialize to strings"),
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("record entries serialize")
}

fn from_json<T: DeserializeOwned>(container: &str, key: &str, value: &ScalarValue) -> Result<T, InvalidValue> {
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
            Value::Object(_) => return Err(SchemaError::DuplicateObject { field: "locked".into() }),
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
fn check_scalar(container: &str, key: &str, value: &ScalarValue) -> Result<(), InvalidValue> {
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

/// A JSON value given to `resolve`, as the scalar the field stores.
fn scalar_from_json(container: &str, key: &str, value: &serde_json::Value) -> Result<ScalarValue, InvalidValue> {
    let field = format!("{container}/{key}");
    Ok(match (container, key, value) {
        ("header", "started_at_ms" | "ended_at_ms", serde_json::Value::Number(n)) => ScalarValue::Int(
            n.as_i64().ok_or_else(|| invalid(&field, n, Problem::WrongType { expected: "an integer" }))?,
        ),
        ("header", "latitude" | "longitude", serde_json::Value::Number(n)) => {
            ScalarValue::F64(n.as_f64().ok_or_else(|| invalid(&field, n, Problem::WrongType { expected: "a number" }))?)
        }
        ("recusal", "asked", serde_json::Value::Bool(b)) => ScalarValue::Boolean(*b),
        ("officers_present" | "people_present" | "samples" | "signatures", _, entry @ serde_json::Value::Object(_)) => {
            ScalarValue::Str(entry.to_string().into())
        }
        (_, _, serde_json::Value::String(s)) => ScalarValue::Str(s.as_str().into()),
        (_, _, other) => return Err(invalid(&field, other, Problem::WrongType { expected: "the field's type" })),
    })
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
        || (container == "header" && matches!(key, "started_at_ms" | "ended_at_ms" | "conclusion" | "task_id"))
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
                    Value::Object(_) => {
                        return Err(SchemaError::DuplicateObject { field: field_path(container, &key) });
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
