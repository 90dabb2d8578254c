//! Server-owned registry rows that devices and rules read but never author.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An enforcement certificate (执法证) and its life cycle (P3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Certificate {
    /// Certificate number, for example `GX20214502090001`; P1 counts distinct numbers.
    pub number: String,
    pub officer_id: String,
    pub issuing_authority: String,
    /// First instant of validity, Unix milliseconds.
    pub valid_from_ms: i64,
    /// First instant after validity, Unix milliseconds (a certificate valid to 2026-12-31 has 2027-01-01T00:00 in its time zone).
    pub valid_until_ms: i64,
    /// Status changes in time order; the certificate is active before the first one.
    pub status_history: Vec<CertificateStatusChange>,
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
