//! Blobs (photos, recordings) as content-addressed files: where they live, resumable uploads
//! written in chunks (each synced to disk before its offset is committed), finished by hashing
//! the whole file and renaming it into place, and examined once for the EXIF they claim and a
//! thumbnail. Appends and finishes of one upload run one at a time ([`UploadLock`]).
//!
//! Files live under `Config::data_dir`: `uploads/<upload id>` while unfinished,
//! `blobs/<first 2 hex>/<sha256>` once stored. The store holds how many bytes of each upload are
//! synced and which blobs are stored; a file without its row is not served.
//!
//! A device starts an upload for a SHA-256 and size that a record it may write references, sends
//! chunks at the server's offset, asks for the offset after a break, and finishes; the size and
//! the unfinished uploads per device are capped, each with its code. An unfinished upload
//! untouched for `Config::upload_expiry_ms` is discarded, row and file, when its device next
//! starts one. A stored blob is read by whoever may read a record referencing it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::access::{Access, today};
use super::auth::Caller;
use super::media::{self, Examination};
use super::records::readable;
use super::{ApiError, ApiResult, Context, Metrics, now_ms};
use crate::config::Config;
use crate::store::{Blob, BlobMetadata, Store, StoredRecord, Upload, UploadStart};

/// Bytes read from a file at a time, when hashing an upload or sending a blob.
pub const FILE_CHUNK: usize = 256 * 1024;

pub fn refused(status: u16, code: &'static str, message: impl Into<String>, details: serde_json::Value) -> ApiError {
    ApiError::Refused { status, code, message: message.into(), details: Some(details) }
}

pub fn offset_mismatch(offset: u64) -> ApiError {
    refused(
        409,
        "offset_mismatch",
        format!("the upload is at offset {offset}"),
        serde_json::json!({ "offset": offset }),
    )
}

pub fn upload_incomplete(offset: u64, size: u64) -> ApiError {
    refused(
        409,
        "upload_incomplete",
        format!("{offset} of {size} bytes received"),
        serde_json::json!({ "offset": offset, "size": size }),
    )
}

pub fn upload_not_found() -> ApiError {
    ApiError::NotFound { what: "upload" }
}

pub fn blob_not_found() -> ApiError {
    ApiError::NotFound { what: "blob" }
}

/// Runs file work (and the store calls that go with it) off the async runtime.
pub async fn blocking<R: Send + 'static>(job: impl FnOnce() -> ApiResult<R> + Send + 'static) -> ApiResult<R> {
    tokio::task::spawn_blocking(job).await.map_err(|e| ApiError::Internal(e.to_string()))?
}

/// The folder of unfinished uploads.
pub fn uploads_dir(config: &Config) -> PathBuf {
    config.data_dir.join("uploads")
}

/// Where a stored blob lives: `blobs/<first 2 hex>/<sha256>`.
pub fn blob_path(config: &Config, sha256: &str) -> PathBuf {
    config.data_dir.join("blobs").join(&sha256[..2]).join(sha256)
}

/// Syncs a folder, so that a file created, renamed or removed in it stays so after a crash.
pub fn sync_dir(path: &FsPath) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates a folder (and its parents) if needed, and syncs the parent of each folder created.
pub fn ensure_dir(path: &FsPath) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => path.parent().map_or(Ok(()), sync_dir),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// An upload id as the server issues it (a lowercase hyphenated UUID): anything else names no
/// upload, and never reaches a file path.
pub fn valid_upload_id(upload_id: &str) -> bool {
    uuid::Uuid::parse_str(upload_id).is_ok_and(|id| id.hyphenated().to_string() == upload_id)
}

/// Appends and finishes of one upload run one at a time, in this process. The guard travels
/// into the blocking job, so that a client that goes away does not free the upload while its
/// file is still being written.
pub struct UploadLock {
    path: PathBuf,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

type LockMap = Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>;

static UPLOAD_LOCKS: LazyLock<LockMap> = LazyLock::new(Default::default);

impl UploadLock {
    pub async fn acquire(path: PathBuf) -> Self {
        let mutex =
            UPLOAD_LOCKS.lock().unwrap_or_else(PoisonError::into_inner).entry(path.clone()).or_default().clone();
        Self { guard: Some(mutex.lock_owned().await), path }
    }
}

impl Drop for UploadLock {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = UPLOAD_LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map holds it: nobody waits, so the entry goes.
        if locks.get(&self.path).is_some_and(|mutex| Arc::strong_count(mutex) == 1) {
            locks.remove(&self.path);
        }
    }
}

/// A blob's address: the lowercase hex SHA-256 of its bytes.
pub fn content_address(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The media type of a blob, from its first bytes; the client's word is never taken for it.
pub fn sniff_media_type(head: &[u8]) -> &'static str {
    match head {
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => "image/png",
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => "image/gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => "audio/wav",
        [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => "image/tiff",
        [b'%', b'P', b'D', b'F', b'-', ..] => "application/pdf",
        [b'I', b'D', b'3', ..] => "audio/mpeg",
        [_, _, _, _, b'f', b't', b'y', b'p', a, b, c, d, ..] => match &[*a, *b, *c, *d] {
            b"heic" | b"heix" | b"heim" | b"heis" => "image/heic",
            b"mif1" | b"msf1" => "image/heif",
            b"avif" => "image/avif",
            b"qt  " => "video/quicktime",
            b"M4A " => "audio/mp4",
            b"3gp4" | b"3gp5" | b"3gp6" => "video/3gpp",
            b"isom" | b"iso2" | b"mp41" | b"mp42" | b"avc1" => "video/mp4",
            _ => "application/octet-stream",
        },
        _ => "application/octet-stream",
    }
}

/// The photo hashes a stored record references ([`crate::service::access::record_photos`]).
pub fn record_photos(stored: &StoredRecord) -> Result<Vec<String>, ApiError> {
    crate::service::access::record_photos(stored).map_err(|e| ApiError::Internal(e.to_string()))
}

pub async fn photos_of(stored: StoredRecord) -> ApiResult<Vec<String>> {
    blocking(move || record_photos(&stored)).await
}

/// Writes a chunk at `offset`, syncs it, then commits the new offset: the offset the server
/// answers is never ahead of what is on disk.
pub fn append(
    store: &dyn Store,
    config: &Config,
    upload_id: &str,
    offset: u64,
    chunk: &[u8],
    _lock: UploadLock,
) -> ApiResult<Upload> {
    let upload = store.upload(upload_id)?.ok_or_else(upload_not_found)?;
    if upload.finished_at_ms.is_some() {
        return Err(refused(
            409,
            "upload_finished",
            "the upload is finished",
            serde_json::json!({ "offset": upload.received }),
        ));
    }
    if offset != upload.received {
        return Err(offset_mismatch(upload.received));
    }
    let end = offset.checked_add(chunk.len() as u64).filter(|end| *end <= upload.size).ok_or_else(|| {
        refused(
            413,
            "past_declared_size",
            format!("the upload was declared with {} bytes", upload.size),
            serde_json::json!({ "size": upload.size, "offset": offset }),
        )
    })?;
    let folder = uploads_dir(config);
    ensure_dir(&folder)?;
    let path = folder.join(upload_id);
    let created = !path.exists();
    let mut file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    if created {
        sync_dir(&folder)?;
    }
    if file.metadata()?.len() < upload.received {
        // The synced bytes are gone (the file was removed by hand): the upload starts over.
        file.set_len(0)?;
        file.sync_all()?;
        store.set_upload_received(upload_id, upload.received, 0, now_ms())?;
        return Err(offset_mismatch(0));
    }
    // Whatever a crash left past the synced bytes goes.
    file.set_len(offset)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(chunk)?;
    file.sync_all()?;
    if !store.set_upload_received(upload_id, offset, end, now_ms())? {
        return Err(ApiError::Internal("the upload's offset moved under its lock".into()));
    }
    Ok(Upload { received: end, updated_at_ms: now_ms(), ..upload })
}

/// The SHA-256 (hex) and the first bytes of a file.
pub fn hash_file(path: &FsPath) -> std::io::Result<(String, Vec<u8>)> {
    let mut file = File::open(path)?;
    let (mut hasher, mut head, mut buffer) = (Sha256::new(), Vec::new(), vec![0u8; FILE_CHUNK]);
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..n]);
        if head.len() < 64 {
            head.extend_from_slice(&buffer[..n.min(64 - head.len())]);
        }
    }
    Ok((hex::encode(hasher.finalize()), head))
}

/// Finishes an upload; the blob, and whether this call stored it (and appended it to the
/// transparency log).
/// Verifies the whole upload and stores it as a blob. Finishing again answers the stored blob.
pub fn finish(store: &dyn Store, config: &Config, upload_id: &str, _lock: UploadLock) -> ApiResult<(Blob, bool)> {
    let upload = store.upload(upload_id)?.ok_or_else(upload_not_found)?;
    let stored = |store: &dyn Store| -> ApiResult<Blob> {
        store.blob(&upload.sha256)?.ok_or_else(|| ApiError::Internal("a finished upload's blob is missing".into()))
    };
    if upload.finished_at_ms.is_some() {
        return Ok((stored(store)?, false));
    }
    if upload.received < upload.size {
        return Err(upload_incomplete(upload.received, upload.size));
    }
    let source = uploads_dir(config).join(upload_id);
    let destination = blob_path(config, &upload.sha256);
    let path = if source.exists() {
        // Whatever a crash left past the synced bytes goes.
        let file = OpenOptions::new().write(true).open(&source)?;
        if file.metadata()?.len() < upload.received {
            file.set_len(0)?;
            file.sync_all()?;
            store.set_upload_received(upload_id, upload.received, 0, now_ms())?;
            return Err(upload_incomplete(0, upload.size));
        }
        file.set_len(upload.received)?;
        file.sync_all()?;
        source.clone()
    } else if destination.exists() {
        // A finish cut short after the rename, before the row: the file is in place already.
        destination.clone()
    } else {
        store.set_upload_received(upload_id, upload.received, 0, now_ms())?;
        return Err(upload_incomplete(0, upload.size));
    };
    let (actual, head) = hash_file(&path)?;
    if actual != upload.sha256 {
        std::fs::remove_file(&path)?;
        if let Some(folder) = path.parent() {
            sync_dir(folder)?;
        }
        store.discard_upload(upload_id)?;
        return Err(ApiError::Unprocessable {
            code: "hash_mismatch",
            message: "the bytes received do not have the declared SHA-256; the upload is discarded".into(),
            details: Some(serde_json::json!({ "expected": upload.sha256, "actual": actual })),
        });
    }
    if path == source {
        let folder = destination.parent().ok_or_else(|| ApiError::Internal("a blob path without a folder".into()))?;
        ensure_dir(folder)?;
        // Another upload of the same blob may have put the same bytes there: replacing them is harmless.
        std::fs::rename(&source, &destination)?;
        sync_dir(folder)?;
        sync_dir(&uploads_dir(config))?;
    }
    let blob = Blob {
        sha256: upload.sha256.clone(),
        size: upload.size,
        media_type: sniff_media_type(&head).to_string(),
        uploaded_by: upload.device_id.clone(),
        uploaded_at_ms: now_ms(),
    };
    let new = store.finish_upload(upload_id, &blob, now_ms())?;
    // The row stored first, if another upload of the same blob finished before this one.
    Ok((stored(store)?, new))
}

/// Reads a stored blob's file and examines it ([`media::examine`]). Only images are read: a
/// recording or a document is recorded as having no thumbnail without reading it.
pub fn examine_blob(config: &Config, blob: &Blob) -> ApiResult<BlobMetadata> {
    let examination = if blob.media_type.starts_with("image/") {
        let bytes = std::fs::read(blob_path(config, &blob.sha256))?;
        if bytes.len() as u64 != blob.size {
            return Err(ApiError::Internal(format!(
                "blob {} has {} bytes, not {}",
                blob.sha256,
                bytes.len(),
                blob.size
            )));
        }
        media::examine(&bytes)
    } else {
        Examination::not_an_image(&blob.media_type)
    };
    Ok(BlobMetadata::of(&blob.sha256, examination, now_ms()))
}

/// A stored blob's metadata, examining it first if it never was. Runs on the blocking pool.
pub fn examined(store: &dyn Store, config: &Config, blob: &Blob) -> ApiResult<BlobMetadata> {
    if let Some(metadata) = store.blob_metadata(&blob.sha256)? {
        return Ok(metadata);
    }
    let metadata = examine_blob(config, blob)?;
    store.put_blob_metadata(&metadata)?;
    // Another request may have kept its examination first: answer what is stored.
    Ok(store.blob_metadata(&blob.sha256)?.unwrap_or(metadata))
}

// The use cases of uploads and blobs.

/// An upload a device asks to start: the blob's hash and size, and a record that references it.
pub struct NewUpload {
    pub sha256: String,
    pub size: u64,
    pub record_id: String,
}

/// How an upload started.
pub enum StartedUpload {
    /// A new upload, from offset 0.
    New(Upload),
    /// The device's unfinished upload of the same blob, from where it stands.
    Resumed(Upload),
    /// The blob is stored already: nothing to send.
    Stored(Blob),
}

/// An upload of the caller's device: someone else's is not found.
pub async fn own_upload(context: &Context, caller: &Caller, upload_id: &str) -> ApiResult<Upload> {
    let device_id = caller.device()?.to_string();
    if !valid_upload_id(upload_id) {
        return Err(upload_not_found());
    }
    let id = upload_id.to_string();
    let upload = context.blocking(move |store| store.upload(&id)).await?.ok_or_else(upload_not_found)?;
    if upload.device_id != device_id {
        return Err(upload_not_found());
    }
    Ok(upload)
}

/// Starts (or resumes) an upload of a blob a record references: for the devices of officers on
/// the record's task's team. Uploads this device abandoned long ago are expired first.
pub async fn start_upload(context: &Context, caller: &Caller, upload: NewUpload) -> ApiResult<StartedUpload> {
    caller.require(&["officer"])?;
    let device_id = caller.device()?.to_string();
    if let Err(problem) = sync_core::input::sha256_hex("sha256", &upload.sha256) {
        return Err(ApiError::Unprocessable {
            code: "invalid_upload",
            message: problem.to_string(),
            details: Some(serde_json::json!({ "field": "sha256" })),
        });
    }
    if upload.size == 0 {
        return Err(ApiError::Unprocessable {
            code: "invalid_upload",
            message: "a blob has at least one byte".into(),
            details: Some(serde_json::json!({ "field": "size" })),
        });
    }
    let record_id = upload.record_id.clone();
    let stored =
        context.blocking(move |store| store.record(&record_id)).await?.ok_or(ApiError::NotFound { what: "record" })?;
    let task_id = stored.task_id.clone();
    let task = match task_id {
        Some(task_id) => context.blocking(move |store| store.task(&task_id)).await?,
        None => None,
    };
    if !task.is_some_and(|task| task.team.contains(&caller.officer_id)) {
        return Err(ApiError::forbidden("not_on_team", "the officer is not on the team of the record's task"));
    }
    if !photos_of(stored).await?.contains(&upload.sha256) {
        return Err(ApiError::unprocessable(
            "blob_not_referenced",
            "the record does not reference this SHA-256 among its photos",
        ));
    }
    let limit = context.config.max_blob_bytes;
    if upload.size > limit {
        return Err(refused(
            413,
            "blob_too_large",
            format!("a blob may have at most {limit} bytes"),
            serde_json::json!({ "limit": limit }),
        ));
    }
    let now = now_ms();
    let upload = Upload {
        upload_id: uuid::Uuid::new_v4().to_string(),
        sha256: upload.sha256,
        size: upload.size,
        record_id: upload.record_id,
        device_id,
        officer_id: caller.officer_id.clone(),
        received: 0,
        created_at_ms: now,
        updated_at_ms: now,
        finished_at_ms: None,
    };
    // Uploads this device abandoned long ago give their places back first.
    let (idle_before, device) = (now - context.config.upload_expiry_ms, upload.device_id.clone());
    for expired in context.blocking(move |store| store.expire_uploads(&device, idle_before)).await? {
        let path = uploads_dir(&context.config).join(&expired);
        let _lock = UploadLock::acquire(path.clone()).await;
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(upload_id = %expired, %error, "an expired upload's file stays");
            }
            _ => tracing::info!(upload_id = %expired, "an unfinished upload expired"),
        }
    }
    let max_unfinished = context.config.max_uploads_per_device;
    match context.blocking(move |store| store.begin_upload(&upload, max_unfinished)).await? {
        UploadStart::Started(upload) => Ok(StartedUpload::New(upload)),
        UploadStart::Resumed(upload) => Ok(StartedUpload::Resumed(upload)),
        UploadStart::Stored(blob) => Ok(StartedUpload::Stored(blob)),
        UploadStart::TooMany { unfinished } => Err(refused(
            429,
            "too_many_uploads",
            format!("this device has {unfinished} unfinished uploads; finish one first"),
            serde_json::json!({ "limit": max_unfinished }),
        )),
    }
}

/// Appends `chunk` to the caller's upload at the offset `offset` reads (checked once the upload is
/// known to be the caller's); the upload as it stands after.
pub async fn append_chunk(
    context: &Context,
    caller: &Caller,
    upload_id: String,
    offset: impl FnOnce() -> ApiResult<u64>,
    chunk: impl AsRef<[u8]> + Send + 'static,
) -> ApiResult<Upload> {
    let upload = own_upload(context, caller, &upload_id).await?;
    let offset = offset()?;
    let path = uploads_dir(&context.config).join(&upload.upload_id);
    let lock = UploadLock::acquire(path).await;
    let (store, config) = (context.store.clone(), context.config.clone());
    blocking(move || append(store.as_ref(), &config, &upload_id, offset, chunk.as_ref(), lock)).await
}

/// Finishes the caller's upload: the blob, stored. Its EXIF and thumbnail are read after, off the
/// request's path.
pub async fn finish_upload(context: &Context, caller: &Caller, upload_id: String) -> ApiResult<Blob> {
    let upload = own_upload(context, caller, &upload_id).await?;
    let lock = UploadLock::acquire(uploads_dir(&context.config).join(&upload.upload_id)).await;
    let (store, config) = (context.store.clone(), context.config.clone());
    let (blob, new) = blocking(move || finish(store.as_ref(), &config, &upload_id, lock)).await?;
    if new {
        Metrics::add(&context.metrics.log_leaves_appended, 1);
    }
    // The blob is stored and the answer says so, whatever its content. Its EXIF and thumbnail
    // are read after the answer, off the request's path; a failure to keep them is logged, and
    // the examination runs again when the metadata is asked for.
    let (store, config, examined_blob) = (context.store.clone(), context.config.clone(), blob.clone());
    tokio::task::spawn_blocking(move || {
        if let Err(error) = examined(store.as_ref(), &config, &examined_blob) {
            tracing::warn!(sha256 = %examined_blob.sha256, %error, "the blob is stored but its metadata is not");
        }
    });
    Ok(blob)
}

/// Whether the caller may read a record that references the blob ([`crate::service::access::Access::blob`]).
async fn may_read_blob(context: &Context, caller: &Caller, sha256: &str) -> ApiResult<bool> {
    let (sha256, caller) = (sha256.to_string(), caller.clone());
    context.blocking(move |store| Access::new(store, &caller, today()?).blob(&sha256)).await
}

/// A stored blob the caller may read; any other is not found, whether it exists or not.
pub async fn readable_blob(context: &Context, caller: &Caller, sha256: &str) -> ApiResult<Blob> {
    if sync_core::input::sha256_hex("sha256", sha256).is_err() {
        return Err(blob_not_found());
    }
    let id = sha256.to_string();
    let blob = context.blocking(move |store| store.blob(&id)).await?.ok_or_else(blob_not_found)?;
    if !may_read_blob(context, caller, sha256).await? {
        return Err(blob_not_found());
    }
    Ok(blob)
}

/// A readable blob's metadata, examined now if it never was.
pub async fn readable_metadata(context: &Context, caller: &Caller, sha256: &str) -> ApiResult<(Blob, BlobMetadata)> {
    let blob = readable_blob(context, caller, sha256).await?;
    let (store, config, stored) = (context.store.clone(), context.config.clone(), blob.clone());
    let metadata = blocking(move || examined(store.as_ref(), &config, &stored)).await?;
    Ok((blob, metadata))
}

/// A stored blob the caller may read, with its file open and its length.
pub async fn open_blob(context: &Context, caller: &Caller, sha256: &str) -> ApiResult<(Blob, File, u64)> {
    let blob = readable_blob(context, caller, sha256).await?;
    let path = blob_path(&context.config, sha256);
    let (file, length) = blocking(move || {
        let file = File::open(&path)?;
        let length = file.metadata()?.len();
        Ok((file, length))
    })
    .await?;
    if length != blob.size {
        return Err(ApiError::Internal(format!("blob {sha256} has {length} bytes, not {}", blob.size)));
    }
    Ok((blob, file, length))
}

/// A readable stored image's thumbnail, a JPEG.
pub async fn thumbnail(context: &Context, caller: &Caller, sha256: &str) -> ApiResult<Vec<u8>> {
    let (_, metadata) = readable_metadata(context, caller, sha256).await?;
    metadata.thumbnail.ok_or(ApiError::NotFound { what: "thumbnail" })
}

/// The photos a record the caller may read references that the server does not hold, sorted:
/// what its devices still have to upload.
pub async fn missing_blobs(context: &Context, caller: &Caller, record_id: String) -> ApiResult<Vec<String>> {
    let stored = readable(context, caller, record_id.clone()).await?;
    let mut photos = photos_of(stored).await?;
    photos.sort();
    photos.dedup();
    let asked = photos.clone();
    let stored = context.blocking(move |store| store.stored_blobs(&asked)).await?;
    photos.retain(|sha256| !stored.contains(sha256));
    Ok(photos)
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
