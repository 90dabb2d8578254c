//! Blobs and their resumable uploads, and what was read from each blob.

use serde::{Deserialize, Serialize};

use super::*;

/// An upload of a blob, unfinished or finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub upload_id: String,
    /// Lowercase hex SHA-256 the finished file must have.
    pub sha256: String,
    /// The declared size in bytes.
    pub size: u64,
    /// The record whose photo this is: the officer may write it and it references `sha256`.
    pub record_id: String,
    /// The device that uploads; only it may append, read the offset or finish.
    pub device_id: String,
    pub officer_id: String,
    /// Bytes received, written and synced to disk: where the next chunk goes.
    pub received: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// When the blob was verified and stored; `None` while the upload is unfinished.
    pub finished_at_ms: Option<i64>,
}

/// A stored blob: content-addressed, written once, never modified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
    /// Sniffed from the first bytes of the content, never taken from the client.
    pub media_type: String,
    /// The device whose upload stored it first.
    pub uploaded_by: String,
    pub uploaded_at_ms: i64,
}

/// What the server read from a stored blob ([`crate::service::media::examine`]), kept beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobMetadata {
    pub sha256: String,
    /// What the file's EXIF says about itself: the device wrote it, nothing checks it.
    pub claimed: ClaimedMetadata,
    /// The image's width and height in pixels, when its header reads.
    pub dimensions: Option<(u32, u32)>,
    /// A JPEG at most 320 pixels a side, or `None` when the blob does not decode as an image.
    pub thumbnail: Option<Vec<u8>>,
    /// Why there is no thumbnail: a stable code (`MediaError::code`) and a message.
    pub error: Option<(String, String)>,
    pub examined_at_ms: i64,
}

impl BlobMetadata {
    /// The metadata of blob `sha256` from its examination.
    pub fn of(sha256: &str, examination: Examination, examined_at_ms: i64) -> Self {
        let (thumbnail, error) = match examination.thumbnail {
            Ok(jpeg) => (Some(jpeg), None),
            Err(error) => (None, Some((error.code().to_string(), error.to_string()))),
        };
        Self {
            sha256: sha256.to_string(),
            claimed: examination.claimed,
            dimensions: examination.dimensions,
            thumbnail,
            error,
            examined_at_ms,
        }
    }
}

/// What asking to upload a blob found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadStart {
    /// A new upload, with nothing received yet.
    Started(Upload),
    /// This device's unfinished upload of the same blob and size (the answer to an earlier
    /// request was lost): it goes on from what it received.
    Resumed(Upload),
    /// The blob is stored already; nothing needs to be sent.
    Stored(Blob),
    /// The device already holds this many unfinished uploads.
    TooMany { unfinished: usize },
}

/// Blobs and their resumable uploads, and what was read from each blob.
pub trait Blobs {
    /// Starts an upload of `upload.sha256` for `upload.device_id`, unless the blob is stored
    /// ([`UploadStart::Stored`], and the blob is linked to `upload.record_id`), the device has an
    /// unfinished upload of the same blob and size ([`UploadStart::Resumed`]), or it holds
    /// `max_unfinished` unfinished uploads already ([`UploadStart::TooMany`], nothing written).
    fn begin_upload(&self, upload: &Upload, max_unfinished: usize) -> StoreResult<UploadStart>;
    /// Discards `device_id`'s unfinished uploads last touched before `idle_before_ms`; returns
    /// their ids, whose partial files the caller removes.
    fn expire_uploads(&self, device_id: &str, idle_before_ms: i64) -> StoreResult<Vec<String>>;
    fn upload(&self, upload_id: &str) -> StoreResult<Option<Upload>>;
    /// Moves an unfinished upload's received count from `from` to `to`; false if it was not at
    /// `from` (or is finished), and then nothing changes.
    fn set_upload_received(&self, upload_id: &str, from: u64, to: u64, now_ms: i64) -> StoreResult<bool>;
    /// Stores `blob` (kept as it is if stored already), links it to the upload's record and marks
    /// the upload finished. Finishing a finished upload changes nothing. A blob stored by this
    /// call is appended to the transparency log, and the answer is true.
    fn finish_upload(&self, upload_id: &str, blob: &Blob, now_ms: i64) -> StoreResult<bool>;
    /// Forgets an upload whose content did not verify.
    fn discard_upload(&self, upload_id: &str) -> StoreResult<()>;
    fn blob(&self, sha256: &str) -> StoreResult<Option<Blob>>;
    /// Which of `sha256s` are stored.
    fn stored_blobs(&self, sha256s: &[String]) -> StoreResult<Vec<String>>;
    /// Whether the blob is linked to a record of a task `officer_id` is on.
    fn blob_linked_for_officer(&self, sha256: &str, officer_id: &str) -> StoreResult<bool>;
    /// Keeps what was read from a stored blob; the first examination kept stays (examining the
    /// same bytes again gives the same result).
    fn put_blob_metadata(&self, metadata: &BlobMetadata) -> StoreResult<()>;
    /// What was read from a stored blob, with its thumbnail; `None` if it was never examined.
    fn blob_metadata(&self, sha256: &str) -> StoreResult<Option<BlobMetadata>>;
    /// Every stored blob's row, by SHA-256.
    fn blobs(&self) -> StoreResult<Vec<Blob>>;
}

/// What a photo's EXIF claims. The device that took the photo wrote it, and anyone may have
/// edited it since: nothing checks it, and nothing should rely on it without saying so.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimedMetadata {
    /// When the photo was taken, in the device's local time (ISO 8601 without an offset, for
    /// example `2026-05-04T10:20:30`), from `DateTimeOriginal`, or else `DateTime`.
    pub taken_at: Option<String>,
    /// The offset of that local time from UTC (`+08:00`), from `OffsetTimeOriginal`, or else
    /// `OffsetTime`.
    pub offset: Option<String>,
    /// Decimal degrees, north positive, from `GPSLatitude` and `GPSLatitudeRef`.
    pub latitude: Option<f64>,
    /// Decimal degrees, east positive, from `GPSLongitude` and `GPSLongitudeRef`.
    pub longitude: Option<f64>,
    /// The camera's maker (`Make`).
    pub make: Option<String>,
    /// The camera's model (`Model`).
    pub model: Option<String>,
    /// Why the EXIF could not be read whole; absent when the file has none or it read well.
    pub exif_error: Option<String>,
}

impl ClaimedMetadata {
    /// Whether the file claims nothing at all.
    pub fn is_empty(&self) -> bool {
        let Self { taken_at, offset, latitude, longitude, make, model, exif_error: _ } = self;
        taken_at.is_none()
            && offset.is_none()
            && latitude.is_none()
            && longitude.is_none()
            && make.is_none()
            && model.is_none()
    }
}

/// Why a blob has no thumbnail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Not an image, or a format this server does not decode (only JPEG and PNG).
    #[error("not an image this server decodes: {0}")]
    Unsupported(String),
    /// Larger than `service::media::MAX_IMAGE_SIDE` a side, more than `MAX_IMAGE_PIXELS`, or more than
    /// `MAX_DECODE_BYTES` decoded: refused
    /// before anything is allocated for it.
    #[error("the image is too large to decode: {0}")]
    TooLarge(String),
    /// The bytes do not decode as the image they start as (truncated, corrupt).
    #[error("the image does not decode: {0}")]
    Corrupt(String),
    /// The thumbnail did not encode.
    #[error("the thumbnail did not encode: {0}")]
    Encode(String),
    /// A decoder panicked: a bug of the decoder, caught.
    #[error("the image decoder failed")]
    Panicked,
}

impl MediaError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::Unsupported(_) => "unsupported_image",
            MediaError::TooLarge(_) => "image_too_large",
            MediaError::Corrupt(_) => "corrupt_image",
            MediaError::Encode(_) => "thumbnail_failed",
            MediaError::Panicked => "decoder_panicked",
        }
    }
}

/// Everything the server keeps from one image: its claims, its size in pixels and a thumbnail
/// (or why there is none).
#[derive(Clone, Debug, PartialEq)]
pub struct Examination {
    pub claimed: ClaimedMetadata,
    /// The image's width and height in pixels as stored (before any EXIF orientation), when its
    /// header reads, even if it is too large to decode.
    pub dimensions: Option<(u32, u32)>,
    /// A JPEG at most `service::media::THUMBNAIL_SIDE` pixels a side, turned upright by the EXIF orientation.
    pub thumbnail: Result<Vec<u8>, MediaError>,
}

impl Examination {
    /// A blob that is not an image (a recording, a document): nothing claimed, no thumbnail.
    pub fn not_an_image(media_type: &str) -> Self {
        Self {
            claimed: ClaimedMetadata::default(),
            dimensions: None,
            thumbnail: Err(MediaError::Unsupported(format!("a {media_type} blob"))),
        }
    }
}
