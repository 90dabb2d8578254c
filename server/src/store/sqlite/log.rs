//! The SQL of the transparency log and the enforcement-log chains: [`LogTx`] on a connection.

use rusqlite::{Connection, OptionalExtension, params};

use super::*;

fn hash32(bytes: Vec<u8>, what: &str) -> StoreResult<[u8; 32]> {
    bytes.try_into().map_err(|_| StoreError::Other(format!("{what} is not 32 bytes")))
}

fn kept_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeptEntry> {
    Ok(KeptEntry { entry: row.get(0)?, payload: row.get(1)?, received_at_ms: row.get(2)? })
}

impl LogTx for Connection {
    fn log_size(&self) -> StoreResult<u64> {
        let next: i64 =
            self.prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")?.query_row([], |r| r.get(0))?;
        Ok(next as u64)
    }
    fn subtree(&self, level: u32, index: u64) -> StoreResult<Option<Hash>> {
        let hash: Option<Vec<u8>> = self
            .prepare_cached("SELECT hash FROM log_subtrees WHERE level = ?1 AND idx = ?2")?
            .query_row(params![level, index as i64], |r| r.get(0))
            .optional()?;
        hash.map(|hash| hash32(hash, &format!("the log's subtree ({level}, {index})"))).transpose()
    }
    fn insert_subtree(&self, level: u32, index: u64, hash: &Hash) -> StoreResult<()> {
        self.prepare_cached("INSERT INTO log_subtrees (level, idx, hash) VALUES (?1, ?2, ?3)")?.execute(params![
            level,
            index as i64,
            hash.as_slice()
        ])?;
        Ok(())
    }
    fn each_inner_subtree(&self, visit: &mut dyn FnMut(u32, u64, &[u8])) -> StoreResult<()> {
        let mut statement =
            self.prepare("SELECT level, idx, hash FROM log_subtrees WHERE level > 0 ORDER BY level, idx")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let hash = row.get_ref(2)?.as_blob().unwrap_or_default();
            visit(row.get(0)?, row.get::<_, i64>(1)? as u64, hash);
        }
        Ok(())
    }
    fn insert_leaf(&self, index: u64, data: &[u8], received_ms: i64, subject: Option<&str>) -> StoreResult<()> {
        self.prepare_cached("INSERT INTO log_leaves (idx, data, received_at_ms, subject) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![index as i64, data, received_ms, subject])?;
        Ok(())
    }
    fn leaf(&self, index: u64) -> StoreResult<Option<StoredLeaf>> {
        Ok(self
            .prepare_cached("SELECT data, received_at_ms FROM log_leaves WHERE idx = ?1")?
            .query_row([index as i64], |r| Ok(StoredLeaf { index, data: r.get(0)?, received_at_ms: r.get(1)? }))
            .optional()?)
    }
    fn each_leaf(&self, visit: &mut dyn FnMut(u64, Option<&[u8]>)) -> StoreResult<()> {
        let mut statement = self.prepare("SELECT idx, data FROM log_leaves ORDER BY idx")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            visit(row.get::<_, i64>(0)? as u64, row.get_ref(1)?.as_blob().ok());
        }
        Ok(())
    }
    fn leaves_about(&self, subject: &str, size: u64) -> StoreResult<Vec<u64>> {
        Ok(self
            .prepare_cached("SELECT idx FROM log_leaves WHERE subject = ?1 AND idx < ?2 ORDER BY idx")?
            .query_map(params![subject, size as i64], |r| r.get::<_, i64>(0).map(|i| i as u64))?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        Ok(self
            .prepare_cached("SELECT size, note, signed_at_ms FROM log_checkpoints ORDER BY size DESC LIMIT 1")?
            .query_row([], |r| {
                Ok(StoredCheckpoint { size: r.get::<_, i64>(0)? as u64, note: r.get(1)?, signed_at_ms: r.get(2)? })
            })
            .optional()?)
    }
    fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        Ok(self
            .prepare("SELECT size, note, signed_at_ms FROM log_checkpoints ORDER BY size")?
            .query_map([], |r| {
                Ok(StoredCheckpoint { size: r.get::<_, i64>(0)? as u64, note: r.get(1)?, signed_at_ms: r.get(2)? })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn insert_checkpoint(&self, checkpoint: &StoredCheckpoint) -> StoreResult<()> {
        self.prepare_cached("INSERT INTO log_checkpoints (size, note, signed_at_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![checkpoint.size as i64, checkpoint.note, checkpoint.signed_at_ms])?;
        Ok(())
    }
    fn log_identity(&self) -> StoreResult<Option<LogIdentity>> {
        type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>);
        let row: Option<Row> = self
            .prepare_cached("SELECT origin, public_key, secret FROM log_identity WHERE id = 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((origin, public, secret)) = row else { return Ok(None) };
        let key = secret
            .map(|secret| hash32(secret, "the log's signing key").map(|s| ed25519_dalek::SigningKey::from_bytes(&s)))
            .transpose()?;
        // A database from before migration 10 holds the secret only.
        let public_key = match (public, &key) {
            (Some(public), _) => ed25519_dalek::VerifyingKey::from_bytes(&hash32(public, "the log's public key")?)
                .map_err(|e| StoreError::Other(format!("the log's public key: {e}")))?,
            (None, Some(key)) => key.verifying_key(),
            (None, None) => return Err(StoreError::Other("the log's identity holds no key".into())),
        };
        if key.as_ref().is_some_and(|key| key.verifying_key() != public_key) {
            return Err(StoreError::Other("the log's stored secret key is not its public key's".into()));
        }
        Ok(Some(LogIdentity { origin, public_key, key }))
    }
    fn insert_log_identity(
        &self,
        origin: &str,
        public: &[u8; 32],
        secret: Option<&[u8; 32]>,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO log_identity (id, origin, public_key, secret, created_at_ms) VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO NOTHING",
            params![origin, public.as_slice(), secret.map(|s| s.as_slice()), now_ms],
        )?;
        Ok(())
    }
    fn forget_log_secret(&self) -> StoreResult<()> {
        // The public key is kept first, for a row from before migration 10 that held only the secret.
        let identity = self.log_identity()?.ok_or_else(|| StoreError::NotFound("the log's identity".into()))?;
        self.execute(
            "UPDATE log_identity SET public_key = ?1, secret = NULL WHERE id = 1",
            [identity.public_key.as_bytes().as_slice()],
        )?;
        Ok(())
    }
    fn record_state(&self, record_id: &str, size: u64) -> StoreResult<Option<RecordState>> {
        let row: Option<(i64, String, Vec<u8>)> = self
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
    fn insert_record_state(
        &self,
        leaf_index: u64,
        record_id: &str,
        items: &RecordItems,
        heads: &[[u8; 32]],
    ) -> StoreResult<()> {
        let json = serde_json::to_string(items).map_err(|e| StoreError::Other(e.to_string()))?;
        self.prepare_cached(
            "INSERT INTO log_record_states (leaf_index, record_id, items, heads) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![leaf_index as i64, record_id, json, heads.concat()])?;
        Ok(())
    }
    fn chain_hash(&self, device_id: &str, seq: u64) -> StoreResult<Option<[u8; 32]>> {
        let hash: Option<Vec<u8>> = self
            .prepare_cached("SELECT entry_hash FROM log_chain WHERE device_id = ?1 AND seq = ?2")?
            .query_row(params![device_id, seq as i64], |r| r.get(0))
            .optional()?;
        hash.map(|hash| hash32(hash, "a chain entry's hash")).transpose()
    }
    fn insert_chain_entry(
        &self,
        device_id: &str,
        entry: &CheckedEntry,
        entry_hash: &[u8; 32],
        received_ms: i64,
        leaf_index: u64,
    ) -> StoreResult<()> {
        let signed = &entry.signed;
        let json = serde_json::to_string(signed).map_err(|e| StoreError::Other(e.to_string()))?;
        self.prepare_cached(
            "INSERT INTO log_chain (device_id, seq, entry_hash, entry, payload, record_id, received_at_ms,
               leaf_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            device_id,
            signed.entry.seq as i64,
            entry_hash.as_slice(),
            json,
            entry.payload,
            signed.entry.record_id,
            received_ms,
            leaf_index as i64
        ])?;
        Ok(())
    }
    fn keep_beside_chain(
        &self,
        place: BesideChain,
        device_id: &str,
        entry: &CheckedEntry,
        entry_hash: &[u8; 32],
        received_ms: i64,
    ) -> StoreResult<()> {
        let table = match place {
            BesideChain::Held => "log_held",
            BesideChain::Fork => "log_forks",
        };
        let signed = &entry.signed;
        let json = serde_json::to_string(signed).map_err(|e| StoreError::Other(e.to_string()))?;
        self.prepare_cached(&format!(
            "INSERT INTO {table} (device_id, seq, entry_hash, entry, payload, record_id, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
        ))?
        .execute(params![
            device_id,
            signed.entry.seq as i64,
            entry_hash.as_slice(),
            json,
            entry.payload,
            signed.entry.record_id,
            received_ms
        ])?;
        Ok(())
    }
    fn is_held(&self, device_id: &str, seq: u64, entry_hash: &[u8; 32]) -> StoreResult<bool> {
        Ok(self
            .prepare_cached("SELECT 1 FROM log_held WHERE device_id = ?1 AND seq = ?2 AND entry_hash = ?3")?
            .exists(params![device_id, seq as i64, entry_hash.as_slice()])?)
    }
    fn held_count(&self, device_id: &str) -> StoreResult<usize> {
        let held: i64 = self
            .prepare_cached("SELECT COUNT(*) FROM log_held WHERE device_id = ?1")?
            .query_row([device_id], |r| r.get(0))?;
        Ok(held as usize)
    }
    fn held_at(&self, device_id: &str, seq: u64) -> StoreResult<Vec<KeptEntry>> {
        Ok(self
            .prepare_cached(
                "SELECT entry, payload, received_at_ms FROM log_held WHERE device_id = ?1 AND seq = ?2
                 ORDER BY received_at_ms, entry_hash",
            )?
            .query_map(params![device_id, seq as i64], kept_from)?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn remove_held(&self, device_id: &str, seq: u64, entry_hash: &[u8; 32]) -> StoreResult<()> {
        self.prepare_cached("DELETE FROM log_held WHERE device_id = ?1 AND seq = ?2 AND entry_hash = ?3")?
            .execute(params![device_id, seq as i64, entry_hash.as_slice()])?;
        Ok(())
    }
    fn record_chain(&self, record_id: &str) -> StoreResult<Vec<(String, String, i64, u64)>> {
        Ok(self
            .prepare_cached(
                "SELECT d.officer_id, c.entry, c.received_at_ms, c.leaf_index FROM log_chain c
                 JOIN devices d ON d.device_id = c.device_id
                 WHERE c.record_id = ?1 ORDER BY c.device_id, c.seq",
            )?
            .query_map([record_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64)))?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn record_chain_starts(&self, record_id: &str, size: u64) -> StoreResult<Vec<(String, String, u64)>> {
        Ok(self
            .prepare_cached(
                "SELECT c.device_id, d.officer_id, MIN(c.seq) FROM log_chain c
                 JOIN devices d ON d.device_id = c.device_id
                 WHERE c.record_id = ?1 AND c.leaf_index < ?2 GROUP BY c.device_id ORDER BY c.device_id",
            )?
            .query_map(params![record_id, size as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn chain_last_seq(&self, device_id: &str, size: u64) -> StoreResult<Option<u64>> {
        let last: Option<i64> = self
            .prepare_cached("SELECT MAX(seq) FROM log_chain WHERE device_id = ?1 AND leaf_index < ?2")?
            .query_row(params![device_id, size as i64], |r| r.get(0))?;
        Ok(last.map(|seq| seq as u64))
    }
    fn chain_range(&self, device_id: &str, first: u64, last: u64) -> StoreResult<Vec<ChainRow>> {
        Ok(self
            .prepare_cached(
                "SELECT entry, payload, leaf_index FROM log_chain
                 WHERE device_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
            )?
            .query_map(params![device_id, first as i64, last as i64], |r| {
                Ok(ChainRow { entry: r.get(0)?, payload: r.get(1)?, leaf_index: r.get::<_, i64>(2)? as u64 })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn forked_record_devices(&self, record_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .prepare_cached(
                "SELECT DISTINCT d.device_id, d.officer_id FROM devices d
                 WHERE d.device_id IN (SELECT device_id FROM log_chain WHERE record_id = ?1
                                       UNION SELECT device_id FROM log_forks WHERE record_id = ?1)
                   AND EXISTS (SELECT 1 FROM log_forks f WHERE f.device_id = d.device_id)
                 ORDER BY d.device_id",
            )?
            .query_map([record_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn devices_without_leaf(&self) -> StoreResult<Vec<Device>> {
        Ok(self
            .prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices d WHERE NOT EXISTS
                   (SELECT 1 FROM log_leaves WHERE subject = 'device:' || d.device_id)
                 ORDER BY enrolled_at_ms, device_id"
            ))?
            .query_map([], device_from)?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn all_devices(&self) -> StoreResult<Vec<Device>> {
        Ok(self
            .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id"))?
            .query_map([], device_from)?
            .collect::<rusqlite::Result<_>>()?)
    }
    fn stored_record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>> {
        Ok(self
            .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM records WHERE record_id = ?1"))?
            .query_row([record_id], record_from)
            .optional()?)
    }
    fn stored_blob(&self, sha256: &str) -> StoreResult<Option<Blob>> {
        Ok(blob_row(self, sha256)?)
    }
}

impl TransparencyLog for SqliteStore {
    fn log_write(&self, job: LogJob) -> StoreResult<Box<dyn std::any::Any + Send>> {
        self.write(move |tx| job(&**tx))
    }
    fn log_read(&self, job: &mut dyn FnMut(&dyn LogTx) -> StoreResult<()>) -> StoreResult<()> {
        self.read_snapshot(|conn| job(conn))
    }
    fn log_signing_key(&self) -> Option<ed25519_dalek::SigningKey> {
        self.log_key.clone()
    }
}
