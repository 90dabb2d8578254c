//! The SQL of uploads, blobs and their metadata.

use rusqlite::{Connection, OptionalExtension, params};

use super::*;

pub(super) const UPLOAD_COLUMNS: &str =
    "upload_id, sha256, size, record_id, device_id, officer_id, received, created_at_ms, updated_at_ms, finished_at_ms";

pub(super) fn upload_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        upload_id: row.get(0)?,
        sha256: row.get(1)?,
        size: row.get::<_, i64>(2)? as u64,
        record_id: row.get(3)?,
        device_id: row.get(4)?,
        officer_id: row.get(5)?,
        received: row.get::<_, i64>(6)? as u64,
        created_at_ms: row.get(7)?,
        updated_at_ms: row.get(8)?,
        finished_at_ms: row.get(9)?,
    })
}

pub(super) const BLOB_COLUMNS: &str = "sha256, size, media_type, uploaded_by, uploaded_at_ms";

pub(super) fn blob_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Blob> {
    Ok(Blob {
        sha256: row.get(0)?,
        size: row.get::<_, i64>(1)? as u64,
        media_type: row.get(2)?,
        uploaded_by: row.get(3)?,
        uploaded_at_ms: row.get(4)?,
    })
}

pub(super) fn blob_row(conn: &Connection, sha256: &str) -> rusqlite::Result<Option<Blob>> {
    conn.prepare_cached(&format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE sha256 = ?1"))?
        .query_row([sha256], blob_from)
        .optional()
}

pub(super) fn link_blob(conn: &Connection, sha256: &str, record_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO blob_records (sha256, record_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute([sha256, record_id])?;
    Ok(())
}

pub(super) const BLOB_METADATA_COLUMNS: &str = "sha256, claimed_taken_at, claimed_offset, claimed_latitude, claimed_longitude, \
    claimed_make, claimed_model, exif_error, width, height, thumbnail, error_code, error, examined_at_ms";

pub(super) fn blob_metadata_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<BlobMetadata> {
    let (width, height): (Option<u32>, Option<u32>) = (row.get(8)?, row.get(9)?);
    let (error_code, error): (Option<String>, Option<String>) = (row.get(11)?, row.get(12)?);
    Ok(BlobMetadata {
        sha256: row.get(0)?,
        claimed: ClaimedMetadata {
            taken_at: row.get(1)?,
            offset: row.get(2)?,
            latitude: row.get(3)?,
            longitude: row.get(4)?,
            make: row.get(5)?,
            model: row.get(6)?,
            exif_error: row.get(7)?,
        },
        dimensions: width.zip(height),
        thumbnail: row.get(10)?,
        error: error_code.map(|code| (code, error.unwrap_or_default())),
        examined_at_ms: row.get(13)?,
    })
}

impl Blobs for SqliteStore {
    fn begin_upload(&self, upload: &Upload, max_unfinished: usize) -> StoreResult<UploadStart> {
        let upload = upload.clone();
        self.write(move |tx| {
            if let Some(blob) = blob_row(tx, &upload.sha256)? {
                link_blob(tx, &upload.sha256, &upload.record_id)?;
                return Ok(UploadStart::Stored(blob));
            }
            let unfinished = tx
                .prepare_cached(&format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE device_id = ?1 AND finished_at_ms IS NULL
                     ORDER BY created_at_ms, upload_id"
                ))?
                .query_map([&upload.device_id], upload_from)?
                .collect::<rusqlite::Result<Vec<Upload>>>()?;
            if let Some(same) = unfinished.iter().find(|u| u.sha256 == upload.sha256 && u.size == upload.size) {
                return Ok(UploadStart::Resumed(same.clone()));
            }
            if unfinished.len() >= max_unfinished {
                return Ok(UploadStart::TooMany { unfinished: unfinished.len() });
            }
            tx.execute(
                &format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    upload.upload_id,
                    upload.sha256,
                    upload.size as i64,
                    upload.record_id,
                    upload.device_id,
                    upload.officer_id,
                    upload.received as i64,
                    upload.created_at_ms,
                    upload.updated_at_ms,
                    upload.finished_at_ms
                ],
            )?;
            Ok(UploadStart::Started(upload))
        })
    }
    fn expire_uploads(&self, device_id: &str, idle_before_ms: i64) -> StoreResult<Vec<String>> {
        let device_id = device_id.to_string();
        self.write(move |tx| {
            let expired: Vec<String> = tx
                .prepare_cached(
                    "DELETE FROM uploads WHERE device_id = ?1 AND finished_at_ms IS NULL AND updated_at_ms < ?2
                     RETURNING upload_id",
                )?
                .query_map(params![device_id, idle_before_ms], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(expired)
        })
    }
    fn upload(&self, upload_id: &str) -> StoreResult<Option<Upload>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1"))?
                .query_row([upload_id], upload_from)
                .optional()?)
        })
    }
    fn set_upload_received(&self, upload_id: &str, from: u64, to: u64, now_ms: i64) -> StoreResult<bool> {
        let upload_id = upload_id.to_string();
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE uploads SET received = ?3, updated_at_ms = ?4
                 WHERE upload_id = ?1 AND received = ?2 AND finished_at_ms IS NULL",
                params![upload_id, from as i64, to as i64, now_ms],
            )?;
            Ok(changed == 1)
        })
    }
    fn finish_upload(&self, upload_id: &str, blob: &Blob, now_ms: i64) -> StoreResult<bool> {
        let (upload_id, blob) = (upload_id.to_string(), blob.clone());
        self.write(move |tx| {
            let record_id: String = tx.query_row(
                "SELECT record_id FROM uploads WHERE upload_id = ?1 AND sha256 = ?2",
                [&upload_id, &blob.sha256],
                |r| r.get(0),
            )?;
            let stored = tx.execute(
                &format!(
                    "INSERT INTO blobs ({BLOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (sha256) DO NOTHING"
                ),
                params![blob.sha256, blob.size as i64, blob.media_type, blob.uploaded_by, blob.uploaded_at_ms],
            )? == 1;
            if stored {
                let sha256: [u8; 32] = hex::decode(&blob.sha256)
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or_else(|| StoreError::Other(format!("blob {} is not named by a SHA-256", blob.sha256)))?;
                append_leaf(&**tx, &Leaf { received_ms: now_ms, item: LeafItem::Blob { sha256, size: blob.size } })?;
            }
            link_blob(tx, &blob.sha256, &record_id)?;
            tx.execute(
                "UPDATE uploads SET received = size, finished_at_ms = ?2, updated_at_ms = ?2
                 WHERE upload_id = ?1 AND finished_at_ms IS NULL",
                params![upload_id, now_ms],
            )?;
            Ok(stored)
        })
    }
    fn discard_upload(&self, upload_id: &str) -> StoreResult<()> {
        let upload_id = upload_id.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM uploads WHERE upload_id = ?1 AND finished_at_ms IS NULL", [&upload_id])?;
            Ok(())
        })
    }
    fn blob(&self, sha256: &str) -> StoreResult<Option<Blob>> {
        self.read(|conn| Ok(blob_row(conn, sha256)?))
    }
    fn stored_blobs(&self, sha256s: &[String]) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached("SELECT COUNT(*) > 0 FROM blobs WHERE sha256 = ?1")?;
            let mut stored = Vec::new();
            for sha256 in sha256s {
                if statement.query_row([sha256], |r| r.get::<_, bool>(0))? {
                    stored.push(sha256.clone());
                }
            }
            Ok(stored)
        })
    }
    fn blob_linked_for_officer(&self, sha256: &str, officer_id: &str) -> StoreResult<bool> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM blob_records b
                       JOIN records r ON r.record_id = b.record_id
                       JOIN task_team t ON t.task_id = r.task_id
                     WHERE b.sha256 = ?1 AND t.officer_id = ?2)",
                )?
                .query_row([sha256, officer_id], |r| r.get(0))?)
        })
    }
    fn put_blob_metadata(&self, metadata: &BlobMetadata) -> StoreResult<()> {
        let metadata = metadata.clone();
        self.write(move |tx| {
            let BlobMetadata { sha256, claimed, dimensions, thumbnail, error, examined_at_ms } = metadata;
            let (error_code, error) = error.unzip();
            tx.execute(
                &format!(
                    "INSERT INTO blob_metadata ({BLOB_METADATA_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT (sha256) DO NOTHING"
                ),
                params![
                    sha256,
                    claimed.taken_at,
                    claimed.offset,
                    claimed.latitude,
                    claimed.longitude,
                    claimed.make,
                    claimed.model,
                    claimed.exif_error,
                    dimensions.map(|(width, _)| width),
                    dimensions.map(|(_, height)| height),
                    thumbnail,
                    error_code,
                    error,
                    examined_at_ms
                ],
            )?;
            Ok(())
        })
    }
    fn blob_metadata(&self, sha256: &str) -> StoreResult<Option<BlobMetadata>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {BLOB_METADATA_COLUMNS} FROM blob_metadata WHERE sha256 = ?1"))?
                .query_row([sha256], blob_metadata_from)
                .optional()?)
        })
    }
    fn blobs(&self) -> StoreResult<Vec<Blob>> {
        self.read(|conn| {
            Ok(conn
                .prepare(&format!("SELECT {BLOB_COLUMNS} FROM blobs ORDER BY sha256"))?
                .query_map([], blob_from)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }
}
