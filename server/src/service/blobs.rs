//! Blobs (photos, recordings) as content-addressed files: where they live, resumable uploads
//! written in chunks (each synced to disk before its offset is committed), finished by hashing
//! the whole file and renaming it into place, and examined once for the EXIF they claim and a
//! thumbnail. Appends and finishes of one upload run one at a time ([`UploadLock`]).
//!
//! Files live under `Config::data_dir`: `uploads/<upload id>` while unfinished,
//! `blobs/<first 2 hex>/<sha256>` once stored. The store holds how many bytes of each upload are
//! synced and which blobs are stored; a file without its row is not served.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::media::{self, Examination};
use super::{ApiError, ApiResult, now_ms};
use crate::config::Config;
use crate::store::{Blob, BlobMetadata, Store, StoredRecord, Upload};

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
