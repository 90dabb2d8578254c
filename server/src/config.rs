//! The settings of one running server: limits, timeouts, caps, the log's origin, TLS files.
//!
//! Every layer reads them; nothing here knows how they are served or stored.

use std::path::PathBuf;
use std::time::Duration;

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
    /// How often a certificate is reviewed (年审, P3): a year unless the bureau's rule says
    /// otherwise (`DOMAIN.md`: "reviewed periodically (e.g. annually)"); the review report counts
    /// from the latest review or the start of the latest validity period.
    pub certificate_review_period_ms: i64,
    /// Refresh attempts allowed per refresh token per minute.
    pub auth_attempts_per_minute: u32,
    /// Failed passwords an account may have in a row before it backs off (see
    /// [`LoginBackoff`](crate::service::auth::LoginBackoff)); counted after the address's limit.
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
    /// [`Config::max_body_bytes`] (see [`crate::http::bodies`]).
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
            certificate_review_period_ms: 365 * 86_400_000,
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
}
