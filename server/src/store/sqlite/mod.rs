//! The embedded default store: one SQLite file in WAL mode.
//!
//! SQLite has one writer. All writes go to one thread that owns the write
//! connection and commits in groups: it takes every job waiting, runs each
//! under its own savepoint inside one transaction, commits once, and only
//! then tells each job's caller its outcome. A job that fails is rolled back
//! to its savepoint alone. Reads use a small pool of other connections and
//! never wait for the writer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags, Transaction};
use schemas::evidence::RecordItems;
use schemas::{Certificate, CertificateStatus, CertificateStatusChange};
use sync_core::checkpoint::{Checkpoint, sign_note};
use sync_core::enforcement_log::{EntryEncoding, Placement, place};
use sync_core::merkle::{self, Subtrees};
use sync_core::transparency::{self, LeafItem};

use schemas::log::SignedEntry;
use sync_core::merkle::Hash;
use sync_core::transparency::Leaf;

use super::*;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match &error {
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull => StoreError::Full,
            // Only a duplicate key is a conflict; other constraint failures are bugs to log.
            rusqlite::Error::SqliteFailure(e, message)
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(message.clone().unwrap_or_default())
            }
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound("row".into()),
            _ => StoreError::Backend(error.to_string()),
        }
    }
}

mod accounts;
mod blobs;
mod campaign_store;
mod campaigns;
mod devices;
mod log;
pub mod migrations;
mod operations;
mod records;
mod registry;
mod tasks;

use accounts::*;
use blobs::*;
use devices::*;
use log::*;
use records::*;
use tasks::*;

/// Most read connections kept open for reuse.
const MAX_READERS: usize = 32;

/// Most jobs committed in one transaction.
const MAX_GROUP: usize = 64;

type Delivery = Box<dyn FnOnce(StoreResult<()>) + Send>;

type Job = Box<dyn FnOnce(&Transaction<'_>) -> Delivery + Send>;

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// The record change sequence's head as the writer last left it, never below the committed
    /// head (see [`Store::known_record_head`]).
    head: Arc<std::sync::atomic::AtomicU64>,
    /// The change sequence's epoch ([`Store::sync_epoch`]), fixed for the database's life.
    epoch: u16,
}

fn open(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if read_only {
        // Many readers: each keeps a smaller page cache than SQLite's default 2 MB.
        conn.pragma_update(None, "cache_size", -1024)?;
    } else {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(conn)
}

/// The database file inside a server's data folder.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("fieldsync.sqlite3")
}

impl SqliteStore {
    /// Opens (creating if needed) the database of the data folder `data_dir` ([`database_path`]).
    pub fn open_in(data_dir: &Path) -> Result<Arc<Self>, StoreError> {
        Self::open(&database_path(data_dir))
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        let mut conn = open(path, false)?;
        migrations::migrate(&mut conn).map_err(|e| StoreError::Other(e.to_string()))?;
        let head = Arc::new(std::sync::atomic::AtomicU64::new(record_seq_head(&conn)?));
        let epoch: i64 = conn.query_row("SELECT value FROM counters WHERE name = 'sync_epoch'", [], |r| r.get(0))?;
        let (sender, receiver) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, receiver))
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(thread)),
            readers: Mutex::new(Vec::new()),
            head,
            epoch: epoch as u16,
        }))
    }

    /// Stops the writer after the jobs already queued, and waits for it.
    pub fn close(&self) {
        self.writer.lock().unwrap().take();
        if let Some(thread) = self.writer_thread.lock().unwrap().take() {
            let _ = thread.join();
        }
    }

    /// Runs `job` in the writer's transaction; returns once it is committed (or failed).
    pub fn write<R: Send + 'static>(
        &self,
        job: impl FnOnce(&Transaction<'_>) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let (reply, outcome) = mpsc::sync_channel::<StoreResult<R>>(1);
        let job: Job = Box::new(move |tx| {
            let result = run_in_savepoint(tx, job);
            Box::new(move |commit: StoreResult<()>| {
                let _ = reply.send(commit.and(result));
            })
        });
        let sender = self.writer.lock().unwrap().clone().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)?;
        outcome.recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `job` on a read connection inside one read transaction: everything it reads is of one
    /// consistent snapshot.
    pub fn read_snapshot<R>(&self, job: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        self.read(|conn| {
            conn.execute_batch("BEGIN")?;
            let result = job(conn);
            conn.execute_batch("COMMIT")?;
            result
        })
    }

    /// Runs `job` on a read connection.
    pub fn read<R>(&self, job: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let conn = match self.readers.lock().unwrap().pop() {
            Some(conn) => conn,
            None => open(&self.path, true)?,
        };
        let result = job(&conn);
        let mut readers = self.readers.lock().unwrap();
        if readers.len() < MAX_READERS {
            readers.push(conn);
        }
        result
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs a job under its own savepoint: a job that fails, or panics, is rolled back alone and the
/// writer goes on with the others.
fn run_in_savepoint<R>(tx: &Transaction<'_>, job: impl FnOnce(&Transaction<'_>) -> StoreResult<R>) -> StoreResult<R> {
    tx.execute_batch("SAVEPOINT job")?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(tx))).unwrap_or_else(|_| {
        tracing::error!("a write job panicked; it is rolled back alone");
        Err(StoreError::Other("the operation failed".into()))
    });
    match outcome {
        Ok(value) => {
            tx.execute_batch("RELEASE job")?;
            Ok(value)
        }
        Err(error) => {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(error)
        }
    }
}

fn write_loop(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(error) => {
                let error = StoreError::from(error);
                for job in group {
                    // A job never started is answered with the failure to start.
                    drop(job);
                    tracing::error!(%error, "cannot begin a write transaction");
                }
                continue;
            }
        };
        let deliveries: Vec<Delivery> = group.into_iter().map(|job| job(&tx)).collect();
        let committed = tx.commit().map_err(StoreError::from);
        if let Err(error) = &committed {
            tracing::error!(%error, jobs = deliveries.len(), "group commit failed");
        }
        for deliver in deliveries {
            deliver(match &committed {
                Ok(()) => Ok(()),
                Err(StoreError::Full) => Err(StoreError::Full),
                Err(error) => Err(StoreError::Backend(error.to_string())),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;

    fn empty_response() -> schemas::SyncResponse {
        schemas::SyncResponse {
            protocol: schemas::SYNC_PROTOCOL_VERSION,
            cursor: 0,
            documents: vec![],
            rejections: vec![],
            more: false,
        }
    }

    fn writing(document: &'static [u8]) -> SyncJob {
        Box::new(move |tx| {
            tx.record("R")?;
            tx.record_seq_head()?;
            tx.put_record("R", None, document, "draft", 1)?;
            Ok(empty_response())
        })
    }

    #[test]
    fn a_prepared_exchange_whose_record_changed_meanwhile_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        let (_, first) = store.prepare_sync("O1", writing(b"first")).unwrap();
        let (_, second) = store.prepare_sync("O1", writing(b"second")).unwrap();
        assert!(first.writes.iter().any(|w| matches!(w, SyncWrite::Record { .. })), "nothing written yet");
        assert!(store.record("R").unwrap().is_none(), "a prepared exchange stores nothing");
        assert_eq!(store.commit_sync(first).unwrap(), Some(1));
        assert_eq!(store.commit_sync(second).unwrap(), None, "the record changed since its snapshot");
        assert_eq!(store.record("R").unwrap().unwrap().document, b"first");
        // Run again inside the writer, the second exchange sees the first and goes in.
        store.sync_exchange(writing(b"second")).unwrap();
        assert_eq!(store.record("R").unwrap().unwrap().document, b"second");
    }

    /// An exchange that stores the record and appends a leaf for it.
    fn locking(document: &'static [u8]) -> SyncJob {
        Box::new(move |tx| {
            tx.record("R")?;
            tx.record_seq_head()?;
            tx.put_record("R", None, document, "locked", 1)?;
            tx.append_leaf(&Leaf {
                received_ms: 1,
                item: LeafItem::RecordLocked { record_id: "R".into(), heads: vec![] },
            })?;
            Ok(empty_response())
        })
    }

    #[test]
    fn devices_enrolled_before_the_log_get_their_enrolment_leaf_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        store
            .create_account(
                Account {
                    officer_id: "O1".into(),
                    name: "甲".into(),
                    unit: String::new(),
                    password_hash: None,
                    must_change_password: false,
                    roles: vec!["officer".into()],
                },
                1,
            )
            .unwrap();
        let device = Device {
            device_id: "D-new".into(),
            officer_id: "O1".into(),
            public_key: vec![7; 32],
            actor_id: vec![1; 16],
            enrolled_at_ms: 10,
            revoked_at_ms: None,
        };
        store.enroll_device(&device, usize::MAX).unwrap();
        // A device row from before the log: written straight, with no leaf.
        store
            .write(|tx| {
                tx.execute(
                    &format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ('D-old', 'O1', ?1, ?2, 5, NULL)"),
                    params![vec![8u8; 32], vec![2u8; 16]],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.log_size().unwrap(), 1);
        assert_eq!(store.log_unlogged_enrolments(99).unwrap(), 1);
        assert_eq!(store.log_unlogged_enrolments(100).unwrap(), 0, "once");
        let (leaf, _) = store.log_inclusion(1, 2).unwrap().unwrap();
        let leaf = Leaf::from_bytes(&leaf.data).unwrap();
        assert_eq!(leaf.received_ms, 99);
        assert!(matches!(leaf.item, LeafItem::DeviceEnrolled { ref device_id, .. } if device_id == "D-old"));
    }

    #[test]
    fn a_prepared_exchanges_leaves_are_appended_with_its_writes_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        let (_, first) = store.prepare_sync("O1", writing(b"first")).unwrap();
        let (_, second) = store.prepare_sync("O1", locking(b"second")).unwrap();
        assert!(second.writes.iter().any(|w| matches!(w, SyncWrite::Leaf(_))));
        assert_eq!(store.log_size().unwrap(), 0, "a prepared exchange appends nothing");
        assert!(store.commit_sync(first).unwrap().is_some());
        assert_eq!(store.commit_sync(second).unwrap(), None, "the record changed since its snapshot");
        assert_eq!(store.log_size().unwrap(), 0, "a plan not committed appends nothing");
        // Run again inside the writer, the exchange appends its leaf with its record, and the
        // record's state after it.
        store.sync_exchange(locking(b"second")).unwrap();
        assert_eq!(store.log_size().unwrap(), 2);
        let (_, third) = store.prepare_sync("O1", locking(b"third")).unwrap();
        assert!(store.commit_sync(third).unwrap().is_some());
        assert_eq!(store.log_size().unwrap(), 4, "a committed plan appends its leaf");
        let (leaf, _) = store.log_inclusion(2, 4).unwrap().unwrap();
        assert_eq!(
            Leaf::from_bytes(&leaf.data).unwrap().item,
            LeafItem::RecordLocked { record_id: "R".into(), heads: vec![] }
        );
    }

    #[test]
    fn an_exchange_prepared_before_a_refusal_of_its_record_runs_again_in_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        store.sync_exchange(writing(b"first")).unwrap();
        let (_, accepting) = store.prepare_sync("O1", writing(b"with the change")).unwrap();
        let refusing: SyncJob = Box::new(|tx| {
            tx.record("R")?;
            tx.quarantine(&QuarantinedChange {
                record_id: "R".into(),
                change_hash: "c".into(),
                device_id: "D1".into(),
                officer_id: None,
                reason: serde_json::json!({"code": "timestamp_in_future"}),
                final_verdict: true,
                dependencies: Vec::new(),
                change: vec![1],
                change_bytes: 1,
                received_at_ms: 1,
                review: None,
            })?;
            Ok(empty_response())
        });
        let (_, refusal) = store.prepare_sync("O1", refusing).unwrap();
        assert!(store.commit_sync(refusal).unwrap().is_some());
        assert_eq!(store.commit_sync(accepting).unwrap(), None, "a refusal was committed since its snapshot");
        assert_eq!(store.record("R").unwrap().unwrap().document, b"first");
    }

    #[test]
    fn a_device_keeps_a_bounded_number_of_refusals_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        let refusal = |n: usize, device: &str, code: &str| QuarantinedChange {
            record_id: "R".into(),
            change_hash: format!("c{n}"),
            device_id: device.into(),
            officer_id: None,
            reason: serde_json::json!({ "code": code }),
            final_verdict: true,
            dependencies: Vec::new(),
            change: vec![1],
            change_bytes: 1,
            received_at_ms: 1,
            review: None,
        };
        let job: SyncJob = Box::new(move |tx| {
            for n in 0..QUARANTINE_ROWS_PER_DEVICE + 5 {
                tx.quarantine(&refusal(n, "D1", "timestamp_in_future"))?;
            }
            // A kept refusal's verdict is brought up to date; another device has its own bound.
            tx.quarantine(&refusal(0, "D1", "record_locked"))?;
            tx.quarantine(&refusal(0, "D2", "record_locked"))?;
            Ok(empty_response())
        });
        store.sync_exchange(job).unwrap();
        let rows = store.quarantined(Some("R")).unwrap();
        assert_eq!(rows.iter().filter(|r| r.device_id == "D1").count(), QUARANTINE_ROWS_PER_DEVICE);
        assert_eq!(rows.iter().filter(|r| r.device_id == "D2").count(), 1);
        assert_eq!(rows[0].reason["code"], "record_locked");
    }

    fn upload(upload_id: &str, device_id: &str, sha256: &str) -> Upload {
        Upload {
            upload_id: upload_id.into(),
            sha256: sha256.into(),
            size: 10,
            record_id: "R".into(),
            device_id: device_id.into(),
            officer_id: "O1".into(),
            received: 0,
            created_at_ms: 1,
            updated_at_ms: 1,
            finished_at_ms: None,
        }
    }

    #[test]
    fn uploads_start_resume_stop_at_the_limit_and_finish_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let first = upload("U1", "D1", &a);
        assert_eq!(store.begin_upload(&first, 2).unwrap(), UploadStart::Started(first.clone()));
        assert_eq!(
            store.begin_upload(&upload("U9", "D1", &a), 2).unwrap(),
            UploadStart::Resumed(first.clone()),
            "the same blob and size again goes on with the first upload"
        );
        assert!(matches!(store.begin_upload(&upload("U2", "D1", &b), 2).unwrap(), UploadStart::Started(_)));
        assert_eq!(store.begin_upload(&upload("U3", "D1", &c), 2).unwrap(), UploadStart::TooMany { unfinished: 2 });
        assert_eq!(store.upload("U3").unwrap(), None, "a refused upload leaves nothing");
        assert!(matches!(store.begin_upload(&upload("U4", "D2", &c), 2).unwrap(), UploadStart::Started(_)));
        // The offset only moves from where it is.
        assert!(store.set_upload_received("U1", 0, 10, 2).unwrap());
        assert!(!store.set_upload_received("U1", 0, 5, 3).unwrap());
        assert_eq!(store.upload("U1").unwrap().unwrap().received, 10);
        let blob = Blob {
            sha256: a.clone(),
            size: 10,
            media_type: "image/png".into(),
            uploaded_by: "D1".into(),
            uploaded_at_ms: 4,
        };
        assert!(store.finish_upload("U1", &blob, 4).unwrap(), "stored by this call");
        assert!(!store.finish_upload("U1", &Blob { uploaded_at_ms: 5, ..blob.clone() }, 5).unwrap());
        assert_eq!(store.log_size().unwrap(), 1, "one leaf for the one blob stored");
        assert_eq!(store.blob(&a).unwrap(), Some(blob.clone()), "stored once, as first finished");
        assert_eq!(store.upload("U1").unwrap().unwrap().finished_at_ms, Some(4));
        assert!(
            matches!(store.begin_upload(&upload("U5", "D1", &c), 2).unwrap(), UploadStart::Started(_)),
            "a slot freed"
        );
        assert_eq!(store.begin_upload(&upload("U6", "D2", &a), 2).unwrap(), UploadStart::Stored(blob));
        assert_eq!(store.stored_blobs(&[a.clone(), b.clone()]).unwrap(), [a]);
        store.discard_upload("U2").unwrap();
        assert_eq!(store.upload("U2").unwrap(), None);
    }

    #[test]
    fn a_blobs_metadata_is_kept_once_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        let sha256 = "a".repeat(64);
        store.begin_upload(&upload("U1", "D1", &sha256), 4).unwrap();
        let blob = Blob {
            sha256: sha256.clone(),
            size: 10,
            media_type: "image/jpeg".into(),
            uploaded_by: "D1".into(),
            uploaded_at_ms: 1,
        };
        store.finish_upload("U1", &blob, 1).unwrap();
        assert_eq!(store.blob_metadata(&sha256).unwrap(), None, "not examined yet");
        let examined = BlobMetadata {
            sha256: sha256.clone(),
            claimed: ClaimedMetadata {
                taken_at: Some("2026-05-04T10:20:30".into()),
                offset: Some("+08:00".into()),
                latitude: Some(39.9076),
                longitude: Some(-116.3882),
                make: Some("HUAWEI".into()),
                model: Some("Mate 60 Pro".into()),
                exif_error: None,
            },
            dimensions: Some((4096, 3072)),
            thumbnail: Some(vec![0xFF, 0xD8, 0xFF, 0xD9]),
            error: None,
            examined_at_ms: 2,
        };
        store.put_blob_metadata(&examined).unwrap();
        assert_eq!(store.blob_metadata(&sha256).unwrap().as_ref(), Some(&examined));
        let again = BlobMetadata {
            claimed: ClaimedMetadata::default(),
            dimensions: None,
            thumbnail: None,
            error: Some(("corrupt_image".into(), "cut short".into())),
            examined_at_ms: 3,
            ..examined.clone()
        };
        store.put_blob_metadata(&again).unwrap();
        assert_eq!(store.blob_metadata(&sha256).unwrap(), Some(examined), "the first examination stays");
        // A blob that is not an image: no claims, no thumbnail, the reason.
        let other = "b".repeat(64);
        store.begin_upload(&upload("U2", "D1", &other), 4).unwrap();
        store.finish_upload("U2", &Blob { sha256: other.clone(), ..blob }, 4).unwrap();
        let no_image = BlobMetadata { sha256: other.clone(), examined_at_ms: 5, ..again };
        store.put_blob_metadata(&no_image).unwrap();
        assert_eq!(store.blob_metadata(&other).unwrap(), Some(no_image));
        let unknown = BlobMetadata { sha256: "c".repeat(64), ..examined_for_nothing() };
        assert!(store.put_blob_metadata(&unknown).is_err(), "only a stored blob has metadata");
    }

    fn examined_for_nothing() -> BlobMetadata {
        BlobMetadata::of("", crate::service::media::Examination::not_an_image("video/mp4"), 1)
    }

    fn blob_leaf(n: u64) -> Leaf {
        Leaf { received_ms: 1_000 + n as i64, item: LeafItem::Blob { sha256: [n as u8; 32], size: n } }
    }

    /// Roots and proofs built from the stored subtrees are those built from all the leaves, at
    /// every size they are asked for, including sizes the tree has since grown past.
    #[test]
    fn proofs_from_stored_subtrees_equal_proofs_from_all_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        assert_eq!(store.log_root(0).unwrap(), Some(merkle::empty_root()));
        assert_eq!(store.log_inclusion(0, 0).unwrap(), None);
        let mut hashes = Vec::new();
        let check = |hashes: &[Hash], size: u64| {
            let leaves = &hashes[..size as usize];
            assert_eq!(store.log_root(size).unwrap(), Some(merkle::root(leaves)), "root at {size}");
            for index in 0..size {
                let (leaf, proof) = store.log_inclusion(index, size).unwrap().unwrap();
                assert_eq!(leaf.data, blob_leaf(index).to_bytes());
                assert_eq!(Some(proof), merkle::inclusion_proof(leaves, index as usize), "leaf {index} of {size}");
            }
            for from in 1..=size {
                assert_eq!(
                    store.log_consistency(from, size).unwrap(),
                    merkle::consistency_proof(leaves, from as usize),
                    "from {from} to {size}"
                );
            }
        };
        for n in 0..70u64 {
            let leaf = blob_leaf(n);
            hashes.push(leaf.hash());
            store.write(move |tx| append_leaf(tx, &leaf)).unwrap();
            if [1, 2, 3, 7, 8, 13, 32, 33, 64].contains(&(n + 1)) {
                check(&hashes, n + 1);
            }
        }
        for size in [5, 13, 32, 70] {
            check(&hashes, size);
        }
        assert_eq!(store.log_size().unwrap(), 70);
        assert_eq!(store.log_root(71).unwrap(), None, "beyond the log");
        assert_eq!(store.log_inclusion(3, 71).unwrap(), None);
        assert_eq!(store.log_consistency(3, 71).unwrap(), None);
        let subtrees: i64 =
            store.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM log_subtrees", [], |r| r.get(0))?)).unwrap();
        assert!(subtrees < 2 * 70, "fewer than two hashes per leaf: {subtrees}");
    }

    #[test]
    fn a_checkpoint_is_signed_when_the_tree_grew_and_opens_with_the_logs_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        assert!(store.checkpoint(1).is_err(), "no key yet");
        let identity = store.log_identity("example.org/log", [7; 32], 1).unwrap();
        let again = store.log_identity("another.org/log", [8; 32], 2).unwrap();
        assert_eq!((again.origin.as_str(), again.key.to_bytes()), ("example.org/log", [7; 32]), "made once");
        let empty = store.checkpoint(2).unwrap();
        assert_eq!(store.checkpoint(3).unwrap(), empty, "the same tree is not signed again");
        for n in 0..5 {
            let leaf = blob_leaf(n);
            store.write(move |tx| append_leaf(tx, &leaf)).unwrap();
        }
        let grown = store.checkpoint(4).unwrap();
        assert_eq!((grown.size, grown.signed_at_ms), (5, 4));
        assert_eq!(store.latest_checkpoint().unwrap(), Some(grown.clone()));
        let verifiers = [(identity.origin.clone(), identity.key.verifying_key())];
        let (text, _) = sync_core::checkpoint::open_note(&grown.note, &verifiers).unwrap();
        let checkpoint = Checkpoint::parse_body(&text).unwrap();
        assert_eq!((checkpoint.size, Some(checkpoint.root)), (5, store.log_root(5).unwrap()));
    }

    mod chains {
        use sync_core::enforcement_log::{GENESIS_PREVIOUS, payload_hash};

        use super::*;

        /// A chain of `n` entries of device D1 signed with a fixed key, each with its payload.
        fn chain(n: u64) -> Vec<CheckedEntry> {
            let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
            let mut previous = GENESIS_PREVIOUS;
            (1..=n)
                .map(|seq| {
                    let payload = format!("entry {seq}").into_bytes();
                    let entry = schemas::log::LogEntry {
                        device_id: "D1".into(),
                        seq,
                        previous,
                        device_time_ms: 1_790_000_000_000 + seq as i64,
                        monotonic_ms: seq,
                        boot_id: "boot".into(),
                        kind: schemas::log::EntryKind::Arrive,
                        record_id: Some("R1".into()),
                        payload_hash: payload_hash(&payload),
                        seen_checkpoint: None,
                    };
                    previous = entry.hash();
                    CheckedEntry { signed: entry.sign(&key), payload }
                })
                .collect()
        }

        /// Another entry at `seq` of the chain, with the previous hash the chain has there.
        fn other_at(chain: &[CheckedEntry], seq: u64) -> CheckedEntry {
            let mut entry = chain[seq as usize - 1].clone();
            entry.signed.entry.monotonic_ms += 1_000;
            entry
        }

        fn count(store: &SqliteStore, table: &str) -> i64 {
            store.read(|conn| Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)).unwrap()
        }

        fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
            store.log_identity("example.org/log", [7; 32], 1).unwrap();
            (dir, store)
        }

        #[test]
        fn entries_extend_wait_for_a_gap_and_join_once_it_is_filled() {
            let (_dir, store) = open();
            let entries = chain(5);
            let pick = |seqs: &[u64]| seqs.iter().map(|&s| entries[s as usize - 1].clone()).collect::<Vec<_>>();
            let first = store.append_log_entries("D1", pick(&[4, 1, 2]), 10, usize::MAX).unwrap();
            assert_eq!(
                first.placements,
                [
                    EntryPlacement::Held,
                    EntryPlacement::Accepted { leaf_index: 0 },
                    EntryPlacement::Accepted { leaf_index: 2 }
                ],
                "placed in chain order, answered in upload order; each entry followed by its record's state"
            );
            assert_eq!((first.checkpoint.size, first.leaves), (4, 4), "signed at the grown size");
            assert_eq!(count(&store, "log_held"), 1);
            let again = store.append_log_entries("D1", pick(&[2, 4]), 11, usize::MAX).unwrap();
            assert_eq!(again.placements, [EntryPlacement::Duplicate, EntryPlacement::Held]);
            assert_eq!(again.checkpoint, first.checkpoint, "nothing appended: the checkpoint stays");
            let filled = store.append_log_entries("D1", pick(&[3]), 12, usize::MAX).unwrap();
            assert_eq!(filled.placements, [EntryPlacement::Accepted { leaf_index: 4 }]);
            assert_eq!((filled.promoted, filled.leaves, filled.checkpoint.size), (1, 4, 8));
            assert_eq!(count(&store, "log_held"), 0, "the held entry joined the chain");
            assert_eq!(count(&store, "log_chain"), 4);
            // The promoted entry keeps its own receipt time.
            let receipt: i64 = store
                .read(
                    |conn| Ok(conn.query_row("SELECT received_at_ms FROM log_chain WHERE seq = 4", [], |r| r.get(0))?),
                )
                .unwrap();
            assert_eq!(receipt, 10);
            let log = store.record_log("R1", &["O1".into()]).unwrap();
            assert!(log.is_empty(), "no device D1 is enrolled for O1");
        }

        #[test]
        fn a_conflicting_entry_is_kept_as_a_fork_and_nothing_is_dropped() {
            let (_dir, store) = open();
            let entries = chain(4);
            store.append_log_entries("D1", entries[..2].to_vec(), 10, usize::MAX).unwrap();
            // Another entry at a stored seq, and a held entry that turns out to name another previous.
            let other = other_at(&entries, 2);
            let mut stray = entries[3].clone();
            stray.signed.entry.previous = [9; 32];
            let placed = store.append_log_entries("D1", vec![other.clone(), stray], 11, usize::MAX).unwrap();
            assert_eq!(placed.placements, [EntryPlacement::Fork, EntryPlacement::Held]);
            let filled = store.append_log_entries("D1", vec![entries[2].clone()], 12, usize::MAX).unwrap();
            assert_eq!(filled.placements, [EntryPlacement::Accepted { leaf_index: 4 }]);
            assert_eq!((filled.promoted, filled.promoted_forks), (0, 1));
            assert_eq!((count(&store, "log_chain"), count(&store, "log_forks"), count(&store, "log_held")), (3, 2, 0));
            let again = store.append_log_entries("D1", vec![other], 13, usize::MAX).unwrap();
            assert_eq!(again.placements, [EntryPlacement::Fork]);
            assert_eq!(count(&store, "log_forks"), 2, "a fork sent again is kept once");
        }
    }

    #[test]
    fn a_write_job_that_panics_fails_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite3")).unwrap();
        let panicking = store.write(|tx| -> StoreResult<()> {
            tx.execute("INSERT INTO counters (name, value) VALUES ('half-done', 1)", [])?;
            panic!("a bug in a job");
        });
        assert!(matches!(panicking, Err(StoreError::Other(_))), "{panicking:?}");
        assert!(store.ready(), "the writer still runs");
        store.write(|tx| Ok(tx.execute("INSERT INTO counters (name, value) VALUES ('next', 2)", [])?)).unwrap();
        let names: Vec<String> = store
            .read(|conn| {
                let mut statement = conn.prepare("SELECT name FROM counters ORDER BY name")?;
                let rows = statement.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(names, ["next", "record_seq", "sync_epoch"], "the panicking job left nothing behind");
    }
}
