//! Reading records: the merged typed view with its open conflicts, lists, change history, and
//! the quarantine of refused changes.

use automerge::Automerge;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use schemas::InspectionRecord;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::identity::Caller;
use crate::store::{QuarantinedChange, RecordFilter, StoredRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/records", get(list))
        .route("/v1/records/{record_id}", get(one))
        .route("/v1/records/{record_id}/history", get(history))
        .route("/v1/quarantine", get(quarantine))
}

/// Whether the caller may read records of `task_id`: supervisors and reviewers all, officers their own.
async fn may_read(state: &AppState, caller: &Caller, task_id: Option<&str>) -> ApiResult<bool> {
    if caller.has_role("supervisor") || caller.has_role("reviewer") {
        return Ok(true);
    }
    let Some(task_id) = task_id.map(str::to_string) else { return Ok(false) };
    let task = state.blocking(move |store| store.task(&task_id)).await?;
    Ok(task.is_some_and(|t| t.team.contains(&caller.officer_id)))
}

async fn load(state: &AppState, caller: &Caller, record_id: String) -> ApiResult<(StoredRecord, Automerge)> {
    let stored =
        state.blocking(move |store| store.record(&record_id)).await?.ok_or(ApiError::NotFound { what: "record" })?;
    if !may_read(state, caller, stored.task_id.as_deref()).await? {
        return Err(ApiError::NotFound { what: "record" });
    }
    let doc = Automerge::load(&stored.document).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((stored, doc))
}

async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<InspectionRecord>> {
    let (stored, doc) = load(&state, &caller, record_id).await?;
    let record =
        sync_core::document::read_record(&stored.record_id, &doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(record))
}

#[derive(Deserialize)]
pub struct ListQuery {
    pub task: Option<String>,
    pub entity: Option<String>,
    pub status: Option<String>,
    pub officer: Option<String>,
    /// The last record id of the previous page.
    pub after: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Serialize, Deserialize)]
pub struct RecordSummary {
    pub record_id: String,
    pub task_id: Option<String>,
    pub status: String,
    pub updated_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
pub struct RecordPage {
    pub records: Vec<RecordSummary>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<RecordPage>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let sees_all = caller.has_role("supervisor") || caller.has_role("reviewer");
    let filter = RecordFilter {
        task_id: query.task,
        entity_id: query.entity,
        status: query.status,
        officer_id: query.officer,
        visible_to: (!sees_all).then(|| caller.officer_id.clone()),
        after: query.after,
        limit: limit + 1,
    };
    let mut rows = state.blocking(move |store| store.records(&filter)).await?;
    let next = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last().map(|r| r.record_id.clone()).unwrap_or_default()
    });
    Ok(Json(RecordPage {
        records: rows
            .into_iter()
            .map(|r| RecordSummary {
                record_id: r.record_id,
                task_id: r.task_id,
                status: r.status,
                updated_at_ms: r.updated_at_ms,
            })
            .collect(),
        next,
    }))
}

/// One change of a record's history.
#[derive(Serialize, Deserialize)]
pub struct HistoryEntry {
    pub change_hash: String,
    pub actor: String,
    pub device_id: Option<String>,
    pub officer_id: Option<String>,
    pub timestamp_ms: i64,
    pub operations: usize,
    pub dependencies: Vec<String>,
}

async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    let (_, doc) = load(&state, &caller, record_id).await?;
    let devices = state.blocking(|store| store.devices()).await?;
    let entries = doc
        .get_changes(&[])
        .into_iter()
        .map(|change| {
            let actor = change.actor_id().to_bytes().to_vec();
            let device = devices.iter().find(|d| d.actor_id == actor);
            HistoryEntry {
                change_hash: change.hash().to_string(),
                actor: hex::encode(&actor),
                device_id: device.map(|d| d.device_id.clone()),
                officer_id: device.map(|d| d.officer_id.clone()),
                timestamp_ms: change.timestamp(),
                operations: change.len(),
                dependencies: change.deps().iter().map(|d| d.to_string()).collect(),
            }
        })
        .collect();
    Ok(Json(entries))
}

#[derive(Deserialize)]
pub struct QuarantineQuery {
    pub record: Option<String>,
}

/// Refused changes, kept and never merged: for reviewers and supervisors.
async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<QuarantineQuery>,
) -> ApiResult<Json<Vec<QuarantinedChange>>> {
    caller.require(&["reviewer", "supervisor"])?;
    Ok(Json(state.blocking(move |store| store.quarantined(query.record.as_deref())).await?))
}
