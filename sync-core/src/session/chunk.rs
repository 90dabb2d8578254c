//! Paging a backlog over several exchanges: the bounds on what one request carries, and the
//! server's change feed with the cursor that says how far a device has caught up.
//!
//! A request is bounded by record count and bytes ([`SessionConfig`]); the server's answer by the
//! caller's bound on changed records (`more`). A cursor carries the change sequence's epoch
//! ([`encode_cursor`]), so that a database restored from a backup reconciles every device.

use std::collections::BTreeMap;

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

/// Records changed after a cursor, as the server's caller lists them for [`ServerSession::handle`](super::ServerSession::handle).
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
