//! Evidence packages: writing one from what the server holds, and checking one offline.
//!
//! A package ([`schemas::evidence`] describes its members) carries a record's Automerge
//! document with its whole history, the enforcement-log entries of the devices that worked
//! on it, the blobs (or their hashes), the public keys, and inclusion proofs of every
//! transparency-log leaf it relies on against one signed checkpoint. [`verify_package`]
//! checks all of it with nothing but the package (and, if the reviewer has it, the bureau's
//! published log key), and says item by item what holds.
//!
//! The archive is a tar file in one canonical form ([`write_package`]): members in manifest
//! order, ustar headers with mode 0644, owner 0, the export time as modification time, and
//! JSON members pretty-printed. The verifier re-encodes what it read and compares bytes, so
//! that no byte of the package (header, padding, JSON spacing) can change unnoticed, and a
//! changed byte is blamed on the member it belongs to.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use automerge::{Automerge, ReadDoc};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use schemas::evidence::{EVIDENCE_FORMAT, Manifest, PackageBlob, PackageDevice, PackageEntry};
use schemas::log::{LogFinding, TimeInterval};
use serde::Serialize;

use crate::document::{genesis_actor, genesis_change_hash, is_genesis_change, read_record, signature_entries};
use crate::enforcement_log::{EntryEncoding, EntryVerification, check_record, payload_hash, read_payload};
use crate::transparency::{Leaf, LeafItem, interval};

mod authorship;
mod canonical_form;
mod completeness;
mod contents;
mod proofs;
mod time;
mod write;

pub use contents::Contents;
pub use time::{IntervalSubject, ItemInterval, exif_time_ms, utc_text};
pub use write::{PackageContents, PackageError, archive, write_package};
use write::{json, sha256_hex};

pub const MANIFEST: &str = "manifest.json";
pub const CHECKPOINT: &str = "checkpoint.txt";
pub const LOG_KEY: &str = "log-key.txt";
pub const DOCUMENT: &str = "record/document.automerge";
pub const RECORD: &str = "record/record.json";
pub const DEVICES: &str = "devices.json";
pub const ENTRIES: &str = "log/entries.json";
pub const BLOBS: &str = "blobs.json";
pub const STATE: &str = "record/state.json";
pub const PROOFS: &str = "proofs.json";
/// The name of an archive-level problem that belongs to no member (the end-of-archive blocks).
pub const ARCHIVE_END: &str = "(end of archive)";

/// The member holding a blob's bytes.
pub fn blob_path(sha256: &str) -> String {
    format!("blobs/{sha256}")
}

/// Which log key the verifier trusts: there is no default, so that no caller trusts a package's
/// own key without saying so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTrust<'a> {
    /// The bureau's published note verifier key of the transparency log, as the reviewer holds
    /// it: the package's key must be this one.
    Published(&'a str),
    /// The key the package carries, trusted as told: proves only that the package is what that
    /// key's holder signed, so the key must still be compared with the bureau's.
    PackageKey,
}

/// How the verdict's key came to be trusted, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustedBy {
    /// The reviewer gave the bureau's published key.
    PublishedKey,
    /// The reviewer told the verifier to trust the package's own key.
    PackageKey,
}

/// One thing the verifier checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The member (or member and element) the check is about.
    pub item: String,
    pub holds: bool,
    pub detail: String,
}

/// The verdict on a package, item by item.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub record_id: Option<String>,
    pub tree_size: Option<u64>,
    /// The log key the checkpoint was checked with.
    pub log_key: Option<String>,
    /// Why that key was trusted.
    pub trusted_by: Option<TrustedBy>,
    pub checks: Vec<Check>,
    /// The rules the record's entries break (R2, R3, P2): findings, not failures of the package.
    pub findings: Vec<LogFinding>,
    /// Each entry of the record with the interval the log proves for it.
    pub intervals: Vec<(String, u64, TimeInterval)>,
    /// Every item the log can bound in time (enrolments, entries, photos, signatures, the
    /// lock), with its proven interval and its claimed time.
    pub item_intervals: Vec<ItemInterval>,
    /// What the package names but cannot prove (a photo the server never received): neither
    /// holding nor failing, said so.
    pub unproven: Vec<String>,
    /// The photos the server holds whose bytes this package does not carry (a package made
    /// with hashes only): proven by hash, not shown.
    pub not_included: Vec<String>,
    /// What the package holds, as read while checking it, for a report to show.
    #[serde(skip)]
    pub contents: Contents,
}

impl Verification {
    /// True when every check holds.
    pub fn holds(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.holds)
    }

    /// The items with a check that fails.
    pub fn failed_items(&self) -> BTreeSet<&str> {
        self.checks.iter().filter(|c| !c.holds).map(|c| c.item.as_str()).collect()
    }

    fn check(&mut self, item: &str, holds: bool, detail: impl Into<String>) -> bool {
        self.checks.push(Check { item: item.to_string(), holds, detail: detail.into() });
        holds
    }

    fn fail(&mut self, item: &str, detail: impl Into<String>) {
        self.check(item, false, detail);
    }
}

/// A member read from the archive, with where its header starts.
struct Member {
    path: String,
    bytes: Vec<u8>,
    header_at: u64,
}

/// Reads every member; on a malformed header, returns those read before it and the error.
fn read_members(package: &[u8]) -> (Vec<Member>, Option<String>) {
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(package);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return (members, Some(e.to_string())),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => return (members, Some(e.to_string())),
        };
        let path = match entry.path() {
            Ok(path) => path.to_string_lossy().into_owned(),
            Err(e) => return (members, Some(e.to_string())),
        };
        let header_at = entry.raw_header_position();
        let mut bytes = Vec::new();
        if let Err(e) = entry.read_to_end(&mut bytes) {
            return (members, Some(format!("{path}: {e}")));
        }
        members.push(Member { path, bytes, header_at });
    }
    (members, None)
}

/// Reads a JSON member that must be in its canonical encoding.
fn canonical<T: serde::de::DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, String> {
    let value: T = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON of its kind: {e}"))?;
    if json(&value) != bytes {
        return Err("not in the canonical encoding (pretty JSON, final newline)".into());
    }
    Ok(value)
}

/// Checks a package offline. `trust` says which log key the checkpoint must verify with: the
/// bureau's published note verifier key, or the package's own when the reviewer says so
/// (reported, for the reviewer to compare). `max_skew_ms` is the clock skew allowed before a
/// claimed time outside its proven interval is flagged.
pub fn verify_package(package: &[u8], trust: KeyTrust<'_>, max_skew_ms: i64) -> Verification {
    let trusted_log_key = match trust {
        KeyTrust::Published(key) => Some(key),
        KeyTrust::PackageKey => None,
    };
    let mut report = Verification::default();
    let (members, error) = read_members(package);

    // The manifest first: it names the members in order, which blames a broken header.
    let manifest = match members.first() {
        Some(first) if first.path == MANIFEST => match canonical::<Manifest>(&first.bytes) {
            Ok(manifest) if manifest.exported_at_ms.rem_euclid(1000) != 0 => {
                report.fail(MANIFEST, "the export time is not in whole seconds, as the archive's times are");
                None
            }
            Ok(manifest) if manifest.format == EVIDENCE_FORMAT => Some(manifest),
            Ok(manifest) => {
                report.fail(MANIFEST, format!("unknown format {:?}", manifest.format));
                None
            }
            Err(problem) => {
                report.fail(MANIFEST, problem);
                None
            }
        },
        Some(first) => {
            report.fail(MANIFEST, format!("the first member is {:?}, not the manifest", first.path));
            None
        }
        None => {
            report.fail(MANIFEST, "the archive holds no readable member");
            None
        }
    };
    if let Some(error) = error {
        let index = members.len();
        let item = match (&manifest, index) {
            (_, 0) => MANIFEST.to_string(),
            (Some(manifest), index) => {
                manifest.items.get(index - 1).map_or(ARCHIVE_END.to_string(), |item| item.path.clone())
            }
            (None, index) => format!("(member {})", index + 1),
        };
        report.fail(&item, format!("the archive cannot be read at this member: {error}"));
        return report;
    }
    let Some(manifest) = manifest else { return report };
    report.record_id = Some(manifest.record_id.clone());
    report.tree_size = Some(manifest.tree_size);
    report.contents.exported_at_ms = Some(manifest.exported_at_ms);
    report.contents.blobs_included = manifest.blobs_included;

    // Every byte: the archive must be the canonical encoding of what it holds.
    let owned: Vec<(String, Vec<u8>)> = members.iter().map(|m| (m.path.clone(), m.bytes.clone())).collect();
    match archive(&owned, manifest.exported_at_ms) {
        Ok(canonical) if canonical == package => {}
        Ok(canonical) => {
            let offset =
                canonical.iter().zip(package).position(|(a, b)| a != b).unwrap_or(canonical.len().min(package.len()));
            let item = members
                .iter()
                .rev()
                .find(|m| m.header_at as usize <= offset && offset < package.len().min(canonical.len()))
                .filter(|m| {
                    let end = m.header_at as usize + 512 + m.bytes.len().div_ceil(512) * 512;
                    offset < end
                })
                .map_or(ARCHIVE_END.to_string(), |m| m.path.clone());
            report
                .fail(&item, format!("byte {offset} of the archive is not the canonical encoding (header or padding)"));
        }
        Err(e) => report.fail(ARCHIVE_END, format!("the members cannot be re-encoded: {e}")),
    }

    // The members in their one order: the manifest, and the first member out of place.
    let present: Vec<&str> = members[1..].iter().map(|m| m.path.as_str()).collect();
    let ordered = canonical_form::member_order(&present);
    if let Some(at) = present.iter().zip(&ordered).position(|(a, b)| a != b) {
        let detail = |other: &str| format!("is not in the canonical member order (it stands where {other} belongs)");
        report.fail(MANIFEST, format!("lists the members out of their canonical order: {present:?}"));
        report.fail(present[at], detail(ordered[at]));
        report.fail(
            ordered[at],
            format!("is not in the canonical member order (it belongs where {} stands)", present[at]),
        );
    }

    // The manifest lists the members, in order, with their sizes and hashes.
    let listed: Vec<&str> = manifest.items.iter().map(|i| i.path.as_str()).collect();
    let present: Vec<&str> = members[1..].iter().map(|m| m.path.as_str()).collect();
    if listed != present {
        report.fail(MANIFEST, format!("lists members {listed:?}, the archive holds {present:?}"));
    }
    for member in &members[1..] {
        let fixed = [CHECKPOINT, LOG_KEY, DOCUMENT, RECORD, DEVICES, ENTRIES, STATE, BLOBS, PROOFS]
            .contains(&member.path.as_str());
        let blob = member.path.strip_prefix("blobs/").is_some_and(|sha| {
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !fixed && !blob {
            report.fail(&member.path, "is not a member of an evidence package");
        }
    }
    let mut files: BTreeMap<&str, &[u8]> = BTreeMap::new();
    // Each member's SHA-256, computed once (a package is mostly its photos' bytes).
    let mut hashes: BTreeMap<&str, String> = BTreeMap::new();
    for member in &members[1..] {
        files.insert(member.path.as_str(), member.bytes.as_slice());
        let actual = sha256_hex(&member.bytes);
        if let Some(item) = manifest.items.iter().find(|i| i.path == member.path)
            && (item.sha256 != actual || item.size != member.bytes.len() as u64)
        {
            report.fail(
                MANIFEST,
                format!(
                    "lists {} with {} bytes and SHA-256 {}, the member has {} bytes and SHA-256 {actual}",
                    member.path,
                    item.size,
                    item.sha256,
                    member.bytes.len()
                ),
            );
        }
        hashes.insert(member.path.as_str(), actual);
    }
    // A member whose hash the manifest disagrees with is named by its own checks when it was
    // the one changed; the manifest is named either way.
    if !report.failed_items().contains(MANIFEST) {
        report.check(MANIFEST, true, format!("{} members listed with their hashes", manifest.items.len()));
    }
    check_contents(&mut report, &manifest, (&files, &hashes), trusted_log_key, max_skew_ms);
    report
}

/// The members' own checks: signatures, proofs, links and the record.
fn check_contents(
    report: &mut Verification,
    manifest: &Manifest,
    (files, hashes): (&BTreeMap<&str, &[u8]>, &BTreeMap<&str, String>),
    trusted_log_key: Option<&str>,
    max_skew_ms: i64,
) {
    let member = |report: &mut Verification, path: &str| required_member(report, files, path);
    // The log key, the checkpoint and the proofs: every leaf in the checkpoint's tree.
    let proofs::Proven { leaves, seen_bounds } = proofs::check(report, manifest, files, trusted_log_key);

    // The export time: the checkpoint was signed after its last leaf in the package arrived, and
    // the package after the checkpoint, so no earlier export time is true.
    let latest = leaves.iter().map(|(index, leaf)| (leaf.received_ms, *index)).max();
    if let Some((received_ms, index)) = latest
        && manifest.exported_at_ms.saturating_add(999) < received_ms
    {
        report.fail(
            MANIFEST,
            format!(
                "the export time {} ms is before leaf {index} of the package was received ({received_ms} ms)",
                manifest.exported_at_ms
            ),
        );
    }

    // The devices: each enrolment is a leaf.
    let mut devices: BTreeMap<String, (PackageDevice, Option<VerifyingKey>)> = BTreeMap::new();
    if let Some(bytes) = member(report, DEVICES) {
        match canonical::<Vec<PackageDevice>>(&bytes) {
            Err(problem) => report.fail(DEVICES, problem),
            Ok(list) => {
                if let Some(problem) = canonical_form::devices_problem(&list) {
                    report.fail(DEVICES, problem);
                }
                let mut good = true;
                for device in list {
                    let key = hex::decode(&device.public_key)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
                    let actor = hex::decode(&device.actor_id).ok();
                    let logged = match device.leaf_index.and_then(|index| leaves.get(&index)) {
                        Some(Leaf {
                            item: LeafItem::DeviceEnrolled { device_id, officer_id, public_key, actor_id },
                            ..
                        }) => {
                            *device_id == device.device_id
                                && *officer_id == device.officer_id
                                && key.is_some_and(|k| k.as_bytes() == public_key)
                                && actor.as_ref() == Some(actor_id)
                        }
                        _ => false,
                    };
                    if !logged {
                        good = false;
                        report.fail(
                            DEVICES,
                            match device.leaf_index {
                                Some(index) => {
                                    format!("device {}: not the enrolment at leaf {index}", device.device_id)
                                }
                                None => format!("device {}: its enrolment is not in the log", device.device_id),
                            },
                        );
                    }
                    if let Some(Leaf { received_ms, .. }) = device.leaf_index.and_then(|i| leaves.get(&i)) {
                        report.item_intervals.push(ItemInterval {
                            item: format!("enrolment of device {}", device.device_id),
                            subject: IntervalSubject::Enrolment { device_id: device.device_id.clone() },
                            not_before_ms: None,
                            not_after_ms: *received_ms,
                            claimed_ms: None,
                        });
                    }
                    report.contents.devices.push(device.clone());
                    devices.insert(device.device_id.clone(), (device, key));
                }
                if good {
                    report.check(DEVICES, true, format!("{} devices, each enrolment in the log", devices.len()));
                }
            }
        }
    }

    // The entries: signed, chained, logged.
    let mut record_entries = Vec::new();
    // The heads each device signed in its entries of the record (content-bound payloads).
    let mut signed_heads: BTreeMap<String, Vec<[u8; 32]>> = BTreeMap::new();
    let mut record_chains: completeness::RecordChains = BTreeMap::new();
    let mut photos_logged: BTreeSet<String> = BTreeSet::new();
    // Each photo entry of the record: photo, device, seq, proven interval.
    let mut photo_entries: Vec<(String, String, u64, Option<i64>, i64)> = Vec::new();
    if let Some(bytes) = member(report, ENTRIES) {
        match canonical::<Vec<PackageEntry>>(&bytes) {
            Err(problem) => report.fail(ENTRIES, problem),
            Ok(entries) => {
                if let Some(problem) = canonical_form::entries_problem(&entries) {
                    report.fail(ENTRIES, problem);
                }
                let before = report.checks.len();
                let mut chains: BTreeMap<&str, Vec<&PackageEntry>> = BTreeMap::new();
                for packaged in &entries {
                    let entry = &packaged.signed.entry;
                    let name = format!("{ENTRIES}#{}/{}", entry.device_id, entry.seq);
                    let Some((_, Some(key))) = devices.get(&entry.device_id) else {
                        report.fail(ENTRIES, format!("{name}: its device is not in {DEVICES}"));
                        continue;
                    };
                    if let Err(e) = packaged.signed.verify(key) {
                        report.fail(ENTRIES, format!("{name}: {e}"));
                        continue;
                    }
                    let hash = entry.hash();
                    let leaf = leaves.get(&packaged.leaf_index);
                    match leaf {
                        Some(Leaf { item: LeafItem::LogEntry { device_id, seq, entry_hash }, .. })
                            if *device_id == entry.device_id && *seq == entry.seq && *entry_hash == hash => {}
                        _ => report.fail(ENTRIES, format!("{name}: not the log entry at leaf {}", packaged.leaf_index)),
                    }
                    let for_record = entry.record_id.as_deref() == Some(manifest.record_id.as_str());
                    match &packaged.payload {
                        Some(payload) => match STANDARD.decode(payload) {
                            Ok(payload) if payload_hash(&payload) == entry.payload_hash => {
                                let (heads, note) = read_payload(&payload);
                                if let (true, Some(heads)) = (for_record, heads) {
                                    signed_heads.entry(entry.device_id.clone()).or_default().extend(heads);
                                }
                                if for_record && !note.is_empty() {
                                    let note = String::from_utf8_lossy(note).into_owned();
                                    report.contents.notes.insert((entry.device_id.clone(), entry.seq), note);
                                }
                            }
                            _ => report.fail(ENTRIES, format!("{name}: the payload does not have the entry's hash")),
                        },
                        None if for_record => report.fail(ENTRIES, format!("{name}: the payload is missing")),
                        None => {}
                    }
                    if for_record {
                        if let schemas::log::EntryKind::PhotoTaken { sha256 } = &entry.kind {
                            photos_logged.insert(sha256.clone());
                        }
                        if let Some(Leaf { received_ms, .. }) = leaf {
                            // A checkpoint of no leaves bounds nothing; one that holds the entry's
                            // own leaf or later ones cannot have been seen before it was written.
                            let seen = entry.seen_checkpoint.filter(|seen| seen.size > 0);
                            if let Some(seen) = seen
                                && seen.size > packaged.leaf_index
                            {
                                report.fail(
                                    ENTRIES,
                                    format!(
                                        "{name}: names a checkpoint of {} leaves, written before its own",
                                        seen.size
                                    ),
                                );
                            }
                            let not_before = seen.and_then(|seen| seen_bounds.get(&(seen.size, seen.root)).copied());
                            if seen.is_some() && not_before.is_none() {
                                report.fail(ENTRIES, format!("{name}: the checkpoint it names as seen is not proven"));
                            }
                            report.intervals.push((
                                entry.device_id.clone(),
                                entry.seq,
                                interval(entry.device_time_ms, not_before, *received_ms, max_skew_ms),
                            ));
                            report.item_intervals.push(ItemInterval {
                                item: format!("entry {} of device {}", entry.seq, entry.device_id),
                                subject: IntervalSubject::Entry { device_id: entry.device_id.clone(), seq: entry.seq },
                                not_before_ms: not_before,
                                not_after_ms: *received_ms,
                                claimed_ms: Some(entry.device_time_ms),
                            });
                            if let schemas::log::EntryKind::PhotoTaken { sha256 } = &entry.kind {
                                photo_entries.push((
                                    sha256.clone(),
                                    entry.device_id.clone(),
                                    entry.seq,
                                    not_before,
                                    *received_ms,
                                ));
                            }
                        }
                        record_entries.push(entry.clone());
                        record_chains
                            .entry(entry.device_id.clone())
                            .or_default()
                            .insert(entry.seq, (hash, packaged.leaf_index));
                    }
                    chains.entry(entry.device_id.as_str()).or_default().push(packaged);
                }
                for (device_id, chain) in &mut chains {
                    chain.sort_by_key(|p| p.signed.entry.seq);
                    for pair in chain.windows(2) {
                        let (a, b) = (&pair[0].signed.entry, &pair[1].signed.entry);
                        if a.seq.checked_add(1) != Some(b.seq) || b.previous != a.hash() {
                            report.fail(
                                ENTRIES,
                                format!("{device_id}: entry {} does not follow entry {} in the chain", b.seq, a.seq),
                            );
                        }
                    }
                }
                if report.checks[before..].iter().all(|c| c.holds) {
                    report.check(
                        ENTRIES,
                        true,
                        format!(
                            "{} entries signed, chained and in the log, {} of this record",
                            entries.len(),
                            record_entries.len()
                        ),
                    );
                }
            }
        }
    }

    // The blobs: each stored one is a leaf; included bytes have their hash.
    let mut blobs_listed: BTreeSet<String> = BTreeSet::new();
    let mut listed_blobs: Vec<PackageBlob> = Vec::new();
    if let Some(bytes) = member(report, BLOBS) {
        match canonical::<Vec<PackageBlob>>(&bytes) {
            Err(problem) => report.fail(BLOBS, problem),
            Ok(blobs) => {
                if let Some(problem) = canonical_form::blobs_problem(&blobs) {
                    report.fail(BLOBS, problem);
                }
                let before = report.checks.len();
                for blob in &blobs {
                    blobs_listed.insert(blob.sha256.clone());
                    match (blob.leaf_index, blob.size) {
                        (Some(index), Some(size)) => {
                            let logged = matches!(leaves.get(&index), Some(Leaf { item: LeafItem::Blob { sha256, size: s }, .. })
                                if hex::encode(sha256) == blob.sha256 && *s == size);
                            if !logged {
                                report.fail(BLOBS, format!("blob {}: not the blob at leaf {index}", blob.sha256));
                            }
                        }
                        (None, None) => report.unproven.push(format!(
                            "blob {}: the server does not hold it, so its content is not proven",
                            blob.sha256
                        )),
                        _ => report.fail(
                            BLOBS,
                            format!("blob {}: a size without a leaf, or a leaf without a size", blob.sha256),
                        ),
                    }
                    let path = blob_path(&blob.sha256);
                    match files.get(path.as_str()) {
                        Some(bytes) => {
                            let holds = hashes.get(path.as_str()) == Some(&blob.sha256)
                                && Some(bytes.len() as u64) == blob.size;
                            report.check(
                                &path,
                                holds,
                                if holds { "has its SHA-256" } else { "does not have its SHA-256 and size" },
                            );
                            if holds {
                                report.contents.blob_bytes.insert(blob.sha256.clone(), bytes.to_vec());
                            }
                        }
                        None if manifest.blobs_included && blob.leaf_index.is_some() => {
                            report.fail(&path, "missing from the package");
                        }
                        None if blob.leaf_index.is_some() => report.not_included.push(blob.sha256.clone()),
                        None => {}
                    }
                    if files.contains_key(path.as_str()) && !manifest.blobs_included {
                        report.fail(&path, "included in a package whose manifest says blobs are not included");
                    }
                }
                for sha256 in &photos_logged {
                    if !blobs_listed.contains(sha256) {
                        report.fail(BLOBS, format!("the photo {sha256} of a log entry is not listed"));
                    }
                }
                // A photo: made after the entry that took it could have been written, and held
                // by the server by the earlier of that entry's and the blob's receipt.
                for (sha256, device_id, seq, not_before, entry_received) in &photo_entries {
                    let stored = blobs.iter().find(|b| b.sha256 == *sha256).and_then(|b| b.leaf_index);
                    let blob_received = stored.and_then(|i| leaves.get(&i)).map(|leaf| leaf.received_ms);
                    let exif = blobs.iter().find(|b| b.sha256 == *sha256).and_then(|b| b.exif_taken_at.as_deref());
                    report.item_intervals.push(ItemInterval {
                        item: format!("photo {sha256} (entry {seq} of device {device_id})"),
                        subject: IntervalSubject::Photo {
                            sha256: sha256.clone(),
                            device_id: device_id.clone(),
                            seq: *seq,
                        },
                        not_before_ms: *not_before,
                        not_after_ms: blob_received.map_or(*entry_received, |b| b.min(*entry_received)),
                        claimed_ms: exif.and_then(exif_time_ms),
                    });
                }
                listed_blobs = blobs.clone();
                report.contents.blobs = blobs.clone();
                if report.checks[before..].iter().filter(|c| c.item == BLOBS).all(|c| c.holds) {
                    let stored = blobs.iter().filter(|b| b.leaf_index.is_some()).count();
                    report.check(
                        BLOBS,
                        true,
                        format!(
                            "{} blobs listed: {} stored by the server, of which {} included and {} by hash only (not included); {} the server does not hold",
                            blobs.len(),
                            stored,
                            stored - report.not_included.len(),
                            report.not_included.len(),
                            blobs.len() - stored
                        ),
                    );
                }
            }
        }
    }
    for path in files.keys().filter(|p| p.starts_with("blobs/")) {
        if !blobs_listed.contains(&path["blobs/".len()..]) {
            report.fail(path, format!("not listed in {BLOBS}"));
        }
    }

    // Completeness: the package holds exactly the items of the record's latest state.
    let state_heads = completeness::check(
        report,
        manifest,
        files.get(STATE).copied(),
        &leaves,
        &record_chains,
        &blobs_listed,
        devices.keys().map(String::as_str).collect(),
    );

    report.contents.entries = record_entries.clone();
    // The record: its document, its signatures in the log, its typed view.
    let Some(document) = member(report, DOCUMENT) else { return };
    let doc = match Automerge::load(&document) {
        Ok(doc) => doc,
        Err(e) => {
            report.fail(DOCUMENT, format!("does not load: {e}"));
            return;
        }
    };
    if doc.save_nocompress() != document {
        report.fail(DOCUMENT, "is not the canonical encoding (Automerge's uncompressed save of the document)");
    }
    let record_id = manifest.record_id.as_str();
    if doc.get_change_by_hash(&genesis_change_hash(record_id)).is_none() {
        report.fail(MANIFEST, format!("names record {record_id}, whose genesis the document does not hold"));
    }
    let before = report.checks.len();
    let actors: BTreeSet<Vec<u8>> = devices.values().filter_map(|(d, _)| hex::decode(&d.actor_id).ok()).collect();
    let genesis = genesis_actor(record_id);
    for change in doc.get_changes(&[]) {
        let actor = change.actor_id();
        // The genesis actor is derived from the record id, so anyone can write as it: only the
        // genesis change itself may be by it.
        let allowed =
            if *actor == genesis { is_genesis_change(record_id, &change) } else { actors.contains(actor.to_bytes()) };
        if !allowed {
            report.fail(DOCUMENT, format!("change {} is by actor {actor}, of no device in {DEVICES}", change.hash()));
        }
    }
    // The record's content is what the log anchors: the document must end at the heads of its
    // latest logged signature or lock (once signed, the server takes only signatures and the
    // lock, each logged), and each logged signature must be the one the document holds.
    // (officer or record id, heads, the signature entry for a signature leaf)
    type Anchor<'a> = (&'a String, &'a Vec<[u8; 32]>, Option<&'a String>);
    let anchors: Vec<Anchor<'_>> = leaves
        .values()
        .filter_map(|leaf| match &leaf.item {
            LeafItem::RecordSigned { record_id: r, officer_id, signature, heads } if r == record_id => {
                Some((officer_id, heads, Some(signature)))
            }
            LeafItem::RecordLocked { record_id: r, heads } if r == record_id => Some((r, heads, None)),
            _ => None,
        })
        .collect();
    match anchors.last() {
        None => report.fail(
            DOCUMENT,
            "no signature or lock of this record is in the log: its content is not proven (it is not signed yet)",
        ),
        Some((_, heads, _)) => {
            let mut logged: Vec<[u8; 32]> = heads.to_vec();
            let mut held: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
            logged.sort();
            held.sort();
            if logged != held {
                report.fail(DOCUMENT, "does not end where the log's latest signature or lock of the record does");
            }
        }
    }
    if let Some(heads) = state_heads.filter(|heads| !heads.is_empty()) {
        let mut named = heads;
        let mut held: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
        named.sort();
        held.sort();
        if named != held {
            report.fail(DOCUMENT, "does not end at the heads the record's latest state in the log names");
        }
    }
    for leaf in leaves.values() {
        let (item, subject, claimed_ms) = match &leaf.item {
            LeafItem::RecordSigned { record_id: r, officer_id, signature, .. } if r == record_id => {
                let claimed = serde_json::from_str::<schemas::OfficerSignature>(signature).ok().map(|s| s.signed_at_ms);
                let subject = IntervalSubject::Signature { officer_id: officer_id.clone() };
                (format!("signature of {officer_id}"), subject, claimed)
            }
            LeafItem::RecordLocked { record_id: r, .. } if r == record_id => {
                ("lock of the record".to_string(), IntervalSubject::Lock, None)
            }
            _ => continue,
        };
        report.item_intervals.push(ItemInterval {
            item,
            subject,
            not_before_ms: None,
            not_after_ms: leaf.received_ms,
            claimed_ms,
        });
    }
    let actor_devices: BTreeMap<Vec<u8>, String> = devices
        .values()
        .filter_map(|(d, _)| hex::decode(&d.actor_id).ok().map(|actor| (actor, d.device_id.clone())))
        .collect();
    let lock_heads: Vec<[u8; 32]> = leaves
        .values()
        .filter_map(|leaf| match &leaf.item {
            LeafItem::RecordLocked { record_id: r, heads } if r == record_id => Some(heads.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    authorship::check(report, &doc, record_id, &actor_devices, &signed_heads, &lock_heads);
    let held_signatures = signature_entries(&doc);
    for (officer_id, _, signature) in &anchors {
        let Some(signature) = signature else { continue };
        let held = held_signatures.get(officer_id.as_str());
        if held != Some(*signature) {
            report.fail(DOCUMENT, format!("the signature of {officer_id} is not the one the log holds"));
        }
    }
    let record = read_record(record_id, &doc);
    match &record {
        Ok(record) => {
            for signature in &record.signatures {
                let logged = leaves.values().any(|leaf| {
                    matches!(&leaf.item,
                    LeafItem::RecordSigned { record_id: r, officer_id, heads, .. }
                        if r == record_id && *officer_id == signature.officer_id
                            && heads.iter().all(|h| doc.get_change_by_hash(&automerge::ChangeHash(*h)).is_some()))
                });
                if !logged {
                    report.fail(DOCUMENT, format!("the signature of {} is not in the log", signature.officer_id));
                }
            }
            let locks: Vec<&Vec<[u8; 32]>> = leaves
                .values()
                .filter_map(|leaf| match &leaf.item {
                    LeafItem::RecordLocked { record_id: r, heads } if r == record_id => Some(heads),
                    _ => None,
                })
                .collect();
            for heads in &locks {
                if !heads.iter().all(|h| doc.get_change_by_hash(&automerge::ChangeHash(*h)).is_some()) {
                    report.fail(DOCUMENT, "lacks changes the log recorded when the record was locked");
                }
            }
            if record.status == schemas::RecordStatus::Locked && locks.is_empty() {
                report.fail(DOCUMENT, "is locked, but no lock is in the log");
            }
            for photo in &record.photos {
                if !blobs_listed.contains(&photo.sha256) {
                    report.fail(BLOBS, format!("the record's photo {} is not listed", photo.sha256));
                }
            }
            let present: Vec<String> = record.officers_present.iter().map(|o| o.officer_id.clone()).collect();
            report.findings = check_record(&record_entries, &present);
            report.findings.extend(time::photo_findings(&photo_entries, &listed_blobs, max_skew_ms));
        }
        Err(e) => report.fail(DOCUMENT, format!("is not a valid record: {e}")),
    }
    report.contents.record = record.as_ref().ok().cloned();
    if report.checks[before..].iter().filter(|c| c.item == DOCUMENT).all(|c| c.holds) {
        report.check(
            DOCUMENT,
            true,
            format!("{} changes, each by the record's genesis or a logged device", doc.get_changes(&[]).len()),
        );
    }
    if let (Some(bytes), Ok(record)) = (member(report, RECORD), &record) {
        let holds = json(record) == bytes;
        report.check(
            RECORD,
            holds,
            if holds { "is the document's record" } else { "is not the record the document holds" },
        );
    }
}

/// A member's bytes; a member missing from the package fails.
fn required_member(report: &mut Verification, files: &BTreeMap<&str, &[u8]>, path: &str) -> Option<Vec<u8>> {
    match files.get(path) {
        Some(bytes) => Some(bytes.to_vec()),
        None => {
            report.fail(path, "missing from the package");
            None
        }
    }
}
