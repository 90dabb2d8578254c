//! Changes held for review: work dated before a suspension or revocation of its officer's
//! certificate that arrived after it (P3). Its date is only the device's claim, so it is neither
//! merged nor refused silently: the record's readers see it with what the device's signed log
//! proves about that time, and a reviewer accepts it (it is merged, if the record's rules still
//! allow it) or refuses it, with a note; the decision is kept with the change.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::log::proven_entries;
use super::records::readable;
use crate::http::ApiJson;
use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema, RecordLogEntrySchema, RejectionReasonSchema};
use crate::service::auth::Caller;
use crate::service::error::{ApiError, ApiResult};
use crate::service::now_ms;
use crate::service::sync::{ExchangeInput, ReviewRefusal, accept_held, refuse_held};
use crate::store::{ReviewDecision, StoreError, SyncJob};

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
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 404, description = openapi::RECORD_404, body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn held(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<Vec<HeldChange>>> {
    let stored = readable(&state, &caller, record_id.clone()).await?;
    let id = record_id.clone();
    let rows = state.blocking(move |store| store.quarantined(Some(&id))).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|row| row.reason.get("code").and_then(|c| c.as_str()) == Some("held_for_review"))
        .collect();
    if rows.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let entries = proven_entries(&state, &record_id, stored.task_id.clone()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| HeldChange {
                device_log: entries.iter().filter(|e| e.signed.entry.device_id == row.device_id).cloned().collect(),
                change_hash: row.change_hash,
                device_id: row.device_id,
                officer_id: row.officer_id,
                reason: row.reason,
                received_at_ms: row.received_at_ms,
                review: row.review,
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
        (status = 400, description = openapi::JSON_400, body = ErrorBodySchema),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (status = 415, description = openapi::JSON_415, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
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
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
    ),
)]
async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path((record_id, change_hash)): Path<(String, String)>,
    ApiJson(request): ApiJson<Decision>,
) -> ApiResult<Json<Decided>> {
    caller.require(&["reviewer"])?;
    let note_chars = request.note.chars().count();
    let accept = match request.decision.as_str() {
        "accept" => true,
        "refuse" => false,
        _ => return Err(invalid_decision("the decision is `accept` or `refuse`")),
    };
    if request.note.trim().is_empty() || note_chars > 4000 {
        return Err(invalid_decision("the note says why, in 1 to 4,000 characters"));
    }
    let stored = readable(&state, &caller, record_id.clone()).await?;
    let decision = ReviewDecision {
        decision: if accept { "accepted" } else { "refused" }.into(),
        reviewer_id: caller.officer_id.clone(),
        decided_at_ms: now_ms(),
        note: request.note,
    };
    let not_held = || ApiError::NotFound { what: "held change" };
    let task_id = stored.task_id.clone().filter(|_| accept);
    let (devices, certificates, tasks, recusals) = state
        .blocking(move |store| {
            let tasks = match task_id {
                Some(task_id) => store.task(&task_id)?.into_iter().collect(),
                None => Vec::new(),
            };
            let recusals = store.recusals()?.into_iter().map(|(officer, entity, _)| (officer, entity)).collect();
            Ok((store.devices()?, store.certificates(None)?, tasks, recusals))
        })
        .await?;
    let input = ExchangeInput {
        device_id: String::new(),
        officer_id: caller.officer_id.clone(),
        devices,
        certificates,
        tasks,
        recusals,
        now_ms: now_ms(),
        max_clock_skew_ms: state.config.max_clock_skew_ms,
        max_changed: 0,
        reconcile: false,
    };
    let outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (shared, id, hash, accepted) = (outcome.clone(), record_id.clone(), change_hash.clone(), decision.clone());
    // Run in the writer like a sync exchange: the record and its quarantine change together.
    let job: SyncJob = Box::new(move |tx| {
        let result = if accept {
            accept_held(tx, &input, &id, &hash, &accepted)?
        } else {
            refuse_held(tx, &id, &hash, &accepted)?
        };
        *shared.lock().map_err(|_| StoreError::Other("poisoned".into()))? = Some(result);
        Ok(schemas::SyncResponse {
            protocol: schemas::SYNC_PROTOCOL_VERSION,
            cursor: 0,
            documents: Vec::new(),
            rejections: Vec::new(),
            more: false,
        })
    });
    state.blocking(move |store| crate::service::sync_commit::run_in_writer(store, job)).await?;
    let result = outcome.lock().map_err(|_| ApiError::Internal("poisoned".into()))?.take();
    match result {
        Some(Ok(outcome)) => Ok(Json(Decided {
            decision: decision.decision,
            merged: outcome.merged,
            still_refused: outcome
                .refused
                .into_iter()
                .map(|(hash, reason)| serde_json::json!({ "change_hash": hash, "reason": reason }))
                .collect(),
        })),
        Some(Err(ReviewRefusal::NotHeld)) => Err(not_held()),
        Some(Err(ReviewRefusal::Rules(reason))) => Err(ApiError::Unprocessable {
            code: "refused_by_rules",
            message: "the record's rules refuse this change now; nothing was merged or decided".into(),
            details: Some(serde_json::json!({ "reason": reason })),
        }),
        None => Err(ApiError::Internal("the review job did not run".into())),
    }
}

fn invalid_decision(message: &str) -> ApiError {
    ApiError::Unprocessable { code: "invalid_decision", message: message.into(), details: None }
}
