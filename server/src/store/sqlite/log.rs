//! The SQL of the transparency log and the enforcement-log chains.

use rusqlite::{Connection, OptionalExtension, params};

use super::*;

/// The transparency log's stored complete subtrees, read through one connection: run inside one
/// transaction, every root and proof is of one consistent tree, built from O(log² n) lookups.
pub(super) struct StoredTree<'a>(&'a Connection);

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
pub(super) fn log_size(conn: &Connection) -> StoreResult<u64> {
    let next: i64 =
        conn.prepare_cached("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")?.query_row([], |r| r.get(0))?;
    Ok(next as u64)
}

/// The transparency-log leaf of a device's enrolment, received at `received_ms`.
pub(super) fn enrolment_leaf(device: &Device, received_ms: i64) -> StoreResult<Leaf> {
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

/// What a leaf is about, for finding the leaves of an evidence package; entries are found
/// through their chain instead.
pub(super) fn leaf_subject(item: &LeafItem) -> Option<String> {
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
pub(super) type RecordState = (u64, RecordItems, Vec<[u8; 32]>);

/// The latest state of a record's items below `size`.
pub(super) fn record_state(conn: &Connection, record_id: &str, size: u64) -> StoreResult<Option<RecordState>> {
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
pub(super) enum RecordItem<'a> {
    Entry { device_id: &'a str, seq: u64, entry_hash: [u8; 32], photo: Option<&'a str> },
    Anchor { leaf_index: u64, heads: &'a [[u8; 32]] },
}

/// Appends the record's next state leaf with `item` among its items, in the transaction that
/// committed the item, so that the log always names every item of the record.
pub(super) fn record_item_added(
    conn: &Connection,
    record_id: &str,
    received_ms: i64,
    item: RecordItem<'_>,
) -> StoreResult<()> {
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
pub(super) fn leaves_about(conn: &Connection, subject: &str, size: u64) -> StoreResult<Vec<u64>> {
    Ok(conn
        .prepare_cached("SELECT idx FROM log_leaves WHERE subject = ?1 AND idx < ?2 ORDER BY idx")?
        .query_map(params![subject, size as i64], |r| r.get::<_, i64>(0).map(|i| i as u64))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Appends a leaf and every subtree it completes; returns its index. A signature or lock of a
/// record is followed by the record's next state.
pub(super) fn append_leaf(conn: &Connection, leaf: &Leaf) -> StoreResult<u64> {
    let index = append_leaf_alone(conn, leaf)?;
    if let LeafItem::RecordSigned { record_id, heads, .. } | LeafItem::RecordLocked { record_id, heads } = &leaf.item {
        record_item_added(conn, record_id, leaf.received_ms, RecordItem::Anchor { leaf_index: index, heads })?;
    }
    Ok(index)
}

pub(super) fn append_leaf_alone(conn: &Connection, leaf: &Leaf) -> StoreResult<u64> {
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

pub(super) fn leaf_row(conn: &Connection, index: u64) -> StoreResult<Option<StoredLeaf>> {
    Ok(conn
        .prepare_cached("SELECT data, received_at_ms FROM log_leaves WHERE idx = ?1")?
        .query_row([index as i64], |r| Ok(StoredLeaf { index, data: r.get(0)?, received_at_ms: r.get(1)? }))
        .optional()?)
}

pub(super) fn latest_checkpoint(conn: &Connection) -> StoreResult<Option<StoredCheckpoint>> {
    Ok(conn
        .prepare_cached("SELECT size, note, signed_at_ms FROM log_checkpoints ORDER BY size DESC LIMIT 1")?
        .query_row([], |r| {
            Ok(StoredCheckpoint { size: r.get::<_, i64>(0)? as u64, note: r.get(1)?, signed_at_ms: r.get(2)? })
        })
        .optional()?)
}

pub(super) fn log_identity_row(conn: &Connection) -> StoreResult<Option<LogIdentity>> {
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
pub(super) fn current_checkpoint(conn: &Connection, now_ms: i64) -> StoreResult<StoredCheckpoint> {
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
pub(super) fn chain_hash(conn: &Connection, device_id: &str, seq: u64) -> StoreResult<Option<[u8; 32]>> {
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT entry_hash FROM log_chain WHERE device_id = ?1 AND seq = ?2")?
        .query_row(params![device_id, seq as i64], |r| r.get(0))
        .optional()?;
    hash.map(|hash| hash.try_into().map_err(|_| StoreError::Other("a chain entry's hash is not 32 bytes".into())))
        .transpose()
}

/// What placing entries needs beyond the connection: the device, and the roots of the log at
/// the sizes entries name, looked up once each.
pub(super) struct Placing<'a> {
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
pub(super) fn append_log_entries(
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
pub(super) fn signed_entry(json: &str) -> StoreResult<SignedEntry> {
    serde_json::from_str(json).map_err(|e| StoreError::Other(format!("a stored log entry does not read: {e}")))
}

impl TransparencyLog for SqliteStore {
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
}
