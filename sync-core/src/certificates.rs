//! A certificate's life cycle over time (P3), as plain functions over [`schemas::Certificate`]:
//! its renewals as validity periods of their own, its surrender, its periodic review, and the
//! work an officer did while a certificate of theirs stood suspended.
//!
//! Where a certificate stands at one instant is [`crate::rules::certificate_standing`]; this module
//! says what may change it, and what a change entered late means for work already done.
//! Nothing here reads a clock: "now" is a parameter.

use std::fmt;

use schemas::{Certificate, CertificatePeriod, CertificatePeriodKind, CertificateStatus};

use crate::rules::{self, CertificateStanding};

/// Why a renewal, a surrender, a review or a status change is refused (P3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifeCycleProblem {
    /// The period would end at or before it starts.
    #[error("a period must end after it starts: {valid_from_ms}..{valid_until_ms}")]
    EmptyPeriod { valid_from_ms: i64, valid_until_ms: i64 },
    /// The period would start inside the certificate's latest period.
    #[error("the period would start at {valid_from_ms}, inside the latest period, which ends at {latest_until_ms}")]
    OverlapsPeriod { valid_from_ms: i64, latest_until_ms: i64 },
    /// The certificate had lapsed when the renewal was recorded, and the new period would start
    /// before that: the lapse would become valid after the fact.
    #[error(
        "the certificate lapsed at {lapsed_at_ms}; a renewal recorded at {now_ms} cannot start before then, at {valid_from_ms}"
    )]
    RenewalBackdated { lapsed_at_ms: i64, valid_from_ms: i64, now_ms: i64 },
    /// The certificate was surrendered: nothing changes it afterwards.
    #[error("the certificate was surrendered at {surrendered_at_ms}")]
    Surrendered { surrendered_at_ms: i64 },
    /// A review is recorded only while the certificate is valid.
    #[error("the certificate is {standing} at {at_ms}, so it cannot be reviewed then")]
    NotReviewable { standing: &'static str, at_ms: i64 },
}

impl LifeCycleProblem {
    /// The stable code of the API's refusal.
    pub fn code(&self) -> &'static str {
        match self {
            LifeCycleProblem::EmptyPeriod { .. } => "invalid_certificate",
            LifeCycleProblem::OverlapsPeriod { .. } => "period_overlaps",
            LifeCycleProblem::RenewalBackdated { .. } => "renewal_backdated",
            LifeCycleProblem::Surrendered { .. } => "certificate_surrendered",
            LifeCycleProblem::NotReviewable { .. } => "certificate_not_valid",
        }
    }
}

/// When `certificate` was surrendered, if it was.
pub fn surrendered_at(certificate: &Certificate) -> Option<i64> {
    certificate
        .status_history
        .iter()
        .filter(|change| change.status == CertificateStatus::Surrendered)
        .map(|change| change.at_ms)
        .min()
}

fn not_surrendered(certificate: &Certificate) -> Result<(), LifeCycleProblem> {
    match surrendered_at(certificate) {
        Some(surrendered_at_ms) => Err(LifeCycleProblem::Surrendered { surrendered_at_ms }),
        None => Ok(()),
    }
}

/// P3: the period a renewal recorded at `now_ms` adds, ending at `valid_until_ms` and starting at
/// `valid_from_ms` (by default where the latest period ends, or now if that is past).
///
/// A renewal never overlaps the latest period, and never starts before it is recorded when the
/// certificate had already lapsed: the time between two periods stays a lapse. A surrendered
/// certificate is not renewed.
pub fn check_renewal(
    certificate: &Certificate,
    valid_from_ms: Option<i64>,
    valid_until_ms: i64,
    now_ms: i64,
) -> Result<CertificatePeriod, LifeCycleProblem> {
    not_surrendered(certificate)?;
    let latest_until_ms = rules::validity_periods(certificate).last().map_or(i64::MIN, |p| p.1);
    let lapsed = latest_until_ms < now_ms;
    let valid_from_ms = valid_from_ms.unwrap_or(if lapsed { now_ms } else { latest_until_ms });
    if valid_from_ms < latest_until_ms {
        return Err(LifeCycleProblem::OverlapsPeriod { valid_from_ms, latest_until_ms });
    }
    if lapsed && valid_from_ms < now_ms {
        return Err(LifeCycleProblem::RenewalBackdated { lapsed_at_ms: latest_until_ms, valid_from_ms, now_ms });
    }
    if valid_until_ms <= valid_from_ms {
        return Err(LifeCycleProblem::EmptyPeriod { valid_from_ms, valid_until_ms });
    }
    Ok(CertificatePeriod { kind: CertificatePeriodKind::Renewed, valid_from_ms, valid_until_ms })
}

/// P3: whether a status change may be recorded on `certificate`: none after a surrender, whose
/// own record is final.
pub fn check_status_change(certificate: &Certificate) -> Result<(), LifeCycleProblem> {
    not_surrendered(certificate)
}

/// P3: whether a periodic review passed at `at_ms` may be recorded: the certificate is valid then.
pub fn check_review(certificate: &Certificate, at_ms: i64) -> Result<(), LifeCycleProblem> {
    not_surrendered(certificate)?;
    match rules::certificate_standing(certificate, at_ms) {
        CertificateStanding::Valid => Ok(()),
        standing => Err(LifeCycleProblem::NotReviewable { standing: standing.as_str(), at_ms }),
    }
}

/// P3: when `certificate` is next due for its periodic review, every `review_period_ms` (the
/// bureau's rule, e.g. yearly) after its latest review or the start of its latest period,
/// whichever is later. `None` for a certificate surrendered or revoked by `now_ms`, or whose
/// validity ended by then: there is nothing left to review.
pub fn review_due_ms(certificate: &Certificate, review_period_ms: i64, now_ms: i64) -> Option<i64> {
    if matches!(rules::status_at(certificate, now_ms), CertificateStatus::Surrendered | CertificateStatus::Revoked) {
        return None;
    }
    let latest = *rules::validity_periods(certificate).last()?;
    if latest.1 <= now_ms {
        return None;
    }
    let reviewed = certificate.reviews.iter().map(|r| r.reviewed_at_ms).max().unwrap_or(i64::MIN);
    Some(reviewed.max(latest.0).saturating_add(review_period_ms))
}

/// Work made while a certificate of its officer stood suspended, revoked or surrendered (P3).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SuspendedWork {
    /// The certificate whose status change the work falls after.
    pub number: String,
    /// `suspended`, `revoked` or `surrendered`.
    pub standing: &'static str,
    /// When that status took effect, Unix ms.
    pub since_ms: i64,
}

impl fmt::Display for SuspendedWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "certificate {} {} since {}", self.number, self.standing, self.since_ms)
    }
}

/// P3: whether work by `officer_id` timestamped `at_ms` was made while their certificate stood
/// suspended, revoked or surrendered, and no other certificate of theirs was valid: the
/// certificate and the status change it falls after. Work on an expired certificate is not
/// this: validation refuses it whenever it arrives, while a status entered with a past time
/// cannot reach work merged before it was entered.
pub fn made_while_suspended(certificates: &[Certificate], officer_id: &str, at_ms: i64) -> Option<SuspendedWork> {
    if rules::officer_standing(certificates, officer_id, at_ms) == CertificateStanding::Valid {
        return None;
    }
    certificates
        .iter()
        .filter(|c| c.officer_id == officer_id)
        .filter_map(|c| {
            let change = c.status_history.iter().filter(|change| change.at_ms <= at_ms).max_by_key(|ch| ch.at_ms)?;
            let standing = match change.status {
                CertificateStatus::Suspended => CertificateStanding::Suspended,
                CertificateStatus::Revoked => CertificateStanding::Revoked,
                CertificateStatus::Surrendered => CertificateStanding::Surrendered,
                CertificateStatus::Active => return None,
            };
            Some(SuspendedWork { number: c.number.clone(), standing: standing.as_str(), since_ms: change.at_ms })
        })
        .max_by_key(|work| (work.since_ms, work.number.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{CertificateReview, CertificateStatusChange};

    const DAY: i64 = 86_400_000;
    const YEAR: i64 = 365 * DAY;
    const JAN_2026: i64 = 1_767_225_600_000;

    fn period(kind: CertificatePeriodKind, from: i64, until: i64) -> CertificatePeriod {
        CertificatePeriod { kind, valid_from_ms: from, valid_until_ms: until }
    }

    /// O1's certificate C1, issued for 2026 and renewed after a 10-day lapse for 2027.
    fn renewed_after_lapse() -> Certificate {
        Certificate {
            number: "C1".into(),
            officer_id: "O1".into(),
            issuing_authority: "柳州市生态环境局".into(),
            valid_from_ms: JAN_2026,
            valid_until_ms: JAN_2026 + 2 * YEAR,
            status_history: vec![],
            periods: vec![
                period(CertificatePeriodKind::Issued, JAN_2026, JAN_2026 + YEAR),
                period(CertificatePeriodKind::Renewed, JAN_2026 + YEAR + 10 * DAY, JAN_2026 + 2 * YEAR),
            ],
            reviews: vec![],
        }
    }

    fn with_status(mut certificate: Certificate, changes: &[(i64, CertificateStatus)]) -> Certificate {
        certificate.status_history = changes
            .iter()
            .map(|(at_ms, status)| CertificateStatusChange { at_ms: *at_ms, status: *status, reason: None })
            .collect();
        certificate
    }

    #[test]
    fn p2_p3_every_act_is_judged_by_the_period_that_held_at_its_time() {
        let certificate = renewed_after_lapse();
        let cases = [
            ("before the first period", JAN_2026 - 1, CertificateStanding::NotYetValid),
            ("first period", JAN_2026 + DAY, CertificateStanding::Valid),
            ("last instant of the first period", JAN_2026 + YEAR - 1, CertificateStanding::Valid),
            ("the gap's first instant", JAN_2026 + YEAR, CertificateStanding::Expired),
            ("inside the gap", JAN_2026 + YEAR + 5 * DAY, CertificateStanding::Expired),
            ("the renewed period's start", JAN_2026 + YEAR + 10 * DAY, CertificateStanding::Valid),
            ("after the last period", JAN_2026 + 2 * YEAR, CertificateStanding::Expired),
        ];
        for (name, at, expected) in cases {
            assert_eq!(rules::certificate_standing(&certificate, at), expected, "{name}");
        }
        // Without periods, the bounds are the one period (a certificate from an older server).
        let mut bounds_only = renewed_after_lapse();
        bounds_only.periods.clear();
        assert_eq!(rules::certificate_standing(&bounds_only, JAN_2026 + YEAR + 5 * DAY), CertificateStanding::Valid);
        assert!(!rules::period_covers(&certificate, JAN_2026 + DAY, JAN_2026 + YEAR + 20 * DAY));
        assert!(rules::period_covers(&certificate, JAN_2026 + YEAR + 10 * DAY, JAN_2026 + 2 * YEAR));
    }

    #[test]
    fn p3_a_renewal_never_makes_a_lapse_valid_after_the_fact() {
        let issued = |until: i64| Certificate {
            periods: vec![period(CertificatePeriodKind::Issued, JAN_2026, until)],
            ..renewed_after_lapse()
        };
        let until = JAN_2026 + YEAR;
        let new_until = JAN_2026 + 3 * YEAR;
        type Case = (&'static str, Certificate, Option<i64>, i64, Result<(i64, i64), &'static str>);
        let cases: Vec<Case> = vec![
            ("renewed while valid continues the period", issued(until), None, until - DAY, Ok((until, new_until))),
            (
                "renewed after a lapse starts when recorded",
                issued(until),
                None,
                until + 10 * DAY,
                Ok((until + 10 * DAY, new_until)),
            ),
            (
                "a lapsed one backdated to its end",
                issued(until),
                Some(until),
                until + 10 * DAY,
                Err("renewal_backdated"),
            ),
            (
                "a lapsed one backdated inside the lapse",
                issued(until),
                Some(until + DAY),
                until + 10 * DAY,
                Err("renewal_backdated"),
            ),
            (
                "a lapsed one from a later day",
                issued(until),
                Some(until + 20 * DAY),
                until + 10 * DAY,
                Ok((until + 20 * DAY, new_until)),
            ),
            (
                "overlapping the latest period",
                issued(until),
                Some(until - DAY),
                until - 2 * DAY,
                Err("period_overlaps"),
            ),
            ("a gap chosen ahead of time", issued(until), Some(until + DAY), until - DAY, Ok((until + DAY, new_until))),
            ("ending before it starts", issued(new_until + YEAR), None, until, Err("invalid_certificate")),
            (
                "surrendered",
                with_status(issued(until), &[(JAN_2026 + DAY, CertificateStatus::Surrendered)]),
                None,
                until - DAY,
                Err("certificate_surrendered"),
            ),
        ];
        for (name, certificate, from, now, expected) in cases {
            let result = check_renewal(&certificate, from, new_until, now)
                .map(|p| (p.valid_from_ms, p.valid_until_ms))
                .map_err(|problem| problem.code());
            assert_eq!(result, expected, "{name}");
        }
    }

    #[test]
    fn p3_a_surrender_is_final() {
        let surrendered = with_status(renewed_after_lapse(), &[(JAN_2026 + DAY, CertificateStatus::Surrendered)]);
        let suspended = with_status(renewed_after_lapse(), &[(JAN_2026 + DAY, CertificateStatus::Suspended)]);
        let cases = [
            ("a surrendered one", &surrendered, Err("certificate_surrendered")),
            ("an active one", &renewed_after_lapse(), Ok(())),
            ("a suspended one", &suspended, Ok(())),
        ];
        for (name, certificate, expected) in cases {
            assert_eq!(check_status_change(certificate).map_err(|p| p.code()), expected, "{name}");
        }
        assert_eq!(
            check_renewal(&surrendered, None, JAN_2026 + 3 * YEAR, JAN_2026 + 2 * DAY).map_err(|p| p.code()),
            Err("certificate_surrendered")
        );
        assert_eq!(
            check_review(&surrendered, JAN_2026 + 2 * DAY).map_err(|p| p.code()),
            Err("certificate_surrendered")
        );
        assert_eq!(surrendered_at(&surrendered), Some(JAN_2026 + DAY));
        assert_eq!(rules::certificate_standing(&surrendered, JAN_2026 + 2 * DAY), CertificateStanding::Surrendered);
    }

    #[test]
    fn p3_the_periodic_review_falls_due_a_review_period_after_the_latest_review_or_period() {
        let reviewed = |at: i64| Certificate {
            reviews: vec![CertificateReview { reviewed_at_ms: at, note: None }],
            ..renewed_after_lapse()
        };
        let renewed_at = JAN_2026 + YEAR + 10 * DAY;
        let now = JAN_2026 + YEAR + 20 * DAY;
        let cases = [
            (
                "never reviewed: a year after the latest period began",
                renewed_after_lapse(),
                now,
                Some(renewed_at + YEAR),
            ),
            ("reviewed since", reviewed(renewed_at + 30 * DAY), now, Some(renewed_at + 30 * DAY + YEAR)),
            ("a review before the renewal counts less", reviewed(JAN_2026 + 100 * DAY), now, Some(renewed_at + YEAR)),
            ("expired: nothing to review", renewed_after_lapse(), JAN_2026 + 2 * YEAR, None),
            (
                "surrendered: nothing to review",
                with_status(renewed_after_lapse(), &[(now - DAY, CertificateStatus::Surrendered)]),
                now,
                None,
            ),
            (
                "suspended: still to review",
                with_status(renewed_after_lapse(), &[(now - DAY, CertificateStatus::Suspended)]),
                now,
                Some(renewed_at + YEAR),
            ),
        ];
        for (name, certificate, now, expected) in cases {
            assert_eq!(review_due_ms(&certificate, YEAR, now), expected, "{name}");
        }
        let cases = [
            ("valid", renewed_after_lapse(), JAN_2026 + DAY, Ok(())),
            ("in the lapse", renewed_after_lapse(), JAN_2026 + YEAR + DAY, Err("certificate_not_valid")),
            (
                "suspended",
                with_status(renewed_after_lapse(), &[(JAN_2026, CertificateStatus::Suspended)]),
                JAN_2026 + DAY,
                Err("certificate_not_valid"),
            ),
        ];
        for (name, certificate, at, expected) in cases {
            assert_eq!(check_review(&certificate, at).map_err(|p| p.code()), expected, "{name}");
        }
    }

    #[test]
    fn p3_work_after_a_backdated_suspension_is_flagged_and_work_before_it_stays_valid() {
        let suspended_at = JAN_2026 + 100 * DAY;
        let c1 = with_status(
            renewed_after_lapse(),
            &[(suspended_at, CertificateStatus::Suspended), (suspended_at + 10 * DAY, CertificateStatus::Active)],
        );
        let mut other = with_status(renewed_after_lapse(), &[]);
        other.number = "C9".into();
        other.officer_id = "O9".into();
        let flagged =
            |standing: &'static str, since_ms: i64| Some(SuspendedWork { number: "C1".into(), standing, since_ms });
        let cases = [
            ("before the suspension", vec![c1.clone()], "O1", suspended_at - 1, None),
            ("at the suspension", vec![c1.clone()], "O1", suspended_at, flagged("suspended", suspended_at)),
            ("while suspended", vec![c1.clone()], "O1", suspended_at + DAY, flagged("suspended", suspended_at)),
            ("after reinstatement", vec![c1.clone()], "O1", suspended_at + 10 * DAY, None),
            ("in a lapse, not a suspension", vec![c1.clone()], "O1", JAN_2026 + YEAR + DAY, None),
            ("another officer", vec![c1.clone(), other], "O9", suspended_at + DAY, None),
            (
                "revoked",
                vec![with_status(renewed_after_lapse(), &[(suspended_at, CertificateStatus::Revoked)])],
                "O1",
                suspended_at + DAY,
                flagged("revoked", suspended_at),
            ),
        ];
        for (name, certificates, officer, at, expected) in cases {
            assert_eq!(made_while_suspended(&certificates, officer, at), expected, "{name}");
        }
        // A second certificate of the officer valid at the time keeps the work valid.
        let mut second = renewed_after_lapse();
        second.number = "C2".into();
        assert_eq!(made_while_suspended(&[c1, second], "O1", suspended_at + DAY), None);
    }
}
