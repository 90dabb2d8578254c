//! The server's side of an exchange with one device: validating and applying a request, settling
//! acknowledgements and delivering whole records without a load, and answering.
//!
//! A message that only acknowledges the stored heads moves the device's sync state to them and is
//! not answered. A record listed for a device with no sync state for it is delivered whole, its
//! stored bytes as one message, up to [`WHOLE_DELIVERY_BYTES`] of documents per answer. A change
//! under another enrolled device's actor is refused to its sender alone (`receive.rs`): its own
//! device may still deliver it, as teammates do after a restore.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{self, Message, SyncDoc};
use automerge::{Change, ChangeHash};
use schemas::{
    ChangeRejection, DocumentSyncMessage, RejectionReason, SYNC_PROTOCOL_VERSION, SyncRequest, SyncResponse,
};

use super::receive::{Received, receive_validated};
use super::{ChangeGate, ChangedRecords, Documents, SavedRecord, SessionError, decode_message, document_heads};
use crate::validate::Refusal;

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
