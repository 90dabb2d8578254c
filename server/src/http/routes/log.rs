//! The enforcement log and the transparency log over HTTP.
//!
//! A device uploads its signed enforcement-log chain (`POST /v1/log/entries`, CBOR or JSON like
//! `/v1/sync`); each entry is checked here (its device, fields, signature and payload), then
//! placed against the device's stored chain by the store, which appends every accepted entry to
//! the transparency log in the same transaction. Anyone may read the log's signed checkpoint,
//! its verifier key and consistency proofs; signed-in callers may read inclusion proofs, which
//! carry a leaf's data; a record's readers may read its log with the time interval the
//! transparency log proves for each entry and the rules its entries break, and its evidence
//! package ([`crate::service::evidence`]), which anyone can check offline with `fieldsync verify`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::VerifyingKey;
use schemas::log::{
    ConsistencyProof, EntryOutcome, InclusionProof, LogUpload, LogUploadResponse, RecordLog, RecordLogEntry,
    SignedEntry,
};
use serde::Deserialize;
use sync_core::enforcement_log::{EntryVerification, check_fields, check_record};
use sync_core::transparency::interval;
use utoipa::IntoParams;

use super::records::{load, readable};
use crate::http::AppState;
use crate::http::openapi::{
    self, ConsistencyProofSchema, ErrorBodySchema, InclusionProofSchema, LogUploadResponseSchema, LogUploadSchema,
    RecordLogSchema,
};
use crate::http::{ApiBytes, ApiQuery, BodyFormat};
use crate::service::access::Access;
use crate::service::auth::Caller;
use crate::service::error::{ApiError, ApiResult};
use crate::service::{Metrics, now_ms};
use crate::store::{CheckedEntry, EntryPlacement, LogAppend};

/// The routes of the enforcement log and the transparency log.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/log/entries", post(upload))
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/key", get(key))
        .route("/v1/log/proofs/inclusion", get(inclusion))
        .route("/v1/log/proofs/consistency", get(consistency))
        .route("/v1/records/{record_id}/log", get(record_log))
        .route("/v1/records/{record_id}/evidence", get(evidence))
}

/// Why an uploaded entry is refused: its stable code and a message.
type Refusal = (&'static str, String);

/// Checks one uploaded entry of `device_id`, whose key is `key`: its device, its fields, its
/// signature (strictly), then its payload.
fn check_entry(signed: &SignedEntry, payload: &[u8], device_id: &str, key: &VerifyingKey) -> Result<(), Refusal> {
    if signed.entry.device_id != device_id {
        return Err(("not_own_device", "the entry names another device than the caller's".into()));
    }
    check_fields(&signed.entry).map_err(|e| ("invalid_entry", e.to_string()))?;
    if signed.verify(key).is_err() {
        return Err(("bad_signature", "the signature does not verify against the device's enrolled key".into()));
    }
    if signed.check_payload(payload).is_err() {
        return Err(("payload_mismatch", "the payload does not have the entry's payload hash".into()));
    }
    Ok(())
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
            description = "`malformed_log_upload`: the body is not a log upload in its content type \
                (`details.error` says why). `unreadable_body`: the body could not be read.",
            body = ErrorBodySchema,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 403,
            description = "`role_required`: the caller is not an `officer`. \
                `device_required`: the access token was not issued to an enrolled device.",
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
            description = "`too_many_entries`: more entries than one upload may carry (`details.limit`, \
                1,000 by default). `payload_too_large`: an entry's payload is larger than allowed \
                (`details.limit` bytes, 64 KiB by default; `details.seq`). Nothing is written.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiBytes,
) -> ApiResult<Response> {
    caller.require(&["officer"])?;
    let device_id = caller.device()?.to_string();
    let format = BodyFormat::of(&headers)?;
    let upload: LogUpload = format.decode(&body.0, "malformed_log_upload", "an enforcement-log upload")?;
    let limit = state.config.max_log_entries_per_upload;
    if upload.entries.len() > limit {
        return Err(ApiError::Unprocessable {
            code: "too_many_entries",
            message: format!("at most {limit} entries per upload"),
            details: Some(serde_json::json!({ "limit": limit })),
        });
    }
    let limit = state.config.max_log_payload_bytes;
    if let Some(oversized) = upload.entries.iter().find(|e| e.payload.len() > limit) {
        return Err(ApiError::Unprocessable {
            code: "payload_too_large",
            message: format!("an entry's payload may hold at most {limit} bytes"),
            details: Some(serde_json::json!({ "limit": limit, "seq": oversized.signed.entry.seq })),
        });
    }
    // The log's key exists before anything is appended that a checkpoint will sign.
    state.log_identity().await?;
    let device = {
        let device_id = device_id.clone();
        state.blocking(move |store| store.device(&device_id)).await?
    }
    .ok_or(ApiError::Unauthorized { code: "device_revoked", message: "this device is not enrolled".into() })?;
    let key = <[u8; 32]>::try_from(device.public_key.as_slice())
        .ok()
        .and_then(|key| VerifyingKey::from_bytes(&key).ok())
        .ok_or_else(|| ApiError::Internal(format!("device {device_id} has an unusable key")))?;

    // Signatures are checked off the async runtime: an upload may carry a thousand.
    let checking_device = device_id.clone();
    let (checks, checked) = tokio::task::spawn_blocking(move || {
        let mut checks: Vec<(u64, Result<(), Refusal>)> = Vec::with_capacity(upload.entries.len());
        let mut checked = Vec::new();
        for uploaded in upload.entries {
            let seq = uploaded.signed.entry.seq;
            match check_entry(&uploaded.signed, &uploaded.payload, &checking_device, &key) {
                Ok(()) => {
                    checks.push((seq, Ok(())));
                    checked.push(CheckedEntry { signed: uploaded.signed, payload: uploaded.payload });
                }
                Err(refusal) => checks.push((seq, Err(refusal))),
            }
        }
        (checks, checked)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = now_ms();
    let append = if checked.is_empty() {
        // Nothing to place: the answer needs only a checkpoint, read unless none was ever signed.
        let checkpoint = state
            .blocking(move |store| match crate::service::transparency::latest_checkpoint(store)? {
                Some(latest) => Ok(latest),
                None => crate::service::transparency::checkpoint(store, now),
            })
            .await?;
        LogAppend {
            placements: Vec::new(),
            promoted: 0,
            promoted_forks: 0,
            unknown_checkpoints: 0,
            leaves: 0,
            checkpoint,
        }
    } else {
        let max_held = state.config.max_held_log_entries_per_device;
        state
            .blocking(move |store| {
                crate::service::transparency::append_log_entries(store, &device_id, checked, now, max_held)
            })
            .await?
    };

    let metrics = &state.metrics;
    let mut placements = append.placements.iter();
    let mut outcomes = Vec::with_capacity(checks.len());
    for (seq, check) in checks {
        let outcome = match check {
            Err((code, message)) => {
                Metrics::add(&metrics.log_entries_refused, 1);
                EntryOutcome::Refused { seq, code: code.to_string(), message }
            }
            Ok(()) => match placements.next().ok_or_else(|| ApiError::Internal("an entry was not placed".into()))? {
                EntryPlacement::Accepted { leaf_index } => {
                    Metrics::add(&metrics.log_entries_accepted, 1);
                    EntryOutcome::Accepted { seq, leaf_index: *leaf_index }
                }
                EntryPlacement::Duplicate => EntryOutcome::Duplicate { seq },
                EntryPlacement::Held => {
                    Metrics::add(&metrics.log_entries_held, 1);
                    EntryOutcome::Held { seq }
                }
                EntryPlacement::Fork => {
                    Metrics::add(&metrics.log_entries_forked, 1);
                    EntryOutcome::Fork { seq }
                }
                EntryPlacement::TooManyHeld => {
                    Metrics::add(&metrics.log_entries_refused, 1);
                    EntryOutcome::Refused {
                        seq,
                        code: "too_many_held".into(),
                        message: format!(
                            "this device has {} entries waiting for an earlier one; send the earlier ones first",
                            state.config.max_held_log_entries_per_device
                        ),
                    }
                }
            },
        };
        outcomes.push(outcome);
    }
    Metrics::add(&metrics.log_entries_accepted, append.promoted);
    Metrics::add(&metrics.log_entries_forked, append.promoted_forks);
    Metrics::add(&metrics.log_unknown_checkpoints, append.unknown_checkpoints);
    Metrics::add(&metrics.log_leaves_appended, append.leaves);
    Ok(format.respond(&LogUploadResponse { outcomes, checkpoint: append.checkpoint.note }))
}

/// The signed note of the current tree.
#[utoipa::path(
    get,
    operation_id = "log_checkpoint",
    path = "/v1/log/checkpoint",
    tag = "log",
    responses(
        (
            status = 200,
            description = "The transparency log's checkpoint (C2SP tlog-checkpoint: origin, size, base64                 root) as a C2SP signed note, signed with the log's Ed25519 key (`GET /v1/log/key`). A new                 checkpoint is signed when the tree grew since the last one.",
            body = String,
            content_type = "text/plain; charset=utf-8",
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn checkpoint(State(state): State<AppState>) -> ApiResult<Response> {
    state.log_identity().await?;
    let now = now_ms();
    let checkpoint = state.blocking(move |store| crate::service::transparency::checkpoint(store, now)).await?;
    Ok(text(checkpoint.note))
}

/// The note verifier key that opens the log's checkpoints.
#[utoipa::path(
    get,
    operation_id = "log_key",
    path = "/v1/log/key",
    tag = "log",
    responses(
        (
            status = 200,
            description = "The C2SP note verifier key `<origin>+<key id, 8 hex digits>+<base64 of 0x01 and \
                the Ed25519 public key>`, on one line without a final newline.",
            body = String,
            content_type = "text/plain; charset=utf-8",
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn key(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(text(state.log_identity().await?.verifier_key.clone()))
}

fn text(body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The 422 answer of a tree size beyond the log.
fn size_out_of_range(size: u64, tree_size: u64) -> ApiError {
    ApiError::Unprocessable {
        code: "size_out_of_range",
        message: format!("the log holds {tree_size} leaves, not {size}"),
        details: Some(serde_json::json!({ "size": size, "tree_size": tree_size })),
    }
}

fn hex_hashes(hashes: Vec<[u8; 32]>) -> Vec<String> {
    hashes.into_iter().map(hex::encode).collect()
}

/// The query of an inclusion proof.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The leaf, from 0.
    pub index: u64,
    /// The tree size the proof is for; the latest signed checkpoint's when absent (the current
    /// size if none was signed).
    pub size: Option<u64>,
}

/// A leaf of the transparency log, with its inclusion proof.
#[utoipa::path(
    get,
    operation_id = "log_inclusion_proof",
    path = "/v1/log/proofs/inclusion",
    tag = "log",
    params(InclusionQuery),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The leaf's hash, its data (hex) when the caller may read what it is about (a \
                device, a record, a blob: `server::access`), and its RFC 9162 inclusion proof in the tree of \
                `tree_size` leaves, built from the stored subtrees.",
            body = InclusionProofSchema,
        ),
        (status = 400, description = QUERY_400, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 422,
            description = "`size_out_of_range`: `size` is larger than the log (`details.size`, \
                `details.tree_size`). `index_out_of_range`: `index` is not below the size \
                (`details.index`, `details.size`).",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn inclusion(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> ApiResult<Json<InclusionProof>> {
    let (tree_size, latest) = state
        .blocking(|store| {
            Ok((
                crate::service::transparency::log_size(store)?,
                crate::service::transparency::latest_checkpoint(store)?.map(|c| c.size),
            ))
        })
        .await?;
    let size = query.size.or(latest).unwrap_or(tree_size);
    if size > tree_size {
        return Err(size_out_of_range(size, tree_size));
    }
    let index = query.index;
    if index >= size {
        return Err(ApiError::Unprocessable {
            code: "index_out_of_range",
            message: format!("leaf {index} is not in a tree of {size} leaves"),
            details: Some(serde_json::json!({ "index": index, "size": size })),
        });
    }
    let (leaf, readable, proof) = state
        .blocking(move |store| {
            let Some((leaf, proof)) = crate::service::transparency::log_inclusion(store, index, size)? else {
                return Ok(None);
            };
            // A leaf names a device's officer, a record or a blob: its data goes only to those
            // who may read that; anyone signed in gets the proof, with the leaf's hash.
            let readable = Access::new(store, &caller, crate::service::access::today()?).leaf(&leaf.data)?;
            Ok(Some((leaf, readable, proof)))
        })
        .await?
        .ok_or_else(|| ApiError::Internal(format!("no inclusion proof of {index} in {size} leaves")))?;
    Ok(Json(InclusionProof {
        leaf_index: index,
        tree_size: size,
        leaf_hash: hex::encode(sync_core::merkle::leaf_hash(&leaf.data)),
        leaf: readable.then(|| hex::encode(&leaf.data)),
        proof: hex_hashes(proof),
    }))
}

/// The query of a consistency proof.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The smaller tree's size, at least 1.
    #[param(minimum = 1)]
    pub from: u64,
    /// The larger tree's size, at least `from`, at most the log's.
    #[param(minimum = 1)]
    pub to: u64,
}

/// The proof that one tree of the log is a prefix of a later one.
#[utoipa::path(
    get,
    operation_id = "log_consistency_proof",
    path = "/v1/log/proofs/consistency",
    tag = "log",
    params(ConsistencyQuery),
    responses(
        (
            status = 200,
            description = "The RFC 9162 consistency proof from the tree of `from` leaves to the tree of `to` \
                (empty when they are equal), built from the stored subtrees.",
            body = ConsistencyProofSchema,
        ),
        (status = 400, description = QUERY_400, body = ErrorBodySchema),
        (
            status = 422,
            description = "`size_out_of_range`: `to` is larger than the log (`details.size`, \
                `details.tree_size`). `invalid_range`: `from` is 0 or larger than `to` \
                (`details.from`, `details.to`).",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn consistency(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyProof>> {
    let ConsistencyQuery { from, to } = query;
    if from == 0 || from > to {
        return Err(ApiError::Unprocessable {
            code: "invalid_range",
            message: "a consistency proof goes from a size of at least 1 to one at least as large".into(),
            details: Some(serde_json::json!({ "from": from, "to": to })),
        });
    }
    let tree_size = state.blocking(crate::service::transparency::log_size).await?;
    if to > tree_size {
        return Err(size_out_of_range(to, tree_size));
    }
    let proof = state
        .blocking(move |store| crate::service::transparency::log_consistency(store, from, to))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("no consistency proof from {from} to {to}")))?;
    Ok(Json(ConsistencyProof { from, to, proof: hex_hashes(proof) }))
}

/// The 400 answer of a query string that does not parse.
const QUERY_400: &str = "`invalid_query`: the query string does not parse (a required parameter missing, a \
    size or index that is not a non-negative integer).";

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
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 404, description = openapi::RECORD_404, body = ErrorBodySchema),
        (
            status = 500,
            description = "`internal`: an unexpected failure, or the stored document or an entry does not read.",
            body = ErrorBodySchema,
        ),
    ),
)]
async fn record_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<RecordLog>> {
    let (stored, doc) = load(&state, &caller, record_id.clone()).await?;
    let record = sync_core::document::read_record(&record_id, &doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    let present: Vec<String> = record.officers_present.iter().map(|o| o.officer_id.clone()).collect();
    let task_id = stored.task_id.clone();
    let id = record_id.clone();
    let forked_devices = state
        .blocking(move |store| {
            let team = match task_id {
                Some(task_id) => store.task(&task_id)?.map(|task| task.team).unwrap_or_default(),
                None => Vec::new(),
            };
            crate::service::transparency::forked_devices(store, &id, &team)
        })
        .await?;
    let entries = proven_entries(&state, &record_id, stored.task_id.clone()).await?;
    let findings = check_record(&entries.iter().map(|e| e.signed.entry.clone()).collect::<Vec<_>>(), &present);
    Ok(Json(RecordLog { record_id, entries, findings, forked_devices }))
}

/// The team's devices' entries for a record, each with the interval the transparency log proves
/// for it (after the last leaf of the checkpoint it names, if that checkpoint is the log's own,
/// and by its receipt).
pub(crate) async fn proven_entries(
    state: &AppState,
    record_id: &str,
    task_id: Option<String>,
) -> ApiResult<Vec<RecordLogEntry>> {
    let id = record_id.to_string();
    let entries = state
        .blocking(move |store| {
            let team = match task_id {
                Some(task_id) => store.task(&task_id)?.map(|task| task.team).unwrap_or_default(),
                None => Vec::new(),
            };
            crate::service::transparency::record_log(store, &id, &team)
        })
        .await?;
    let skew = state.config.max_clock_skew_ms;
    Ok(entries
        .into_iter()
        .map(|e| {
            let not_before = match (&e.signed.entry.seen_checkpoint, e.seen_tree) {
                (Some(seen), Some((root, last))) if root == seen.root => last,
                _ => None,
            };
            let interval = interval(e.signed.entry.device_time_ms, not_before, e.received_at_ms, skew);
            RecordLogEntry { signed: e.signed, leaf_index: e.leaf_index, interval }
        })
        .collect())
}

/// What an evidence package carries of the blobs.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// `include` (the default): the blobs' bytes are in the package; `hashes`: only their hashes.
    #[param(pattern = "^(include|hashes)$")]
    pub blobs: Option<String>,
}

/// A record's evidence package: a tar file that `fieldsync verify` checks offline.
#[utoipa::path(
    get,
    operation_id = "record_evidence",
    path = "/v1/records/{record_id}/evidence",
    tag = "log",
    params(("record_id" = String, Path, description = "The record."), EvidenceQuery),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The package (`application/x-tar`, canonical form): the manifest, the log's signed \
                checkpoint (signed now if the log grew) and key, the record's Automerge document and typed view, \
                the devices with their enrolment leaves, the team's devices' log entries for the record with \
                each chain between them, the blobs (or their hashes), and the inclusion proof of every leaf \
                named, all against that checkpoint.",
            content_type = "application/x-tar",
        ),
        (status = 400, description = "`invalid_query`: `blobs` is neither `include` nor `hashes`.", body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 404, description = openapi::RECORD_404, body = ErrorBodySchema),
        (
            status = 500,
            description = "`internal`: an unexpected failure: the stored document, an entry or a blob's file \
                does not read.",
            body = ErrorBodySchema,
        ),
    ),
)]
async fn evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
    ApiQuery(query): ApiQuery<EvidenceQuery>,
) -> ApiResult<Response> {
    let blobs = match query.blobs.as_deref() {
        None | Some("include") => crate::service::evidence::Blobs::Include,
        Some("hashes") => crate::service::evidence::Blobs::HashesOnly,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("blobs must be `include` or `hashes`, not {other:?}"),
            ));
        }
    };
    readable(&state, &caller, record_id.clone()).await?;
    let (store, config) = (state.store.clone(), state.config.clone());
    let id = record_id.clone();
    let package = tokio::task::spawn_blocking(move || {
        crate::service::evidence::export(store.as_ref(), &config, &id, blobs, now_ms())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| match e {
        crate::service::evidence::ExportError::UnknownRecord(_) => ApiError::NotFound { what: "record" },
        other => ApiError::Internal(other.to_string()),
    })?;
    let disposition = format!("attachment; filename=\"evidence-{record_id}.tar\"");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        package,
    )
        .into_response())
}
