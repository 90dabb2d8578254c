//! Reading records: the merged typed view with its open conflicts, lists, change history, and
//! the quarantine of refused changes.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use schemas::InspectionRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::ApiQuery;
use crate::http::AppState;
use crate::http::openapi::{
    CallerErrors, ErrorBodySchema, InspectionRecordSchema, InvalidRecordQuery, RecordNotFound, Unauthenticated,
    UnreadableRecord,
};
use crate::service::auth::Caller;
use crate::service::error::ApiResult;
use crate::service::records::{self, HistoryChange, RecordQuery};
use crate::store::QuarantinedChange;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/records", get(list))
        .route("/v1/records/{record_id}", get(one))
        .route("/v1/records/{record_id}/history", get(history))
        .route("/v1/quarantine", get(quarantine))
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
        Unauthenticated, RecordNotFound, UnreadableRecord,
    ),
)]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<InspectionRecord>> {
    Ok(Json(records::record(&state, &caller, record_id).await?))
}

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
        CallerErrors, InvalidRecordQuery,
    ),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<RecordPage>> {
    let query = RecordQuery {
        task_id: query.task,
        entity_id: query.entity,
        status: query.status,
        officer_id: query.officer,
        after: query.after,
        limit: query.limit,
    };
    let (rows, next) = records::list(&state, &caller, query).await?;
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

// The document's name of the service's `HistoryChange`, whose fields it repeats.
/// One change of a record's history.
#[derive(ToSchema)]
#[allow(dead_code)]
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
    /// P3: set when the change was made while its officer's certificate stood suspended, revoked
    /// or surrendered (a status entered after it merged, with a past effective time): flagged for
    /// a reviewer, neither dropped nor silently kept.
    pub while_suspended: Option<SuspendedWorkEntry>,
}

// The document's name of `sync_core::certificates::SuspendedWork`, whose fields it repeats.
/// Work made while a certificate of its officer stood suspended, revoked or surrendered.
#[derive(ToSchema)]
#[schema(as = SuspendedWork)]
#[allow(dead_code)]
pub struct SuspendedWorkEntry {
    /// The certificate whose status change the work falls after.
    pub number: String,
    /// `suspended`, `revoked` or `surrendered`.
    pub standing: String,
    /// When that status took effect, Unix ms.
    pub since_ms: i64,
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
        (
            status = 500,
            description = "`internal`: an unexpected failure, or the stored document does not load.",
            body = ErrorBodySchema,
        ),
        Unauthenticated, RecordNotFound,
    ),
)]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<Vec<HistoryChange>>> {
    Ok(Json(records::history(&state, &caller, record_id).await?))
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
        (
            status = 403,
            description = "`role_required`: the caller is neither a `reviewer` nor a `supervisor`.",
            body = ErrorBodySchema,
        ),
        CallerErrors, InvalidRecordQuery,
    ),
)]
async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<QuarantineQuery>,
) -> ApiResult<Json<Vec<QuarantinedChange>>> {
    Ok(Json(records::quarantine(&state, &caller, query.record).await?))
}
