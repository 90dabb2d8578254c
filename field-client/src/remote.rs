//! What the device does with the network: enrollment, tokens, and sync.
//!
//! A sync fetches the officer's tasks (with each team's certificates, so that
//! signing can be checked offline), then runs `sync-core`'s [`DeviceSession`]
//! against `POST /v1/sync` in CBOR until it has nothing more to say. After
//! every answered round the store is written in one transaction: the
//! documents that changed, every sync state, the pending set, the server
//! cursor, and the changes the server refused. A round whose answer is lost
//! changes nothing here; the next attempt starts from what was written, and
//! the Automerge sync protocol does not resend what the server confirmed.
//!
//! Transient failures (the network, 429, 5xx) are retried with exponential
//! backoff and full jitter. Changes the server refuses are taken out of the
//! device's working copy (with whatever was built on them) and kept with
//! their reasons, so that device and server converge on what was accepted.
//!
//! After the records come the photos (in resumable chunks) and then the
//! device's enforcement-log chain (`POST /v1/log/entries`); the answer's
//! signed checkpoint of the server's transparency log, verified with the
//! log's key, is what the device's next entries name as seen.
//!
//! On the wire: sync and log bodies from 1 KiB on go zstd-compressed (level 3) with
//! `Content-Encoding: zstd`, and if the server answers 415 `unsupported_content_encoding` they
//! go again as they are, and so for the rest of this device object's life; answers are asked
//! for in zstd (`Accept-Encoding`) and decoded here, so that [`SyncSummary`] counts the bytes
//! that crossed the wire. The task list and each team are asked with the `ETag` of the body
//! held from last time (`If-None-Match`); a 304 answer costs no body and the held one is used.

mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::TryLockError;
use std::time::Duration;
use wire::{ANSWER_CODINGS, Answer, answer_body, refused, request_body};

use automerge::{Automerge, ChangeHash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use schemas::SyncResponse;
use schemas::log::{EntryOutcome, LogUpload, LogUploadResponse, SeenCheckpoint, UploadedEntry};
use serde::Deserialize;
use sync_core::checkpoint::{Checkpoint, open_note, parse_verifier_key};
use sync_core::session::{DeviceSession, Documents, SessionConfig};

use crate::device::{Clock, Device, Task};
use crate::error::{ClientError, ClientResult};
use crate::store::{
    CachedTask, DeviceStore, ExchangeWrite, Identity, RefusedChange, SyncedDocument, Tokens, WrittenDocument,
};
use crate::transport::{Transport, http_client, network};

/// How a sync retries and how much one request carries.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first retry waits up to this long; each further one up to twice the previous.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Per-request bounds of the sync session.
    pub session: SessionConfig,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Keep HTTP connections open between requests (off: one connection per request).
    pub keep_alive: bool,
    /// Bytes of a photo sent in one request of an upload.
    pub upload_chunk_bytes: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            session: SessionConfig { max_documents_per_request: 64, max_request_bytes: 1 << 20 },
            request_timeout: Duration::from_secs(60),
            keep_alive: true,
            upload_chunk_bytes: 256 << 10,
        }
    }
}

/// Where a sync is, after each answered round.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SyncProgress {
    /// Requests answered so far.
    pub requests: usize,
    /// Records still to talk about in this attempt.
    pub pending: usize,
    /// Records still pending when the sync started.
    pub pending_at_start: usize,
    /// Photo bytes the server holds, of those this sync uploads.
    pub photo_bytes_sent: u64,
    pub photo_bytes_total: u64,
}

/// What a sync did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncSummary {
    /// HTTP requests answered: the task list, each task's team, and the sync rounds.
    pub requests: usize,
    /// Bytes of request and answer bodies (headers not counted).
    pub bytes_up: usize,
    pub bytes_down: usize,
    /// Failed attempts that were retried.
    pub retries: u32,
    /// Records whose content changed here.
    pub received: BTreeSet<String>,
    /// Records whose changes this device sent (a record the server already had is not here).
    pub uploaded: BTreeSet<String>,
    /// Changes refused in this sync, with their reasons.
    pub refused: Vec<RefusedChange>,
    pub tasks: usize,
    /// The server's change cursor this device has caught up to.
    pub cursor: Option<u64>,
    /// Records whose message from the server could not be applied, with why: the next sync
    /// asks for them again.
    pub errors: Vec<(String, String)>,
    /// Photos the server now holds, uploaded by this sync.
    pub photos_uploaded: Vec<String>,
    /// Photos the server refused (SHA-256, code), kept on the device.
    pub photo_errors: Vec<(String, String)>,
    /// Enforcement-log entries the server now holds, uploaded by this sync.
    pub log_uploaded: usize,
    /// Entries the server refused or found forked (seq, code); refused ones stay on the device.
    pub log_errors: Vec<(u64, String)>,
    /// The transparency-log checkpoint the device saw at the end of this sync.
    pub checkpoint: Option<SeenCheckpoint>,
}

#[derive(Deserialize)]
struct UploadAnswer {
    #[serde(default)]
    upload_id: Option<String>,
    /// Absent from the answer to a finish.
    #[serde(default)]
    offset: u64,
    complete: bool,
}

/// The delay before retry number `attempt` (1 for the first retry): uniform in
/// `[0, min(max, base * 2^(attempt-1))]` ("full jitter").
pub fn backoff_delay(options: &SyncOptions, attempt: u32) -> Duration {
    let ceiling = options.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(options.max_delay);
    ceiling.mul_f64(rand::random::<f64>())
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

#[derive(Deserialize)]
struct ChallengeAnswer {
    challenge: String,
}

#[derive(Deserialize)]
struct Enrolled {
    device_id: String,
    tokens: TokenAnswer,
}

fn tokens(answer: TokenAnswer, now_ms: i64) -> Tokens {
    Tokens {
        access_token: answer.access_token,
        access_expires_at_ms: now_ms + answer.expires_in * 1000,
        refresh_token: answer.refresh_token,
    }
}

async fn post_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: serde_json::Value,
) -> ClientResult<T> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(network)?;
    if !response.status().is_success() {
        return Err(refused(response).await);
    }
    let bytes = response.bytes().await.map_err(network)?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol { detail: e.to_string() })
}

/// Enrolls a new device in `dir` with the server at `server`: logs the officer in, answers the
/// server's challenge with a new Ed25519 key and a new Automerge actor id, and stores both.
pub async fn enroll(dir: &std::path::Path, server: &str, officer_id: &str, password: &str) -> ClientResult<Device> {
    enroll_with_clock(dir, server, officer_id, password, crate::device::system_clock()).await
}

/// [`enroll`] with the device's clock.
pub async fn enroll_with_clock(
    dir: &std::path::Path,
    server: &str,
    officer_id: &str,
    password: &str,
    clock: Clock,
) -> ClientResult<Device> {
    enroll_with(dir, server, officer_id, password, &Transport::default(), clock).await
}

/// [`enroll`] trusting `transport` (the bureau's CA, plain HTTP allowed) from now on, with the
/// device's clock. Nothing is sent to a server that `transport` does not allow.
pub async fn enroll_with(
    dir: &std::path::Path,
    server: &str,
    officer_id: &str,
    password: &str,
    transport: &Transport,
    clock: Clock,
) -> ClientResult<Device> {
    let store = DeviceStore::open(dir)?;
    if store.identity()?.is_some() {
        return Err(ClientError::AlreadyEnrolled);
    }
    let server = server.trim_end_matches('/').to_string();
    let http = http_client(&server, transport, Duration::from_secs(60), true)?;
    store.set_transport(transport)?;
    let login: TokenAnswer = post_json(
        &http,
        format!("{server}/v1/auth/login"),
        None,
        serde_json::json!({ "officer_id": officer_id, "password": password }),
    )
    .await?;
    let challenge: ChallengeAnswer =
        post_json(&http, format!("{server}/v1/devices/challenge"), Some(&login.access_token), serde_json::json!({}))
            .await?;
    let challenge = STANDARD
        .decode(&challenge.challenge)
        .map_err(|e| ClientError::Protocol { detail: format!("challenge: {e}") })?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let actor: [u8; 16] = rand::random();
    let public = key.verifying_key().to_bytes();
    let signature = key.sign(&schemas::device::enrollment_message(&challenge, &public, &actor));
    let enrolled: Enrolled = post_json(
        &http,
        format!("{server}/v1/devices"),
        Some(&login.access_token),
        serde_json::json!({
            "challenge": STANDARD.encode(&challenge),
            "public_key": STANDARD.encode(public),
            "actor_id": hex::encode(actor),
            "signature": STANDARD.encode(signature.to_bytes()),
        }),
    )
    .await?;
    let identity = Identity {
        server,
        device_id: enrolled.device_id,
        officer_id: officer_id.to_string(),
        actor_id: hex::encode(actor),
    };
    store.enroll(&identity, &key.to_bytes(), &tokens(enrolled.tokens, clock()))?;
    drop(store);
    let mut device = Device::open(dir)?;
    device.set_clock(clock);
    Ok(device)
}

/// Record documents loaded from the store on first use during a sync.
struct SyncDocuments<'a> {
    store: &'a DeviceStore,
    /// Loaded documents with the version they were loaded at and their task.
    loaded: BTreeMap<String, (Option<i64>, Option<String>, Automerge)>,
    error: Option<ClientError>,
}

impl Documents for SyncDocuments<'_> {
    fn document(&mut self, record_id: &str) -> Option<&mut Automerge> {
        if !self.loaded.contains_key(record_id) {
            match self.store.record(record_id) {
                Ok(Some(stored)) => match Automerge::load(&stored.document) {
                    Ok(doc) => {
                        self.loaded.insert(record_id.to_string(), (Some(stored.version), stored.task_id, doc));
                    }
                    Err(error) => {
                        self.error = Some(ClientError::CorruptStore { detail: format!("record {record_id}: {error}") });
                        return None;
                    }
                },
                Ok(None) => return None,
                Err(error) => {
                    self.error = Some(error);
                    return None;
                }
            }
        }
        self.loaded.get_mut(record_id).map(|(_, _, doc)| doc)
    }

    fn document_or_empty(&mut self, record_id: &str) -> &mut Automerge {
        if self.document(record_id).is_none() {
            self.loaded.entry(record_id.to_string()).or_insert((None, None, Automerge::new()));
        }
        &mut self.loaded.get_mut(record_id).expect("just loaded or created").2
    }
}

impl Device {
    /// An HTTP client for the device's server, trusting what was kept at enrollment.
    fn http(&self, timeout: Duration, keep_alive: bool) -> ClientResult<reqwest::Client> {
        http_client(&self.identity.server, &self.store.transport()?, timeout, keep_alive)
    }

    /// Logs in again with the officer's password (after `login_required`), keeping the device.
    pub async fn login(&mut self, password: &str) -> ClientResult<()> {
        let http = self.http(Duration::from_secs(60), true)?;
        let answer: TokenAnswer = post_json(
            &http,
            format!("{}/v1/auth/login", self.identity.server),
            None,
            serde_json::json!({
                "officer_id": self.identity.officer_id,
                "password": password,
                "device_id": self.identity.device_id,
            }),
        )
        .await?;
        self.store.save_tokens(&tokens(answer, self.now_ms()))
    }

    /// An access token that has not expired, refreshed (and the refresh token rotated) if needed.
    async fn access_token(&self, http: &reqwest::Client, force_refresh: bool) -> ClientResult<String> {
        let current = self.store.tokens()?.ok_or(ClientError::LoginRequired)?;
        if !force_refresh && current.access_expires_at_ms > self.now_ms() + 30_000 {
            return Ok(current.access_token);
        }
        let answer: Result<TokenAnswer, ClientError> = post_json(
            http,
            format!("{}/v1/auth/refresh", self.identity.server),
            None,
            serde_json::json!({ "refresh_token": current.refresh_token }),
        )
        .await;
        match answer {
            Ok(answer) => {
                let fresh = tokens(answer, self.now_ms());
                self.store.save_tokens(&fresh)?;
                Ok(fresh.access_token)
            }
            Err(ClientError::Server { status: 401, code, .. }) if code == "device_revoked" => {
                Err(ClientError::Server { status: 401, code, message: "this device has been revoked".into() })
            }
            Err(ClientError::Server { status: 401, .. }) => Err(ClientError::LoginRequired),
            Err(other) => Err(other),
        }
    }

    /// Sends one authorized request, refreshing the access token once if the server says it
    /// has expired. Returns the answer's bytes.
    async fn authorized(
        &self,
        http: &reqwest::Client,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> ClientResult<Answer> {
        let mut token = self.access_token(http, false).await?;
        for attempt in 0..2 {
            let response =
                build(&token).header(reqwest::header::ACCEPT_ENCODING, ANSWER_CODINGS).send().await.map_err(network)?;
            if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_MODIFIED {
                return answer_body(response).await;
            }
            let error = refused(response).await;
            match &error {
                ClientError::Server { status: 401, code, .. }
                    if attempt == 0 && (code == "token_expired" || code == "invalid_token") =>
                {
                    token = self.access_token(http, true).await?;
                }
                _ => return Err(error),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Fetches the officer's tasks and their teams into the cache.
    async fn fetch_tasks(&self, http: &reqwest::Client, summary: &mut SyncSummary) -> ClientResult<usize> {
        let server = self.identity.server.clone();
        let tasks_url = format!("{server}/v1/tasks");
        let body = self.validated_get(http, &tasks_url, summary).await?;
        let tasks: Vec<Task> =
            serde_json::from_slice(&body).map_err(|e| ClientError::Protocol { detail: format!("tasks: {e}") })?;
        let mut cached = Vec::new();
        let mut urls = vec![tasks_url];
        for task in tasks.iter().filter(|t| t.team.contains(&self.identity.officer_id)) {
            let url = format!("{server}/v1/tasks/{}/team", task.task_id);
            let body = self.validated_get(http, &url, summary).await?;
            let team: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| ClientError::Protocol { detail: format!("team: {e}") })?;
            cached.push(CachedTask { task_id: task.task_id.clone(), team, fetched_at_ms: self.now_ms() });
            urls.push(url);
        }
        self.store.replace_tasks(&cached)?;
        self.store.keep_validators(&urls)?;
        Ok(cached.len())
    }

    /// `POST url` with a CBOR body, compressed unless the server said it takes no coding
    /// (then sent again as it is, and never compressed again by this device object). Counts
    /// the bytes both ways as they crossed the wire.
    async fn post_cbor(
        &self,
        http: &reqwest::Client,
        url: &str,
        body: Vec<u8>,
        summary: &mut SyncSummary,
    ) -> ClientResult<Answer> {
        let compress = self.compress_requests.load(std::sync::atomic::Ordering::Relaxed);
        let (sent, coding) = request_body(body.clone(), compress);
        let post = |body: &Vec<u8>, coding: Option<&'static str>| {
            let body = body.clone();
            move |token: &str| {
                let request = http
                    .post(url)
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/cbor")
                    .header(reqwest::header::ACCEPT, "application/cbor");
                match coding {
                    Some(coding) => request.header(reqwest::header::CONTENT_ENCODING, coding),
                    None => request,
                }
                .body(body.clone())
            }
        };
        summary.bytes_up += sent.len();
        let answer = match self.authorized(http, post(&sent, coding)).await {
            Err(ClientError::Server { status: 415, code, .. })
                if coding.is_some() && code == "unsupported_content_encoding" =>
            {
                self.compress_requests.store(false, std::sync::atomic::Ordering::Relaxed);
                summary.bytes_up += body.len();
                self.authorized(http, post(&body, None)).await?
            }
            other => other?,
        };
        summary.bytes_down += answer.wire;
        Ok(answer)
    }

    /// `GET url`, naming in `If-None-Match` the validator of the body the device holds for it:
    /// a 304 answer costs no body and the held one is used.
    async fn validated_get(
        &self,
        http: &reqwest::Client,
        url: &str,
        summary: &mut SyncSummary,
    ) -> ClientResult<Vec<u8>> {
        let held = self.store.validator(url)?;
        let answer = self
            .authorized(http, |token| {
                let request = http.get(url).bearer_auth(token);
                match &held {
                    Some((etag, _)) => request.header(reqwest::header::IF_NONE_MATCH, etag.as_str()),
                    None => request,
                }
            })
            .await?;
        summary.requests += 1;
        summary.bytes_down += answer.wire;
        if answer.not_modified {
            return held.map(|(_, body)| body).ok_or_else(|| ClientError::Protocol {
                detail: format!("{url}: 304 to a request that named no validator"),
            });
        }
        if let Some(etag) = &answer.etag {
            self.store.put_validator(url, etag, &answer.body)?;
        }
        Ok(answer.body)
    }

    /// Syncs with the server until nothing is left to say, retrying transient failures.
    /// `progress` hears after every answered round.
    pub async fn sync(
        &mut self,
        options: &SyncOptions,
        mut progress: impl FnMut(&SyncProgress),
    ) -> ClientResult<SyncSummary> {
        let lock_path = self.dir.join("sync.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| ClientError::Io { path: lock_path.clone(), error: e.to_string() })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(ClientError::SyncBusy),
            Err(TryLockError::Error(e)) => return Err(ClientError::Io { path: lock_path, error: e.to_string() }),
        }
        let http = self.http(options.request_timeout, options.keep_alive)?;
        let mut summary = SyncSummary::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.sync_once(&http, options, &mut summary, &mut progress).await {
                Ok(()) => return Ok(summary),
                Err(error) if error.is_transient() && attempt < options.max_attempts => {
                    summary.retries += 1;
                    tokio::time::sleep(backoff_delay(options, attempt)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn sync_once(
        &mut self,
        http: &reqwest::Client,
        options: &SyncOptions,
        summary: &mut SyncSummary,
        progress: &mut impl FnMut(&SyncProgress),
    ) -> ClientResult<()> {
        summary.tasks = self.fetch_tasks(http, summary).await?;
        let snapshot = self.store.sync_snapshot()?;
        let mut session =
            DeviceSession::restore(options.session, snapshot.cursor, snapshot.pending.keys().cloned(), snapshot.states)
                .map_err(|e| ClientError::CorruptStore { detail: format!("sync state: {e}") })?;
        session.begin();
        let pending_at_start = session.pending().len();
        // Pending rows as this sync knows them (record, version): those of the start, and those
        // its own writes add; a row is cleared only at the version known here, so a local edit
        // made meanwhile by another process stays pending.
        let mut pending_known = snapshot.pending.clone();
        // Records whose message from the server could not be applied in this sync.
        let mut failed: BTreeSet<String> = BTreeSet::new();
        let mut docs = SyncDocuments { store: &self.store, loaded: BTreeMap::new(), error: None };
        let url = format!("{}/v1/sync", self.identity.server);
        let mut requests = 0;
        while let Some(request) = session.poll(&mut docs) {
            if let Some(error) = docs.error.take() {
                return Err(error);
            }
            let named: BTreeSet<String> = request.documents.iter().map(|d| d.record_id.clone()).collect();
            for document in &request.documents {
                if automerge::sync::Message::decode(&document.message).is_ok_and(|m| !m.changes.is_empty()) {
                    summary.uploaded.insert(document.record_id.clone());
                }
            }
            let answer = self.post_cbor(http, &url, schemas::wire::to_cbor(&request), summary).await?;
            summary.requests += 1;
            requests += 1;
            let response: SyncResponse = schemas::wire::from_cbor(&answer)
                .map_err(|e| ClientError::Protocol { detail: format!("sync answer: {}", e.detail) })?;
            let answered: BTreeSet<String> = response.documents.iter().map(|d| d.record_id.clone()).collect();
            let report =
                session.handle(response, &mut docs).map_err(|e| ClientError::Protocol { detail: e.to_string() })?;
            if let Some(error) = docs.error.take() {
                return Err(error);
            }
            // A message that does not apply leaves that record for the next sync; the others go on.
            for (record_id, error) in &report.errors {
                session.set_aside(record_id);
                failed.insert(record_id.clone());
                summary.errors.push((record_id.clone(), error.clone()));
            }
            let now = self.now_ms();
            let mut changed: BTreeSet<String> = report.updated.iter().cloned().collect();
            let mut write = ExchangeWrite::default();
            // Refused changes leave the working copy, with everything built on them. A change
            // the server only could not place yet (its dependency missing), or that it takes only
            // from its own device (a teammate's change this device holds, after the server was
            // restored from a backup), is not refused: the record stays pending and the change
            // is offered again.
            let mut by_record: BTreeMap<String, Vec<&schemas::ChangeRejection>> = BTreeMap::new();
            for rejection in &report.rejections {
                if matches!(
                    rejection.reason,
                    schemas::RejectionReason::MissingDependency { .. }
                        | schemas::RejectionReason::ActorNotBoundToDevice { .. }
                ) {
                    session.record_changed(&rejection.record_id);
                } else {
                    by_record.entry(rejection.record_id.clone()).or_default().push(rejection);
                }
            }
            for (record_id, rejections) in by_record {
                let mut refused: Vec<RefusedChange> = Vec::new();
                let hashes: Vec<ChangeHash> = rejections.iter().filter_map(|r| r.change_hash.parse().ok()).collect();
                if let Some((_, _, doc)) = docs.loaded.get_mut(&record_id) {
                    let (kept, dropped) = sync_core::rebase::without_changes(doc, &hashes)
                        .map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
                    for change in &dropped {
                        let hash = change.hash().to_string();
                        let reason = rejections
                            .iter()
                            .find(|r| r.change_hash == hash)
                            .map(|r| serde_json::to_value(&r.reason).unwrap_or_default())
                            .unwrap_or_else(|| serde_json::json!({ "code": "depends_on_refused_change" }));
                        refused.push(RefusedChange {
                            record_id: record_id.clone(),
                            change_hash: hash,
                            reason,
                            change: Some(change.raw_bytes().to_vec()),
                            refused_at_ms: now,
                        });
                    }
                    if !dropped.is_empty() {
                        *doc = kept;
                        changed.insert(record_id.clone());
                        session.forget_record_state(&record_id);
                        write.forget_states.push(record_id.clone());
                    }
                }
                // A refusal of a change this device no longer has, or of the whole record (an
                // empty hash), is kept too.
                for rejection in &rejections {
                    if !refused.iter().any(|r| r.change_hash == rejection.change_hash) {
                        refused.push(RefusedChange {
                            record_id: record_id.clone(),
                            change_hash: rejection.change_hash.clone(),
                            reason: serde_json::to_value(&rejection.reason).unwrap_or_default(),
                            change: None,
                            refused_at_ms: now,
                        });
                    }
                }
                write.refused.extend(refused);
            }
            for record_id in &changed {
                let (version, task_id, doc) = &docs.loaded[record_id];
                let task_id = task_id.clone().or_else(|| sync_core::document::read_task_id(doc));
                write.documents.push(SyncedDocument {
                    record_id: record_id.clone(),
                    loaded_version: *version,
                    task_id,
                    document: doc.save(),
                });
            }
            for record_id in named.union(&answered) {
                if write.forget_states.contains(record_id) {
                    continue;
                }
                if let Some(state) = session.encoded_state(record_id) {
                    write.states.push((record_id.clone(), state));
                }
            }
            write.pending = session.pending().union(&failed).cloned().collect();
            write.pending_before = pending_known.clone();
            // After a message that did not apply, the stored cursor stays where it was, so that
            // the next sync is offered that record again.
            write.cursor = if failed.is_empty() { session.cursor() } else { None };
            let written = self.store.write_exchange(&write, now, |stored, synced| {
                let mut stored =
                    Automerge::load(stored).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
                let mut synced =
                    Automerge::load(synced).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
                stored.merge(&mut synced).map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
                Ok(stored.save())
            })?;
            // Written documents are at their new versions; one merged with an edit made
            // meanwhile is reloaded and has something new to say.
            pending_known.extend(written.pending_added);
            for WrittenDocument { record_id, version, merged } in written.documents {
                if let Some(entry) = docs.loaded.get_mut(&record_id) {
                    entry.0 = Some(version);
                    if let Some(merged) = merged {
                        entry.2 = Automerge::load(&merged)
                            .map_err(|e| ClientError::CorruptStore { detail: e.to_string() })?;
                        session.record_changed(&record_id);
                    }
                }
            }
            summary.received.extend(report.updated);
            summary.refused.extend(write.refused);
            summary.cursor = session.cursor();
            progress(&SyncProgress {
                requests,
                pending: session.pending().len(),
                pending_at_start,
                ..SyncProgress::default()
            });
        }
        if let Some(error) = docs.error.take() {
            return Err(error);
        }
        // The last poll found nothing more to say about the records still pending: they are not.
        let settled = ExchangeWrite {
            pending: session.pending().union(&failed).cloned().collect(),
            pending_before: pending_known,
            cursor: if failed.is_empty() { session.cursor() } else { None },
            ..ExchangeWrite::default()
        };
        self.store.write_exchange(&settled, self.now_ms(), |_, synced| Ok(synced.to_vec()))?;
        self.upload_photos(http, options, summary, progress).await?;
        self.upload_log(http, summary).await
    }

    /// Uploads the enforcement-log entries the server has not taken, in chain order and in
    /// batches, then keeps the server's latest checkpoint (verified with the log's key) for the
    /// next entries to name. An entry the server refuses stays on the device, reported, and is
    /// offered again next time; held and forked entries are the server's to keep. With nothing
    /// to upload, the log is not asked anything.
    async fn upload_log(&mut self, http: &reqwest::Client, summary: &mut SyncSummary) -> ClientResult<()> {
        const BATCH: usize = 500;
        if self.store.log_to_upload(1)?.is_empty() {
            return Ok(());
        }
        let server = self.identity.server.clone();
        let key = self.log_key(http, summary).await?;
        let mut note = None;
        loop {
            let batch = self.store.log_to_upload(BATCH)?;
            if batch.is_empty() {
                break;
            }
            let upload = LogUpload {
                entries: batch
                    .iter()
                    .map(|(signed, payload)| UploadedEntry { signed: signed.clone(), payload: payload.clone() })
                    .collect(),
            };
            let answer = self
                .post_cbor(http, &format!("{server}/v1/log/entries"), schemas::wire::to_cbor(&upload), summary)
                .await?;
            summary.requests += 1;
            let answer: LogUploadResponse = schemas::wire::from_cbor(&answer)
                .map_err(|e| ClientError::Protocol { detail: format!("log upload: {e}") })?;
            let mut taken = Vec::new();
            for outcome in &answer.outcomes {
                match outcome {
                    EntryOutcome::Accepted { seq, .. }
                    | EntryOutcome::Duplicate { seq }
                    | EntryOutcome::Held { seq } => taken.push(*seq),
                    EntryOutcome::Fork { seq } => {
                        taken.push(*seq);
                        summary.log_errors.push((*seq, "fork".into()));
                    }
                    EntryOutcome::Refused { seq, code, .. } => summary.log_errors.push((*seq, code.clone())),
                }
            }
            self.store.mark_log_uploaded(&taken)?;
            summary.log_uploaded += taken.len();
            note = Some(answer.checkpoint);
            // Refused entries stay: stop rather than offer them again in this sync.
            if taken.len() < batch.len() || batch.len() < BATCH {
                break;
            }
        }
        if let Some(note) = note {
            let (name, key) = &key;
            let (text, _) = open_note(&note, &[(name.as_str(), *key)])
                .map_err(|e| ClientError::Protocol { detail: format!("the log's checkpoint: {e}") })?;
            let checkpoint = Checkpoint::parse_body(&text)
                .map_err(|e| ClientError::Protocol { detail: format!("the log's checkpoint: {e}") })?;
            let seen = SeenCheckpoint { size: checkpoint.size, root: checkpoint.root };
            self.store.see_checkpoint(&seen, &note)?;
            summary.checkpoint = Some(seen);
        }
        Ok(())
    }

    /// The transparency log's verifier key: the one stored at the first sync, else fetched and
    /// stored (trust on first use; a reviewer compares it with the bureau's published key).
    async fn log_key(
        &self,
        http: &reqwest::Client,
        summary: &mut SyncSummary,
    ) -> ClientResult<(String, ed25519_dalek::VerifyingKey)> {
        let text = match self.store.log_key()? {
            Some(text) => text,
            None => {
                let server = &self.identity.server;
                let answer =
                    self.authorized(http, |token| http.get(format!("{server}/v1/log/key")).bearer_auth(token)).await?;
                summary.requests += 1;
                summary.bytes_down += answer.wire;
                let text = String::from_utf8(answer.body)
                    .map_err(|_| ClientError::Protocol { detail: "the log's key is not text".into() })?;
                let text = text.trim().to_string();
                self.store.set_log_key(&text)?;
                text
            }
        };
        parse_verifier_key(&text).map_err(|e| ClientError::Protocol { detail: format!("the log's key: {e}") })
    }

    /// Uploads the photos the server lacks, once their records are there: each in chunks from
    /// the offset the server holds, so that an interrupted upload resumes where it stopped.
    /// A photo the server refuses is kept on the device and reported; the others go on.
    async fn upload_photos(
        &mut self,
        http: &reqwest::Client,
        options: &SyncOptions,
        summary: &mut SyncSummary,
        progress: &mut impl FnMut(&SyncProgress),
    ) -> ClientResult<()> {
        let server = self.identity.server.clone();
        let pending = self.store.photos_to_upload()?;
        let total: u64 = pending.iter().map(|(_, _, size)| size).sum();
        let mut sent = 0;
        let protocol = |e: serde_json::Error| ClientError::Protocol { detail: format!("upload: {e}") };
        for (sha256, record_id, size) in pending {
            let Some(photo) = self.store.photo(&sha256)? else { continue };
            let start = serde_json::json!({ "sha256": sha256, "size": size, "record_id": record_id });
            let answer = self
                .authorized(http, |token| http.post(format!("{server}/v1/uploads")).bearer_auth(token).json(&start))
                .await;
            let mut state: UploadAnswer = match answer {
                Ok(body) => serde_json::from_slice(&body).map_err(protocol)?,
                Err(ClientError::Server { status, code, .. }) if status < 500 && status != 429 && status != 401 => {
                    summary.photo_errors.push((sha256, code));
                    continue;
                }
                Err(error) => return Err(error),
            };
            while !state.complete {
                let upload_id = state
                    .upload_id
                    .clone()
                    .ok_or_else(|| ClientError::Protocol { detail: "an unfinished upload without an id".into() })?;
                let url = format!("{server}/v1/uploads/{upload_id}");
                if state.offset >= size {
                    let body =
                        self.authorized(http, |token| http.post(format!("{url}/finish")).bearer_auth(token)).await?;
                    let finished: UploadAnswer = serde_json::from_slice(&body).map_err(protocol)?;
                    if !finished.complete {
                        return Err(ClientError::Protocol { detail: format!("upload {upload_id} did not finish") });
                    }
                    break;
                }
                let from = state.offset as usize;
                let to = (from + options.upload_chunk_bytes.max(1)).min(photo.bytes.len());
                let chunk = photo.bytes[from..to].to_vec();
                let answer = self
                    .authorized(http, |token| {
                        http.patch(&url)
                            .bearer_auth(token)
                            .header("Upload-Offset", from.to_string())
                            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                            .body(chunk.clone())
                    })
                    .await;
                let body = match answer {
                    Ok(body) => body,
                    // The server holds another offset (an earlier attempt's chunk did arrive): ask.
                    Err(ClientError::Server { status: 409, code, .. }) if code == "offset_mismatch" => {
                        self.authorized(http, |token| http.get(&url).bearer_auth(token)).await?
                    }
                    Err(error) => return Err(error),
                };
                let now: UploadAnswer = serde_json::from_slice(&body).map_err(protocol)?;
                summary.bytes_up += chunk.len();
                state.offset = now.offset;
                state.complete = now.complete;
                progress(&SyncProgress {
                    photo_bytes_sent: sent + state.offset,
                    photo_bytes_total: total,
                    ..SyncProgress::default()
                });
            }
            sent += size;
            self.store.mark_photo_uploaded(&sha256, self.now_ms())?;
            summary.photos_uploaded.push(sha256);
        }
        Ok(())
    }
}
