//! Inspection records, the refused changes kept in quarantine, and the sync exchange that writes both.
//!
//! [`SyncTx`] is what one sync exchange reads and writes inside one transaction; [`RecordingTx`]
//! records an exchange's writes as a [`SyncPlan`] instead of making them, for
//! `service::sync_commit` to apply later.
//!
//! The quarantine keeps one row per change and sending device, at most
//! [`QUARANTINE_ROWS_PER_DEVICE`] per record and device (further refusals are answered, not kept).
//! A row holds the reason, whether it is final, the change's dependencies, and its bytes whole up
//! to [`QUARANTINE_WHOLE_BYTES`], else their first [`QUARANTINE_PREFIX_BYTES`] with the length.

use std::cell::RefCell;
use std::collections::BTreeMap;

use sync_core::transparency::Leaf;

use super::*;

/// A stored record's row.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub record_id: String,
    pub task_id: Option<String>,
    pub document: Vec<u8>,
    pub status: String,
    pub seq: i64,
    pub updated_at_ms: i64,
}

/// A refused change kept in quarantine, once per change and sending device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QuarantinedChange {
    pub record_id: String,
    pub change_hash: String,
    /// The device that sent it.
    pub device_id: String,
    /// The officer of the change's actor, when it is an enrolled device's.
    pub officer_id: Option<String>,
    pub reason: serde_json::Value,
    /// Whether the refusal holds whoever sends the change again; a refusal that depended on the
    /// sender or on another change's verdict (`sync_core::validate::refusal_is_final`) does not.
    pub final_verdict: bool,
    /// Hex hashes of the changes it builds on.
    pub dependencies: Vec<String>,
    /// The change's bytes, whole up to `QUARANTINE_WHOLE_BYTES`, else their first
    /// `QUARANTINE_PREFIX_BYTES`: a refusal is evidence, not a store for anything a device sends.
    #[serde(skip)]
    pub change: Vec<u8>,
    /// The change's whole length in bytes.
    pub change_bytes: i64,
    pub received_at_ms: i64,
    /// A reviewer's decision on a change held for review, once made.
    pub review: Option<ReviewDecision>,
}

/// Most refused changes kept per record and sending device: past it a device's further refusals
/// are answered but not kept, so that no device grows the quarantine (which every exchange of the
/// record reads) without bound.
pub const QUARANTINE_ROWS_PER_DEVICE: usize = 1_000;

/// Most bytes of a refused change kept whole in quarantine.
pub const QUARANTINE_WHOLE_BYTES: usize = 64 << 10;

/// Bytes kept of a larger refused change: its header (hash inputs, actor, dependencies) and
/// the start of its operations.
pub const QUARANTINE_PREFIX_BYTES: usize = 4 << 10;

impl QuarantinedChange {
    /// Whether the whole change is kept (not only its first bytes).
    pub fn is_whole(&self) -> bool {
        self.change.len() as i64 == self.change_bytes
    }
}

/// What a reviewer decided about a change held for review.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReviewDecision {
    /// `accepted` (the change was merged) or `refused`.
    pub decision: String,
    pub reviewer_id: String,
    pub decided_at_ms: i64,
    pub note: String,
}

/// Filters of the record list.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    pub task_id: Option<String>,
    pub entity_id: Option<String>,
    pub status: Option<String>,
    pub officer_id: Option<String>,
    /// Only records of tasks this officer is on (for officers who are not supervisors or reviewers).
    pub visible_to: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
}

/// What the lists show of a record, read from its document at one position of the change
/// sequence (`seq`): a stored record without the document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSummary {
    pub record_id: String,
    /// The record's position in the change sequence when this was read: stale once it moved.
    pub seq: i64,
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub entity_id: Option<String>,
    pub entity_name: Option<String>,
    pub conclusion: Option<String>,
    /// The start of what was observed, at most [`SUMMARY_OBSERVATION_CHARS`] characters.
    pub observations: String,
    /// Open conflicts.
    pub conflicts: i64,
}

/// Characters of a record's observations its summary keeps.
pub const SUMMARY_OBSERVATION_CHARS: usize = 200;

/// A stored record's row without its document, with its summary.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    pub task_id: Option<String>,
    pub status: String,
    pub updated_at_ms: i64,
    pub summary: RecordSummary,
}

/// Which of a record's times a summary page's dates bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SummaryDate {
    /// When the inspection started, as the record says (a record with no start is left out
    /// when a bound is given).
    #[default]
    Started,
    /// When the server last merged a change into the record.
    Updated,
}

/// Filters of a page of record summaries: [`RecordFilter`]'s, the tasks the caller may not
/// read, a time range, and a page by offset.
#[derive(Clone, Debug, Default)]
pub struct SummaryFilter {
    pub task_id: Option<String>,
    pub entity_id: Option<String>,
    pub status: Option<String>,
    pub officer_id: Option<String>,
    /// Only records of tasks this officer is on.
    pub visible_to: Option<String>,
    /// Records of these tasks are left out.
    pub hidden_tasks: Vec<String>,
    pub date: SummaryDate,
    /// Unix milliseconds, inclusive.
    pub from_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to_ms: Option<i64>,
    pub offset: usize,
    pub limit: usize,
}

/// What one sync exchange reads and writes, inside one write transaction or against a read
/// snapshot (through [`RecordingTx`], which records the writes instead of making them).
pub trait SyncTx {
    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>>;
    fn sync_state(&self, device_id: &str, record_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Records of tasks `officer_id` is on, changed after `since`, oldest change first, at most `limit`.
    fn changed_since(&self, officer_id: &str, since: u64, limit: usize) -> StoreResult<Vec<(String, u64)>>;
    fn record_seq_head(&self) -> StoreResult<u64>;
    /// Stores a record's document and moves it to the head of the change sequence.
    fn put_record(
        &self,
        record_id: &str,
        task_id: Option<&str>,
        document: &[u8],
        status: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;
    fn put_sync_state(&self, device_id: &str, record_id: &str, state: &[u8]) -> StoreResult<()>;
    fn quarantine(&self, change: &QuarantinedChange) -> StoreResult<()>;
    /// Refused changes of a record, from every sending device.
    fn quarantined_changes(&self, record_id: &str) -> StoreResult<Vec<QuarantinedChange>>;
    /// Records a reviewer's decision on a held change (every row of it, whoever sent it).
    fn decide_held(&self, record_id: &str, change_hash: &str, decision: &ReviewDecision) -> StoreResult<()>;
    /// Appends a leaf to the transparency log, in the transaction that stores what it attests.
    fn append_leaf(&self, leaf: &Leaf) -> StoreResult<()>;
    /// A record's position in the change sequence, without its document.
    fn record_seq(&self, record_id: &str) -> StoreResult<Option<u64>> {
        Ok(self.record(record_id)?.map(|record| record.seq as u64))
    }
    /// The newest quarantine row's position (0 when empty): a refusal kept after it is newer.
    fn quarantine_mark(&self) -> StoreResult<i64> {
        Err(StoreError::Other("this transaction cannot read the quarantine's mark".into()))
    }
    /// Whether a change of `record_id` was quarantined after `mark`.
    fn refused_since(&self, record_id: &str, mark: i64) -> StoreResult<bool> {
        let _ = (record_id, mark);
        Err(StoreError::Other("this transaction cannot read the quarantine".into()))
    }
}

/// A job over [`SyncTx`], run in one transaction; its answer travels type-erased.
pub type SyncTxJob = Box<dyn FnOnce(&dyn SyncTx) -> StoreResult<Box<dyn std::any::Any + Send>> + Send>;

/// One sync exchange, to run inside one write transaction or against a snapshot.
pub type SyncJob = Box<dyn FnOnce(&dyn SyncTx) -> StoreResult<schemas::SyncResponse> + Send>;

/// A write an exchange made against a snapshot, applied later by `service::sync_commit::commit`.
#[derive(Clone, Debug)]
pub enum SyncWrite {
    Record { record_id: String, task_id: Option<String>, document: Vec<u8>, status: String, now_ms: i64 },
    State { device_id: String, record_id: String, state: Vec<u8> },
    Quarantine(QuarantinedChange),
    Leaf(Leaf),
}

/// What an exchange run against a snapshot read and would write.
#[derive(Clone, Debug, Default)]
pub struct SyncPlan {
    pub officer_id: String,
    /// The change sequence's head in the snapshot.
    pub head_before: Option<u64>,
    /// Each record read, with its position in the change sequence then (`None`: absent).
    pub read_seqs: BTreeMap<String, Option<u64>>,
    /// The newest quarantine entry in the snapshot: a refusal committed since, for a record this
    /// exchange writes, means its verdicts may disagree with it.
    pub quarantine_mark: i64,
    pub writes: Vec<SyncWrite>,
}

/// A [`SyncTx`] over a snapshot that records the exchange's writes instead of making them, so
/// that many exchanges can merge and validate at once, off the writer.
pub struct RecordingTx<'a> {
    inner: &'a dyn SyncTx,
    plan: RefCell<SyncPlan>,
}

impl<'a> RecordingTx<'a> {
    pub fn new(inner: &'a dyn SyncTx, officer_id: &str) -> Self {
        Self { inner, plan: RefCell::new(SyncPlan { officer_id: officer_id.to_string(), ..SyncPlan::default() }) }
    }

    pub fn into_plan(self) -> SyncPlan {
        self.plan.into_inner()
    }
}

impl SyncTx for RecordingTx<'_> {
    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>> {
        let record = self.inner.record(record_id)?;
        self.plan.borrow_mut().read_seqs.entry(record_id.to_string()).or_insert(record.as_ref().map(|r| r.seq as u64));
        Ok(record)
    }
    fn sync_state(&self, device_id: &str, record_id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.sync_state(device_id, record_id)
    }
    fn changed_since(&self, officer_id: &str, since: u64, limit: usize) -> StoreResult<Vec<(String, u64)>> {
        self.inner.changed_since(officer_id, since, limit)
    }
    fn record_seq_head(&self) -> StoreResult<u64> {
        let head = self.inner.record_seq_head()?;
        self.plan.borrow_mut().head_before.get_or_insert(head);
        Ok(head)
    }
    fn put_record(
        &self,
        record_id: &str,
        task_id: Option<&str>,
        document: &[u8],
        status: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let mut plan = self.plan.borrow_mut();
        plan.writes.push(SyncWrite::Record {
            record_id: record_id.to_string(),
            task_id: task_id.map(str::to_string),
            document: document.to_vec(),
            status: status.to_string(),
            now_ms,
        });
        let written = plan.writes.iter().filter(|w| matches!(w, SyncWrite::Record { .. })).count() as u64;
        Ok(plan.head_before.unwrap_or(0) + written)
    }
    fn put_sync_state(&self, device_id: &str, record_id: &str, state: &[u8]) -> StoreResult<()> {
        self.plan.borrow_mut().writes.push(SyncWrite::State {
            device_id: device_id.to_string(),
            record_id: record_id.to_string(),
            state: state.to_vec(),
        });
        Ok(())
    }
    fn quarantine(&self, change: &QuarantinedChange) -> StoreResult<()> {
        self.plan.borrow_mut().writes.push(SyncWrite::Quarantine(change.clone()));
        Ok(())
    }
    fn quarantined_changes(&self, record_id: &str) -> StoreResult<Vec<QuarantinedChange>> {
        self.inner.quarantined_changes(record_id)
    }
    fn decide_held(&self, _: &str, _: &str, _: &ReviewDecision) -> StoreResult<()> {
        Err(StoreError::Other("a review decision is made in the writer, never against a snapshot".into()))
    }
    fn append_leaf(&self, leaf: &Leaf) -> StoreResult<()> {
        self.plan.borrow_mut().writes.push(SyncWrite::Leaf(leaf.clone()));
        Ok(())
    }
}

/// Inspection records, the refused changes kept in quarantine, and the sync exchange that writes both.
pub trait Records {
    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>>;
    /// The task of a stored record, without reading its document.
    fn record_task(&self, record_id: &str) -> StoreResult<Option<String>>;
    fn records(&self, filter: &RecordFilter) -> StoreResult<Vec<StoredRecord>>;
    /// The id of every stored record.
    fn record_ids(&self) -> StoreResult<Vec<String>>;
    fn quarantined(&self, record_id: Option<&str>) -> StoreResult<Vec<QuarantinedChange>>;
    /// Stored records whose summary is missing or stale, in record id order after `after`, at
    /// most `limit`.
    fn unsummarized(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<StoredRecord>>;
    /// Keeps summaries, each unless a newer one (a larger `seq`) is kept already.
    fn put_summaries(&self, summaries: Vec<RecordSummary>) -> StoreResult<()>;
    /// How many summarized records match `filter` (its page aside), and its page, in record id order.
    fn summaries(&self, filter: &SummaryFilter) -> StoreResult<(usize, Vec<SummaryRow>)>;
    /// The summaries of the locked records of `task_ids`, in record id order.
    fn locked_summaries(&self, task_ids: &[String]) -> StoreResult<Vec<SummaryRow>>;
    /// Runs `job` in one write transaction (the sync exchanges' writer); returns once it is
    /// committed, after noting the change sequence's new head ([`Records::known_record_head`]).
    fn sync_write(&self, job: SyncTxJob) -> StoreResult<Box<dyn std::any::Any + Send>>;
    /// Runs `job` against one consistent snapshot, off the writer; nothing it writes is kept.
    fn sync_read(&self, job: &mut dyn FnMut(&dyn SyncTx) -> StoreResult<()>) -> StoreResult<()>;
    /// Whether any record of `officer_id`'s tasks changed after `since`, and the change sequence's
    /// head: what a sync with nothing to send needs, answered from a read, without the writer.
    fn changed_for(&self, officer_id: &str, since: u64) -> StoreResult<(bool, u64)>;
    /// The epoch of the change sequence, which every cursor handed to a device carries
    /// (`sync_core::session::encode_cursor`); a backup is given another.
    fn sync_epoch(&self) -> u16 {
        0
    }
    /// The record change sequence's head as this process last wrote it, read from memory: never
    /// below the committed head (every record is written by this process's writer, which notes
    /// the head after each job; a job rolled back later leaves it above). A no-op sync whose
    /// cursor equals it has nothing to receive. `None` when the backend does not keep it.
    fn known_record_head(&self) -> Option<u64> {
        None
    }
}
