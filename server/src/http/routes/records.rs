//! Reading records: the merged typed view with its open conflicts, lists, change history, and
//! the quarantine of refused changes.

use automerge::Automerge;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use schemas::InspectionRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::ApiQuery;
use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema, InspectionRecordSchema};
use crate::service::access::Access;
use crate::service::auth::Caller;
use crate::service::error::{ApiError, ApiResult};
use crate::store::{QuarantinedChange, RecordFilter, StoredRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/records", get(list))
        .route("/v1/records/{record_id}", get(one))
        .route("/v1/records/{record_id}/history", get(history))
        .route("/v1/quarantine", get(quarantine))
}

/// The stored record, if the caller may read it ([`crate::service::access::Access::record`]); `not_found`
/// alike when it does not exist and when the caller may not read it, so that ids cannot be probed.
pub(crate) async fn readable(state: &AppState, caller: &Caller, record_id: String) -> ApiResult<StoredRecord> {
    let caller = caller.clone();
    state
        .blocking(move |store| {
            let today = crate::service::access::today()?;
            let Some(stored) = store.record(&record_id)? else { return Ok(None) };
            Ok(Access::new(store, &caller, today).record(&stored)?.then_some(stored))
        })
        .await?
        .ok_or(ApiError::NotFound { what: "record" })
}

pub(crate) async fn load(state: &AppState, caller: &Caller, record_id: String) -> ApiResult<(StoredRecord, Automerge)> {
    let stored = readable(state, caller, record_id).await?;
    let doc = Automerge::load(&stored.document).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((stored, doc))
}

/// The merged typed view of a record, with its open conflicts.
#[utoipa::path(
    get,
    operation_id = "get_record",
    path = "/v1/records/{record_id}",
    tag = "records",
    params(("record_id" = String, Path, description = "The record.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The record as the server has merged it.", body = InspectionRecordSchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 404, description = openapi::RECORD_404, body = ErrorBodySchema),
        (
            status = 500,
            description = "`internal`: an unexpected failure, or the stored document does not load or read.",
            body = ErrorBodySchema,
        ),
    ),
)]
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

/// The 400 answer of a query string that does not parse.
const QUERY_400: &str = "`invalid_query`: the query string does not parse (a `limit` that is not a number \
    from 1 to 1000, a parameter given twice).";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only records of this task.
    pub task: Option<String>,
    /// Only records of tasks on this entity.
    pub entity: Option<String>,
    /// Only records in this status: `draft`, `signing` or `locked`.
    pub status: Option<String>,
    /// Only records of tasks this officer is on.
    pub officer: Option<String>,
    /// The last record id of the previous page.
    pub after: Option<String>,
    /// Records per page, 1 to 1000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecordSummary {
    pub record_id: String,
    pub task_id: Option<String>,
    /// `draft`, `signing` or `locked`.
    pub status: String,
    pub updated_at_ms: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecordPage {
    pub records: Vec<RecordSummary>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// The records the caller may read, in record id order, a page at a time.
#[utoipa::path(
    get,
    operation_id = "list_records",
    path = "/v1/records",
    tag = "records",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of records.", body = RecordPage),
        (status = 400, description = QUERY_400, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<RecordPage>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to 1000, not {limit}")));
    }
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
    let (mut rows, next) = state
        .blocking(move |store| {
            let mut rows = store.records(&filter)?;
            let next = (rows.len() > limit).then(|| {
                rows.truncate(limit);
                rows.last().map(|r| r.record_id.clone()).unwrap_or_default()
            });
            // The page is cut before the records the caller may not read are left out, so that
            // `next` still follows the store's order; a page may then hold fewer than `limit`.
            let hidden = Access::new(store, &caller, crate::service::access::today()?).hidden_tasks()?.clone();
            rows.retain(|r| r.task_id.as_ref().is_none_or(|task| !hidden.contains(task)));
            Ok((rows, next))
        })
        .await?;
    rows.truncate(limit);
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
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
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
}

/// Every change merged into a record.
#[utoipa::path(
    get,
    operation_id = "record_history",
    path = "/v1/records/{record_id}/history",
    tag = "records",
    params(("record_id" = String, Path, description = "The record.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The record's changes.", body = Vec<HistoryEntry>),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 404, description = openapi::RECORD_404, body = ErrorBodySchema),
        (
            status = 500,
            description = "`internal`: an unexpected failure, or the stored document does not load.",
            body = ErrorBodySchema,
        ),
    ),
)]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    let genesis = sync_core::document::genesis_actor(&record_id);
    let (_, doc) = load(&state, &caller, record_id).await?;
    let devices = state.blocking(|store| store.devices()).await?;
    let entries = doc
        .get_changes(&[])
        .into_iter()
        .map(|change| {
            let actor = change.actor_id().to_bytes().to_vec();
            // The genesis is nobody's work, whatever device may share its actor id.
            let device =
                (change.actor_id() != &genesis).then(|| devices.iter().find(|d| d.actor_id == actor)).flatten();
            HistoryEntry {
                change_hash: change.hash().to_string(),
                actor: hex::encode(&actor),
                device_id: device.map(|d| d.device_id.clone()),
                officer_id: device.map(|d| d.officer_id.clone()),
                device_revoked_at_ms: device.and_then(|d| d.revoked_at_ms),
                timestamp_ms: change.timestamp(),
                operations: change.len(),
                dependencies: change.deps().iter().map(|d| d.to_string()).collect(),
            }
        })
        .collect();
    Ok(Json(entries))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only the refused changes of this record.
    pub record: Option<String>,
}

/// Refused changes, kept and never merged: for reviewers and supervisors.
#[utoipa::path(
    get,
    path = "/v1/quarantine",
    tag = "records",
    params(QuarantineQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Refused changes in the order they were received.", body = Vec<QuarantinedChange>),
        (status = 400, description = QUERY_400, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 403,
            description = "`role_required`: the caller is neither a `reviewer` nor a `supervisor`.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<QuarantineQuery>,
) -> ApiResult<Json<Vec<QuarantinedChange>>> {
    caller.require(&["reviewer", "supervisor"])?;
    Ok(Json(
        state
            .blocking(move |store| {
                let access = Access::new(store, &caller, crate::service::access::today()?);
                let mut readable = std::collections::BTreeMap::new();
                let mut changes = store.quarantined(query.record.as_deref())?;
                changes.retain(|change| {
                    *readable
                        .entry(change.record_id.clone())
                        .or_insert_with(|| access.record_id(&change.record_id).unwrap_or(false))
                });
                Ok(changes)
            })
            .await?,
    ))
}
