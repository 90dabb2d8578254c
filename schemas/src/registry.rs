//! Server-owned registry rows that devices and rules read but never author.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An enforcement certificate (执法证) and its life cycle (P3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Certificate {
    /// Certificate number, for example `GX20214502090001`; P1 counts distinct numbers. An
    /// identifier: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub number: String,
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub officer_id: String,
    pub issuing_authority: String,
    /// First instant of validity, Unix milliseconds: the start of its first period.
    pub valid_from_ms: i64,
    /// First instant after validity, Unix milliseconds (a certificate valid to 2026-12-31 has 2027-01-01T00:00 in its time zone):
    /// the end of its latest period.
    pub valid_until_ms: i64,
    /// Status changes in time order; the certificate is active before the first one.
    pub status_history: Vec<CertificateStatusChange>,
    /// Each validity period, as issued and renewed, in time order and never overlapping (P3).
    /// An instant between two periods is in none, and the certificate is not valid then.
    /// Empty (from a server that kept no periods) means the one period
    /// `valid_from_ms..valid_until_ms`.
    #[serde(default)]
    pub periods: Vec<CertificatePeriod>,
    /// The periodic reviews the certificate passed (P3), in time order.
    #[serde(default)]
    pub reviews: Vec<CertificateReview>,
}

/// One validity period of a certificate: `valid_from_ms..valid_until_ms`, Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertificatePeriod {
    /// How the period began.
    pub kind: CertificatePeriodKind,
    pub valid_from_ms: i64,
    pub valid_until_ms: i64,
}

/// How a validity period began: the first issue, or a renewal (reissue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificatePeriodKind {
    Issued,
    Renewed,
}

/// A periodic review (年审) a certificate passed, at an instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertificateReview {
    pub reviewed_at_ms: i64,
    pub note: Option<String>,
}

/// A change of a certificate's status at an instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertificateStatusChange {
    pub at_ms: i64,
    pub status: CertificateStatus,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    Active,
    Suspended,
    Revoked,
    Surrendered,
}

/// An inspection task: an entity, a matter, a window, and the team of officers who may write
/// its records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    pub task_id: String,
    pub entity_id: String,
    pub matter: String,
    /// When the inspection may start and by when it ends, Unix ms.
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// Officer ids, at least two with valid certificates (P1), none recused (P4).
    pub team: Vec<String>,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// What a device caches while online to sign a record of the task offline: the signing rules
/// (P2, P3) need every officer's certificates with their status history, and the record names
/// each officer present with their name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskTeam {
    pub task: Task,
    /// One entry per officer of the task's team, in the team's order.
    pub members: Vec<TeamMember>,
    /// The checklist item codes of the task's matter, from the bureau's random-check matter list:
    /// a record of the task takes no other code. Absent when the task's matter is not in the
    /// matter list (or none was imported): then any well-formed code is taken.
    #[serde(default)]
    pub checklist: Option<Vec<String>>,
}

/// An officer of a task's team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeamMember {
    pub officer_id: String,
    /// The officer's display name, as registered with their account.
    pub name: String,
    /// Every enforcement certificate of the officer, with its status history, by number: a
    /// certificate suspended or expired since still decides whether earlier work was certified.
    pub certificates: Vec<Certificate>,
}

impl TaskTeam {
    /// Every certificate of the team.
    pub fn certificates(&self) -> Vec<Certificate> {
        self.members.iter().flat_map(|m| m.certificates.iter().cloned()).collect()
    }
}
