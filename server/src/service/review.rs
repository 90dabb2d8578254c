//! Changes held for review: work dated before a suspension or revocation of its officer's
//! certificate that arrived after it (P3). Its date is only the device's claim, so it is neither
//! merged nor refused silently: the record's readers see it with what the device's signed log
//! proves about that time, and a reviewer accepts it (it is merged, if the record's rules still
//! allow it) or refuses it, with a note; the decision is kept with the change.

use schemas::log::RecordLogEntry;

use crate::service::auth::Caller;
use crate::service::enforcement_log::proven_entries;
use crate::service::records::readable;
use crate::service::sync::{ReviewOutcome, ReviewRefusal, accept_held, exchange_input, nothing_new, refuse_held};
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{QuarantinedChange, ReviewDecision, StoreError, SyncJob};

/// A change held for review, with the sending device's entries of the record's log.
pub struct HeldChange {
    pub change: QuarantinedChange,
    /// The sending device's signed enforcement-log entries for the record, each with the interval
    /// the transparency log proves for it.
    pub device_log: Vec<RecordLogEntry>,
}

/// The record's changes held for review, decided or not, oldest first.
pub async fn held_changes(context: &Context, caller: &Caller, record_id: String) -> ApiResult<Vec<HeldChange>> {
    let stored = readable(context, caller, record_id.clone()).await?;
    let id = record_id.clone();
    let rows = context.blocking(move |store| store.quarantined(Some(&id))).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|row| row.reason.get("code").and_then(|c| c.as_str()) == Some("held_for_review"))
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let entries = proven_entries(context, &record_id, stored.task_id.clone()).await?;
    Ok(rows
        .into_iter()
        .map(|change| HeldChange {
            device_log: entries.iter().filter(|e| e.signed.entry.device_id == change.device_id).cloned().collect(),
            change,
        })
        .collect())
}

/// What a decision did.
pub struct Decided {
    /// `accepted` or `refused`.
    pub decision: String,
    /// What was merged, and what the rules still refuse.
    pub outcome: ReviewOutcome,
}

/// Accepts (`decision` is `accept`) or refuses (`refuse`) the held change `change_hash` of the
/// record, with the reviewer's `note`; run in the writer like a sync exchange, so that the record
/// and its quarantine change together.
pub async fn decide(
    context: &Context,
    caller: &Caller,
    record_id: String,
    change_hash: String,
    decision: &str,
    note: String,
) -> ApiResult<Decided> {
    caller.require(&["reviewer"])?;
    let note_chars = note.chars().count();
    let accept = match decision {
        "accept" => true,
        "refuse" => false,
        _ => return Err(invalid_decision("the decision is `accept` or `refuse`")),
    };
    if note.trim().is_empty() || note_chars > 4000 {
        return Err(invalid_decision("the note says why, in 1 to 4,000 characters"));
    }
    let stored = readable(context, caller, record_id.clone()).await?;
    let decision = ReviewDecision {
        decision: if accept { "accepted" } else { "refused" }.into(),
        reviewer_id: caller.officer_id.clone(),
        decided_at_ms: now_ms(),
        note,
    };
    let task_id = stored.task_id.clone().filter(|_| accept);
    let (shared, officer_id) = (context.clone(), caller.officer_id.clone());
    let input = context
        .blocking(move |store| {
            let tasks = match task_id {
                Some(task_id) => store.task(&task_id)?.into_iter().collect(),
                None => Vec::new(),
            };
            exchange_input(store, &shared, String::new(), officer_id, tasks)
        })
        .await?;
    let outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (shared, id, hash, accepted) = (outcome.clone(), record_id.clone(), change_hash.clone(), decision.clone());
    // Run in the writer like a sync exchange: the record and its quarantine change together.
    let job: SyncJob = Box::new(move |tx| {
        let result = if accept {
            accept_held(tx, &input, &id, &hash, &accepted)?
        } else {
            refuse_held(tx, &id, &hash, &accepted)?
        };
        *shared.lock().map_err(|_| StoreError::Other("poisoned".into()))? = Some(result);
        Ok(nothing_new(0))
    });
    context.blocking(move |store| crate::service::sync_commit::run_in_writer(store, job)).await?;
    let result = outcome.lock().map_err(|_| ApiError::Internal("poisoned".into()))?.take();
    match result {
        Some(Ok(outcome)) => Ok(Decided { decision: decision.decision, outcome }),
        Some(Err(ReviewRefusal::NotHeld)) => Err(ApiError::NotFound { what: "held change" }),
        Some(Err(ReviewRefusal::Rules(reason))) => Err(ApiError::Unprocessable {
            code: "refused_by_rules",
            message: "the record's rules refuse this change now; nothing was merged or decided".into(),
            details: Some(serde_json::json!({ "reason": reason })),
        }),
        None => Err(ApiError::Internal("the review job did not run".into())),
    }
}

fn invalid_decision(message: &str) -> ApiError {
    ApiError::Unprocessable { code: "invalid_decision", message: message.into(), details: None }
}
