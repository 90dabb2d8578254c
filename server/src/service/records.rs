//! Reading records: one record's merged view, pages of the records a caller may read, a record's
//! change history, and the quarantine of refused changes.
//!
//! Every read goes through [`Access`]: a record the caller may not read is `not_found`, alike
//! with one that does not exist, so that ids cannot be probed.

use automerge::Automerge;
use schemas::InspectionRecord;

use crate::service::access::{Access, today};
use crate::service::auth::Caller;
use crate::service::{ApiError, ApiResult, Context};
use crate::store::{
    QuarantinedChange, RecordFilter, RecordSummary, SUMMARY_OBSERVATION_CHARS, Store, StoreResult, StoredRecord,
    SummaryDate, SummaryFilter, SummaryRow,
};

/// The stored record, if the caller may read it ([`Access::record`]); `not_found` alike when it
/// does not exist and when the caller may not read it, so that ids cannot be probed.
pub async fn readable(context: &Context, caller: &Caller, record_id: String) -> ApiResult<StoredRecord> {
    let caller = caller.clone();
    context
        .blocking(move |store| {
            let today = today()?;
            let Some(stored) = store.record(&record_id)? else { return Ok(None) };
            Ok(Access::new(store, &caller, today).record(&stored)?.then_some(stored))
        })
        .await?
        .ok_or(ApiError::NotFound { what: "record" })
}

/// The stored record and its Automerge document, if the caller may read it.
pub async fn load(context: &Context, caller: &Caller, record_id: String) -> ApiResult<(StoredRecord, Automerge)> {
    let stored = readable(context, caller, record_id).await?;
    let doc = Automerge::load(&stored.document).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((stored, doc))
}

/// The merged typed view of a record, with its open conflicts.
pub async fn record(context: &Context, caller: &Caller, record_id: String) -> ApiResult<InspectionRecord> {
    let (stored, doc) = load(context, caller, record_id).await?;
    sync_core::document::read_record(&stored.record_id, &doc).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Which records a page lists.
pub struct RecordQuery {
    pub task_id: Option<String>,
    pub entity_id: Option<String>,
    pub status: Option<String>,
    pub officer_id: Option<String>,
    /// The last record id of the previous page.
    pub after: Option<String>,
    /// Records per page, 1 to 1000; 100 when absent.
    pub limit: Option<usize>,
}

/// One page of the records the caller may read, in record id order, and the `after` of the
/// next page, if there is one.
pub async fn list(
    context: &Context,
    caller: &Caller,
    query: RecordQuery,
) -> ApiResult<(Vec<StoredRecord>, Option<String>)> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to 1000, not {limit}")));
    }
    let sees_all = caller.has_role("supervisor") || caller.has_role("reviewer");
    let filter = RecordFilter {
        task_id: query.task_id,
        entity_id: query.entity_id,
        status: query.status,
        officer_id: query.officer_id,
        visible_to: (!sees_all).then(|| caller.officer_id.clone()),
        after: query.after,
        limit: limit + 1,
    };
    let caller = caller.clone();
    let (mut rows, next) = context
        .blocking(move |store| {
            let mut rows = store.records(&filter)?;
            let next = (rows.len() > limit).then(|| {
                rows.truncate(limit);
                rows.last().map(|r| r.record_id.clone()).unwrap_or_default()
            });
            // The page is cut before the records the caller may not read are left out, so that
            // `next` still follows the store's order; a page may then hold fewer than `limit`.
            let hidden = Access::new(store, &caller, today()?).hidden_tasks()?.clone();
            rows.retain(|r| r.task_id.as_ref().is_none_or(|task| !hidden.contains(task)));
            Ok((rows, next))
        })
        .await?;
    rows.truncate(limit);
    Ok((rows, next))
}

/// One change of a record's history, with the device that made it.
#[derive(Debug, serde::Serialize)]
pub struct HistoryChange {
    /// Hex hash of the change.
    pub change_hash: String,
    /// Hex Automerge actor id.
    pub actor: String,
    /// The enrolled device of that actor, if any (the genesis change has none).
    pub device_id: Option<String>,
    pub officer_id: Option<String>,
    /// When the device was revoked, if it was: what it captured before stays, marked so.
    pub device_revoked_at_ms: Option<i64>,
    /// The change's own time, Unix milliseconds.
    pub timestamp_ms: i64,
    /// Number of operations in the change.
    pub operations: usize,
    /// Hex hashes of the changes it builds on.
    pub dependencies: Vec<String>,
    /// P3: the change was made while its officer's certificate stood suspended, revoked or
    /// surrendered (a status entered after the change merged, with a past effective time): the
    /// certificate, that status and since when. Flagged for a reviewer, neither dropped nor
    /// silently kept.
    pub while_suspended: Option<sync_core::certificates::SuspendedWork>,
}

/// Every change merged into a record.
pub async fn history(context: &Context, caller: &Caller, record_id: String) -> ApiResult<Vec<HistoryChange>> {
    let genesis = sync_core::document::genesis_actor(&record_id);
    let (_, doc) = load(context, caller, record_id).await?;
    let (devices, certificates) = context.blocking(|store| Ok((store.devices()?, store.certificates(None)?))).await?;
    Ok(doc
        .get_changes(&[])
        .into_iter()
        .map(|change| {
            let actor = change.actor_id().to_bytes().to_vec();
            // The genesis is nobody's work, whatever device may share its actor id.
            let device =
                (change.actor_id() != &genesis).then(|| devices.iter().find(|d| d.actor_id == actor)).flatten();
            HistoryChange {
                change_hash: change.hash().to_string(),
                actor: hex::encode(&actor),
                device_id: device.map(|d| d.device_id.clone()),
                officer_id: device.map(|d| d.officer_id.clone()),
                device_revoked_at_ms: device.and_then(|d| d.revoked_at_ms),
                timestamp_ms: change.timestamp(),
                operations: change.len(),
                dependencies: change.deps().iter().map(|d| d.to_string()).collect(),
                while_suspended: device
                    .and_then(|d| crate::service::certificates::flag(&certificates, &d.officer_id, change.timestamp())),
            }
        })
        .collect())
}

/// Refused changes (of `record_id` only, when given) of the records the caller may read: for
/// reviewers and supervisors.
pub async fn quarantine(
    context: &Context,
    caller: &Caller,
    record_id: Option<String>,
) -> ApiResult<Vec<QuarantinedChange>> {
    caller.require(&["reviewer", "supervisor"])?;
    let caller = caller.clone();
    context
        .blocking(move |store| {
            let access = Access::new(store, &caller, today()?);
            let mut readable = std::collections::BTreeMap::new();
            let mut changes = store.quarantined(record_id.as_deref())?;
            changes.retain(|change| {
                *readable
                    .entry(change.record_id.clone())
                    .or_insert_with(|| access.record_id(&change.record_id).unwrap_or(false))
            });
            Ok(changes)
        })
        .await
}

/// The reviewer's queue: the records [`list`] gives (the same access rules), bounded in time,
/// one page of their summaries at a time.
#[derive(Clone)]
pub struct QueueQuery {
    pub task_id: Option<String>,
    pub entity_id: Option<String>,
    pub status: Option<String>,
    pub officer_id: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to_ms: Option<i64>,
    pub date: SummaryDate,
    /// Rows skipped before the page.
    pub offset: usize,
    pub limit: usize,
}

/// How many records of the queue the caller may read, and one page of their summaries, in
/// record id order.
pub async fn queue(context: &Context, caller: &Caller, query: QueueQuery) -> ApiResult<(usize, Vec<SummaryRow>)> {
    if !(1..=1000).contains(&query.limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to 1000, not {}", query.limit)));
    }
    let sees_all = caller.has_role("supervisor") || caller.has_role("reviewer");
    let caller = caller.clone();
    context
        .blocking(move |store| {
            summarize(store)?;
            let hidden = Access::new(store, &caller, today()?).hidden_tasks()?.iter().cloned().collect();
            store.summaries(&SummaryFilter {
                task_id: query.task_id,
                entity_id: query.entity_id,
                status: query.status,
                officer_id: query.officer_id,
                visible_to: (!sees_all).then(|| caller.officer_id.clone()),
                hidden_tasks: hidden,
                date: query.date,
                from_ms: query.from_ms,
                to_ms: query.to_ms,
                offset: query.offset,
                limit: query.limit,
            })
        })
        .await
}

/// What the lists show of a stored record, read from its document; a document that does not
/// read as a record has an empty summary (its page says why).
pub fn summary_of(stored: &StoredRecord) -> RecordSummary {
    let empty = RecordSummary { record_id: stored.record_id.clone(), seq: stored.seq, ..RecordSummary::default() };
    let Ok(doc) = Automerge::load(&stored.document) else { return empty };
    let Ok(record) = sync_core::document::read_record(&stored.record_id, &doc) else { return empty };
    RecordSummary {
        started_at_ms: record.header.started_at_ms,
        ended_at_ms: record.header.ended_at_ms,
        entity_id: record.entity.entity_id,
        entity_name: record.entity.name,
        conclusion: record.header.conclusion,
        observations: record.observations.chars().take(SUMMARY_OBSERVATION_CHARS).collect(),
        conflicts: record.conflicts.len() as i64,
        ..empty
    }
}

/// Brings every record's summary up to date: reads the document of each record changed since
/// its summary was read, once, in pages. Lists call it before they read summaries; the sync
/// exchange never does, so a sync pays nothing for the lists.
pub fn summarize(store: &dyn Store) -> StoreResult<usize> {
    const PAGE: usize = 200;
    let mut after: Option<String> = None;
    let mut read = 0;
    loop {
        let stale = store.unsummarized(after.as_deref(), PAGE)?;
        let Some(last) = stale.last() else { return Ok(read) };
        after = Some(last.record_id.clone());
        read += stale.len();
        let full = stale.len() == PAGE;
        store.put_summaries(stale.iter().map(summary_of).collect())?;
        if !full {
            return Ok(read);
        }
    }
}

/// The registry's name of the entity a record the caller may read names.
pub async fn registry_name(context: &Context, caller: &Caller, record_id: String) -> ApiResult<Option<String>> {
    let record = record(context, caller, record_id).await?;
    let Some(entity_id) = record.entity.entity_id else { return Ok(None) };
    Ok(context.blocking(move |store| store.entity(&entity_id)).await?.map(|entity| entity.name))
}
