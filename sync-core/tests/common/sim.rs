//! An in-process server and phones for session tests: the real sessions, the real validation,
//! CBOR on the wire, and counted bytes.

use std::collections::{BTreeMap, BTreeSet};

use automerge::Automerge;
use schemas::wire::{from_cbor, to_cbor};
use schemas::{ChangeRejection, SyncRequest, SyncResponse};
use sync_core::session::{DeviceRecords, DeviceSession, Documents, SavedRecord, ServerSession, SessionConfig};
use sync_core::validate::ValidationContext;

use super::Device;

/// The server: stored documents, its change feed, and one session and context per device.
#[derive(Clone)]
pub struct Server {
    pub docs: BTreeMap<String, Automerge>,
    pub feed: sync_core::session::ChangeFeed,
    pub sessions: BTreeMap<String, ServerSession>,
    pub contexts: BTreeMap<String, ValidationContext>,
    /// Bound on changed records per response.
    pub changed_limit: usize,
    /// Every rejection sent, for quarantine checks.
    pub quarantine: Vec<ChangeRejection>,
    /// Behave as the real server does: each exchange starts from persisted sync states only (a
    /// restart before every request) and sees the records saved, a document counting as loaded
    /// when the session first asks for it.
    pub keeps_saved_documents: bool,
    /// Documents loaded by exchanges while `keeps_saved_documents`.
    pub loads: usize,
    /// The sessions' bound on bytes delivered whole per answer, when not the default.
    pub whole_delivery_bytes: Option<usize>,
    /// The change feed's epoch, in every cursor handed out ([`sync_core::session::encode_cursor`]).
    pub epoch: u16,
}

/// The documents of one exchange of a server that keeps them saved: the session gets a record's
/// saved bytes until it asks for the document, which is then "loaded" (counted).
struct SavedDocuments<'a> {
    docs: &'a mut BTreeMap<String, Automerge>,
    /// Each record's saved bytes and task, saved once per exchange.
    saved: BTreeMap<String, (Vec<u8>, Option<String>)>,
    loaded: BTreeSet<String>,
    loads: &'a mut usize,
}

impl SavedDocuments<'_> {
    /// Counts a stored document's first load in this exchange.
    fn load(&mut self, record_id: &str) {
        if self.loaded.insert(record_id.to_string()) && self.docs.contains_key(record_id) {
            *self.loads += 1;
        }
    }
}

impl Documents for SavedDocuments<'_> {
    fn document(&mut self, record_id: &str) -> Option<&mut Automerge> {
        self.load(record_id);
        self.docs.get_mut(record_id)
    }
    fn document_or_empty(&mut self, record_id: &str) -> &mut Automerge {
        self.load(record_id);
        self.docs.entry(record_id.to_string()).or_default()
    }
    fn saved(&mut self, record_id: &str) -> Option<SavedRecord<'_>> {
        if self.loaded.contains(record_id) {
            return None;
        }
        let doc = self.docs.get(record_id)?;
        let (document, task_id) = self
            .saved
            .entry(record_id.to_string())
            .or_insert_with(|| (doc.save_nocompress(), sync_core::document::read_task_id(doc)));
        Some(SavedRecord { document, task_id: task_id.as_deref() })
    }
}

impl Server {
    pub fn new(contexts: BTreeMap<String, ValidationContext>) -> Self {
        Self {
            docs: BTreeMap::new(),
            feed: Default::default(),
            sessions: BTreeMap::new(),
            contexts,
            changed_limit: 512,
            quarantine: Vec::new(),
            keeps_saved_documents: false,
            loads: 0,
            whole_delivery_bytes: None,
            epoch: 1,
        }
    }

    /// A copy of the server as a backup holds it: the same state, with an epoch of its own.
    pub fn backup(&self) -> Self {
        let mut copy = self.clone();
        copy.epoch = self.epoch + 1;
        copy
    }

    /// Handles one CBOR request from `device_id`; returns the CBOR response.
    pub fn exchange(&mut self, device_id: &str, request: &[u8]) -> Vec<u8> {
        let mut request: SyncRequest = from_cbor(request).expect("a well-formed request");
        if self.keeps_saved_documents {
            self.restart();
        }
        // A cursor of another epoch: the device's sync states here are stale; reconcile all.
        match request.since.map(sync_core::session::decode_cursor) {
            Some((epoch, position)) if epoch == self.epoch => request.since = Some(position),
            Some(_) => {
                request.since = None;
                self.sessions.remove(device_id);
            }
            None => {}
        }
        let session = self.sessions.entry(device_id.to_string()).or_default();
        if let Some(bytes) = self.whole_delivery_bytes {
            session.set_whole_delivery_bytes(bytes);
        }
        let context = self.contexts.get_mut(device_id).expect("an enrolled device");
        let (feed, limit) = (&mut self.feed, self.changed_limit);
        let changed_after = |report: &sync_core::session::ServerReport| {
            for record_id in &report.updated {
                feed.record_changed(record_id);
            }
            feed.changed_since(request.since, limit)
        };
        let (response, report) = if self.keeps_saved_documents {
            let mut docs = SavedDocuments {
                docs: &mut self.docs,
                saved: BTreeMap::new(),
                loaded: BTreeSet::new(),
                loads: &mut self.loads,
            };
            session.handle(&request, &mut docs, context, changed_after)
        } else {
            session.handle(&request, &mut self.docs, context, changed_after)
        }
        .expect("a known protocol");
        for (_, refusal) in &report.refused {
            if sync_core::validate::refusal_is_final(&refusal.reason) {
                context.refused.insert(refusal.change.hash(), refusal.reason.clone());
            }
        }
        self.quarantine.extend(response.rejections.iter().cloned());
        let mut response = response;
        response.cursor = sync_core::session::encode_cursor(self.epoch, response.cursor);
        to_cbor(&response)
    }

    /// The server forgets its in-memory sessions, as after a restart; documents persist.
    pub fn restart(&mut self) {
        let states: Vec<(String, String, Vec<u8>)> = self
            .sessions
            .iter()
            .flat_map(|(device, session)| {
                self.docs.keys().filter_map(move |record| {
                    session.encoded_state(record).map(|bytes| (device.clone(), record.clone(), bytes))
                })
            })
            .collect();
        self.sessions.clear();
        for (device, record, bytes) in states {
            self.sessions.entry(device).or_default().restore_state(&record, &bytes).unwrap();
        }
    }
}

/// A phone: its records and its session with the server.
pub struct Phone {
    pub device: Device,
    pub records: DeviceRecords,
    pub session: DeviceSession,
}

/// What one sync moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub requests: usize,
    pub bytes_up: usize,
    pub bytes_down: usize,
    pub documents_up: usize,
    pub documents_down: usize,
    pub rejections: Vec<ChangeRejection>,
}

impl Phone {
    pub fn new(device: Device, config: SessionConfig) -> Self {
        let records = DeviceRecords::new(device.actor.clone());
        Self { device, records, session: DeviceSession::new(config) }
    }

    /// Syncs until the session is quiet; panics if it does not end within `max_requests`.
    pub fn sync(&mut self, server: &mut Server, max_requests: usize) -> SyncStats {
        let mut stats = SyncStats::default();
        self.session.begin();
        while let Some(request) = self.session.poll(&mut self.records) {
            assert!(stats.requests < max_requests, "sync did not end within {max_requests} requests");
            stats.requests += 1;
            stats.documents_up += request.documents.len();
            let bytes = to_cbor(&request);
            stats.bytes_up += bytes.len();
            let response = server.exchange(&self.device.id, &bytes);
            stats.bytes_down += response.len();
            let response: SyncResponse = from_cbor(&response).unwrap();

            stats.documents_down += response.documents.len();
            let report = self.session.handle(response, &mut self.records).unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            stats.rejections.extend(report.rejections);
        }
        stats
    }
}
