//! Accounts and their roles, the keys access tokens are signed with, officers' certificates, refresh tokens and the sessions they make, and device enrolment challenges.

use schemas::{Certificate, CertificatePeriod, CertificateReview, CertificateStatusChange};

use super::*;

/// A person who can log in: an officer, supervisor, reviewer or administrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub officer_id: String,
    pub name: String,
    pub unit: String,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    pub roles: Vec<String>,
}

/// A key the server signs access tokens with.
#[derive(Clone, Debug)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Vec<u8>,
    pub created_at_ms: i64,
    pub retired_at_ms: Option<i64>,
}

/// How long after its use a refresh token may be presented again as a retry (its answer lost on
/// the way), as long as nothing issued since in its family has been used.
pub const REFRESH_RETRY_GRACE_MS: i64 = 60_000;

/// How long an ended session is kept in `revoked_sessions`: longer than an access token lives
/// (ten minutes, with 30 s of leeway), after which no token it would refuse is valid anyway.
pub const REVOKED_SESSIONS_KEPT_MS: i64 = 3_600_000;

/// What presenting a refresh token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid and now used; the caller issues the next one in the same family.
    Valid {
        officer_id: String,
        device_id: Option<String>,
        family: String,
    },
    /// Used before: its family is now revoked.
    Reused {
        family: String,
    },
    Expired,
    Revoked,
    Unknown,
}

/// Accounts and their roles, the keys access tokens are signed with, officers' certificates, refresh tokens and the sessions they make, and device enrolment challenges.
pub trait Accounts {
    fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    fn add_signing_key(&self, key: SigningKey) -> StoreResult<()>;
    fn create_account(&self, account: Account, now_ms: i64) -> StoreResult<()>;
    fn account(&self, officer_id: &str) -> StoreResult<Option<Account>>;
    fn accounts(&self) -> StoreResult<Vec<Account>>;
    fn set_password(&self, officer_id: &str, password_hash: &str, must_change: bool) -> StoreResult<()>;
    fn grant_role(&self, officer_id: &str, role: &str) -> StoreResult<()>;
    fn revoke_role(&self, officer_id: &str, role: &str) -> StoreResult<()>;
    /// Records a certificate with its status history, and its bounds as its first, issued, period.
    fn issue_certificate(&self, certificate: &Certificate, by: &str, now_ms: i64) -> StoreResult<()>;
    /// Adds a validity period after the certificate's latest (P3), moving its end of validity to
    /// the period's end; `Conflict` when a period already reaches past the new one's start.
    fn renew_certificate(&self, number: &str, period: &CertificatePeriod, by: &str, now_ms: i64) -> StoreResult<()>;
    /// Records a periodic review the certificate passed.
    fn review_certificate(&self, number: &str, review: &CertificateReview, by: &str, now_ms: i64) -> StoreResult<()>;
    fn change_certificate_status(
        &self,
        number: &str,
        change: &CertificateStatusChange,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
    fn certificate(&self, number: &str) -> StoreResult<Option<Certificate>>;
    /// Certificates of these officers, or all when `officers` is `None`.
    fn certificates(&self, officers: Option<&[String]>) -> StoreResult<Vec<Certificate>>;
    fn store_refresh_token(
        &self,
        token_hash: &[u8],
        family: &str,
        officer_id: &str,
        device_id: Option<&str>,
        issued_at_ms: i64,
        expires_at_ms: i64,
    ) -> StoreResult<()>;
    fn use_refresh_token(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<RefreshUse>;
    fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> StoreResult<()>;
    /// Ends the session `family`: its refresh tokens are revoked and it is recorded among the
    /// revoked sessions with `reason`, in one transaction.
    fn end_session(&self, family: &str, reason: &str, now_ms: i64) -> StoreResult<()>;
    /// The sessions ended at or after `since_ms`, with when.
    fn revoked_sessions(&self, since_ms: i64) -> StoreResult<Vec<(String, i64)>>;
    fn refresh_family_of(&self, token_hash: &[u8]) -> StoreResult<Option<String>>;
    /// Keeps a challenge issued to `officer_id`, after purging every expired one; refused with
    /// [`StoreError::LimitReached`] when the officer holds `max_open` unused, unexpired ones.
    fn store_challenge(
        &self,
        nonce: &[u8],
        officer_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
        max_open: usize,
    ) -> StoreResult<()>;
    /// Marks a challenge used; true if it was issued to `officer_id`, unused and unexpired.
    fn take_challenge(&self, nonce: &[u8], officer_id: &str, now_ms: i64) -> StoreResult<bool>;
}
