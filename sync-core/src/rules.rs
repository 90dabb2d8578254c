//! The rules of who may act, as plain functions over data.
//!
//! Certificates come in as [`schemas::Certificate`] rows; the record comes in
//! as its typed view. Nothing here reads a clock: every instant is a
//! parameter. Rule ids (P1, P2, P3, P4, C7) are those of `DOMAIN.md`.

use std::collections::BTreeSet;
use std::fmt;

use schemas::{
    Certificate, CertificateStatus, InspectionRecord, MeasureKind, OfficerSignature, PartySignature, PersonRole,
    RecordStatus,
};

/// Where a certificate stands at an instant (P2, P3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateStanding {
    Valid,
    NotYetValid,
    Expired,
    Suspended,
    Revoked,
    Surrendered,
    /// No certificate with this number is known for this officer.
    Unknown,
}

impl CertificateStanding {
    /// The snake_case name used in rejection reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStanding::Valid => "valid",
            CertificateStanding::NotYetValid => "not_yet_valid",
            CertificateStanding::Expired => "expired",
            CertificateStanding::Suspended => "suspended",
            CertificateStanding::Revoked => "revoked",
            CertificateStanding::Surrendered => "surrendered",
            CertificateStanding::Unknown => "unknown",
        }
    }
}

/// Where `certificate` stands at `at_ms`: its status at that instant, then whether one of its
/// validity periods holds it (P2, P3).
pub fn certificate_standing(certificate: &Certificate, at_ms: i64) -> CertificateStanding {
    match status_at(certificate, at_ms) {
        CertificateStatus::Revoked => return CertificateStanding::Revoked,
        CertificateStatus::Suspended => return CertificateStanding::Suspended,
        CertificateStatus::Surrendered => return CertificateStanding::Surrendered,
        CertificateStatus::Active => {}
    }
    let periods = validity_periods(certificate);
    if periods.first().is_none_or(|first| at_ms < first.0) {
        CertificateStanding::NotYetValid
    } else if periods.iter().any(|(from, until)| (*from..*until).contains(&at_ms)) {
        CertificateStanding::Valid
    } else {
        // After the last period, or in a gap between two: a renewal never covers a lapse (P3).
        CertificateStanding::Expired
    }
}

/// The validity periods of `certificate`, `(from, until)` in time order (P3): its periods, or
/// the one its bounds name when it has none.
pub fn validity_periods(certificate: &Certificate) -> Vec<(i64, i64)> {
    if certificate.periods.is_empty() {
        return vec![(certificate.valid_from_ms, certificate.valid_until_ms)];
    }
    let mut periods: Vec<(i64, i64)> =
        certificate.periods.iter().map(|p| (p.valid_from_ms, p.valid_until_ms)).collect();
    periods.sort();
    periods
}

/// Whether some period of `certificate` covers all of `from_ms..until_ms`: no lapse inside.
pub fn period_covers(certificate: &Certificate, from_ms: i64, until_ms: i64) -> bool {
    validity_periods(certificate).iter().any(|(from, until)| *from <= from_ms && until_ms <= *until)
}

/// The status of `certificate` in effect at `at_ms`: that of its latest change at or before it.
pub fn status_at(certificate: &Certificate, at_ms: i64) -> CertificateStatus {
    certificate
        .status_history
        .iter()
        .filter(|change| change.at_ms <= at_ms)
        .max_by_key(|change| change.at_ms)
        .map_or(CertificateStatus::Active, |change| change.status)
}

/// The best standing any certificate of `officer_id` has at `at_ms` (an officer may hold a renewed one).
pub fn officer_standing(certificates: &[Certificate], officer_id: &str, at_ms: i64) -> CertificateStanding {
    standing_of(certificates.iter().filter(|c| c.officer_id == officer_id), at_ms)
}

/// The standing of the certificate numbered `number`, held by `officer_id`, at `at_ms`.
pub fn certificate_valid_on(
    certificates: &[Certificate],
    officer_id: &str,
    number: &str,
    at_ms: i64,
) -> CertificateStanding {
    standing_of(certificates.iter().filter(|c| c.officer_id == officer_id && c.number == number), at_ms)
}

fn standing_of<'a>(certificates: impl Iterator<Item = &'a Certificate>, at_ms: i64) -> CertificateStanding {
    let mut best = CertificateStanding::Unknown;
    for certificate in certificates {
        let standing = certificate_standing(certificate, at_ms);
        if standing == CertificateStanding::Valid {
            return standing;
        }
        // Any known certificate says more than none; a suspension says more than an expiry.
        if best == CertificateStanding::Unknown || standing != CertificateStanding::Expired {
            best = standing;
        }
    }
    best
}

/// When the officer, certified at `from_ms`, stands suspended or revoked at `to_ms` by a status
/// change that took effect after `from_ms`: that standing and the latest such change's time.
/// An officer reinstated by `to_ms`, or whose certificate merely expired, is not.
pub fn suspended_since(
    certificates: &[Certificate],
    officer_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Option<(CertificateStanding, i64)> {
    let standing = officer_standing(certificates, officer_id, to_ms);
    if !matches!(standing, CertificateStanding::Suspended | CertificateStanding::Revoked) {
        return None;
    }
    certificates
        .iter()
        .filter(|c| c.officer_id == officer_id)
        .flat_map(|c| &c.status_history)
        .filter(|change| matches!(change.status, CertificateStatus::Suspended | CertificateStatus::Revoked))
        .filter(|change| change.at_ms > from_ms && change.at_ms <= to_ms)
        .map(|change| change.at_ms)
        .max()
        .map(|since| (standing, since))
}

/// The rule a signature would break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningRule {
    /// Fewer than two distinct certificates shown and valid on the record's date.
    P1,
    /// The signer's certificate was not shown, or is not valid.
    P2,
    /// A legally significant field has an open conflict.
    OpenConflict,
    /// The signer is not among the officers present.
    NotPresent,
    /// The signer already signed.
    AlreadySigned,
    /// The record is locked.
    Locked,
    /// The record lacks what a complete record holds ([`missing_for_lock`]: C7, P4).
    Incomplete,
}

impl SigningRule {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningRule::P1 => "P1",
            SigningRule::P2 => "P2",
            SigningRule::OpenConflict => "open_conflict",
            SigningRule::NotPresent => "not_present",
            SigningRule::AlreadySigned => "already_signed",
            SigningRule::Locked => "locked",
            SigningRule::Incomplete => "incomplete_record",
        }
    }
}

/// Why a signature is not allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SigningRefusal {
    pub rule: SigningRule,
    pub detail: String,
}

impl fmt::Display for SigningRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule.as_str(), self.detail)
    }
}

fn refuse(rule: SigningRule, detail: impl Into<String>) -> SigningRefusal {
    SigningRefusal { rule, detail: detail.into() }
}

/// The instant whose certificates count for the record: its start time, else the signing time.
pub fn record_date(record: &InspectionRecord, at_ms: i64) -> i64 {
    record.header.started_at_ms.unwrap_or(at_ms)
}

/// Whether `signer` may sign `record` at `at_ms`, and the signature to write if so.
///
/// P1: at least two distinct certificate numbers among officers present whose certificates were
/// shown and are valid on the record's date. P2: the signer is present, showed a certificate,
/// and it is valid on the record's date and when signing. No legally significant conflict may be open.
pub fn check_signing(
    record: &InspectionRecord,
    signer: &str,
    at_ms: i64,
    certificates: &[Certificate],
) -> Result<OfficerSignature, SigningRefusal> {
    if record.status == RecordStatus::Locked {
        return Err(refuse(SigningRule::Locked, "the record is locked"));
    }
    if record.signatures.iter().any(|s| s.officer_id == signer) {
        return Err(refuse(SigningRule::AlreadySigned, format!("{signer} has already signed")));
    }
    if let Some(conflict) = record.conflicts.iter().find(|c| c.legally_significant) {
        return Err(refuse(SigningRule::OpenConflict, format!("{} has an open conflict", conflict.field)));
    }
    let Some(present) = record.officers_present.iter().find(|o| o.officer_id == signer) else {
        return Err(refuse(SigningRule::NotPresent, format!("{signer} is not among the officers present")));
    };
    if !present.certificate_shown {
        return Err(refuse(
            SigningRule::P2,
            format!("{signer} did not show certificate {}", present.certificate_number),
        ));
    }
    let date = record_date(record, at_ms);
    for instant in [date, at_ms] {
        let standing = certificate_valid_on(certificates, signer, &present.certificate_number, instant);
        if standing != CertificateStanding::Valid {
            return Err(refuse(
                SigningRule::P2,
                format!("certificate {} of {signer} is {} at {instant}", present.certificate_number, standing.as_str()),
            ));
        }
    }
    let valid: BTreeSet<&str> = record
        .officers_present
        .iter()
        .filter(|o| o.certificate_shown)
        .filter(|o| {
            certificate_valid_on(certificates, &o.officer_id, &o.certificate_number, date) == CertificateStanding::Valid
        })
        .map(|o| o.certificate_number.as_str())
        .collect();
    if valid.len() < 2 {
        return Err(refuse(
            SigningRule::P1,
            format!("{} distinct certificate(s) shown and valid on the record's date, at least 2 needed", valid.len()),
        ));
    }
    Ok(OfficerSignature {
        officer_id: signer.to_string(),
        certificate_number: present.certificate_number.clone(),
        signed_at_ms: at_ms,
    })
}

/// Whether the officers in `signed` cover every officer present, of whom there are at least two:
/// the moment a record locks.
pub fn all_present_signed(record: &InspectionRecord, signed: &[&str]) -> bool {
    record.officers_present.len() >= 2
        && record.officers_present.iter().all(|o| signed.contains(&o.officer_id.as_str()))
}

/// What a bureau asks of a complete record beyond the law's minimum ([local]): until the
/// bureau's settings hold it, a parameter whose default is `DOMAIN.md`'s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompletenessPolicy {
    /// Every refusal to sign needs a witness who signed. By default (`false`) only the records of
    /// a seal or seizure do, as the law asks (C7: refusal noted, witness); on the others the
    /// refusal noted is enough.
    pub witness_for_every_refusal: bool,
}

/// What the record lacks before it may be signed and locked, each item by a stable name (the
/// field path of conflicts and resolutions), in this order:
///
/// - `header/ended_at_ms`: no end time, or one before the start;
/// - `recusal/asked`, `recusal/answer`: the recusal question not put, or its answer not written (P4);
/// - `people_present/<person id>/signature`: a person present who neither signed nor had their
///   refusal noted (an empty note notes nothing) (C7);
/// - `people_present/witness`: a refusal that needs a witness ([`CompletenessPolicy`]), and no
///   person present as a witness who signed (C7);
/// - `header/conclusion`: no conclusion.
///
/// The content is frozen from the first signature on, so this holds at every signature as well
/// as at the lock: a record signed incomplete could never be completed.
pub fn missing_for_lock(record: &InspectionRecord, policy: &CompletenessPolicy) -> Vec<String> {
    let blank = |text: &Option<String>| text.as_deref().is_none_or(|t| t.trim().is_empty());
    let mut missing = Vec::new();
    let ended = match (record.header.started_at_ms, record.header.ended_at_ms) {
        (_, None) => false,
        (Some(start), Some(end)) => end >= start,
        (None, Some(_)) => true,
    };
    if !ended {
        missing.push("header/ended_at_ms".to_string());
    }
    if record.recusal.asked != Some(true) {
        missing.push("recusal/asked".to_string());
    }
    if blank(&record.recusal.answer) {
        missing.push("recusal/answer".to_string());
    }
    let mut refused = false;
    for person in &record.people_present {
        match &person.signature {
            PartySignature::Signed { .. } => {}
            PartySignature::Refused { note } if !note.trim().is_empty() => refused = true,
            PartySignature::Refused { .. } | PartySignature::NotYet => {
                missing.push(format!("people_present/{}/signature", person.person_id));
            }
        }
    }
    let sealed = record.measures.iter().any(|m| m.kind == MeasureKind::SealOrSeizure);
    let witnessed = record
        .people_present
        .iter()
        .any(|p| p.role == PersonRole::Witness && matches!(p.signature, PartySignature::Signed { .. }));
    if refused && (sealed || policy.witness_for_every_refusal) && !witnessed {
        missing.push("people_present/witness".to_string());
    }
    if blank(&record.header.conclusion) {
        missing.push("header/conclusion".to_string());
    }
    missing
}

/// The refusal naming what the record lacks ([`missing_for_lock`]), if it lacks anything: rule
/// `incomplete_record`, detail `missing: ` and the items' names separated by `, `.
pub fn check_complete(record: &InspectionRecord, policy: &CompletenessPolicy) -> Result<(), SigningRefusal> {
    let missing = missing_for_lock(record, policy);
    if missing.is_empty() {
        return Ok(());
    }
    Err(refuse(SigningRule::Incomplete, format!("{INCOMPLETE_PREFIX}{}", missing.join(", "))))
}

const INCOMPLETE_PREFIX: &str = "missing: ";

/// The items named by an `incomplete_record` refusal's detail ([`check_complete`]).
pub fn missing_items(detail: &str) -> Vec<String> {
    detail
        .strip_prefix(INCOMPLETE_PREFIX)
        .map(|items| items.split(", ").map(str::to_string).collect())
        .unwrap_or_default()
}

/// P2: whether the record's statement that the party refused the inspection stands on the law:
/// the party may refuse when no certificate is shown, so every officer the refusal names is
/// present and did not show their certificate. A record without a refusal passes. The error
/// names the first officer who breaks it.
pub fn check_refusal(record: &InspectionRecord) -> Result<(), String> {
    let Some(refusal) = &record.header.inspection_refused else { return Ok(()) };
    if refusal.officer_ids.is_empty() {
        return Err(String::new());
    }
    for officer in &refusal.officer_ids {
        match record.officers_present.iter().find(|o| &o.officer_id == officer) {
            Some(present) if !present.certificate_shown => {}
            _ => return Err(officer.clone()),
        }
    }
    Ok(())
}

/// Why a team may not be given a task.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TeamProblem {
    /// P1: fewer than two distinct officers with a valid certificate.
    #[error("P1: {valid} officer(s) with a valid certificate, at least 2 needed")]
    TooFewCertified { valid: usize },
    /// P2/P3: an officer without a valid certificate at the start of the task.
    #[error("P2: {officer_id}'s certificate is {standing}")]
    NotCertified { officer_id: String, standing: &'static str },
    /// P4: an officer recused from the entity.
    #[error("P4: {officer_id} is recused from this entity")]
    Recused { officer_id: String },
    #[error("{officer_id} is on the team twice")]
    Duplicate { officer_id: String },
}

/// Whether `team` may inspect an entity from whose inspection `recused` officers are excluded,
/// with the certificates as they stand at `at_ms` (the start of the task's window). P1, P2, P4.
pub fn check_team(
    team: &[String],
    certificates: &[Certificate],
    recused: &[String],
    at_ms: i64,
) -> Result<(), TeamProblem> {
    let mut seen = BTreeSet::new();
    for officer in team {
        if !seen.insert(officer.as_str()) {
            return Err(TeamProblem::Duplicate { officer_id: officer.clone() });
        }
        if recused.contains(officer) {
            return Err(TeamProblem::Recused { officer_id: officer.clone() });
        }
        let standing = officer_standing(certificates, officer, at_ms);
        if standing != CertificateStanding::Valid {
            return Err(TeamProblem::NotCertified { officer_id: officer.clone(), standing: standing.as_str() });
        }
    }
    let certified: BTreeSet<&str> = certificates
        .iter()
        .filter(|c| team.contains(&c.officer_id) && certificate_standing(c, at_ms) == CertificateStanding::Valid)
        .map(|c| c.officer_id.as_str())
        .collect();
    if certified.len() < 2 {
        return Err(TeamProblem::TooFewCertified { valid: certified.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{CertificateStatusChange, OfficerPresent};

    const DAY: i64 = 86_400_000;
    const JAN_2026: i64 = 1_767_225_600_000;

    fn certificate(officer: &str, number: &str, until: i64, history: Vec<(i64, CertificateStatus)>) -> Certificate {
        Certificate {
            number: number.into(),
            officer_id: officer.into(),
            issuing_authority: "柳州市生态环境局".into(),
            valid_from_ms: JAN_2026 - 365 * DAY,
            valid_until_ms: until,
            status_history: history
                .into_iter()
                .map(|(at_ms, status)| CertificateStatusChange { at_ms, status, reason: None })
                .collect(),
            periods: vec![],
            reviews: vec![],
        }
    }

    fn record(officers: &[(&str, &str, bool)]) -> InspectionRecord {
        InspectionRecord {
            schema_version: 1,
            record_id: "r".into(),
            header: schemas::RecordHeader { started_at_ms: Some(JAN_2026 + 10 * DAY), ..Default::default() },
            entity: Default::default(),
            officers_present: officers
                .iter()
                .map(|(id, number, shown)| OfficerPresent {
                    officer_id: id.to_string(),
                    name: id.to_string(),
                    certificate_number: number.to_string(),
                    certificate_shown: *shown,
                })
                .collect(),
            people_present: vec![],
            recusal: Default::default(),
            checklist: vec![],
            observations: String::new(),
            photos: vec![],
            samples: vec![],
            measures: vec![],
            signatures: vec![],
            resolutions: vec![],
            status: RecordStatus::Draft,
            conflicts: vec![],
        }
    }

    #[test]
    fn p2_p3_certificate_standing_follows_validity_and_status_history() {
        let far = JAN_2026 + 1000 * DAY;
        let cases = [
            ("valid", certificate("O1", "C1", far, vec![]), JAN_2026, CertificateStanding::Valid),
            (
                "before issue",
                certificate("O1", "C1", far, vec![]),
                JAN_2026 - 400 * DAY,
                CertificateStanding::NotYetValid,
            ),
            ("expired", certificate("O1", "C1", JAN_2026, vec![]), JAN_2026, CertificateStanding::Expired),
            (
                "suspended later: valid before",
                certificate("O1", "C1", far, vec![(JAN_2026 + DAY, CertificateStatus::Suspended)]),
                JAN_2026,
                CertificateStanding::Valid,
            ),
            (
                "suspended",
                certificate("O1", "C1", far, vec![(JAN_2026 + DAY, CertificateStatus::Suspended)]),
                JAN_2026 + 2 * DAY,
                CertificateStanding::Suspended,
            ),
            (
                "reinstated",
                certificate(
                    "O1",
                    "C1",
                    far,
                    vec![
                        (JAN_2026 + DAY, CertificateStatus::Suspended),
                        (JAN_2026 + 3 * DAY, CertificateStatus::Active),
                    ],
                ),
                JAN_2026 + 4 * DAY,
                CertificateStanding::Valid,
            ),
            (
                "revoked",
                certificate("O1", "C1", far, vec![(JAN_2026, CertificateStatus::Revoked)]),
                JAN_2026,
                CertificateStanding::Revoked,
            ),
        ];
        for (name, certificate, at, expected) in cases {
            assert_eq!(certificate_standing(&certificate, at), expected, "{name}");
        }
    }

    #[test]
    fn p1_p2_signing_rules() {
        let far = JAN_2026 + 1000 * DAY;
        let certificates = vec![
            certificate("O1", "C1", far, vec![]),
            certificate("O2", "C2", far, vec![]),
            certificate("O3", "C3", JAN_2026, vec![]),
            certificate("O4", "C4", far, vec![(JAN_2026 + 5 * DAY, CertificateStatus::Suspended)]),
        ];
        let at = JAN_2026 + 10 * DAY;
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str, bool)>, &'a str, Option<SigningRule>);
        let cases: Vec<Case> = vec![
            ("two shown and valid", vec![("O1", "C1", true), ("O2", "C2", true)], "O1", None),
            ("P1 one officer", vec![("O1", "C1", true)], "O1", Some(SigningRule::P1)),
            ("P1 one certificate twice", vec![("O1", "C1", true), ("O2", "C1", true)], "O1", Some(SigningRule::P1)),
            ("P1 other not shown", vec![("O1", "C1", true), ("O2", "C2", false)], "O1", Some(SigningRule::P1)),
            ("P1 other expired", vec![("O1", "C1", true), ("O3", "C3", true)], "O1", Some(SigningRule::P1)),
            ("P1 other suspended", vec![("O1", "C1", true), ("O4", "C4", true)], "O1", Some(SigningRule::P1)),
            ("P2 signer not shown", vec![("O1", "C1", false), ("O2", "C2", true)], "O1", Some(SigningRule::P2)),
            ("P2 signer expired", vec![("O3", "C3", true), ("O2", "C2", true)], "O3", Some(SigningRule::P2)),
            ("P2 signer suspended", vec![("O4", "C4", true), ("O2", "C2", true)], "O4", Some(SigningRule::P2)),
            (
                "P2 certificate of someone else",
                vec![("O1", "C2", true), ("O2", "C2", true)],
                "O1",
                Some(SigningRule::P2),
            ),
            ("not present", vec![("O1", "C1", true), ("O2", "C2", true)], "O9", Some(SigningRule::NotPresent)),
            (
                "three officers, one expired",
                vec![("O1", "C1", true), ("O2", "C2", true), ("O3", "C3", true)],
                "O2",
                None,
            ),
        ];
        for (name, officers, signer, expected) in cases {
            let result = check_signing(&record(&officers), signer, at, &certificates);
            assert_eq!(result.as_ref().err().map(|r| r.rule), expected, "{name}: {result:?}");
        }
    }

    #[test]
    fn p1_signing_is_refused_with_an_open_legally_significant_conflict_only() {
        let far = JAN_2026 + 1000 * DAY;
        let certificates = vec![certificate("O1", "C1", far, vec![]), certificate("O2", "C2", far, vec![])];
        for (significant, expected) in [(true, Some(SigningRule::OpenConflict)), (false, None)] {
            let mut r = record(&[("O1", "C1", true), ("O2", "C2", true)]);
            r.conflicts.push(schemas::FieldConflict {
                field: "header/conclusion".into(),
                legally_significant: significant,
                values: vec![],
            });
            let result = check_signing(&r, "O1", JAN_2026 + 10 * DAY, &certificates);
            assert_eq!(result.err().map(|r| r.rule), expected);
        }
    }

    #[test]
    fn p1_p2_p4_team_rules() {
        let far = JAN_2026 + 1000 * DAY;
        let certificates = vec![
            certificate("O1", "C1", far, vec![]),
            certificate("O2", "C2", far, vec![]),
            certificate("O3", "C3", JAN_2026, vec![]),
            certificate("O4", "C4", far, vec![(JAN_2026 - DAY, CertificateStatus::Suspended)]),
        ];
        let team = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        type Case<'a> = (&'a str, Vec<String>, Vec<String>, Result<(), TeamProblem>);
        let cases: Vec<Case> = vec![
            ("two valid", team(&["O1", "O2"]), vec![], Ok(())),
            ("P1 one", team(&["O1"]), vec![], Err(TeamProblem::TooFewCertified { valid: 1 })),
            ("P1 nobody", team(&[]), vec![], Err(TeamProblem::TooFewCertified { valid: 0 })),
            ("duplicate", team(&["O1", "O1"]), vec![], Err(TeamProblem::Duplicate { officer_id: "O1".into() })),
            (
                "P2 expired",
                team(&["O1", "O3"]),
                vec![],
                Err(TeamProblem::NotCertified { officer_id: "O3".into(), standing: "expired" }),
            ),
            (
                "P2 suspended",
                team(&["O4", "O1"]),
                vec![],
                Err(TeamProblem::NotCertified { officer_id: "O4".into(), standing: "suspended" }),
            ),
            (
                "P2 unknown officer",
                team(&["O1", "O9"]),
                vec![],
                Err(TeamProblem::NotCertified { officer_id: "O9".into(), standing: "unknown" }),
            ),
            (
                "P4 recused",
                team(&["O1", "O2"]),
                vec!["O2".into()],
                Err(TeamProblem::Recused { officer_id: "O2".into() }),
            ),
        ];
        for (name, team, recused, expected) in cases {
            assert_eq!(check_team(&team, &certificates, &recused, JAN_2026), expected, "{name}");
        }
    }

    fn person(id: &str, role: schemas::PersonRole, signature: PartySignature) -> schemas::PersonPresent {
        schemas::PersonPresent { person_id: id.into(), name: id.into(), role, contact: None, signature }
    }

    #[test]
    fn c7_p4_a_record_is_complete_before_it_is_signed_or_locked() {
        use schemas::PersonRole::{LegalRepresentative, Witness};
        let complete = || {
            let mut r = record(&[("O1", "C1", true), ("O2", "C2", true)]);
            r.header.ended_at_ms = Some(JAN_2026 + 10 * DAY + 3_600_000);
            r.recusal = schemas::Recusal { asked: Some(true), answer: Some("不申请回避".into()) };
            r.header.conclusion = Some("未发现环境违法行为。".into());
            r
        };
        let signed = || PartySignature::Signed { signed_at_ms: JAN_2026 + 10 * DAY };
        let refused = |note: &str| PartySignature::Refused { note: note.into() };
        let seal = schemas::Measure { kind: MeasureKind::SealOrSeizure, note: "查封生产线".into() };
        let strict = CompletenessPolicy { witness_for_every_refusal: true };
        type Case<'a> = (&'static str, Box<dyn Fn(&mut InspectionRecord) + 'a>, CompletenessPolicy, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            ("complete", Box::new(|_| {}), CompletenessPolicy::default(), vec![]),
            (
                "nothing filled",
                Box::new(|r| {
                    r.header.ended_at_ms = None;
                    r.recusal = Default::default();
                    r.header.conclusion = None;
                }),
                CompletenessPolicy::default(),
                vec!["header/ended_at_ms", "recusal/asked", "recusal/answer", "header/conclusion"],
            ),
            (
                "ended before it started",
                Box::new(|r| r.header.ended_at_ms = Some(JAN_2026)),
                CompletenessPolicy::default(),
                vec!["header/ended_at_ms"],
            ),
            (
                "P4 question not put",
                Box::new(|r| r.recusal.asked = Some(false)),
                CompletenessPolicy::default(),
                vec!["recusal/asked"],
            ),
            (
                "P4 answer blank",
                Box::new(|r| r.recusal.answer = Some("  ".into())),
                CompletenessPolicy::default(),
                vec!["recusal/answer"],
            ),
            (
                "blank conclusion",
                Box::new(|r| r.header.conclusion = Some(String::new())),
                CompletenessPolicy::default(),
                vec!["header/conclusion"],
            ),
            (
                "C7 party signed",
                Box::new(|r| r.people_present.push(person("P1", LegalRepresentative, signed()))),
                CompletenessPolicy::default(),
                vec![],
            ),
            (
                "C7 party neither signed nor refused",
                Box::new(|r| {
                    r.people_present.push(person("P1", LegalRepresentative, PartySignature::NotYet));
                    r.people_present.push(person("P2", LegalRepresentative, signed()));
                }),
                CompletenessPolicy::default(),
                vec!["people_present/P1/signature"],
            ),
            (
                "C7 refusal with an empty note",
                Box::new(|r| r.people_present.push(person("P1", LegalRepresentative, refused(" ")))),
                CompletenessPolicy::default(),
                vec!["people_present/P1/signature"],
            ),
            (
                "C7 refusal noted, no witness asked",
                Box::new(|r| r.people_present.push(person("P1", LegalRepresentative, refused("拒绝签字")))),
                CompletenessPolicy::default(),
                vec![],
            ),
            (
                "C7 refusal on a seal, no witness",
                Box::new(move |r| {
                    r.people_present.push(person("P1", LegalRepresentative, refused("拒绝签字")));
                    r.measures.push(seal.clone());
                }),
                CompletenessPolicy::default(),
                vec!["people_present/witness"],
            ),
            (
                "C7 refusal where the bureau asks a witness, the witness has not signed",
                Box::new(|r| {
                    r.people_present.push(person("P1", LegalRepresentative, refused("拒绝签字")));
                    r.people_present.push(person("W1", Witness, refused("不愿作证")));
                }),
                strict,
                vec!["people_present/witness"],
            ),
            (
                "C7 refusal where the bureau asks a witness, witnessed",
                Box::new(|r| {
                    r.people_present.push(person("P1", LegalRepresentative, refused("拒绝签字")));
                    r.people_present.push(person("W1", Witness, signed()));
                }),
                strict,
                vec![],
            ),
        ];
        for (name, change, policy, expected) in cases {
            let mut r = complete();
            change(&mut r);
            assert_eq!(missing_for_lock(&r, &policy), expected, "{name}");
            let checked = check_complete(&r, &policy);
            match checked {
                Ok(()) => assert!(expected.is_empty(), "{name}"),
                Err(refusal) => {
                    assert_eq!(refusal.rule.as_str(), "incomplete_record", "{name}");
                    assert_eq!(missing_items(&refusal.detail), expected, "{name}");
                }
            }
        }
    }

    #[test]
    fn p2_a_party_may_refuse_the_inspection_only_when_no_certificate_is_shown() {
        let refusal = |officers: &[&str]| schemas::InspectionRefusal {
            at_ms: JAN_2026 + 10 * DAY,
            officer_ids: officers.iter().map(|o| o.to_string()).collect(),
            statement: Some("未出示执法证，拒绝检查".into()),
        };
        type Case<'a> =
            (&'a str, Vec<(&'a str, &'a str, bool)>, Option<schemas::InspectionRefusal>, Result<(), String>);
        let cases: Vec<Case> = vec![
            ("no refusal", vec![("O1", "C1", true)], None, Ok(())),
            (
                "refused, nobody showed",
                vec![("O1", "C1", false), ("O2", "C2", false)],
                Some(refusal(&["O1", "O2"])),
                Ok(()),
            ),
            (
                "refused, one did not show",
                vec![("O1", "C1", true), ("O2", "C2", false)],
                Some(refusal(&["O2"])),
                Ok(()),
            ),
            ("refused though it was shown", vec![("O1", "C1", true)], Some(refusal(&["O1"])), Err("O1".into())),
            (
                "refused naming an officer not present",
                vec![("O1", "C1", false)],
                Some(refusal(&["O9"])),
                Err("O9".into()),
            ),
            ("refused naming nobody", vec![("O1", "C1", false)], Some(refusal(&[])), Err(String::new())),
        ];
        for (name, officers, refused, expected) in cases {
            let mut r = record(&officers);
            r.header.inspection_refused = refused;
            assert_eq!(check_refusal(&r), expected, "{name}");
        }
    }

    #[test]
    fn p1_locks_when_every_officer_present_signed() {
        let r = record(&[("O1", "C1", true), ("O2", "C2", true)]);
        assert!(!all_present_signed(&r, &["O1"]));
        assert!(all_present_signed(&r, &["O1", "O2"]));
        assert!(!all_present_signed(&record(&[("O1", "C1", true)]), &["O1"]));
    }
}
