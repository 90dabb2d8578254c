//! Certificates over time (P3): renewals as periods of their own, status changes and surrender,
//! periodic reviews and the report of those due, and the work merged before a suspension was
//! entered with a past effective time.
//!
//! The rules are `sync_core::certificates`; each use case here reads the certificate, asks the
//! rule, and writes through the `Accounts` store. The functions over `&dyn Store` are what the
//! `fieldsync-server certificate` subcommands and `check` call; the `async` ones are the admin
//! API's, with its role checks.

use std::collections::BTreeMap;

use schemas::{Certificate, CertificateReview, CertificateStatus, CertificateStatusChange};
use sync_core::certificates::{self as rules, LifeCycleProblem, SuspendedWork};

use crate::service::auth::Caller;
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{RecordFilter, Store, StoreResult};

/// The refusal of a life-cycle rule, with its code.
fn refusal(problem: LifeCycleProblem) -> ApiError {
    let (code, message) = (problem.code(), problem.to_string());
    match problem {
        LifeCycleProblem::EmptyPeriod { .. } | LifeCycleProblem::RenewalBackdated { .. } => {
            ApiError::unprocessable(code, message)
        }
        LifeCycleProblem::OverlapsPeriod { .. }
        | LifeCycleProblem::Surrendered { .. }
        | LifeCycleProblem::NotReviewable { .. } => ApiError::Conflict { code, message },
    }
}

fn stored(store: &dyn Store, number: &str) -> ApiResult<Certificate> {
    store.certificate(number)?.ok_or(ApiError::NotFound { what: "certificate" })
}

/// Refuses an instant outside 1970-01-01 to 2100-01-01.
fn check_instant(field: &'static str, ms: i64) -> ApiResult<()> {
    if (crate::service::admin::EARLIEST_VALIDITY_MS..=crate::service::admin::LATEST_VALIDITY_MS).contains(&ms) {
        return Ok(());
    }
    Err(ApiError::Unprocessable {
        code: "invalid_certificate",
        message: format!("{field} {ms} is outside 1970-01-01 to 2100-01-01"),
        details: Some(serde_json::json!({ "field": field })),
    })
}

/// P3: renews a certificate with a new validity period ending at `valid_until_ms`, starting at
/// `valid_from_ms` or, by default, where the latest period ends (now, when that has passed).
pub fn renew_in(
    store: &dyn Store,
    number: &str,
    valid_from_ms: Option<i64>,
    valid_until_ms: i64,
    by: &str,
    now: i64,
) -> ApiResult<Certificate> {
    let certificate = stored(store, number)?;
    check_instant("valid_until_ms", valid_until_ms)?;
    if let Some(from) = valid_from_ms {
        check_instant("valid_from_ms", from)?;
    }
    let period = rules::check_renewal(&certificate, valid_from_ms, valid_until_ms, now).map_err(refusal)?;
    store.renew_certificate(number, &period, by, now).map_err(|error| match error {
        crate::store::StoreError::Conflict(message) => ApiError::Conflict { code: "period_overlaps", message },
        other => other.into(),
    })?;
    stored(store, number)
}

/// Records a status change of a certificate (suspension, revocation, surrender, reinstatement);
/// none after a surrender (P3).
pub fn change_status_in(
    store: &dyn Store,
    number: &str,
    change: CertificateStatusChange,
    by: &str,
    now: i64,
) -> ApiResult<Certificate> {
    let certificate = stored(store, number)?;
    rules::check_status_change(&certificate).map_err(refusal)?;
    store.change_certificate_status(number, &change, by, now)?;
    stored(store, number)
}

/// Records a periodic review (年审) the certificate passed at `reviewed_at_ms`; it must be valid then.
pub fn review_in(
    store: &dyn Store,
    number: &str,
    review: CertificateReview,
    by: &str,
    now: i64,
) -> ApiResult<Certificate> {
    let certificate = stored(store, number)?;
    check_instant("reviewed_at_ms", review.reviewed_at_ms)?;
    if review.reviewed_at_ms > now {
        return Err(ApiError::unprocessable("review_in_future", "a review is recorded once it has passed"));
    }
    if let Some(note) = &review.note {
        sync_core::input::short_text("note", note)
            .map_err(|e| ApiError::unprocessable("invalid_note", e.to_string()))?;
    }
    rules::check_review(&certificate, review.reviewed_at_ms).map_err(refusal)?;
    store.review_certificate(number, &review, by, now)?;
    stored(store, number)
}

/// A certificate whose periodic review falls due.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReviewDue {
    pub number: String,
    pub officer_id: String,
    /// When the review falls due, Unix ms.
    pub review_due_ms: i64,
    /// When it was last reviewed, if ever.
    pub last_reviewed_ms: Option<i64>,
    /// Whether the due date has passed.
    pub overdue: bool,
}

/// Every certificate still in use whose review falls due before `now + within_ms`, soonest first.
pub fn review_due_in(
    store: &dyn Store,
    review_period_ms: i64,
    within_ms: i64,
    now: i64,
) -> StoreResult<Vec<ReviewDue>> {
    let mut due: Vec<ReviewDue> = store
        .certificates(None)?
        .iter()
        .filter_map(|c| {
            let review_due_ms = rules::review_due_ms(c, review_period_ms, now)?;
            (review_due_ms < now.saturating_add(within_ms)).then(|| ReviewDue {
                number: c.number.clone(),
                officer_id: c.officer_id.clone(),
                review_due_ms,
                last_reviewed_ms: c.reviews.iter().map(|r| r.reviewed_at_ms).max(),
                overdue: review_due_ms <= now,
            })
        })
        .collect();
    due.sort_by(|a, b| (a.review_due_ms, &a.number).cmp(&(b.review_due_ms, &b.number)));
    Ok(due)
}

/// A change merged into a record that its officer made while the certificate stood suspended,
/// revoked or surrendered (P3): flagged, neither dropped nor silently kept.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AffectedChange {
    pub change_hash: String,
    pub device_id: String,
    /// The change's own time, Unix ms.
    pub timestamp_ms: i64,
    /// `suspended`, `revoked` or `surrendered`.
    pub standing: String,
    /// When that status took effect, Unix ms.
    pub since_ms: i64,
}

/// A record with changes made while a certificate stood suspended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AffectedRecord {
    pub record_id: String,
    pub task_id: Option<String>,
    pub changes: Vec<AffectedChange>,
}

/// The records a certificate's suspension, revocation or surrender reaches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertificateAffected {
    pub number: String,
    pub officer_id: String,
    pub records: Vec<AffectedRecord>,
}

/// P3: every stored record with changes merged by the officer of `number`, through their devices'
/// actors, timestamped while that certificate stood suspended, revoked or surrendered and no
/// other certificate of theirs was valid. Only records merged since the earliest such status
/// (less the allowed clock skew) are read.
pub fn affected_in(store: &dyn Store, number: &str, max_clock_skew_ms: i64) -> ApiResult<CertificateAffected> {
    let certificates = store.certificates(None)?;
    let Some(certificate) = certificates.iter().find(|c| c.number == number) else {
        return Err(ApiError::NotFound { what: "certificate" });
    };
    let found = scan(store, &certificates, &[certificate], max_clock_skew_ms)?;
    Ok(found.into_iter().next().unwrap_or_else(|| CertificateAffected {
        number: number.to_string(),
        officer_id: certificate.officer_id.clone(),
        records: vec![],
    }))
}

/// For `check`: every certificate with a status other than active whose officer's merged work
/// falls after it, with the records it reaches, in one pass over the records.
pub fn all_affected(store: &dyn Store, max_clock_skew_ms: i64) -> StoreResult<Vec<CertificateAffected>> {
    let certificates = store.certificates(None)?;
    let targets: Vec<&Certificate> = certificates
        .iter()
        .filter(|c| c.status_history.iter().any(|change| change.status != CertificateStatus::Active))
        .collect();
    let mut found = scan(store, &certificates, &targets, max_clock_skew_ms)?;
    found.retain(|affected| !affected.records.is_empty());
    Ok(found)
}

/// The records reached by each of `targets`, in their order: one pass over the records merged
/// since the earliest status other than active among them (less the clock skew), each change by
/// a device of a target's officer judged with [`rules::made_while_suspended`] over
/// `certificates`.
fn scan(
    store: &dyn Store,
    certificates: &[Certificate],
    targets: &[&Certificate],
    max_clock_skew_ms: i64,
) -> StoreResult<Vec<CertificateAffected>> {
    let mut found: Vec<CertificateAffected> = targets
        .iter()
        .map(|c| CertificateAffected { number: c.number.clone(), officer_id: c.officer_id.clone(), records: vec![] })
        .collect();
    let Some(earliest) = targets
        .iter()
        .flat_map(|c| &c.status_history)
        .filter(|change| change.status != CertificateStatus::Active)
        .map(|change| change.at_ms)
        .min()
    else {
        return Ok(found);
    };
    let officers: std::collections::BTreeSet<&str> = targets.iter().map(|c| c.officer_id.as_str()).collect();
    // Each target officer's device actors, with the device and the officer.
    let actors: BTreeMap<Vec<u8>, (String, String)> = store
        .devices()?
        .into_iter()
        .filter(|d| officers.contains(d.officer_id.as_str()))
        .map(|d| (d.actor_id, (d.device_id, d.officer_id)))
        .collect();
    if actors.is_empty() {
        return Ok(found);
    }
    let mut after = None;
    loop {
        let page = store.records(&RecordFilter { after: after.clone(), limit: 256, ..RecordFilter::default() })?;
        let Some(last) = page.last() else { break };
        after = Some(last.record_id.clone());
        for record in page.iter().filter(|r| r.updated_at_ms >= earliest.saturating_sub(max_clock_skew_ms)) {
            let Ok(Ok(doc)) = std::panic::catch_unwind(|| automerge::Automerge::load(&record.document)) else {
                continue; // `check` reports a document that does not load.
            };
            let genesis = sync_core::document::genesis_actor(&record.record_id);
            let mut by_target: BTreeMap<usize, Vec<AffectedChange>> = BTreeMap::new();
            for change in doc.get_changes(&[]).into_iter().filter(|change| change.actor_id() != &genesis) {
                let Some((device_id, officer)) = actors.get(change.actor_id().to_bytes()) else { continue };
                let Some(work) = rules::made_while_suspended(certificates, officer, change.timestamp()) else {
                    continue;
                };
                let Some(target) = found.iter().position(|f| f.number == work.number) else { continue };
                by_target.entry(target).or_default().push(AffectedChange {
                    change_hash: change.hash().to_string(),
                    device_id: device_id.clone(),
                    timestamp_ms: change.timestamp(),
                    standing: work.standing.to_string(),
                    since_ms: work.since_ms,
                });
            }
            for (target, changes) in by_target {
                found[target].records.push(AffectedRecord {
                    record_id: record.record_id.clone(),
                    task_id: record.task_id.clone(),
                    changes,
                });
            }
        }
    }
    Ok(found)
}

/// Whether work by `officer_id` at `at_ms` was made while suspended (P3), for a record's history.
pub fn flag(certificates: &[Certificate], officer_id: &str, at_ms: i64) -> Option<SuspendedWork> {
    rules::made_while_suspended(certificates, officer_id, at_ms)
}

// The admin API's use cases.

/// Renews a certificate: for admins.
pub async fn renew(
    context: &Context,
    caller: &Caller,
    number: String,
    valid_from_ms: Option<i64>,
    valid_until_ms: i64,
) -> ApiResult<Certificate> {
    caller.require(&["admin"])?;
    let by = caller.officer_id.clone();
    context.blocking(move |store| Ok(renew_in(store, &number, valid_from_ms, valid_until_ms, &by, now_ms()))).await?
}

/// Records a status change taking effect at `at_ms` (now when `None`): for admins.
pub async fn change_status(
    context: &Context,
    caller: &Caller,
    number: String,
    status: CertificateStatus,
    at_ms: Option<i64>,
    reason: Option<String>,
) -> ApiResult<Certificate> {
    caller.require(&["admin"])?;
    let by = caller.officer_id.clone();
    context
        .blocking(move |store| {
            let now = now_ms();
            let change = CertificateStatusChange { at_ms: at_ms.unwrap_or(now), status, reason };
            Ok(change_status_in(store, &number, change, &by, now))
        })
        .await?
}

/// Records a review: for admins.
pub async fn review(
    context: &Context,
    caller: &Caller,
    number: String,
    reviewed_at_ms: Option<i64>,
    note: Option<String>,
) -> ApiResult<Certificate> {
    caller.require(&["admin"])?;
    let by = caller.officer_id.clone();
    context
        .blocking(move |store| {
            let now = now_ms();
            let review = CertificateReview { reviewed_at_ms: reviewed_at_ms.unwrap_or(now), note };
            Ok(review_in(store, &number, review, &by, now))
        })
        .await?
}

/// Most days ahead the review report looks.
pub const MAX_REVIEW_WINDOW_DAYS: i64 = 3_660;

/// The certificates due for review within `within_days` (30 when `None`): for admins and supervisors.
pub async fn review_due(context: &Context, caller: &Caller, within_days: Option<i64>) -> ApiResult<Vec<ReviewDue>> {
    caller.require(&["admin", "supervisor"])?;
    let days = within_days.unwrap_or(30);
    if !(0..=MAX_REVIEW_WINDOW_DAYS).contains(&days) {
        return Err(ApiError::unprocessable(
            "invalid_window",
            format!("within_days must be 0 to {MAX_REVIEW_WINDOW_DAYS}, not {days}"),
        ));
    }
    let period = context.config.certificate_review_period_ms;
    context.blocking(move |store| review_due_in(store, period, days * 86_400_000, now_ms())).await
}

/// The records a certificate's suspension reaches: for admins.
pub async fn affected(context: &Context, caller: &Caller, number: String) -> ApiResult<CertificateAffected> {
    caller.require(&["admin"])?;
    let skew = context.config.max_clock_skew_ms;
    context.blocking(move |store| Ok(affected_in(store, &number, skew))).await?
}
