//! Changes held for review over HTTP: a record's held changes and a reviewer's decision on one
//! ([`crate::service::review`]).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::ApiJson;
use crate::http::AppState;
use crate::http::openapi::{
    CallerErrors, ErrorBodySchema, JsonBodyErrors, RecordLogEntrySchema, RecordNotFound, RejectionReasonSchema,
    Unavailable,
};
use crate::service::auth::Caller;
use crate::service::error::ApiResult;
use crate::service::review;
use crate::store::ReviewDecision;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/records/{record_id}/held", get(held))
        .route("/v1/records/{record_id}/held/{change_hash}", post(decide))
}

/// A change held for review, with what the log proves about its device's work on the record.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HeldChange {
    /// Hex hash of the change.
    pub change_hash: String,
    /// The device that sent it.
    pub device_id: String,
    pub officer_id: Option<String>,
    /// Why it is held: the claimed time, the suspension's, the certificate's standing.
    #[schema(value_type = RejectionReasonSchema)]
    pub reason: serde_json::Value,
    /// When the server received it: the latest it can have been made.
    pub received_at_ms: i64,
    /// The sending device's signed enforcement-log entries for the record, each with the interval
    /// the transparency log proves for it: what the device's own log says of when it worked.
    #[schema(value_type = Vec<RecordLogEntrySchema>)]
    pub device_log: Vec<schemas::log::RecordLogEntry>,
    /// The reviewer's decision, once made.
    pub review: Option<ReviewDecision>,
}

/// The record's changes held for review, decided or not.
#[utoipa::path(
    get,
    operation_id = "record_held_changes",
    path = "/v1/records/{record_id}/held",
    tag = "records",
    params(("record_id" = String, Path, description = "The record.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The held changes, oldest first.", body = Vec<HeldChange>),
        CallerErrors, RecordNotFound,
    ),
)]
async fn held(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<Vec<HeldChange>>> {
    let held = review::held_changes(&state, &caller, record_id).await?;
    Ok(Json(
        held.into_iter()
            .map(|held| HeldChange {
                device_log: held.device_log,
                change_hash: held.change.change_hash,
                device_id: held.change.device_id,
                officer_id: held.change.officer_id,
                reason: held.change.reason,
                received_at_ms: held.change.received_at_ms,
                review: held.change.review,
            })
            .collect(),
    ))
}

/// A reviewer's decision on a held change.
#[derive(Deserialize, ToSchema)]
pub struct Decision {
    /// `accept` (merge it, if the record's rules allow it now) or `refuse`.
    pub decision: String,
    /// Why, in the reviewer's words (1 to 4,000 characters).
    pub note: String,
}

/// What a decision did.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Decided {
    /// `accepted` or `refused`.
    pub decision: String,
    /// Hex hashes of the changes merged: the held change and those of its device built on it.
    pub merged: Vec<String>,
    /// Changes of its device built on it that the rules still refuse, with their reasons.
    #[schema(value_type = Vec<Object>)]
    pub still_refused: Vec<serde_json::Value>,
}

/// Accepts or refuses a held change.
#[utoipa::path(
    post,
    operation_id = "decide_held_change",
    path = "/v1/records/{record_id}/held/{change_hash}",
    tag = "records",
    params(
        ("record_id" = String, Path, description = "The record."),
        ("change_hash" = String, Path, description = "Hex hash of the held change."),
    ),
    request_body = Decision,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The decision, and what it merged.", body = Decided),
        (status = 403, description = "`role_required`: only reviewers decide.", body = ErrorBodySchema),
        (
            status = 404,
            description = "`not_found`: no such record, or no undecided held change with this hash in it.",
            body = ErrorBodySchema,
        ),
        (
            status = 422,
            description = "`invalid_decision`: the decision is not `accept` or `refuse`, or the note is empty or \
                too long. `refused_by_rules`: accepted, but the record's rules refuse the change now \
                (`details.reason`); nothing was merged or decided.",
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, Unavailable,
    ),
)]
async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path((record_id, change_hash)): Path<(String, String)>,
    ApiJson(request): ApiJson<Decision>,
) -> ApiResult<Json<Decided>> {
    let Decision { decision, note } = request;
    let decided = review::decide(&state, &caller, record_id, change_hash, &decision, note).await?;
    Ok(Json(Decided {
        decision: decided.decision,
        merged: decided.outcome.merged,
        still_refused: decided
            .outcome
            .refused
            .into_iter()
            .map(|(hash, reason)| serde_json::json!({ "change_hash": hash, "reason": reason }))
            .collect(),
    }))
}
