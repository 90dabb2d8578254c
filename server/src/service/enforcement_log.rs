//! The enforcement log: devices' signed chains and what they prove about a record.
//!
//! A device uploads its signed enforcement-log chain; each entry is checked here (its device,
//! fields, signature and payload), then placed against the device's stored chain by
//! [`crate::service::transparency::append_log_entries`], which appends every accepted entry to the
//! transparency log in the same transaction. A
//! record's readers may read its log with the time interval the transparency log proves for each
//! entry and the rules its entries break.
//!
//! The reads of the transparency log itself (its checkpoint, key and proofs) are
//! [`crate::service::transparency`]'s.

use ed25519_dalek::VerifyingKey;
use schemas::log::{EntryOutcome, LogUpload, LogUploadResponse, RecordLog, RecordLogEntry, SignedEntry};
use sync_core::enforcement_log::{EntryVerification, check_fields, check_record};
use sync_core::transparency::interval;

use crate::service::auth::Caller;
use crate::service::records::load;
use crate::service::{ApiError, ApiResult, Context, Metrics, now_ms};
use crate::store::{CheckedEntry, EntryPlacement, LogAppend, Store, StoreResult};

/// Why an uploaded entry is refused: its stable code and a message.
type Refusal = (&'static str, String);

/// Checks one uploaded entry of `device_id`, whose key is `key`: its device, its fields, its
/// signature (strictly), then its payload.
fn check_entry(signed: &SignedEntry, payload: &[u8], device_id: &str, key: &VerifyingKey) -> Result<(), Refusal> {
    if signed.entry.device_id != device_id {
        return Err(("not_own_device", "the entry names another device than the caller's".into()));
    }
    check_fields(&signed.entry).map_err(|e| ("invalid_entry", e.to_string()))?;
    if signed.verify(key).is_err() {
        return Err(("bad_signature", "the signature does not verify against the device's enrolled key".into()));
    }
    if signed.check_payload(payload).is_err() {
        return Err(("payload_mismatch", "the payload does not have the entry's payload hash".into()));
    }
    Ok(())
}

/// Checks and places entries of the calling device's enforcement-log chain; the upload is decoded
/// by `upload` once the caller is known to be a device. Committed before it returns.
pub async fn upload(
    context: &Context,
    caller: &Caller,
    upload: impl FnOnce() -> ApiResult<LogUpload>,
) -> ApiResult<LogUploadResponse> {
    caller.require(&["officer"])?;
    let device_id = caller.device()?.to_string();
    let upload = upload()?;
    let limit = context.config.max_log_entries_per_upload;
    if upload.entries.len() > limit {
        return Err(ApiError::Unprocessable {
            code: "too_many_entries",
            message: format!("at most {limit} entries per upload"),
            details: Some(serde_json::json!({ "limit": limit })),
        });
    }
    let limit = context.config.max_log_payload_bytes;
    if let Some(oversized) = upload.entries.iter().find(|e| e.payload.len() > limit) {
        return Err(ApiError::Unprocessable {
            code: "payload_too_large",
            message: format!("an entry's payload may hold at most {limit} bytes"),
            details: Some(serde_json::json!({ "limit": limit, "seq": oversized.signed.entry.seq })),
        });
    }
    // The log's key exists before anything is appended that a checkpoint will sign.
    context.log_identity().await?;
    let device = {
        let device_id = device_id.clone();
        context.blocking(move |store| store.device(&device_id)).await?
    }
    .ok_or(ApiError::Unauthorized { code: "device_revoked", message: "this device is not enrolled".into() })?;
    let key = <[u8; 32]>::try_from(device.public_key.as_slice())
        .ok()
        .and_then(|key| VerifyingKey::from_bytes(&key).ok())
        .ok_or_else(|| ApiError::Internal(format!("device {device_id} has an unusable key")))?;

    // Signatures are checked off the async runtime: an upload may carry a thousand.
    let checking_device = device_id.clone();
    let (checks, checked) = tokio::task::spawn_blocking(move || {
        let mut checks: Vec<(u64, Result<(), Refusal>)> = Vec::with_capacity(upload.entries.len());
        let mut checked = Vec::new();
        for uploaded in upload.entries {
            let seq = uploaded.signed.entry.seq;
            match check_entry(&uploaded.signed, &uploaded.payload, &checking_device, &key) {
                Ok(()) => {
                    checks.push((seq, Ok(())));
                    checked.push(CheckedEntry { signed: uploaded.signed, payload: uploaded.payload });
                }
                Err(refusal) => checks.push((seq, Err(refusal))),
            }
        }
        (checks, checked)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = now_ms();
    let append = if checked.is_empty() {
        // Nothing to place: the answer needs only a checkpoint, read unless none was ever signed.
        let checkpoint = context
            .blocking(move |store| match crate::service::transparency::latest_checkpoint(store)? {
                Some(latest) => Ok(latest),
                None => crate::service::transparency::checkpoint(store, now),
            })
            .await?;
        LogAppend {
            placements: Vec::new(),
            promoted: 0,
            promoted_forks: 0,
            unknown_checkpoints: 0,
            leaves: 0,
            checkpoint,
        }
    } else {
        let max_held = context.config.max_held_log_entries_per_device;
        context
            .blocking(move |store| {
                crate::service::transparency::append_log_entries(store, &device_id, checked, now, max_held)
            })
            .await?
    };

    let metrics = &context.metrics;
    let mut placements = append.placements.iter();
    let mut outcomes = Vec::with_capacity(checks.len());
    for (seq, check) in checks {
        let outcome = match check {
            Err((code, message)) => {
                Metrics::add(&metrics.log_entries_refused, 1);
                EntryOutcome::Refused { seq, code: code.to_string(), message }
            }
            Ok(()) => match placements.next().ok_or_else(|| ApiError::Internal("an entry was not placed".into()))? {
                EntryPlacement::Accepted { leaf_index } => {
                    Metrics::add(&metrics.log_entries_accepted, 1);
                    EntryOutcome::Accepted { seq, leaf_index: *leaf_index }
                }
                EntryPlacement::Duplicate => EntryOutcome::Duplicate { seq },
                EntryPlacement::Held => {
                    Metrics::add(&metrics.log_entries_held, 1);
                    EntryOutcome::Held { seq }
                }
                EntryPlacement::Fork => {
                    Metrics::add(&metrics.log_entries_forked, 1);
                    EntryOutcome::Fork { seq }
                }
                EntryPlacement::TooManyHeld => {
                    Metrics::add(&metrics.log_entries_refused, 1);
                    EntryOutcome::Refused {
                        seq,
                        code: "too_many_held".into(),
                        message: format!(
                            "this device has {} entries waiting for an earlier one; send the earlier ones first",
                            context.config.max_held_log_entries_per_device
                        ),
                    }
                }
            },
        };
        outcomes.push(outcome);
    }
    Metrics::add(&metrics.log_entries_accepted, append.promoted);
    Metrics::add(&metrics.log_entries_forked, append.promoted_forks);
    Metrics::add(&metrics.log_unknown_checkpoints, append.unknown_checkpoints);
    Metrics::add(&metrics.log_leaves_appended, append.leaves);
    Ok(LogUploadResponse { outcomes, checkpoint: append.checkpoint.note })
}

/// A record's enforcement log, if `caller` may read the record: the team's devices' entries with
/// the interval the transparency log proves for each, the rules they break, and the devices with
/// a forked chain.
pub async fn record_log(context: &Context, caller: &Caller, record_id: String) -> ApiResult<RecordLog> {
    let (stored, doc) = load(context, caller, record_id.clone()).await?;
    let record = sync_core::document::read_record(&record_id, &doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    let present: Vec<String> = record.officers_present.iter().map(|o| o.officer_id.clone()).collect();
    let task_id = stored.task_id.clone();
    let id = record_id.clone();
    let forked_devices = context
        .blocking(move |store| crate::service::transparency::forked_devices(store, &id, &team(store, task_id)?))
        .await?;
    let entries = proven_entries(context, &record_id, stored.task_id.clone()).await?;
    let findings = check_record(&entries.iter().map(|e| e.signed.entry.clone()).collect::<Vec<_>>(), &present);
    Ok(RecordLog { record_id, entries, findings, forked_devices })
}

/// The team's devices' entries for a record, each with the interval the transparency log proves
/// for it (after the last leaf of the checkpoint it names, if that checkpoint is the log's own,
/// and by its receipt).
pub async fn proven_entries(
    context: &Context,
    record_id: &str,
    task_id: Option<String>,
) -> ApiResult<Vec<RecordLogEntry>> {
    let id = record_id.to_string();
    let entries = context
        .blocking(move |store| crate::service::transparency::record_log(store, &id, &team(store, task_id)?))
        .await?;
    let skew = context.config.max_clock_skew_ms;
    Ok(entries
        .into_iter()
        .map(|e| {
            let not_before = match (&e.signed.entry.seen_checkpoint, e.seen_tree) {
                (Some(seen), Some((root, last))) if root == seen.root => last,
                _ => None,
            };
            let interval = interval(e.signed.entry.device_time_ms, not_before, e.received_at_ms, skew);
            RecordLogEntry { signed: e.signed, leaf_index: e.leaf_index, interval }
        })
        .collect())
}

/// The team of the task `task_id`, none when there is no such task.
fn team(store: &dyn Store, task_id: Option<String>) -> StoreResult<Vec<String>> {
    Ok(match task_id {
        Some(task_id) => store.task(&task_id)?.map(|task| task.team).unwrap_or_default(),
        None => Vec::new(),
    })
}
