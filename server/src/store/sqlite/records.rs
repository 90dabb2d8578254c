//! The SQL of records, sync states and the quarantine.

use rusqlite::{Connection, OptionalExtension, params};

use super::*;

pub(super) const RECORD_COLUMNS: &str = "record_id, task_id, document, status, seq, updated_at_ms";

pub(super) fn record_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        record_id: row.get(0)?,
        task_id: row.get(1)?,
        document: row.get(2)?,
        status: row.get(3)?,
        seq: row.get(4)?,
        updated_at_ms: row.get(5)?,
    })
}

/// The columns [`summary_from`] reads, in its order (`r` the record, `s` its summary).
const SUMMARY_COLUMNS: &str = "r.task_id, r.status, r.updated_at_ms, r.record_id, s.seq, s.started_at_ms, \
     s.ended_at_ms, s.entity_id, s.entity_name, s.conclusion, s.observations, s.conflicts";

fn summary_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok(SummaryRow {
        task_id: row.get(0)?,
        status: row.get(1)?,
        updated_at_ms: row.get(2)?,
        summary: RecordSummary {
            record_id: row.get(3)?,
            seq: row.get(4)?,
            started_at_ms: row.get(5)?,
            ended_at_ms: row.get(6)?,
            entity_id: row.get(7)?,
            entity_name: row.get(8)?,
            conclusion: row.get(9)?,
            observations: row.get(10)?,
            conflicts: row.get(11)?,
        },
    })
}

/// The columns [`quarantined_from`] reads, in its order.
pub(super) const QUARANTINE_COLUMNS: &str = "record_id, change_hash, device_id, officer_id, reason, final, deps, change, \
     change_bytes, received_at_ms, decision, decided_by, decided_at_ms, decision_note";

pub(super) fn quarantined_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantinedChange> {
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
pub(super) fn changed_since(
    conn: &Connection,
    officer_id: &str,
    since: u64,
    limit: usize,
) -> StoreResult<Vec<(String, u64)>> {
    let mut statement = conn.prepare_cached(
        "SELECT r.record_id, r.seq FROM records r JOIN task_team t ON t.task_id = r.task_id
         WHERE t.officer_id = ?1 AND r.seq > ?2 ORDER BY r.seq LIMIT ?3",
    )?;
    let rows = statement.query_map(params![officer_id, since as i64, limit as i64], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn record_seq_head(conn: &Connection) -> StoreResult<u64> {
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
    fn record_seq(&self, record_id: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .prepare_cached("SELECT seq FROM records WHERE record_id = ?1")?
            .query_row([record_id], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|seq| seq as u64))
    }
    fn quarantine_mark(&self) -> StoreResult<i64> {
        Ok(self.query_row("SELECT COALESCE(MAX(id), 0) FROM quarantine", [], |r| r.get::<_, i64>(0))?)
    }
    fn refused_since(&self, record_id: &str, mark: i64) -> StoreResult<bool> {
        Ok(self
            .prepare_cached("SELECT COUNT(*) > 0 FROM quarantine WHERE record_id = ?1 AND id > ?2")?
            .query_row(params![record_id, mark], |r| r.get(0))?)
    }
    fn append_leaf(&self, leaf: &Leaf) -> StoreResult<()> {
        append_leaf(self, leaf)?;
        Ok(())
    }
}

impl Records for SqliteStore {
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
    fn unsummarized(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<StoredRecord>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT r.record_id, r.task_id, r.document, r.status, r.seq, r.updated_at_ms
                 FROM records r LEFT JOIN record_summaries s ON s.record_id = r.record_id
                 WHERE (s.seq IS NULL OR s.seq != r.seq) AND (?1 IS NULL OR r.record_id > ?1)
                 ORDER BY r.record_id LIMIT ?2",
            )?;
            let rows = statement.query_map(params![after, limit as i64], record_from)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
    fn put_summaries(&self, summaries: Vec<RecordSummary>) -> StoreResult<()> {
        self.write(move |tx| {
            let mut statement = tx.prepare_cached(
                "INSERT INTO record_summaries (record_id, seq, started_at_ms, ended_at_ms, entity_id, entity_name,
                     conclusion, observations, conflicts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (record_id) DO UPDATE SET seq = excluded.seq, started_at_ms = excluded.started_at_ms,
                   ended_at_ms = excluded.ended_at_ms, entity_id = excluded.entity_id,
                   entity_name = excluded.entity_name, conclusion = excluded.conclusion,
                   observations = excluded.observations, conflicts = excluded.conflicts
                 WHERE excluded.seq > record_summaries.seq",
            )?;
            for s in &summaries {
                statement.execute(params![
                    s.record_id,
                    s.seq,
                    s.started_at_ms,
                    s.ended_at_ms,
                    s.entity_id,
                    s.entity_name,
                    s.conclusion,
                    s.observations,
                    s.conflicts
                ])?;
            }
            Ok(())
        })
    }
    fn summaries(&self, filter: &SummaryFilter) -> StoreResult<(usize, Vec<SummaryRow>)> {
        let hidden = serde_json::to_string(&filter.hidden_tasks).map_err(|e| StoreError::Other(e.to_string()))?;
        let at = match filter.date {
            SummaryDate::Started => "s.started_at_ms",
            SummaryDate::Updated => "r.updated_at_ms",
        };
        let matching = format!(
            "FROM records r JOIN record_summaries s ON s.record_id = r.record_id
             WHERE (?1 IS NULL OR r.task_id = ?1)
               AND (?2 IS NULL OR r.task_id IN (SELECT task_id FROM tasks WHERE entity_id = ?2))
               AND (?3 IS NULL OR r.status = ?3)
               AND (?4 IS NULL OR r.task_id IN (SELECT task_id FROM task_team WHERE officer_id = ?4))
               AND (?5 IS NULL OR r.task_id IN (SELECT task_id FROM task_team WHERE officer_id = ?5))
               AND (r.task_id IS NULL OR r.task_id NOT IN (SELECT value FROM json_each(?6)))
               AND (?7 IS NULL OR {at} >= ?7)
               AND (?8 IS NULL OR {at} < ?8)"
        );
        let f = filter;
        let bound = params![
            f.task_id,
            f.entity_id,
            f.status,
            f.officer_id,
            f.visible_to,
            hidden,
            f.from_ms,
            f.to_ms,
            f.limit as i64,
            f.offset as i64
        ];
        self.read(|conn| {
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) {matching}"))?
                .query_row(&bound[..8], |row| row.get(0))?;
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} {matching} ORDER BY r.record_id LIMIT ?9 OFFSET ?10"
            ))?;
            let rows = statement.query_map(bound, summary_from)?;
            Ok((total as usize, rows.collect::<rusqlite::Result<_>>()?))
        })
    }
    fn locked_summaries(&self, task_ids: &[String]) -> StoreResult<Vec<SummaryRow>> {
        let tasks = serde_json::to_string(task_ids).map_err(|e| StoreError::Other(e.to_string()))?;
        self.read(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM records r JOIN record_summaries s ON s.record_id = r.record_id
                 WHERE r.status = 'locked' AND r.task_id IN (SELECT value FROM json_each(?1))
                 ORDER BY r.record_id"
            ))?;
            let rows = statement.query_map([tasks], summary_from)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
    fn sync_write(&self, job: SyncTxJob) -> StoreResult<Box<dyn std::any::Any + Send>> {
        let head = self.head.clone();
        self.write(move |tx| {
            let answer = job(&**tx)?;
            head.store(record_seq_head(tx)?, std::sync::atomic::Ordering::SeqCst);
            Ok(answer)
        })
    }
    fn sync_read(&self, job: &mut dyn FnMut(&dyn SyncTx) -> StoreResult<()>) -> StoreResult<()> {
        self.read_snapshot(|conn| job(conn))
    }
    fn known_record_head(&self) -> Option<u64> {
        Some(self.head.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn sync_epoch(&self) -> u16 {
        self.epoch
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
}
