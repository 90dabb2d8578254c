//! Who is calling: passwords, access tokens, refresh tokens, the sessions they belong to, the
//! login backoff and device challenges, and [`authenticate`], which turns an access token into
//! the [`Caller`] every protected use case takes (the HTTP extractor is `http::caller`).
//!
//! - Passwords are hashed with Argon2id, 19 MiB, t=2, p=1 (OWASP's minimum).
//! - Access tokens are JWTs signed with HS256 and a key id (`kid`) so keys can
//!   rotate; the algorithm is pinned, and `iss`, `aud`, `sub` and `exp` are
//!   required, with 30 s of leeway. They live 10 minutes.
//! - Refresh tokens are 32 random bytes, stored only as their SHA-256, rotated
//!   on every use; presenting a used one revokes its whole family.
//! - A token issued to a device names it; a revoked device's tokens stop
//!   working at once because every request checks the device.
//! - An access token names its session (`sid`, the family of its refresh tokens). A session
//!   ended by a logout, a password change, a reused refresh token or its device's revocation is
//!   written to the store's `revoked_sessions` in the transaction that revokes its refresh
//!   tokens; [`SessionRevocations`] keeps the recent ones in memory, so that the session's access
//!   tokens are refused at once (`session_revoked`) without a read per request. It reads what it
//!   has not seen from the table at most once every [`REVOCATIONS_REFRESH_MS`] and at once after
//!   this server ends a session, so that servers sharing one database share the set.
//! - A refresh token presented again within [`REFRESH_RETRY_GRACE_MS`] of its use, while its
//!   replacement is unused, is a retry, not a reuse: the replacement is revoked and another
//!   issued, because an answer lost on a phone's network must not log the officer out.
//! - Failed passwords back off per account, counted after the address's rate limit
//!   ([`LoginBackoff`]: `Config::auth_free_failures` free, then `auth_backoff_base_ms` doubling
//!   to `auth_backoff_max_ms`). An enrolled device passes the backoff by signing a one-use
//!   challenge ([`LoginChallenges`], [`device_login_message`]), so that a guesser elsewhere cannot
//!   lock the officer out.
//!
//! [`REFRESH_RETRY_GRACE_MS`]: crate::store::REFRESH_RETRY_GRACE_MS

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ApiError, ApiResult, Context, Metrics, now_ms};
use crate::store::{RefreshUse, SigningKey};

/// Issuer of every access token.
pub const ISSUER: &str = "fieldsync-server";
/// Audience of every access token.
pub const AUDIENCE: &str = "fieldsync-api";
/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECONDS: i64 = 600;
/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_SECONDS: i64 = 30 * 86_400;
/// Leeway on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
/// Audience of a console session's token (the browser console's cookie): an access token is not
/// a console session, nor the other way round.
pub const CONSOLE_AUDIENCE: &str = "fieldsync-console";
/// Lifetime of a console session: a working day.
pub const CONSOLE_SESSION_SECONDS: i64 = 8 * 3600;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid parameters"))
}

/// An Argon2id hash of `password` in PHC string form.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).expect("hashing cannot fail with valid parameters").to_string()
}

/// Whether `password` matches `hash`; a malformed hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new random password for a first login, 16 URL-safe characters.
pub fn one_time_password() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<12>())
}

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The officer id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub roles: Vec<String>,
    /// The device the token was issued to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// The session: the family of the refresh tokens issued with it. A token without one is refused.
    #[serde(default)]
    pub sid: String,
    /// A console session's CSRF token: every form it posts carries it (console tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

/// Signs an access token with the newest active key.
pub fn issue_access_token(keys: &[SigningKey], claims: &Claims) -> ApiResult<String> {
    let key = keys
        .iter()
        .filter(|k| k.retired_at_ms.is_none())
        .max_by_key(|k| k.created_at_ms)
        .ok_or_else(|| ApiError::Internal("no access-token key: run `fieldsync-server init`".into()))?;
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Verifies an access token: the algorithm pinned to HS256, a known `kid`, the signature, `iss`,
/// `aud`, `sub` and `exp` (with [`LEEWAY_SECONDS`]).
pub fn verify_access_token(keys: &[SigningKey], token: &str) -> ApiResult<Claims> {
    verify_token(keys, token, AUDIENCE)
}

/// Verifies a token of `audience` as [`verify_access_token`] does.
fn verify_token(keys: &[SigningKey], token: &str, audience: &str) -> ApiResult<Claims> {
    let invalid = |message: &str| ApiError::unauthorized("invalid_token", message.to_string());
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is malformed"))?;
    if header.alg != jsonwebtoken::Algorithm::HS256 {
        return Err(invalid("the token's algorithm is not accepted"));
    }
    let kid = header.kid.ok_or_else(|| invalid("the token names no key"))?;
    let key = keys.iter().find(|k| k.kid == kid).ok_or_else(|| invalid("the token's key is unknown"))?;
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = LEEWAY_SECONDS;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    match jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&key.secret), &validation) {
        Ok(data) if data.claims.sid.is_empty() => Err(invalid("the token names no session")),
        Ok(data) => Ok(data.claims),
        Err(error) => Err(match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::unauthorized("token_expired", "the access token has expired")
            }
            jsonwebtoken::errors::ErrorKind::InvalidAudience => invalid("the token is for another audience"),
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => invalid("the token is from another issuer"),
            jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid("the token's signature does not verify"),
            _ => invalid("the token is not valid"),
        }),
    }
}

/// Device signatures are checked by one strict function for enrollment and the enforcement log.
pub use sync_core::signature::verify_strict as verify_device_signature;

/// A new refresh token and the hash stored for it.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = refresh_token_hash(&token);
    (token, hash)
}

pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// How often the revoked sessions are read again from the store when no session ended here: the
/// longest a session ended by another server sharing the database stays usable on this one.
pub const REVOCATIONS_REFRESH_MS: i64 = 1_000;

/// The sessions ended recently, kept in memory (see the module's overview).
#[derive(Default)]
pub struct SessionRevocations {
    state: Mutex<Revoked>,
}

#[derive(Default)]
struct Revoked {
    /// Session id and when it ended.
    sessions: HashMap<String, i64>,
    /// When the table was last read (0: never), in the server's clock.
    read_at_ms: i64,
    /// The newest end read from the table: the next read starts a little before it.
    newest_ms: i64,
}

impl SessionRevocations {
    /// Whether `sid` has ended, as far as the last read knows.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).sessions.contains_key(sid)
    }

    /// Whether the table should be read again at `now_ms`.
    pub fn due(&self, now_ms: i64) -> bool {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.read_at_ms == 0 || now_ms - state.read_at_ms >= REVOCATIONS_REFRESH_MS
    }

    /// Reads the sessions ended since the last read (all those the table keeps, the first time)
    /// and forgets those ended before any access token still valid was issued.
    pub fn refresh(&self, store: &dyn crate::store::Store, now_ms: i64) -> Result<(), crate::store::StoreError> {
        let since = {
            let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Another server's clock may lag ours: read a minute back, which costs a few rows.
            if state.read_at_ms == 0 { 0 } else { state.newest_ms - 60_000 }
        };
        let ended = store.revoked_sessions(since)?;
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (sid, at) in ended {
            state.newest_ms = state.newest_ms.max(at);
            state.sessions.insert(sid, at);
        }
        let forget_before = now_ms - (ACCESS_TOKEN_SECONDS + LEEWAY_SECONDS as i64) * 1000 - 60_000;
        state.sessions.retain(|_, at| *at >= forget_before);
        state.read_at_ms = now_ms.max(1);
        Ok(())
    }
}

/// Settings of the per-account back-off on failed passwords.
#[derive(Clone, Copy, Debug)]
pub struct BackoffPolicy {
    /// Failed passwords an account may have before it backs off.
    pub free_failures: u32,
    /// The first wait; each further failure doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

/// Per-account exponential back-off on failed passwords: after [`BackoffPolicy::free_failures`]
/// failures in a row, each failure makes the account wait twice as long as the one before
/// (`base`, `2 base`, `4 base`, ... up to `max`) before a password is tried again; a success
/// clears it. An attacker guessing one account from many addresses is slowed to a trickle, and
/// the officer is not locked out for a fixed minute per ten guesses: a device that proves its
/// key ([`LoginChallenges`]) logs in past the back-off.
pub struct LoginBackoff {
    policy: BackoffPolicy,
    accounts: Mutex<HashMap<String, AccountFailures>>,
}

#[derive(Clone, Copy, Debug)]
struct AccountFailures {
    /// Failures in a row.
    count: u32,
    /// No password is tried before this.
    blocked_until: Instant,
}

/// Most accounts the back-off tracks at once; past it, those whose wait has ended are forgotten.
const BACKOFF_ACCOUNTS: usize = 100_000;

impl LoginBackoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self { policy, accounts: Mutex::new(HashMap::new()) }
    }

    /// Whether a password may be tried for `account` at `now`; if not, the seconds to wait.
    pub fn check(&self, account: &str, now: Instant) -> Result<(), u64> {
        let accounts = self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match accounts.get(account) {
            Some(failures) if failures.blocked_until > now => {
                let wait = failures.blocked_until - now;
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed password for `account` at `now`; the wait it now has, if any.
    pub fn failed(&self, account: &str, now: Instant) -> Option<Duration> {
        let mut accounts = self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if accounts.len() >= BACKOFF_ACCOUNTS {
            accounts.retain(|_, failures| failures.blocked_until > now);
        }
        let failures = accounts.entry(account.to_string()).or_insert(AccountFailures { count: 0, blocked_until: now });
        failures.count = failures.count.saturating_add(1);
        let over = failures.count.checked_sub(self.policy.free_failures)?.checked_sub(1);
        let wait = match over {
            None => return None,
            Some(doublings) => self
                .policy
                .base
                .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
                .unwrap_or(self.policy.max)
                .min(self.policy.max),
        };
        failures.blocked_until = now + wait;
        Some(wait)
    }

    /// Clears `account`'s failures after a good password.
    pub fn succeeded(&self, account: &str) {
        self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(account);
    }
}

/// The domain of the message a device signs to prove its key at login.
pub const DEVICE_LOGIN_DOMAIN: &[u8] = b"fieldsync/device-login/v1\0";

/// What a device signs to log in past the account's back-off: the domain, the challenge, then
/// the device id and the officer id, each followed by a zero byte.
pub fn device_login_message(challenge: &[u8], device_id: &str, officer_id: &str) -> Vec<u8> {
    let mut message = DEVICE_LOGIN_DOMAIN.to_vec();
    message.extend_from_slice(challenge);
    message.extend_from_slice(device_id.as_bytes());
    message.push(0);
    message.extend_from_slice(officer_id.as_bytes());
    message.push(0);
    message
}

/// How long a login challenge may be answered.
pub const LOGIN_CHALLENGE_MS: u64 = 60_000;

/// Most login challenges outstanding at once: a flood of challenge requests is refused past it
/// rather than growing memory.
const LOGIN_CHALLENGES: usize = 100_000;

/// Challenges for a device's proof at login, kept in memory only (issue 14: an unauthenticated
/// endpoint must not write to the database), each answerable once until it expires.
#[derive(Default)]
pub struct LoginChallenges {
    open: Mutex<HashMap<[u8; 32], Instant>>,
}

impl LoginChallenges {
    /// A new challenge, or `None` when too many are open.
    pub fn issue(&self, now: Instant) -> Option<[u8; 32]> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.len() >= LOGIN_CHALLENGES {
            open.retain(|_, expires| *expires > now);
            if open.len() >= LOGIN_CHALLENGES {
                return None;
            }
        }
        let challenge = random_bytes::<32>();
        open.insert(challenge, now + Duration::from_millis(LOGIN_CHALLENGE_MS));
        Some(challenge)
    }

    /// Uses up `challenge`; true if it was issued here and has not expired.
    pub fn take(&self, challenge: &[u8], now: Instant) -> bool {
        let Ok(challenge) = <[u8; 32]>::try_from(challenge) else { return false };
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.remove(&challenge).is_some_and(|expires| expires > now)
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub officer_id: String,
    pub roles: Vec<String>,
    pub device_id: Option<String>,
    /// The session the access token belongs to.
    pub session_id: String,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Refuses the request unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[&str]) -> ApiResult<()> {
        if roles.iter().any(|role| self.has_role(role)) {
            Ok(())
        } else {
            Err(ApiError::forbidden("role_required", format!("this needs one of the roles {roles:?}")))
        }
    }

    /// The device the token was issued to; refuses a token without one.
    pub fn device(&self) -> ApiResult<&str> {
        self.device_id.as_deref().ok_or_else(|| ApiError::forbidden("device_required", "this needs a device token"))
    }
}

/// The caller an access token names, checked as every protected request is: the token's
/// signature (reading the keys again when it names one not kept yet), its account (which must
/// exist and, unless `changing_password`, not owe a password change), its device (enrolled,
/// not revoked, the account's own), and its session (not ended). Roles are read from the store,
/// not the token, so that a revoked role stops at once.
pub async fn authenticate(state: &Context, token: &str, changing_password: bool) -> ApiResult<Caller> {
    let claims = verified_claims(state, token, AUDIENCE).await?;
    caller_of(state, claims, changing_password).await
}

/// The claims of `token` for `audience`, read with the server's keys (reading them again when
/// the token names one not kept yet).
async fn verified_claims(state: &Context, token: &str, audience: &str) -> ApiResult<Claims> {
    let mut keys = state.signing_keys().await?;
    if let Ok(header) = jsonwebtoken::decode_header(token)
        && let Some(kid) = header.kid
        && !keys.iter().any(|k| k.kid == kid)
    {
        keys = state.reload_signing_keys().await?;
    }
    verify_token(&keys, token, audience)
}

/// The caller verified `claims` name, checked against the store as [`authenticate`] says.
async fn caller_of(state: &Context, claims: Claims, changing_password: bool) -> ApiResult<Caller> {
    let (officer, device) = (claims.sub.clone(), claims.dev.clone());
    let now = super::now_ms();
    let revocations = state.sessions.clone();
    let (account, device) = state
        .blocking(move |store| {
            if revocations.due(now) {
                revocations.refresh(store, now)?;
            }
            let account = store.account(&officer)?;
            let device = match device {
                Some(id) => match store.device(&id)? {
                    Some(device) => Ok(Some(device)),
                    None => Err(id),
                },
                None => Ok(None),
            };
            Ok((account, device))
        })
        .await?;
    let account = account.ok_or_else(|| ApiError::unauthorized("invalid_token", "the account no longer exists"))?;
    // A one-time password is good for one thing: setting a password of one's own.
    if account.must_change_password && !changing_password {
        return Err(ApiError::forbidden(
            "password_change_required",
            "set a password of your own first (POST /v1/auth/password)",
        ));
    }
    let device_id = match device {
        Ok(None) => None,
        Ok(Some(device)) if device.revoked_at_ms.is_some() => {
            return Err(ApiError::unauthorized("device_revoked", "this device has been revoked"));
        }
        Ok(Some(device)) if device.officer_id != account.officer_id => {
            return Err(ApiError::unauthorized("invalid_token", "the device belongs to another officer"));
        }
        Ok(Some(device)) => Some(device.device_id),
        Err(_) => return Err(ApiError::unauthorized("device_revoked", "this device is not enrolled")),
    };
    if state.sessions.is_revoked(&claims.sid) {
        return Err(ApiError::unauthorized("session_revoked", "this session has ended: log in again"));
    }
    // Roles are read from the store, not the token, so that a revoked role stops at once.
    Ok(Caller { officer_id: account.officer_id, roles: account.roles, device_id, session_id: claims.sid })
}

/// A console session: the browser console's cookie and the CSRF token its forms carry.
pub struct ConsoleSession {
    /// A token of [`CONSOLE_AUDIENCE`], kept in an HttpOnly cookie.
    pub token: String,
    pub csrf: String,
    /// The password is a one-time password: the console asks for a new one first.
    pub must_change_password: bool,
}

/// Signs an officer into the console with their password: the same [`login`] as the API's
/// (the account's back-off, the same failures), so that the session is an ordinary session (a
/// logout, a password change or a reused refresh token ends it), carried by a token of
/// [`CONSOLE_AUDIENCE`] that lives [`CONSOLE_SESSION_SECONDS`] and names a random CSRF token.
pub async fn console_login(context: &Context, officer_id: String, password: String) -> ApiResult<ConsoleSession> {
    let login_request = Login { officer_id, password, device_id: None, device_challenge: None, device_signature: None };
    let tokens = login(context, login_request).await?;
    let keys = context.signing_keys().await?;
    let access = verify_access_token(&keys, &tokens.access_token)?;
    let now = now_ms() / 1000;
    let csrf = URL_SAFE_NO_PAD.encode(random_bytes::<24>());
    let claims = Claims {
        aud: CONSOLE_AUDIENCE.into(),
        iat: now,
        exp: now + CONSOLE_SESSION_SECONDS,
        csrf: Some(csrf.clone()),
        ..access
    };
    let token = issue_access_token(&keys, &claims)?;
    Ok(ConsoleSession { token, csrf, must_change_password: tokens.must_change_password })
}

/// The caller of a console session's token and the session's CSRF token, checked as
/// [`authenticate`] checks an access token.
pub async fn authenticate_console(
    context: &Context,
    token: &str,
    changing_password: bool,
) -> ApiResult<(Caller, String)> {
    let claims = verified_claims(context, token, CONSOLE_AUDIENCE).await?;
    let csrf = claims.csrf.clone().ok_or_else(|| ApiError::unauthorized("invalid_token", "no CSRF token"))?;
    Ok((caller_of(context, claims, changing_password).await?, csrf))
}

/// A login: the officer's password, and optionally the device it is made on with its proof.
pub struct Login {
    pub officer_id: String,
    pub password: String,
    /// Log in on an enrolled device: the tokens are bound to it.
    pub device_id: Option<String>,
    /// A challenge of [`LoginChallenges`] (base64), signed by the device's key in
    /// `device_signature`: a device that proves its key logs in past the account's back-off.
    pub device_challenge: Option<String>,
    /// The device's Ed25519 signature (base64) of [`device_login_message`].
    pub device_signature: Option<String>,
}

/// A new pair of tokens.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The password is a one-time password: it must be changed.
    pub must_change_password: bool,
}

/// Whether the login request proves possession of its device's key: `Ok(None)` when it names no
/// proof (fewer than all of `device_id`, `device_challenge` and `device_signature`), `Ok(Some(device))` for a good one (an unexpired challenge of this server, answered once,
/// signed by the key of a device enrolled to the officer and not revoked); any other proof is
/// refused with `invalid_device_proof`, which says nothing of the password.
async fn device_proof(context: &Context, request: &Login) -> ApiResult<Option<String>> {
    use base64::Engine as _;
    // A proof needs all three fields; with fewer there is none, and the back-off applies.
    let (Some(device_id), Some(challenge), Some(signature)) =
        (request.device_id.clone(), &request.device_challenge, &request.device_signature)
    else {
        return Ok(None);
    };
    let refused = || ApiError::unauthorized("invalid_device_proof", "the device proof does not verify");
    let engine = base64::engine::general_purpose::STANDARD;
    let (Ok(challenge), Ok(signature)) = (engine.decode(challenge), engine.decode(signature)) else {
        return Err(refused());
    };
    if !context.login_challenges.take(&challenge, std::time::Instant::now()) {
        return Err(refused());
    }
    let id = device_id.clone();
    let device = context.blocking(move |store| store.device(&id)).await?.ok_or_else(refused)?;
    let message = device_login_message(&challenge, &device_id, &request.officer_id);
    if device.officer_id != request.officer_id
        || device.revoked_at_ms.is_some()
        || !verify_device_signature(&device.public_key, &message, &signature)
    {
        return Err(refused());
    }
    Ok(Some(device_id))
}

/// Issues an access token and a refresh token of `family` (a new family when `None`).
pub async fn issue_tokens(
    context: &Context,
    officer_id: &str,
    device_id: Option<String>,
    family: Option<String>,
    must_change_password: bool,
) -> ApiResult<Tokens> {
    let officer = officer_id.to_string();
    let account = context
        .blocking(move |store| store.account(&officer))
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid_credentials", "unknown officer or wrong password"))?;
    let now = now_ms();
    let family = family.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: account.officer_id.clone(),
        iat: now / 1000,
        exp: now / 1000 + ACCESS_TOKEN_SECONDS,
        roles: account.roles.clone(),
        dev: device_id.clone(),
        sid: family.clone(),
        csrf: None,
    };
    let access_token = issue_access_token(&context.signing_keys().await?, &claims)?;
    let (refresh_token, hash) = new_refresh_token();
    let officer = account.officer_id.clone();
    context
        .blocking(move |store| {
            store.store_refresh_token(
                &hash,
                &family,
                &officer,
                device_id.as_deref(),
                now,
                now + REFRESH_TOKEN_SECONDS * 1000,
            )
        })
        .await?;
    Ok(Tokens { access_token, refresh_token, expires_in: ACCESS_TOKEN_SECONDS, must_change_password })
}

/// Logs an officer in, optionally on one of their enrolled devices. The caller has counted the
/// attempt against the client's address first.
pub async fn login(context: &Context, request: Login) -> ApiResult<Tokens> {
    if sync_core::input::identifier("officer_id", &request.officer_id).is_err() {
        Metrics::add(&context.metrics.logins_failed, 1);
        return Err(ApiError::unauthorized("invalid_credentials", "unknown officer or wrong password"));
    }
    // A device that proves its key is not held back by the account's back-off, which guessers
    // from other addresses may have run up: the officer with their phone still logs in.
    let proven = device_proof(context, &request).await?.is_some();
    if !proven {
        context
            .login_backoff
            .check(&request.officer_id, std::time::Instant::now())
            .map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })?;
    }
    let officer = request.officer_id.clone();
    let account = context.blocking(move |store| store.account(&officer)).await?;
    let password = request.password.clone();
    let hash = account.as_ref().and_then(|a| a.password_hash.clone());
    // Verify even for an unknown account, so that timing does not tell which accounts exist.
    let verified = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&hash, &password),
        None => {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            verify_password(DUMMY.get_or_init(|| hash_password("not a password")), &password);
            false
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(account) = account.filter(|_| verified) else {
        Metrics::add(&context.metrics.logins_failed, 1);
        if !proven {
            context.login_backoff.failed(&request.officer_id, std::time::Instant::now());
        }
        return Err(ApiError::unauthorized("invalid_credentials", "unknown officer or wrong password"));
    };
    // A proven device's login leaves the back-off others ran up in place.
    if !proven {
        context.login_backoff.succeeded(&account.officer_id);
    }
    if let Some(device_id) = &request.device_id {
        let id = device_id.clone();
        let device = context.blocking(move |store| store.device(&id)).await?;
        match device {
            Some(d) if d.officer_id == account.officer_id && d.revoked_at_ms.is_none() => {}
            // Ownership first: another officer's device says nothing about its context.
            Some(d) if d.officer_id == account.officer_id => {
                return Err(ApiError::unauthorized("device_revoked", "this device has been revoked"));
            }
            _ => return Err(ApiError::forbidden("device_not_yours", "this device is not enrolled to you")),
        }
    }
    issue_tokens(context, &account.officer_id, request.device_id, None, account.must_change_password).await
}

/// Trades the refresh token whose hash is `hash` for a new pair; the token is used up.
pub async fn refresh(context: &Context, hash: Vec<u8>) -> ApiResult<Tokens> {
    let now = now_ms();
    match context.blocking(move |store| store.use_refresh_token(&hash, now)).await? {
        RefreshUse::Valid { officer_id, device_id, family } => {
            if let Some(id) = device_id.clone() {
                let device = context.blocking(move |store| store.device(&id)).await?;
                if device.is_none_or(|d| d.revoked_at_ms.is_some()) {
                    return Err(ApiError::unauthorized("device_revoked", "this device has been revoked"));
                }
            }
            let account = context.blocking({
                let officer = officer_id.clone();
                move |store| store.account(&officer)
            });
            let must_change = account.await?.is_some_and(|a| a.must_change_password);
            issue_tokens(context, &officer_id, device_id, Some(family), must_change).await
        }
        RefreshUse::Reused { .. } => {
            // The family's session ended with the reuse: its access tokens stop now too.
            context.sessions_ended().await?;
            Err(ApiError::unauthorized(
                "refresh_token_reused",
                "this refresh token was used before; every token of its family is now revoked",
            ))
        }
        RefreshUse::Expired => Err(ApiError::unauthorized("refresh_token_expired", "the refresh token has expired")),
        RefreshUse::Revoked => Err(ApiError::unauthorized("refresh_token_revoked", "the refresh token was revoked")),
        RefreshUse::Unknown => Err(ApiError::unauthorized("invalid_token", "unknown refresh token")),
    }
}

/// Ends the caller's session: its refresh tokens are revoked, and its access tokens are refused
/// from the next request on.
pub async fn logout(context: &Context, caller: &Caller) -> ApiResult<()> {
    let now = now_ms();
    let session = caller.session_id.clone();
    context.blocking(move |store| store.end_session(&session, "logout", now)).await?;
    context.sessions_ended().await
}

/// Changes the caller's own password; every session of the officer ends, this one too.
pub async fn change_password(
    context: &Context,
    caller: &Caller,
    current_password: String,
    new_password: String,
) -> ApiResult<()> {
    if new_password.chars().count() < 12 {
        return Err(ApiError::unprocessable("weak_password", "a password has at least 12 characters"));
    }
    let officer = caller.officer_id.clone();
    let account =
        context.blocking(move |store| store.account(&officer)).await?.ok_or(ApiError::NotFound { what: "account" })?;
    let (current, new) = (current_password, new_password);
    let hash = account.password_hash.unwrap_or_default();
    let new_hash = tokio::task::spawn_blocking(move || verify_password(&hash, &current).then(|| hash_password(&new)))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::unauthorized("invalid_credentials", "the current password is wrong"))?;
    let officer = caller.officer_id.clone();
    context.blocking(move |store| store.set_password(&officer, &new_hash, false)).await?;
    // Every session of the officer ended with the old password, this one too.
    context.sessions_ended().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_wait_doubles_after_its_free_failures_and_a_success_clears_it() {
        let policy = BackoffPolicy { free_failures: 3, base: Duration::from_secs(1), max: Duration::from_secs(10) };
        let backoff = LoginBackoff::new(policy);
        let now = Instant::now();
        let waits: Vec<Option<u64>> = (0..8).map(|_| backoff.failed("O1", now).map(|d| d.as_secs())).collect();
        assert_eq!(waits, [None, None, None, Some(1), Some(2), Some(4), Some(8), Some(10)]);
        assert_eq!(backoff.check("O1", now), Err(10));
        assert_eq!(backoff.check("O1", now + Duration::from_millis(9_500)), Err(1));
        assert_eq!(backoff.check("O1", now + Duration::from_secs(10)), Ok(()));
        assert_eq!(backoff.check("O2", now), Ok(()), "one account's failures are its own");
        backoff.succeeded("O1");
        assert_eq!(backoff.check("O1", now), Ok(()));
        assert_eq!(backoff.failed("O1", now), None, "free failures again");
    }

    #[test]
    fn a_login_challenge_is_answered_once_and_not_after_it_expires() {
        let challenges = LoginChallenges::default();
        let now = Instant::now();
        let challenge = challenges.issue(now).unwrap();
        assert!(challenges.take(&challenge, now));
        assert!(!challenges.take(&challenge, now), "once");
        let late = challenges.issue(now).unwrap();
        assert!(!challenges.take(&late, now + Duration::from_millis(LOGIN_CHALLENGE_MS)));
        assert!(!challenges.take(b"short", now));
    }
}
