//! An enrolled device and everything it does with no network: tasks from its
//! cache, records created and edited, photos kept, signatures, conflicts
//! resolved, and what is still unsaid to the server.
//!
//! Every edit goes through `sync-core`'s [`RecordDocument`], so the device
//! refuses locally what the server would refuse (a value out of range, a
//! signature the rules do not allow), and is written with the record's new
//! version in one transaction of the [`DeviceStore`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::ActorId;
use ed25519_dalek::SigningKey;
use schemas::{InspectionRecord, OfficerPresent, RecordStatus};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sync_core::document::{Edit, EditError, RecordDocument, SignOutcome, new_record_id};
use sync_core::enforcement_log::{
    EntryEncoding, EntryKind, GENESIS_PREVIOUS, LogEntry, LogFinding, MAX_PAYLOAD_BYTES, SignedEntry, check_fields,
    check_record, content_payload, payload_hash,
};
use sync_core::rules::{CertificateStanding, certificate_valid_on};

use crate::error::{ClientError, ClientResult};
use crate::store::{DeviceStore, Identity, Photo, RefusedChange};

/// Where the device reads the time: the wall clock, or a test's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock in Unix milliseconds.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    })
}

/// Where the device reads its boot id and its monotonic time since boot (ms), for the
/// enforcement log: on Linux (and Android) the kernel's boot id and uptime.
pub type BootClock = Arc<dyn Fn() -> (String, u64) + Send + Sync>;

/// The kernel's boot id and uptime where `/proc` has them; elsewhere one id per process and the
/// time since the process started.
pub fn system_boot_clock() -> BootClock {
    let process_id = format!("process-{}", hex::encode(rand::random::<[u8; 8]>()));
    let started = std::time::Instant::now();
    Arc::new(move || {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string());
        let uptime_ms = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
            .map(|seconds| (seconds * 1000.0) as u64);
        match (boot_id, uptime_ms) {
            (Some(id), Some(ms)) => (id, ms),
            _ => (process_id.clone(), started.elapsed().as_millis() as u64),
        }
    })
}

/// A task and its team with their certificates (`GET /v1/tasks/{id}/team`), as cached on the device.
pub use schemas::{Task, TaskTeam, TeamMember};

/// What is not settled with the server yet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceStatus {
    pub officer_id: String,
    pub device_id: String,
    pub server: String,
    /// Records with local changes not yet confirmed by the server.
    pub pending: Vec<String>,
    /// Records whose every change the server has not confirmed having (never synced, or synced
    /// before the last local edit).
    pub missing_on_server: Vec<String>,
    /// Changes the server refused, with their reasons.
    pub refused: Vec<RefusedChange>,
    /// Photos kept on this device.
    pub photos_on_device: usize,
    /// Photos the server does not hold yet (uploaded by the next sync, after their records).
    pub photos_not_uploaded: Vec<String>,
    /// Enforcement-log entries the server has not taken yet (uploaded by the next sync).
    pub log_entries_not_uploaded: usize,
    /// The transparency-log checkpoint this device last saw, which its new entries name.
    pub seen_checkpoint: Option<sync_core::enforcement_log::SeenCheckpoint>,
    pub records: usize,
    pub tasks: usize,
}

/// An enrolled device opened from its folder.
pub struct Device {
    pub(crate) dir: PathBuf,
    pub(crate) store: DeviceStore,
    pub(crate) identity: Identity,
    pub(crate) clock: Clock,
    pub(crate) boot_clock: BootClock,
    /// Whether request bodies go compressed; cleared when the server says it takes no coding.
    pub(crate) compress_requests: std::sync::atomic::AtomicBool,
}

impl Device {
    /// Opens the device in `dir`; it must have been enrolled.
    pub fn open(dir: &Path) -> ClientResult<Self> {
        let store = DeviceStore::open(dir)?;
        let identity = store.identity()?.ok_or(ClientError::NotEnrolled)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            store,
            identity,
            clock: system_clock(),
            boot_clock: system_boot_clock(),
            compress_requests: true.into(),
        })
    }

    /// Reads the time from `clock` from now on (tests move a device's clock).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Reads the boot id and monotonic time from `clock` from now on.
    pub fn set_boot_clock(&mut self, clock: BootClock) {
        self.boot_clock = clock;
    }

    /// Appends an entry to this device's enforcement-log chain, signed with its key. `payload`
    /// (free text, a statement) travels beside the entry; the entry holds its SHA-256.
    pub fn append_log(
        &mut self,
        kind: EntryKind,
        record_id: Option<&str>,
        payload: &[u8],
    ) -> ClientResult<SignedEntry> {
        let key = SigningKey::from_bytes(&self.store.signing_key()?.ok_or(ClientError::NotEnrolled)?);
        // What the server would refuse is refused here, before anything is signed or stored.
        let refused = |e: sync_core::enforcement_log::EntryError| ClientError::InvalidInput {
            what: "log entry".into(),
            detail: e.to_string(),
        };
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(refused(sync_core::enforcement_log::EntryError::PayloadTooLarge { found: payload.len() }));
        }
        // An entry of a record the device holds signs the record's heads with its note
        // (`content_payload`): the device's key then vouches for the content it had.
        let bound;
        let payload = match record_id.map(|id| self.load(id)) {
            Some(Ok((document, _, _))) => {
                let heads: Vec<[u8; 32]> = document.automerge().get_heads().iter().map(|h| h.0).collect();
                bound = content_payload(&heads, payload);
                bound.as_slice()
            }
            Some(Err(ClientError::UnknownRecord { .. })) | None => payload,
            Some(Err(e)) => return Err(e),
        };
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(refused(sync_core::enforcement_log::EntryError::PayloadTooLarge { found: payload.len() }));
        }
        let (boot_id, monotonic_ms) = (self.boot_clock)();
        let device_time_ms = self.now_ms();
        let device_id = self.identity.device_id.clone();
        let seen_checkpoint = self.store.seen_checkpoint()?;
        // Seq and previous hash come from the store inside its transaction.
        let entry = LogEntry {
            device_id,
            seq: 1,
            previous: GENESIS_PREVIOUS,
            device_time_ms,
            monotonic_ms,
            boot_id,
            kind,
            record_id: record_id.map(str::to_string),
            payload_hash: payload_hash(payload),
            seen_checkpoint,
        };
        check_fields(&entry).map_err(refused)?;
        self.store.append_log(payload, |seq, previous| LogEntry { seq, previous, ..entry }.sign(&key))
    }

    /// This device's enforcement-log entries, of one record or all, in chain order.
    pub fn log(&self, record_id: Option<&str>) -> ClientResult<Vec<SignedEntry>> {
        Ok(self.store.log(record_id)?.into_iter().map(|(entry, _)| entry).collect())
    }

    /// The rules this device's entries for a record break (R2, R3, P2), against the officers
    /// present on the record. The partner's device has its own chain: the server sees both.
    pub fn log_findings(&self, record_id: &str) -> ClientResult<Vec<LogFinding>> {
        let present: Vec<String> = self.record(record_id)?.officers_present.into_iter().map(|o| o.officer_id).collect();
        let entries: Vec<LogEntry> = self.log(Some(record_id))?.into_iter().map(|s| s.entry).collect();
        Ok(check_record(&entries, &present))
    }

    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn store(&self) -> &DeviceStore {
        &self.store
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn actor(&self) -> ActorId {
        ActorId::from(hex::decode(&self.identity.actor_id).unwrap_or_default())
    }

    /// The tasks cached at the last sync.
    pub fn tasks(&self) -> ClientResult<Vec<TaskTeam>> {
        self.store
            .tasks()?
            .into_iter()
            .map(|t| serde_json::from_value(t.team).map_err(|e| ClientError::CorruptStore { detail: e.to_string() }))
            .collect()
    }

    pub fn task(&self, task_id: &str) -> ClientResult<TaskTeam> {
        self.tasks()?
            .into_iter()
            .find(|t| t.task.task_id == task_id)
            .ok_or_else(|| ClientError::UnknownTask { task_id: task_id.to_string() })
    }

    /// The record `record_id`, or the current one when `None`.
    pub fn record_id(&self, record_id: Option<&str>) -> ClientResult<String> {
        match record_id {
            Some(id) => Ok(id.to_string()),
            None => self.store.current_record()?.ok_or(ClientError::NoCurrentRecord),
        }
    }

    /// Selects the record the `record` commands act on by default.
    pub fn select(&self, record_id: &str) -> ClientResult<()> {
        self.load(record_id)?;
        self.store.set_current_record(record_id)
    }

    fn load(&self, record_id: &str) -> ClientResult<(RecordDocument, i64, Option<String>)> {
        let stored = self
            .store
            .record(record_id)?
            .ok_or_else(|| ClientError::UnknownRecord { record_id: record_id.to_string() })?;
        let document = RecordDocument::load(record_id, &stored.document, self.actor())
            .map_err(|e| ClientError::CorruptStore { detail: format!("record {record_id}: {e}") })?;
        Ok((document, stored.version, stored.task_id))
    }

    /// The typed view of a record, with its open conflicts.
    pub fn record(&self, record_id: &str) -> ClientResult<InspectionRecord> {
        let (document, _, _) = self.load(record_id)?;
        document.read().map_err(|e| ClientError::CorruptStore { detail: format!("record {record_id}: {e}") })
    }

    /// Every record on the device, in creation order.
    pub fn records(&self) -> ClientResult<Vec<InspectionRecord>> {
        self.store.record_ids()?.iter().map(|(id, _)| self.record(id)).collect()
    }

    /// Starts a record for a cached task this device's officer is on, and selects it.
    pub fn new_record(&mut self, task_id: &str) -> ClientResult<String> {
        let task = self.task(task_id)?;
        if !task.task.team.contains(&self.identity.officer_id) {
            return Err(ClientError::NotOnTeam {
                officer_id: self.identity.officer_id.clone(),
                task_id: task_id.to_string(),
            });
        }
        let now = self.now_ms();
        let record_id = new_record_id(now.max(0) as u64, rand::random());
        let mut document = RecordDocument::create(&record_id, self.actor(), task_id, now).map_err(edit_error)?;
        document
            .apply(
                Edit::SetEntity(schemas::EntityRef {
                    entity_id: Some(task.task.entity_id.clone()),
                    ..Default::default()
                }),
                now,
            )
            .map_err(edit_error)?;
        document.apply(Edit::SetStartedAt(now), now).map_err(edit_error)?;
        self.store.put_local_record(&record_id, Some(task_id), &document.save(), None, now)?;
        self.store.set_current_record(&record_id)?;
        Ok(record_id)
    }

    /// Runs `change` on a record and stores the result; retried when another process wrote the
    /// record in between.
    pub fn modify<T>(
        &mut self,
        record_id: &str,
        mut change: impl FnMut(&mut RecordDocument, i64) -> ClientResult<T>,
    ) -> ClientResult<T> {
        let mut attempts = 0;
        loop {
            let (mut document, version, task_id) = self.load(record_id)?;
            let now = self.now_ms();
            let result = change(&mut document, now)?;
            match self.store.put_local_record(record_id, task_id.as_deref(), &document.save(), Some(version), now) {
                Err(ClientError::ConcurrentEdit { .. }) if attempts < 5 => attempts += 1,
                Err(error) => return Err(error),
                Ok(_) => return Ok(result),
            }
        }
    }

    /// Applies one edit to a record. A checklist item's code must be on the checklist of the
    /// task's matter, as cached with the task (the server refuses any other).
    pub fn edit(&mut self, record_id: &str, edit: Edit) -> ClientResult<()> {
        if let Edit::SetChecklistItem { code, .. } = &edit {
            self.check_checklist_code(record_id, code)?;
        }
        self.modify(record_id, |document, now| document.apply(edit.clone(), now).map(|_| ()).map_err(edit_error))
    }

    /// Refuses a checklist code that is not on the checklist of the record's task's matter. A
    /// task cached without a checklist (its matter is in no matter list) takes any code.
    fn check_checklist_code(&self, record_id: &str, code: &str) -> ClientResult<()> {
        let team = match self.team_of(record_id) {
            // A task no longer cached (the officer left its team): the server judges.
            Err(ClientError::UnknownTask { .. }) => return Ok(()),
            other => other?,
        };
        match &team.checklist {
            Some(checklist) if !checklist.iter().any(|c| c == code) => {
                Err(ClientError::UnknownChecklistItem { code: code.to_string(), task_id: team.task.task_id })
            }
            _ => Ok(()),
        }
    }

    /// The cached team of a record's task.
    fn team_of(&self, record_id: &str) -> ClientResult<TaskTeam> {
        let (_, _, task_id) = self.load(record_id)?;
        let task_id = task_id.ok_or_else(|| ClientError::InvalidInput {
            what: "record".into(),
            detail: format!("record {record_id} names no task"),
        })?;
        self.task(&task_id)
    }

    /// Adds a team member to the officers present, with the certificate valid now.
    pub fn add_officer_present(
        &mut self,
        record_id: &str,
        officer_id: &str,
        certificate_shown: bool,
    ) -> ClientResult<()> {
        let team = self.team_of(record_id)?;
        let member = team.members.iter().find(|m| m.officer_id == officer_id).ok_or_else(|| {
            ClientError::NotOnTeam { officer_id: officer_id.to_string(), task_id: team.task.task_id.clone() }
        })?;
        let now = self.now_ms();
        let certificate = member
            .certificates
            .iter()
            .find(|c| {
                certificate_valid_on(&member.certificates, officer_id, &c.number, now) == CertificateStanding::Valid
            })
            .ok_or_else(|| ClientError::EditRefused {
                rule: Some("P2".into()),
                detail: format!("{officer_id} has no valid enforcement certificate"),
            })?;
        self.edit(
            record_id,
            Edit::AddOfficerPresent(OfficerPresent {
                officer_id: officer_id.to_string(),
                name: member.name.clone(),
                certificate_number: certificate.number.clone(),
                certificate_shown,
            }),
        )?;
        if certificate_shown {
            self.append_log(
                EntryKind::CertificatesShown { officer_ids: vec![officer_id.to_string()] },
                Some(record_id),
                b"",
            )?;
        }
        Ok(())
    }

    /// Keeps a photo on the device and references it from the record.
    pub fn add_photo(&mut self, record_id: &str, path: &Path, caption: &str) -> ClientResult<String> {
        let bytes = std::fs::read(path)
            .map_err(|e| ClientError::PhotoMissing { path: path.to_path_buf(), error: e.to_string() })?;
        let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|e| ClientError::NotAnImage { path: path.to_path_buf(), error: e.to_string() })?;
        let format = reader
            .format()
            .ok_or_else(|| ClientError::NotAnImage { path: path.to_path_buf(), error: "unknown format".into() })?;
        let (width, height) = reader
            .into_dimensions()
            .map_err(|e| ClientError::NotAnImage { path: path.to_path_buf(), error: e.to_string() })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        self.load(record_id)?;
        self.store.put_photo(&Photo {
            sha256: sha256.clone(),
            record_id: record_id.to_string(),
            media_type: format.to_mime_type().to_string(),
            bytes,
            width,
            height,
            added_at_ms: self.now_ms(),
        })?;
        self.edit(record_id, Edit::AddPhoto { sha256: sha256.clone(), caption: caption.to_string() })?;
        self.append_log(EntryKind::PhotoTaken { sha256: sha256.clone() }, Some(record_id), caption.as_bytes())?;
        Ok(sha256)
    }

    /// Signs the record as this device's officer, checked against the cached certificates.
    pub fn sign(&mut self, record_id: &str) -> ClientResult<SignOutcome> {
        let certificates = self.team_of(record_id)?.certificates();
        let officer_id = self.identity.officer_id.clone();
        let outcome =
            self.modify(record_id, |document, now| document.sign(&officer_id, now, &certificates).map_err(edit_error))?;
        self.append_log(EntryKind::Signed { officer_id }, Some(record_id), b"")?;
        Ok(outcome)
    }

    /// Locks a record every officer present has signed (when the last signatures crossed).
    pub fn lock(&mut self, record_id: &str) -> ClientResult<bool> {
        self.modify(record_id, |document, now| document.lock(now).map(|h| h.is_some()).map_err(edit_error))
    }

    /// Settles an open conflict with `value` (JSON, as the field's ordinary edit takes it).
    pub fn resolve(&mut self, record_id: &str, field: &str, value: serde_json::Value) -> ClientResult<()> {
        let officer_id = self.identity.officer_id.clone();
        self.modify(record_id, |document, now| {
            document.resolve(field, value.clone(), &officer_id, now).map(|_| ()).map_err(edit_error)
        })
    }

    /// What is pending, refused, or missing on the server.
    pub fn status(&self) -> ClientResult<DeviceStatus> {
        let snapshot = self.store.sync_snapshot()?;
        let states: std::collections::BTreeMap<String, Vec<u8>> = snapshot.states.into_iter().collect();
        let mut missing_on_server = Vec::new();
        let ids = self.store.record_ids()?;
        for (record_id, _) in &ids {
            let (document, _, _) = self.load(record_id)?;
            let heads = document.automerge().get_heads();
            let confirmed = states
                .get(record_id)
                .and_then(|bytes| automerge::sync::State::decode(bytes).ok())
                .is_some_and(|state| heads.iter().all(|h| state.shared_heads.contains(h)));
            if !confirmed {
                missing_on_server.push(record_id.clone());
            }
        }
        Ok(DeviceStatus {
            officer_id: self.identity.officer_id.clone(),
            device_id: self.identity.device_id.clone(),
            server: self.identity.server.clone(),
            pending: self.store.pending()?,
            missing_on_server,
            refused: self.store.refused(None)?,
            photos_on_device: self.store.photo_count()?,
            photos_not_uploaded: self.store.photos_to_upload()?.into_iter().map(|(sha256, _, _)| sha256).collect(),
            log_entries_not_uploaded: self.store.log_not_uploaded()?,
            seen_checkpoint: self.store.seen_checkpoint()?,
            records: ids.len(),
            tasks: self.store.tasks()?.len(),
        })
    }

    /// Whether a record is locked.
    pub fn is_locked(&self, record_id: &str) -> ClientResult<bool> {
        Ok(self.record(record_id)?.status == RecordStatus::Locked)
    }
}

/// An edit `sync-core` refused, as the device's error.
pub fn edit_error(error: EditError) -> ClientError {
    match error {
        EditError::InvalidValue(invalid) => {
            ClientError::InvalidInput { what: "value".into(), detail: invalid.to_string() }
        }
        EditError::SigningRefused(refusal) => {
            ClientError::EditRefused { rule: Some(refusal.rule.as_str().to_string()), detail: refusal.detail }
        }
        EditError::Locked => ClientError::EditRefused { rule: Some("locked".into()), detail: error.to_string() },
        EditError::Signed => ClientError::EditRefused { rule: Some("signed".into()), detail: error.to_string() },
        EditError::NotAllSigned { .. } => {
            ClientError::EditRefused { rule: Some("not_all_signed".into()), detail: error.to_string() }
        }
        EditError::NoConflict { .. } | EditError::UnknownField { .. } | EditError::Missing { .. } => {
            ClientError::InvalidInput { what: "field".into(), detail: error.to_string() }
        }
        EditError::Schema(_) | EditError::Automerge(_) => ClientError::CorruptStore { detail: error.to_string() },
    }
}

/// The edit that sets `field` to `value` as typed on the command line: `address`,
/// `conclusion`, `started_at` and `ended_at` (Unix ms or `now`), `location` (`LAT,LON`),
/// `entity_name`, `credit_code`, `legal_representative`, `discharge_permit`, `recusal_asked`
/// (`true`/`false`) and `recusal_answer` (which also marks the question asked).
pub fn field_edit(field: &str, value: &str, now_ms: i64) -> ClientResult<Edit> {
    let invalid = |detail: String| ClientError::InvalidInput { what: field.to_string(), detail };
    let time = || match value {
        "now" => Ok(now_ms),
        other => other.parse::<i64>().map_err(|_| invalid(format!("{other:?} is neither Unix milliseconds nor `now`"))),
    };
    let entity = |set: fn(&mut schemas::EntityRef, String)| {
        let mut entity = schemas::EntityRef::default();
        set(&mut entity, value.to_string());
        Edit::SetEntity(entity)
    };
    Ok(match field {
        "address" => Edit::SetAddress(value.to_string()),
        "conclusion" => Edit::SetConclusion(value.to_string()),
        "started_at" => Edit::SetStartedAt(time()?),
        "ended_at" => Edit::SetEndedAt(time()?),
        "location" => {
            let (latitude, longitude) = value
                .split_once(',')
                .and_then(|(lat, lon)| Some((lat.trim().parse().ok()?, lon.trim().parse().ok()?)))
                .ok_or_else(|| invalid(format!("{value:?} is not LATITUDE,LONGITUDE")))?;
            Edit::SetLocation { latitude, longitude }
        }
        "entity_name" => entity(|e, v| e.name = Some(v)),
        "credit_code" => entity(|e, v| e.credit_code = Some(v)),
        "legal_representative" => entity(|e, v| e.legal_representative = Some(v)),
        "discharge_permit" => entity(|e, v| e.discharge_permit = Some(v)),
        "recusal_asked" => Edit::SetRecusal {
            asked: value.parse().map_err(|_| invalid(format!("{value:?} is neither true nor false")))?,
            answer: None,
        },
        "recusal_answer" => Edit::SetRecusal { asked: true, answer: Some(value.to_string()) },
        other => {
            return Err(ClientError::InvalidInput {
                what: "field".into(),
                detail: format!("{other:?} is not a field that can be set (see `fieldsync record set --help`)"),
            });
        }
    })
}

/// A party's signature now, or their refusal with what they said.
pub fn party_signature(refusal: Option<String>, now_ms: i64) -> schemas::PartySignature {
    match refusal {
        Some(note) => schemas::PartySignature::Refused { note },
        None => schemas::PartySignature::Signed { signed_at_ms: now_ms },
    }
}

/// What an officer adds to the enforcement log from the command line, beside the kind.
#[derive(Clone, Debug, Default)]
pub struct LogDetails {
    pub reason: Option<String>,
    pub note: Option<String>,
    pub officers: Vec<String>,
    pub document: Option<String>,
    pub sample: Option<String>,
}

/// The entry kind named `kind` (`arrive`, `certificates-shown`, `recording-started`,
/// `recording-stopped`, `party-questioned`, `sample-taken`, `evidence-preserved`,
/// `seal-or-seizure`, `document-served`, `party-refused`, `inspection-refused` (P2: the party refused
/// the inspection because the `officers` showed no certificate), `left`) with its details. Photos and
/// signatures are logged by the device itself. A recording stopped needs its reason (R3).
pub fn entry_kind(kind: &str, details: LogDetails) -> ClientResult<EntryKind> {
    let needed = |what: &str, value: Option<String>| {
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| ClientError::InvalidInput {
            what: kind.to_string(),
            detail: format!("{kind} needs --{what}"),
        })
    };
    Ok(match kind {
        "arrive" => EntryKind::Arrive,
        "certificates-shown" => {
            if details.officers.is_empty() {
                return Err(ClientError::InvalidInput {
                    what: kind.into(),
                    detail: format!("{kind} needs --officers"),
                });
            }
            EntryKind::CertificatesShown { officer_ids: details.officers }
        }
        "recording-started" => EntryKind::RecordingStarted,
        "recording-stopped" => EntryKind::RecordingStopped { reason: needed("reason", details.reason)? },
        "party-questioned" => EntryKind::PartyQuestioned,
        "sample-taken" => EntryKind::SampleTaken { sample_id: needed("sample", details.sample)? },
        "evidence-preserved" => EntryKind::EvidencePreserved,
        "seal-or-seizure" => EntryKind::SealOrSeizure,
        "document-served" => EntryKind::DocumentServed { document: needed("document", details.document)? },
        "party-refused" => EntryKind::PartyRefused { note: needed("note", details.note)? },
        "inspection-refused" => {
            if details.officers.is_empty() {
                return Err(ClientError::InvalidInput {
                    what: kind.into(),
                    detail: format!("{kind} needs --officers: those who showed no certificate"),
                });
            }
            EntryKind::InspectionRefused { officer_ids: details.officers }
        }
        "left" => EntryKind::Left,
        other => {
            return Err(ClientError::InvalidInput {
                what: "log entry".into(),
                detail: format!("{other:?} is not a kind of entry (see `fieldsync log add --help`)"),
            });
        }
    })
}
