//! The embedded default store: one SQLite file in WAL mode.
//!
//! SQLite has one writer. All writes go to one thread that owns the write
//! connection and commits in groups: it takes every job waiting, runs each
//! under its own savepoint inside one transaction, commits once, and only
//! then tells each job's caller its outcome. A job that fails is rolled back
//! to its savepoint alone. Reads use a small pool of other connections and
//! never wait for the writer.
//!
//! A job that panics is rolled back to its savepoint too, and the writer goes on; `/readyz` fails
//! if the writer thread has stopped. The writer notes the record sequence's head in memory after
//! every job that stores records, so that a no-op sync needs no read. A backup copies the database
//! consistently while the server runs and gives the copy a change-sequence epoch of its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags, Transaction};
use schemas::evidence::RecordItems;
use schemas::{
    Certificate, CertificatePeriod, CertificatePeriodKind, CertificateReview, CertificateStatus,
    CertificateStatusChange,
};
use sync_core::transparency::LeafItem;

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
    /// head (see [`Records::known_record_head`](crate::store::Records::known_record_head)).
    head: Arc<std::sync::atomic::AtomicU64>,
    /// The change sequence's epoch ([`Records::sync_epoch`](crate::store::Records::sync_epoch)),
    /// fixed for the database's life.
    epoch: u16,
    /// The transparency log's signing key given at open, when it lives outside the database.
    log_key: Option<ed25519_dalek::SigningKey>,
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

    /// [`SqliteStore::open_in`], with the transparency log's signing key kept outside the
    /// database (`log_key`), which [`TransparencyLog::log_signing_key`] hands the use cases.
    pub fn open_in_with_log_key(
        data_dir: &Path,
        log_key: Option<ed25519_dalek::SigningKey>,
    ) -> Result<Arc<Self>, StoreError> {
        Self::open_with(&database_path(data_dir), log_key)
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        Self::open_with(path, None)
    }

    fn open_with(path: &Path, log_key: Option<ed25519_dalek::SigningKey>) -> Result<Arc<Self>, StoreError> {
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
            log_key,
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
    //! What only SQLite shows: rows written around the store, and the writer's own behaviour.
    //! Every backend's behaviour is checked by the conformance suite (`server/tests/conformance`).

    use rusqlite::params;

    use super::*;

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
        assert_eq!(crate::service::transparency::log_size(store.as_ref()).unwrap(), 1);
        assert_eq!(crate::service::transparency::log_unlogged_enrolments(store.as_ref(), 99).unwrap(), 1);
        assert_eq!(crate::service::transparency::log_unlogged_enrolments(store.as_ref(), 100).unwrap(), 0, "once");
        let (leaf, _) = crate::service::transparency::log_inclusion(store.as_ref(), 1, 2).unwrap().unwrap();
        let leaf = Leaf::from_bytes(&leaf.data).unwrap();
        assert_eq!(leaf.received_ms, 99);
        assert!(matches!(leaf.item, LeafItem::DeviceEnrolled { ref device_id, .. } if device_id == "D-old"));
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
