//! Writing a record: [`RecordDocument`], the edits an officer makes, signing, locking and
//! resolving a conflict, each value checked before it is written.

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash, ROOT, ReadDoc, ScalarValue, Value};
use schemas::{
    Certificate, ChecklistResult, ConflictResolution, EntityRef, Measure, OfficerPresent, PartySignature,
    PersonPresent, RecordStatus, Sample,
};
use serde::Serialize;

use super::genesis::{entries_over_limit, genesis};
use super::read::{
    SchemaError, check_entity, check_officer, check_party_signature, check_person, check_refusal, check_sample,
    check_scalar, enum_name, from_json, map_in, read_status,
};
use crate::input::{self, InvalidValue, Problem, invalid};
use crate::rules::{self, CompletenessPolicy, SigningRefusal};

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
    /// P2: the party refused the inspection because these officers showed no certificate.
    SetInspectionRefused(schemas::InspectionRefusal),
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
    /// legally significant conflict, the record complete under the default [`CompletenessPolicy`]);
    /// locks it when this was the last officer present to sign.
    pub fn sign(
        &mut self,
        officer_id: &str,
        at_ms: i64,
        certificates: &[Certificate],
    ) -> Result<SignOutcome, EditError> {
        self.sign_under(officer_id, at_ms, certificates, &CompletenessPolicy::default())
    }

    /// [`RecordDocument::sign`] under the bureau's `policy` of what a complete record holds.
    pub fn sign_under(
        &mut self,
        officer_id: &str,
        at_ms: i64,
        certificates: &[Certificate],
        policy: &CompletenessPolicy,
    ) -> Result<SignOutcome, EditError> {
        let record = self.read()?;
        if record.status == RecordStatus::Locked {
            return Err(EditError::Locked);
        }
        let signature = rules::check_signing(&record, officer_id, at_ms, certificates)?;
        rules::check_complete(&record, policy)?;
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
        self.lock_under(at_ms, &CompletenessPolicy::default())
    }

    /// [`RecordDocument::lock`] under the bureau's `policy` of what a complete record holds: a
    /// record that lacks an item is not locked, and the refusal names each
    /// ([`rules::missing_for_lock`]).
    pub fn lock_under(&mut self, at_ms: i64, policy: &CompletenessPolicy) -> Result<Option<ChangeHash>, EditError> {
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
        rules::check_complete(&record, policy)?;
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
        Edit::SetInspectionRefused(refusal) => check_refusal(refusal),
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
        Edit::SetInspectionRefused(refusal) => {
            let json = serde_json::to_string(refusal).expect("a refusal serializes");
            put(tx, "header", "inspection_refused", json.as_str().into())
        }
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

fn has_key(doc: &Automerge, container: &str, key: &str) -> Result<bool, SchemaError> {
    let map = map_in(doc, container)?;
    Ok(doc.get(&map, key).ok().flatten().is_some())
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("record entries serialize")
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
