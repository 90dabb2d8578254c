//! The transparency log over HTTP: anyone may read its signed checkpoint, its verifier key and
//! consistency proofs; signed-in callers may read inclusion proofs, which carry a leaf's data; a
//! record's readers may read its evidence package ([`crate::service::evidence`]), which anyone
//! can check offline with `fieldsync verify`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use schemas::log::{ConsistencyProof, InclusionProof};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::openapi::{
    CallerErrors, ConsistencyProofSchema, ErrorBodySchema, InclusionProofSchema, InternalError, InvalidProofQuery,
    RecordNotFound, Unauthenticated, WriteErrors,
};
use crate::http::{ApiQuery, AppState};
use crate::service::auth::Caller;
use crate::service::error::{ApiError, ApiResult};
use crate::service::{evidence, transparency};

/// The routes of the transparency log.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/key", get(key))
        .route("/v1/log/proofs/inclusion", get(inclusion))
        .route("/v1/log/proofs/consistency", get(consistency))
        .route("/v1/records/{record_id}/evidence", get(evidence))
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
        WriteErrors, InternalError,
    ),
)]
async fn checkpoint(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(text(transparency::checkpoint_note(&state).await?))
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
        WriteErrors, InternalError,
    ),
)]
async fn key(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(text(transparency::log_key(&state).await?))
}

fn text(body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
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
        (
            status = 422,
            description = "`size_out_of_range`: `size` is larger than the log (`details.size`, \
                `details.tree_size`). `index_out_of_range`: `index` is not below the size \
                (`details.index`, `details.size`).",
            body = ErrorBodySchema,
        ),
        CallerErrors, InvalidProofQuery,
    ),
)]
async fn inclusion(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> ApiResult<Json<InclusionProof>> {
    Ok(Json(transparency::inclusion_proof(&state, &caller, query.index, query.size).await?))
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
        (
            status = 422,
            description = "`size_out_of_range`: `to` is larger than the log (`details.size`, \
                `details.tree_size`). `invalid_range`: `from` is 0 or larger than `to` \
                (`details.from`, `details.to`).",
            body = ErrorBodySchema,
        ),
        InternalError, InvalidProofQuery,
    ),
)]
async fn consistency(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyProof>> {
    Ok(Json(transparency::consistency_proof(&state, query.from, query.to).await?))
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
        (
            status = 500,
            description = "`internal`: an unexpected failure: the stored document, an entry or a blob's file \
                does not read.",
            body = ErrorBodySchema,
        ),
        Unauthenticated, RecordNotFound,
    ),
)]
async fn evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
    ApiQuery(query): ApiQuery<EvidenceQuery>,
) -> ApiResult<Response> {
    let blobs = match query.blobs.as_deref() {
        None | Some("include") => evidence::Blobs::Include,
        Some("hashes") => evidence::Blobs::HashesOnly,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("blobs must be `include` or `hashes`, not {other:?}"),
            ));
        }
    };
    let package = evidence::record_package(&state, &caller, record_id.clone(), blobs).await?;
    let disposition = format!("attachment; filename=\"evidence-{record_id}.tar\"");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        package,
    )
        .into_response())
}
