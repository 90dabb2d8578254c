//! How a sync exchange reaches the store, written once over [`SyncTx`]: run whole in the
//! writer, or run against a snapshot off the writer (many at once) and committed after a check
//! that nothing it read has changed since.
//!
//! The check: every record the exchange stores or quarantines for must be at the position in
//! the change sequence the snapshot saw, and no change of it may have been quarantined since;
//! else the verdicts may disagree (one exchange refusing what another accepts), and the
//! exchange runs again in the writer.

use std::any::Any;

use crate::store::{RecordingTx, Records, StoreError, StoreResult, SyncJob, SyncPlan, SyncTx, SyncWrite};

/// Runs one sync exchange in one write transaction: nothing of it is visible, or acknowledged,
/// before it is committed.
pub fn run_in_writer(store: &(impl Records + ?Sized), exchange: SyncJob) -> StoreResult<schemas::SyncResponse> {
    let answer =
        store.sync_write(Box::new(move |tx| exchange(tx).map(|response| Box::new(response) as Box<dyn Any + Send>)))?;
    answer
        .downcast::<schemas::SyncResponse>()
        .map(|response| *response)
        .map_err(|_| StoreError::Other("a sync job answered another type".into()))
}

/// Runs one sync exchange against a consistent snapshot, off the writer, recording what it
/// would write. Nothing is stored until [`commit`].
pub fn prepare(
    store: &(impl Records + ?Sized),
    officer_id: &str,
    exchange: SyncJob,
) -> StoreResult<(schemas::SyncResponse, SyncPlan)> {
    let mut exchange = Some(exchange);
    let mut prepared = None;
    store.sync_read(&mut |tx| {
        let exchange = exchange.take().ok_or_else(|| StoreError::Other("a sync job ran twice".into()))?;
        let mark = tx.quarantine_mark()?;
        let recording = RecordingTx::new(tx, officer_id);
        let response = exchange(&recording);
        let mut plan = recording.into_plan();
        plan.quarantine_mark = mark;
        prepared = Some((response, plan));
        Ok(())
    })?;
    let (response, plan) = prepared.ok_or_else(|| StoreError::Other("a sync job did not run".into()))?;
    Ok((response?, plan))
}

/// Applies a prepared exchange's writes in one write transaction, provided that nothing it read
/// has changed since its snapshot (see the module's overview); returns the cursor to answer with
/// (the new head, or the snapshot's head when other records of the officer changed meanwhile),
/// or `None` when the exchange must run again inside the writer.
pub fn commit(store: &(impl Records + ?Sized), plan: SyncPlan) -> StoreResult<Option<u64>> {
    let answer = store.sync_write(Box::new(move |tx| Ok(Box::new(apply(tx, plan)?) as Box<dyn Any + Send>)))?;
    answer
        .downcast::<Option<u64>>()
        .map(|cursor| *cursor)
        .map_err(|_| StoreError::Other("a sync commit answered another type".into()))
}

fn apply(tx: &dyn SyncTx, plan: SyncPlan) -> StoreResult<Option<u64>> {
    for write in &plan.writes {
        let record_id = match write {
            SyncWrite::Record { record_id, .. } => record_id,
            SyncWrite::Quarantine(change) => &change.record_id,
            SyncWrite::State { .. } | SyncWrite::Leaf(_) => continue,
        };
        if plan.read_seqs.get(record_id).copied().flatten() != tx.record_seq(record_id)? {
            return Ok(None);
        }
        if tx.refused_since(record_id, plan.quarantine_mark)? {
            return Ok(None);
        }
    }
    let head_before = plan.head_before.unwrap_or(0);
    let others_changed = !tx.changed_since(&plan.officer_id, head_before, 1)?.is_empty();
    for write in plan.writes {
        match write {
            SyncWrite::Record { record_id, task_id, document, status, now_ms } => {
                tx.put_record(&record_id, task_id.as_deref(), &document, &status, now_ms)?;
            }
            SyncWrite::State { device_id, record_id, state } => tx.put_sync_state(&device_id, &record_id, &state)?,
            SyncWrite::Quarantine(change) => tx.quarantine(&change)?,
            SyncWrite::Leaf(leaf) => tx.append_leaf(&leaf)?,
        }
    }
    let now = tx.record_seq_head()?;
    Ok(Some(if others_changed { head_before } else { now }))
}
