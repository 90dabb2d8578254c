//! The bureau's fieldsync server.
//!
//! It knows who may act (identity, roles, certificates, devices), accepts only
//! what the rules allow (the validated sync endpoint), and never loses what it
//! acknowledged (SQLite, committed before answering).
//!
//! [`app`] builds the router from an [`AppState`]; [`run`] serves it on a
//! listener until a shutdown future completes; [`cli`] is the binary over
//! both, with the admin subcommands (`main.rs` only calls it).
//!
//! # Layout
//!
//! - [`store`]: the [`store::Store`] trait and its SQLite implementation.
//! - [`access`]: who may read what; every read path asks it.
//! - [`identity`]: passwords, tokens, rate limits, the [`identity::Caller`] extractor.
//! - [`error`]: [`error::ApiError`], the one error type of the API.
//! - [`routes`]: the handlers, one module per feature, each with a `router()`.
//! - [`media`]: the EXIF a photo claims and its thumbnail, from untrusted bytes.
//! - [`sync`]: the sync exchange, run inside one write transaction.
//! - [`admin`]: the operations the admin subcommands and the admin API share.
//! - [`cli`]: the `fieldsync-server` program: `serve` and the admin subcommands.
//! - [`connections`]: the accept loop: timeouts, the per-address cap, TLS.

pub mod access;
pub mod admin;
pub mod campaigns;
pub mod cli;
pub mod connections;
pub mod error;
pub mod evidence;
pub mod identity;
pub mod media;
pub mod openapi;
pub mod routes;
pub mod store;
pub mod sync;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::error::{ApiError, ApiResult};
use crate::identity::RateLimiter;
use crate::store::{SigningKey, Store};

/// Settings of one running server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Folder of the database and blobs.
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most records in one sync request.
    pub max_documents_per_sync: usize,
    /// Most sync exchanges merged and validated at once: bounds memory and keeps the cores busy
    /// without thrashing.
    pub max_concurrent_syncs: usize,
    /// Most store operations running at once on the blocking pool (default: twice the cores).
    /// More requests wait their turn on the runtime, cheaply, instead of each taking a thread
    /// and (past the store's pool of read connections) opening a connection of its own: a burst
    /// of many devices then costs each request what it costs alone (BENCHMARKS.md: with 200
    /// devices at once, no-op p99 192 ms unbounded, 33 ms at 16, 26 ms at 4).
    pub max_concurrent_store_jobs: usize,
    /// Most change chunks in one record's sync message.
    pub max_changes_per_document: usize,
    /// Most records the server lists as changed in one sync answer.
    pub max_changed_per_sync: usize,
    /// How far ahead of the server's clock a change's time may be.
    pub max_clock_skew_ms: i64,
    /// Refresh attempts allowed per refresh token per minute.
    pub auth_attempts_per_minute: u32,
    /// Failed passwords an account may have in a row before it backs off (see
    /// [`identity::LoginBackoff`]); counted after the address's limit.
    pub auth_free_failures: u32,
    /// An account's first wait after its free failures, in milliseconds; each further failure
    /// doubles it.
    pub auth_backoff_base_ms: u64,
    /// An account's longest wait, in milliseconds.
    pub auth_backoff_max_ms: u64,
    /// Login and refresh attempts allowed per client address per minute: higher, since a whole
    /// unit's phones may share one address behind a NAT.
    pub auth_attempts_per_minute_per_address: u32,
    /// Largest blob (a photo, a recording) an upload may declare, in bytes: an upload holds its
    /// declared size on disk until it is finished.
    pub max_blob_bytes: u64,
    /// Most unfinished uploads one device may hold at once, so that a device cannot fill the
    /// data folder with uploads it never finishes.
    pub max_uploads_per_device: usize,
    /// An unfinished upload left untouched this long is discarded (its row and its partial
    /// file) when its device next starts an upload, so that an abandoned upload does not hold
    /// one of the device's places for ever. The device starts that blob again from zero.
    pub upload_expiry_ms: i64,
    /// The transparency log's origin, the first line of its checkpoints and its key's name. It is
    /// stored with the log's key when the database first needs one and never changes after: a
    /// database that has one keeps it, whatever this says.
    pub log_origin: String,
    /// Whether `/metrics` is served on the API's listener; the program turns it off when the
    /// metrics have an address of their own (`--metrics-listen`) and no token.
    pub metrics_on_api: bool,
    /// A token `/metrics` on the API's listener requires (`Authorization: Bearer`), if any.
    pub metrics_token: Option<String>,
    /// Most entries in one upload of a device's enforcement log.
    pub max_log_entries_per_upload: usize,
    /// Largest payload of one enforcement-log entry, in bytes.
    pub max_log_payload_bytes: usize,
    /// Largest body of the routes whose bodies are a few hundred bytes (login, refresh, logout,
    /// password, device challenge and enrollment), most of which anyone may call unauthenticated.
    pub max_small_body_bytes: usize,
    /// Largest body of the other JSON forms (officers, certificates, tasks, campaigns, ...). Sync,
    /// log uploads, upload chunks and the registry, matter and calendar imports take
    /// [`Config::max_body_bytes`] (see `routes::bodies`).
    pub max_form_body_bytes: usize,
    /// Most bytes of request bodies held in memory at once, all connections together: a body that
    /// would go past it is refused with 503 `server_busy`, so that many slow or large bodies
    /// cannot exhaust the server's memory.
    pub max_body_memory_bytes: usize,
    /// A request's head (its line and headers) must arrive within this time of the connection
    /// being ready for it, or the connection is closed.
    pub header_read_timeout: std::time::Duration,
    /// A request's whole body must arrive within this time of its head, or it is answered 408
    /// `body_timeout` and the connection closed (a client sending a byte every few seconds must
    /// not hold a connection and its memory for ever).
    pub body_read_timeout: std::time::Duration,
    /// A connection with no request in progress that moves no byte either way for this long is
    /// closed (an idle keep-alive connection, or a client that stopped reading its answer).
    pub idle_timeout: std::time::Duration,
    /// Most connections open at once from one client address; more are closed as they are
    /// accepted. A unit's phones behind one NAT share an address, so it is not tiny.
    pub max_connections_per_address: usize,
    /// Most officers on a campaign's team: a draw picks them from the eligible officers, so a
    /// team past any real inspection's size is a mistake, refused with `team_too_large`.
    pub max_team_size: u32,
    /// Most items in each list of a campaign (tiers, divisions, joint departments), refused past
    /// it with `list_too_long`: the campaign is stored and published whole.
    pub max_campaign_list_items: usize,
    /// Most devices enrolled and not revoked per officer: another enrollment is refused with 409
    /// `too_many_devices` until one is revoked.
    pub max_devices_per_officer: usize,
    /// Most enrollment challenges an officer may hold unused and unexpired: another is refused
    /// with 429 `too_many_challenges`. Expired challenges are purged whenever one is issued.
    pub max_open_challenges_per_officer: usize,
    /// Most enforcement-log entries one device may have held (waiting for an earlier entry of its
    /// chain); more are refused, entry by entry, with `too_many_held`, and the device sends them
    /// again once the gap is filled.
    pub max_held_log_entries_per_device: usize,
    /// Most campaigns in one page of `/v1/public/campaigns` (and its HTML page): `?limit=` may ask
    /// for fewer, never more.
    pub max_public_page: usize,
    /// When set, the server speaks HTTPS itself with this certificate chain and key (PEM files),
    /// for a deployment with no proxy in front of it.
    pub tls: Option<TlsFiles>,
}

/// The PEM files the server terminates TLS with (`serve --tls-cert FILE --tls-key FILE`).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The server's certificate, then any intermediates.
    pub certificate_chain: PathBuf,
    /// The certificate's private key (PKCS #8, PKCS #1 or SEC1).
    pub private_key: PathBuf,
}

/// The transparency log's origin unless configured otherwise.
pub const DEFAULT_LOG_ORIGIN: &str = "fieldsync.local/transparency-log";

impl Config {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            max_body_bytes: 16 << 20,
            max_documents_per_sync: 512,
            max_changed_per_sync: 512,
            max_concurrent_syncs: std::thread::available_parallelism().map_or(2, |n| n.get() * 8),
            max_concurrent_store_jobs: std::thread::available_parallelism().map_or(4, |n| n.get() * 2),
            max_changes_per_document: 10_000,
            max_clock_skew_ms: 5 * 60_000,
            auth_attempts_per_minute: 10,
            auth_free_failures: 5,
            auth_backoff_base_ms: 1_000,
            auth_backoff_max_ms: 15 * 60_000,
            auth_attempts_per_minute_per_address: 300,
            max_blob_bytes: 64 << 20,
            max_uploads_per_device: 4,
            upload_expiry_ms: 3 * 24 * 3_600_000,
            log_origin: DEFAULT_LOG_ORIGIN.to_string(),
            metrics_on_api: true,
            metrics_token: None,
            max_log_entries_per_upload: 1_000,
            max_log_payload_bytes: sync_core::enforcement_log::MAX_PAYLOAD_BYTES,
            max_small_body_bytes: 4 << 10,
            max_form_body_bytes: 256 << 10,
            max_body_memory_bytes: 128 << 20,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            max_connections_per_address: 64,
            max_devices_per_officer: 5,
            max_open_challenges_per_officer: 5,
            max_held_log_entries_per_device: 1_000,
            max_public_page: 20,
            max_team_size: 10,
            max_campaign_list_items: 100,
            tls: None,
        }
    }

    /// The database file inside the data folder.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("fieldsync.sqlite3")
    }
}

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

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Permits for sync exchanges in progress (see [`Config::max_concurrent_syncs`]).
    pub sync_slots: Arc<tokio::sync::Semaphore>,
    /// Permits for store operations on the blocking pool (see [`Config::max_concurrent_store_jobs`]).
    store_slots: Arc<tokio::sync::Semaphore>,
    /// The access-token keys, read once (see [`AppState::signing_keys`]).
    keys: Arc<std::sync::RwLock<Option<Arc<Vec<SigningKey>>>>>,
    pub account_limiter: Arc<RateLimiter>,
    pub address_limiter: Arc<RateLimiter>,
    /// Per-account back-off on failed passwords.
    pub login_backoff: Arc<identity::LoginBackoff>,
    /// Open challenges for a device's proof at login.
    pub login_challenges: Arc<identity::LoginChallenges>,
    /// The sessions ended recently, refused at once (see [`identity::SessionRevocations`]).
    pub sessions: Arc<identity::SessionRevocations>,
    pub metrics: Arc<Metrics>,
    /// The transparency log's public identity, read once (see [`AppState::log_identity`]).
    log: Arc<std::sync::OnceLock<Arc<LogPublic>>>,
    /// One permit per byte of request body held in memory (see [`Config::max_body_memory_bytes`]).
    pub body_memory: Arc<tokio::sync::Semaphore>,
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

impl AppState {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let (per_account, per_address) = (config.auth_attempts_per_minute, config.auth_attempts_per_minute_per_address);
        let sync_slots = config.max_concurrent_syncs.max(1);
        let backoff = identity::BackoffPolicy {
            free_failures: config.auth_free_failures,
            base: Duration::from_millis(config.auth_backoff_base_ms),
            max: Duration::from_millis(config.auth_backoff_max_ms),
        };
        let store_slots = config.max_concurrent_store_jobs.max(1);
        let body_memory = config.max_body_memory_bytes.min(tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            config: Arc::new(config),
            store,
            sync_slots: Arc::new(tokio::sync::Semaphore::new(sync_slots)),
            store_slots: Arc::new(tokio::sync::Semaphore::new(store_slots)),
            keys: Arc::new(std::sync::RwLock::new(None)),
            account_limiter: Arc::new(RateLimiter::new(per_account, Duration::from_secs(60))),
            address_limiter: Arc::new(RateLimiter::new(per_address, Duration::from_secs(60))),
            login_backoff: Arc::new(identity::LoginBackoff::new(backoff)),
            login_challenges: Arc::new(identity::LoginChallenges::default()),
            sessions: Arc::new(identity::SessionRevocations::default()),
            metrics: Arc::new(Metrics::default()),
            log: Arc::new(std::sync::OnceLock::new()),
            body_memory: Arc::new(tokio::sync::Semaphore::new(body_memory)),
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
        let verifier_key = sync_core::checkpoint::verifier_key(&identity.origin, &identity.key.verifying_key())
            .map_err(|e| ApiError::Internal(format!("the log's origin cannot name a key: {e}")))?;
        let public = Arc::new(LogPublic { origin: identity.origin, key: identity.key.verifying_key(), verifier_key });
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

    /// Runs a store operation off the async runtime, at most
    /// [`Config::max_concurrent_store_jobs`] at once.
    pub async fn blocking<R: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn Store) -> Result<R, store::StoreError> + Send + 'static,
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
pub fn ensure_log_identity(store: &dyn Store, origin: &str) -> Result<store::LogIdentity, store::StoreError> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    // An origin that cannot name a key would make every checkpoint unsignable: refused before it is kept.
    sync_core::checkpoint::verifier_key(origin, &key.verifying_key())
        .map_err(|e| store::StoreError::Other(format!("the log origin {origin:?} is not usable: {e}")))?;
    store.log_identity(origin, key.to_bytes(), now_ms())
}

/// The server's clock, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The HTTP routes.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then finishes in-flight requests.
///
/// Connections are served by [`connections`]: HTTP/1.1 with the timeouts and the per-address cap
/// of [`Config`], over TLS when [`Config::tls`] names a certificate and key.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = match &state.config.tls {
        Some(files) => Some(connections::tls_acceptor(files)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %listener.local_addr()?, %scheme, data = %state.config.data_dir.display(), "listening");
    let config = state.config.clone();
    connections::serve(listener, app(state), config, tls, shutdown).await
}
