//! `POST /v1/sync`: a batch of Automerge sync messages from a device, in CBOR
//! (`application/cbor`) or JSON, answered in the same format once committed.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;

use crate::http::AppState;
use crate::http::openapi::{
    self, BodyTooLarge, CallerErrors, ErrorBodySchema, NotCborOrJson, SyncRequestSchema, SyncResponseSchema,
    WriteErrors,
};
use crate::http::{ApiBytes, DeviceBody};
use crate::service;
use crate::service::auth::Caller;
use crate::service::error::ApiResult;

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
            description = openapi::device_body_400("malformed_sync_request", "a sync request"),
            body = ErrorBodySchema,
        ),
        (
            status = 403,
            description = "`device_required`: the access token was not issued to an enrolled device.",
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
        CallerErrors, WriteErrors, BodyTooLarge, NotCborOrJson,
    ),
)]
async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    let mut body = DeviceBody::new(&headers, body);
    let response =
        service::sync::sync(&state, &caller, || body.decode("malformed_sync_request", "a sync request")).await?;
    Ok(body.respond(&response))
}
