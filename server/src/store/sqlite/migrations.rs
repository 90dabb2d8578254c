//! Versioned schema migrations of the SQLite store.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each
//! migration runs once, in its own transaction, in order; a database from a
//! newer server (a higher version than this binary knows) is refused rather
//! than guessed at.

use rusqlite::Connection;

/// The migrations, in order; the database's version is how many have run.
pub const MIGRATIONS: &[&str] = &[
    // 1: identity, registries, tasks, records, sync, quarantine.
    r#"
    CREATE TABLE server_keys (
        kid TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        secret BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        retired_at_ms INTEGER
    );
    CREATE TABLE accounts (
        officer_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        unit TEXT NOT NULL DEFAULT '',
        password_hash TEXT,
        must_change_password INTEGER NOT NULL DEFAULT 0,
        legal_qualification INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE roles (
        officer_id TEXT NOT NULL REFERENCES accounts(officer_id),
        role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'reviewer', 'admin')),
        PRIMARY KEY (officer_id, role)
    );
    CREATE TABLE certificates (
        number TEXT PRIMARY KEY,
        officer_id TEXT NOT NULL REFERENCES accounts(officer_id),
        issuing_authority TEXT NOT NULL,
        valid_from_ms INTEGER NOT NULL,
        valid_until_ms INTEGER NOT NULL
    );
    CREATE INDEX certificates_officer ON certificates(officer_id);
    CREATE TABLE certificate_status (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL REFERENCES certificates(number),
        at_ms INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked', 'surrendered')),
        reason TEXT,
        recorded_by TEXT,
        recorded_at_ms INTEGER NOT NULL
    );
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        officer_id TEXT NOT NULL REFERENCES accounts(officer_id),
        public_key BLOB NOT NULL UNIQUE,
        actor_id BLOB NOT NULL UNIQUE,
        enrolled_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    );
    CREATE TABLE challenges (
        nonce BLOB PRIMARY KEY,
        officer_id TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        used_at_ms INTEGER
    );
    CREATE TABLE refresh_tokens (
        token_hash BLOB PRIMARY KEY,
        family TEXT NOT NULL,
        officer_id TEXT NOT NULL,
        device_id TEXT,
        issued_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        used_at_ms INTEGER,
        revoked_at_ms INTEGER
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
    CREATE TABLE entities (
        entity_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        credit_code TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL,
        tier TEXT NOT NULL,
        latitude REAL NOT NULL,
        longitude REAL NOT NULL,
        imported_at_ms INTEGER NOT NULL
    );
    CREATE TABLE recusals (
        officer_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        ground TEXT NOT NULL,
        PRIMARY KEY (officer_id, entity_id)
    );
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        entity_id TEXT NOT NULL REFERENCES entities(entity_id),
        matter TEXT NOT NULL,
        window_start_ms INTEGER NOT NULL,
        window_end_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE task_team (
        task_id TEXT NOT NULL REFERENCES tasks(task_id),
        officer_id TEXT NOT NULL REFERENCES accounts(officer_id),
        PRIMARY KEY (task_id, officer_id)
    );
    CREATE INDEX task_team_officer ON task_team(officer_id);
    CREATE TABLE records (
        record_id TEXT PRIMARY KEY,
        task_id TEXT,
        document BLOB NOT NULL,
        status TEXT NOT NULL,
        seq INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX records_seq ON records(seq);
    CREATE INDEX records_task ON records(task_id);
    CREATE TABLE sync_states (
        device_id TEXT NOT NULL,
        record_id TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (device_id, record_id)
    );
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL,
        change_hash TEXT NOT NULL UNIQUE,
        device_id TEXT NOT NULL,
        officer_id TEXT,
        reason TEXT NOT NULL,
        change BLOB NOT NULL,
        received_at_ms INTEGER NOT NULL
    );
    CREATE INDEX quarantine_record ON quarantine(record_id);
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('record_seq', 0);
    "#,
    // 2: blobs (photos and other media, content-addressed) and their resumable uploads.
    //
    // `uploads.received` is how many bytes of the upload's file are on disk and synced: the file
    // may hold more after a crash, and is cut back to it before anything is appended.
    // `blob_records` links a blob to records known to reference it, so that a team member's read
    // is one query; a link is only ever added after the record was read and found to reference it.
    r#"
    CREATE TABLE uploads (
        upload_id TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL CHECK (size >= 0),
        record_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        officer_id TEXT NOT NULL,
        received INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= size),
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        finished_at_ms INTEGER
    );
    CREATE INDEX uploads_device ON uploads(device_id, finished_at_ms);
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        media_type TEXT NOT NULL,
        uploaded_by TEXT NOT NULL,
        uploaded_at_ms INTEGER NOT NULL
    );
    CREATE TABLE blob_records (
        sha256 TEXT NOT NULL,
        record_id TEXT NOT NULL,
        PRIMARY KEY (sha256, record_id)
    );
    "#,
    // 3: what the server read from each stored blob (`service::media`).
    //
    // The `claimed_` columns are what the file's EXIF says about itself (time, offset, position,
    // device): the device wrote them and nothing checks them. A blob has a thumbnail (a small
    // JPEG) or the code and message of why it has none, never both. A blob without a row here
    // (stored before this migration, or a crash between the blob's row and this one) is examined
    // when its metadata is first asked for.
    r#"
    CREATE TABLE blob_metadata (
        sha256 TEXT PRIMARY KEY REFERENCES blobs(sha256),
        claimed_taken_at TEXT,
        claimed_offset TEXT,
        claimed_latitude REAL CHECK (claimed_latitude BETWEEN -90 AND 90),
        claimed_longitude REAL CHECK (claimed_longitude BETWEEN -180 AND 180),
        claimed_make TEXT,
        claimed_model TEXT,
        exif_error TEXT,
        width INTEGER CHECK (width >= 0),
        height INTEGER CHECK (height >= 0),
        thumbnail BLOB,
        error_code TEXT,
        error TEXT,
        examined_at_ms INTEGER NOT NULL,
        CHECK ((thumbnail IS NULL) = (error_code IS NOT NULL))
    );
    "#,
    // 4: the transparency log and the devices' enforcement-log chains.
    //
    // `log_leaves` holds each leaf's data (`sync_core::transparency::Leaf`) by index, and
    // `log_subtrees` the root of every complete subtree: `(level, idx)` covers leaves
    // `idx·2^level .. (idx+1)·2^level`, level 0 being the leaf hashes. A leaf and the subtrees it
    // completes are written in the transaction that commits the item it attests; `subject` names
    // what a leaf is about (`device:<id>`, `record:<id>`, `blob:<sha256>`) for evidence packages. `log_identity`
    // is the one row of the log's origin and Ed25519 signing key, made once. `log_chain` holds the
    // entries that extend each device's chain, `log_held` those waiting for an earlier entry, and
    // `log_forks` every entry that conflicts with a device's chain; none is ever deleted but a
    // held entry, when it moves to the chain or the forks. Items stored before this migration
    // have no leaf.
    r#"
    CREATE TABLE log_identity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        origin TEXT NOT NULL,
        secret BLOB NOT NULL CHECK (length(secret) = 32),
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE log_leaves (
        idx INTEGER PRIMARY KEY CHECK (idx >= 0),
        data BLOB NOT NULL,
        received_at_ms INTEGER NOT NULL,
        subject TEXT
    );
    CREATE INDEX log_leaves_subject ON log_leaves(subject) WHERE subject IS NOT NULL;
    CREATE TABLE log_subtrees (
        level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    CREATE TABLE log_checkpoints (
        size INTEGER PRIMARY KEY CHECK (size >= 0),
        note TEXT NOT NULL,
        signed_at_ms INTEGER NOT NULL
    );
    CREATE TABLE log_chain (
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 1),
        entry_hash BLOB NOT NULL CHECK (length(entry_hash) = 32),
        entry TEXT NOT NULL,
        payload BLOB NOT NULL,
        record_id TEXT,
        received_at_ms INTEGER NOT NULL,
        leaf_index INTEGER NOT NULL UNIQUE REFERENCES log_leaves(idx),
        PRIMARY KEY (device_id, seq)
    );
    CREATE INDEX log_chain_record ON log_chain(record_id);
    CREATE TABLE log_held (
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 1),
        entry_hash BLOB NOT NULL CHECK (length(entry_hash) = 32),
        entry TEXT NOT NULL,
        payload BLOB NOT NULL,
        record_id TEXT,
        received_at_ms INTEGER NOT NULL,
        PRIMARY KEY (device_id, seq, entry_hash)
    );
    CREATE TABLE log_forks (
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 1),
        entry_hash BLOB NOT NULL CHECK (length(entry_hash) = 32),
        entry TEXT NOT NULL,
        payload BLOB NOT NULL,
        record_id TEXT,
        received_at_ms INTEGER NOT NULL,
        PRIMARY KEY (device_id, seq, entry_hash)
    );
    CREATE INDEX log_forks_record ON log_forks(record_id);
    "#,
    // 5: random inspection (双随机、一公开).
    //
    // `entities.division_code` is the entity's administrative division (empty for entities
    // imported before). `entity_history` keeps every change an import made to an entity: the row
    // before (NULL when the import added it) and after, as JSON, when and by whom. `matter_list`
    // is the one imported random-check matter list (its note and tier ratios as JSON) and
    // `matters` its matters in order. `campaigns` keeps each campaign's specification, the
    // snapshot it draws from (eligible entities, officers and recusals, as JSON lists), its
    // secret seed and what was published at creation; `draw` is NULL until the draw, made once.
    // `campaign_tasks` links each drawn task to its campaign, with the result's publication.
    // `calendar_years` holds the bureau's calendar one year at a time.
    r#"
    ALTER TABLE entities ADD COLUMN division_code TEXT NOT NULL DEFAULT '';
    CREATE TABLE entity_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        entity_id TEXT NOT NULL,
        change TEXT NOT NULL CHECK (change IN ('added', 'changed')),
        before TEXT,
        after TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        by TEXT NOT NULL,
        CHECK ((before IS NULL) = (change = 'added'))
    );
    CREATE INDEX entity_history_entity ON entity_history(entity_id, seq);
    CREATE TABLE matter_list (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        list TEXT NOT NULL,
        imported_at_ms INTEGER NOT NULL,
        imported_by TEXT NOT NULL
    );
    CREATE TABLE matters (
        code TEXT PRIMARY KEY,
        position INTEGER NOT NULL UNIQUE,
        matter TEXT NOT NULL
    );
    CREATE TABLE campaigns (
        campaign_id TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        campaign TEXT NOT NULL,
        entities TEXT NOT NULL,
        officers TEXT NOT NULL,
        recusals TEXT NOT NULL,
        seed BLOB NOT NULL CHECK (length(seed) = 32),
        published TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        public_value TEXT,
        draw TEXT,
        drawn_by TEXT,
        drawn_at_ms INTEGER,
        CHECK ((draw IS NULL) = (drawn_at_ms IS NULL))
    );
    CREATE TABLE campaign_tasks (
        task_id TEXT PRIMARY KEY REFERENCES tasks(task_id),
        campaign_id TEXT NOT NULL REFERENCES campaigns(campaign_id),
        position INTEGER NOT NULL CHECK (position >= 0),
        record_id TEXT,
        published_at_ms INTEGER,
        published_by TEXT,
        UNIQUE (campaign_id, position),
        CHECK ((record_id IS NULL) = (published_at_ms IS NULL))
    );
    CREATE TABLE calendar_years (
        year INTEGER PRIMARY KEY CHECK (year BETWEEN 1 AND 9999),
        holidays TEXT NOT NULL,
        working_weekends TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        updated_by TEXT NOT NULL
    );
    "#,
    // 6: the quarantine keeps one row per change and sending device (a refusal that depended on
    // the sender must not stop the rightful device), says whether the verdict is final, keeps the
    // change's dependencies, and its bytes only up to a bound; a held change gets its review.
    r#"
    CREATE TABLE quarantine_by_sender (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id TEXT NOT NULL,
        change_hash TEXT NOT NULL,
        device_id TEXT NOT NULL,
        officer_id TEXT,
        reason TEXT NOT NULL,
        final INTEGER NOT NULL,
        deps TEXT NOT NULL,
        change BLOB NOT NULL,
        change_bytes INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        decision TEXT CHECK (decision IN ('accepted', 'refused')),
        decided_by TEXT,
        decided_at_ms INTEGER,
        decision_note TEXT,
        UNIQUE (change_hash, device_id)
    );
    INSERT INTO quarantine_by_sender
        (id, record_id, change_hash, device_id, officer_id, reason, final, deps, change, change_bytes, received_at_ms)
    SELECT id, record_id, change_hash, device_id, officer_id, reason,
        COALESCE(json_extract(reason, '$.code')
            NOT IN ('actor_not_bound_to_device', 'depends_on_refused_change', 'missing_dependency'), 1),
        '', change, length(change), received_at_ms
    FROM quarantine;
    DROP TABLE quarantine;
    ALTER TABLE quarantine_by_sender RENAME TO quarantine;
    CREATE INDEX quarantine_record ON quarantine(record_id);
    -- The epoch of the change sequence, in every cursor handed to devices: a backup gets another,
    -- so that a database restored from it knows every device's cursor and sync state stale.
    INSERT INTO counters (name, value) VALUES ('sync_epoch', 1);
    "#,
    // 7: ended sessions (issue 14).
    //
    // An access token names its session, the family of its refresh tokens. A session ended by a
    // logout, a password change, a reused refresh token or its device's revocation is a row here,
    // written in the transaction that revokes its refresh tokens; each server keeps the recent
    // rows in memory and refuses the session's access tokens at once. Rows older than an access
    // token's lifetime are of no more use (every token they refuse has expired) and are purged.
    r#"
    CREATE TABLE revoked_sessions (
        session_id TEXT PRIMARY KEY,
        officer_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        revoked_at_ms INTEGER NOT NULL
    );
    CREATE INDEX revoked_sessions_time ON revoked_sessions(revoked_at_ms);
    "#,
    // 8: each record's states in the transparency log: the items that belonged to it when each
    // record-state leaf was appended (`RecordItems` as JSON) and the heads of its latest
    // signature or lock then (32 bytes each), so that an evidence package carries the state its
    // checkpoint holds and the next state builds on the last.
    r#"
    CREATE TABLE log_record_states (
        leaf_index INTEGER PRIMARY KEY,
        record_id TEXT NOT NULL,
        items TEXT NOT NULL,
        heads BLOB NOT NULL
    );
    CREATE INDEX log_record_states_record ON log_record_states(record_id, leaf_index);
    "#,
    // 9: what the lists show of each record, read from its document once per change instead of
    // at every page: `seq` is the record's position in the change sequence when its summary was
    // read, so a summary whose `seq` is not the record's is stale and read again
    // (`service::records::summarize`). The sync exchange never writes here.
    r#"
    CREATE TABLE record_summaries (
        record_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        started_at_ms INTEGER,
        ended_at_ms INTEGER,
        entity_id TEXT,
        entity_name TEXT,
        conclusion TEXT,
        observations TEXT NOT NULL,
        conflicts INTEGER NOT NULL CHECK (conflicts >= 0)
    );
    CREATE INDEX record_summaries_started ON record_summaries(started_at_ms);
    "#,
    // 10: the log's signing key may live outside the database (a key file the operator gives
    // the server): `log_identity` keeps the public key, and the secret only when the database
    // is to hold it. A row from before keeps its secret; its public key is written when the
    // secret leaves (`fieldsync-server log-key export`).
    r#"
    ALTER TABLE log_identity RENAME TO log_identity_before_10;
    CREATE TABLE log_identity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        origin TEXT NOT NULL,
        public_key BLOB CHECK (public_key IS NULL OR length(public_key) = 32),
        secret BLOB CHECK (secret IS NULL OR length(secret) = 32),
        created_at_ms INTEGER NOT NULL,
        CHECK (public_key IS NOT NULL OR secret IS NOT NULL)
    );
    INSERT INTO log_identity (id, origin, public_key, secret, created_at_ms)
        SELECT id, origin, NULL, secret, created_at_ms FROM log_identity_before_10;
    DROP TABLE log_identity_before_10;
    "#,
    // 11: certificates over time (issue 17, P3). Each validity period is a row of its own, as issued
    // or renewed, so that a renewal after a lapse leaves the lapse invalid instead of moving one
    // `valid_until_ms`; `certificates` keeps the first period's start and the latest period's end.
    // Each periodic review (年审) passed is a row. A certificate already stored becomes one issued
    // period with its bounds as they are (a renewal that overwrote them cannot be undone).
    // Self-contained: it reads and writes only the tables it names, so it may be renumbered.
    r#"
    CREATE TABLE certificate_periods (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL REFERENCES certificates(number),
        kind TEXT NOT NULL CHECK (kind IN ('issued', 'renewed')),
        valid_from_ms INTEGER NOT NULL,
        valid_until_ms INTEGER NOT NULL CHECK (valid_until_ms > valid_from_ms),
        recorded_by TEXT,
        recorded_at_ms INTEGER NOT NULL
    );
    CREATE INDEX certificate_periods_number ON certificate_periods(number, valid_from_ms);
    INSERT INTO certificate_periods (number, kind, valid_from_ms, valid_until_ms, recorded_by, recorded_at_ms)
        SELECT number, 'issued', valid_from_ms, valid_until_ms, NULL, 0 FROM certificates
        WHERE valid_until_ms > valid_from_ms ORDER BY number;
    CREATE TABLE certificate_reviews (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL REFERENCES certificates(number),
        reviewed_at_ms INTEGER NOT NULL,
        note TEXT,
        recorded_by TEXT NOT NULL,
        recorded_at_ms INTEGER NOT NULL
    );
    CREATE INDEX certificate_reviews_number ON certificate_reviews(number, reviewed_at_ms);
    "#,
];

/// Why the database could not be brought to this server's version.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the database is at version {found}, newer than this server's {known}")]
    TooNew { found: usize, known: usize },
    #[error("migration {version} failed: {source}")]
    Failed { version: usize, source: rusqlite::Error },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The database's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0)).map(|v| v as usize)
}

/// Applies the migrations the database has not had, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<usize, MigrationError> {
    let found = version(conn)?;
    if found > MIGRATIONS.len() {
        return Err(MigrationError::TooNew { found, known: MIGRATIONS.len() });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        let version = index + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|source| MigrationError::Failed { version, source })?;
        tx.pragma_update(None, "user_version", version as i64)?;
        tx.commit()?;
    }
    Ok(MIGRATIONS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut statement = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
        statement.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn an_empty_database_reaches_the_latest_version_and_a_second_run_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(version(&conn).unwrap(), MIGRATIONS.len());
        let made = tables(&conn);
        for table in [
            "accounts",
            "certificates",
            "devices",
            "records",
            "quarantine",
            "sync_states",
            "uploads",
            "blobs",
            "blob_records",
            "blob_metadata",
            "log_identity",
            "log_leaves",
            "log_subtrees",
            "log_checkpoints",
            "log_chain",
            "log_held",
            "log_forks",
            "entity_history",
            "matter_list",
            "matters",
            "campaigns",
            "campaign_tasks",
            "calendar_years",
            "revoked_sessions",
        ] {
            assert!(made.iter().any(|t| t == table), "{table} in {made:?}");
        }
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(tables(&conn), made);
    }

    #[test]
    fn each_version_migrates_to_the_next_keeping_its_rows() {
        for from in 0..MIGRATIONS.len() {
            let mut conn = Connection::open_in_memory().unwrap();
            for (index, sql) in MIGRATIONS.iter().enumerate().take(from) {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", (index + 1) as i64).unwrap();
            }
            if from >= 1 {
                conn.execute("INSERT INTO accounts (officer_id, name, created_at_ms) VALUES ('O1', '杨超', 0)", [])
                    .unwrap();
            }
            if from >= 2 {
                conn.execute(
                    "INSERT INTO blobs (sha256, size, media_type, uploaded_by, uploaded_at_ms)
                     VALUES ('ab', 1, 'image/png', 'D1', 0)",
                    [],
                )
                .unwrap();
            }
            if from >= 3 {
                conn.execute(
                    "INSERT INTO blob_metadata (sha256, error_code, error, examined_at_ms)
                     VALUES ('ab', 'not_an_image', 'video/mp4', 0)",
                    [],
                )
                .unwrap();
            }
            if from >= 4 {
                conn.execute("INSERT INTO log_leaves (idx, data, received_at_ms) VALUES (0, x'00', 0)", []).unwrap();
            }
            migrate(&mut conn).unwrap();
            assert_eq!(version(&conn).unwrap(), MIGRATIONS.len(), "from version {from}");
            if from >= 1 {
                let name: String =
                    conn.query_row("SELECT name FROM accounts WHERE officer_id = 'O1'", [], |r| r.get(0)).unwrap();
                assert_eq!(name, "杨超", "rows survive migrating from version {from}");
            }
            if from >= 2 {
                let blobs: i64 = conn.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0)).unwrap();
                assert_eq!(blobs, 1, "blobs survive migrating from version {from}");
            }
            if from >= 3 {
                let examined: i64 = conn.query_row("SELECT COUNT(*) FROM blob_metadata", [], |r| r.get(0)).unwrap();
                assert_eq!(examined, 1, "blob metadata survives migrating from version {from}");
            }
            // Every version reaches the transparency log's tables, empty unless they were there.
            let leaves: i64 = conn.query_row("SELECT COUNT(*) FROM log_leaves", [], |r| r.get(0)).unwrap();
            assert_eq!(leaves, i64::from(from >= 4), "the log's leaves after migrating from version {from}");
            let chain: i64 = conn.query_row("SELECT COUNT(*) FROM log_chain", [], |r| r.get(0)).unwrap();
            assert_eq!(chain, 0, "from version {from}");
        }
    }

    #[test]
    fn a_version_3_database_reaches_version_4_with_the_logs_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (index, sql) in MIGRATIONS.iter().enumerate().take(3) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (index + 1) as i64).unwrap();
        }
        let before = tables(&conn);
        assert!(!before.iter().any(|t| t.starts_with("log_")), "{before:?}");
        migrate(&mut conn).unwrap();
        assert!(version(&conn).unwrap() >= 4);
        let after = tables(&conn);
        for table in
            ["log_identity", "log_leaves", "log_subtrees", "log_checkpoints", "log_chain", "log_held", "log_forks"]
        {
            assert!(after.iter().any(|t| t == table), "{table} in {after:?}");
        }
        // A second signing key for the log cannot be added beside the first.
        conn.execute(
            "INSERT INTO log_identity (id, origin, secret, created_at_ms) VALUES (1, 'o', zeroblob(32), 0)",
            [],
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO log_identity (id, origin, secret, created_at_ms) VALUES (2, 'o', zeroblob(32), 0)",
                []
            )
            .is_err()
        );
    }

    #[test]
    fn a_version_8_database_keeps_each_certificate_as_one_issued_period() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (index, sql) in MIGRATIONS.iter().enumerate().take(8) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (index + 1) as i64).unwrap();
        }
        conn.execute("INSERT INTO accounts (officer_id, name, created_at_ms) VALUES ('O1', '杨超', 0)", []).unwrap();
        conn.execute(
            "INSERT INTO certificates (number, officer_id, issuing_authority, valid_from_ms, valid_until_ms)
             VALUES ('C1', 'O1', '局', 100, 900)",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let periods: Vec<(String, String, i64, i64)> = conn
            .prepare("SELECT number, kind, valid_from_ms, valid_until_ms FROM certificate_periods")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(periods, [("C1".to_string(), "issued".to_string(), 100, 900)]);
        let reviews: i64 = conn.query_row("SELECT COUNT(*) FROM certificate_reviews", [], |r| r.get(0)).unwrap();
        assert_eq!(reviews, 0);
        // A period that ends before it starts is refused by the table itself.
        assert!(
            conn.execute(
                "INSERT INTO certificate_periods (number, kind, valid_from_ms, valid_until_ms, recorded_at_ms)
                 VALUES ('C1', 'renewed', 900, 900, 0)",
                [],
            )
            .is_err()
        );
    }

    #[test]
    fn a_version_4_database_reaches_version_5_with_the_campaigns_tables_and_keeps_its_entities() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (index, sql) in MIGRATIONS.iter().enumerate().take(4) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (index + 1) as i64).unwrap();
        }
        conn.execute(
            "INSERT INTO entities (entity_id, name, credit_code, address, tier, latitude, longitude, imported_at_ms)
             VALUES ('E00001', '柳州市泰信汽车零部件有限责任公司', '91450223416G3QBX69', '鹿寨县', 'key', 24.3, 109.6, 0)",
            [],
        )
        .unwrap();
        let before = tables(&conn);
        assert!(!before.iter().any(|t| t == "campaigns"), "{before:?}");
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), MIGRATIONS.len());
        let after = tables(&conn);
        for table in ["entity_history", "matter_list", "matters", "campaigns", "campaign_tasks", "calendar_years"] {
            assert!(after.iter().any(|t| t == table), "{table} in {after:?}");
        }
        let (tier, division): (String, String) = conn
            .query_row("SELECT tier, division_code FROM entities WHERE entity_id = 'E00001'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((tier.as_str(), division.as_str()), ("key", ""), "an entity imported before has no division yet");
        // An added entity has no row before; a changed one has.
        let history = |change: &str, before: Option<&str>| {
            conn.execute(
                "INSERT INTO entity_history (entity_id, change, before, after, at_ms, by) VALUES ('E1', ?1, ?2, '{}', 0, 'a')",
                rusqlite::params![change, before],
            )
        };
        assert!(history("added", Some("{}")).is_err());
        assert!(history("changed", None).is_err());
        history("added", None).unwrap();
        history("changed", Some("{}")).unwrap();
    }

    #[test]
    fn a_version_5_quarantine_keeps_its_refusals_final_unless_they_depended_on_the_sender() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (index, sql) in MIGRATIONS.iter().enumerate().take(5) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (index + 1) as i64).unwrap();
        }
        for (hash, reason) in [
            ("c1", r#"{"code":"actor_not_bound_to_device"}"#),
            ("c2", r#"{"code":"timestamp_in_future"}"#),
            ("c3", "null"),
        ] {
            conn.execute(
                "INSERT INTO quarantine (record_id, change_hash, device_id, officer_id, reason, change, received_at_ms)
                 VALUES ('R', ?1, 'D1', NULL, ?2, x'0102', 7)",
                rusqlite::params![hash, reason],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let rows: Vec<(String, bool, i64)> = conn
            .prepare("SELECT change_hash, final, change_bytes FROM quarantine ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        // A reason that names no code (stored as `null` by an older server) is final.
        assert_eq!(rows, [("c1".to_string(), false, 2), ("c2".to_string(), true, 2), ("c3".to_string(), true, 2)]);
        // The same change from another device is a row of its own; from the same device, not.
        let insert = |device: &str| {
            conn.execute(
                "INSERT INTO quarantine (record_id, change_hash, device_id, reason, final, deps, change, change_bytes, received_at_ms)
                 VALUES ('R', 'c1', ?1, '{}', 0, '', x'01', 1, 8)",
                [device],
            )
        };
        insert("D2").unwrap();
        assert!(insert("D1").is_err());
    }

    #[test]
    fn a_blob_has_a_thumbnail_or_the_reason_it_has_none_never_both() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO blobs (sha256, size, media_type, uploaded_by, uploaded_at_ms) VALUES ('ab', 1, 'image/png', 'D1', 0)",
            [],
        )
        .unwrap();
        let insert = |sha256: &str, thumbnail: Option<&[u8]>, error_code: Option<&str>| {
            conn.execute(
                "INSERT INTO blob_metadata (sha256, thumbnail, error_code, examined_at_ms) VALUES (?1, ?2, ?3, 0)",
                rusqlite::params![sha256, thumbnail, error_code],
            )
        };
        assert!(insert("ab", Some(b"jpeg"), Some("corrupt_image")).is_err(), "both");
        assert!(insert("ab", None, None).is_err(), "neither");
        assert!(insert("cd", Some(b"jpeg"), None).is_err(), "no such blob");
        insert("ab", None, Some("corrupt_image")).unwrap();
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", (MIGRATIONS.len() + 1) as i64).unwrap();
        assert!(matches!(migrate(&mut conn), Err(MigrationError::TooNew { .. })));
    }
}
