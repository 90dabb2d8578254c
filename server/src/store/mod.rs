//! Storage behind a trait, so that another backend (PostgreSQL) is an added
//! implementation, not a rewrite of the handlers.
//!
//! [`Store`] lists what the server keeps, in the domain's words. The SQLite
//! implementation ([`sqlite::SqliteStore`]) has one writer thread that commits
//! in groups and a pool of readers that never wait for it (WAL mode).
//! [`SyncTx`] is what one sync exchange needs inside one write transaction.

pub mod campaign;
pub mod migrations;
pub mod sqlite;

use std::cell::RefCell;
use std::collections::BTreeMap;

use schemas::log::SignedEntry;
use schemas::{Certificate, CertificateStatusChange};
use sync_core::merkle::Hash;
use sync_core::transparency::Leaf;

use crate::service::media::{ClaimedMetadata, Examination};

pub use campaign::{
    CampaignCommitment, CampaignSpec, CampaignTask, EntityChange, Matter, MatterList, StoredCampaign, StoredDraw,
};

/// A failure of the store. `Full` and `Busy` are the caller's to report; others are bugs or corruption.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the disk is full")]
    Full,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("sqlite: {0}")]
    Sqlite(String),
    /// A bound from the bureau's settings that this write would pass; nothing was written.
    #[error("{what}: the limit of {limit} is reached")]
    LimitReached { what: &'static str, limit: usize },
    #[error("{0}")]
    Other(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match &error {
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull => StoreError::Full,
            // Only a duplicate key is a conflict; other constraint failures are bugs to log.
            rusqlite::Error::SqliteFailure(e, message)
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(message.clone().unwrap_or_default())
            }
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound("row".into()),
            _ => StoreError::Sqlite(error.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

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

/// An enrolled device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub officer_id: String,
    pub public_key: Vec<u8>,
    pub actor_id: Vec<u8>,
    pub enrolled_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// An entity of the target registry.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entity {
    pub entity_id: String,
    pub name: String,
    pub credit_code: String,
    pub address: String,
    pub tier: String,
    pub latitude: f64,
    pub longitude: f64,
    /// The administrative division's 6-digit code (empty when the import had none).
    pub division_code: String,
}

/// An inspection task and its team (the wire type, stored as it is).
pub use schemas::Task;

/// A stored record's row.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub record_id: String,
    pub task_id: Option<String>,
    pub document: Vec<u8>,
    pub status: String,
    pub seq: i64,
    pub updated_at_ms: i64,
}

/// A refused change kept in quarantine, once per change and sending device.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct QuarantinedChange {
    pub record_id: String,
    pub change_hash: String,
    /// The device that sent it.
    pub device_id: String,
    /// The officer of the change's actor, when it is an enrolled device's.
    pub officer_id: Option<String>,
    #[schema(value_type = crate::http::openapi::RejectionReasonSchema)]
    pub reason: serde_json::Value,
    /// Whether the refusal holds whoever sends the change again; a refusal that depended on the
    /// sender or on another change's verdict (`sync_core::validate::refusal_is_final`) does not.
    pub final_verdict: bool,
    /// Hex hashes of the changes it builds on.
    pub dependencies: Vec<String>,
    /// The change's bytes, whole up to `QUARANTINE_WHOLE_BYTES`, else their first
    /// `QUARANTINE_PREFIX_BYTES`: a refusal is evidence, not a store for anything a device sends.
    #[serde(skip)]
    pub change: Vec<u8>,
    /// The change's whole length in bytes.
    pub change_bytes: i64,
    pub received_at_ms: i64,
    /// A reviewer's decision on a change held for review, once made.
    pub review: Option<ReviewDecision>,
}

/// Most refused changes kept per record and sending device: past it a device's further refusals
/// are answered but not kept, so that no device grows the quarantine (which every exchange of the
/// record reads) without bound.
pub const QUARANTINE_ROWS_PER_DEVICE: usize = 1_000;

/// Most bytes of a refused change kept whole in quarantine.
pub const QUARANTINE_WHOLE_BYTES: usize = 64 << 10;
/// Bytes kept of a larger refused change: its header (hash inputs, actor, dependencies) and
/// the start of its operations.
pub const QUARANTINE_PREFIX_BYTES: usize = 4 << 10;

impl QuarantinedChange {
    /// Whether the whole change is kept (not only its first bytes).
    pub fn is_whole(&self) -> bool {
        self.change.len() as i64 == self.change_bytes
    }
}

/// What a reviewer decided about a change held for review.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReviewDecision {
    /// `accepted` (the change was merged) or `refused`.
    pub decision: String,
    pub reviewer_id: String,
    pub decided_at_ms: i64,
    pub note: String,
}

/// Filters of the record list.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    pub task_id: Option<String>,
    pub entity_id: Option<String>,
    pub status: Option<String>,
    pub officer_id: Option<String>,
    /// Only records of tasks this officer is on (for officers who are not supervisors or reviewers).
    pub visible_to: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
}

/// An upload of a blob, unfinished or finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub upload_id: String,
    /// Lowercase hex SHA-256 the finished file must have.
    pub sha256: String,
    /// The declared size in bytes.
    pub size: u64,
    /// The record whose photo this is: the officer may write it and it references `sha256`.
    pub record_id: String,
    /// The device that uploads; only it may append, read the offset or finish.
    pub device_id: String,
    pub officer_id: String,
    /// Bytes received, written and synced to disk: where the next chunk goes.
    pub received: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// When the blob was verified and stored; `None` while the upload is unfinished.
    pub finished_at_ms: Option<i64>,
}

/// A stored blob: content-addressed, written once, never modified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
    /// Sniffed from the first bytes of the content, never taken from the client.
    pub media_type: String,
    /// The device whose upload stored it first.
    pub uploaded_by: String,
    pub uploaded_at_ms: i64,
}

/// What the server read from a stored blob ([`crate::service::media::examine`]), kept beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobMetadata {
    pub sha256: String,
    /// What the file's EXIF says about itself: the device wrote it, nothing checks it.
    pub claimed: ClaimedMetadata,
    /// The image's width and height in pixels, when its header reads.
    pub dimensions: Option<(u32, u32)>,
    /// A JPEG at most 320 pixels a side, or `None` when the blob does not decode as an image.
    pub thumbnail: Option<Vec<u8>>,
    /// Why there is no thumbnail: a stable code (`MediaError::code`) and a message.
    pub error: Option<(String, String)>,
    pub examined_at_ms: i64,
}

impl BlobMetadata {
    /// The metadata of blob `sha256` from its examination.
    pub fn of(sha256: &str, examination: Examination, examined_at_ms: i64) -> Self {
        let (thumbnail, error) = match examination.thumbnail {
            Ok(jpeg) => (Some(jpeg), None),
            Err(error) => (None, Some((error.code().to_string(), error.to_string()))),
        };
        Self {
            sha256: sha256.to_string(),
            claimed: examination.claimed,
            dimensions: examination.dimensions,
            thumbnail,
            error,
            examined_at_ms,
        }
    }
}

/// What asking to upload a blob found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadStart {
    /// A new upload, with nothing received yet.
    Started(Upload),
    /// This device's unfinished upload of the same blob and size (the answer to an earlier
    /// request was lost): it goes on from what it received.
    Resumed(Upload),
    /// The blob is stored already; nothing needs to be sent.
    Stored(Blob),
    /// The device already holds this many unfinished uploads.
    TooMany { unfinished: usize },
}

/// The transparency log's name and key: its origin (the first line of every checkpoint, and the
/// name of its key in signed notes) and the Ed25519 key that signs its checkpoints.
#[derive(Clone)]
pub struct LogIdentity {
    /// The first line of every checkpoint and the name of the key in signed notes.
    pub origin: String,
    /// The secret key that signs checkpoints.
    pub key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for LogIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogIdentity")
            .field("origin", &self.origin)
            .field("public_key", &hex::encode(self.key.verifying_key().as_bytes()))
            .finish_non_exhaustive()
    }
}

/// A leaf of the transparency log as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLeaf {
    /// The leaf's position in the log, from 0.
    pub index: u64,
    /// The leaf's data (`sync_core::transparency::Leaf::to_bytes`).
    pub data: Vec<u8>,
    /// The receipt time the leaf's data holds.
    pub received_at_ms: i64,
}

/// A signed checkpoint of the transparency log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// How many leaves the tree it signs holds.
    pub size: u64,
    /// The C2SP signed note of the checkpoint.
    pub note: String,
    /// When the server signed it.
    pub signed_at_ms: i64,
}

/// An enforcement-log entry whose signature, payload and fields the caller has checked, ready to
/// be placed against its device's chain.
#[derive(Clone, Debug)]
pub struct CheckedEntry {
    /// The entry and its device's signature.
    pub signed: SignedEntry,
    /// The payload, whose SHA-256 the entry names.
    pub payload: Vec<u8>,
}

/// Where an uploaded entry went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPlacement {
    /// It extends its device's chain and is the log's leaf `leaf_index`.
    Accepted { leaf_index: u64 },
    /// The chain holds this very entry already.
    Duplicate,
    /// An earlier entry of its chain is missing: it waits, and joins the chain once that arrives.
    Held,
    /// It conflicts with the chain (another entry at its seq, or another previous entry): it is
    /// kept beside the chain and its device is flagged.
    Fork,
    /// It would be held, but its device has as many entries held as it may: not kept; the device
    /// sends it again once its gap is filled.
    TooManyHeld,
}

/// What appending a device's entries did.
#[derive(Clone, Debug)]
pub struct LogAppend {
    /// One per entry, in the order given.
    pub placements: Vec<EntryPlacement>,
    /// Held entries (from earlier uploads or this one) that joined the chain.
    pub promoted: u64,
    /// Held entries that turned out to conflict with the chain once their gap was filled.
    pub promoted_forks: u64,
    /// Entries that joined the chain naming a checkpoint the log never had (another root at that
    /// size, or a size the log has not reached).
    pub unknown_checkpoints: u64,
    /// Leaves appended.
    pub leaves: u64,
    /// The latest signed checkpoint: signed now if this append grew the tree.
    pub checkpoint: StoredCheckpoint,
}

/// What to gather for a record's evidence package.
#[derive(Clone, Debug)]
pub struct EvidenceRequest {
    pub record_id: String,
    /// The officers of the record's team: entries of their devices are included.
    pub officers: Vec<String>,
    /// Actor ids of the record's changes: their devices are included.
    pub actor_ids: Vec<Vec<u8>>,
    /// SHA-256 (hex) of the blobs the record names; those of its photo entries are added.
    pub blobs: Vec<String>,
}

/// An entry of a device's chain as an evidence package holds it.
#[derive(Clone, Debug)]
pub struct EvidenceEntry {
    pub signed: SignedEntry,
    pub payload: Vec<u8>,
    pub leaf_index: u64,
}

/// A checkpoint an entry named, as the log had it: its last leaf and the proofs that bind it
/// to the package's checkpoint.
#[derive(Clone, Debug)]
pub struct SeenTree {
    pub size: u64,
    pub root: Hash,
    pub last: StoredLeaf,
    /// Inclusion proof of the last leaf in the tree of `size` leaves.
    pub inclusion: Vec<Hash>,
    /// Consistency proof from `size` to the package's checkpoint.
    pub consistency: Vec<Hash>,
}

/// What [`Store::evidence`] read.
#[derive(Clone, Debug)]
pub struct EvidenceSource {
    pub document: Vec<u8>,
    pub checkpoint: StoredCheckpoint,
    /// Each device with its enrolment leaf (`None` if enrolled before the log existed).
    pub devices: Vec<(Device, Option<u64>)>,
    pub entries: Vec<EvidenceEntry>,
    /// Each blob asked for, with its row and leaf when stored.
    pub blobs: Vec<(String, Option<(Blob, u64)>)>,
    /// Every leaf the package names, with its inclusion proof at the checkpoint's size.
    pub leaves: Vec<(StoredLeaf, Vec<Hash>)>,
    pub seen: Vec<SeenTree>,
    /// The record's latest state in the checkpoint: its leaf and items (`None` if the log has
    /// none yet).
    pub state: Option<(u64, schemas::evidence::RecordItems)>,
}

/// An entry of a device's chain, as a record's log lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEntry {
    /// The entry and its device's signature.
    pub signed: SignedEntry,
    /// Its leaf in the transparency log.
    pub leaf_index: u64,
    /// When the server received it: its leaf's receipt time.
    pub received_at_ms: i64,
    /// The log at the size of the checkpoint the entry names: its root and the receipt time of
    /// its last leaf (`None` for the empty tree). `None` when the entry names no checkpoint or the
    /// log has not reached that size.
    pub seen_tree: Option<(Hash, Option<i64>)>,
}

/// What one sync exchange reads and writes, inside one write transaction.
pub trait SyncTx {
    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>>;
    fn sync_state(&self, device_id: &str, record_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Records of tasks `officer_id` is on, changed after `since`, oldest change first, at most `limit`.
    fn changed_since(&self, officer_id: &str, since: u64, limit: usize) -> StoreResult<Vec<(String, u64)>>;
    fn record_seq_head(&self) -> StoreResult<u64>;
    /// Stores a record's document and moves it to the head of the change sequence.
    fn put_record(
        &self,
        record_id: &str,
        task_id: Option<&str>,
        document: &[u8],
        status: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;
    fn put_sync_state(&self, device_id: &str, record_id: &str, state: &[u8]) -> StoreResult<()>;
    fn quarantine(&self, change: &QuarantinedChange) -> StoreResult<()>;
    /// Refused changes of a record, from every sending device.
    fn quarantined_changes(&self, record_id: &str) -> StoreResult<Vec<QuarantinedChange>>;
    /// Records a reviewer's decision on a held change (every row of it, whoever sent it).
    fn decide_held(&self, record_id: &str, change_hash: &str, decision: &ReviewDecision) -> StoreResult<()>;
    /// Appends a leaf to the transparency log, in the transaction that stores what it attests.
    fn append_leaf(&self, leaf: &Leaf) -> StoreResult<()>;
}

/// One sync exchange, to run inside one write transaction or against a snapshot.
pub type SyncJob = Box<dyn FnOnce(&dyn SyncTx) -> StoreResult<schemas::SyncResponse> + Send>;

/// A write an exchange made against a snapshot, applied later by [`Store::commit_sync`].
#[derive(Clone, Debug)]
pub enum SyncWrite {
    Record { record_id: String, task_id: Option<String>, document: Vec<u8>, status: String, now_ms: i64 },
    State { device_id: String, record_id: String, state: Vec<u8> },
    Quarantine(QuarantinedChange),
    Leaf(Leaf),
}

/// What an exchange run against a snapshot read and would write.
#[derive(Clone, Debug, Default)]
pub struct SyncPlan {
    pub officer_id: String,
    /// The change sequence's head in the snapshot.
    pub head_before: Option<u64>,
    /// Each record read, with its position in the change sequence then (`None`: absent).
    pub read_seqs: BTreeMap<String, Option<u64>>,
    /// The newest quarantine entry in the snapshot: a refusal committed since, for a record this
    /// exchange writes, means its verdicts may disagree with it.
    pub quarantine_mark: i64,
    pub writes: Vec<SyncWrite>,
}

/// A [`SyncTx`] over a snapshot that records the exchange's writes instead of making them, so
/// that many exchanges can merge and validate at once, off the writer.
pub struct RecordingTx<'a> {
    inner: &'a dyn SyncTx,
    plan: RefCell<SyncPlan>,
}

impl<'a> RecordingTx<'a> {
    pub fn new(inner: &'a dyn SyncTx, officer_id: &str) -> Self {
        Self { inner, plan: RefCell::new(SyncPlan { officer_id: officer_id.to_string(), ..SyncPlan::default() }) }
    }

    pub fn into_plan(self) -> SyncPlan {
        self.plan.into_inner()
    }
}

impl SyncTx for RecordingTx<'_> {
    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>> {
        let record = self.inner.record(record_id)?;
        self.plan.borrow_mut().read_seqs.entry(record_id.to_string()).or_insert(record.as_ref().map(|r| r.seq as u64));
        Ok(record)
    }
    fn sync_state(&self, device_id: &str, record_id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.sync_state(device_id, record_id)
    }
    fn changed_since(&self, officer_id: &str, since: u64, limit: usize) -> StoreResult<Vec<(String, u64)>> {
        self.inner.changed_since(officer_id, since, limit)
    }
    fn record_seq_head(&self) -> StoreResult<u64> {
        let head = self.inner.record_seq_head()?;
        self.plan.borrow_mut().head_before.get_or_insert(head);
        Ok(head)
    }
    fn put_record(
        &self,
        record_id: &str,
        task_id: Option<&str>,
        document: &[u8],
        status: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let mut plan = self.plan.borrow_mut();
        plan.writes.push(SyncWrite::Record {
            record_id: record_id.to_string(),
            task_id: task_id.map(str::to_string),
            document: document.to_vec(),
            status: status.to_string(),
            now_ms,
        });
        let written = plan.writes.iter().filter(|w| matches!(w, SyncWrite::Record { .. })).count() as u64;
        Ok(plan.head_before.unwrap_or(0) + written)
    }
    fn put_sync_state(&self, device_id: &str, record_id: &str, state: &[u8]) -> StoreResult<()> {
        self.plan.borrow_mut().writes.push(SyncWrite::State {
            device_id: device_id.to_string(),
            record_id: record_id.to_string(),
            state: state.to_vec(),
        });
        Ok(())
    }
    fn quarantine(&self, change: &QuarantinedChange) -> StoreResult<()> {
        self.plan.borrow_mut().writes.push(SyncWrite::Quarantine(change.clone()));
        Ok(())
    }
    fn quarantined_changes(&self, record_id: &str) -> StoreResult<Vec<QuarantinedChange>> {
        self.inner.quarantined_changes(record_id)
    }
    fn decide_held(&self, _: &str, _: &str, _: &ReviewDecision) -> StoreResult<()> {
        Err(StoreError::Other("a review decision is made in the writer, never against a snapshot".into()))
    }
    fn append_leaf(&self, leaf: &Leaf) -> StoreResult<()> {
        self.plan.borrow_mut().writes.push(SyncWrite::Leaf(leaf.clone()));
        Ok(())
    }
}

/// Everything the server keeps.
pub trait Store: Send + Sync + 'static {
    // Keys.
    fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    fn add_signing_key(&self, key: SigningKey) -> StoreResult<()>;

    // Accounts and roles.
    fn create_account(&self, account: Account, now_ms: i64) -> StoreResult<()>;
    fn account(&self, officer_id: &str) -> StoreResult<Option<Account>>;
    fn accounts(&self) -> StoreResult<Vec<Account>>;
    fn set_password(&self, officer_id: &str, password_hash: &str, must_change: bool) -> StoreResult<()>;
    fn grant_role(&self, officer_id: &str, role: &str) -> StoreResult<()>;
    fn revoke_role(&self, officer_id: &str, role: &str) -> StoreResult<()>;

    // Certificates.
    fn issue_certificate(&self, certificate: &Certificate, by: &str, now_ms: i64) -> StoreResult<()>;
    fn renew_certificate(&self, number: &str, valid_until_ms: i64) -> StoreResult<()>;
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

    // Refresh tokens and enrollment challenges.
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

    // Devices.
    /// Enrolls a device and appends its enrollment to the transparency log; refused with
    /// [`StoreError::LimitReached`] when its officer has `max_active` devices not revoked.
    fn enroll_device(&self, device: &Device, max_active: usize) -> StoreResult<()>;
    fn device(&self, device_id: &str) -> StoreResult<Option<Device>>;
    fn devices(&self) -> StoreResult<Vec<Device>>;
    fn revoke_device(&self, device_id: &str, now_ms: i64) -> StoreResult<()>;

    // Registries.
    /// Imports entities as the system: [`Store::import_entities_by`] by `import`.
    fn import_entities(&self, entities: &[Entity], now_ms: i64) -> StoreResult<usize> {
        self.import_entities_by(entities, "import", now_ms)
    }
    /// Adds or updates `entities` in one write; each entity added or changed gets a row of the
    /// registry's history (before, after, when, by whom). Returns how many entities were given.
    fn import_entities_by(&self, entities: &[Entity], by: &str, now_ms: i64) -> StoreResult<usize>;
    fn entity(&self, entity_id: &str) -> StoreResult<Option<Entity>>;
    fn add_recusal(&self, officer_id: &str, entity_id: &str, ground: &str) -> StoreResult<()>;
    fn recused_officers(&self, entity_id: &str) -> StoreResult<Vec<String>>;

    // Random inspection.
    /// The history of an entity of the registry, oldest change first.
    fn entity_history(&self, entity_id: &str) -> StoreResult<Vec<EntityChange>>;
    /// Every entity of the registry, by entity id.
    fn entities(&self) -> StoreResult<Vec<Entity>>;
    /// Every recusal, as (officer id, entity id, ground), in that order.
    fn recusals(&self) -> StoreResult<Vec<(String, String, String)>>;
    /// Replaces the random-check matter list; returns how many matters it holds.
    fn import_matters(&self, list: &MatterList, by: &str, now_ms: i64) -> StoreResult<usize>;
    /// The random-check matter list, if one was imported.
    fn matters(&self) -> StoreResult<Option<MatterList>>;
    /// Stores a new campaign (without a draw); a campaign with its id is a conflict.
    fn create_campaign(&self, campaign: &StoredCampaign) -> StoreResult<()>;
    fn campaign(&self, campaign_id: &str) -> StoreResult<Option<StoredCampaign>>;
    /// Every campaign, by creation.
    fn campaigns(&self) -> StoreResult<Vec<StoredCampaign>>;
    /// At most `limit` campaigns by campaign id, those after `after` when given: one page of the
    /// public listing.
    fn campaigns_after(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<StoredCampaign>>;
    /// Stores a campaign's draw and creates its tasks (as [`Store::create_task`] does), all in
    /// one write. False, and nothing written, if the campaign was drawn already.
    fn store_draw(&self, campaign_id: &str, draw: &StoredDraw, tasks: &[Task]) -> StoreResult<bool>;
    /// The tasks of a campaign's draw, in the draw's order.
    fn campaign_tasks(&self, campaign_id: &str) -> StoreResult<Vec<CampaignTask>>;
    /// The campaign task `task_id`, if a draw made it.
    fn campaign_task(&self, task_id: &str) -> StoreResult<Option<CampaignTask>>;
    /// Publishes a campaign task's result from its locked record `record_id`. False, and nothing
    /// written, if it was published already.
    fn publish_result(&self, task_id: &str, record_id: &str, by: &str, now_ms: i64) -> StoreResult<bool>;
    /// The bureau's calendar: every stored year together.
    fn calendar(&self) -> StoreResult<sync_core::calendar::WorkingCalendar>;
    /// The calendar of one year, if stored.
    fn calendar_year(&self, year: i16) -> StoreResult<Option<sync_core::calendar::WorkingCalendar>>;
    /// Replaces the calendar of one year (the caller checks that its days are of that year).
    fn put_calendar_year(
        &self,
        year: i16,
        calendar: &sync_core::calendar::WorkingCalendar,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    // Tasks.
    fn create_task(&self, task: &Task) -> StoreResult<()>;
    fn task(&self, task_id: &str) -> StoreResult<Option<Task>>;
    /// Tasks `officer_id` is on, or all tasks when `None`.
    fn tasks(&self, officer_id: Option<&str>) -> StoreResult<Vec<Task>>;

    // Records.
    fn record(&self, record_id: &str) -> StoreResult<Option<StoredRecord>>;
    /// The task of a stored record, without reading its document.
    fn record_task(&self, record_id: &str) -> StoreResult<Option<String>>;
    fn records(&self, filter: &RecordFilter) -> StoreResult<Vec<StoredRecord>>;
    /// The id of every stored record.
    fn record_ids(&self) -> StoreResult<Vec<String>>;
    fn quarantined(&self, record_id: Option<&str>) -> StoreResult<Vec<QuarantinedChange>>;

    /// Runs one sync exchange in one write transaction: nothing of it is visible, or acknowledged,
    /// before it is committed.
    fn sync_exchange(&self, exchange: SyncJob) -> StoreResult<schemas::SyncResponse>;

    /// Runs one sync exchange against a consistent snapshot, off the writer, recording what it
    /// would write. Nothing is stored until [`Store::commit_sync`].
    fn prepare_sync(&self, officer_id: &str, exchange: SyncJob) -> StoreResult<(schemas::SyncResponse, SyncPlan)>;

    /// Applies a prepared exchange's writes in one write transaction, provided that no record it
    /// writes has changed since its snapshot; returns the cursor to answer with (the new head, or
    /// the snapshot's head when other records of the officer changed meanwhile), or `None` when
    /// a record changed and the exchange must run again inside the writer.
    fn commit_sync(&self, plan: SyncPlan) -> StoreResult<Option<u64>>;

    /// Whether any record of `officer_id`'s tasks changed after `since`, and the change sequence's
    /// head: what a sync with nothing to send needs, answered from a read, without the writer.
    fn changed_for(&self, officer_id: &str, since: u64) -> StoreResult<(bool, u64)>;

    /// The record change sequence's head as this process last wrote it, read from memory: never
    /// below the committed head (every record is written by this process's writer, which notes
    /// the head after each job; a job rolled back later leaves it above). A no-op sync whose
    /// cursor equals it has nothing to receive. `None` when the backend does not keep it.
    /// The epoch of the change sequence, which every cursor handed to a device carries
    /// (`sync_core::session::encode_cursor`); a backup is given another.
    fn sync_epoch(&self) -> u16 {
        0
    }

    fn known_record_head(&self) -> Option<u64> {
        None
    }

    // Blobs and their uploads.
    /// Starts an upload of `upload.sha256` for `upload.device_id`, unless the blob is stored
    /// ([`UploadStart::Stored`], and the blob is linked to `upload.record_id`), the device has an
    /// unfinished upload of the same blob and size ([`UploadStart::Resumed`]), or it holds
    /// `max_unfinished` unfinished uploads already ([`UploadStart::TooMany`], nothing written).
    fn begin_upload(&self, upload: &Upload, max_unfinished: usize) -> StoreResult<UploadStart>;
    /// Discards `device_id`'s unfinished uploads last touched before `idle_before_ms`; returns
    /// their ids, whose partial files the caller removes.
    fn expire_uploads(&self, device_id: &str, idle_before_ms: i64) -> StoreResult<Vec<String>>;
    /// Appends an enrolment leaf, stamped `now_ms`, for every device that has none (enrolled
    /// before the database had a transparency log), so that evidence packages can prove their
    /// keys from then on. Returns how many were appended.
    fn log_unlogged_enrolments(&self, now_ms: i64) -> StoreResult<usize>;
    fn upload(&self, upload_id: &str) -> StoreResult<Option<Upload>>;
    /// Moves an unfinished upload's received count from `from` to `to`; false if it was not at
    /// `from` (or is finished), and then nothing changes.
    fn set_upload_received(&self, upload_id: &str, from: u64, to: u64, now_ms: i64) -> StoreResult<bool>;
    /// Stores `blob` (kept as it is if stored already), links it to the upload's record and marks
    /// the upload finished. Finishing a finished upload changes nothing. A blob stored by this
    /// call is appended to the transparency log, and the answer is true.
    fn finish_upload(&self, upload_id: &str, blob: &Blob, now_ms: i64) -> StoreResult<bool>;
    /// Forgets an upload whose content did not verify.
    fn discard_upload(&self, upload_id: &str) -> StoreResult<()>;
    fn blob(&self, sha256: &str) -> StoreResult<Option<Blob>>;
    /// Which of `sha256s` are stored.
    fn stored_blobs(&self, sha256s: &[String]) -> StoreResult<Vec<String>>;
    /// Whether the blob is linked to a record of a task `officer_id` is on.
    fn blob_linked_for_officer(&self, sha256: &str, officer_id: &str) -> StoreResult<bool>;
    /// Keeps what was read from a stored blob; the first examination kept stays (examining the
    /// same bytes again gives the same result).
    fn put_blob_metadata(&self, metadata: &BlobMetadata) -> StoreResult<()>;
    /// What was read from a stored blob, with its thumbnail; `None` if it was never examined.
    fn blob_metadata(&self, sha256: &str) -> StoreResult<Option<BlobMetadata>>;

    // The transparency log and the devices' enforcement-log chains.
    /// The log's origin and signing key. The first call stores `origin` and the key `secret`;
    /// every later call answers what was stored, whatever it is given.
    fn log_identity(&self, origin: &str, secret: [u8; 32], now_ms: i64) -> StoreResult<LogIdentity>;
    /// How many leaves the log holds.
    fn log_size(&self) -> StoreResult<u64>;
    /// The log's root at `size` leaves; `None` beyond the current size.
    fn log_root(&self, size: u64) -> StoreResult<Option<Hash>>;
    /// Leaf `index` and its inclusion proof in the tree of `size` leaves, read from the stored
    /// subtrees; `None` unless `index < size <= ` the current size.
    fn log_inclusion(&self, index: u64, size: u64) -> StoreResult<Option<(StoredLeaf, Vec<Hash>)>>;
    /// The proof that the tree of `from` leaves is a prefix of the tree of `to`; `None` unless
    /// `0 < from <= to <= ` the current size.
    fn log_consistency(&self, from: u64, to: u64) -> StoreResult<Option<Vec<Hash>>>;
    /// The latest signed checkpoint, if any was signed.
    fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    /// The checkpoint of the current tree: the latest stored one if the tree has not grown since,
    /// else a new one signed now (needs [`Store::log_identity`] to have been called once).
    fn checkpoint(&self, now_ms: i64) -> StoreResult<StoredCheckpoint>;
    /// Places `entries` of `device_id`'s chain in chain order, in one write transaction: an entry
    /// that extends the chain is stored and appended to the log (and held entries it unblocks
    /// follow), a duplicate changes nothing, one after a gap is held, a conflicting one is kept
    /// as a fork. Signs a checkpoint when the tree grew, or when none was ever signed. A device
    /// holds at most `max_held` entries: one more that would be held is not kept
    /// ([`EntryPlacement::TooManyHeld`]).
    fn append_log_entries(
        &self,
        device_id: &str,
        entries: Vec<CheckedEntry>,
        received_ms: i64,
        max_held: usize,
    ) -> StoreResult<LogAppend>;
    /// The chain entries naming `record_id` from devices of `officers`, by device and seq.
    fn record_log(&self, record_id: &str, officers: &[String]) -> StoreResult<Vec<ChainEntry>>;
    /// Of the devices of `officers` with entries naming `record_id` (in their chains or forks),
    /// those whose chain has a fork, in order.
    fn forked_devices(&self, record_id: &str, officers: &[String]) -> StoreResult<Vec<String>>;

    /// What an evidence package of a record holds, read in one snapshot against the latest
    /// signed checkpoint: the document; the entries naming the record from devices of
    /// `request.officers`, with each device's chain from its first such entry to its newest
    /// entry below the checkpoint; the
    /// devices of those entries and of `request.actor_ids`, with their enrolment leaves; the
    /// record's signature and lock leaves; `request.blobs` with their leaves where stored; every
    /// such leaf with its inclusion proof; and each checkpoint the entries name that the log had.
    /// `None` if the record is unknown; an error if no checkpoint was ever signed.
    fn evidence(&self, request: &EvidenceRequest) -> StoreResult<Option<EvidenceSource>>;

    // Operations.
    /// Copies the whole database to `path`, consistently, while serving.
    fn backup(&self, path: &std::path::Path) -> StoreResult<()>;
    /// SQLite's own integrity check; the problems it reports, if any.
    fn integrity_check(&self) -> StoreResult<Vec<String>>;
    /// The transparency log checked against itself: each leaf's hash is its stored level-0
    /// subtree, each stored subtree the node over its two children, and each signed checkpoint's
    /// root the tree's at its size, signed by the log's key. The problems found, if any.
    fn log_check(&self) -> StoreResult<Vec<String>>;
    /// Every stored blob's row, by SHA-256.
    fn blobs(&self) -> StoreResult<Vec<Blob>>;
    /// Whether the store answers.
    fn ready(&self) -> bool;
}
