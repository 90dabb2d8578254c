//! Evidence packages of records (`sync_core::evidence`): what the store holds about a record,
//! read in one snapshot against the latest signed checkpoint, written in the package's
//! canonical form. `GET /v1/records/{id}/evidence` and `fieldsync-server evidence export` both
//! come here.

use automerge::Automerge;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemas::evidence::{
    LeafProof, PackageBlob, PackageDevice, PackageEntry, PackageProofs, PackageRecordState, SeenCheckpointProof,
};
use sync_core::document::{genesis_actor, read_record};
use sync_core::evidence::{PackageContents, write_package};

use crate::config::Config;
use crate::service::auth::Caller;
use crate::service::records::readable;
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{EvidenceRequest, Store, StoreError};

/// Why a package could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no record {0}")]
    UnknownRecord(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading blob {sha256}: {error}")]
    Blob { sha256: String, error: std::io::Error },
    #[error("{0}")]
    Package(String),
}

/// Whether a package carries the blobs' bytes or only their hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blobs {
    Include,
    HashesOnly,
}

fn hexes(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// The evidence package of `record_id`: signs a checkpoint of the log as it stands first, so
/// that everything the record has so far is proven. Runs on a blocking thread.
pub fn export(
    store: &dyn Store,
    config: &Config,
    record_id: &str,
    blobs: Blobs,
    now_ms: i64,
) -> Result<Vec<u8>, ExportError> {
    let unknown = || ExportError::UnknownRecord(record_id.to_string());
    let stored = store.record(record_id)?.ok_or_else(unknown)?;
    let doc = Automerge::load(&stored.document).map_err(|e| ExportError::Package(e.to_string()))?;
    let record = read_record(record_id, &doc).map_err(|e| ExportError::Package(e.to_string()))?;
    let officers = match &stored.task_id {
        Some(task_id) => store.task(task_id)?.map(|task| task.team).unwrap_or_default(),
        None => Vec::new(),
    };
    let genesis = genesis_actor(record_id);
    let mut actor_ids: Vec<Vec<u8>> = doc
        .get_changes(&[])
        .iter()
        .map(|change| change.actor_id().clone())
        .filter(|actor| *actor != genesis)
        .map(|actor| actor.to_bytes().to_vec())
        .collect();
    actor_ids.sort();
    actor_ids.dedup();
    let request = EvidenceRequest {
        record_id: record_id.to_string(),
        officers,
        actor_ids,
        blobs: record.photos.iter().map(|photo| photo.sha256.clone()).collect(),
    };
    let identity = crate::service::ensure_log_identity(store, &config.log_origin)?;
    crate::service::transparency::checkpoint(store, now_ms)?;
    let source = crate::service::evidence_source::evidence(store, &request)?.ok_or_else(unknown)?;
    let log_key = sync_core::checkpoint::verifier_key(&identity.origin, &identity.public_key)
        .map_err(|e| ExportError::Package(e.to_string()))?;

    let mut package_blobs = Vec::new();
    for (sha256, stored) in source.blobs {
        let (blob, bytes) = match stored {
            Some((blob, leaf)) => {
                let bytes = match blobs {
                    Blobs::Include => Some(
                        std::fs::read(crate::service::blobs::blob_path(config, &sha256))
                            .map_err(|error| ExportError::Blob { sha256: sha256.clone(), error })?,
                    ),
                    Blobs::HashesOnly => None,
                };
                // The photo's own claim of when it was taken, as the server read it from its EXIF.
                let exif_taken_at = store.blob_metadata(&sha256)?.and_then(|metadata| {
                    let offset = metadata.claimed.offset.unwrap_or_default();
                    metadata.claimed.taken_at.map(|taken_at| format!("{taken_at}{offset}"))
                });
                (PackageBlob { sha256, size: Some(blob.size), leaf_index: Some(leaf), exif_taken_at }, bytes)
            }
            None => (PackageBlob { sha256, size: None, leaf_index: None, exif_taken_at: None }, None),
        };
        package_blobs.push((blob, bytes));
    }
    let contents = PackageContents {
        record_id: record_id.to_string(),
        exported_at_ms: now_ms,
        checkpoint_note: source.checkpoint.note,
        log_key,
        document: source.document,
        devices: source
            .devices
            .into_iter()
            .map(|(device, leaf_index)| PackageDevice {
                device_id: device.device_id,
                officer_id: device.officer_id,
                public_key: hex::encode(&device.public_key),
                actor_id: hex::encode(&device.actor_id),
                leaf_index,
            })
            .collect(),
        entries: source
            .entries
            .into_iter()
            .map(|entry| {
                let ours = entry.signed.entry.record_id.as_deref() == Some(record_id);
                PackageEntry {
                    payload: ours.then(|| STANDARD.encode(&entry.payload)),
                    signed: entry.signed,
                    leaf_index: entry.leaf_index,
                }
            })
            .collect(),
        blobs: package_blobs,
        state: source.state.map(|(leaf_index, items)| PackageRecordState { leaf_index, items }),
        proofs: PackageProofs {
            tree_size: source.checkpoint.size,
            leaves: source
                .leaves
                .into_iter()
                .map(|(leaf, proof)| LeafProof {
                    index: leaf.index,
                    leaf: hex::encode(&leaf.data),
                    proof: hexes(&proof),
                })
                .collect(),
            seen_checkpoints: source
                .seen
                .into_iter()
                .map(|seen| SeenCheckpointProof {
                    size: seen.size,
                    root: hex::encode(seen.root),
                    last_leaf: hex::encode(&seen.last.data),
                    inclusion: hexes(&seen.inclusion),
                    consistency: hexes(&seen.consistency),
                })
                .collect(),
        },
    };
    write_package(&contents).map_err(|e| ExportError::Package(e.to_string()))
}

/// The evidence package of `record_id`, if `caller` may read the record.
pub async fn record_package(context: &Context, caller: &Caller, record_id: String, blobs: Blobs) -> ApiResult<Vec<u8>> {
    readable(context, caller, record_id.clone()).await?;
    let (store, config) = (context.store.clone(), context.config.clone());
    tokio::task::spawn_blocking(move || export(store.as_ref(), &config, &record_id, blobs, now_ms()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            ExportError::UnknownRecord(_) => ApiError::NotFound { what: "record" },
            other => ApiError::Internal(other.to_string()),
        })
}

/// The evidence package of `record_id` as exported at `exported_at_ms`, if `caller` may read the
/// record: the same bytes as an export made then, as long as the log has not grown since (a
/// reviewer downloads the very package the console verified). `exported_at_ms` is at most a day
/// old and not in the future.
pub async fn record_package_at(
    context: &Context,
    caller: &Caller,
    record_id: String,
    blobs: Blobs,
    exported_at_ms: i64,
) -> ApiResult<Vec<u8>> {
    let now = now_ms();
    if exported_at_ms > now || exported_at_ms < now - 86_400_000 {
        return Err(ApiError::Unprocessable {
            code: "invalid_export_time",
            message: "the export time is within the last day".into(),
            details: Some(serde_json::json!({ "exported_at_ms": exported_at_ms })),
        });
    }
    readable(context, caller, record_id.clone()).await?;
    let (store, config) = (context.store.clone(), context.config.clone());
    tokio::task::spawn_blocking(move || export(store.as_ref(), &config, &record_id, blobs, exported_at_ms))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            ExportError::UnknownRecord(_) => ApiError::NotFound { what: "record" },
            other => ApiError::Internal(other.to_string()),
        })
}

/// A package built and checked as a reviewer would check it offline.
pub struct VerifiedPackage {
    /// When the package was exported: [`record_package_at`] with it makes the same bytes again.
    pub exported_at_ms: i64,
    /// Hex SHA-256 of the package's bytes.
    pub sha256: String,
    pub bytes: usize,
    /// The verdict of `sync_core::evidence::verify_package` (what `fieldsync verify` runs),
    /// against the log's own published key.
    pub verification: sync_core::evidence::Verification,
}

/// Builds the evidence package of `record_id` (with its blobs), if `caller` may read the record,
/// and runs the offline verifier on it, trusting the log's published key.
pub async fn verify_record_package(
    context: &Context,
    caller: &Caller,
    record_id: String,
) -> ApiResult<VerifiedPackage> {
    let exported_at_ms = now_ms();
    let package = record_package_at(context, caller, record_id, Blobs::Include, exported_at_ms).await?;
    let key = crate::service::transparency::log_key(context).await?;
    let skew = context.config.max_clock_skew_ms;
    let sha256 = crate::service::blobs::content_address(&package);
    let bytes = package.len();
    let verification = tokio::task::spawn_blocking(move || {
        sync_core::evidence::verify_package(&package, sync_core::evidence::KeyTrust::Published(&key), skew)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(VerifiedPackage { exported_at_ms, sha256, bytes, verification })
}
