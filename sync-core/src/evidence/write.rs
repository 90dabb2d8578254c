//! Writing a package: what the server gathered for a record, in the one canonical form the
//! verifier accepts (sorted lists, the document saved uncompressed, the manifest first, a ustar
//! archive with fixed headers).

use automerge::Automerge;
use schemas::evidence::{
    EVIDENCE_FORMAT, Manifest, ManifestItem, PackageBlob, PackageDevice, PackageEntry, PackageProofs,
    PackageRecordState,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    BLOBS, CHECKPOINT, DEVICES, DOCUMENT, ENTRIES, LOG_KEY, MANIFEST, PROOFS, RECORD, STATE, blob_path, canonical_form,
};
use crate::checkpoint::Checkpoint;
use crate::document::read_record;

/// What the server gathered for one record's package.
#[derive(Clone, Debug)]
pub struct PackageContents {
    pub record_id: String,
    pub exported_at_ms: i64,
    /// The signed note of the checkpoint every proof is against.
    pub checkpoint_note: String,
    /// The log's note verifier key.
    pub log_key: String,
    /// The record's Automerge document (`save`).
    pub document: Vec<u8>,
    pub devices: Vec<PackageDevice>,
    pub entries: Vec<PackageEntry>,
    /// Each blob, with its bytes when the package includes them.
    pub blobs: Vec<(PackageBlob, Option<Vec<u8>>)>,
    /// The record's latest state in the checkpoint (`None` when the log holds none: the package
    /// then lacks `record/state.json` and cannot verify as complete).
    pub state: Option<PackageRecordState>,
    pub proofs: PackageProofs,
}

/// Why a package could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the record's document does not load: {0}")]
    Document(String),
    #[error("the record does not read as a record: {0}")]
    Record(String),
    #[error("the checkpoint note does not name a tree size: {0}")]
    Checkpoint(String),
    #[error("the archive could not be written: {0}")]
    Archive(String),
}

/// A JSON member's one accepted encoding.
pub(super) fn json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("package members serialize");
    out.push(b'\n');
    out
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes a package in its canonical form.
pub fn write_package(contents: &PackageContents) -> Result<Vec<u8>, PackageError> {
    let doc = Automerge::load(&contents.document).map_err(|e| PackageError::Document(e.to_string()))?;
    // The one encoding of each list and of the document, whatever the caller's order.
    let mut contents = contents.clone();
    canonical_form::sort_lists(&mut contents.devices, &mut contents.entries, &mut contents.blobs, &mut contents.proofs);
    contents.document = doc.save_nocompress();
    let contents = &contents;
    let record = read_record(&contents.record_id, &doc).map_err(|e| PackageError::Record(e.to_string()))?;
    let (text, _) = split_note(&contents.checkpoint_note);
    let checkpoint = Checkpoint::parse_body(text).map_err(|e| PackageError::Checkpoint(e.to_string()))?;
    // Blobs the server lacks have no bytes to include: the flag says whether the stored ones are in.
    let blobs_included =
        contents.blobs.iter().filter(|(blob, _)| blob.leaf_index.is_some()).all(|(_, bytes)| bytes.is_some());
    let mut members: Vec<(String, Vec<u8>)> = vec![
        (CHECKPOINT.into(), contents.checkpoint_note.as_bytes().to_vec()),
        (LOG_KEY.into(), format!("{}\n", contents.log_key.trim_end()).into_bytes()),
        (DOCUMENT.into(), contents.document.clone()),
        (RECORD.into(), json(&record)),
        (DEVICES.into(), json(&contents.devices)),
        (ENTRIES.into(), json(&contents.entries)),
    ];
    if let Some(state) = &contents.state {
        members.push((STATE.into(), json(state)));
    }
    members.push((BLOBS.into(), json(&contents.blobs.iter().map(|(blob, _)| blob).collect::<Vec<_>>())));
    for (blob, bytes) in &contents.blobs {
        if let Some(bytes) = bytes {
            members.push((blob_path(&blob.sha256), bytes.clone()));
        }
    }
    members.push((PROOFS.into(), json(&contents.proofs)));
    let manifest = Manifest {
        format: EVIDENCE_FORMAT.into(),
        record_id: contents.record_id.clone(),
        exported_at_ms: contents.exported_at_ms.div_euclid(1000) * 1000,
        tree_size: checkpoint.size,
        blobs_included,
        items: members
            .iter()
            .map(|(path, bytes)| ManifestItem {
                path: path.clone(),
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            })
            .collect(),
    };
    members.insert(0, (MANIFEST.into(), json(&manifest)));
    archive(&members, contents.exported_at_ms).map_err(|e| PackageError::Archive(e.to_string()))
}

/// The canonical tar encoding of `members` (path and bytes, in order), with the export time as
/// every member's modification time: what [`write_package`] writes and what the verifier
/// compares a package with.
pub fn archive(members: &[(String, Vec<u8>)], exported_at_ms: i64) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in members {
        let mut header = tar::Header::new_ustar();
        header.set_path(path)?;
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(exported_at_ms.max(0) as u64 / 1000);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, bytes.as_slice())?;
    }
    builder.into_inner()
}

/// The text of a signed note (up to and including the blank line's first newline) and the rest.
fn split_note(note: &str) -> (&str, &str) {
    match note.rfind("\n\n") {
        Some(split) => (&note[..split + 1], &note[split + 2..]),
        None => (note, ""),
    }
}
