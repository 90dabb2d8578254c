//! Photos and other media as content-addressed blobs, uploaded in resumable chunks.
//!
//! A record names its photos by SHA-256 (`InspectionRecord.photos[].sha256`); the bytes travel
//! here, apart from the sync exchange, because a phone on a field network must be able to stop
//! in the middle of a photo and go on later from where the server says it is:
//!
//! 1. `POST /v1/uploads` declares the hash, the size and the record (the device's officer must
//!    be on the record's team and the record must reference the hash). A blob stored already is
//!    answered as complete and never sent again.
//! 2. `PATCH /v1/uploads/{upload_id}` appends a chunk at `Upload-Offset`, which must be what
//!    the server holds; the chunk is synced to disk before the new offset is committed and
//!    answered. `HEAD` or `GET` on the upload tells that offset after a broken connection.
//! 3. `POST /v1/uploads/{upload_id}/finish` hashes the whole file; a file with another hash is
//!    discarded, a good one is renamed to `blobs/<2 hex>/<sha256>` and its row committed.
//!
//! Blobs are written once and never modified. The files live under `Config::data_dir`; the
//! database holds how many bytes of each upload are synced (a crash may leave more in the file;
//! they are cut off before the next append) and which blobs are stored (a file without its row
//! is not served). Appends and finishes of one upload run one at a time ([`UploadLock`]).
//!
//! Refusals with their own status, code and details (`blob_too_large`, `too_many_uploads`,
//! `offset_mismatch`, ...) are [`ApiError::Refused`].
//!
//! Once a blob is stored and the finish answered, it is examined on the blocking pool
//! ([`crate::service::media::examine`]): the EXIF its file claims (time, offset, position, device) and a JPEG thumbnail, or why it has
//! none, kept in `blob_metadata`. A blob that is not a decodable image is stored all the same:
//! it was hashed and a record references it. `GET /v1/blobs/{sha256}/metadata` and
//! `/thumbnail` answer whoever may read the blob; a blob never examined (stored before this
//! server examined blobs, asked for before its examination ended, or a crash came between its
//! row and its metadata) is examined then.

use std::fs::File;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema};
use crate::http::{ApiBytes, ApiJson};
use crate::service::access::Access;
use crate::service::auth::Caller;
use crate::service::blobs::*;
use crate::service::error::{ApiError, ApiResult};
use crate::service::media::ClaimedMetadata;
use crate::service::records::readable;
use crate::service::{Metrics, now_ms};
use crate::store::{Blob, BlobMetadata, Upload, UploadStart};

/// The header that carries an upload's offset, in requests and answers.
pub const UPLOAD_OFFSET: &str = "upload-offset";

/// Chunks of a blob read ahead of a slow client: bounds a download's memory.
const CHUNKS_AHEAD: usize = 4;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/uploads", post(create_upload))
        .route("/v1/uploads/{upload_id}", get(upload_state).head(upload_offset).patch(append_upload))
        .route("/v1/uploads/{upload_id}/finish", post(finish_upload))
        .route("/v1/blobs/{sha256}", get(blob))
        .route("/v1/blobs/{sha256}/metadata", get(metadata))
        .route("/v1/blobs/{sha256}/thumbnail", get(thumbnail))
        .route("/v1/records/{record_id}/missing-blobs", get(missing_blobs))
}

/// An upload of the caller's device: someone else's is not found.
async fn own_upload(state: &AppState, caller: &Caller, upload_id: &str) -> ApiResult<Upload> {
    let device_id = caller.device()?.to_string();
    if !valid_upload_id(upload_id) {
        return Err(upload_not_found());
    }
    let id = upload_id.to_string();
    let upload = state.blocking(move |store| store.upload(&id)).await?.ok_or_else(upload_not_found)?;
    if upload.device_id != device_id {
        return Err(upload_not_found());
    }
    Ok(upload)
}

/// Asks to upload a blob.
#[derive(Deserialize, ToSchema)]
pub struct NewUpload {
    /// Lowercase hex SHA-256 of the whole blob.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// Its size in bytes, at least 1.
    #[schema(minimum = 1)]
    pub size: u64,
    /// A record the device's officer may write that references `sha256` among its photos.
    pub record_id: String,
}

/// Where an upload stands.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, ToSchema)]
pub struct UploadState {
    /// The upload; absent when the server already holds the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    pub sha256: String,
    /// The declared size in bytes.
    pub size: u64,
    /// Bytes the server holds, synced to disk: where the next chunk goes.
    pub offset: u64,
    /// Whether the blob is stored: nothing more to send.
    pub complete: bool,
}

impl UploadState {
    fn of(upload: &Upload) -> Self {
        Self {
            upload_id: Some(upload.upload_id.clone()),
            sha256: upload.sha256.clone(),
            size: upload.size,
            offset: upload.received,
            complete: upload.finished_at_ms.is_some(),
        }
    }
}

/// A stored blob.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, ToSchema)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
    /// Sniffed from the content's first bytes (`application/octet-stream` when unknown).
    pub media_type: String,
    /// Always true: the blob is stored.
    pub complete: bool,
}

impl StoredBlob {
    fn of(blob: Blob) -> Self {
        Self { sha256: blob.sha256, size: blob.size, media_type: blob.media_type, complete: true }
    }
}

/// The photos of a record that the server does not hold.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, ToSchema)]
pub struct MissingBlobs {
    pub record_id: String,
    /// Lowercase hex SHA-256s, sorted.
    pub missing: Vec<String>,
}

/// What the server read from a stored blob. `claimed` is what the file says about itself, as
/// the device wrote it: nothing checks it.
#[derive(Serialize, Deserialize, Debug, PartialEq, ToSchema)]
pub struct MediaMetadata {
    pub sha256: String,
    pub size: u64,
    /// Sniffed from the content's first bytes.
    pub media_type: String,
    /// The EXIF's claims; every field is null when the file makes no such claim.
    pub claimed: ClaimedMetadata,
    /// Width in pixels as stored (before any EXIF orientation), when the image's header reads.
    pub width: Option<u32>,
    /// Height in pixels as stored, when the image's header reads.
    pub height: Option<u32>,
    /// Whether `GET /v1/blobs/{sha256}/thumbnail` has a thumbnail.
    pub thumbnail: bool,
    /// Why there is no thumbnail; null when there is one.
    pub error: Option<MediaProblem>,
    /// When the server examined the blob, in Unix milliseconds.
    pub examined_at_ms: i64,
}

/// Why a blob has no thumbnail.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, ToSchema)]
pub struct MediaProblem {
    /// `unsupported_image` (not an image, or not JPEG or PNG), `image_too_large` (more than
    /// 20 000 pixels a side, or 256 MiB decoded: refused before decoding), `corrupt_image`
    /// (truncated or malformed), `thumbnail_failed`, or `decoder_panicked`.
    pub code: String,
    pub message: String,
}

impl MediaMetadata {
    fn of(blob: Blob, metadata: BlobMetadata) -> Self {
        Self {
            sha256: blob.sha256,
            size: blob.size,
            media_type: blob.media_type,
            claimed: metadata.claimed,
            width: metadata.dimensions.map(|(width, _)| width),
            height: metadata.dimensions.map(|(_, height)| height),
            thumbnail: metadata.thumbnail.is_some(),
            error: metadata.error.map(|(code, message)| MediaProblem { code, message }),
            examined_at_ms: metadata.examined_at_ms,
        }
    }
}

/// Raw bytes in an OpenAPI schema: a binary string (utoipa would describe `[u8]` as an array of
/// numbers).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// The 403 answer of the operations only a device may call.
const DEVICE_403: &str = "`device_required`: the access token was not issued to an enrolled device.";

/// The 404 answer of the operations on one upload.
const UPLOAD_404: &str = "`not_found`: no such upload, or it belongs to another device (or was discarded \
    after a hash mismatch).";

/// Starts (or resumes) an upload of a blob a record references.
#[utoipa::path(
    post,
    operation_id = "create_upload",
    path = "/v1/uploads",
    tag = "blobs",
    request_body = NewUpload,
    security(("bearer" = [])),
    responses(
        (
            status = 201,
            description = "A new upload, at offset 0: send the bytes with `PATCH /v1/uploads/{upload_id}`.",
            body = UploadState,
        ),
        (
            status = 200,
            description = "The blob is stored already (`complete`: nothing to send; no `upload_id`), or this \
                device has an unfinished upload of the same blob and size: it goes on from its `offset`.",
            body = UploadState,
        ),
        (status = 400, description = openapi::JSON_400, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 403,
            description = "`role_required`: the caller is not an `officer`. `device_required`: the access \
                token was not issued to an enrolled device. `not_on_team`: the officer is not on the team of \
                the record's task.",
            body = ErrorBodySchema,
        ),
        (status = 404, description = "`not_found`: no such record.", body = ErrorBodySchema),
        (
            status = 413,
            description = "`blob_too_large`: the declared size is above `Config::max_blob_bytes` (64 MiB by \
                default; `details.limit`). `body_too_large`: the JSON body is larger than the server accepts.",
            body = ErrorBodySchema,
        ),
        (status = 415, description = openapi::JSON_415, body = ErrorBodySchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "NewUpload",
                "`invalid_upload`: `sha256` is not 64 lowercase hex digits, or `size` is 0 (`details.field`). \
                 `blob_not_referenced`: the record does not reference this SHA-256 among its photos (sync the \
                 record first).",
            ),
            body = ErrorBodySchema,
        ),
        (
            status = 429,
            description = "`too_many_uploads`: the device holds `Config::max_uploads_per_device` unfinished \
                uploads (4 by default; `details.limit`); finish one first.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewUpload>,
) -> ApiResult<(StatusCode, Json<UploadState>)> {
    caller.require(&["officer"])?;
    let device_id = caller.device()?.to_string();
    if let Err(problem) = sync_core::input::sha256_hex("sha256", &request.sha256) {
        return Err(ApiError::Unprocessable {
            code: "invalid_upload",
            message: problem.to_string(),
            details: Some(serde_json::json!({ "field": "sha256" })),
        });
    }
    if request.size == 0 {
        return Err(ApiError::Unprocessable {
            code: "invalid_upload",
            message: "a blob has at least one byte".into(),
            details: Some(serde_json::json!({ "field": "size" })),
        });
    }
    let record_id = request.record_id.clone();
    let stored =
        state.blocking(move |store| store.record(&record_id)).await?.ok_or(ApiError::NotFound { what: "record" })?;
    let task_id = stored.task_id.clone();
    let task = match task_id {
        Some(task_id) => state.blocking(move |store| store.task(&task_id)).await?,
        None => None,
    };
    if !task.is_some_and(|task| task.team.contains(&caller.officer_id)) {
        return Err(ApiError::forbidden("not_on_team", "the officer is not on the team of the record's task"));
    }
    if !photos_of(stored).await?.contains(&request.sha256) {
        return Err(ApiError::unprocessable(
            "blob_not_referenced",
            "the record does not reference this SHA-256 among its photos",
        ));
    }
    let limit = state.config.max_blob_bytes;
    if request.size > limit {
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
            "blob_too_large",
            format!("a blob may have at most {limit} bytes"),
            serde_json::json!({ "limit": limit }),
        ));
    }
    let now = now_ms();
    let upload = Upload {
        upload_id: uuid::Uuid::new_v4().to_string(),
        sha256: request.sha256,
        size: request.size,
        record_id: request.record_id,
        device_id,
        officer_id: caller.officer_id.clone(),
        received: 0,
        created_at_ms: now,
        updated_at_ms: now,
        finished_at_ms: None,
    };
    // Uploads this device abandoned long ago give their places back first.
    let (idle_before, device) = (now - state.config.upload_expiry_ms, upload.device_id.clone());
    for expired in state.blocking(move |store| store.expire_uploads(&device, idle_before)).await? {
        let path = uploads_dir(&state.config).join(&expired);
        let _lock = UploadLock::acquire(path.clone()).await;
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(upload_id = %expired, %error, "an expired upload's file stays");
            }
            _ => tracing::info!(upload_id = %expired, "an unfinished upload expired"),
        }
    }
    let max_unfinished = state.config.max_uploads_per_device;
    match state.blocking(move |store| store.begin_upload(&upload, max_unfinished)).await? {
        UploadStart::Started(upload) => Ok((StatusCode::CREATED, Json(UploadState::of(&upload)))),
        UploadStart::Resumed(upload) => Ok((StatusCode::OK, Json(UploadState::of(&upload)))),
        UploadStart::Stored(blob) => Ok((
            StatusCode::OK,
            Json(UploadState {
                upload_id: None,
                sha256: blob.sha256,
                size: blob.size,
                offset: blob.size,
                complete: true,
            }),
        )),
        UploadStart::TooMany { unfinished } => Err(refused(
            StatusCode::TOO_MANY_REQUESTS.as_u16(),
            "too_many_uploads",
            format!("this device has {unfinished} unfinished uploads; finish one first"),
            serde_json::json!({ "limit": max_unfinished }),
        )),
    }
}

fn with_offset<T: IntoResponse>(offset: u64, answer: T) -> Response {
    let mut response = answer.into_response();
    response.headers_mut().insert(HeaderName::from_static(UPLOAD_OFFSET), HeaderValue::from(offset));
    response
}

/// Where an upload stands: the offset to go on from after a broken connection.
#[utoipa::path(
    get,
    operation_id = "get_upload",
    path = "/v1/uploads/{upload_id}",
    tag = "blobs",
    params(("upload_id" = String, Path, description = "The upload.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The upload's offset (also in the `Upload-Offset` header) and whether it is finished.",
            body = UploadState,
            headers(("Upload-Offset" = u64, description = "Bytes the server holds.")),
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = DEVICE_403, body = ErrorBodySchema),
        (status = 404, description = UPLOAD_404, body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn upload_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> ApiResult<Response> {
    let upload = own_upload(&state, &caller, &upload_id).await?;
    Ok(with_offset(upload.received, Json(UploadState::of(&upload))))
}

/// An upload's offset, in the `Upload-Offset` header only.
#[utoipa::path(
    head,
    operation_id = "head_upload",
    path = "/v1/uploads/{upload_id}",
    tag = "blobs",
    params(("upload_id" = String, Path, description = "The upload.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "No body; the offset is in the `Upload-Offset` header.",
            headers(("Upload-Offset" = u64, description = "Bytes the server holds.")),
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = DEVICE_403, body = ErrorBodySchema),
        (status = 404, description = UPLOAD_404, body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn upload_offset(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> ApiResult<Response> {
    let upload = own_upload(&state, &caller, &upload_id).await?;
    Ok(with_offset(upload.received, StatusCode::OK))
}

/// Appends a chunk at the upload's offset.
#[utoipa::path(
    patch,
    operation_id = "append_upload",
    path = "/v1/uploads/{upload_id}",
    tag = "blobs",
    params(
        ("upload_id" = String, Path, description = "The upload."),
        ("Upload-Offset" = u64, Header, description = "Where the chunk goes: the upload's current offset."),
    ),
    request_body(
        content = inline(Binary),
        content_type = "application/octet-stream",
        description = "The next bytes of the blob; at most `Config::max_body_bytes` per request.",
    ),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The chunk is on disk and synced; the new offset (also in `Upload-Offset`).",
            body = UploadState,
            headers(("Upload-Offset" = u64, description = "Bytes the server holds.")),
        ),
        (
            status = 400,
            description = "`invalid_upload_offset`: no `Upload-Offset` header, or not a number. \
                `unreadable_body`: the body could not be read (a broken connection): nothing was appended.",
            body = ErrorBodySchema,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = DEVICE_403, body = ErrorBodySchema),
        (status = 404, description = UPLOAD_404, body = ErrorBodySchema),
        (
            status = 409,
            description = "`offset_mismatch`: `Upload-Offset` is not the upload's offset (`details.offset`; \
                ask `HEAD` and go on from there). `upload_finished`: the upload is finished already.",
            body = ErrorBodySchema,
        ),
        (
            status = 413,
            description = "`past_declared_size`: the chunk would go past the declared size (`details.size`, \
                `details.offset`). `body_too_large`: the chunk is larger than the server accepts in one request \
                (`Config::max_body_bytes`, 16 MiB by default).",
            body = ErrorBodySchema,
        ),
        (
            status = 415,
            description = "`unsupported_content_type`: the body is not sent as `application/octet-stream`.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn append_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
    headers: HeaderMap,
    body: ApiBytes,
) -> ApiResult<Response> {
    let upload = own_upload(&state, &caller, &upload_id).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content_type = content_type.split(';').next().unwrap_or("").trim();
    if content_type != "application/octet-stream" {
        return Err(ApiError::UnsupportedMediaType { found: content_type.to_string() });
    }
    let offset = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::bad_request("invalid_upload_offset", "the Upload-Offset header must be a number"))?;
    let path = uploads_dir(&state.config).join(&upload.upload_id);
    let lock = UploadLock::acquire(path).await;
    let (store, config, chunk) = (state.store.clone(), state.config.clone(), body.0);
    let upload = blocking(move || append(store.as_ref(), &config, &upload_id, offset, &chunk, lock)).await?;
    Ok(with_offset(upload.received, Json(UploadState::of(&upload))))
}

#[utoipa::path(
    post,
    operation_id = "finish_upload",
    path = "/v1/uploads/{upload_id}/finish",
    tag = "blobs",
    params(("upload_id" = String, Path, description = "The upload.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The blob is stored (now, or before). A new blob is examined after the answer \
                (its EXIF claims and thumbnail: `GET /v1/blobs/{sha256}/metadata`, which examines it if that has \
                not ended); a file that is not a decodable image is stored all the same.",
            body = StoredBlob,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = DEVICE_403, body = ErrorBodySchema),
        (status = 404, description = UPLOAD_404, body = ErrorBodySchema),
        (
            status = 409,
            description = "`upload_incomplete`: fewer bytes than the declared size were received \
                (`details.offset`, `details.size`); nothing is discarded.",
            body = ErrorBodySchema,
        ),
        (
            status = 422,
            description = "`hash_mismatch`: the bytes received do not have the declared SHA-256 \
                (`details.expected`, `details.actual`): the upload is discarded and nothing is stored.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn finish_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> ApiResult<Json<StoredBlob>> {
    let upload = own_upload(&state, &caller, &upload_id).await?;
    let lock = UploadLock::acquire(uploads_dir(&state.config).join(&upload.upload_id)).await;
    let (store, config) = (state.store.clone(), state.config.clone());
    let (blob, new) = blocking(move || finish(store.as_ref(), &config, &upload_id, lock)).await?;
    if new {
        Metrics::add(&state.metrics.log_leaves_appended, 1);
    }
    // The blob is stored and the answer says so, whatever its content. Its EXIF and thumbnail
    // are read after the answer, off the request's path; a failure to keep them is logged, and
    // the examination runs again when the metadata is asked for.
    let (store, config, examined_blob) = (state.store.clone(), state.config.clone(), blob.clone());
    tokio::task::spawn_blocking(move || {
        if let Err(error) = examined(store.as_ref(), &config, &examined_blob) {
            tracing::warn!(sha256 = %examined_blob.sha256, %error, "the blob is stored but its metadata is not");
        }
    });
    Ok(Json(StoredBlob::of(blob)))
}

/// Whether the caller may read a record that references the blob ([`crate::service::access::Access::blob`]).
async fn may_read_blob(state: &AppState, caller: &Caller, sha256: &str) -> ApiResult<bool> {
    let (sha256, caller) = (sha256.to_string(), caller.clone());
    state.blocking(move |store| Access::new(store, &caller, crate::service::access::today()?).blob(&sha256)).await
}

/// A stored blob the caller may read; any other is not found, whether it exists or not.
async fn readable_blob(state: &AppState, caller: &Caller, sha256: &str) -> ApiResult<Blob> {
    if sync_core::input::sha256_hex("sha256", sha256).is_err() {
        return Err(blob_not_found());
    }
    let id = sha256.to_string();
    let blob = state.blocking(move |store| store.blob(&id)).await?.ok_or_else(blob_not_found)?;
    if !may_read_blob(state, caller, sha256).await? {
        return Err(blob_not_found());
    }
    Ok(blob)
}

/// A readable blob's metadata, examined now if it never was.
async fn readable_metadata(state: &AppState, caller: &Caller, sha256: &str) -> ApiResult<(Blob, BlobMetadata)> {
    let blob = readable_blob(state, caller, sha256).await?;
    let (store, config, stored) = (state.store.clone(), state.config.clone(), blob.clone());
    let metadata = blocking(move || examined(store.as_ref(), &config, &stored)).await?;
    Ok((blob, metadata))
}

/// A blob's bytes, streamed from its file by a blocking reader a chunk at a time, so that a
/// large blob is never held whole in memory; the reader stops when the client goes away.
struct FileBody {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: u64,
}

impl FileBody {
    fn new(file: File, length: u64) -> Self {
        let (sender, chunks) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
        tokio::task::spawn_blocking(move || {
            let mut reader = file.take(length);
            loop {
                let mut buffer = vec![0u8; FILE_CHUNK];
                let sent = match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        buffer.truncate(n);
                        sender.blocking_send(Ok(Bytes::from(buffer)))
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        let _ = sender.blocking_send(Err(error));
                        break;
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        Self { chunks, remaining: length }
    }
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        match self.chunks.poll_recv(context) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// A stored blob's bytes, for whoever may read a record that references it.
#[utoipa::path(
    get,
    operation_id = "get_blob",
    path = "/v1/blobs/{sha256}",
    tag = "blobs",
    params(("sha256" = String, Path, description = "Lowercase hex SHA-256 of the blob.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The blob's bytes, unchanged, with the media type sniffed when it was stored as \
                `Content-Type` (for example `image/jpeg`); `ETag` is the SHA-256, and the answer may be \
                cached for good.",
            content_type = "*/*",
            body = inline(Binary),
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 404,
            description = "`not_found`: no such blob, or the caller may not read any record that references \
                it (an officer who is neither a supervisor, a reviewer nor on the team of such a record's task).",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn blob(State(state): State<AppState>, caller: Caller, Path(sha256): Path<String>) -> ApiResult<Response> {
    let blob = readable_blob(&state, &caller, &sha256).await?;
    let path = blob_path(&state.config, &sha256);
    let (file, length) = blocking(move || {
        let file = File::open(&path)?;
        let length = file.metadata()?.len();
        Ok((file, length))
    })
    .await?;
    if length != blob.size {
        return Err(ApiError::Internal(format!("blob {sha256} has {length} bytes, not {}", blob.size)));
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_str(&blob.media_type).map_err(|e| ApiError::Internal(e.to_string()))?),
        (header::ETAG, HeaderValue::from_str(&format!("\"{sha256}\"")).map_err(|e| ApiError::Internal(e.to_string()))?),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, Body::new(FileBody::new(file, length))).into_response())
}

/// The 404 answer of the operations on one blob.
const BLOB_404: &str = "`not_found`: no such blob, or the caller may not read any record that references \
    it (an officer who is neither a supervisor, a reviewer nor on the team of such a record's task).";

/// What the server read from a stored blob: the EXIF its file claims, its size in pixels, and
/// whether it has a thumbnail (or why not).
#[utoipa::path(
    get,
    operation_id = "get_blob_metadata",
    path = "/v1/blobs/{sha256}/metadata",
    tag = "blobs",
    params(("sha256" = String, Path, description = "Lowercase hex SHA-256 of the blob.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The blob's size and media type, what its EXIF *claims* (when and where the photo \
                was taken and with what device, as the device wrote it: unverified), its width and height, \
                and whether it has a thumbnail or the code of the reason it has none. A blob that is not a \
                decodable image is answered here too, with `thumbnail` false and its `error`.",
            body = MediaMetadata,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 404, description = BLOB_404, body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn metadata(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> ApiResult<Json<MediaMetadata>> {
    let (blob, metadata) = readable_metadata(&state, &caller, &sha256).await?;
    Ok(Json(MediaMetadata::of(blob, metadata)))
}

/// A stored image's thumbnail: a JPEG at most 320 pixels a side, turned upright.
#[utoipa::path(
    get,
    operation_id = "get_blob_thumbnail",
    path = "/v1/blobs/{sha256}/thumbnail",
    tag = "blobs",
    params(("sha256" = String, Path, description = "Lowercase hex SHA-256 of the blob.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "A JPEG that fits in 320 x 320 pixels (an image no larger is not enlarged), turned \
                upright by the image's EXIF orientation.",
            content_type = "image/jpeg",
            body = inline(Binary),
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 404,
            description = "`not_found`: no such blob, the caller may not read any record that references it \
                (an officer who is neither a supervisor, a reviewer nor on the team of such a record's task), \
                or the blob has no thumbnail (it is not a JPEG or PNG that decodes: \
                `GET /v1/blobs/{sha256}/metadata` says why).",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn thumbnail(State(state): State<AppState>, caller: Caller, Path(sha256): Path<String>) -> ApiResult<Response> {
    let (_, metadata) = readable_metadata(&state, &caller, &sha256).await?;
    let jpeg = metadata.thumbnail.ok_or(ApiError::NotFound { what: "thumbnail" })?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, jpeg).into_response())
}

/// The photos a record references that the server does not hold: what its devices still have
/// to upload.
#[utoipa::path(
    get,
    operation_id = "missing_blobs",
    path = "/v1/records/{record_id}/missing-blobs",
    tag = "blobs",
    params(("record_id" = String, Path, description = "The record.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The record's photo hashes the server lacks.", body = MissingBlobs),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 404, description = openapi::RECORD_404, body = ErrorBodySchema),
        (
            status = 500,
            description = "`internal`: an unexpected failure, or the stored document does not load or read.",
            body = ErrorBodySchema,
        ),
    ),
)]
async fn missing_blobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<MissingBlobs>> {
    let stored = readable(&state, &caller, record_id.clone()).await?;
    let mut photos = photos_of(stored).await?;
    photos.sort();
    photos.dedup();
    let asked = photos.clone();
    let stored = state.blocking(move |store| store.stored_blobs(&asked)).await?;
    photos.retain(|sha256| !stored.contains(sha256));
    Ok(Json(MissingBlobs { record_id, missing: photos }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_sniffed_from_magic_bytes() {
        let cases: &[(&[u8], &str)] = &[
            (&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'], "image/jpeg"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
            (b"GIF89a\x01\0", "image/gif"),
            (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
            (b"RIFF\x24\0\0\0WAVEfmt ", "audio/wav"),
            (b"\0\0\0\x18ftypheic\0\0\0\0", "image/heic"),
            (b"\0\0\0\x18ftypmif1\0\0\0\0", "image/heif"),
            (b"\0\0\0\x20ftypisom\0\0\x02\0", "video/mp4"),
            (b"\0\0\0\x14ftypqt  \0\0\0\0", "video/quicktime"),
            (b"\0\0\0\x20ftypM4A \0\0\0\0", "audio/mp4"),
            (b"\0\0\0\x20ftypzzzz\0\0\0\0", "application/octet-stream"),
            (b"%PDF-1.7\n", "application/pdf"),
            (b"ID3\x04\0", "audio/mpeg"),
            (b"II*\0\x08\0\0\0", "image/tiff"),
            (b"\x89PNG", "application/octet-stream"),
            (b"", "application/octet-stream"),
            (b"plain text", "application/octet-stream"),
        ];
        for (head, expected) in cases {
            assert_eq!(sniff_media_type(head), *expected, "{head:?}");
        }
    }

    #[test]
    fn a_blob_is_addressed_by_the_sha256_of_its_bytes() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(content_address(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let bytes: Vec<u8> = (0..FILE_CHUNK * 2 + 7).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(hash_file(&path).unwrap(), (content_address(&bytes), bytes[..64].to_vec()), "read in chunks");
    }

    #[test]
    fn only_upload_ids_the_server_issues_name_an_upload() {
        let issued = uuid::Uuid::new_v4().to_string();
        assert!(valid_upload_id(&issued));
        for other in ["", "..", "../fieldsync.sqlite3", &issued.to_uppercase(), &issued.replace('-', "")] {
            assert!(!valid_upload_id(other), "{other:?}");
        }
    }
}
