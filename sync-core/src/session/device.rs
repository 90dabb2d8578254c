//! The device's side of the exchange: its records, what it asks the server, and how it applies
//! the answers, resumable from what it persists.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, Automerge};
use schemas::{ChangeRejection, DocumentSyncMessage, SYNC_PROTOCOL_VERSION, SyncRequest, SyncResponse};

use super::{Documents, SessionConfig, SessionError, decode_message};
use crate::document::RecordDocument;

/// A device's records, edited with the device's own actor id.
#[derive(Clone, Debug)]
pub struct DeviceRecords {
    actor: ActorId,
    records: BTreeMap<String, RecordDocument>,
}

impl DeviceRecords {
    pub fn new(actor: ActorId) -> Self {
        Self { actor, records: BTreeMap::new() }
    }
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }
    pub fn insert(&mut self, record: RecordDocument) {
        self.records.insert(record.record_id().to_string(), record);
    }
    pub fn get(&self, record_id: &str) -> Option<&RecordDocument> {
        self.records.get(record_id)
    }
    pub fn get_mut(&mut self, record_id: &str) -> Option<&mut RecordDocument> {
        self.records.get_mut(record_id)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &RecordDocument)> {
        self.records.iter()
    }
    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Documents for DeviceRecords {
    fn document(&mut self, record_id: &str) -> Option<&mut Automerge> {
        self.records.get_mut(record_id).map(RecordDocument::automerge_mut)
    }
    fn document_or_empty(&mut self, record_id: &str) -> &mut Automerge {
        let actor = self.actor.clone();
        self.records
            .entry(record_id.to_string())
            .or_insert_with(|| RecordDocument::from_automerge(record_id, Automerge::new(), actor))
            .automerge_mut()
    }
}

/// What a device's `handle` did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceReport {
    /// Records whose content changed.
    pub updated: Vec<String>,
    /// Changes of this device the server refused.
    pub rejections: Vec<ChangeRejection>,
    /// Messages from the server that could not be applied, by record.
    pub errors: Vec<(String, String)>,
}

/// The device's side of the exchange.
#[derive(Clone, Debug)]
pub struct DeviceSession {
    config: SessionConfig,
    /// Per-record Automerge sync state with the server.
    states: BTreeMap<String, sync::State>,
    /// Records with something possibly unsaid: changed here, or the server spoke of them last time.
    pending: BTreeSet<String>,
    /// The server change cursor this device has caught up to.
    cursor: Option<u64>,
    /// Records whose messages are in the request awaiting an answer.
    in_flight: Option<BTreeSet<String>>,
    /// Whether this sync has asked the server yet; every sync asks at least once.
    asked: bool,
    /// The last response said the server has more changed records.
    server_has_more: bool,
    /// Records whose sync state this sync has started again from its persistent part: at
    /// `begin` for those pending, and for any other when the server first speaks of it, since
    /// what an earlier sync sent (Automerge will not send a change twice in one session) may be
    /// what the server has lost since.
    begun: BTreeSet<String>,
}

impl DeviceSession {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            states: BTreeMap::new(),
            pending: BTreeSet::new(),
            cursor: None,
            in_flight: None,
            asked: false,
            server_has_more: false,
            begun: BTreeSet::new(),
        }
    }

    /// Starts a record's sync state again from its persistent part, once per sync.
    fn begin_state(&mut self, record_id: &str) {
        if self.begun.insert(record_id.to_string())
            && let Some(state) = self.states.get_mut(record_id)
        {
            *state = sync::State::decode(&state.encode()).expect("an encoded state decodes");
        }
    }

    /// A session from what a device persisted: cursor, pending records and encoded states.
    pub fn restore(
        config: SessionConfig,
        cursor: Option<u64>,
        pending: impl IntoIterator<Item = String>,
        states: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<Self, sync::DecodeStateError> {
        let mut session = Self::new(config);
        session.cursor = cursor;
        session.pending = pending.into_iter().collect();
        for (record_id, bytes) in states {
            session.states.insert(record_id, sync::State::decode(&bytes)?);
        }
        Ok(session)
    }

    /// Notes a local edit, so the next sync talks about this record.
    pub fn record_changed(&mut self, record_id: &str) {
        self.pending.insert(record_id.to_string());
    }

    /// Forgets the sync state of a record whose history shrank here (refused changes dropped
    /// with [`RecordDocument::drop_changes`]) and marks it pending. The old state describes a
    /// history this device no longer has; the next exchange about the record starts from scratch.
    pub fn forget_record_state(&mut self, record_id: &str) {
        self.states.remove(record_id);
        self.pending.insert(record_id.to_string());
    }

    /// Stops talking about a record for the rest of this sync: the server's message about it
    /// could not be applied, and asking again in this sync would only get the same answer. The
    /// caller keeps the record pending, and its cursor where it was, so the next sync tries again.
    pub fn set_aside(&mut self, record_id: &str) {
        self.pending.remove(record_id);
    }

    /// Records with something possibly unsaid.
    pub fn pending(&self) -> &BTreeSet<String> {
        &self.pending
    }

    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// The sync state of a record, encoded for persistence.
    pub fn encoded_state(&self, record_id: &str) -> Option<Vec<u8>> {
        self.states.get(record_id).map(sync::State::encode)
    }

    /// Starts a new sync: the next `poll` asks the server even if nothing is pending. A sync is a
    /// new connection: each sync state starts again from its persistent part, so nothing the
    /// server may have forgotten (a restart, a lost answer) is assumed sent.
    pub fn begin(&mut self) {
        self.asked = false;
        self.server_has_more = false;
        self.begun.clear();
        for record_id in self.pending.clone() {
            self.begin_state(&record_id);
        }
    }

    /// The next request, or `None` when this sync is complete.
    pub fn poll(&mut self, docs: &mut impl Documents) -> Option<SyncRequest> {
        if self.in_flight.is_some() {
            return None;
        }
        let mut documents = Vec::new();
        let mut bytes = 0;
        let mut sent = BTreeSet::new();
        for record_id in self.pending.clone() {
            if documents.len() >= self.config.max_documents_per_request || bytes >= self.config.max_request_bytes {
                break;
            }
            let Some(doc) = docs.document(&record_id) else {
                self.pending.remove(&record_id);
                continue;
            };
            let state = self.states.entry(record_id.clone()).or_default();
            match doc.generate_sync_message(state) {
                Some(message) => {
                    let message = message.encode();
                    bytes += message.len();
                    documents.push(DocumentSyncMessage { record_id: record_id.clone(), message });
                    sent.insert(record_id);
                }
                None => {
                    self.pending.remove(&record_id);
                }
            }
        }
        let must_ask = !self.asked || self.server_has_more;
        if documents.is_empty() && !must_ask {
            return None;
        }
        self.asked = true;
        self.in_flight = Some(sent);
        Some(SyncRequest { protocol: SYNC_PROTOCOL_VERSION, since: self.cursor, documents })
    }

    /// Applies the server's answer to the request in flight.
    pub fn handle(&mut self, response: SyncResponse, docs: &mut impl Documents) -> Result<DeviceReport, SessionError> {
        if response.protocol != SYNC_PROTOCOL_VERSION {
            return Err(SessionError::UnsupportedProtocol {
                found: response.protocol,
                expected: SYNC_PROTOCOL_VERSION,
            });
        }
        let sent = self.in_flight.take().ok_or(SessionError::NoRequestInFlight)?;
        let mut report = DeviceReport::default();
        let mut answered = BTreeSet::new();
        for DocumentSyncMessage { record_id, message } in response.documents {
            if uuid::Uuid::parse_str(&record_id).is_err() {
                report.errors.push((record_id, "not a record id".into()));
                continue;
            }
            let message = match decode_message(&message) {
                Ok(message) => message,
                Err(error) => {
                    report.errors.push((record_id, error));
                    continue;
                }
            };
            self.begin_state(&record_id);
            let state = self.states.entry(record_id.clone()).or_default();
            let doc = docs.document_or_empty(&record_id);
            let before = doc.get_heads();
            // Changes from the server were validated there; a message that fails half-way can
            // only have applied whole, valid changes. Its sync state restarts from its persisted part.
            match doc.receive_sync_message(state, message) {
                Ok(()) => {
                    if doc.get_heads() != before {
                        report.updated.push(record_id.clone());
                    }
                    self.pending.insert(record_id.clone());
                    answered.insert(record_id);
                }
                Err(error) => {
                    *state = sync::State::decode(&state.encode()).expect("an encoded state decodes");
                    self.pending.insert(record_id.clone());
                    answered.insert(record_id.clone());
                    report.errors.push((record_id, error.to_string()));
                }
            }
        }
        // A record the server did not answer about has nothing more to exchange.
        for record_id in sent.difference(&answered) {
            self.pending.remove(record_id);
        }
        // The server will not take a refused change, nor anything built on it: talking on about
        // that record in this sync cannot help. Its new changes, if any, come through the cursor.
        for rejection in &response.rejections {
            self.pending.remove(&rejection.record_id);
        }
        report.rejections = response.rejections;
        // A message that did not apply is asked for again: the cursor stays where it was.
        if report.errors.is_empty() {
            self.cursor = Some(response.cursor);
        }
        self.server_has_more = response.more;
        Ok(report)
    }

    /// The request in flight was lost (or its answer was): forget what was in flight, so that
    /// the next `poll` says it again. Only the persistent part of each sync state is kept.
    pub fn abandon(&mut self) {
        if let Some(sent) = self.in_flight.take() {
            self.pending.extend(sent);
        }
        for state in self.states.values_mut() {
            *state = sync::State::decode(&state.encode()).expect("an encoded state decodes");
        }
        self.asked = false;
    }
}
