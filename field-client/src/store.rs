//! The device's local store: one SQLite file in the device's folder.
//!
//! It holds the device's identity (its Ed25519 key, its Automerge actor id,
//! the officer it is bound to), its tokens, the record documents, the sync
//! state of each record with the server, the tasks cached from the server, the
//! photos by SHA-256, and the changes the server refused with their reasons.
//!
//! Every write is one SQLite transaction in WAL mode with `synchronous=FULL`:
//! a process killed at any instant reopens with everything committed before
//! it, and nothing half-written. A record's row carries a version that every
//! write bumps, so that a sync that loaded a document before a local edit in
//! another process merges into the stored one instead of overwriting it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use sync_core::enforcement_log::{EntryEncoding, GENESIS_PREVIOUS, SeenCheckpoint, SignedEntry};

use crate::error::{ClientError, ClientResult};

/// The store's schema, one migration per entry; `PRAGMA user_version` counts those applied.
/// 1: identity, records, sync, tasks, photos, refusals. 2: the enforcement log's chain. 3: when
/// each photo reached the server.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE secrets (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE records (
        record_id TEXT PRIMARY KEY,
        task_id TEXT,
        document BLOB NOT NULL,
        version INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE pending (record_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
    CREATE TABLE sync_states (record_id TEXT PRIMARY KEY, state BLOB NOT NULL);
    CREATE TABLE tasks (task_id TEXT PRIMARY KEY, task TEXT NOT NULL, fetched_at_ms INTEGER NOT NULL);
    CREATE TABLE photos (
        sha256 TEXT PRIMARY KEY,
        record_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        bytes BLOB NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        added_at_ms INTEGER NOT NULL
    );
    CREATE TABLE refused (
        record_id TEXT NOT NULL,
        change_hash TEXT NOT NULL,
        reason TEXT NOT NULL,
        change BLOB,
        refused_at_ms INTEGER NOT NULL,
        PRIMARY KEY (record_id, change_hash)
    );
"#,
    r#"
    CREATE TABLE log_entries (
        seq INTEGER PRIMARY KEY,
        hash BLOB NOT NULL,
        record_id TEXT,
        entry TEXT NOT NULL,
        payload BLOB NOT NULL,
        uploaded INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX log_entries_record ON log_entries(record_id);
"#,
    r#"
    ALTER TABLE photos ADD COLUMN uploaded_at_ms INTEGER;
"#,
    // The body last received for each URL the device asks again at every sync (its task list
    // and teams), with the answer's ETag, so that an unchanged one comes back 304 with no body.
    r#"
    CREATE TABLE validators (url TEXT PRIMARY KEY, etag TEXT NOT NULL, body BLOB NOT NULL);
"#,
];

/// The file name of the store inside a device folder.
pub const STORE_FILE: &str = "device.sqlite";

/// Who this device is, as enrollment made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Base URL of the server the device is enrolled with, without a trailing slash.
    pub server: String,
    /// The server's id for this device.
    pub device_id: String,
    /// The officer the device is bound to.
    pub officer_id: String,
    /// The device's Automerge actor id, 16 bytes, hex.
    pub actor_id: String,
}

/// The device's tokens with the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    /// When the access token stops working, Unix ms (as the device's clock sees it).
    pub access_expires_at_ms: i64,
    pub refresh_token: String,
}

/// A record document as stored.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub record_id: String,
    pub task_id: Option<String>,
    pub document: Vec<u8>,
    /// Bumped by every write of this row.
    pub version: i64,
    pub updated_at_ms: i64,
}

/// What a sync starts from: the server cursor, the records with something unsaid (and their
/// versions), and every record's sync state.
#[derive(Clone, Debug, Default)]
pub struct SyncSnapshot {
    pub cursor: Option<u64>,
    pub pending: BTreeMap<String, i64>,
    pub states: Vec<(String, Vec<u8>)>,
}

/// What one answered sync round changes in the store, written in one transaction.
#[derive(Clone, Debug, Default)]
pub struct ExchangeWrite {
    /// Documents that changed.
    pub documents: Vec<SyncedDocument>,
    /// Sync states to keep.
    pub states: Vec<(String, Vec<u8>)>,
    /// Sync states to forget (a record whose history shrank).
    pub forget_states: Vec<String>,
    /// The session's pending set after the round.
    pub pending: BTreeSet<String>,
    /// Pending records as the sync found them: a record pending then, and not now, is cleared
    /// only if no local edit bumped it meanwhile.
    pub pending_before: BTreeMap<String, i64>,
    pub cursor: Option<u64>,
    pub refused: Vec<RefusedChange>,
}

/// A document a sync changed.
#[derive(Clone, Debug)]
pub struct SyncedDocument {
    pub record_id: String,
    /// The version the sync loaded it at (`None`: new on this device).
    pub loaded_version: Option<i64>,
    pub task_id: Option<String>,
    pub document: Vec<u8>,
}

/// A document as [`DeviceStore::write_exchange`] wrote it.
#[derive(Clone, Debug)]
pub struct WrittenDocument {
    pub record_id: String,
    pub version: i64,
    /// The merged bytes, when a local edit made meanwhile was merged in.
    pub merged: Option<Vec<u8>>,
}

/// What [`DeviceStore::write_exchange`] wrote.
#[derive(Clone, Debug, Default)]
pub struct ExchangeWritten {
    /// Each document written, at its new version.
    pub documents: Vec<WrittenDocument>,
    /// Records that became pending in this write, with the version they became pending at: a
    /// later write clears them by the same guard as [`ExchangeWrite::pending_before`].
    pub pending_added: Vec<(String, i64)>,
}

/// A change of this device the server refused, kept with its reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusedChange {
    pub record_id: String,
    pub change_hash: String,
    /// The server's reason, as its `RejectionReason` JSON.
    pub reason: serde_json::Value,
    /// The change's bytes, when the device still had them.
    #[serde(skip)]
    pub change: Option<Vec<u8>>,
    pub refused_at_ms: i64,
}

/// A cached inspection task, as the server lists it, with its team's certificates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedTask {
    pub task_id: String,
    /// The server's task and team, as JSON (`GET /v1/tasks/{id}/team`).
    pub team: serde_json::Value,
    pub fetched_at_ms: i64,
}

/// A photo kept on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Photo {
    pub sha256: String,
    pub record_id: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub added_at_ms: i64,
}

/// The device's SQLite store.
pub struct DeviceStore {
    conn: Connection,
    path: PathBuf,
}

impl DeviceStore {
    /// Opens (creating if needed) the store in the device folder `dir`.
    pub fn open(dir: &Path) -> ClientResult<Self> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| ClientError::Io { path, error: e.to_string() }
        };
        // The folder holds the device's secret key and tokens: only its owner may read it.
        let mut folder = std::fs::DirBuilder::new();
        folder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        folder.create(dir).map_err(io(dir))?;
        let path = dir.join(STORE_FILE);
        let mut file = std::fs::OpenOptions::new();
        file.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
        file.open(&path).map_err(io(&path))?;
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let version = version as usize;
        if version > MIGRATIONS.len() {
            return Err(ClientError::StoreTooNew { found: version, known: MIGRATIONS.len() });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", (index + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Self { conn, path })
    }

    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`), so that it
    /// waits out another process's write (the busy timeout) instead of failing when its first
    /// read would have to become a write.
    fn write(&self) -> ClientResult<rusqlite::Transaction<'_>> {
        Ok(rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)?)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PRAGMA integrity_check`: `Ok` when the file is sound.
    pub fn check(&self) -> ClientResult<()> {
        let result: String = self.conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if result == "ok" { Ok(()) } else { Err(ClientError::CorruptStore { detail: result }) }
    }

    fn meta(&self, key: &str) -> ClientResult<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0)).optional()?)
    }

    fn put_meta(conn: &Connection, key: &str, value: &str) -> ClientResult<()> {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn secret(&self, key: &str) -> ClientResult<Option<Vec<u8>>> {
        Ok(self.conn.query_row("SELECT value FROM secrets WHERE key = ?1", [key], |row| row.get(0)).optional()?)
    }

    /// Stores the identity, the signing key and the first tokens of a new enrollment, at once.
    pub fn enroll(&self, identity: &Identity, signing_key: &[u8; 32], tokens: &Tokens) -> ClientResult<()> {
        let tx = self.write()?;
        if tx.query_row("SELECT 1 FROM meta WHERE key = 'identity'", [], |_| Ok(())).optional()?.is_some() {
            return Err(ClientError::AlreadyEnrolled);
        }
        Self::put_meta(&tx, "identity", &serde_json::to_string(identity).expect("identity serializes"))?;
        tx.execute("INSERT INTO secrets (key, value) VALUES ('signing_key', ?1)", [signing_key.as_slice()])?;
        Self::write_tokens(&tx, tokens)?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps what the device trusts to reach its server (written at enrollment, before the
    /// identity: a transport without an identity is replaced by the next enrollment).
    pub fn set_transport(&self, transport: &crate::transport::Transport) -> ClientResult<()> {
        let tx = self.write()?;
        Self::put_meta(&tx, "transport", &serde_json::to_string(transport).expect("transport serializes"))?;
        tx.commit()?;
        Ok(())
    }

    /// What the device trusts to reach its server; a device enrolled before it was kept trusts
    /// the platform's roots only.
    pub fn transport(&self) -> ClientResult<crate::transport::Transport> {
        match self.meta("transport")? {
            Some(json) => serde_json::from_str(&json).map_err(|e| ClientError::CorruptStore { detail: e.to_string() }),
            None => Ok(crate::transport::Transport::default()),
        }
    }

    pub fn identity(&self) -> ClientResult<Option<Identity>> {
        match self.meta("identity")? {
            Some(json) => {
                Ok(Some(serde_json::from_str(&json).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?))
            }
            None => Ok(None),
        }
    }

    /// The device's Ed25519 secret key.
    pub fn signing_key(&self) -> ClientResult<Option<[u8; 32]>> {
        match self.secret("signing_key")? {
            Some(bytes) => Ok(Some(
                bytes.try_into().map_err(|_| ClientError::CorruptStore { detail: "signing key length".into() })?,
            )),
            None => Ok(None),
        }
    }

    fn write_tokens(conn: &Connection, tokens: &Tokens) -> ClientResult<()> {
        for (key, value) in
            [("access_token", tokens.access_token.as_bytes()), ("refresh_token", tokens.refresh_token.as_bytes())]
        {
            conn.execute(
                "INSERT INTO secrets (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        Self::put_meta(conn, "access_expires_at_ms", &tokens.access_expires_at_ms.to_string())
    }

    pub fn save_tokens(&self, tokens: &Tokens) -> ClientResult<()> {
        let tx = self.write()?;
        Self::write_tokens(&tx, tokens)?;
        tx.commit()?;
        Ok(())
    }

    pub fn tokens(&self) -> ClientResult<Option<Tokens>> {
        let text = |bytes: Option<Vec<u8>>| bytes.map(|b| String::from_utf8_lossy(&b).into_owned());
        let (Some(access_token), Some(refresh_token)) =
            (text(self.secret("access_token")?), text(self.secret("refresh_token")?))
        else {
            return Ok(None);
        };
        let access_expires_at_ms = self.meta("access_expires_at_ms")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Some(Tokens { access_token, access_expires_at_ms, refresh_token }))
    }

    /// The record the CLI's `record` commands act on when none is named.
    pub fn current_record(&self) -> ClientResult<Option<String>> {
        self.meta("current_record")
    }

    pub fn set_current_record(&self, record_id: &str) -> ClientResult<()> {
        Self::put_meta(&self.conn, "current_record", record_id)
    }

    pub fn record(&self, record_id: &str) -> ClientResult<Option<StoredRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT record_id, task_id, document, version, updated_at_ms FROM records WHERE record_id = ?1",
                [record_id],
                |row| {
                    Ok(StoredRecord {
                        record_id: row.get(0)?,
                        task_id: row.get(1)?,
                        document: row.get(2)?,
                        version: row.get(3)?,
                        updated_at_ms: row.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every record's id and task, in id order (ids are UUIDv7: creation order).
    pub fn record_ids(&self) -> ClientResult<Vec<(String, Option<String>)>> {
        let mut statement = self.conn.prepare("SELECT record_id, task_id FROM records ORDER BY record_id")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes a record edited here, if its row is still at `expected_version` (`None`: new), and
    /// marks it pending, in one transaction. Returns the new version.
    pub fn put_local_record(
        &self,
        record_id: &str,
        task_id: Option<&str>,
        document: &[u8],
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> ClientResult<i64> {
        let tx = self.write()?;
        let version = Self::write_record(&tx, record_id, task_id, document, expected_version, now_ms)?;
        tx.execute(
            "INSERT INTO pending (record_id, version) VALUES (?1, ?2) \
             ON CONFLICT (record_id) DO UPDATE SET version = excluded.version",
            params![record_id, version],
        )?;
        tx.commit()?;
        Ok(version)
    }

    fn write_record(
        conn: &Connection,
        record_id: &str,
        task_id: Option<&str>,
        document: &[u8],
        expected_version: Option<i64>,
        now_ms: i64,
    ) -> ClientResult<i64> {
        let current: Option<i64> = conn
            .query_row("SELECT version FROM records WHERE record_id = ?1", [record_id], |row| row.get(0))
            .optional()?;
        if current != expected_version {
            return Err(ClientError::ConcurrentEdit { record_id: record_id.to_string() });
        }
        let version = current.unwrap_or(0) + 1;
        conn.execute(
            "INSERT INTO records (record_id, task_id, document, version, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (record_id) DO UPDATE SET task_id = COALESCE(excluded.task_id, records.task_id), \
             document = excluded.document, version = excluded.version, updated_at_ms = excluded.updated_at_ms",
            params![record_id, task_id, document, version, now_ms],
        )?;
        Ok(version)
    }

    /// Where a sync starts.
    pub fn sync_snapshot(&self) -> ClientResult<SyncSnapshot> {
        let cursor = self.meta("cursor")?.and_then(|v| v.parse().ok());
        let mut statement = self.conn.prepare("SELECT record_id, version FROM pending")?;
        let pending = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
        let mut statement = self.conn.prepare("SELECT record_id, state FROM sync_states")?;
        let states = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
        Ok(SyncSnapshot { cursor, pending, states })
    }

    /// Writes one answered sync round in one transaction. A document edited here since it was
    /// loaded is merged by `merge` (stored bytes, synced bytes → merged bytes) instead of
    /// overwritten.
    pub fn write_exchange(
        &self,
        write: &ExchangeWrite,
        now_ms: i64,
        merge: impl Fn(&[u8], &[u8]) -> ClientResult<Vec<u8>>,
    ) -> ClientResult<ExchangeWritten> {
        let tx = self.write()?;
        let mut written = Vec::new();
        let mut pending_added = Vec::new();
        for SyncedDocument { record_id, loaded_version, task_id, document } in &write.documents {
            let stored = tx
                .query_row("SELECT version, document FROM records WHERE record_id = ?1", [record_id], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
                })
                .optional()?;
            match stored {
                Some((version, stored)) if Some(version) != *loaded_version => {
                    let merged = merge(&stored, document)?;
                    let version =
                        Self::write_record(&tx, record_id, task_id.as_deref(), &merged, Some(version), now_ms)?;
                    written.push(WrittenDocument { record_id: record_id.clone(), version, merged: Some(merged) });
                }
                _ => {
                    let version = Self::write_record(
                        &tx,
                        record_id,
                        task_id.as_deref(),
                        document,
                        stored.map(|(v, _)| v),
                        now_ms,
                    )?;
                    written.push(WrittenDocument { record_id: record_id.clone(), version, merged: None });
                }
            }
        }
        for record_id in &write.forget_states {
            tx.execute("DELETE FROM sync_states WHERE record_id = ?1", [record_id])?;
        }
        for (record_id, state) in &write.states {
            tx.execute(
                "INSERT INTO sync_states (record_id, state) VALUES (?1, ?2) \
                 ON CONFLICT (record_id) DO UPDATE SET state = excluded.state",
                params![record_id, state],
            )?;
        }
        for (record_id, version) in &write.pending_before {
            if !write.pending.contains(record_id) {
                tx.execute("DELETE FROM pending WHERE record_id = ?1 AND version = ?2", params![record_id, version])?;
            }
        }
        for record_id in &write.pending {
            let version: i64 = tx
                .query_row("SELECT version FROM records WHERE record_id = ?1", [record_id], |row| row.get(0))
                .optional()?
                .unwrap_or(0);
            let inserted = tx.execute(
                "INSERT INTO pending (record_id, version) VALUES (?1, ?2) ON CONFLICT (record_id) DO NOTHING",
                params![record_id, version],
            )?;
            if inserted == 1 {
                pending_added.push((record_id.clone(), version));
            }
        }
        if let Some(cursor) = write.cursor {
            Self::put_meta(&tx, "cursor", &cursor.to_string())?;
        }
        for refused in &write.refused {
            tx.execute(
                "INSERT INTO refused (record_id, change_hash, reason, change, refused_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (record_id, change_hash) DO NOTHING",
                params![
                    refused.record_id,
                    refused.change_hash,
                    refused.reason.to_string(),
                    refused.change,
                    refused.refused_at_ms
                ],
            )?;
        }
        tx.commit()?;
        Ok(ExchangeWritten { documents: written, pending_added })
    }

    /// Records with something not yet said to the server.
    pub fn pending(&self) -> ClientResult<Vec<String>> {
        let mut statement = self.conn.prepare("SELECT record_id FROM pending ORDER BY record_id")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Changes the server refused, oldest first, of one record or all.
    pub fn refused(&self, record_id: Option<&str>) -> ClientResult<Vec<RefusedChange>> {
        let mut statement = self.conn.prepare(
            "SELECT record_id, change_hash, reason, change, refused_at_ms FROM refused \
             WHERE ?1 IS NULL OR record_id = ?1 ORDER BY refused_at_ms, change_hash",
        )?;
        let rows = statement.query_map([record_id], |row| {
            let reason: String = row.get(2)?;
            Ok(RefusedChange {
                record_id: row.get(0)?,
                change_hash: row.get(1)?,
                reason: serde_json::from_str(&reason).unwrap_or(serde_json::Value::String(reason)),
                change: row.get(3)?,
                refused_at_ms: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the cached tasks with the server's current list.
    pub fn replace_tasks(&self, tasks: &[CachedTask]) -> ClientResult<()> {
        let tx = self.write()?;
        tx.execute("DELETE FROM tasks", [])?;
        for task in tasks {
            tx.execute(
                "INSERT INTO tasks (task_id, task, fetched_at_ms) VALUES (?1, ?2, ?3)",
                params![task.task_id, task.team.to_string(), task.fetched_at_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The validator and body held for `url`, if any.
    pub fn validator(&self, url: &str) -> ClientResult<Option<(String, Vec<u8>)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT etag, body FROM validators WHERE url = ?1")?
            .query_row([url], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?)
    }

    /// Holds `body` for `url` under its validator `etag`.
    pub fn put_validator(&self, url: &str, etag: &str, body: &[u8]) -> ClientResult<()> {
        self.conn.execute(
            "INSERT INTO validators (url, etag, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, body = excluded.body",
            params![url, etag, body],
        )?;
        Ok(())
    }

    /// Forgets the validators of every URL but `urls` (tasks the officer is no longer on).
    pub fn keep_validators(&self, urls: &[String]) -> ClientResult<()> {
        let urls = serde_json::to_string(urls).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
        self.conn.execute("DELETE FROM validators WHERE url NOT IN (SELECT value FROM json_each(?1))", [urls])?;
        Ok(())
    }

    pub fn tasks(&self) -> ClientResult<Vec<CachedTask>> {
        let mut statement = self.conn.prepare("SELECT task_id, task, fetched_at_ms FROM tasks ORDER BY task_id")?;
        let rows = statement.query_map([], |row| {
            let team: String = row.get(1)?;
            Ok((row.get::<_, String>(0)?, team, row.get::<_, i64>(2)?))
        })?;
        let mut tasks = Vec::new();
        for row in rows {
            let (task_id, team, fetched_at_ms) = row?;
            let team = serde_json::from_str(&team).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
            tasks.push(CachedTask { task_id, team, fetched_at_ms });
        }
        Ok(tasks)
    }

    /// Appends the next entry of this device's enforcement-log chain in one transaction: `make`
    /// gets the next seq and the previous entry's hash and returns the signed entry.
    pub fn append_log(
        &self,
        payload: &[u8],
        make: impl FnOnce(u64, [u8; 32]) -> SignedEntry,
    ) -> ClientResult<SignedEntry> {
        let tx = self.write()?;
        let last: Option<(i64, Vec<u8>)> = tx
            .query_row("SELECT seq, hash FROM log_entries ORDER BY seq DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (seq, previous) = match last {
            Some((seq, hash)) => (
                seq as u64 + 1,
                hash.try_into().map_err(|_| ClientError::CorruptStore { detail: "log entry hash".into() })?,
            ),
            None => (1, GENESIS_PREVIOUS),
        };
        let signed = make(seq, previous);
        tx.execute(
            "INSERT INTO log_entries (seq, hash, record_id, entry, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                signed.entry.seq as i64,
                signed.entry.hash().as_slice(),
                signed.entry.record_id,
                serde_json::to_string(&signed).expect("an entry serializes"),
                payload
            ],
        )?;
        tx.commit()?;
        Ok(signed)
    }

    /// The device's chain, in order, of one record or all, with each entry's payload.
    pub fn log(&self, record_id: Option<&str>) -> ClientResult<Vec<(SignedEntry, Vec<u8>)>> {
        let mut statement = self
            .conn
            .prepare("SELECT entry, payload FROM log_entries WHERE ?1 IS NULL OR record_id = ?1 ORDER BY seq")?;
        entries_with_payloads(statement.query([record_id])?)
    }

    /// Entries the server has not taken yet, in chain order, at most `limit`.
    pub fn log_to_upload(&self, limit: usize) -> ClientResult<Vec<(SignedEntry, Vec<u8>)>> {
        let mut statement =
            self.conn.prepare("SELECT entry, payload FROM log_entries WHERE uploaded = 0 ORDER BY seq LIMIT ?1")?;
        entries_with_payloads(statement.query([limit as i64])?)
    }

    /// How many entries the server has not taken yet.
    pub fn log_not_uploaded(&self) -> ClientResult<usize> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM log_entries WHERE uploaded = 0", [], |row| row.get::<_, i64>(0))?
            as usize)
    }

    /// Notes that the server holds these entries of the chain.
    pub fn mark_log_uploaded(&self, seqs: &[u64]) -> ClientResult<()> {
        let tx = self.write()?;
        for seq in seqs {
            tx.execute("UPDATE log_entries SET uploaded = 1 WHERE seq = ?1", [*seq as i64])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The server's transparency-log verifier key, as first fetched (trust on first use).
    pub fn log_key(&self) -> ClientResult<Option<String>> {
        self.meta("log_key")
    }

    pub fn set_log_key(&self, key: &str) -> ClientResult<()> {
        Self::put_meta(&self.conn, "log_key", key)
    }

    /// The latest transparency-log checkpoint this device has seen and verified: its next
    /// entries name it.
    pub fn seen_checkpoint(&self) -> ClientResult<Option<SeenCheckpoint>> {
        match self.meta("seen_checkpoint")? {
            Some(json) => {
                Ok(Some(serde_json::from_str(&json).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?))
            }
            None => Ok(None),
        }
    }

    /// Keeps `checkpoint` (and its signed note) if it is larger than the one seen before: a
    /// device never goes back to an older checkpoint.
    pub fn see_checkpoint(&self, checkpoint: &SeenCheckpoint, note: &str) -> ClientResult<bool> {
        let tx = self.write()?;
        let seen: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = 'seen_checkpoint'", [], |row| row.get(0)).optional()?;
        let seen: Option<SeenCheckpoint> = seen
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
        if seen.is_some_and(|seen| seen.size >= checkpoint.size) {
            return Ok(false);
        }
        Self::put_meta(&tx, "seen_checkpoint", &serde_json::to_string(checkpoint).expect("a checkpoint serializes"))?;
        Self::put_meta(&tx, "seen_checkpoint_note", note)?;
        tx.commit()?;
        Ok(true)
    }

    /// Stores a photo (once per content).
    pub fn put_photo(&self, photo: &Photo) -> ClientResult<()> {
        self.conn.execute(
            "INSERT INTO photos (sha256, record_id, media_type, bytes, width, height, added_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (sha256) DO NOTHING",
            params![
                photo.sha256,
                photo.record_id,
                photo.media_type,
                photo.bytes,
                photo.width,
                photo.height,
                photo.added_at_ms
            ],
        )?;
        Ok(())
    }

    pub fn photo_count(&self) -> ClientResult<usize> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM photos", [], |row| row.get::<_, i64>(0))? as usize)
    }

    /// Photos the server does not hold yet: (sha256, record, size), oldest first.
    pub fn photos_to_upload(&self) -> ClientResult<Vec<(String, String, u64)>> {
        let mut statement = self.conn.prepare(
            "SELECT sha256, record_id, length(bytes) FROM photos WHERE uploaded_at_ms IS NULL ORDER BY added_at_ms, sha256",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Notes that the server holds a photo.
    pub fn mark_photo_uploaded(&self, sha256: &str, at_ms: i64) -> ClientResult<()> {
        self.conn.execute("UPDATE photos SET uploaded_at_ms = ?2 WHERE sha256 = ?1", params![sha256, at_ms])?;
        Ok(())
    }

    pub fn photo(&self, sha256: &str) -> ClientResult<Option<Photo>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha256, record_id, media_type, bytes, width, height, added_at_ms FROM photos WHERE sha256 = ?1",
                [sha256],
                |row| {
                    Ok(Photo {
                        sha256: row.get(0)?,
                        record_id: row.get(1)?,
                        media_type: row.get(2)?,
                        bytes: row.get(3)?,
                        width: row.get(4)?,
                        height: row.get(5)?,
                        added_at_ms: row.get(6)?,
                    })
                },
            )
            .optional()?)
    }
}

/// Signed entries and their payloads from rows of (entry JSON, payload).
fn entries_with_payloads(mut rows: rusqlite::Rows<'_>) -> ClientResult<Vec<(SignedEntry, Vec<u8>)>> {
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        let entry: String = row.get(0)?;
        let entry = serde_json::from_str(&entry).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
        entries.push((entry, row.get(1)?));
    }
    Ok(entries)
}
