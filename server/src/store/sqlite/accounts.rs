//! The SQL of accounts, roles, signing keys, certificates, refresh tokens, revoked sessions and challenges.

use rusqlite::{Connection, OptionalExtension, params};

use super::*;

pub(super) fn roles_of(conn: &Connection, officer_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached("SELECT role FROM roles WHERE officer_id = ?1 ORDER BY role")?;
    statement.query_map([officer_id], |row| row.get(0))?.collect()
}

pub(super) fn account_from(conn: &Connection, row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let officer_id: String = row.get(0)?;
    Ok(Account {
        roles: roles_of(conn, &officer_id)?,
        officer_id,
        name: row.get(1)?,
        unit: row.get(2)?,
        password_hash: row.get(3)?,
        must_change_password: row.get(4)?,
    })
}

pub(super) fn status_name(status: CertificateStatus) -> &'static str {
    match status {
        CertificateStatus::Active => "active",
        CertificateStatus::Suspended => "suspended",
        CertificateStatus::Revoked => "revoked",
        CertificateStatus::Surrendered => "surrendered",
    }
}

pub(super) fn status_from(name: &str) -> CertificateStatus {
    match name {
        "suspended" => CertificateStatus::Suspended,
        "revoked" => CertificateStatus::Revoked,
        "surrendered" => CertificateStatus::Surrendered,
        _ => CertificateStatus::Active,
    }
}

pub(super) fn load_certificates(conn: &Connection, officers: Option<&[String]>) -> rusqlite::Result<Vec<Certificate>> {
    let mut statement = conn.prepare_cached(
        "SELECT number, officer_id, issuing_authority, valid_from_ms, valid_until_ms FROM certificates ORDER BY number",
    )?;
    let mut history = conn
        .prepare_cached("SELECT at_ms, status, reason FROM certificate_status WHERE number = ?1 ORDER BY at_ms, seq")?;
    let mut periods = conn.prepare_cached(
        "SELECT kind, valid_from_ms, valid_until_ms FROM certificate_periods WHERE number = ?1 ORDER BY valid_from_ms, seq",
    )?;
    let mut reviews = conn.prepare_cached(
        "SELECT reviewed_at_ms, note FROM certificate_reviews WHERE number = ?1 ORDER BY reviewed_at_ms, seq",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(Certificate {
            number: row.get(0)?,
            officer_id: row.get(1)?,
            issuing_authority: row.get(2)?,
            valid_from_ms: row.get(3)?,
            valid_until_ms: row.get(4)?,
            status_history: Vec::new(),
            periods: vec![],
            reviews: vec![],
        })
    })?;
    let mut out = Vec::new();
    for certificate in rows {
        let mut certificate = certificate?;
        if officers.is_some_and(|o| !o.contains(&certificate.officer_id)) {
            continue;
        }
        certificate.periods = periods
            .query_map([&certificate.number], |row| {
                Ok(CertificatePeriod {
                    kind: if row.get::<_, String>(0)? == "renewed" {
                        CertificatePeriodKind::Renewed
                    } else {
                        CertificatePeriodKind::Issued
                    },
                    valid_from_ms: row.get(1)?,
                    valid_until_ms: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        certificate.reviews = reviews
            .query_map([&certificate.number], |row| {
                Ok(CertificateReview { reviewed_at_ms: row.get(0)?, note: row.get(1)? })
            })?
            .collect::<rusqlite::Result<_>>()?;
        certificate.status_history = history
            .query_map([&certificate.number], |row| {
                Ok(CertificateStatusChange {
                    at_ms: row.get(0)?,
                    status: status_from(&row.get::<_, String>(1)?),
                    reason: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        out.push(certificate);
    }
    Ok(out)
}

/// Ends the sessions (refresh families) of the refresh tokens matching `condition` on `?1`
/// (`family = ?1`, `officer_id = ?1`, `device_id = ?1`): each is recorded in `revoked_sessions`
/// with `reason`, and its tokens are revoked. Rows too old to refuse any unexpired access token
/// are purged on the way.
pub(super) fn end_sessions(
    tx: &Connection,
    condition: &str,
    value: &str,
    reason: &str,
    now_ms: i64,
) -> StoreResult<()> {
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO revoked_sessions (session_id, officer_id, reason, revoked_at_ms)
             SELECT DISTINCT family, officer_id, ?2, ?3 FROM refresh_tokens
             WHERE {condition} AND (revoked_at_ms IS NULL OR ?1 = family)"
        ),
        params![value, reason, now_ms],
    )?;
    tx.execute(
        &format!("UPDATE refresh_tokens SET revoked_at_ms = ?2 WHERE {condition} AND revoked_at_ms IS NULL"),
        params![value, now_ms],
    )?;
    tx.execute("DELETE FROM revoked_sessions WHERE revoked_at_ms < ?1", [now_ms - super::REVOKED_SESSIONS_KEPT_MS])?;
    Ok(())
}

impl Accounts for SqliteStore {
    fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT kid, secret, created_at_ms, retired_at_ms FROM server_keys WHERE purpose = 'access_token'
                 ORDER BY created_at_ms",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(SigningKey {
                    kid: row.get(0)?,
                    secret: row.get(1)?,
                    created_at_ms: row.get(2)?,
                    retired_at_ms: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
    fn add_signing_key(&self, key: SigningKey) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO server_keys (kid, purpose, secret, created_at_ms, retired_at_ms)
                 VALUES (?1, 'access_token', ?2, ?3, ?4)",
                params![key.kid, key.secret, key.created_at_ms, key.retired_at_ms],
            )?;
            Ok(())
        })
    }
    fn create_account(&self, account: Account, now_ms: i64) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO accounts (officer_id, name, unit, password_hash, must_change_password, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    account.officer_id,
                    account.name,
                    account.unit,
                    account.password_hash,
                    account.must_change_password,
                    now_ms
                ],
            )?;
            for role in &account.roles {
                tx.execute("INSERT INTO roles (officer_id, role) VALUES (?1, ?2)", params![account.officer_id, role])?;
            }
            Ok(())
        })
    }
    fn account(&self, officer_id: &str) -> StoreResult<Option<Account>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT officer_id, name, unit, password_hash, must_change_password FROM accounts
                     WHERE officer_id = ?1",
                )?
                .query_row([officer_id], |row| account_from(conn, row))
                .optional()?)
        })
    }
    fn accounts(&self) -> StoreResult<Vec<Account>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT officer_id, name, unit, password_hash, must_change_password FROM accounts ORDER BY officer_id",
            )?;
            let rows = statement.query_map([], |row| account_from(conn, row))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
    fn set_password(&self, officer_id: &str, password_hash: &str, must_change: bool) -> StoreResult<()> {
        let (officer_id, password_hash) = (officer_id.to_string(), password_hash.to_string());
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE accounts SET password_hash = ?2, must_change_password = ?3 WHERE officer_id = ?1",
                params![officer_id, password_hash, must_change],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(officer_id));
            }
            // A new password ends every session opened with the old one.
            let now_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            end_sessions(tx, "officer_id = ?1", &officer_id, "password_changed", now_ms)
        })
    }
    fn grant_role(&self, officer_id: &str, role: &str) -> StoreResult<()> {
        let (officer_id, role) = (officer_id.to_string(), role.to_string());
        self.write(move |tx| {
            tx.execute("INSERT OR IGNORE INTO roles (officer_id, role) VALUES (?1, ?2)", params![officer_id, role])?;
            Ok(())
        })
    }
    fn revoke_role(&self, officer_id: &str, role: &str) -> StoreResult<()> {
        let (officer_id, role) = (officer_id.to_string(), role.to_string());
        self.write(move |tx| {
            tx.execute("DELETE FROM roles WHERE officer_id = ?1 AND role = ?2", params![officer_id, role])?;
            Ok(())
        })
    }
    fn issue_certificate(&self, certificate: &Certificate, by: &str, now_ms: i64) -> StoreResult<()> {
        let (certificate, by) = (certificate.clone(), by.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO certificates (number, officer_id, issuing_authority, valid_from_ms, valid_until_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    certificate.number,
                    certificate.officer_id,
                    certificate.issuing_authority,
                    certificate.valid_from_ms,
                    certificate.valid_until_ms
                ],
            )?;
            tx.execute(
                "INSERT INTO certificate_periods (number, kind, valid_from_ms, valid_until_ms, recorded_by, recorded_at_ms)
                 VALUES (?1, 'issued', ?2, ?3, ?4, ?5)",
                params![certificate.number, certificate.valid_from_ms, certificate.valid_until_ms, by, now_ms],
            )?;
            for change in &certificate.status_history {
                tx.execute(
                    "INSERT INTO certificate_status (number, at_ms, status, reason, recorded_by, recorded_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![certificate.number, change.at_ms, status_name(change.status), change.reason, by, now_ms],
                )?;
            }
            Ok(())
        })
    }
    fn renew_certificate(&self, number: &str, period: &CertificatePeriod, by: &str, now_ms: i64) -> StoreResult<()> {
        let (number, period, by) = (number.to_string(), period.clone(), by.to_string());
        self.write(move |tx| {
            let exists: bool =
                tx.query_row("SELECT COUNT(*) > 0 FROM certificates WHERE number = ?1", [&number], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::NotFound(number));
            }
            let inserted = tx.execute(
                "INSERT INTO certificate_periods (number, kind, valid_from_ms, valid_until_ms, recorded_by, recorded_at_ms)
                 SELECT ?1, 'renewed', ?2, ?3, ?4, ?5
                 WHERE NOT EXISTS (SELECT 1 FROM certificate_periods WHERE number = ?1 AND valid_until_ms > ?2)",
                params![number, period.valid_from_ms, period.valid_until_ms, by, now_ms],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("a period of {number} reaches past {}", period.valid_from_ms)));
            }
            tx.execute(
                "UPDATE certificates SET valid_until_ms = ?2 WHERE number = ?1",
                params![number, period.valid_until_ms],
            )?;
            Ok(())
        })
    }
    fn review_certificate(&self, number: &str, review: &CertificateReview, by: &str, now_ms: i64) -> StoreResult<()> {
        let (number, review, by) = (number.to_string(), review.clone(), by.to_string());
        self.write(move |tx| {
            let exists: bool =
                tx.query_row("SELECT COUNT(*) > 0 FROM certificates WHERE number = ?1", [&number], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::NotFound(number));
            }
            tx.execute(
                "INSERT INTO certificate_reviews (number, reviewed_at_ms, note, recorded_by, recorded_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![number, review.reviewed_at_ms, review.note, by, now_ms],
            )?;
            Ok(())
        })
    }
    fn change_certificate_status(
        &self,
        number: &str,
        change: &CertificateStatusChange,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (number, change, by) = (number.to_string(), change.clone(), by.to_string());
        self.write(move |tx| {
            let exists: bool =
                tx.query_row("SELECT COUNT(*) > 0 FROM certificates WHERE number = ?1", [&number], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::NotFound(number));
            }
            tx.execute(
                "INSERT INTO certificate_status (number, at_ms, status, reason, recorded_by, recorded_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![number, change.at_ms, status_name(change.status), change.reason, by, now_ms],
            )?;
            Ok(())
        })
    }
    fn certificate(&self, number: &str) -> StoreResult<Option<Certificate>> {
        Ok(self.certificates(None)?.into_iter().find(|c| c.number == number))
    }
    fn certificates(&self, officers: Option<&[String]>) -> StoreResult<Vec<Certificate>> {
        self.read(|conn| Ok(load_certificates(conn, officers)?))
    }
    fn store_refresh_token(
        &self,
        token_hash: &[u8],
        family: &str,
        officer_id: &str,
        device_id: Option<&str>,
        issued_at_ms: i64,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        let (hash, family, officer, device) =
            (token_hash.to_vec(), family.to_string(), officer_id.to_string(), device_id.map(str::to_string));
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family, officer_id, device_id, issued_at_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, family, officer, device, issued_at_ms, expires_at_ms],
            )?;
            Ok(())
        })
    }
    fn use_refresh_token(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<RefreshUse> {
        let hash = token_hash.to_vec();
        self.write(move |tx| {
            type Row = (String, String, Option<String>, i64, Option<i64>, Option<i64>);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT family, officer_id, device_id, expires_at_ms, used_at_ms, revoked_at_ms
                     FROM refresh_tokens WHERE token_hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            let Some((family, officer_id, device_id, expires, used, revoked)) = row else {
                return Ok(RefreshUse::Unknown);
            };
            if revoked.is_some() {
                return Ok(RefreshUse::Revoked);
            }
            if let Some(used_at) = used {
                // Presented again soon after its use while nothing issued since in its family has
                // been used: the answer to that use was lost, and this is the device's retry.
                // The unused replacement is revoked and the caller issues another.
                let successor_used: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family = ?1 AND issued_at_ms >= ?2
                                    AND used_at_ms IS NOT NULL AND token_hash != ?3)",
                    params![family, used_at, hash],
                    |r| r.get(0),
                )?;
                if now_ms - used_at <= super::REFRESH_RETRY_GRACE_MS && !successor_used && expires > now_ms {
                    tx.execute(
                        "UPDATE refresh_tokens SET revoked_at_ms = ?3
                         WHERE family = ?1 AND issued_at_ms >= ?2 AND token_hash != ?4 AND revoked_at_ms IS NULL",
                        params![family, used_at, now_ms, hash],
                    )?;
                    return Ok(RefreshUse::Valid { officer_id, device_id, family });
                }
                end_sessions(tx, "family = ?1", &family, "refresh_token_reused", now_ms)?;
                return Ok(RefreshUse::Reused { family });
            }
            if expires <= now_ms {
                return Ok(RefreshUse::Expired);
            }
            tx.execute("UPDATE refresh_tokens SET used_at_ms = ?2 WHERE token_hash = ?1", params![hash, now_ms])?;
            Ok(RefreshUse::Valid { officer_id, device_id, family })
        })
    }
    fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> StoreResult<()> {
        let family = family.to_string();
        self.write(move |tx| {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at_ms = ?2 WHERE family = ?1 AND revoked_at_ms IS NULL",
                params![family, now_ms],
            )?;
            Ok(())
        })
    }
    fn end_session(&self, family: &str, reason: &str, now_ms: i64) -> StoreResult<()> {
        let (family, reason) = (family.to_string(), reason.to_string());
        self.write(move |tx| end_sessions(tx, "family = ?1", &family, &reason, now_ms))
    }
    fn revoked_sessions(&self, since_ms: i64) -> StoreResult<Vec<(String, i64)>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT session_id, revoked_at_ms FROM revoked_sessions WHERE revoked_at_ms >= ?1")?
                .query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?)
        })
    }
    fn refresh_family_of(&self, token_hash: &[u8]) -> StoreResult<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .query_row("SELECT family FROM refresh_tokens WHERE token_hash = ?1", [token_hash], |r| r.get(0))
                .optional()?)
        })
    }
    fn store_challenge(
        &self,
        nonce: &[u8],
        officer_id: &str,
        now_ms: i64,
        expires_at_ms: i64,
        max_open: usize,
    ) -> StoreResult<()> {
        let (nonce, officer) = (nonce.to_vec(), officer_id.to_string());
        self.write(move |tx| {
            // An expired challenge can never be answered: it goes, used or not.
            tx.execute("DELETE FROM challenges WHERE expires_at_ms <= ?1", [now_ms])?;
            let open: i64 = tx.query_row(
                "SELECT COUNT(*) FROM challenges WHERE officer_id = ?1 AND used_at_ms IS NULL",
                [&officer],
                |r| r.get(0),
            )?;
            if open as usize >= max_open {
                return Err(StoreError::LimitReached { what: "open enrollment challenges", limit: max_open });
            }
            tx.execute(
                "INSERT INTO challenges (nonce, officer_id, expires_at_ms) VALUES (?1, ?2, ?3)",
                params![nonce, officer, expires_at_ms],
            )?;
            Ok(())
        })
    }
    fn take_challenge(&self, nonce: &[u8], officer_id: &str, now_ms: i64) -> StoreResult<bool> {
        let (nonce, officer) = (nonce.to_vec(), officer_id.to_string());
        self.write(move |tx| {
            let taken = tx.execute(
                "UPDATE challenges SET used_at_ms = ?3
                 WHERE nonce = ?1 AND officer_id = ?2 AND used_at_ms IS NULL AND expires_at_ms > ?3",
                params![nonce, officer, now_ms],
            )?;
            Ok(taken == 1)
        })
    }
}
