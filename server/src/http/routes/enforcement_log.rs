//! The enforcement log over HTTP: a device's upload of its signed chain (`POST /v1/log/entries`,
//! CBOR or JSON like `/v1/sync`) and a record's log with the intervals the transparency log
//! proves ([`crate::service::enforcement_log`]).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use schemas::log::RecordLog;

use crate::http::AppState;
use crate::http::openapi::{
    self, BodyTooLarge, CallerErrors, ErrorBodySchema, LogUploadResponseSchema, LogUploadSchema, NotCborOrJson,
    RecordLogSchema, RecordNotFound, Unauthenticated, WriteErrors,
};
use crate::http::{ApiBytes, DeviceBody};
use crate::service::auth::Caller;
use crate::service::enforcement_log;
use crate::service::error::ApiResult;

/// The routes of the enforcement log.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/log/entries", post(upload)).route("/v1/records/{record_id}/log", get(record_log))
}

/// Uploads entries of the calling device's enforcement-log chain.
#[utoipa::path(
    post,
    operation_id = "upload_log_entries",
    path = "/v1/log/entries",
    tag = "log",
    request_body(
        description = "A `LogUpload`: signed entries of the calling device's chain, in any order, each with \
            its payload (raw bytes in CBOR, base64 in JSON). The answer has the request's content type.",
        content(
            (LogUploadSchema = "application/cbor"),
            (LogUploadSchema = "application/json"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "One outcome per entry, in the upload's order, and the latest signed checkpoint \
                (a C2SP signed note) for the device's next entries to name. Entries are placed in chain \
                order (by seq): `accepted` (it extends the chain and is leaf `leaf_index` of the \
                transparency log), `duplicate` (stored already), `held` (an earlier entry is missing; it \
                joins the chain when that arrives), `fork` (it conflicts with the chain; it is kept and \
                the device is flagged), or `refused` with a code: `not_own_device` (the entry names \
                another device), `invalid_entry` (seq 0, or a field over its limit), `bad_signature` \
                (the signature does not verify strictly against the device's enrolled key), \
                `payload_mismatch` (the payload does not hash to `payload_hash`), `too_many_held` (it \
                would be held, but the device has `Config::max_held_log_entries_per_device` (1000) entries \
                held already; send it again once the gap is filled). Nothing is written \
                for a refused entry. Committed before the answer.",
            content(
                (LogUploadResponseSchema = "application/cbor"),
                (LogUploadResponseSchema = "application/json"),
            ),
        ),
        (
            status = 400,
            description = openapi::device_body_400("malformed_log_upload", "a log upload"),
            body = ErrorBodySchema,
        ),
        (
            status = 403,
            description = "`role_required`: the caller is not an `officer`. \
                `device_required`: the access token was not issued to an enrolled device.",
            body = ErrorBodySchema,
        ),
        (
            status = 422,
            description = "`too_many_entries`: more entries than one upload may carry (`details.limit`, \
                1,000 by default). `payload_too_large`: an entry's payload is larger than allowed \
                (`details.limit` bytes, 64 KiB by default; `details.seq`). Nothing is written.",
            body = ErrorBodySchema,
        ),
        CallerErrors, WriteErrors, BodyTooLarge, NotCborOrJson,
    ),
)]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    let mut body = DeviceBody::new(&headers, body);
    let response =
        enforcement_log::upload(&state, &caller, || body.decode("malformed_log_upload", "an enforcement-log upload"))
            .await?;
    Ok(body.respond(&response))
}

/// A record's enforcement log: its entries with the interval the transparency log proves for
/// each, the rules they break, and the devices with a forked chain.
#[utoipa::path(
    get,
    operation_id = "record_log",
    path = "/v1/records/{record_id}/log",
    tag = "log",
    params(("record_id" = String, Path, description = "The record.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The chain entries naming the record from devices of officers on its task's team, \
                by device and seq, each with its leaf index and its interval: the device's claimed time, \
                `not_before_ms` (the receipt time of the last leaf of the checkpoint the entry names, when \
                that checkpoint is the log's own; else absent), `not_after_ms` (the entry's receipt time) \
                and `claim_outside` (the claim is outside by more than the server's clock skew). \
                `findings`: R2 (seal or seizure while no device recorded), R3 (recording stopped without \
                a reason), P2 (an officer present on the record with no certificates-shown entry). \
                `forked_devices`: those of these devices whose chain has a fork.",
            body = RecordLogSchema,
        ),
        (
            status = 500,
            description = "`internal`: an unexpected failure, or the stored document or an entry does not read.",
            body = ErrorBodySchema,
        ),
        Unauthenticated, RecordNotFound,
    ),
)]
async fn record_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<RecordLog>> {
    Ok(Json(enforcement_log::record_log(&state, &caller, record_id).await?))
}
