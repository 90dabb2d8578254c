//! The batched sync session, sans IO.
//!
//! A device and the server talk about many records in one exchange: the
//! device's [`DeviceSession::poll`] makes a [`SyncRequest`] with one Automerge
//! sync message per record it has something to say about; the server's
//! [`ServerSession::handle`] validates and applies them and answers with a
//! [`SyncResponse`]; the device's [`DeviceSession::handle`] applies that. The
//! device polls again until `poll` returns `None`.
//!
//! # Why a no-op sync costs nothing per record
//!
//! Plain Automerge sync sends a Bloom filter for every document each time.
//! Here only records changed on either side since the last exchange enter
//! Automerge's protocol: the device keeps the set of records it changed (or is
//! still talking about), and the server keeps a change sequence, from which
//! the caller lists the records changed after the cursor the device sends
//! ([`ChangeFeed`] is the in-memory form of it). A sync with nothing new is
//! one request with no documents and one response with no documents.
//!
//! # Persistence and resumption
//!
//! Per-record [`automerge::sync::State`] encodes to bytes ([`DeviceSession::encoded_state`],
//! [`ServerSession::encoded_state`]); with the pending set and the cursor it
//! is all a side must keep to resume after a break without resending what the
//! peer has. When an exchange fails in transit, [`DeviceSession::abandon`]
//! drops what was in flight so the next `poll` sends it again.
//!
//! Automerge's protocol assumes a reliable, in-order stream; HTTP requests are
//! not one. So the server starts every request from the persistent part of
//! each sync state it touches: a lost answer or a replayed request can never
//! leave it believing the device has something it does not. Every request is
//! idempotent: the same request twice changes nothing.
//!
//! # Refused changes
//!
//! The server keeps refused change hashes per session and strips them from
//! the heads a device advertises, so it never asks for them again and the
//! exchange ends; the device keeps the refused changes and the reasons.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{self, Message, SyncDoc};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use schemas::{
    ChangeRejection, DocumentSyncMessage, RejectionReason, SYNC_PROTOCOL_VERSION, SyncRequest, SyncResponse,
};

use crate::document::RecordDocument;
use crate::validate::{Refusal, Validation, ValidationContext, validate_with_result};

mod receive;
mod wire;

pub use receive::{MAX_RECORD_BYTES, storable};
use receive::{Received, receive_validated};
pub use wire::{decode_message, document_heads, message_chunk_count};

/// Bounds on what one request carries; a larger backlog is split over several requests.
#[derive(Clone, Copy, Debug)]
pub struct SessionConfig {
    /// Most records in one request.
    pub max_documents_per_request: usize,
    /// Once the messages of a request reach this many bytes, no further record is added.
    pub max_request_bytes: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { max_documents_per_request: 512, max_request_bytes: 4 << 20 }
    }
}

/// Where a session finds and creates record documents.
pub trait Documents {
    fn document(&mut self, record_id: &str) -> Option<&mut Automerge>;
    /// The document of `record_id`, created empty if the record is new here.
    fn document_or_empty(&mut self, record_id: &str) -> &mut Automerge;
    /// The record as its store keeps it, saved and not loaded. A store of saved documents gives
    /// it so that the server's session can settle an acknowledgement, and deliver a record the
    /// device has never synced, without loading the document. `None` (the default): the session
    /// loads the document.
    fn saved(&mut self, _record_id: &str) -> Option<SavedRecord<'_>> {
        None
    }
}

/// A record as stored, borrowed from its store: its saved document (`Automerge::save` or
/// `save_nocompress`) and its task.
#[derive(Clone, Copy, Debug)]
pub struct SavedRecord<'a> {
    pub document: &'a [u8],
    pub task_id: Option<&'a str>,
}

impl Documents for BTreeMap<String, Automerge> {
    fn document(&mut self, record_id: &str) -> Option<&mut Automerge> {
        self.get_mut(record_id)
    }
    fn document_or_empty(&mut self, record_id: &str) -> &mut Automerge {
        self.entry(record_id.to_string()).or_default()
    }
}

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

/// Decides which incoming changes become part of a record, and who may read one.
pub trait ChangeGate {
    /// Whether incoming changes are checked at all; when not, messages are applied directly.
    fn validates(&self) -> bool {
        true
    }
    /// Splits the changes a message carries into those that may be applied at all and those
    /// refused on their own, before Automerge sees them ([`crate::validate::precheck`]).
    fn precheck(&mut self, _record_id: &str, _doc: &Automerge, incoming: Vec<Change>) -> Validation {
        Validation { accepted: incoming, refused: Vec::new() }
    }
    /// Splits `incoming` (new to `doc`, each passed [`ChangeGate::precheck`]; `with_all` is `doc`
    /// with all of them applied).
    fn check(&mut self, record_id: &str, doc: &Automerge, with_all: &Automerge, incoming: Vec<Change>) -> Validation;
    /// Whether the peer may receive this record's content.
    fn may_read(&self, record_id: &str, doc: &Automerge) -> bool;
    /// Whether the peer may receive the content of a record of this task.
    fn may_read_task(&self, task_id: Option<&str>) -> bool;
}

/// The device's gate: it takes whatever the server sends.
pub struct AcceptAll;

impl ChangeGate for AcceptAll {
    fn validates(&self) -> bool {
        false
    }
    fn check(&mut self, _: &str, _: &Automerge, _: &Automerge, incoming: Vec<Change>) -> Validation {
        Validation { accepted: incoming, refused: Vec::new() }
    }
    fn may_read(&self, _: &str, _: &Automerge) -> bool {
        true
    }
    fn may_read_task(&self, _: Option<&str>) -> bool {
        true
    }
}

impl ChangeGate for ValidationContext {
    fn precheck(&mut self, record_id: &str, doc: &Automerge, incoming: Vec<Change>) -> Validation {
        crate::validate::precheck(record_id, doc, incoming, self)
    }
    fn check(&mut self, record_id: &str, doc: &Automerge, with_all: &Automerge, incoming: Vec<Change>) -> Validation {
        validate_with_result(record_id, doc, Some(with_all), incoming, self)
    }
    /// A record may be read by the sending device's officer when it is on the team of the
    /// record's task (an empty document holds nothing to leak).
    fn may_read(&self, _record_id: &str, doc: &Automerge) -> bool {
        doc.get_heads().is_empty() || self.may_read_task(crate::document::read_task_id(doc).as_deref())
    }
    fn may_read_task(&self, task_id: Option<&str>) -> bool {
        let Some(officer) = self.actors.values().find(|b| b.device_id == self.sending_device_id) else {
            return false;
        };
        task_id.and_then(|task| self.teams.get(task)).is_some_and(|team| team.contains(&officer.officer_id))
    }
}

/// A failure of a whole exchange; nothing was applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("sync protocol version {found} is not supported (expected {expected})")]
    UnsupportedProtocol { found: u32, expected: u32 },
    #[error("a response arrived with no request in flight")]
    NoRequestInFlight,
    #[error("a request is already in flight")]
    RequestInFlight,
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

/// Records changed after a cursor, as the server's caller lists them for [`ServerSession::handle`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedRecords {
    /// Records changed after the device's cursor, in change order, bounded.
    pub records: Vec<String>,
    /// The cursor once these records are sent.
    pub cursor: u64,
    /// More records changed after `cursor`.
    pub more: bool,
}

/// An in-memory change sequence: which record changed at which position.
///
/// The server keeps the same in SQLite; this is the reference for tests and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct ChangeFeed {
    head: u64,
    latest: BTreeMap<String, u64>,
    by_position: BTreeMap<u64, String>,
}

impl ChangeFeed {
    /// Notes that a record changed; returns its new position.
    pub fn record_changed(&mut self, record_id: &str) -> u64 {
        self.head += 1;
        if let Some(old) = self.latest.insert(record_id.to_string(), self.head) {
            self.by_position.remove(&old);
        }
        self.by_position.insert(self.head, record_id.to_string());
        self.head
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    /// At most `limit` records changed after `since`, oldest change first.
    pub fn changed_since(&self, since: Option<u64>, limit: usize) -> ChangedRecords {
        let since = since.unwrap_or(0);
        let mut records = Vec::new();
        let mut cursor = since;
        let mut iter = self.by_position.range(since + 1..);
        for (position, record_id) in iter.by_ref().take(limit) {
            records.push(record_id.clone());
            cursor = *position;
        }
        let more = iter.next().is_some();
        if !more {
            cursor = cursor.max(self.head);
        }
        ChangedRecords { records, cursor, more }
    }
}

/// Bits of a cursor that count positions in the server's change sequence; the bits above name
/// the sequence's epoch ([`encode_cursor`]).
pub const CURSOR_SEQ_BITS: u32 = 48;

/// A cursor as the server hands it to a device: the position in its change sequence, and the
/// sequence's epoch. A database restored from a backup has another epoch than the one devices
/// last saw, so their cursors and the server's sync states with them no longer hold: a cursor
/// of another epoch means "reconcile everything" ([`decode_cursor`]). Epochs are below 2^15, so
/// a cursor fits a signed 64-bit integer.
pub fn encode_cursor(epoch: u16, position: u64) -> u64 {
    (u64::from(epoch & 0x7fff) << CURSOR_SEQ_BITS) | (position & ((1 << CURSOR_SEQ_BITS) - 1))
}

/// The epoch and position of a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: u64) -> (u16, u64) {
    ((cursor >> CURSOR_SEQ_BITS) as u16, cursor & ((1 << CURSOR_SEQ_BITS) - 1))
}

/// What a server's `handle` did.
#[derive(Clone, Debug, Default)]
pub struct ServerReport {
    /// Records whose content changed: the caller stores them and moves them up the change feed.
    pub updated: Vec<String>,
    /// Refused changes with their records, for quarantine.
    pub refused: Vec<(String, Refusal)>,
    /// Records whose sync state moved without their document being loaded (an acknowledgement of
    /// the stored heads): the caller keeps their states as it does those of loaded documents.
    pub settled: Vec<String>,
    /// The saved bytes of every updated record whose changes went through validation, checked to
    /// load again: what the caller stores (saving again would give the same bytes).
    pub saved: BTreeMap<String, Vec<u8>>,
}

/// The server's side of the exchange with one device.
#[derive(Clone, Debug)]
pub struct ServerSession {
    /// Per-record Automerge sync state with this device.
    states: BTreeMap<String, sync::State>,
    /// Changes refused to this device, with their dependencies, by record: stripped from its heads.
    refused: BTreeMap<String, BTreeMap<ChangeHash, Vec<ChangeHash>>>,
    /// Changes from this device that arrived before a change they depend on (a Bloom filter's
    /// false positive makes Automerge do that), by record. They never wait inside a stored
    /// document, where Automerge would apply them unchecked once the dependency arrives; they
    /// wait here, travel in the encoded state, and are validated with the next message.
    held: BTreeMap<String, Vec<Change>>,
    /// Most bytes of records delivered whole in one answer; past it, records go through
    /// Automerge's protocol (heads and a Bloom filter first), over the device's next requests.
    whole_delivery_bytes: usize,
}

/// The default bound on bytes of records delivered whole in one answer: what a device sends in
/// one request by default, so that an answer lost on a slow link costs no more than a request.
pub const WHOLE_DELIVERY_BYTES: usize = 1 << 20;

/// Most changes held per record and device while they wait for a dependency.
pub const MAX_HELD_CHANGES: usize = 1024;

/// First byte of an encoded server-side state that carries held changes.
const HELD_STATE_TAG: u8 = 0xF5;

impl Default for ServerSession {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerSession {
    pub fn new() -> Self {
        Self {
            states: BTreeMap::new(),
            refused: BTreeMap::new(),
            held: BTreeMap::new(),
            whole_delivery_bytes: WHOLE_DELIVERY_BYTES,
        }
    }

    /// Sets the most bytes of records delivered whole in one answer ([`WHOLE_DELIVERY_BYTES`]).
    pub fn set_whole_delivery_bytes(&mut self, bytes: usize) {
        self.whole_delivery_bytes = bytes;
    }

    /// Restores a record's persisted sync state (as made by [`ServerSession::encoded_state`]).
    pub fn restore_state(&mut self, record_id: &str, bytes: &[u8]) -> Result<(), sync::DecodeStateError> {
        let corrupt = || sync::DecodeStateError::Parse("a truncated held-changes state".into());
        let automerge_state = if bytes.first() == Some(&HELD_STATE_TAG) {
            let mut rest = &bytes[1..];
            let mut take = |n: usize| -> Result<&[u8], sync::DecodeStateError> {
                if rest.len() < n {
                    return Err(corrupt());
                }
                let (head, tail) = rest.split_at(n);
                rest = tail;
                Ok(head)
            };
            let state_len = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let state = take(state_len)?.to_vec();
            let count = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
            let mut held = Vec::new();
            for _ in 0..count {
                let len = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
                held.push(
                    Change::from_bytes(take(len)?.to_vec())
                        .map_err(|e| sync::DecodeStateError::Parse(e.to_string()))?,
                );
            }
            self.held.insert(record_id.to_string(), held);
            state
        } else {
            bytes.to_vec()
        };
        self.states.insert(record_id.to_string(), sync::State::decode(&automerge_state)?);
        Ok(())
    }

    /// Remembers a change refused earlier (from quarantine), so it is not asked for again.
    pub fn remember_refused(&mut self, record_id: &str, change: &Change) {
        self.remember_refused_hash(record_id, change.hash(), change.deps().to_vec());
    }

    /// [`ServerSession::remember_refused`] by the change's hash and dependencies, for a change
    /// kept only in part.
    pub fn remember_refused_hash(&mut self, record_id: &str, hash: ChangeHash, deps: Vec<ChangeHash>) {
        self.refused.entry(record_id.to_string()).or_default().insert(hash, deps);
    }

    /// A record's sync state with this device, with any held changes, encoded for persistence.
    pub fn encoded_state(&self, record_id: &str) -> Option<Vec<u8>> {
        let state = self.states.get(record_id)?.encode();
        match self.held.get(record_id).filter(|held| !held.is_empty()) {
            None => Some(state),
            Some(held) => {
                let mut out = vec![HELD_STATE_TAG];
                out.extend((state.len() as u32).to_be_bytes());
                out.extend(&state);
                out.extend((held.len() as u32).to_be_bytes());
                for change in held {
                    out.extend((change.raw_bytes().len() as u32).to_be_bytes());
                    out.extend(change.raw_bytes());
                }
                Some(out)
            }
        }
    }

    /// Changes of a record waiting for a dependency.
    pub fn held(&self, record_id: &str) -> &[Change] {
        self.held.get(record_id).map_or(&[], Vec::as_slice)
    }

    /// Settles a message that only acknowledges what the stored record holds: no changes, nothing
    /// asked for, and exactly the stored heads, with nothing refused or held for the record. Its
    /// sync state moves to those heads (the persistent part) and the record is neither loaded nor
    /// answered: a device holding the server's heads has nothing to learn from an answer, and
    /// Automerge's would carry no change.
    fn settle_acknowledgement(
        &mut self,
        record_id: &str,
        message: &Message,
        docs: &mut impl Documents,
        fresh: &mut BTreeSet<String>,
    ) -> bool {
        if !message.changes.is_empty()
            || !message.need.is_empty()
            || message.heads.is_empty()
            || self.held.get(record_id).is_some_and(|held| !held.is_empty())
            || self.refused.get(record_id).is_some_and(|refused| !refused.is_empty())
        {
            return false;
        }
        let Some(mut stored) = docs.saved(record_id).and_then(|saved| document_heads(saved.document)) else {
            return false;
        };
        let mut theirs = message.heads.clone();
        theirs.sort();
        theirs.dedup();
        stored.sort();
        if theirs != stored {
            return false;
        }
        request_state(&mut self.states, fresh, record_id).shared_heads = stored;
        true
    }

    /// Validates and applies a device's request, and makes the answer.
    ///
    /// `changed_after` is called once the request's changes are applied, with what they changed:
    /// the caller moves those records up its change sequence and lists the records changed
    /// after the device's cursor (`request.since`), so that the answer's cursor covers the
    /// device's own changes and a later no-op sync lists nothing.
    pub fn handle(
        &mut self,
        request: &SyncRequest,
        docs: &mut impl Documents,
        gate: &mut impl ChangeGate,
        changed_after: impl FnOnce(&ServerReport) -> ChangedRecords,
    ) -> Result<(SyncResponse, ServerReport), SessionError> {
        if request.protocol != SYNC_PROTOCOL_VERSION {
            return Err(SessionError::UnsupportedProtocol { found: request.protocol, expected: SYNC_PROTOCOL_VERSION });
        }
        let mut report = ServerReport::default();
        let mut rejections = Vec::new();
        let mut talked_about = Vec::new();
        // Each request starts from the persistent part of every sync state it touches: an answer
        // may have been lost, or this request may be a replay, and the device cannot tell us.
        let mut fresh = BTreeSet::new();
        for DocumentSyncMessage { record_id, message } in &request.documents {
            let malformed = |detail: String| ChangeRejection {
                record_id: record_id.clone(),
                change_hash: String::new(),
                actor: String::new(),
                reason: RejectionReason::MalformedMessage { detail },
            };
            let Ok(uuid) = uuid::Uuid::parse_str(record_id) else {
                rejections.push(malformed("the record id is not a UUID".into()));
                continue;
            };
            if uuid.hyphenated().to_string() != *record_id {
                rejections.push(malformed("the record id is not a lowercase hyphenated UUID".into()));
                continue;
            }
            if talked_about.contains(record_id) || report.settled.contains(record_id) {
                rejections.push(malformed("the record is named more than once in the request".into()));
                continue;
            }
            let message = match decode_message(message) {
                Ok(message) => message,
                Err(error) => {
                    rejections.push(malformed(error));
                    continue;
                }
            };
            if self.settle_acknowledgement(record_id, &message, docs, &mut fresh) {
                report.settled.push(record_id.clone());
                continue;
            }
            let doc = docs.document_or_empty(record_id);
            let state = request_state(&mut self.states, &mut fresh, record_id);
            let refused = self.refused.entry(record_id.clone()).or_default();
            let held = self.held.entry(record_id.clone()).or_default();
            match receive_validated(record_id, doc, state, message, refused, held, gate) {
                Ok(Received { updated, refusals, not_held, saved }) => {
                    if updated {
                        report.updated.push(record_id.clone());
                    }
                    if let Some(saved) = saved {
                        report.saved.insert(record_id.clone(), saved);
                    }
                    // Not refused for good, so not quarantined: the device sends them again.
                    for refusal in not_held {
                        rejections.push(ChangeRejection {
                            record_id: record_id.clone(),
                            change_hash: refusal.change.hash().to_string(),
                            actor: refusal.change.actor_id().to_hex_string(),
                            reason: refusal.reason,
                        });
                    }
                    for refusal in refusals {
                        rejections.push(ChangeRejection {
                            record_id: record_id.clone(),
                            change_hash: refusal.change.hash().to_string(),
                            actor: refusal.change.actor_id().to_hex_string(),
                            reason: refusal.reason.clone(),
                        });
                        report.refused.push((record_id.clone(), refusal));
                    }
                }
                Err(error) => rejections.push(malformed(error)),
            }
            talked_about.push(record_id.clone());
        }
        // A device that may not read a record gets no content of it; once it asks for content
        // (its message needs changes), the record is refused as a whole and the device stops.
        let mut unreadable = BTreeSet::new();
        for DocumentSyncMessage { record_id, message } in &request.documents {
            if report.settled.contains(record_id) {
                continue;
            }
            let Some(doc) = docs.document(record_id) else { continue };
            if gate.may_read(record_id, doc) {
                continue;
            }
            unreadable.insert(record_id.clone());
            let asks_for_content = decode_message(message).is_ok_and(|m| !m.need.is_empty());
            if asks_for_content && !rejections.iter().any(|r: &ChangeRejection| &r.record_id == record_id) {
                rejections.push(ChangeRejection {
                    record_id: record_id.clone(),
                    change_hash: String::new(),
                    actor: String::new(),
                    reason: RejectionReason::RecordNotReadable,
                });
            }
        }
        let changed = changed_after(&report);
        let mut documents = Vec::new();
        let mut answered = BTreeSet::new();
        let mut delivered_bytes = 0;
        for record_id in talked_about.clone().into_iter().chain(changed.records) {
            if !answered.insert(record_id.clone()) {
                continue;
            }
            // A settled record is listed when the device's cursor is behind it, but the device
            // has just acknowledged holding exactly what is stored: nothing to send.
            if report.settled.contains(&record_id) {
                continue;
            }
            let listed_only = !talked_about.contains(&record_id);
            // The bound counts documents; each message adds its heads and framing (about 40
            // bytes and 32 per head) to what it counts.
            let room = self.whole_delivery_bytes.saturating_sub(delivered_bytes);
            if listed_only
                && room > 0
                && !self.states.contains_key(&record_id)
                && let Some(message) = deliver_whole(docs.saved(&record_id).filter(|s| s.document.len() <= room), gate)
            {
                let message = message.encode();
                delivered_bytes += message.len();
                documents.push(DocumentSyncMessage { record_id, message });
                continue;
            }
            let Some(doc) = docs.document(&record_id) else { continue };
            let readable = !unreadable.contains(&record_id) && gate.may_read(&record_id, doc);
            if !readable && !talked_about.contains(&record_id) {
                continue;
            }
            let state = request_state(&mut self.states, &mut fresh, &record_id);
            if let Some(mut message) = doc.generate_sync_message(state) {
                if !readable {
                    // Heads and a Bloom filter, so that the device sends its changes (to be
                    // refused and kept), but never a change of the record.
                    message.changes = automerge::sync::ChunkList::empty();
                }
                documents.push(DocumentSyncMessage { record_id, message: message.encode() });
            }
        }
        let response = SyncResponse {
            protocol: SYNC_PROTOCOL_VERSION,
            cursor: changed.cursor,
            documents,
            rejections,
            more: changed.more,
        };
        Ok((response, report))
    }
}

/// The first message about a record the device has never synced with the server (no sync state
/// here), when the store gives it saved and the device may read it: the whole saved document with
/// its heads, as Automerge sends a document to a peer that has none of it, but without loading it
/// here. It asks for nothing and says nothing of what the server has (no `have`), so the device
/// sends nothing back but its acknowledgement, which [`ServerSession`] settles without a load. A
/// device that had some of the record already merges the document all the same.
fn deliver_whole(saved: Option<SavedRecord<'_>>, gate: &impl ChangeGate) -> Option<Message> {
    let saved = saved?;
    if !gate.may_read_task(saved.task_id) {
        return None;
    }
    let heads = document_heads(saved.document)?;
    if heads.is_empty() {
        return None;
    }
    let mut flags = sync::MessageFlags::new();
    flags.set(sync::MessageFlags::SUPPORTS_SYNC_RESET);
    Some(Message {
        heads,
        need: Vec::new(),
        have: Vec::new(),
        changes: sync::ChunkList::from(saved.document.to_vec()),
        flags: Some(flags),
        version: sync::MessageVersion::V2,
    })
}

/// The sync state of a record for this request: on first use in a request, only its persistent part.
fn request_state<'a>(
    states: &'a mut BTreeMap<String, sync::State>,
    fresh: &mut BTreeSet<String>,
    record_id: &str,
) -> &'a mut sync::State {
    let state = states.entry(record_id.to_string()).or_default();
    if fresh.insert(record_id.to_string()) {
        *state = sync::State::decode(&state.encode()).expect("an encoded state decodes");
    }
    state
}

#[cfg(test)]
mod tests {
    use super::wire::{CHUNK_MAGIC, DOCUMENT_CHUNK, read_uleb, storage_chunks};
    use super::*;
    use automerge::transaction::Transactable;
    use proptest::prelude::*;

    /// A document with two actors, concurrent edits (two heads) and text long enough for Automerge
    /// to compress its columns.
    fn two_headed_document() -> Automerge {
        let mut a = Automerge::new().with_actor(ActorId::from([1u8; 16]));
        a.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(automerge::ROOT, "note", "现场检查".repeat(200))?;
            Ok(())
        })
        .unwrap();
        let mut b = a.fork().with_actor(ActorId::from([2u8; 16]));
        a.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(automerge::ROOT, "a", 1).map(|_| ())).unwrap();
        b.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(automerge::ROOT, "b", 2).map(|_| ())).unwrap();
        a.merge(&mut b).unwrap();
        a
    }

    #[test]
    fn leb128_numbers_are_read_whole_or_refused() {
        let read = |bytes: &[u8]| {
            let mut rest = bytes;
            read_uleb(&mut rest).map(|value| (value, rest.len()))
        };
        assert_eq!(read(&[0x00]), Some((0, 0)));
        assert_eq!(read(&[0xe5, 0x8e, 0x26, 0xff]), Some((624_485, 1)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read(&max), Some((u64::MAX, 0)));
        // A tenth byte with bits beyond the 64th, an eleventh byte, and a number cut short.
        let mut overlong = max;
        overlong[9] = 0x02;
        assert_eq!(read(&overlong), None);
        assert_eq!(read(&[0x80; 11]), None);
        assert_eq!(read(&[0x80, 0x80]), None);
    }

    #[test]
    fn the_heads_of_a_saved_document_are_read_without_loading_it() {
        let doc = two_headed_document();
        assert_eq!(doc.get_heads().len(), 2);
        let compressed = doc.save();
        let plain = doc.save_nocompress();
        assert!(compressed.len() < plain.len(), "the columns were compressed");
        assert_eq!(document_heads(&compressed), Some(doc.get_heads()));
        assert_eq!(document_heads(&plain), Some(doc.get_heads()));
        assert_eq!(document_heads(&Automerge::new().save()), Some(vec![]));
    }

    #[test]
    fn anything_but_one_intact_document_chunk_has_no_heads() {
        let doc = two_headed_document();
        let saved = doc.save_nocompress();
        // Every single changed byte of the header and the heads breaks the checksum or the magic.
        for at in 0..80.min(saved.len()) {
            let mut changed = saved.clone();
            changed[at] ^= 0x01;
            assert_eq!(document_heads(&changed), None, "byte {at} changed");
        }
        for cut in [0, 4, 9, saved.len() / 2, saved.len() - 1] {
            assert_eq!(document_heads(&saved[..cut]), None, "cut at {cut}");
        }
        let change = doc.get_last_local_change().unwrap();
        assert_eq!(document_heads(change.raw_bytes()), None, "a change chunk");
        let mut appended = saved.clone();
        appended.extend(change.raw_bytes());
        assert_eq!(document_heads(&appended), None, "a document with a change after it");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_heads_reader(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = document_heads(&bytes);
            let _ = storage_chunks(&bytes);
        }

        #[test]
        fn a_valid_header_with_arbitrary_contents_is_read_or_refused(contents in proptest::collection::vec(any::<u8>(), 0..200)) {
            use sha2::{Digest, Sha256};
            let mut chunk = CHUNK_MAGIC.to_vec();
            let mut hashed = vec![DOCUMENT_CHUNK, contents.len() as u8 | if contents.len() > 127 { 0x80 } else { 0 }];
            if contents.len() > 127 {
                hashed.push((contents.len() >> 7) as u8);
            }
            hashed.extend(&contents);
            chunk.extend(&Sha256::digest(&hashed)[..4]);
            chunk.extend(&hashed);
            // Whatever the contents, the reader answers without panicking, and what it reads fits.
            if let Some(heads) = document_heads(&chunk) {
                prop_assert!(heads.len() * 32 <= contents.len());
            }
        }
    }

    /// A sync message with one `have` whose Bloom filter is `bloom`, and no changes.
    fn message_with_bloom(bloom: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x42, 0x00, 0x00, 0x01, 0x00, bloom.len() as u8];
        bytes.extend_from_slice(bloom);
        bytes.push(0x00);
        bytes
    }

    /// Regression: such a filter made Automerge divide by zero (found by `hostile_bytes`).
    #[test]
    fn a_bloom_filter_with_entries_but_no_bits_is_refused() {
        let bytes = message_with_bloom(&[0x01, 0x00, 0x07]);
        assert!(Message::decode(&bytes).is_ok(), "Automerge itself accepts it");
        assert!(decode_message(&bytes).unwrap_err().contains("0 bits per entry"));
    }

    #[test]
    fn a_bloom_filter_asking_for_billions_of_probes_is_refused() {
        let bytes = message_with_bloom(&[0x01, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00]);
        assert!(Message::decode(&bytes).is_ok(), "Automerge itself accepts it");
        assert!(decode_message(&bytes).unwrap_err().contains("probes"));
    }

    #[test]
    fn a_real_bloom_filter_passes() {
        let bytes = message_with_bloom(&[0x01, 0x0a, 0x07, 0x12, 0x34]);
        assert!(decode_message(&bytes).is_ok());
    }
}
