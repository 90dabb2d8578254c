//! One round of a device's sync ([`sync`]), and the exchange itself ([`exchange`]).
//!
//! A round with no documents is answered without the writer: from memory when its cursor is the
//! record sequence's head as the writer last noted it ([`Records::known_record_head`], never
//! below the committed head), else from one read when nothing changed for the officer
//! ([`Records::changed_for`]). A cursor of another change-sequence epoch (a database restored
//! from a backup, [`Records::sync_epoch`]) reconciles every record of the officer.
//!
//! Otherwise the validation context is read from the database ([`exchange_input`]: every enrolled
//! device's actor, every certificate with its history, the teams of the officer's tasks and of
//! the records named with the checklists of their matters, every recusal, the quarantine), and
//! [`exchange`] runs `sync-core`'s [`ServerSession`] over a [`SyncTx`]: changed records are stored
//! and moved up the change sequence, sync states kept, refused changes quarantined, and each
//! signature a stored record gained, and its lock, appended to the transparency log (looked for
//! only in records whose new status is not a draft). The exchange runs against a snapshot and is committed after a check,
//! or run again in the writer ([`crate::service::sync_commit`]); the answer is sent only after the
//! commit.
//!
//! A change held for review is accepted ([`accept_held`], run in the writer like an exchange with
//! the hold lifted for it alone) or refused ([`refuse_held`]) by a reviewer
//! ([`crate::service::review`]).
//!
//! [`Records::known_record_head`]: crate::store::Records::known_record_head
//! [`Records::changed_for`]: crate::store::Records::changed_for
//! [`Records::sync_epoch`]: crate::store::Records::sync_epoch

use std::collections::BTreeMap;

use automerge::{ActorId, Automerge, Change, ChangeHash};
use schemas::{Certificate, RecordStatus, RejectionReason, SYNC_PROTOCOL_VERSION, SyncRequest, SyncResponse};
use sync_core::document::{read_status, read_task_id};
use sync_core::session::{ChangedRecords, Documents, SavedRecord, ServerSession, decode_cursor, encode_cursor};
use sync_core::transparency::{Leaf, LeafItem};
use sync_core::validate::{ActorBinding, Refusal, ValidationContext, refusal_is_final};

use crate::service::auth::Caller;
use crate::service::{ApiError, ApiResult, Context, Metrics, now_ms};
use crate::store::{
    Device, QUARANTINE_PREFIX_BYTES, QUARANTINE_WHOLE_BYTES, QuarantinedChange, ReviewDecision, Store, StoreError,
    StoreResult, StoredRecord, SyncJob, SyncTx, Task,
};

/// What the exchange needs to know beyond the request, read before the write transaction.
#[derive(Clone)]
pub struct ExchangeInput {
    pub device_id: String,
    pub officer_id: String,
    pub devices: Vec<Device>,
    pub certificates: Vec<Certificate>,
    /// Tasks of the officer and of the records in the request.
    pub tasks: Vec<Task>,
    /// Every recusal, as (officer id, entity id) (P4).
    pub recusals: Vec<(String, String)>,
    /// The checklist of each task of `tasks` whose matter is in the matter list, by task id.
    pub checklists: BTreeMap<String, Vec<String>>,
    pub now_ms: i64,
    pub max_clock_skew_ms: i64,
    pub max_changed: usize,
    /// The device's cursor was of another epoch of the change sequence (the database was
    /// restored from a backup): the sync states kept with the device are stale, and every record
    /// of the officer is listed, so that what the device holds and the server lost comes back.
    pub reconcile: bool,
}

/// What the exchange did, for metrics.
#[derive(Debug, Default)]
pub struct ExchangeCounts {
    pub records_merged: u64,
    pub changes_refused: u64,
    /// Leaves appended to the transparency log (signatures and locks).
    pub leaves_appended: u64,
}

/// The devices, certificates and recusals every exchange validates against, with `tasks`,
/// as an [`ExchangeInput`] of `officer_id` (and of `device_id`, empty for a reviewer).
pub fn exchange_input(
    store: &dyn Store,
    context: &Context,
    device_id: String,
    officer_id: String,
    tasks: Vec<Task>,
) -> StoreResult<ExchangeInput> {
    let recusals = store.recusals()?.into_iter().map(|(officer, entity, _)| (officer, entity)).collect();
    let matters = store.matters()?;
    let checklists = tasks
        .iter()
        .filter_map(|task| {
            crate::service::tasks::checklist_of(matters.as_ref(), &task.matter).map(|c| (task.task_id.clone(), c))
        })
        .collect();
    Ok(ExchangeInput {
        device_id,
        officer_id,
        devices: store.devices()?,
        certificates: store.certificates(None)?,
        tasks,
        recusals,
        checklists,
        now_ms: now_ms(),
        max_clock_skew_ms: context.config.max_clock_skew_ms,
        max_changed: 0,
        reconcile: false,
    })
}

/// Refuses a request past the server's limits: another protocol, too many records, or a record's
/// message with too many changes.
fn check_limits(context: &Context, request: &SyncRequest) -> ApiResult<()> {
    if request.protocol != SYNC_PROTOCOL_VERSION {
        return Err(ApiError::Unprocessable {
            code: "unsupported_protocol",
            message: format!("sync protocol {} is not supported", request.protocol),
            details: Some(serde_json::json!({ "supported": SYNC_PROTOCOL_VERSION })),
        });
    }
    if request.documents.len() > context.config.max_documents_per_sync {
        return Err(ApiError::Unprocessable {
            code: "too_many_documents",
            message: format!("at most {} records per sync request", context.config.max_documents_per_sync),
            details: Some(serde_json::json!({ "limit": context.config.max_documents_per_sync })),
        });
    }
    let limit = context.config.max_changes_per_document;
    for document in &request.documents {
        // Counted without decoding the changes: every storage chunk of the message (several may
        // stand back to back in one element) is one change, or one whole document.
        if let Ok(message) = automerge::sync::Message::decode(&document.message)
            && sync_core::session::message_chunk_count(&message) > limit
        {
            return Err(ApiError::Unprocessable {
                code: "too_many_changes",
                message: format!("at most {limit} changes per record in one sync message"),
                details: Some(serde_json::json!({ "limit": limit, "record_id": document.record_id })),
            });
        }
    }
    Ok(())
}

/// An answer with nothing in it but the cursor.
pub fn nothing_new(cursor: u64) -> SyncResponse {
    SyncResponse { protocol: SYNC_PROTOCOL_VERSION, cursor, documents: Vec::new(), rejections: Vec::new(), more: false }
}

/// One round of the batched sync exchange of the calling device, committed before it returns.
/// The request is decoded by `request` once the caller is known to be a device that may sync.
pub async fn sync(
    context: &Context,
    caller: &Caller,
    request: impl FnOnce() -> ApiResult<SyncRequest>,
) -> ApiResult<SyncResponse> {
    caller.require(&["officer"])?;
    let device_id = caller.device()?.to_string();
    let mut request = request()?;
    check_limits(context, &request)?;
    Metrics::add(&context.metrics.sync_requests, 1);
    // The device's cursor names the change sequence's epoch: one of another epoch (a database
    // restored from a backup) is no cursor here, and every record of the officer is reconciled.
    let epoch = context.store.sync_epoch();
    let cursor_of = |position: u64| encode_cursor(epoch, position);
    let reconcile = match request.since.map(decode_cursor) {
        // Cursors made before they carried an epoch (epoch 0) are of the first one, 1.
        Some((their_epoch, position)) if their_epoch == epoch || (their_epoch == 0 && epoch == 1) => {
            request.since = Some(position);
            false
        }
        Some(_) => {
            request.since = None;
            true
        }
        None => false,
    };
    // A device with nothing to send asks only whether anything changed: answered from a read,
    // without the writer, when nothing did.
    if request.documents.is_empty() && !reconcile {
        let (officer, since) = (caller.officer_id.clone(), request.since.unwrap_or(0));
        // Nothing written since the device's cursor, for anyone: answered from memory.
        if context.store.known_record_head() == Some(since) {
            return Ok(nothing_new(cursor_of(since)));
        }
        let (changed, head) = context.blocking(move |store| store.changed_for(&officer, since)).await?;
        // A cursor beyond the head (a database restored from a backup) goes the full way.
        if !changed && since <= head {
            return Ok(nothing_new(cursor_of(head)));
        }
    }

    let officer_id = caller.officer_id.clone();
    let record_ids: Vec<String> = request.documents.iter().map(|d| d.record_id.clone()).collect();
    let shared = context.clone();
    let mut input = context
        .blocking(move |store| {
            let mut tasks = store.tasks(Some(&officer_id))?;
            for record_id in &record_ids {
                if let Some(task_id) = store.record_task(record_id)?
                    && !tasks.iter().any(|t| t.task_id == task_id)
                    && let Some(task) = store.task(&task_id)?
                {
                    tasks.push(task);
                }
            }
            exchange_input(store, &shared, device_id, officer_id, tasks)
        })
        .await?;
    input.max_changed = context.config.max_changed_per_sync;
    input.reconcile = reconcile;
    // Merge and validate against a snapshot, many requests at once; then commit in the writer,
    // unless a record written here changed meanwhile: then run again inside the writer.
    let counts = std::sync::Arc::new(std::sync::Mutex::new(ExchangeCounts::default()));
    let (input, request) = (std::sync::Arc::new(input), std::sync::Arc::new(request));
    let job = |input: std::sync::Arc<ExchangeInput>,
               request: std::sync::Arc<SyncRequest>,
               shared: std::sync::Arc<std::sync::Mutex<ExchangeCounts>>|
     -> SyncJob {
        Box::new(move |tx| {
            let mut counts = ExchangeCounts::default();
            let response = exchange(tx, &input, &request, &mut counts)?;
            *shared.lock().map_err(|_| StoreError::Other("poisoned".into()))? = counts;
            Ok(response)
        })
    };
    let _slot = context.sync_slots.acquire().await.map_err(|_| ApiError::Unavailable)?;
    let prepared = job(input.clone(), request.clone(), counts.clone());
    let officer = caller.officer_id.clone();
    let (mut response, plan) =
        context.blocking(move |store| crate::service::sync_commit::prepare(store, &officer, prepared)).await?;
    match context.blocking(move |store| crate::service::sync_commit::commit(store, plan)).await? {
        Some(cursor) => {
            if !response.more {
                response.cursor = cursor;
            }
        }
        None => {
            Metrics::add(&context.metrics.sync_retries, 1);
            let again = job(input, request, counts.clone());
            response = context.blocking(move |store| crate::service::sync_commit::run_in_writer(store, again)).await?;
        }
    }
    response.cursor = cursor_of(response.cursor);
    let counts = counts.lock().map(|c| (c.records_merged, c.changes_refused, c.leaves_appended)).unwrap_or_default();
    Metrics::add(&context.metrics.records_merged, counts.0);
    Metrics::add(&context.metrics.changes_refused, counts.1);
    Metrics::add(&context.metrics.log_leaves_appended, counts.2);
    Ok(response)
}

/// What a stored record that was no longer a draft held when the exchange loaded it.
struct SignedBefore {
    locked: bool,
    /// Officer id to the signature entry as stored (a JSON string).
    signatures: BTreeMap<String, String>,
}

/// Documents read from the transaction on first use, and loaded only when the session needs them.
struct StoredDocuments<'a> {
    tx: &'a dyn SyncTx,
    /// Rows read, by record id (`None`: no such record).
    rows: BTreeMap<String, Option<StoredRecord>>,
    loaded: BTreeMap<String, Automerge>,
    /// The signatures of each loaded record that was signed already; a record absent here was a
    /// draft (or new), with none.
    signed_before: BTreeMap<String, SignedBefore>,
    error: Option<StoreError>,
}

impl StoredDocuments<'_> {
    /// The stored row of a record, read once per exchange.
    fn row(&mut self, record_id: &str) -> Option<&StoredRecord> {
        if !self.rows.contains_key(record_id) {
            match self.tx.record(record_id) {
                Ok(row) => {
                    self.rows.insert(record_id.to_string(), row);
                }
                Err(error) => {
                    self.error = Some(error);
                    return None;
                }
            }
        }
        self.rows[record_id].as_ref()
    }
}

impl Documents for StoredDocuments<'_> {
    fn document(&mut self, record_id: &str) -> Option<&mut Automerge> {
        if !self.loaded.contains_key(record_id) {
            self.row(record_id)?;
            let stored = self.rows[record_id].as_ref().expect("read just above");
            match Automerge::load(&stored.document) {
                Ok(doc) => {
                    // Only a record signed already has signatures to compare with afterwards.
                    if stored.status != "draft" {
                        let before = SignedBefore {
                            locked: stored.status == "locked",
                            signatures: sync_core::document::signature_entries(&doc),
                        };
                        self.signed_before.insert(record_id.to_string(), before);
                    }
                    self.loaded.insert(record_id.to_string(), doc);
                }
                Err(error) => {
                    self.error = Some(StoreError::Other(format!("record {record_id} does not load: {error}")));
                    return None;
                }
            }
        }
        self.loaded.get_mut(record_id)
    }

    fn document_or_empty(&mut self, record_id: &str) -> &mut Automerge {
        if self.document(record_id).is_none() {
            self.loaded.entry(record_id.to_string()).or_default();
        }
        self.loaded.get_mut(record_id).expect("just loaded or created")
    }

    /// The stored bytes, unless the record is loaded here already (its copy may have moved on).
    fn saved(&mut self, record_id: &str) -> Option<SavedRecord<'_>> {
        if self.loaded.contains_key(record_id) {
            return None;
        }
        let stored = self.row(record_id)?;
        Some(SavedRecord { document: &stored.document, task_id: stored.task_id.as_deref() })
    }
}

/// The validation context of an exchange with `input`'s device, before its quarantine is read.
fn context_for(input: &ExchangeInput) -> ValidationContext {
    ValidationContext {
        sending_device_id: input.device_id.clone(),
        actors: input
            .devices
            .iter()
            .map(|d| {
                (
                    ActorId::from(d.actor_id.as_slice()),
                    ActorBinding { device_id: d.device_id.clone(), officer_id: d.officer_id.clone() },
                )
            })
            .collect(),
        certificates: input.certificates.clone(),
        teams: input.tasks.iter().map(|t| (t.task_id.clone(), t.team.iter().cloned().collect())).collect(),
        now_ms: input.now_ms,
        max_clock_skew_ms: input.max_clock_skew_ms,
        refused: BTreeMap::new(),
        reviewed: Default::default(),
        task_entities: input.tasks.iter().map(|t| (t.task_id.clone(), t.entity_id.clone())).collect(),
        recusals: input.recusals.iter().cloned().collect(),
        checklists: input
            .checklists
            .iter()
            .map(|(task, codes)| (task.clone(), codes.iter().cloned().collect()))
            .collect(),
        // The bureau's settings hold no completeness switch yet: `DOMAIN.md`'s default.
        completeness: Default::default(),
    }
}

/// Runs one exchange inside `tx`.
pub fn exchange(
    tx: &dyn SyncTx,
    input: &ExchangeInput,
    request: &SyncRequest,
    counts: &mut ExchangeCounts,
) -> StoreResult<SyncResponse> {
    let mut context = context_for(input);
    let mut session = ServerSession::new();
    let kept_state = |record_id: &str| -> StoreResult<Option<Vec<u8>>> {
        if input.reconcile { Ok(None) } else { tx.sync_state(&input.device_id, record_id) }
    };
    for message in &request.documents {
        if let Some(state) = kept_state(&message.record_id)? {
            let _ = session.restore_state(&message.record_id, &state);
        }
        remember_quarantine(tx, &message.record_id, &mut context, &mut session)?;
    }
    let head_before = tx.record_seq_head()?;
    // A cursor beyond the head means the server's database is older than what the device saw
    // (restored from a backup): list everything again rather than nothing.
    let since = request.since.unwrap_or(0);
    let since = if since > head_before { 0 } else { since };
    let listed = tx.changed_since(&input.officer_id, since, input.max_changed + 1)?;
    let more = listed.len() > input.max_changed;
    let listed: Vec<(String, u64)> = listed.into_iter().take(input.max_changed).collect();
    for (record_id, _) in &listed {
        if let Some(state) = kept_state(record_id)? {
            let _ = session.restore_state(record_id, &state);
        }
    }

    let mut docs = StoredDocuments {
        tx,
        rows: BTreeMap::new(),
        loaded: BTreeMap::new(),
        signed_before: BTreeMap::new(),
        error: None,
    };
    let (response, report) = session
        .handle(request, &mut docs, &mut context, |report| ChangedRecords {
            records: listed.iter().map(|(id, _)| id.clone()).collect(),
            // The device's own changes take the next positions once stored below; it has them.
            cursor: if more {
                listed.last().map_or(since, |(_, seq)| *seq)
            } else {
                head_before + report.updated.len() as u64
            },
            more,
        })
        .map_err(|e| StoreError::Other(e.to_string()))?;
    if let Some(error) = docs.error {
        return Err(error);
    }

    for record_id in &report.updated {
        let doc = &docs.loaded[record_id];
        let status = read_status(doc).unwrap_or(RecordStatus::Draft);
        let name = sync_core::document::enum_name(&status);
        // Stored uncompressed: a record's columns are small, so deflate saves about 40 % of its
        // bytes for about 90 % of the time a save takes, and the load that reads it back skips
        // the inflate. The session saved it already, and checked that the bytes load again.
        let Some(saved) = report.saved.get(record_id) else {
            return Err(StoreError::Other(format!("record {record_id} changed without being checked to load again")));
        };
        tx.put_record(record_id, read_task_id(doc).as_deref(), saved, &name, input.now_ms)?;
        if status != RecordStatus::Draft {
            for leaf in signing_leaves(record_id, doc, status, docs.signed_before.get(record_id), input.now_ms) {
                tx.append_leaf(&leaf)?;
                // The store follows a signature or lock with the record's state leaf.
                counts.leaves_appended += 2;
            }
        }
    }
    // Sync states are kept only for records that exist: a request naming any id leaves nothing.
    // A settled record exists (its stored heads were acknowledged) and was not loaded.
    let existing = docs.loaded.iter().filter(|(_, doc)| !doc.get_heads().is_empty()).map(|(id, _)| id);
    for record_id in existing.chain(&report.settled) {
        if let Some(state) = session.encoded_state(record_id) {
            tx.put_sync_state(&input.device_id, record_id, &state)?;
        }
    }
    for (record_id, refusal) in &report.refused {
        tx.quarantine(&quarantined(record_id, refusal, &input.device_id, &context, input.now_ms))?;
    }
    counts.records_merged += report.updated.len() as u64;
    counts.changes_refused += report.refused.len() as u64;
    Ok(response)
}

/// What a reviewer's acceptance of a held change did.
#[derive(Debug, Default)]
pub struct ReviewOutcome {
    /// Hex hashes of the changes merged: the held change, and those of its device built on it
    /// that had been refused only because they built on it.
    pub merged: Vec<String>,
    /// Changes of its device built on it that the rules still refuse, with their reasons.
    pub refused: Vec<(String, RejectionReason)>,
}

/// Why a reviewer's acceptance merged nothing.
#[derive(Debug)]
pub enum ReviewRefusal {
    /// No change held for review, undecided and kept whole, has this hash in this record.
    NotHeld,
    /// The record's rules refuse the change now, review or not (for example, it was signed since).
    Rules(RejectionReason),
}

/// The held, undecided change of a record with this hash.
fn held_row(rows: &[QuarantinedChange], change_hash: &str) -> Option<QuarantinedChange> {
    rows.iter()
        .find(|row| {
            row.change_hash == change_hash
                && row.review.is_none()
                && row.reason.get("code").and_then(|c| c.as_str()) == Some("held_for_review")
        })
        .cloned()
}

/// Records a reviewer's refusal of a held change: from then on it is refused as
/// [`RejectionReason::RefusedOnReview`], whoever sends it.
pub fn refuse_held(
    tx: &dyn SyncTx,
    record_id: &str,
    change_hash: &str,
    decision: &ReviewDecision,
) -> StoreResult<Result<ReviewOutcome, ReviewRefusal>> {
    if held_row(&tx.quarantined_changes(record_id)?, change_hash).is_none() {
        return Ok(Err(ReviewRefusal::NotHeld));
    }
    tx.decide_held(record_id, change_hash, decision)?;
    Ok(Ok(ReviewOutcome::default()))
}

/// Merges a change held for review that a reviewer accepted ([`RejectionReason::HeldForReview`]):
/// validated again as if sent by its device now, with the hold lifted for it alone, together with
/// the changes of that device refused only because they built on it. Everything else the rules
/// say still holds. The decision is recorded on the held change, and on each change merged with it.
pub fn accept_held(
    tx: &dyn SyncTx,
    input: &ExchangeInput,
    record_id: &str,
    change_hash: &str,
    decision: &ReviewDecision,
) -> StoreResult<Result<ReviewOutcome, ReviewRefusal>> {
    let rows = tx.quarantined_changes(record_id)?;
    let Some(held) = held_row(&rows, change_hash).filter(QuarantinedChange::is_whole) else {
        return Ok(Err(ReviewRefusal::NotHeld));
    };
    let Some(stored) = tx.record(record_id)? else { return Ok(Err(ReviewRefusal::NotHeld)) };
    let mut doc = Automerge::load(&stored.document)
        .map_err(|error| StoreError::Other(format!("record {record_id} does not load: {error}")))?;
    let mut context = context_for(&ExchangeInput { device_id: held.device_id.clone(), ..input.clone() });
    let mut session = ServerSession::new();
    remember_quarantine(tx, record_id, &mut context, &mut session)?;
    let held_hash: ChangeHash = change_hash.parse().map_err(|_| StoreError::Other("a stored hash".into()))?;
    context.reviewed.insert(held_hash);
    context.refused.remove(&held_hash);
    // Only the device's changes refused because they build, directly or not, on the held one.
    let mut candidates: Vec<Change> = rows
        .iter()
        .filter(|row| row.device_id == held.device_id && !row.final_verdict && row.review.is_none() && row.is_whole())
        .filter_map(|row| Change::from_bytes(row.change.clone()).ok())
        .collect();
    let mut descendants: std::collections::BTreeSet<ChangeHash> = std::collections::BTreeSet::from([held_hash]);
    let mut built_on = Vec::new();
    loop {
        let (next, rest): (Vec<Change>, Vec<Change>) =
            candidates.into_iter().partition(|c| c.deps().iter().any(|d| descendants.contains(d)));
        if next.is_empty() {
            break;
        }
        descendants.extend(next.iter().map(Change::hash));
        built_on.extend(next);
        candidates = rest;
    }
    let held_change =
        Change::from_bytes(held.change.clone()).map_err(|_| StoreError::Other("a stored change".into()))?;
    let mut incoming = vec![held_change];
    incoming.extend(built_on);
    // A device's bytes go through Automerge under a guard, here as in every exchange.
    let validation = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sync_core::validate::validate(record_id, &doc, incoming, &context)
    }))
    .map_err(|_| StoreError::Other("Automerge could not apply a held change".into()))?;
    if let Some(refusal) = validation.refused.iter().find(|r| r.change.hash() == held_hash) {
        return Ok(Err(ReviewRefusal::Rules(refusal.reason.clone())));
    }
    let signed_before = (stored.status != "draft").then(|| SignedBefore {
        locked: stored.status == "locked",
        signatures: sync_core::document::signature_entries(&doc),
    });
    doc.apply_changes(validation.accepted.iter().cloned())
        .map_err(|error| StoreError::Other(format!("an accepted change does not apply: {error}")))?;
    let saved = sync_core::session::storable(&doc)
        .map_err(|reason| StoreError::Other(format!("the record would not be stored: {reason:?}")))?;
    let status = read_status(&doc).unwrap_or(RecordStatus::Draft);
    let name = sync_core::document::enum_name(&status);
    tx.put_record(record_id, read_task_id(&doc).as_deref(), &saved, &name, input.now_ms)?;
    if status != RecordStatus::Draft {
        for leaf in signing_leaves(record_id, &doc, status, signed_before.as_ref(), input.now_ms) {
            tx.append_leaf(&leaf)?;
        }
    }
    let mut outcome = ReviewOutcome::default();
    for change in &validation.accepted {
        let hash = change.hash().to_string();
        let merged = if hash == change_hash {
            decision.clone()
        } else {
            ReviewDecision { note: format!("merged with {change_hash}, which it builds on"), ..decision.clone() }
        };
        tx.decide_held(record_id, &hash, &merged)?;
        outcome.merged.push(hash);
    }
    for refusal in &validation.refused {
        tx.quarantine(&quarantined(record_id, refusal, &held.device_id, &context, input.now_ms))?;
        outcome.refused.push((refusal.change.hash().to_string(), refusal.reason.clone()));
    }
    Ok(Ok(outcome))
}

/// Reads a record's quarantine into the exchange: final verdicts refuse the change whoever sends
/// it; a verdict that depended on the sender is judged again, so that the rightful device can
/// still deliver the change; a held change a reviewer accepted is judged as reviewed, and one a
/// reviewer refused is refused as such.
fn remember_quarantine(
    tx: &dyn SyncTx,
    record_id: &str,
    context: &mut ValidationContext,
    session: &mut ServerSession,
) -> StoreResult<()> {
    for row in tx.quarantined_changes(record_id)? {
        let Ok(hash) = row.change_hash.parse::<ChangeHash>() else { continue };
        let reason = match &row.review {
            Some(review) if review.decision == "accepted" => {
                context.reviewed.insert(hash);
                continue;
            }
            Some(review) => serde_json::to_value(RejectionReason::RefusedOnReview {
                reviewer_id: review.reviewer_id.clone(),
                note: review.note.clone(),
            })
            .unwrap_or_default(),
            None => row.reason.clone(),
        };
        // A verdict that depended on the sender or on another change is judged again each time.
        if !row.final_verdict && row.review.is_none() {
            continue;
        }
        // Rows written before the dependencies were kept beside them hold the whole change.
        let deps = if row.dependencies.is_empty() && row.is_whole() {
            Change::from_bytes(row.change.clone()).map(|c| c.deps().to_vec()).unwrap_or_default()
        } else {
            row.dependencies.iter().filter_map(|d| d.parse().ok()).collect()
        };
        if row.final_verdict || row.review.is_some() {
            let reason = serde_json::from_value(reason)
                .unwrap_or(RejectionReason::SchemaViolation { detail: "refused earlier".into() });
            context.refused.insert(hash, reason);
            session.remember_refused_hash(record_id, hash, deps);
        }
    }
    Ok(())
}

/// The quarantine row of a refusal: the change whole up to a bound, else its first bytes.
fn quarantined(
    record_id: &str,
    refusal: &Refusal,
    device_id: &str,
    context: &ValidationContext,
    now_ms: i64,
) -> QuarantinedChange {
    let bytes = refusal.change.raw_bytes();
    let kept = if bytes.len() <= QUARANTINE_WHOLE_BYTES { bytes } else { &bytes[..QUARANTINE_PREFIX_BYTES] };
    QuarantinedChange {
        record_id: record_id.to_string(),
        change_hash: refusal.change.hash().to_string(),
        device_id: device_id.to_string(),
        officer_id: context.actors.get(refusal.change.actor_id()).map(|b| b.officer_id.clone()),
        reason: serde_json::to_value(&refusal.reason).unwrap_or_default(),
        final_verdict: refusal_is_final(&refusal.reason),
        dependencies: refusal.change.deps().iter().map(ToString::to_string).collect(),
        change: kept.to_vec(),
        change_bytes: bytes.len() as i64,
        received_at_ms: now_ms,
        review: None,
    }
}

/// The transparency-log leaves of a stored record that is no longer a draft: one per officer
/// signature it holds now and did not before, then its locking if it became locked. Each names
/// the record's heads as stored.
fn signing_leaves(
    record_id: &str,
    doc: &Automerge,
    status: RecordStatus,
    before: Option<&SignedBefore>,
    now_ms: i64,
) -> Vec<Leaf> {
    let heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|head| head.0).collect();
    let mut leaves: Vec<Leaf> = sync_core::document::signature_entries(doc)
        .into_iter()
        .filter(|(officer, _)| before.is_none_or(|before| !before.signatures.contains_key(officer)))
        .map(|(officer_id, signature)| Leaf {
            received_ms: now_ms,
            item: LeafItem::RecordSigned {
                record_id: record_id.to_string(),
                officer_id,
                signature,
                heads: heads.clone(),
            },
        })
        .collect();
    if status == RecordStatus::Locked && !before.is_some_and(|before| before.locked) {
        leaves.push(Leaf {
            received_ms: now_ms,
            item: LeafItem::RecordLocked { record_id: record_id.to_string(), heads },
        });
    }
    leaves
}
