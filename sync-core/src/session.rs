//! The batched sync session, sans IO.
//!
//! A device and the server talk about many records in one exchange: the
//! device's [`DeviceSession::poll`] makes a [`SyncRequest`] with one Automerge
//! sync message per record it has something to say about; the server's
//! [`ServerSession::handle`] validates and applies them and answers with a
//! [`SyncResponse`]; the device's [`DeviceSession::handle`] applies that. The
//! device polls again until `poll` returns `None`.
//!
//! [`SyncRequest`]: schemas::SyncRequest
//! [`SyncResponse`]: schemas::SyncResponse
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
//!
//! # Files
//!
//! - [`DeviceSession`] (`device.rs`): the device's side, over the device's [`DeviceRecords`].
//! - [`ServerSession`] (`server.rs`): the server's side of an exchange with one device.
//! - `chunk.rs`: how a backlog is paged over several requests and answers: the bounds on one
//!   request ([`SessionConfig`]), and the change feed and cursor ([`ChangeFeed`], [`encode_cursor`]).
//! - `receive.rs`: one device message received into a record through the [`ChangeGate`].
//! - `wire.rs`: the bytes of an exchange: decoding a peer's message, a saved document's heads.

use std::collections::BTreeMap;

use automerge::{Automerge, Change};

use crate::validate::{Validation, ValidationContext, validate_with_result};

mod chunk;
mod device;
mod receive;
mod server;
mod wire;

pub use chunk::{CURSOR_SEQ_BITS, ChangeFeed, ChangedRecords, SessionConfig, decode_cursor, encode_cursor};
pub use device::{DeviceRecords, DeviceReport, DeviceSession};
pub use receive::{MAX_RECORD_BYTES, storable};
pub use server::{MAX_HELD_CHANGES, ServerReport, ServerSession, WHOLE_DELIVERY_BYTES};
pub use wire::{decode_message, document_heads, message_chunk_count};

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
