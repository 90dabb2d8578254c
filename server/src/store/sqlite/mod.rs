//! The embedded default store: one SQLite file in WAL mode.
//!
//! SQLite has one writer. All writes go to one thread that owns the write
//! connection and commits in groups: it takes every job waiting, runs each
//! under its own savepoint inside one transaction, commits once, and only
//! then tells each job's caller its outcome. A job that fails is rolled back
//! to its savepoint alone. Reads use a small pool of other connections and
//! never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use schemas::evidence::RecordItems;
use schemas::{Certificate, CertificateStatus, CertificateStatusChange};
use sync_core::checkpoint::{Checkpoint, sign_note};
use sync_core::enforcement_log::{EntryEncoding, Placement, place};
use sync_core::merkle::{self, Subtrees};
use sync_core::transparency::{self, LeafItem};

use super::*;

mod campaigns;

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
        super::migrations::migrate(&mut conn).map_err(|e| StoreError::Other(e.to_string()))?;
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
                Err(error) => Err(StoreError::Sqlite(error.to_string())),
            });
        }
    }
}

fn roles_of(conn: &Connection, officer_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached("SELECT role FROM roles WHERE officer_id = ?1 ORDER BY role")?;
    statement.query_map([officer_id], |row| row.get(0))?.collect()
}

fn account_from(conn: &Connection, row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let officer_id: String = row.get(0)?;
    Ok(Account {
        roles: roles_of(conn, &officer_id)?,
        officer_id,
        name: row.get(1)?,
        unit: row.get(2)?,
        password_hash: row.get(3)?,
        must_change_password: row.get(4)?,
    })
}

fn status_name(status: CertificateStatus) -> &'static str {
    match status {
        CertificateStatus::Active => "active",
        CertificateStatus::Suspended => "suspended",
        CertificateStatus::Revoked => "revoked",
        CertificateStatus::Surrendered => "surrendered",
    }
}

fn status_from(name: &str) -> CertificateStatus {
    match name {
        "suspended" => CertificateStatus::Suspended,
        "revoked" => CertificateStatus::Revoked,
        "surrendered" => CertificateStatus::Surrendered,
        _ => CertificateStatus::Active,
    }
}

fn load_certificates(conn: &Connection, officers: Option<&[String]>) -> rusqlite::Result<Vec<Certificate>> {
    let mut statement = conn.prepare_cached(
        "SELECT number, officer_id, issuing_authority, valid_from_ms, valid_until_ms FROM certificates ORDER BY number",
    )?;
    let mut history = conn
        .prepare_cached("SELECT at_ms, status, reason FROM certificate_status WHERE number = ?1 ORDER BY at_ms, seq")?;
    let rows = statement.query_map([], |row| {
        Ok(Certificate {
            number: row.get(0)?,
            officer_id: row.get(1)?,
            issuing_authority: row.get(2)?,
            valid_from_ms: row.get(3)?,
            valid_until_ms: row.get(4)?,
            status_history: Vec::new(),
        })
    })?;
    let mut out = Vec::new();
    for certificate in rows {
        let mut certificate = certificate?;
        if officers.is_some_and(|o| !o.contains(&certificate.officer_id)) {
            continue;
        }
        certificate.status_history = history
            .query_map([&certificate.number], |row| {
                Ok(CertificateStatusChange {
                    at_ms: row.get(0)?,
                    status: status_from(&row.get::<_, String>(1)?),
                    reason: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        out.push(certificate);
    }
    Ok(out)
}

fn device_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: row.get(0)?,
        officer_id: row.get(1)?,
        public_key: row.get(2)?,
        actor_id: row.get(3)?,
        enrolled_at_ms: row.get(4)?,
        revoked_at_ms: row.get(5)?,
    })
}

const DEVICE_COLUMNS: &str = "device_id, officer_id, public_key, actor_id, enrolled_at_ms, revoked_at_ms";
const RECORD_COLUMNS: &str = "record_id, task_id, document, status, seq, updated_at_ms";

fn record_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        record_id: row.get(0)?,
        task_id: row.get(1)?,
        document: row.get(2)?,
        status: row.get(3)?,
        seq: row.get(4)?,
        updated_at_ms: row.get(5)?,
    })
}

fn task_from(conn: &Connection, row: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    let task_id: String = row.get(0)?;
    let mut team = conn.prepare_cached("SELECT officer_id FROM task_team WHERE task_id = ?1 ORDER BY officer_id")?;
    let team = team.query_map([&task_id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(Task {
        task_id,
        entity_id: row.get(1)?,
        matter: row.get(2)?,
        window_start_ms: row.get(3)?,
        window_end_ms: row.get(4)?,
        created_by: row.get(5)?,
        created_at_ms: row.get(6)?,
        team,
    })
}

/// Inserts a task and its team: the one way a task is stored, whoever made it.
fn insert_task(conn: &Connection, task: &Task) -> StoreResult<()> {
    conn.execute(
        &format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            task.task_id,
            task.entity_id,
            task.matter,
            task.window_start_ms,
            task.window_end_ms,
            task.created_by,
            task.created_at_ms
        ],
    )?;
    for officer in &task.team {
        conn.execute("INSERT INTO task_team (task_id, officer_id) VALUES (?1, ?2)", params![task.task_id, officer])?;
    }
    Ok(())
}

const TASK_COLUMNS: &str = "task_id, entity_id, matter, window_start_ms, window_end_ms, created_by, created_at_ms";

const UPLOAD_COLUMNS: &str =
    "upload_id, sha256, size, record_id, device_id, officer_id, received, created_at_ms, updated_at_ms, finished_at_ms";

fn upload_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
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

const BLOB_COLUMNS: &str = "sha256, size, media_type, uploaded_by, uploaded_at_ms";

fn blob_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Blob> {
    Ok(Blob {
        sha256: row.get(0)?,
        size: row.get::<_, i64>(1)? as u64,
        media_type: row.get(2)?,
        uploaded_by: row.get(3)?,
        uploaded_at_ms: row.get(4)?,
    })
}

fn blob_row(conn: &Connection, sha256: &str) -> rusqlite::Result<Option<Blob>> {
    conn.prepare_cached(&format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE sha256 = ?1"))?
        .query_row([sha256], blob_from)
        .optional()
}

fn link_blob(conn: &Connection, sha256: &str, record_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO blob_records (sha256, record_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute([sha256, record_id])?;
    Ok(())
}

const BLOB_METADATA_COLUMNS: &str = "sha256, claimed_taken_at, claimed_offset, claimed_latitude, claimed_longitude, \
    claimed_make, claimed_model, exif_error, width, height, thumbnail, error_code, error, examined_at_ms";

fn blob_metadata_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<BlobMetadata> {
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

/// The columns [`quarantined_from`] reads, in its order.
const QUARANTINE_COLUMNS: &str = "record_id, change_hash, device_id, officer_id, reason, final, deps, change, \
     change_bytes, received_at_ms, decision, decided_by, decided_at_ms, decision_note";

fn quarantined_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantinedChange> {
    let reason: String = row.get(4)?;
    let deps: String = row.get(6)?;
    let decision: Option<String> = row.get(10)?;
    Ok(QuarantinedChange {
        record_id: row.get(0)?,
        change_hash: row.get(1)?,
        device_id: row.get(2)?,
        officer_id: row.get(3)?,
        reason: serde_json::from_str(&reason).unwrap_or(serde_json::Value::String(reason)),
        final_verdict: row.get(5)?,
        dependencies: deps.split(',').filter(|d| !d.is_empty()).map(str::to_string).collect(),
        change: row.get(7)?,
        change_bytes: row.get(8)?,
        received_at_ms: row.get(9)?,
        review: match decision {
            Some(decision) => Some(ReviewDecision {
                decision,
                reviewer_id: row.get(11)?,
                decided_at_ms: row.get(12)?,
                note: row.get(13)?,
            }),
            None => None,
        },
    })
}

/// Records of tasks `officer_id` is on, changed after `since`, oldest change first.
fn changed_since(conn: &Connection, officer_id: &str, since: u64, limit: usize) -> StoreResult<Vec<(String, u64)>> {
    let mut statement = conn.prepare_cached(
        "SELECT r.record_id, r.seq FROM records r JOIN task_team t ON t.task_id = r.task_id
         WHERE t.officer_id = ?1 AND r.seq > ?2 ORDER BY r.seq LIMIT ?3",
    )?;
    let rows = statement.query_map(params![officer_id, since as i64, limit as i64], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The transparency log's stored complete subtrees, read through one connection: run inside one
/// transaction, every root and proof is of one consistent tree, built from O(log² n) lookups.
struct StoredTree<'a>(&'a Connection);

impl Subtrees for StoredTree<'_> {
    type Error = StoreError;
    fn subtree(&self, level: u32, index: u64) -> StoreResult<Hash> {
        let hash: Vec<u8> = self
            .0
            .prepare_cached("SELECT hash FROM log_subtrees WHERE level = ?1 AND idx = ?2")?
            .query_row(params![level, index as i64], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Other(format!("the log lacks its subtree ({level}, {index})")))?;
        hash.try_into().map_err(|_| StoreError::Other(format!("the log's subtree ({level}, {index}) is not 32 bytes")))
    }
}

/// How many leaves the log holds.
fn log_size(conn: &Connection) -> StoreResult<u64> {
    let next: i64 =
        conn.prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")?.query_row([], |r| r.get(0))?;
    Ok(next as u64)
}

/// The transparency-log leaf of a device's enrolment, received at `received_ms`.
fn enrolment_leaf(device: &Device, received_ms: i64) -> StoreResult<Leaf> {
    let public_key: [u8; 32] = device
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Other("a device key is not 32 bytes".into()))?;
    Ok(Leaf {
        received_ms,
        item: LeafItem::DeviceEnrolled {
            device_id: device.device_id.clone(),
            officer_id: device.officer_id.clone(),
            public_key,
            actor_id: device.actor_id.clone(),
        },
    })
}

/// Ends the sessions (refresh families) of the refresh tokens matching `condition` on `?1`
/// (`family = ?1`, `officer_id = ?1`, `device_id = ?1`): each is recorded in `revoked_sessions`
/// with `reason`, and its tokens are revoked. Rows too old to refuse any unexpired access token
/// are purged on the way.
fn end_sessions(tx: &Connection, condition: &str, value: &str, reason: &str, now_ms: i64) -> StoreResult<()> {
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO revoked_sessions (session_id, officer_id, reason, revoked_at_ms)
             SELECT DISTINCT family, officer_id, ?2, ?3 FROM refresh_tokens
             WHERE {condition} AND (revoked_at_ms IS NULL OR ?1 = family)"
        ),
        params![value, reason, now_ms],
    )?;
    tx.execute(
        &format!("UPDATE refresh_tokens SET revoked_at_ms = ?2 WHERE {condition} AND revoked_at_ms IS NULL"),
        params![value, now_ms],
    )?;
    tx.execute("DELETE FROM revoked_sessions WHERE revoked_at_ms < ?1", [now_ms - super::REVOKED_SESSIONS_KEPT_MS])?;
    Ok(())
}

/// What a leaf is about, for finding the leaves of an evidence package; entries are found
/// through their chain instead.
fn leaf_subject(item: &LeafItem) -> Option<String> {
    match item {
        LeafItem::DeviceEnrolled { device_id, .. } => Some(format!("device:{device_id}")),
        LeafItem::RecordSigned { record_id, .. } | LeafItem::RecordLocked { record_id, .. } => {
            Some(format!("record:{record_id}"))
        }
        LeafItem::Blob { sha256, .. } => Some(format!("blob:{}", hex::encode(sha256))),
        // A package carries only the latest state, found through `log_record_states`.
        LeafItem::LogEntry { .. } | LeafItem::RecordState { .. } => None,
    }
}

/// A record's state in the log: its leaf, its items and the heads of its latest anchor.
type RecordState = (u64, RecordItems, Vec<[u8; 32]>);

/// The latest state of a record's items below `size`.
fn record_state(conn: &Connection, record_id: &str, size: u64) -> StoreResult<Option<RecordState>> {
    let row: Option<(i64, String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT leaf_index, items, heads FROM log_record_states
             WHERE record_id = ?1 AND leaf_index < ?2 ORDER BY leaf_index DESC LIMIT 1",
        )?
        .query_row(params![record_id, size as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(index, items, heads)| {
        let items = serde_json::from_str(&items).map_err(|e| StoreError::Other(format!("a record state: {e}")))?;
        let heads = heads.chunks_exact(32).map(|h| h.try_into().expect("32 bytes")).collect();
        Ok((index as u64, items, heads))
    })
    .transpose()
}

/// What joins a record's items.
enum RecordItem<'a> {
    Entry { device_id: &'a str, seq: u64, entry_hash: [u8; 32], photo: Option<&'a str> },
    Anchor { leaf_index: u64, heads: &'a [[u8; 32]] },
}

/// Appends the record's next state leaf with `item` among its items, in the transaction that
/// committed the item, so that the log always names every item of the record.
fn record_item_added(conn: &Connection, record_id: &str, received_ms: i64, item: RecordItem<'_>) -> StoreResult<()> {
    let (mut items, mut heads) = match record_state(conn, record_id, u64::MAX >> 1)? {
        Some((_, items, heads)) => (items, heads),
        None => (RecordItems::default(), Vec::new()),
    };
    match item {
        RecordItem::Entry { device_id, seq, entry_hash, photo } => {
            transparency::add_entry(&mut items, device_id, seq, &entry_hash, photo)
        }
        RecordItem::Anchor { leaf_index, heads: anchor_heads } => {
            transparency::add_anchor(&mut items, leaf_index);
            heads = anchor_heads.to_vec();
        }
    }
    let items_hash = transparency::record_items_hash(record_id, &items)
        .map_err(|e| StoreError::Other(format!("record {record_id}: {e}")))?;
    let leaf = Leaf {
        received_ms,
        item: LeafItem::RecordState { record_id: record_id.to_string(), heads: heads.clone(), items_hash },
    };
    let leaf_index = append_leaf(conn, &leaf)?;
    let json = serde_json::to_string(&items).map_err(|e| StoreError::Other(e.to_string()))?;
    conn.prepare_cached("INSERT INTO log_record_states (leaf_index, record_id, items, heads) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![leaf_index as i64, record_id, json, heads.concat()])?;
    Ok(())
}

/// The leaves about `subject` below `size`, in order.
fn leaves_about(conn: &Connection, subject: &str, size: u64) -> StoreResult<Vec<u64>> {
    Ok(conn
        .prepare_cached("SELECT idx FROM log_leaves WHERE subject = ?1 AND idx < ?2 ORDER BY idx")?
        .query_map(params![subject, size as i64], |r| r.get::<_, i64>(0).map(|i| i as u64))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Appends a leaf and every subtree it completes; returns its index. A signature or lock of a
/// record is followed by the record's next state.
fn append_leaf(conn: &Connection, leaf: &Leaf) -> StoreResult<u64> {
    let index = append_leaf_alone(conn, leaf)?;
    if let LeafItem::RecordSigned { record_id, heads, .. } | LeafItem::RecordLocked { record_id, heads } = &leaf.item {
        record_item_added(conn, record_id, leaf.received_ms, RecordItem::Anchor { leaf_index: index, heads })?;
    }
    Ok(index)
}

fn append_leaf_alone(conn: &Connection, leaf: &Leaf) -> StoreResult<u64> {
    let index = log_size(conn)?;
    let data = leaf.to_bytes();
    conn.prepare_cached("INSERT INTO log_leaves (idx, data, received_at_ms, subject) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![index as i64, data, leaf.received_ms, leaf_subject(&leaf.item)])?;
    let mut insert = conn.prepare_cached("INSERT INTO log_subtrees (level, idx, hash) VALUES (?1, ?2, ?3)")?;
    let mut hash = merkle::leaf_hash(&data);
    insert.execute(params![0, index as i64, hash.as_slice()])?;
    let tree = StoredTree(conn);
    // Each completed subtree is the node over its left half (stored) and the one just completed.
    for (level, at) in merkle::subtrees_completed_by(index) {
        let left = tree.subtree(level - 1, 2 * at)?;
        hash = merkle::node_hash(&left, &hash);
        insert.execute(params![level, at as i64, hash.as_slice()])?;
    }
    Ok(index)
}

fn leaf_row(conn: &Connection, index: u64) -> StoreResult<Option<StoredLeaf>> {
    Ok(conn
        .prepare_cached("SELECT data, received_at_ms FROM log_leaves WHERE idx = ?1")?
        .query_row([index as i64], |r| Ok(StoredLeaf { index, data: r.get(0)?, received_at_ms: r.get(1)? }))
        .optional()?)
}

fn latest_checkpoint(conn: &Connection) -> StoreResult<Option<StoredCheckpoint>> {
    Ok(conn
        .prepare_cached("SELECT size, note, signed_at_ms FROM log_checkpoints ORDER BY size DESC LIMIT 1")?
        .query_row([], |r| {
            Ok(StoredCheckpoint { size: r.get::<_, i64>(0)? as u64, note: r.get(1)?, signed_at_ms: r.get(2)? })
        })
        .optional()?)
}

fn log_identity_row(conn: &Connection) -> StoreResult<Option<LogIdentity>> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT origin, secret FROM log_identity WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(origin, secret)| {
        let secret: [u8; 32] =
            secret.try_into().map_err(|_| StoreError::Other("the log's signing key is not 32 bytes".into()))?;
        Ok(LogIdentity { origin, key: ed25519_dalek::SigningKey::from_bytes(&secret) })
    })
    .transpose()
}

/// The checkpoint of the current tree: the latest one if the tree has not grown since, else a new
/// one, signed and stored.
fn current_checkpoint(conn: &Connection, now_ms: i64) -> StoreResult<StoredCheckpoint> {
    let size = log_size(conn)?;
    if let Some(latest) = latest_checkpoint(conn)?
        && latest.size == size
    {
        return Ok(latest);
    }
    let identity = log_identity_row(conn)?
        .ok_or_else(|| StoreError::Other("the transparency log has no signing key yet".into()))?;
    let root = merkle::root_of(&StoredTree(conn), size)?;
    let body = Checkpoint { origin: identity.origin.clone(), size, root }.body();
    let note = sign_note(&body, &identity.origin, &identity.key)
        .map_err(|e| StoreError::Other(format!("signing the checkpoint: {e}")))?;
    conn.prepare_cached("INSERT INTO log_checkpoints (size, note, signed_at_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![size as i64, note, now_ms])?;
    Ok(StoredCheckpoint { size, note, signed_at_ms: now_ms })
}

/// The hash of the entry at `seq` of `device_id`'s chain.
fn chain_hash(conn: &Connection, device_id: &str, seq: u64) -> StoreResult<Option<[u8; 32]>> {
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT entry_hash FROM log_chain WHERE device_id = ?1 AND seq = ?2")?
        .query_row(params![device_id, seq as i64], |r| r.get(0))
        .optional()?;
    hash.map(|hash| hash.try_into().map_err(|_| StoreError::Other("a chain entry's hash is not 32 bytes".into())))
        .transpose()
}

/// What placing entries needs beyond the connection: the device, and the roots of the log at
/// the sizes entries name, looked up once each.
struct Placing<'a> {
    conn: &'a Connection,
    device_id: &'a str,
    /// Most entries the device may have held.
    max_held: usize,
    roots: BTreeMap<u64, Option<Hash>>,
    append: LogAppend,
}

impl Placing<'_> {
    /// Places one entry against the chain; an entry that extends it is stored with its leaf.
    fn place(&mut self, entry: &CheckedEntry, received_ms: i64) -> StoreResult<EntryPlacement> {
        let signed = &entry.signed;
        let (seq, hash) = (signed.entry.seq, signed.entry.hash());
        let here = chain_hash(self.conn, self.device_id, seq)?;
        let before = if seq > 1 { chain_hash(self.conn, self.device_id, seq - 1)? } else { None };
        let json = serde_json::to_string(signed).map_err(|e| StoreError::Other(e.to_string()))?;
        // Keeps the entry beside the chain, in `log_held` or `log_forks`.
        let keep = |table: &str| -> StoreResult<()> {
            self.conn
                .prepare_cached(&format!(
                    "INSERT INTO {table} (device_id, seq, entry_hash, entry, payload, record_id, received_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
                ))?
                .execute(params![
                    self.device_id,
                    seq as i64,
                    hash.as_slice(),
                    json,
                    entry.payload,
                    signed.entry.record_id,
                    received_ms
                ])?;
            Ok(())
        };
        let placement = match place(&signed.entry, here, before) {
            Placement::Extends => {
                let leaf = Leaf {
                    received_ms,
                    item: LeafItem::LogEntry { device_id: self.device_id.to_string(), seq, entry_hash: hash },
                };
                let leaf_index = append_leaf(self.conn, &leaf)?;
                self.append.leaves += 1;
                self.conn
                    .prepare_cached(
                        "INSERT INTO log_chain (device_id, seq, entry_hash, entry, payload, record_id, received_at_ms,
                           leaf_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        self.device_id,
                        seq as i64,
                        hash.as_slice(),
                        json,
                        entry.payload,
                        signed.entry.record_id,
                        received_ms,
                        leaf_index as i64
                    ])?;
                if let Some(record_id) = &signed.entry.record_id {
                    let photo = match &signed.entry.kind {
                        schemas::log::EntryKind::PhotoTaken { sha256 } => Some(sha256.as_str()),
                        _ => None,
                    };
                    let item = RecordItem::Entry { device_id: self.device_id, seq, entry_hash: hash, photo };
                    record_item_added(self.conn, record_id, received_ms, item)?;
                    self.append.leaves += 1;
                }
                if let Some(seen) = &signed.entry.seen_checkpoint
                    && self.root_at(seen.size)? != Some(seen.root)
                {
                    self.append.unknown_checkpoints += 1;
                }
                EntryPlacement::Accepted { leaf_index }
            }
            Placement::Duplicate => EntryPlacement::Duplicate,
            Placement::Gap => {
                let held_already = self
                    .conn
                    .prepare_cached("SELECT 1 FROM log_held WHERE device_id = ?1 AND seq = ?2 AND entry_hash = ?3")?
                    .exists(params![self.device_id, seq as i64, hash.as_slice()])?;
                if !held_already {
                    let held: i64 = self
                        .conn
                        .prepare_cached("SELECT COUNT(*) FROM log_held WHERE device_id = ?1")?
                        .query_row([self.device_id], |r| r.get(0))?;
                    if held as usize >= self.max_held {
                        return Ok(EntryPlacement::TooManyHeld);
                    }
                }
                keep("log_held")?;
                return Ok(EntryPlacement::Held);
            }
            Placement::Fork => {
                keep("log_forks")?;
                EntryPlacement::Fork
            }
        };
        // Placed for good: a copy held earlier goes.
        self.conn
            .prepare_cached("DELETE FROM log_held WHERE device_id = ?1 AND seq = ?2 AND entry_hash = ?3")?
            .execute(params![self.device_id, seq as i64, hash.as_slice()])?;
        Ok(placement)
    }

    /// Moves the held entries that now extend the chain after `seq` into it, seq by seq; held
    /// entries at those seqs that conflict with it become forks.
    fn promote_after(&mut self, mut seq: u64) -> StoreResult<()> {
        loop {
            seq += 1;
            let held: Vec<(String, Vec<u8>, i64)> = self
                .conn
                .prepare_cached(
                    "SELECT entry, payload, received_at_ms FROM log_held WHERE device_id = ?1 AND seq = ?2
                     ORDER BY received_at_ms, entry_hash",
                )?
                .query_map(params![self.device_id, seq as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut extended = false;
            for (json, payload, received_ms) in held {
                let signed: SignedEntry = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Other(format!("a held entry does not read: {e}")))?;
                match self.place(&CheckedEntry { signed, payload }, received_ms)? {
                    EntryPlacement::Accepted { .. } => {
                        self.append.promoted += 1;
                        extended = true;
                    }
                    EntryPlacement::Fork => self.append.promoted_forks += 1,
                    EntryPlacement::Duplicate | EntryPlacement::Held | EntryPlacement::TooManyHeld => {}
                }
            }
            if !extended {
                return Ok(());
            }
        }
    }

    /// The log's root at `size`, or `None` beyond its current size.
    fn root_at(&mut self, size: u64) -> StoreResult<Option<Hash>> {
        if let Some(root) = self.roots.get(&size) {
            return Ok(*root);
        }
        let root =
            if size <= log_size(self.conn)? { Some(merkle::root_of(&StoredTree(self.conn), size)?) } else { None };
        // A size beyond the log may be reached later in this append: only a root is kept.
        if root.is_some() {
            self.roots.insert(size, root);
        }
        Ok(root)
    }
}

/// Places a device's entries in chain order (see [`Store::append_log_entries`]).
fn append_log_entries(
    conn: &Connection,
    device_id: &str,
    entries: &[CheckedEntry],
    received_ms: i64,
    max_held: usize,
) -> StoreResult<LogAppend> {
    let mut placing = Placing {
        conn,
        device_id,
        max_held,
        roots: BTreeMap::new(),
        append: LogAppend {
            placements: Vec::with_capacity(entries.len()),
            promoted: 0,
            promoted_forks: 0,
            unknown_checkpoints: 0,
            leaves: 0,
            checkpoint: StoredCheckpoint { size: 0, note: String::new(), signed_at_ms: 0 },
        },
    };
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].signed.entry.seq);
    let mut placements = vec![EntryPlacement::Duplicate; entries.len()];
    for i in order {
        placements[i] = placing.place(&entries[i], received_ms)?;
        if let EntryPlacement::Accepted { .. } = placements[i] {
            placing.promote_after(entries[i].signed.entry.seq)?;
        }
    }
    let mut append = placing.append;
    append.placements = placements;
    // An upload that added nothing to the tree leaves the checkpoints as they are.
    append.checkpoint = match latest_checkpoint(conn)? {
        Some(latest) if append.leaves == 0 => latest,
        _ => current_checkpoint(conn, received_ms)?,
    };
    Ok(append)
}

/// A stored entry read back.
fn signed_entry(json: &str) -> StoreResult<SignedEntry> {
    serde_json::from_str(json).map_err(|e| StoreError::Other(format!("a stored log entry does not read: {e}")))
}

fn record_seq_head(conn: &Connection) -> StoreResult<u64> {
    Ok(conn.query_row("SELECT value FROM counters WHERE name = 'record_seq'", [], |row| row.get::<_, i64>(0))? as u64)
}

impl SyncTx for Connection {
    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>> {
        Ok(self
            .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE record_id = ?1"))?
            .query_row([record_id], record_from)
            .optional()?)
    }
    fn sync_state(&self, device_id: &str, record_id: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .prepare_cached("SELECT state FROM sync_states WHERE device_id = ?1 AND record_id = ?2")?
            .query_row([device_id, record_id], |row| row.get(0))
            .optional()?)
    }
    fn changed_since(&self, officer_id: &str, since: u64, limit: usize) -> StoreResult<Vec<(String, u64)>> {
        changed_since(self, officer_id, since, limit)
    }
    fn record_seq_head(&self) -> StoreResult<u64> {
        record_seq_head(self)
    }
    fn put_record(
        &self,
        record_id: &str,
        task_id: Option<&str>,
        document: &[u8],
        status: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        self.execute("UPDATE counters SET value = value + 1 WHERE name = 'record_seq'", [])?;
        let seq = self.record_seq_head()?;
        self.prepare_cached(
            "INSERT INTO records (record_id, task_id, document, status, seq, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (record_id) DO UPDATE SET task_id = excluded.task_id, document = excluded.document,
               status = excluded.status, seq = excluded.seq, updated_at_ms = excluded.updated_at_ms",
        )?
        .execute(params![record_id, task_id, document, status, seq as i64, now_ms])?;
        Ok(seq)
    }
    fn put_sync_state(&self, device_id: &str, record_id: &str, state: &[u8]) -> StoreResult<()> {
        self.prepare_cached(
            "INSERT INTO sync_states (device_id, record_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id, record_id) DO UPDATE SET state = excluded.state",
        )?
        .execute(params![device_id, record_id, state])?;
        Ok(())
    }
    fn quarantine(&self, change: &QuarantinedChange) -> StoreResult<()> {
        self.prepare_cached(
            "INSERT INTO quarantine (record_id, change_hash, device_id, officer_id, reason, final, deps, change,
                 change_bytes, received_at_ms)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE (SELECT COUNT(*) FROM quarantine WHERE record_id = ?1 AND device_id = ?3) < ?11
                OR EXISTS (SELECT 1 FROM quarantine WHERE change_hash = ?2 AND device_id = ?3)
             ON CONFLICT (change_hash, device_id) DO UPDATE SET reason = excluded.reason, final = excluded.final",
        )?
        .execute(params![
            change.record_id,
            change.change_hash,
            change.device_id,
            change.officer_id,
            change.reason.to_string(),
            change.final_verdict,
            change.dependencies.join(","),
            change.change,
            change.change_bytes,
            change.received_at_ms,
            QUARANTINE_ROWS_PER_DEVICE as i64
        ])?;
        Ok(())
    }
    fn quarantined_changes(&self, record_id: &str) -> StoreResult<Vec<QuarantinedChange>> {
        let mut statement = self
            .prepare_cached(&format!("SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE record_id = ?1 ORDER BY id"))?;
        let rows = statement.query_map([record_id], quarantined_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
    fn decide_held(&self, record_id: &str, change_hash: &str, decision: &ReviewDecision) -> StoreResult<()> {
        self.prepare_cached(
            "UPDATE quarantine SET decision = ?3, decided_by = ?4, decided_at_ms = ?5, decision_note = ?6
             WHERE record_id = ?1 AND change_hash = ?2 AND decision IS NULL",
        )?
        .execute(params![
            record_id,
            change_hash,
            decision.decision,
            decision.reviewer_id,
            decision.decided_at_ms,
            decision.note
        ])?;
        Ok(())
    }
    fn append_leaf(&self, leaf: &Leaf) -> StoreResult<()> {
        append_leaf(self, leaf)?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT kid, secret, created_at_ms, retired_at_ms FROM server_keys WHERE purpose = 'access_token'
                 ORDER BY created_at_ms",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(SigningKey {
                    kid: row.get(0)?,
                    secret: row.get(1)?,
                    created_at_ms: row.get(2)?,
                    retired_at_ms: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn add_signing_key(&self, key: SigningKey) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO server_keys (kid, purpose, secret, created_at_ms, retired_at_ms)
                 VALUES (?1, 'access_token', ?2, ?3, ?4)",
                params![key.kid, key.secret, key.created_at_ms, key.retired_at_ms],
            )?;
            Ok(())
        })
    }

    fn create_account(&self, account: Account, now_ms: i64) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO accounts (officer_id, name, unit, password_hash, must_change_password, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    account.officer_id,
                    account.name,
                    account.unit,
                    account.password_hash,
                    account.must_change_password,
                    now_ms
                ],
            )?;
            for role in &account.roles {
                tx.execute("INSERT INTO roles (officer_id, role) VALUES (?1, ?2)", params![account.officer_id, role])?;
            }
            Ok(())
        })
    }

    fn account(&self, officer_id: &str) -> StoreResult<Option<Account>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT officer_id, name, unit, password_hash, must_change_password FROM accounts
                     WHERE officer_id = ?1",
                )?
                .query_row([officer_id], |row| account_from(conn, row))
                .optional()?)
        })
    }

    fn accounts(&self) -> StoreResult<Vec<Account>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT officer_id, name, unit, password_hash, must_change_password FROM accounts ORDER BY officer_id",
            )?;
            let rows = statement.query_map([], |row| account_from(conn, row))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn set_password(&self, officer_id: &str, password_hash: &str, must_change: bool) -> StoreResult<()> {
        let (officer_id, password_hash) = (officer_id.to_string(), password_hash.to_string());
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE accounts SET password_hash = ?2, must_change_password = ?3 WHERE officer_id = ?1",
                params![officer_id, password_hash, must_change],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(officer_id));
            }
            // A new password ends every session opened with the old one.
            let now_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            end_sessions(tx, "officer_id = ?1", &officer_id, "password_changed", now_ms)
        })
    }

    fn grant_role(&self, officer_id: &str, role: &str) -> StoreResult<()> {
        let (officer_id, role) = (officer_id.to_string(), role.to_string());
        self.write(move |tx| {
            tx.execute("INSERT OR IGNORE INTO roles (officer_id, role) VALUES (?1, ?2)", params![officer_id, role])?;
            Ok(())
        })
    }

    fn revoke_role(&self, officer_id: &str, role: &str) -> StoreResult<()> {
        let (officer_id, role) = (officer_id.to_string(), role.to_string());
        self.write(move |tx| {
            tx.execute("DELETE FROM roles WHERE officer_id = ?1 AND role = ?2", params![officer_id, role])?;
            Ok(())
        })
    }

    fn issue_certificate(&self, certificate: &Certificate, by: &str, now_ms: i64) -> StoreResult<()> {
        let (certificate, by) = (certificate.clone(), by.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO certificates (number, officer_id, issuing_authority, valid_from_ms, valid_until_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    certificate.number,
                    certificate.officer_id,
                    certificate.issuing_authority,
                    certificate.valid_from_ms,
                    certificate.valid_until_ms
                ],
            )?;
            for change in &certificate.status_history {
                tx.execute(
                    "INSERT INTO certificate_status (number, at_ms, status, reason, recorded_by, recorded_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![certificate.number, change.at_ms, status_name(change.status), change.reason, by, now_ms],
                )?;
            }
            Ok(())
        })
    }

    fn renew_certificate(&self, number: &str, valid_until_ms: i64) -> StoreResult<()> {
        let number = number.to_string();
        self.write(move |tx| {
            if tx.execute(
                "UPDATE certificates SET valid_until_ms = ?2 WHERE number = ?1",
                params![number, valid_until_ms],
            )? == 0
            {
                return Err(StoreError::NotFound(number));
            }
            Ok(())
        })
    }

    fn change_certificate_status(
        &self,
        number: &str,
        change: &CertificateStatusChange,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (number, change, by) = (number.to_string(), change.clone(), by.to_string());
        self.write(move |tx| {
            let exists: bool =
                tx.query_row("SELECT COUNT(*) > 0 FROM certificates WHERE number = ?1", [&number], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::NotFound(number));
            }
            tx.execute(
                "INSERT INTO certificate_status (number, at_ms, status, reason, recorded_by, recorded_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![number, change.at_ms, status_name(change.status), change.reason, by, now_ms],
            )?;
            Ok(())
        })
    }

    fn certificate(&self, number: &str) -> StoreResult<Option<Certificate>> {
        Ok(self.certificates(None)?.into_iter().find(|c| c.number == number))
    }

    fn certificates(&self, officers: Option<&[String]>) -> StoreResult<Vec<Certificate>> {
        self.read(|conn| Ok(load_certificates(conn, officers)?))
    }

    fn store_refresh_token(
        &self,
        token_hash: &[u8],
        family: &str,
        officer_id: &str,
        device_id: Option<&str>,
        issued_at_ms: i64,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        let (hash, family, officer, device) =
            (token_hash.to_vec(), family.to_string(), officer_id.to_string(), device_id.map(str::to_string));
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family, officer_id, device_id, issued_at_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, family, officer, device, issued_at_ms, expires_at_ms],
            )?;
            Ok(())
        })
    }

    fn use_refresh_token(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<RefreshUse> {
        let hash = token_hash.to_vec();
        self.write(move |tx| {
            type Row = (String, String, Option<String>, i64, Option<i64>, Option<i64>);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT family, officer_id, device_id, expires_at_ms, used_at_ms, revoked_at_ms
                     FROM refresh_tokens WHERE token_hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            let Some((family, officer_id, device_id, expires, used, revoked)) = row else {
                return Ok(RefreshUse::Unknown);
            };
            if revoked.is_some() {
                return Ok(RefreshUse::Revoked);
            }
            if let Some(used_at) = used {
                // Presented again soon after its use while nothing issued since in its family has
                // been used: the answer to that use was lost, and this is the device's retry.
                // The unused replacement is revoked and the caller issues another.
                let successor_used: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family = ?1 AND issued_at_ms >= ?2
                                    AND used_at_ms IS NOT NULL AND token_hash != ?3)",
                    params![family, used_at, hash],
                    |r| r.get(0),
                )?;
                if now_ms - used_at <= super::REFRESH_RETRY_GRACE_MS && !successor_used && expires > now_ms {
                    tx.execute(
                        "UPDATE refresh_tokens SET revoked_at_ms = ?3
                         WHERE family = ?1 AND issued_at_ms >= ?2 AND token_hash != ?4 AND revoked_at_ms IS NULL",
                        params![family, used_at, now_ms, hash],
                    )?;
                    return Ok(RefreshUse::Valid { officer_id, device_id, family });
                }
                end_sessions(tx, "family = ?1", &family, "refresh_token_reused", now_ms)?;
                return Ok(RefreshUse::Reused { family });
            }
            if expires <= now_ms {
                return Ok(RefreshUse::Expired);
            }
            tx.execute("UPDATE refresh_tokens SET used_at_ms = ?2 WHERE token_hash = ?1", params![hash, now_ms])?;
            Ok(RefreshUse::Valid { officer_id, device_id, family })
        })
    }

    fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> StoreResult<()> {
        let family = family.to_string();
        self.write(move |tx| {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at_ms = ?2 WHERE family = ?1 AND revoked_at_ms IS NULL",
                params![family, now_ms],
            )?;
            Ok(())
        })
    }

    fn end_session(&self, family: &str, reason: &str, now_ms: i64) -> StoreResult<()> {
        let (family, reason) = (family.to_string(), reason.to_string());
        self.write(move |tx| end_sessions(tx, "family = ?1", &family, &reason, now_ms))
    }

    fn revoked_sessions(&self, since_ms: i64) -> StoreResult<Vec<(String, i64)>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT session_id, revoked_at_ms FROM revoked_sessions WHERE revoked_at_ms >= ?1")?
                .query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn refresh_family_of(&self, token_hash: &[u8]) -> StoreResult<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT family FROM refresh_tokens WHERE token_hash = ?1", [token_hash], |r| r.get(0))
                .optional()?)
        })
    }

    fn store_challenge(
        &self,
        nonce: &[u8],
        officer_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
        max_open: usize,
    ) -> StoreResult<()> {
        let (nonce, officer) = (nonce.to_vec(), officer_id.to_string());
        self.write(move |tx| {
            // An expired challenge can never be answered: it goes, used or not.
            tx.execute("DELETE FROM challenges WHERE expires_at_ms <= ?1", [now_ms])?;
            let open: i64 = tx.query_row(
                "SELECT COUNT(*) FROM challenges WHERE officer_id = ?1 AND used_at_ms IS NULL",
                [&officer],
                |r| r.get(0),
            )?;
            if open as usize >= max_open {
                return Err(StoreError::LimitReached { what: "open enrollment challenges", limit: max_open });
            }
            tx.execute(
                "INSERT INTO challenges (nonce, officer_id, expires_at_ms) VALUES (?1, ?2, ?3)",
                params![nonce, officer, expires_at_ms],
            )?;
            Ok(())
        })
    }

    fn take_challenge(&self, nonce: &[u8], officer_id: &str, now_ms: i64) -> StoreResult<bool> {
        let (nonce, officer) = (nonce.to_vec(), officer_id.to_string());
        self.write(move |tx| {
            let taken = tx.execute(
                "UPDATE challenges SET used_at_ms = ?3
                 WHERE nonce = ?1 AND officer_id = ?2 AND used_at_ms IS NULL AND expires_at_ms > ?3",
                params![nonce, officer, now_ms],
            )?;
            Ok(taken == 1)
        })
    }

    fn enroll_device(&self, device: &Device, max_active: usize) -> StoreResult<()> {
        let device = device.clone();
        self.write(move |tx| {
            let active: i64 = tx.query_row(
                "SELECT COUNT(*) FROM devices WHERE officer_id = ?1 AND revoked_at_ms IS NULL",
                [&device.officer_id],
                |r| r.get(0),
            )?;
            if active as usize >= max_active {
                return Err(StoreError::LimitReached { what: "devices of the officer", limit: max_active });
            }
            tx.execute(
                &format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    device.device_id,
                    device.officer_id,
                    device.public_key,
                    device.actor_id,
                    device.enrolled_at_ms,
                    device.revoked_at_ms
                ],
            )?;
            let leaf = enrolment_leaf(&device, device.enrolled_at_ms)?;
            append_leaf(tx, &leaf)?;
            Ok(())
        })
    }

    fn device(&self, device_id: &str) -> StoreResult<Option<Device>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?1"))?
                .query_row([device_id], device_from)
                .optional()?)
        })
    }

    fn devices(&self) -> StoreResult<Vec<Device>> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id"))?;
            let rows = statement.query_map([], device_from)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn revoke_device(&self, device_id: &str, now_ms: i64) -> StoreResult<()> {
        let device_id = device_id.to_string();
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE devices SET revoked_at_ms = COALESCE(revoked_at_ms, ?2) WHERE device_id = ?1",
                params![device_id, now_ms],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(device_id));
            }
            end_sessions(tx, "device_id = ?1", &device_id, "device_revoked", now_ms)
        })
    }

    fn import_entities_by(&self, entities: &[Entity], by: &str, now_ms: i64) -> StoreResult<usize> {
        let (entities, by) = (entities.to_vec(), by.to_string());
        self.write(move |tx| campaigns::import_entities(tx, &entities, &by, now_ms))
    }

    fn entity(&self, entity_id: &str) -> StoreResult<Option<Entity>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {} FROM entities WHERE entity_id = ?1", campaigns::ENTITY_COLUMNS),
                    [entity_id],
                    campaigns::entity_from,
                )
                .optional()?)
        })
    }

    fn add_recusal(&self, officer_id: &str, entity_id: &str, ground: &str) -> StoreResult<()> {
        let (o, e, g) = (officer_id.to_string(), entity_id.to_string(), ground.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO recusals (officer_id, entity_id, ground) VALUES (?1, ?2, ?3)",
                params![o, e, g],
            )?;
            Ok(())
        })
    }

    fn recused_officers(&self, entity_id: &str) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached("SELECT officer_id FROM recusals WHERE entity_id = ?1")?;
            let rows = statement.query_map([entity_id], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn create_task(&self, task: &Task) -> StoreResult<()> {
        let task = task.clone();
        self.write(move |tx| insert_task(tx, &task))
    }

    fn entity_history(&self, entity_id: &str) -> StoreResult<Vec<EntityChange>> {
        self.read(|conn| campaigns::entity_history(conn, entity_id))
    }

    fn entities(&self) -> StoreResult<Vec<Entity>> {
        self.read(campaigns::entities)
    }

    fn recusals(&self) -> StoreResult<Vec<(String, String, String)>> {
        self.read(campaigns::recusals)
    }

    fn import_matters(&self, list: &MatterList, by: &str, now_ms: i64) -> StoreResult<usize> {
        let (list, by) = (list.clone(), by.to_string());
        self.write(move |tx| campaigns::import_matters(tx, &list, &by, now_ms))
    }

    fn matters(&self) -> StoreResult<Option<MatterList>> {
        self.read(campaigns::matters)
    }

    fn create_campaign(&self, campaign: &StoredCampaign) -> StoreResult<()> {
        let campaign = campaign.clone();
        self.write(move |tx| campaigns::create_campaign(tx, &campaign))
    }

    fn campaign(&self, campaign_id: &str) -> StoreResult<Option<StoredCampaign>> {
        self.read(|conn| campaigns::campaign(conn, campaign_id))
    }

    fn campaigns(&self) -> StoreResult<Vec<StoredCampaign>> {
        self.read(campaigns::campaigns)
    }

    fn campaigns_after(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<StoredCampaign>> {
        self.read(|conn| campaigns::campaigns_after(conn, after, limit))
    }

    fn store_draw(&self, campaign_id: &str, draw: &StoredDraw, tasks: &[Task]) -> StoreResult<bool> {
        let (campaign_id, draw, tasks) = (campaign_id.to_string(), draw.clone(), tasks.to_vec());
        self.write(move |tx| campaigns::store_draw(tx, &campaign_id, &draw, &tasks))
    }

    fn campaign_tasks(&self, campaign_id: &str) -> StoreResult<Vec<CampaignTask>> {
        self.read(|conn| campaigns::campaign_tasks(conn, Some(campaign_id), None))
    }

    fn campaign_task(&self, task_id: &str) -> StoreResult<Option<CampaignTask>> {
        self.read(|conn| Ok(campaigns::campaign_tasks(conn, None, Some(task_id))?.pop()))
    }

    fn publish_result(&self, task_id: &str, record_id: &str, by: &str, now_ms: i64) -> StoreResult<bool> {
        let (task_id, record_id, by) = (task_id.to_string(), record_id.to_string(), by.to_string());
        self.write(move |tx| campaigns::publish_result(tx, &task_id, &record_id, &by, now_ms))
    }

    fn calendar(&self) -> StoreResult<sync_core::calendar::WorkingCalendar> {
        self.read(|conn| campaigns::calendar(conn, None))
    }

    fn calendar_year(&self, year: i16) -> StoreResult<Option<sync_core::calendar::WorkingCalendar>> {
        self.read(|conn| {
            let stored: i64 =
                conn.query_row("SELECT COUNT(*) FROM calendar_years WHERE year = ?1", [year], |r| r.get(0))?;
            if stored == 0 { Ok(None) } else { campaigns::calendar(conn, Some(year)).map(Some) }
        })
    }

    fn put_calendar_year(
        &self,
        year: i16,
        calendar: &sync_core::calendar::WorkingCalendar,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (calendar, by) = (calendar.clone(), by.to_string());
        self.write(move |tx| campaigns::put_calendar_year(tx, year, &calendar, &by, now_ms))
    }

    fn task(&self, task_id: &str) -> StoreResult<Option<Task>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ?1"))?
                .query_row([task_id], |row| task_from(conn, row))
                .optional()?)
        })
    }

    fn tasks(&self, officer_id: Option<&str>) -> StoreResult<Vec<Task>> {
        self.read(|conn| {
            let sql = match officer_id {
                Some(_) => format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE task_id IN
                     (SELECT task_id FROM task_team WHERE officer_id = ?1) ORDER BY task_id"
                ),
                None => format!("SELECT {TASK_COLUMNS} FROM tasks WHERE ?1 IS NULL ORDER BY task_id"),
            };
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map([officer_id], |row| task_from(conn, row))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn record_task(&self, record_id: &str) -> StoreResult<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT task_id FROM records WHERE record_id = ?1")?
                .query_row([record_id], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten())
        })
    }

    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE record_id = ?1"))?
                .query_row([record_id], record_from)
                .optional()?)
        })
    }

    fn records(&self, filter: &RecordFilter) -> StoreResult<Vec<StoredRecord>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records r
                 WHERE (?1 IS NULL OR r.task_id = ?1)
                   AND (?2 IS NULL OR r.task_id IN (SELECT task_id FROM tasks WHERE entity_id = ?2))
                   AND (?3 IS NULL OR r.status = ?3)
                   AND (?4 IS NULL OR r.task_id IN (SELECT task_id FROM task_team WHERE officer_id = ?4))
                   AND (?5 IS NULL OR r.task_id IN (SELECT task_id FROM task_team WHERE officer_id = ?5))
                   AND (?6 IS NULL OR r.record_id > ?6)
                 ORDER BY r.record_id LIMIT ?7"
            ))?;
            let rows = statement.query_map(
                params![
                    filter.task_id,
                    filter.entity_id,
                    filter.status,
                    filter.officer_id,
                    filter.visible_to,
                    filter.after,
                    filter.limit as i64
                ],
                record_from,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn record_ids(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached("SELECT record_id FROM records ORDER BY record_id")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn quarantined(&self, record_id: Option<&str>) -> StoreResult<Vec<QuarantinedChange>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE ?1 IS NULL OR record_id = ?1 ORDER BY id"
            ))?;
            let rows = statement.query_map([record_id], quarantined_from)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn sync_exchange(&self, exchange: SyncJob) -> StoreResult<schemas::SyncResponse> {
        let head = self.head.clone();
        self.write(move |tx| {
            let response = exchange(&**tx)?;
            head.store(record_seq_head(tx)?, std::sync::atomic::Ordering::SeqCst);
            Ok(response)
        })
    }

    fn known_record_head(&self) -> Option<u64> {
        Some(self.head.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn sync_epoch(&self) -> u16 {
        self.epoch
    }

    fn prepare_sync(&self, officer_id: &str, exchange: SyncJob) -> StoreResult<(schemas::SyncResponse, SyncPlan)> {
        self.read(|conn| {
            // One read transaction: the exchange sees one consistent snapshot.
            conn.execute_batch("BEGIN")?;
            let mark = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM quarantine", [], |r| r.get::<_, i64>(0));
            let recording = RecordingTx::new(conn, officer_id);
            let result = exchange(&recording);
            conn.execute_batch("COMMIT")?;
            let mut plan = recording.into_plan();
            plan.quarantine_mark = mark?;
            Ok((result?, plan))
        })
    }

    fn commit_sync(&self, plan: SyncPlan) -> StoreResult<Option<u64>> {
        let head = self.head.clone();
        self.write(move |tx| {
            let conn: &Connection = tx;
            // Every record this exchange stores or quarantines for must be as the snapshot saw it,
            // and nobody may have quarantined a change of it since: else the verdicts may disagree
            // (one exchange refusing what another accepts), and the exchange runs in the writer.
            for write in &plan.writes {
                let record_id = match write {
                    SyncWrite::Record { record_id, .. } => record_id,
                    SyncWrite::Quarantine(change) => &change.record_id,
                    SyncWrite::State { .. } | SyncWrite::Leaf(_) => continue,
                };
                let now: Option<u64> = conn
                    .prepare_cached("SELECT seq FROM records WHERE record_id = ?1")?
                    .query_row([record_id], |r| r.get::<_, i64>(0))
                    .optional()?
                    .map(|seq| seq as u64);
                if plan.read_seqs.get(record_id).copied().flatten() != now {
                    return Ok(None);
                }
                let refused_since: bool = conn
                    .prepare_cached("SELECT COUNT(*) > 0 FROM quarantine WHERE record_id = ?1 AND id > ?2")?
                    .query_row(params![record_id, plan.quarantine_mark], |r| r.get(0))?;
                if refused_since {
                    return Ok(None);
                }
            }
            let head_before = plan.head_before.unwrap_or(0);
            let others_changed = !changed_since(conn, &plan.officer_id, head_before, 1)?.is_empty();
            for write in plan.writes {
                match write {
                    SyncWrite::Record { record_id, task_id, document, status, now_ms } => {
                        conn.put_record(&record_id, task_id.as_deref(), &document, &status, now_ms)?;
                    }
                    SyncWrite::State { device_id, record_id, state } => {
                        conn.put_sync_state(&device_id, &record_id, &state)?
                    }
                    SyncWrite::Quarantine(change) => conn.quarantine(&change)?,
                    SyncWrite::Leaf(leaf) => {
                        append_leaf(conn, &leaf)?;
                    }
                }
            }
            let now = record_seq_head(conn)?;
            head.store(now, std::sync::atomic::Ordering::SeqCst);
            Ok(Some(if others_changed { head_before } else { now }))
        })
    }

    fn changed_for(&self, officer_id: &str, since: u64) -> StoreResult<(bool, u64)> {
        self.read(|conn| {
            // One read transaction, so that the head and the list agree.
            conn.execute_batch("BEGIN")?;
            let result = changed_since(conn, officer_id, since, 1).and_then(|changed| {
                let head = record_seq_head(conn)?;
                Ok((!changed.is_empty(), head))
            });
            conn.execute_batch("COMMIT")?;
            result
        })
    }

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

    fn log_unlogged_enrolments(&self, now_ms: i64) -> StoreResult<usize> {
        self.write(move |tx| {
            let devices: Vec<Device> = tx
                .prepare(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices d WHERE NOT EXISTS
                       (SELECT 1 FROM log_leaves WHERE subject = 'device:' || d.device_id)
                     ORDER BY enrolled_at_ms, device_id"
                ))?
                .query_map([], device_from)?
                .collect::<rusqlite::Result<_>>()?;
            for device in &devices {
                append_leaf(tx, &enrolment_leaf(device, now_ms)?)?;
            }
            Ok(devices.len())
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
                append_leaf(tx, &Leaf { received_ms: now_ms, item: LeafItem::Blob { sha256, size: blob.size } })?;
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

    fn log_identity(&self, origin: &str, secret: [u8; 32], now_ms: i64) -> StoreResult<LogIdentity> {
        if let Some(identity) = self.read(log_identity_row)? {
            return Ok(identity);
        }
        let origin = origin.to_string();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO log_identity (id, origin, secret, created_at_ms) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO NOTHING",
                params![origin, secret.as_slice(), now_ms],
            )?;
            log_identity_row(tx)?.ok_or_else(|| StoreError::Other("the log's identity was not kept".into()))
        })
    }

    fn log_size(&self) -> StoreResult<u64> {
        self.read(log_size)
    }

    fn log_root(&self, size: u64) -> StoreResult<Option<Hash>> {
        self.read_snapshot(|conn| {
            if size > log_size(conn)? {
                return Ok(None);
            }
            Ok(Some(merkle::root_of(&StoredTree(conn), size)?))
        })
    }

    fn log_inclusion(&self, index: u64, size: u64) -> StoreResult<Option<(StoredLeaf, Vec<Hash>)>> {
        self.read_snapshot(|conn| {
            if size > log_size(conn)? {
                return Ok(None);
            }
            let Some(proof) = merkle::inclusion_proof_of(&StoredTree(conn), size, index)? else {
                return Ok(None);
            };
            let leaf =
                leaf_row(conn, index)?.ok_or_else(|| StoreError::Other(format!("the log lacks leaf {index}")))?;
            Ok(Some((leaf, proof)))
        })
    }

    fn log_consistency(&self, from: u64, to: u64) -> StoreResult<Option<Vec<Hash>>> {
        self.read_snapshot(|conn| {
            if to > log_size(conn)? {
                return Ok(None);
            }
            merkle::consistency_proof_of(&StoredTree(conn), to, from)
        })
    }

    fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        self.read(latest_checkpoint)
    }

    fn checkpoint(&self, now_ms: i64) -> StoreResult<StoredCheckpoint> {
        let current = self.read_snapshot(|conn| {
            let size = log_size(conn)?;
            Ok(latest_checkpoint(conn)?.filter(|latest| latest.size == size))
        })?;
        match current {
            Some(checkpoint) => Ok(checkpoint),
            None => self.write(move |tx| current_checkpoint(tx, now_ms)),
        }
    }

    fn append_log_entries(
        &self,
        device_id: &str,
        entries: Vec<CheckedEntry>,
        received_ms: i64,
        max_held: usize,
    ) -> StoreResult<LogAppend> {
        let device_id = device_id.to_string();
        self.write(move |tx| append_log_entries(tx, &device_id, &entries, received_ms, max_held))
    }

    fn record_log(&self, record_id: &str, officers: &[String]) -> StoreResult<Vec<ChainEntry>> {
        self.read_snapshot(|conn| {
            let rows: Vec<(String, String, i64, i64)> = conn
                .prepare_cached(
                    "SELECT d.officer_id, c.entry, c.leaf_index, c.received_at_ms FROM log_chain c
                     JOIN devices d ON d.device_id = c.device_id
                     WHERE c.record_id = ?1 ORDER BY c.device_id, c.seq",
                )?
                .query_map([record_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let size = log_size(conn)?;
            let tree = StoredTree(conn);
            let mut seen_trees: BTreeMap<u64, Option<(Hash, Option<i64>)>> = BTreeMap::new();
            let mut entries = Vec::new();
            for (officer_id, json, leaf_index, received_at_ms) in rows {
                if !officers.contains(&officer_id) {
                    continue;
                }
                let signed = signed_entry(&json)?;
                let seen_tree = match &signed.entry.seen_checkpoint {
                    None => None,
                    Some(seen) if seen.size > size => None,
                    Some(seen) => match seen_trees.get(&seen.size) {
                        Some(known) => *known,
                        None => {
                            let root = merkle::root_of(&tree, seen.size)?;
                            let last = match seen.size.checked_sub(1) {
                                Some(index) => leaf_row(conn, index)?.map(|leaf| leaf.received_at_ms),
                                None => None,
                            };
                            seen_trees.insert(seen.size, Some((root, last)));
                            Some((root, last))
                        }
                    },
                };
                entries.push(ChainEntry { signed, leaf_index: leaf_index as u64, received_at_ms, seen_tree });
            }
            Ok(entries)
        })
    }

    fn forked_devices(&self, record_id: &str, officers: &[String]) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached(
                    "SELECT DISTINCT d.device_id, d.officer_id FROM devices d
                     WHERE d.device_id IN (SELECT device_id FROM log_chain WHERE record_id = ?1
                                           UNION SELECT device_id FROM log_forks WHERE record_id = ?1)
                       AND EXISTS (SELECT 1 FROM log_forks f WHERE f.device_id = d.device_id)
                     ORDER BY d.device_id",
                )?
                .query_map([record_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows.into_iter().filter(|(_, officer)| officers.contains(officer)).map(|(device, _)| device).collect())
        })
    }

    fn evidence(&self, request: &EvidenceRequest) -> StoreResult<Option<EvidenceSource>> {
        self.read_snapshot(|conn| {
            let Some(record) = conn
                .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE record_id = ?1"))?
                .query_row([&request.record_id], record_from)
                .optional()?
            else {
                return Ok(None);
            };
            let Some(checkpoint) = latest_checkpoint(conn)? else {
                return Err(StoreError::Other("no checkpoint of the transparency log is signed yet".into()));
            };
            let size = checkpoint.size;
            let tree = StoredTree(conn);
            let mut leaf_indexes: BTreeSet<u64> = BTreeSet::new();

            // The record's entries from the team's devices, and each device's chain between them.
            let ranges: Vec<(String, String, i64, i64)> = conn
                .prepare_cached(
                    "SELECT c.device_id, d.officer_id, MIN(c.seq), MAX(c.seq) FROM log_chain c
                     JOIN devices d ON d.device_id = c.device_id
                     WHERE c.record_id = ?1 AND c.leaf_index < ?2 GROUP BY c.device_id ORDER BY c.device_id",
                )?
                .query_map(params![request.record_id, size as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            // The record's state names every device with entries of it: those are all in.
            let state = record_state(conn, &request.record_id, size)?;
            let named: BTreeSet<&str> =
                state.iter().flat_map(|(_, items, _)| items.devices.iter().map(|d| d.device_id.as_str())).collect();
            let mut entries = Vec::new();
            let mut device_ids: BTreeSet<String> = BTreeSet::new();
            for (device_id, officer_id, first, _) in ranges {
                if !request.officers.contains(&officer_id) && !named.contains(device_id.as_str()) {
                    continue;
                }
                // Up to the device's newest entry the checkpoint holds, so that no entry of the
                // record after its last one here can be left out unseen.
                let last: i64 = conn
                    .prepare_cached("SELECT MAX(seq) FROM log_chain WHERE device_id = ?1 AND leaf_index < ?2")?
                    .query_row(params![device_id, size as i64], |r| r.get(0))?;
                let rows: Vec<(String, Vec<u8>, i64)> = conn
                    .prepare_cached(
                        "SELECT entry, payload, leaf_index FROM log_chain
                         WHERE device_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
                    )?
                    .query_map(params![device_id, first, last], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (json, payload, leaf_index) in rows {
                    leaf_indexes.insert(leaf_index as u64);
                    entries.push(EvidenceEntry {
                        signed: signed_entry(&json)?,
                        payload,
                        leaf_index: leaf_index as u64,
                    });
                }
                device_ids.insert(device_id);
            }

            // The devices: those of the entries and those whose actors wrote the record.
            let mut devices = Vec::new();
            for device in conn
                .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id"))?
                .query_map([], device_from)?
            {
                let device = device?;
                if device_ids.contains(&device.device_id) || request.actor_ids.contains(&device.actor_id) {
                    let leaf = leaves_about(conn, &format!("device:{}", device.device_id), size)?.first().copied();
                    leaf_indexes.extend(leaf);
                    devices.push((device, leaf));
                }
            }

            // The record's signatures and lock, and the blobs it and its entries name.
            leaf_indexes.extend(leaves_about(conn, &format!("record:{}", request.record_id), size)?);
            leaf_indexes.extend(state.as_ref().map(|(index, ..)| *index));
            let mut wanted: BTreeSet<String> = request.blobs.iter().cloned().collect();
            for entry in &entries {
                if entry.signed.entry.record_id.as_deref() == Some(request.record_id.as_str())
                    && let schemas::log::EntryKind::PhotoTaken { sha256 } = &entry.signed.entry.kind
                {
                    wanted.insert(sha256.clone());
                }
            }
            let mut blobs = Vec::new();
            for sha256 in &wanted {
                let stored = match blob_row(conn, sha256)? {
                    Some(blob) => {
                        leaves_about(conn, &format!("blob:{sha256}"), size)?.first().map(|leaf| (blob, *leaf))
                    }
                    None => None,
                };
                if let Some((_, leaf)) = &stored {
                    leaf_indexes.insert(*leaf);
                }
                blobs.push((sha256.clone(), stored));
            }

            let mut leaves = Vec::new();
            for index in leaf_indexes {
                let leaf =
                    leaf_row(conn, index)?.ok_or_else(|| StoreError::Other(format!("leaf {index} is missing")))?;
                let proof = merkle::inclusion_proof_of(&tree, size, index)?
                    .ok_or_else(|| StoreError::Other(format!("leaf {index} is not below {size}")))?;
                leaves.push((leaf, proof));
            }

            // Each checkpoint the entries name that the log really had: its last leaf, proven.
            let mut seen = Vec::new();
            let named: BTreeSet<(u64, [u8; 32])> = entries
                .iter()
                .filter_map(|e| e.signed.entry.seen_checkpoint)
                .filter(|c| c.size >= 1 && c.size <= size)
                .map(|c| (c.size, c.root))
                .collect();
            for (seen_size, root) in named {
                if merkle::root_of(&tree, seen_size)? != root {
                    continue;
                }
                let last = leaf_row(conn, seen_size - 1)?
                    .ok_or_else(|| StoreError::Other(format!("leaf {} is missing", seen_size - 1)))?;
                let inclusion = merkle::inclusion_proof_of(&tree, seen_size, seen_size - 1)?.unwrap_or_default();
                let consistency = merkle::consistency_proof_of(&tree, size, seen_size)?.unwrap_or_default();
                seen.push(SeenTree { size: seen_size, root, last, inclusion, consistency });
            }
            let state = state.map(|(index, items, _)| (index, items));
            Ok(Some(EvidenceSource {
                document: record.document,
                checkpoint,
                devices,
                entries,
                blobs,
                leaves,
                seen,
                state,
            }))
        })
    }

    fn backup(&self, path: &Path) -> StoreResult<()> {
        let target = path.to_path_buf();
        self.read(|conn| {
            let mut destination = Connection::open(&target)?;
            let backup = rusqlite::backup::Backup::new(conn, &mut destination)?;
            backup.run_to_completion(256, std::time::Duration::from_millis(0), None)?;
            drop(backup);
            // The copy gets an epoch of its own: restored, it tells every device that its cursor
            // and the sync states kept with it are stale, however far the sequence has come.
            let live = i64::from(self.epoch);
            let mut fresh = live;
            while fresh == live {
                fresh = i64::from(rand::random::<u16>() & 0x7fff).max(1);
            }
            destination.execute("UPDATE counters SET value = ?1 WHERE name = 'sync_epoch'", [fresh])?;
            Ok(())
        })
    }

    fn integrity_check(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut statement = conn.prepare("PRAGMA integrity_check")?;
            let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
            let problems: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
            Ok(problems.into_iter().filter(|p| p != "ok").collect())
        })
    }

    fn log_check(&self) -> StoreResult<Vec<String>> {
        self.read_snapshot(|conn| {
            let mut problems = Vec::new();
            let tree = StoredTree(conn);
            let mut leaves = conn.prepare("SELECT idx, data FROM log_leaves ORDER BY idx")?;
            let mut rows = leaves.query([])?;
            let mut expected = 0u64;
            while let Some(row) = rows.next()? {
                let index = row.get::<_, i64>(0)? as u64;
                if index != expected {
                    problems.push(format!("leaf {expected} is missing"));
                    expected = index;
                }
                expected += 1;
                let Ok(data) = row.get_ref(1)?.as_blob() else {
                    problems.push(format!("leaf {index} is not bytes"));
                    continue;
                };
                match tree.subtree(0, index) {
                    Ok(hash) if hash == merkle::leaf_hash(data) => {}
                    Ok(_) => problems.push(format!("leaf {index} does not hash to its stored subtree")),
                    Err(_) => problems.push(format!("leaf {index} has no stored subtree")),
                }
            }
            let mut subtrees =
                conn.prepare("SELECT level, idx, hash FROM log_subtrees WHERE level > 0 ORDER BY level, idx")?;
            let mut rows = subtrees.query([])?;
            while let Some(row) = rows.next()? {
                let (level, index, hash): (u32, i64, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
                let index = index as u64;
                let children = (tree.subtree(level - 1, 2 * index), tree.subtree(level - 1, 2 * index + 1));
                match children {
                    (Ok(left), Ok(right)) if merkle::node_hash(&left, &right).as_slice() == hash.as_slice() => {}
                    (Ok(_), Ok(_)) => {
                        problems.push(format!("subtree {level}/{index} is not the node over its children"))
                    }
                    _ => problems.push(format!("subtree {level}/{index} lacks a child")),
                }
            }
            let identity = log_identity_row(conn)?;
            let mut checkpoints = conn.prepare("SELECT size, note FROM log_checkpoints ORDER BY size")?;
            let rows: Vec<(i64, String)> =
                checkpoints.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
            for (size, note) in rows {
                let size = size as u64;
                let Some(identity) = &identity else {
                    problems.push(format!("checkpoint {size} is stored but the log has no key"));
                    continue;
                };
                let opened = sync_core::checkpoint::open_note(
                    &note,
                    &[(identity.origin.as_str(), identity.key.verifying_key())],
                )
                .map_err(|e| e.to_string())
                .and_then(|(text, _)| Checkpoint::parse_body(&text).map_err(|e| e.to_string()));
                match opened {
                    Ok(checkpoint) if checkpoint.size != size => {
                        problems.push(format!("checkpoint {size} names size {}", checkpoint.size))
                    }
                    Ok(checkpoint) => {
                        if expected < size || merkle::root_of(&tree, size).ok() != Some(checkpoint.root) {
                            problems.push(format!("checkpoint {size} is not the tree's root at that size"));
                        }
                    }
                    Err(error) => problems.push(format!("checkpoint {size} does not open: {error}")),
                }
            }
            Ok(problems)
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

    fn ready(&self) -> bool {
        let writer_alive =
            self.writer_thread.lock().map(|thread| thread.as_ref().is_some_and(|t| !t.is_finished())).unwrap_or(false);
        writer_alive && self.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).is_ok()
    }
}

#[cfg(test)]
mod tests {
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
