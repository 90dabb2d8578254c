//! What a random-inspection campaign (双随机) draws from: the entities its target filter admits,
//! the officers certified over its whole period, and the recusals between them; and the
//! campaign's period in the bureau's time zone.
//!
//! These are the registries' snapshot that [`crate::draw`] takes as its inputs. Nothing here
//! reads a clock or a database: the registries come in as data.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use schemas::{Certificate, CertificateStatus};

use crate::draw::EligibleEntity;
use crate::rules::{CertificateStanding, certificate_standing};

/// The bureau's time zone, UTC+8: a civil date's day starts at 00:00 there.
pub const BUREAU_UTC_OFFSET_HOURS: i8 = 8;

/// Which entities a campaign targets: the tiers it draws from and, when not empty, the
/// administrative divisions (6-digit codes) it is limited to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetFilter {
    pub tiers: BTreeSet<String>,
    /// Division codes; empty means every division.
    pub divisions: BTreeSet<String>,
}

/// An entity of the target registry, as the filter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryEntity<'a> {
    pub entity_id: &'a str,
    pub tier: &'a str,
    pub division_code: &'a str,
}

/// The entities `filter` admits, sorted by entity id, once each.
pub fn eligible_entities<'a>(
    entities: impl IntoIterator<Item = RegistryEntity<'a>>,
    filter: &TargetFilter,
) -> Vec<EligibleEntity> {
    let admitted: BTreeSet<EligibleEntity> = entities
        .into_iter()
        .filter(|e| filter.tiers.contains(e.tier))
        .filter(|e| filter.divisions.is_empty() || filter.divisions.contains(e.division_code))
        .map(|e| EligibleEntity { entity_id: e.entity_id.to_string(), tier: e.tier.to_string() })
        .collect();
    admitted.into_iter().collect()
}

/// Whether `certificate` is valid at every instant of `from_ms..until_ms`: valid at its start,
/// not ending before its end, and no change to another status than active inside it.
pub fn certified_throughout(certificate: &Certificate, from_ms: i64, until_ms: i64) -> bool {
    certificate_standing(certificate, from_ms) == CertificateStanding::Valid
        && crate::rules::period_covers(certificate, from_ms, until_ms)
        && certificate.status_history.iter().all(|change| {
            change.at_ms <= from_ms || change.at_ms >= until_ms || change.status == CertificateStatus::Active
        })
}

/// The officers holding a certificate valid over all of `from_ms..until_ms` (the inspector
/// registry for a campaign of that period), sorted, once each.
pub fn eligible_officers(certificates: &[Certificate], from_ms: i64, until_ms: i64) -> Vec<String> {
    let officers: BTreeSet<&str> = certificates
        .iter()
        .filter(|c| certified_throughout(c, from_ms, until_ms))
        .map(|c| c.officer_id.as_str())
        .collect();
    officers.into_iter().map(str::to_string).collect()
}

/// The recusals between the eligible officers and entities, as (officer id, entity id) pairs,
/// sorted, once each: the only ones that can bear on the draw.
pub fn relevant_recusals<'a>(
    recusals: impl IntoIterator<Item = (&'a str, &'a str)>,
    officers: &[String],
    entities: &[EligibleEntity],
) -> Vec<(String, String)> {
    let officers: BTreeSet<&str> = officers.iter().map(String::as_str).collect();
    let entities: BTreeSet<&str> = entities.iter().map(|e| e.entity_id.as_str()).collect();
    let relevant: BTreeSet<(String, String)> = recusals
        .into_iter()
        .filter(|(o, e)| officers.contains(o) && entities.contains(e))
        .map(|(o, e)| (o.to_string(), e.to_string()))
        .collect();
    relevant.into_iter().collect()
}

/// Unix milliseconds of 00:00 of `date` in the bureau's time zone.
pub fn start_of_day_ms(date: Date) -> i64 {
    let zone = TimeZone::fixed(Offset::constant(BUREAU_UTC_OFFSET_HOURS));
    // A civil date between years -9999 and 9999 always has a start of day at a fixed offset.
    date.to_zoned(zone).map(|z| z.timestamp().as_millisecond()).unwrap_or(i64::MIN)
}

/// The civil date, in the bureau's time zone, of the instant `ms` (Unix milliseconds); `None`
/// outside the range of civil dates.
pub fn date_of_ms(ms: i64) -> Option<Date> {
    let zone = TimeZone::fixed(Offset::constant(BUREAU_UTC_OFFSET_HOURS));
    jiff::Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned(zone).date())
}

/// A campaign's period from `starts_on` through `ends_on` (both included) as Unix milliseconds:
/// 00:00 of the first day to 00:00 of the day after the last, in the bureau's time zone.
pub fn period_ms(starts_on: Date, ends_on: Date) -> (i64, i64) {
    let after = ends_on.tomorrow().unwrap_or(ends_on);
    (start_of_day_ms(starts_on), start_of_day_ms(after))
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use schemas::CertificateStatusChange;

    use super::*;

    const DAY: i64 = 86_400_000;

    fn certificate(officer: &str, from: i64, until: i64, history: &[(i64, CertificateStatus)]) -> Certificate {
        Certificate {
            number: format!("GX-{officer}"),
            officer_id: officer.into(),
            issuing_authority: "厅".into(),
            valid_from_ms: from,
            valid_until_ms: until,
            status_history: history
                .iter()
                .map(|(at_ms, status)| CertificateStatusChange { at_ms: *at_ms, status: *status, reason: None })
                .collect(),
            periods: vec![],
            reviews: vec![],
        }
    }

    #[test]
    fn officers_are_eligible_only_when_certified_over_the_whole_period() {
        let (from, until) = (100 * DAY, 190 * DAY);
        use CertificateStatus::*;
        let cases: &[(&str, Certificate, bool)] = &[
            ("valid throughout", certificate("A", 0, 400 * DAY, &[]), true),
            ("valid to exactly the period's end", certificate("A", 0, until, &[]), true),
            ("expires inside the period", certificate("A", 0, until - 1, &[]), false),
            ("not yet valid at the start", certificate("A", from + 1, 400 * DAY, &[]), false),
            ("suspended before the period", certificate("A", 0, 400 * DAY, &[(50 * DAY, Suspended)]), false),
            (
                "suspended before, reinstated before",
                certificate("A", 0, 400 * DAY, &[(50 * DAY, Suspended), (60 * DAY, Active)]),
                true,
            ),
            ("suspended inside the period", certificate("A", 0, 400 * DAY, &[(150 * DAY, Suspended)]), false),
            ("revoked after the period", certificate("A", 0, 400 * DAY, &[(until, Revoked)]), true),
        ];
        for (case, certificate, eligible) in cases {
            assert_eq!(certified_throughout(certificate, from, until), *eligible, "{case}");
            let expected: Vec<String> = if *eligible { vec!["A".into()] } else { vec![] };
            assert_eq!(eligible_officers(std::slice::from_ref(certificate), from, until), expected, "{case}");
        }
    }

    #[test]
    fn an_officer_with_an_expired_and_a_renewed_certificate_is_eligible_once() {
        let certificates = [
            certificate("B", 0, 10 * DAY, &[]),
            certificate("B", 0, 400 * DAY, &[]),
            certificate("A", 0, 400 * DAY, &[]),
        ];
        assert_eq!(eligible_officers(&certificates, 100 * DAY, 190 * DAY), ["A", "B"]);
    }

    #[test]
    fn the_target_filter_admits_tiers_and_divisions() {
        let registry = [
            RegistryEntity { entity_id: "E3", tier: "key", division_code: "450203" },
            RegistryEntity { entity_id: "E1", tier: "general", division_code: "450203" },
            RegistryEntity { entity_id: "E2", tier: "key", division_code: "450223" },
            RegistryEntity { entity_id: "E4", tier: "special", division_code: "450223" },
        ];
        let filter = |tiers: &[&str], divisions: &[&str]| TargetFilter {
            tiers: tiers.iter().map(|t| t.to_string()).collect(),
            divisions: divisions.iter().map(|d| d.to_string()).collect(),
        };
        let ids = |filter: &TargetFilter| -> Vec<String> {
            eligible_entities(registry, filter).into_iter().map(|e| e.entity_id).collect()
        };
        assert_eq!(ids(&filter(&["key"], &[])), ["E2", "E3"], "every division, sorted");
        assert_eq!(ids(&filter(&["key", "special"], &["450223"])), ["E2", "E4"]);
        assert_eq!(ids(&filter(&["general"], &["450223"])), Vec::<String>::new());
        assert_eq!(ids(&filter(&[], &[])), Vec::<String>::new(), "no tier, no target");
    }

    #[test]
    fn only_recusals_between_eligible_officers_and_entities_are_kept() {
        let entities = vec![EligibleEntity { entity_id: "E1".into(), tier: "key".into() }];
        let officers = vec!["O1".to_string(), "O2".to_string()];
        let recusals = [("O2", "E1"), ("O3", "E1"), ("O1", "E9"), ("O2", "E1")];
        assert_eq!(relevant_recusals(recusals, &officers, &entities), [("O2".to_string(), "E1".to_string())]);
    }

    #[test]
    fn a_period_runs_from_midnight_to_midnight_in_utc_plus_8() {
        let (from, until) = period_ms(date(2026, 10, 1), date(2026, 12, 31));
        // 2026-10-01T00:00+08:00 is 2026-09-30T16:00Z.
        assert_eq!(from, 1_790_784_000_000);
        assert_eq!(until, start_of_day_ms(date(2027, 1, 1)));
        assert_eq!(date_of_ms(from), Some(date(2026, 10, 1)));
        assert_eq!(date_of_ms(from - 1), Some(date(2026, 9, 30)));
        assert_eq!(date_of_ms(until - 1), Some(date(2026, 12, 31)));
    }
}
