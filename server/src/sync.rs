//! The sync exchange of one device request, run inside one write transaction.
//!
//! The validation context is built from the database (every enrolled device's
//! actor, every certificate with its history, the teams of the officer's tasks
//! and of the records named, the quarantined change hashes), the request goes
//! through `sync-core`'s [`ServerSession`], and then, in the same transaction,
//! changed records are stored and moved up the change sequence, sync states are
//! kept, and refused changes are quarantined. Each officer signature a stored
//! record gained, and its locking, is appended to the transparency log in that
//! transaction too. The answer is sent only after the commit.

use std::collections::BTreeMap;

use automerge::{ActorId, Automerge, Change};
use schemas::{Certificate, RecordStatus, SyncRequest, SyncResponse};
use sync_core::document::{read_status, read_task_id};
use sync_core::session::{ChangedRecords, Documents, SavedRecord, ServerSession};
use sync_core::transparency::{Leaf, LeafItem};
use sync_core::validate::{ActorBinding, ValidationContext};

use crate::store::{Device, QuarantinedChange, StoreError, StoreResult, StoredRecord, SyncTx, Task};

/// What the exchange needs to know beyond the request, read before the write transaction.
pub struct ExchangeInput {
    pub device_id: String,
    pub officer_id: String,
    pub devices: Vec<Device>,
    pub certificates: Vec<Certificate>,
    /// Tasks of the officer and of the records in the request.
    pub tasks: Vec<Task>,
    pub now_ms: i64,
    pub max_clock_skew_ms: i64,
    pub max_changed: usize,
}

/// What the exchange did, for metrics.
#[derive(Debug, Default)]
pub struct ExchangeCounts {
    pub records_merged: u64,
    pub changes_refused: u64,
    /// Leaves appended to the transparency log (signatures and locks).
    pub leaves_appended: u64,
}

/// What a stored record that was no longer a draft held when the exchange loaded it.
struct SignedBefore {
    locked: bool,
    /// Officer id to the signature entry as stored (a JSON string).
    signatures: BTreeMap<String, String>,
}

/// Documents read from the transaction on first use, and loaded only when the session needs them.
struct StoredDocuments<'a> {
    tx: &'a dyn SyncTx,
    /// Rows read, by record id (`None`: no such record).
    rows: BTreeMap<String, Option<StoredRecord>>,
    loaded: BTreeMap<String, Automerge>,
    /// The signatures of each loaded record that was signed already; a record absent here was a
    /// draft (or new), with none.
    signed_before: BTreeMap<String, SignedBefore>,
    error: Option<StoreError>,
}

impl StoredDocuments<'_> {
    /// The stored row of a record, read once per exchange.
    fn row(&mut self, record_id: &str) -> Option<&StoredRecord> {
        if !self.rows.contains_key(record_id) {
            match self.tx.record(record_id) {
                Ok(row) => {
                    self.rows.insert(record_id.to_string(), row);
                }
                Err(error) => {
                    self.error = Some(error);
                    return None;
                }
            }
        }
        self.rows[record_id].as_ref()
    }
}

impl Documents for StoredDocuments<'_> {
    fn document(&mut self, record_id: &str) -> Option<&mut Automerge> {
        if !self.loaded.contains_key(record_id) {
            self.row(record_id)?;
            let stored = self.rows[record_id].as_ref().expect("read just above");
            match Automerge::load(&stored.document) {
                Ok(doc) => {
                    // Only a record signed already has signatures to compare with afterwards.
                    if stored.status != "draft" {
                        let before = SignedBefore {
                            locked: stored.status == "locked",
                            signatures: sync_core::document::signature_entries(&doc),
                        };
                        self.signed_before.insert(record_id.to_string(), before);
                    }
                    self.loaded.insert(record_id.to_string(), doc);
                }
                Err(error) => {
                    self.error = Some(StoreError::Other(format!("record {record_id} does not load: {error}")));
                    return None;
                }
            }
        }
        self.loaded.get_mut(record_id)
    }

    fn document_or_empty(&mut self, record_id: &str) -> &mut Automerge {
        if self.document(record_id).is_none() {
            self.loaded.entry(record_id.to_string()).or_default();
        }
        self.loaded.get_mut(record_id).expect("just loaded or created")
    }

    /// The stored bytes, unless the record is loaded here already (its copy may have moved on).
    fn saved(&mut self, record_id: &str) -> Option<SavedRecord<'_>> {
        if self.loaded.contains_key(record_id) {
            return None;
        }
        let stored = self.row(record_id)?;
        Some(SavedRecord { document: &stored.document, task_id: stored.task_id.as_deref() })
    }
}

/// Runs one exchange inside `tx`.
pub fn exchange(
    tx: &dyn SyncTx,
    input: &ExchangeInput,
    request: &SyncRequest,
    counts: &mut ExchangeCounts,
) -> StoreResult<SyncResponse> {
    let mut context = ValidationContext {
        sending_device_id: input.device_id.clone(),
        actors: input
            .devices
            .iter()
            .map(|d| {
                (
                    ActorId::from(d.actor_id.as_slice()),
                    ActorBinding { device_id: d.device_id.clone(), officer_id: d.officer_id.clone() },
                )
            })
            .collect(),
        certificates: input.certificates.clone(),
        teams: input.tasks.iter().map(|t| (t.task_id.clone(), t.team.iter().cloned().collect())).collect(),
        now_ms: input.now_ms,
        max_clock_skew_ms: input.max_clock_skew_ms,
        refused: BTreeMap::new(),
    };
    let mut session = ServerSession::new();
    for message in &request.documents {
        if let Some(state) = tx.sync_state(&input.device_id, &message.record_id)? {
            let _ = session.restore_state(&message.record_id, &state);
        }
        for (reason, bytes) in tx.quarantined_changes(&message.record_id)? {
            if let Ok(change) = Change::from_bytes(bytes) {
                let reason = serde_json::from_value(reason)
                    .unwrap_or(schemas::RejectionReason::SchemaViolation { detail: "refused earlier".into() });
                context.refused.insert(change.hash(), reason);
                session.remember_refused(&message.record_id, &change);
            }
        }
    }
    let head_before = tx.record_seq_head()?;
    // A cursor beyond the head means the server's database is older than what the device saw
    // (restored from a backup): list everything again rather than nothing.
    let since = request.since.unwrap_or(0);
    let since = if since > head_before { 0 } else { since };
    let listed = tx.changed_since(&input.officer_id, since, input.max_changed + 1)?;
    let more = listed.len() > input.max_changed;
    let listed: Vec<(String, u64)> = listed.into_iter().take(input.max_changed).collect();
    for (record_id, _) in &listed {
        if let Some(state) = tx.sync_state(&input.device_id, record_id)? {
            let _ = session.restore_state(record_id, &state);
        }
    }

    let mut docs = StoredDocuments {
        tx,
        rows: BTreeMap::new(),
        loaded: BTreeMap::new(),
        signed_before: BTreeMap::new(),
        error: None,
    };
    let (response, report) = session
        .handle(request, &mut docs, &mut context, |report| ChangedRecords {
            records: listed.iter().map(|(id, _)| id.clone()).collect(),
            // The device's own changes take the next positions once stored below; it has them.
            cursor: if more {
                listed.last().map_or(since, |(_, seq)| *seq)
            } else {
                head_before + report.updated.len() as u64
            },
            more,
        })
        .map_err(|e| StoreError::Other(e.to_string()))?;
    if let Some(error) = docs.error {
        return Err(error);
    }

    for record_id in &report.updated {
        let doc = &docs.loaded[record_id];
        let status = read_status(doc).unwrap_or(RecordStatus::Draft);
        let name = sync_core::document::enum_name(&status);
        // Stored uncompressed: a record's columns are small, so deflate saves about 40 % of its
        // bytes for about 90 % of the time a save takes, and the load that reads it back skips
        // the inflate.
        tx.put_record(record_id, read_task_id(doc).as_deref(), &doc.save_nocompress(), &name, input.now_ms)?;
        if status != RecordStatus::Draft {
            for leaf in signing_leaves(record_id, doc, status, docs.signed_before.get(record_id), input.now_ms) {
                tx.append_leaf(&leaf)?;
                counts.leaves_appended += 1;
            }
        }
    }
    // Sync states are kept only for records that exist: a request naming any id leaves nothing.
    // A settled record exists (its stored heads were acknowledged) and was not loaded.
    let existing = docs.loaded.iter().filter(|(_, doc)| !doc.get_heads().is_empty()).map(|(id, _)| id);
    for record_id in existing.chain(&report.settled) {
        if let Some(state) = session.encoded_state(record_id) {
            tx.put_sync_state(&input.device_id, record_id, &state)?;
        }
    }
    for (record_id, refusal) in &report.refused {
        let officer_id = context.actors.get(refusal.change.actor_id()).map(|b| b.officer_id.clone());
        tx.quarantine(&QuarantinedChange {
            record_id: record_id.clone(),
            change_hash: refusal.change.hash().to_string(),
            device_id: input.device_id.clone(),
            officer_id,
            reason: serde_json::to_value(&refusal.reason).unwrap_or_default(),
            change: refusal.change.raw_bytes().to_vec(),
            received_at_ms: input.now_ms,
        })?;
    }
    counts.records_merged += report.updated.len() as u64;
    counts.changes_refused += report.refused.len() as u64;
    Ok(response)
}

/// The transparency-log leaves of a stored record that is no longer a draft: one per officer
/// signature it holds now and did not before, then its locking if it became locked. Each names
/// the record's heads as stored.
fn signing_leaves(
    record_id: &str,
    doc: &Automerge,
    status: RecordStatus,
    before: Option<&SignedBefore>,
    now_ms: i64,
) -> Vec<Leaf> {
    let heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|head| head.0).collect();
    let mut leaves: Vec<Leaf> = sync_core::document::signature_entries(doc)
        .into_iter()
        .filter(|(officer, _)| before.is_none_or(|before| !before.signatures.contains_key(officer)))
        .map(|(officer_id, signature)| Leaf {
            received_ms: now_ms,
            item: LeafItem::RecordSigned {
                record_id: record_id.to_string(),
                officer_id,
                signature,
                heads: heads.clone(),
            },
        })
        .collect();
    if status == RecordStatus::Locked && !before.is_some_and(|before| before.locked) {
        leaves.push(Leaf {
            received_ms: now_ms,
            item: LeafItem::RecordLocked { record_id: record_id.to_string(), heads },
        });
    }
    leaves
}
