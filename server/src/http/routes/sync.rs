//! `POST /v1/sync`: a batch of Automerge sync messages from a device, in CBOR
//! (`application/cbor`) or JSON, answered in the same format once committed.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use schemas::{SYNC_PROTOCOL_VERSION, SyncRequest};
use sync_core::session::{decode_cursor, encode_cursor};

use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema, SyncRequestSchema, SyncResponseSchema};
use crate::http::{ApiBytes, BodyFormat};
use crate::service::auth::Caller;
use crate::service::error::{ApiError, ApiResult};
use crate::service::sync::{ExchangeCounts, ExchangeInput, exchange};
use crate::service::{Metrics, now_ms};
use crate::store::{StoreError, SyncJob};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/sync", post(sync))
}

/// One round of the batched sync exchange, committed before it is answered.
#[utoipa::path(
    post,
    path = "/v1/sync",
    tag = "sync",
    request_body(
        description = "A `SyncRequest`: one Automerge sync message per record the device has something \
            to say about. In CBOR the messages are raw byte strings; in JSON they are base64 strings. \
            The answer has the request's content type.",
        content(
            (SyncRequestSchema = "application/cbor"),
            (SyncRequestSchema = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The server's messages, the change cursor and the refused changes with their \
                reasons, in the request's format (CBOR or JSON).",
            content(
                (SyncResponseSchema = "application/cbor"),
                (SyncResponseSchema = "application/json"),
            ),
        ),
        (
            status = 400,
            description = "`malformed_sync_request`: the body is not a sync request in its content type \
                (`details.error` says why). `unreadable_body`: the body could not be read.",
            body = ErrorBodySchema,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 403,
            description = "`device_required`: the access token was not issued to an enrolled device.",
            body = ErrorBodySchema,
        ),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (
            status = 415,
            description = "`unsupported_content_type`: the body is neither `application/cbor` nor `application/json`.",
            body = ErrorBodySchema,
        ),
        (
            status = 422,
            description = "`unsupported_protocol`: the request's `protocol` is not the server's \
                (`details.supported`). `too_many_documents`: more records than one request may carry \
                (`details.limit`). `too_many_changes`: a record's message carries more changes than one \
                message may (`details.limit`, `details.record_id`).",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiBytes,
) -> ApiResult<Response> {
    let body = body.0;
    caller.require(&["officer"])?;
    let device_id = caller.device()?.to_string();
    let format = BodyFormat::of(&headers)?;
    let request: SyncRequest = format.decode(&body, "malformed_sync_request", "a sync request")?;
    if request.protocol != SYNC_PROTOCOL_VERSION {
        return Err(ApiError::Unprocessable {
            code: "unsupported_protocol",
            message: format!("sync protocol {} is not supported", request.protocol),
            details: Some(serde_json::json!({ "supported": SYNC_PROTOCOL_VERSION })),
        });
    }
    if request.documents.len() > state.config.max_documents_per_sync {
        return Err(ApiError::Unprocessable {
            code: "too_many_documents",
            message: format!("at most {} records per sync request", state.config.max_documents_per_sync),
            details: Some(serde_json::json!({ "limit": state.config.max_documents_per_sync })),
        });
    }
    let limit = state.config.max_changes_per_document;
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
    Metrics::add(&state.metrics.sync_requests, 1);
    // The device's cursor names the change sequence's epoch: one of another epoch (a database
    // restored from a backup) is no cursor here, and every record of the officer is reconciled.
    let epoch = state.store.sync_epoch();
    let cursor_of = |position: u64| encode_cursor(epoch, position);
    let mut request = request;
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
    let respond = |response: &schemas::SyncResponse| format.respond(response);
    // A device with nothing to send asks only whether anything changed: answered from a read,
    // without the writer, when nothing did.
    if request.documents.is_empty() && !reconcile {
        let (officer, since) = (caller.officer_id.clone(), request.since.unwrap_or(0));
        // Nothing written since the device's cursor, for anyone: answered from memory.
        if state.store.known_record_head() == Some(since) {
            return Ok(respond(&schemas::SyncResponse {
                protocol: SYNC_PROTOCOL_VERSION,
                cursor: cursor_of(since),
                documents: Vec::new(),
                rejections: Vec::new(),
                more: false,
            }));
        }
        let (changed, head) = state.blocking(move |store| store.changed_for(&officer, since)).await?;
        // A cursor beyond the head (a database restored from a backup) goes the full way.
        if !changed && since <= head {
            return Ok(respond(&schemas::SyncResponse {
                protocol: SYNC_PROTOCOL_VERSION,
                cursor: cursor_of(head),
                documents: Vec::new(),
                rejections: Vec::new(),
                more: false,
            }));
        }
    }

    let officer_id = caller.officer_id.clone();
    let record_ids: Vec<String> = request.documents.iter().map(|d| d.record_id.clone()).collect();
    let (devices, certificates, tasks, recusals) = state
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
            let recusals = store.recusals()?.into_iter().map(|(officer, entity, _)| (officer, entity)).collect();
            Ok((store.devices()?, store.certificates(None)?, tasks, recusals))
        })
        .await?;
    let input = ExchangeInput {
        device_id,
        officer_id: caller.officer_id.clone(),
        devices,
        certificates,
        tasks,
        recusals,
        now_ms: now_ms(),
        max_clock_skew_ms: state.config.max_clock_skew_ms,
        max_changed: state.config.max_changed_per_sync,
        reconcile,
    };
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
    let _slot = state.sync_slots.acquire().await.map_err(|_| ApiError::Unavailable)?;
    let prepared = job(input.clone(), request.clone(), counts.clone());
    let officer = caller.officer_id.clone();
    let (mut response, plan) =
        state.blocking(move |store| crate::service::sync_commit::prepare(store, &officer, prepared)).await?;
    match state.blocking(move |store| crate::service::sync_commit::commit(store, plan)).await? {
        Some(cursor) => {
            if !response.more {
                response.cursor = cursor;
            }
        }
        None => {
            Metrics::add(&state.metrics.sync_retries, 1);
            let again = job(input, request, counts.clone());
            response = state.blocking(move |store| crate::service::sync_commit::run_in_writer(store, again)).await?;
        }
    }
    response.cursor = cursor_of(response.cursor);
    let counts = counts.lock().map(|c| (c.records_merged, c.changes_refused, c.leaves_appended)).unwrap_or_default();
    Metrics::add(&state.metrics.records_merged, counts.0);
    Metrics::add(&state.metrics.changes_refused, counts.1);
    Metrics::add(&state.metrics.log_leaves_appended, counts.2);
    Ok(respond(&response))
}
