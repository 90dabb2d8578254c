//! The log's side of a package: the log key (the trusted one, or the package's own trusted as
//! told), the checkpoint it signs, the inclusion proof of every leaf in the checkpoint's tree,
//! and each earlier checkpoint an entry names as seen, proven a prefix of it.

use std::collections::BTreeMap;

use schemas::evidence::{LeafProof, Manifest, PackageProofs};

use super::{
    CHECKPOINT, LOG_KEY, MANIFEST, PROOFS, TrustedBy, Verification, canonical, canonical_form, required_member,
};
use crate::checkpoint::{Checkpoint, open_note, parse_verifier_key};
use crate::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use crate::transparency::Leaf;

/// What the log's side proves, for the checks of the other members.
pub(super) struct Proven {
    /// Every leaf proven in the checkpoint's tree, by index.
    pub(super) leaves: BTreeMap<u64, Leaf>,
    /// The receipt time of the last leaf of each proven earlier checkpoint, by its size and root:
    /// the lower bound of an entry written after seeing it.
    pub(super) seen_bounds: BTreeMap<(u64, Hash), i64>,
}

/// Checks the log key, the checkpoint and the proofs, and says what they prove.
pub(super) fn check(
    report: &mut Verification,
    manifest: &Manifest,
    files: &BTreeMap<&str, &[u8]>,
    trusted_log_key: Option<&str>,
) -> Proven {
    let member = |report: &mut Verification, path: &str| required_member(report, files, path);

    // The log key and the checkpoint.
    let key = member(report, LOG_KEY).and_then(|bytes| {
        let Ok(text) = String::from_utf8(bytes) else {
            report.fail(LOG_KEY, "not UTF-8");
            return None;
        };
        let Some(line) = text.strip_suffix('\n').filter(|line| !line.contains('\n')) else {
            report.fail(LOG_KEY, "not one line of text");
            return None;
        };
        match parse_verifier_key(line) {
            Ok((name, key)) => {
                if let Some(trusted) = trusted_log_key
                    && trusted.trim() != line
                {
                    report.fail(LOG_KEY, format!("is not the trusted key {trusted:?}"));
                    return None;
                }
                report.log_key = Some(line.to_string());
                report.trusted_by =
                    Some(if trusted_log_key.is_some() { TrustedBy::PublishedKey } else { TrustedBy::PackageKey });
                Some((line.to_string(), name, key))
            }
            Err(e) => {
                report.fail(LOG_KEY, format!("not a note verifier key: {e}"));
                None
            }
        }
    });
    let checkpoint = match (member(report, CHECKPOINT), &key) {
        (Some(note), Some((_, name, key))) => match String::from_utf8(note) {
            Ok(note) => match open_note(&note, &[(name.as_str(), *key)]) {
                Ok((text, _)) => match Checkpoint::parse_body(&text) {
                    Ok(checkpoint) if checkpoint.size != manifest.tree_size => {
                        report.fail(
                            CHECKPOINT,
                            format!("is of size {}, the manifest says {}", checkpoint.size, manifest.tree_size),
                        );
                        // Either may be the one changed: the two disagree, so both are named.
                        report.fail(
                            MANIFEST,
                            format!(
                                "says tree size {}, the checkpoint is of size {}",
                                manifest.tree_size, checkpoint.size
                            ),
                        );
                        None
                    }
                    Ok(checkpoint) if checkpoint.origin != *name => {
                        report.fail(CHECKPOINT, format!("names log {:?}, the key {name:?}", checkpoint.origin));
                        None
                    }
                    Ok(checkpoint) => {
                        report.check(CHECKPOINT, true, format!("signed by {name}, {} leaves", checkpoint.size));
                        Some(checkpoint)
                    }
                    Err(e) => {
                        report.fail(CHECKPOINT, format!("not a checkpoint: {e}"));
                        None
                    }
                },
                Err(e) => {
                    report.fail(CHECKPOINT, format!("does not verify with the log key: {e}"));
                    if trusted_log_key.is_none() {
                        report.fail(LOG_KEY, "the checkpoint does not verify with this key");
                    }
                    None
                }
            },
            Err(_) => {
                report.fail(CHECKPOINT, "not UTF-8");
                None
            }
        },
        _ => None,
    };
    if let Some((line, ..)) = &key
        && checkpoint.is_some()
    {
        let detail = match trusted_log_key {
            Some(_) => "is the trusted key".to_string(),
            None => {
                format!("{line}: the package's own key, trusted as told: compare it with the bureau's published key")
            }
        };
        report.check(LOG_KEY, true, detail);
    }

    // The proofs: every leaf in the checkpoint's tree.
    let mut leaves: BTreeMap<u64, Leaf> = BTreeMap::new();
    let mut seen_bounds: BTreeMap<(u64, Hash), i64> = BTreeMap::new();
    if let Some(bytes) = member(report, PROOFS) {
        match canonical::<PackageProofs>(&bytes) {
            Err(problem) => report.fail(PROOFS, problem),
            Ok(proofs) => {
                if let Some(problem) = canonical_form::proofs_problem(&proofs) {
                    report.fail(PROOFS, problem);
                }
                let mut good = proofs.tree_size == manifest.tree_size;
                if !good {
                    report.fail(
                        PROOFS,
                        format!("proofs are against size {}, not {}", proofs.tree_size, manifest.tree_size),
                    );
                }
                if let Some(checkpoint) = &checkpoint {
                    for LeafProof { index, leaf, proof } in &proofs.leaves {
                        let data = hex::decode(leaf).ok();
                        let decoded = data.as_deref().map(Leaf::from_bytes);
                        let verified = match (&data, hashes(proof)) {
                            (Some(data), Some(proof)) => {
                                verify_inclusion(*index, checkpoint.size, &leaf_hash(data), &proof, &checkpoint.root)
                                    .map_err(|e| e.to_string())
                            }
                            _ => Err("not hex".to_string()),
                        };
                        match (verified, decoded) {
                            (Ok(()), Some(Ok(decoded))) => {
                                leaves.insert(*index, decoded);
                            }
                            (Err(e), _) => {
                                good = false;
                                report.fail(PROOFS, format!("leaf {index}: {e}"));
                            }
                            (_, decoded) => {
                                good = false;
                                report.fail(PROOFS, format!("leaf {index} does not decode: {decoded:?}"));
                            }
                        }
                    }
                    for seen in &proofs.seen_checkpoints {
                        match seen_checkpoint_bound(seen, checkpoint) {
                            Ok((root, received_ms)) => {
                                seen_bounds.insert((seen.size, root), received_ms);
                            }
                            Err(problem) => {
                                good = false;
                                report.fail(PROOFS, format!("seen checkpoint of size {}: {problem}", seen.size));
                            }
                        }
                    }
                    if good {
                        report.check(
                            PROOFS,
                            true,
                            format!(
                                "{} leaves and {} earlier checkpoints proven",
                                proofs.leaves.len(),
                                proofs.seen_checkpoints.len()
                            ),
                        );
                    }
                }
            }
        }
    }
    Proven { leaves, seen_bounds }
}

/// Decodes a list of hex hashes.
fn hashes(hexes: &[String]) -> Option<Vec<Hash>> {
    hexes.iter().map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok())).collect()
}

/// Checks a seen checkpoint against the package's: its last leaf is in it and it is a prefix
/// of the package's tree. Returns its root and that leaf's receipt time.
fn seen_checkpoint_bound(
    seen: &schemas::evidence::SeenCheckpointProof,
    checkpoint: &Checkpoint,
) -> Result<(Hash, i64), String> {
    let root: Hash = hex::decode(&seen.root).ok().and_then(|b| b.try_into().ok()).ok_or("root is not hex")?;
    let last = hex::decode(&seen.last_leaf).map_err(|_| "last leaf is not hex")?;
    let inclusion = hashes(&seen.inclusion).ok_or("inclusion proof is not hex")?;
    let consistency = hashes(&seen.consistency).ok_or("consistency proof is not hex")?;
    if seen.size == 0 {
        return Err("an empty checkpoint bounds nothing".into());
    }
    verify_inclusion(seen.size - 1, seen.size, &leaf_hash(&last), &inclusion, &root).map_err(|e| e.to_string())?;
    verify_consistency(seen.size, checkpoint.size, &consistency, &root, &checkpoint.root).map_err(|e| e.to_string())?;
    let leaf = Leaf::from_bytes(&last).map_err(|e| e.to_string())?;
    Ok((root, leaf.received_ms))
}
