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
//! is not served). Appends and finishes of one upload run one at a time
//! ([`crate::service::blobs::UploadLock`]); the use cases are in [`crate::service::blobs`].
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
use crate::http::openapi::{
    self, CallerErrors, ClaimedMetadataSchema, DeviceOnly, ErrorBodySchema, MalformedJson, NotJson, RecordNotFound,
    Unauthenticated, UnreadableRecord, UploadNotFound, WriteErrors,
};
use crate::http::{ApiBytes, ApiJson};
use crate::service::auth::Caller;
use crate::service::blobs::{self, FILE_CHUNK, StartedUpload};
use crate::service::error::{ApiError, ApiResult};
use crate::service::media::ClaimedMetadata;
use crate::store::{Blob, BlobMetadata, Upload};

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
    #[schema(value_type = ClaimedMetadataSchema)]
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
        CallerErrors, WriteErrors, MalformedJson, NotJson,
    ),
)]
async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewUpload>,
) -> ApiResult<(StatusCode, Json<UploadState>)> {
    let NewUpload { sha256, size, record_id } = request;
    match blobs::start_upload(&state, &caller, blobs::NewUpload { sha256, size, record_id }).await? {
        StartedUpload::New(upload) => Ok((StatusCode::CREATED, Json(UploadState::of(&upload)))),
        StartedUpload::Resumed(upload) => Ok((StatusCode::OK, Json(UploadState::of(&upload)))),
        StartedUpload::Stored(blob) => Ok((
            StatusCode::OK,
            Json(UploadState {
                upload_id: None,
                sha256: blob.sha256,
                size: blob.size,
                offset: blob.size,
                complete: true,
            }),
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
        CallerErrors, DeviceOnly, UploadNotFound,
    ),
)]
async fn upload_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> ApiResult<Response> {
    let upload = blobs::own_upload(&state, &caller, &upload_id).await?;
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
        CallerErrors, DeviceOnly, UploadNotFound,
    ),
)]
async fn upload_offset(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> ApiResult<Response> {
    let upload = blobs::own_upload(&state, &caller, &upload_id).await?;
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
        CallerErrors, WriteErrors, DeviceOnly, UploadNotFound,
    ),
)]
async fn append_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
    headers: HeaderMap,
    body: ApiBytes,
) -> ApiResult<Response> {
    let offset = || {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let content_type = content_type.split(';').next().unwrap_or("").trim();
        if content_type != "application/octet-stream" {
            return Err(ApiError::UnsupportedMediaType { found: content_type.to_string() });
        }
        headers
            .get(UPLOAD_OFFSET)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("invalid_upload_offset", "the Upload-Offset header must be a number"))
    };
    let upload = blobs::append_chunk(&state, &caller, upload_id, offset, body.0).await?;
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
        CallerErrors, WriteErrors, DeviceOnly, UploadNotFound,
    ),
)]
async fn finish_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> ApiResult<Json<StoredBlob>> {
    let blob = blobs::finish_upload(&state, &caller, upload_id).await?;
    Ok(Json(StoredBlob::of(blob)))
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
        (
            status = 404,
            description = "`not_found`: no such blob, or the caller may not read any record that references \
                it (an officer who is neither a supervisor, a reviewer nor on the team of such a record's task).",
            body = ErrorBodySchema,
        ),
        CallerErrors,
    ),
)]
async fn blob(State(state): State<AppState>, caller: Caller, Path(sha256): Path<String>) -> ApiResult<Response> {
    let (blob, file, length) = blobs::open_blob(&state, &caller, &sha256).await?;
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
        (status = 404, description = BLOB_404, body = ErrorBodySchema),
        CallerErrors, WriteErrors,
    ),
)]
async fn metadata(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> ApiResult<Json<MediaMetadata>> {
    let (blob, metadata) = blobs::readable_metadata(&state, &caller, &sha256).await?;
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
        (
            status = 404,
            description = "`not_found`: no such blob, the caller may not read any record that references it \
                (an officer who is neither a supervisor, a reviewer nor on the team of such a record's task), \
                or the blob has no thumbnail (it is not a JPEG or PNG that decodes: \
                `GET /v1/blobs/{sha256}/metadata` says why).",
            body = ErrorBodySchema,
        ),
        CallerErrors, WriteErrors,
    ),
)]
async fn thumbnail(State(state): State<AppState>, caller: Caller, Path(sha256): Path<String>) -> ApiResult<Response> {
    let jpeg = blobs::thumbnail(&state, &caller, &sha256).await?;
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
        Unauthenticated, RecordNotFound, UnreadableRecord,
    ),
)]
async fn missing_blobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(record_id): Path<String>,
) -> ApiResult<Json<MissingBlobs>> {
    let photos = blobs::missing_blobs(&state, &caller, record_id.clone()).await?;
    Ok(Json(MissingBlobs { record_id, missing: photos }))
}
