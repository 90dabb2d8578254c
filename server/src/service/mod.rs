//! The use cases: what the server does, whoever asks (the HTTP API, the console, the admin
//! program).
//!
//! Each module is one feature's algorithms over the [`crate::store`] traits; none of them knows
//! HTTP. [`Context`] is what they work with; [`ApiError`] is how they refuse.

pub mod access;
pub mod admin;
pub mod auth;
pub mod blobs;
pub mod campaigns;
pub mod certificates;
pub mod devices;
pub mod enforcement_log;
pub mod error;
pub mod evidence;
pub mod evidence_source;
pub mod media;
pub mod records;
pub mod recusals;
pub mod review;
pub mod sync;
pub mod sync_commit;
pub mod tasks;
pub mod transparency;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use error::{ApiError, ApiResult};

use crate::config::Config;
use crate::store::{LogIdentity, SigningKey, Store, StoreError};

/// Counters served on `/metrics`.
#[derive(Default, Debug)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub sync_requests: AtomicU64,
    pub records_merged: AtomicU64,
    pub changes_refused: AtomicU64,
    pub logins_failed: AtomicU64,
    /// Sync exchanges run again inside the writer because a record changed under them.
    pub sync_retries: AtomicU64,
    /// Enforcement-log entries that joined their device's chain (held ones included, when their
    /// gap was filled).
    pub log_entries_accepted: AtomicU64,
    /// Enforcement-log entries held until an earlier entry of their chain arrives.
    pub log_entries_held: AtomicU64,
    /// Enforcement-log entries that conflict with their device's chain.
    pub log_entries_forked: AtomicU64,
    /// Enforcement-log entries refused (bad signature, another device's, payload mismatch, invalid).
    pub log_entries_refused: AtomicU64,
    /// Accepted enforcement-log entries naming a checkpoint the log never had.
    pub log_unknown_checkpoints: AtomicU64,
    /// Leaves appended to the transparency log.
    pub log_leaves_appended: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every use case works with: the settings, the store, the permits that bound the work
/// running at once, and the state kept in memory (keys, ended sessions, backoff, challenges).
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Permits for sync exchanges in progress (see [`Config::max_concurrent_syncs`]).
    pub sync_slots: Arc<tokio::sync::Semaphore>,
    /// Permits for store operations on the blocking pool (see [`Config::max_concurrent_store_jobs`]).
    store_slots: Arc<tokio::sync::Semaphore>,
    /// The access-token keys, read once (see [`Context::signing_keys`]).
    keys: Arc<std::sync::RwLock<Option<Arc<Vec<SigningKey>>>>>,
    /// Per-account back-off on failed passwords.
    pub login_backoff: Arc<auth::LoginBackoff>,
    /// Open challenges for a device's proof at login.
    pub login_challenges: Arc<auth::LoginChallenges>,
    /// The sessions ended recently, refused at once (see [`auth::SessionRevocations`]).
    pub sessions: Arc<auth::SessionRevocations>,
    pub metrics: Arc<Metrics>,
    /// The transparency log's public identity, read once (see [`Context::log_identity`]).
    log: Arc<std::sync::OnceLock<Arc<LogPublic>>>,
}

/// What anyone may know of the transparency log's identity.
#[derive(Clone, Debug)]
pub struct LogPublic {
    /// The origin: the first line of every checkpoint and the name of the log's key.
    pub origin: String,
    /// The Ed25519 public key that checkpoints are signed with.
    pub key: ed25519_dalek::VerifyingKey,
    /// The note verifier key, `<origin>+<key id>+<base64 key>`, that opens the checkpoints.
    pub verifier_key: String,
}

impl Context {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let sync_slots = config.max_concurrent_syncs.max(1);
        let backoff = auth::BackoffPolicy {
            free_failures: config.auth_free_failures,
            base: Duration::from_millis(config.auth_backoff_base_ms),
            max: Duration::from_millis(config.auth_backoff_max_ms),
        };
        let store_slots = config.max_concurrent_store_jobs.max(1);
        Self {
            config: Arc::new(config),
            store,
            sync_slots: Arc::new(tokio::sync::Semaphore::new(sync_slots)),
            store_slots: Arc::new(tokio::sync::Semaphore::new(store_slots)),
            keys: Arc::new(std::sync::RwLock::new(None)),
            login_backoff: Arc::new(auth::LoginBackoff::new(backoff)),
            login_challenges: Arc::new(auth::LoginChallenges::default()),
            sessions: Arc::new(auth::SessionRevocations::default()),
            metrics: Arc::new(Metrics::default()),
            log: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The transparency log's identity. The first call makes sure the store holds one: a new
    /// Ed25519 key and [`Config::log_origin`] when it has none, else the stored ones, kept.
    pub async fn log_identity(&self) -> ApiResult<Arc<LogPublic>> {
        if let Some(log) = self.log.get() {
            return Ok(log.clone());
        }
        let origin = self.config.log_origin.clone();
        let identity = self.blocking(move |store| ensure_log_identity(store, &origin)).await?;
        let verifier_key = sync_core::checkpoint::verifier_key(&identity.origin, &identity.public_key)
            .map_err(|e| ApiError::Internal(format!("the log's origin cannot name a key: {e}")))?;
        let public = Arc::new(LogPublic { origin: identity.origin, key: identity.public_key, verifier_key });
        Ok(self.log.get_or_init(|| public).clone())
    }

    /// The keys access tokens are signed and checked with.
    ///
    /// They are read from the store once and kept; a token naming a key not kept yet (rotated in
    /// by another process) makes the server read them again.
    pub async fn signing_keys(&self) -> ApiResult<Arc<Vec<SigningKey>>> {
        if let Some(keys) = self.keys.read().map_err(|_| ApiError::Internal("poisoned".into()))?.clone() {
            return Ok(keys);
        }
        self.reload_signing_keys().await
    }

    /// Reads the signing keys from the store again.
    pub async fn reload_signing_keys(&self) -> ApiResult<Arc<Vec<SigningKey>>> {
        let keys = Arc::new(self.blocking(|store| store.signing_keys()).await?);
        *self.keys.write().map_err(|_| ApiError::Internal("poisoned".into()))? = Some(keys.clone());
        Ok(keys)
    }

    /// Reads the ended sessions again now: after this server ended one, so that its access
    /// tokens are refused from the next request on.
    pub async fn sessions_ended(&self) -> ApiResult<()> {
        let sessions = self.sessions.clone();
        self.blocking(move |store| sessions.refresh(store, now_ms())).await
    }

    /// Whether the server can serve: the store answers and its writer runs (`unavailable` if not).
    pub async fn ready(&self) -> ApiResult<()> {
        let ready = self.blocking(|store| Ok(store.ready())).await?;
        if ready { Ok(()) } else { Err(ApiError::Unavailable) }
    }

    /// Whether the metrics may be read on the API's address by a caller who `presented` this
    /// token: `not_found` when they are not served there, `metrics_token_required` when a token
    /// is needed and this one is not it.
    pub fn metrics_access(&self, presented: &str) -> ApiResult<()> {
        use sha2::{Digest, Sha256};
        if !self.config.metrics_on_api {
            return Err(ApiError::NotFound { what: "route" });
        }
        if let Some(token) = &self.config.metrics_token {
            // Compared by hash, so that the time taken says nothing of how much of it matched.
            if Sha256::digest(presented.as_bytes()) != Sha256::digest(token.as_bytes()) {
                return Err(ApiError::unauthorized(
                    "metrics_token_required",
                    "the metrics need the metrics token as Authorization: Bearer",
                ));
            }
        }
        Ok(())
    }

    /// Runs a store operation off the async runtime, at most
    /// [`Config::max_concurrent_store_jobs`] at once.
    pub async fn blocking<R: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> ApiResult<R> {
        let _slot = self.store_slots.acquire().await.map_err(|_| ApiError::Unavailable)?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || job(store.as_ref()))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::from)
    }
}

/// The transparency log's identity from `store`, made with a new random key and `origin` when it
/// holds none yet.
pub fn ensure_log_identity(store: &dyn Store, origin: &str) -> Result<LogIdentity, StoreError> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    // An origin that cannot name a key would make every checkpoint unsignable: refused before it is kept.
    sync_core::checkpoint::verifier_key(origin, &key.verifying_key())
        .map_err(|e| StoreError::Other(format!("the log origin {origin:?} is not usable: {e}")))?;
    crate::service::transparency::log_identity(store, origin, key.to_bytes(), now_ms())
}

/// The server's clock, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
