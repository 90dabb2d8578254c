//! The full-process enforcement log (全过程记录): what happened on site, in order, as each
//! device saw it.
//!
//! It is not a CRDT. Each device appends [`LogEntry`]s to its own hash chain: every entry names
//! the hash of the one before it, carries the device's wall-clock and monotonic time and boot
//! id, and is signed with the device's Ed25519 key over a deterministic encoding
//! ([`LogEntry::signing_bytes`]) that starts with a domain-separation prefix. Nobody, the server
//! included, can then reorder, drop or alter an entry without breaking the chain or a signature.
//!
//! [`place`] tells where an entry stands against what is already stored for its device
//! (extends the chain, duplicates it, forks it, or waits for a gap to be filled), and
//! [`check_record`] reports the rules a record's entries break (R2, R3, P2), and each refusal of
//! the inspection by the party with its ground (P2).
//!
//! Encoding, version 1: the prefix `fieldsync/enforcement-log/v1\0`, then each field in order;
//! integers as 8 bytes big-endian, byte strings and text as a 4-byte big-endian length and the
//! bytes, an optional field as one byte (0 absent, 1 present) and then the field. Fields:
//! device id, seq, previous hash (32 bytes), device time (ms, signed), monotonic time (ms),
//! boot id, kind code (one byte) and the kind's own fields, record id (optional), payload hash
//! (32 bytes), latest checkpoint seen (optional: size, root). The payload itself is not in the
//! encoding, only its SHA-256, so an entry can be checked without it.
//!
//! The payload, version 2 (content-bound): the prefix `fieldsync/entry-payload/v2\0`, the
//! record's Automerge heads as the device held them when it wrote the entry (a 4-byte
//! big-endian count and each head's 32 bytes, in ascending order), then the entry's note. An
//! entry of a record signs its payload's hash, so the device's key signs the record's content
//! as it stood (and a photo entry its photo's hash, which is in the entry itself). A payload
//! without the prefix is version 1: a note alone, bound to no content. [`content_payload`]
//! writes one, [`read_payload`] reads either.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
pub use schemas::log::{EntryKind, LogEntry, LogFinding, SeenCheckpoint, SignedEntry};
use sha2::{Digest, Sha256};

/// Domain separation: these bytes are signed for nothing else.
pub const ENTRY_DOMAIN: &[u8] = b"fieldsync/enforcement-log/v1\0";

/// The previous hash of a chain's first entry.
pub const GENESIS_PREVIOUS: [u8; 32] = [0; 32];

/// The kind's code in the encoding.
fn kind_code(kind: &EntryKind) -> u8 {
    match kind {
        EntryKind::Arrive => 1,
        EntryKind::CertificatesShown { .. } => 2,
        EntryKind::RecordingStarted => 3,
        EntryKind::RecordingStopped { .. } => 4,
        EntryKind::PhotoTaken { .. } => 5,
        EntryKind::PartyQuestioned => 6,
        EntryKind::SampleTaken { .. } => 7,
        EntryKind::EvidencePreserved => 8,
        EntryKind::SealOrSeizure => 9,
        EntryKind::DocumentServed { .. } => 10,
        EntryKind::PartyRefused { .. } => 11,
        EntryKind::Signed { .. } => 12,
        EntryKind::Left => 13,
        EntryKind::InspectionRefused { .. } => 14,
    }
}

/// The kind's code and its own fields.
fn encode_kind(kind: &EntryKind, out: &mut Vec<u8>) {
    out.push(kind_code(kind));
    match kind {
        EntryKind::CertificatesShown { officer_ids } | EntryKind::InspectionRefused { officer_ids } => {
            out.extend((officer_ids.len() as u32).to_be_bytes());
            for id in officer_ids {
                bytes(out, id.as_bytes());
            }
        }
        EntryKind::RecordingStopped { reason } => bytes(out, reason.as_bytes()),
        EntryKind::PhotoTaken { sha256 } => bytes(out, sha256.as_bytes()),
        EntryKind::SampleTaken { sample_id } => bytes(out, sample_id.as_bytes()),
        EntryKind::DocumentServed { document } => bytes(out, document.as_bytes()),
        EntryKind::PartyRefused { note } => bytes(out, note.as_bytes()),
        EntryKind::Signed { officer_id } => bytes(out, officer_id.as_bytes()),
        EntryKind::Arrive
        | EntryKind::RecordingStarted
        | EntryKind::PartyQuestioned
        | EntryKind::EvidencePreserved
        | EntryKind::SealOrSeizure
        | EntryKind::Left => {}
    }
}

pub(crate) fn bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.extend((value.len() as u32).to_be_bytes());
    out.extend(value);
}

/// The encoding, hash and signature of a [`LogEntry`].
pub trait EntryEncoding {
    /// The deterministic encoding that is hashed and signed (see the module documentation).
    fn signing_bytes(&self) -> Vec<u8>;
    /// The entry's hash: what the next entry names as its previous.
    fn hash(&self) -> [u8; 32];
    /// Signs the entry with the device's key.
    fn sign(self, key: &SigningKey) -> SignedEntry;
}

impl EntryEncoding for LogEntry {
    fn signing_bytes(&self) -> Vec<u8> {
        let mut out = ENTRY_DOMAIN.to_vec();
        bytes(&mut out, self.device_id.as_bytes());
        out.extend(self.seq.to_be_bytes());
        out.extend(self.previous);
        out.extend(self.device_time_ms.to_be_bytes());
        out.extend(self.monotonic_ms.to_be_bytes());
        bytes(&mut out, self.boot_id.as_bytes());
        encode_kind(&self.kind, &mut out);
        match &self.record_id {
            Some(id) => {
                out.push(1);
                bytes(&mut out, id.as_bytes());
            }
            None => out.push(0),
        }
        out.extend(self.payload_hash);
        match &self.seen_checkpoint {
            Some(checkpoint) => {
                out.push(1);
                out.extend(checkpoint.size.to_be_bytes());
                out.extend(checkpoint.root);
            }
            None => out.push(0),
        }
        out
    }

    fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.signing_bytes()).into()
    }

    fn sign(self, key: &SigningKey) -> SignedEntry {
        let signature = key.sign(&self.signing_bytes()).to_bytes();
        SignedEntry { entry: self, signature }
    }
}

/// Domain separation of a content-bound payload (version 2).
pub const CONTENT_PAYLOAD_DOMAIN: &[u8] = b"fieldsync/entry-payload/v2\0";

/// A content-bound payload: the record's heads as the device holds them, and the note.
pub fn content_payload(heads: &[[u8; 32]], note: &[u8]) -> Vec<u8> {
    let mut heads = heads.to_vec();
    heads.sort();
    let mut out = CONTENT_PAYLOAD_DOMAIN.to_vec();
    out.extend((heads.len() as u32).to_be_bytes());
    for head in &heads {
        out.extend(head);
    }
    out.extend(note);
    out
}

/// A payload's heads (`None` for a version 1 payload, or a version 2 one cut short) and its
/// note.
pub fn read_payload(payload: &[u8]) -> (Option<Vec<[u8; 32]>>, &[u8]) {
    let Some(rest) = payload.strip_prefix(CONTENT_PAYLOAD_DOMAIN) else { return (None, payload) };
    let Some((count, rest)) = rest.split_first_chunk::<4>() else { return (None, payload) };
    let count = u32::from_be_bytes(*count) as usize;
    match count.checked_mul(32).filter(|bytes| *bytes <= rest.len()) {
        Some(bytes) => {
            let heads = rest[..bytes].chunks_exact(32).map(|h| h.try_into().expect("32 bytes")).collect();
            (Some(heads), &rest[bytes..])
        }
        None => (None, payload),
    }
}

/// The SHA-256 of a payload, as an entry names it.
pub fn payload_hash(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}

/// Why an entry is not what it claims.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the signature does not verify against the device's key")]
    BadSignature,
    #[error("the payload does not have the entry's payload hash")]
    PayloadMismatch,
    #[error("seq must start at 1")]
    ZeroSeq,
    #[error("{field} has {found} characters, at most {max} allowed")]
    FieldTooLong { field: &'static str, found: usize, max: usize },
    #[error("{found} officers shown, at most {MAX_OFFICERS_SHOWN} allowed")]
    TooManyOfficers { found: usize },
    #[error("the payload has {found} bytes, at most {MAX_PAYLOAD_BYTES} allowed")]
    PayloadTooLarge { found: usize },
}

/// Most officers one certificates-shown entry may name.
pub const MAX_OFFICERS_SHOWN: usize = 64;

/// Largest payload an entry may carry, in bytes (the server's default limit).
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;

/// Checks an entry's fields against their limits: seq from 1; the record id, an officer id and
/// a sample id at most [`MAX_ID`](crate::input::MAX_ID) characters; the boot id and a photo's
/// hash at most [`MAX_SHORT_TEXT`](crate::input::MAX_SHORT_TEXT); free text (a reason, a note,
/// a document) at most [`MAX_LONG_TEXT`](crate::input::MAX_LONG_TEXT); at most
/// [`MAX_OFFICERS_SHOWN`] officers shown. The device checks before it signs, the server before
/// it stores, so that a device never signs what the server refuses.
pub fn check_fields(entry: &LogEntry) -> Result<(), EntryError> {
    use crate::input::{MAX_ID, MAX_LONG_TEXT, MAX_SHORT_TEXT};
    let too_long = |field: &'static str, value: &str, max: usize| {
        let found = value.chars().count();
        if found > max { Err(EntryError::FieldTooLong { field, found, max }) } else { Ok(()) }
    };
    if entry.seq == 0 {
        return Err(EntryError::ZeroSeq);
    }
    too_long("boot_id", &entry.boot_id, MAX_SHORT_TEXT)?;
    if let Some(record_id) = &entry.record_id {
        too_long("record_id", record_id, MAX_ID)?;
    }
    match &entry.kind {
        EntryKind::CertificatesShown { officer_ids } | EntryKind::InspectionRefused { officer_ids } => {
            if officer_ids.len() > MAX_OFFICERS_SHOWN {
                return Err(EntryError::TooManyOfficers { found: officer_ids.len() });
            }
            officer_ids.iter().try_for_each(|id| too_long("officer_ids", id, MAX_ID))
        }
        EntryKind::RecordingStopped { reason } => too_long("reason", reason, MAX_LONG_TEXT),
        EntryKind::PhotoTaken { sha256 } => too_long("sha256", sha256, MAX_SHORT_TEXT),
        EntryKind::SampleTaken { sample_id } => too_long("sample_id", sample_id, MAX_ID),
        EntryKind::DocumentServed { document } => too_long("document", document, MAX_LONG_TEXT),
        EntryKind::PartyRefused { note } => too_long("note", note, MAX_LONG_TEXT),
        EntryKind::Signed { officer_id } => too_long("officer_id", officer_id, MAX_ID),
        EntryKind::Arrive
        | EntryKind::RecordingStarted
        | EntryKind::PartyQuestioned
        | EntryKind::EvidencePreserved
        | EntryKind::SealOrSeizure
        | EntryKind::Left => Ok(()),
    }
}

/// The checks of a [`SignedEntry`].
pub trait EntryVerification {
    /// Checks the signature strictly (no malleable or small-order forms) against the device's key.
    fn verify(&self, key: &VerifyingKey) -> Result<(), EntryError>;
    /// Checks that `payload` is the entry's payload.
    fn check_payload(&self, payload: &[u8]) -> Result<(), EntryError>;
}

impl EntryVerification for SignedEntry {
    fn verify(&self, key: &VerifyingKey) -> Result<(), EntryError> {
        if self.entry.seq == 0 {
            return Err(EntryError::ZeroSeq);
        }
        if crate::signature::verify_strict(key.as_bytes(), &self.entry.signing_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(EntryError::BadSignature)
        }
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), EntryError> {
        if payload_hash(payload) == self.entry.payload_hash { Ok(()) } else { Err(EntryError::PayloadMismatch) }
    }
}

/// Where an entry stands against its device's stored chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The next entry of the chain: accept it.
    Extends,
    /// The very entry already stored at its seq: nothing to do.
    Duplicate,
    /// Another entry is stored at its seq, or it names another previous entry than the one
    /// stored: two histories of one device. Keep both and flag tampering.
    Fork,
    /// The entry before it is not stored yet: hold it until the gap is filled.
    Gap,
}

/// Places `entry` given the hash stored at its seq (if any) and at the seq before (if any).
pub fn place(entry: &LogEntry, stored_here: Option<[u8; 32]>, stored_before: Option<[u8; 32]>) -> Placement {
    if let Some(stored) = stored_here {
        return if stored == entry.hash() { Placement::Duplicate } else { Placement::Fork };
    }
    if entry.seq <= 1 {
        return if entry.previous == GENESIS_PREVIOUS { Placement::Extends } else { Placement::Fork };
    }
    match stored_before {
        Some(previous) if previous == entry.previous => Placement::Extends,
        Some(_) => Placement::Fork,
        None => Placement::Gap,
    }
}

/// The rules the entries of one record break, given the officers present on the record.
/// Recording intervals are per device, in its chain order. A seal or seizure is covered when its
/// own device was recording at that point of its chain (between a start and the next stop, by
/// seq), or when another device's recording ran at that instant of device time (ends included:
/// two devices' clocks tick in milliseconds, not in order).
pub fn check_record(entries: &[LogEntry], officers_present: &[String]) -> Vec<LogFinding> {
    let mut findings = Vec::new();
    let mut by_device: BTreeMap<&str, Vec<&LogEntry>> = BTreeMap::new();
    for entry in entries {
        by_device.entry(entry.device_id.as_str()).or_default().push(entry);
    }
    // Each device's recording intervals: (device, start seq, end seq, start ms, end ms); an
    // unclosed one runs to the end.
    let mut intervals: Vec<(&str, u64, u64, i64, i64)> = Vec::new();
    for (device, chain) in by_device.iter_mut() {
        chain.sort_by_key(|e| e.seq);
        let mut open: Option<(u64, i64)> = None;
        for entry in chain.iter() {
            match &entry.kind {
                EntryKind::RecordingStarted => {
                    open.get_or_insert((entry.seq, entry.device_time_ms));
                }
                EntryKind::RecordingStopped { reason } => {
                    if reason.trim().is_empty() {
                        findings.push(LogFinding::RecordingStoppedWithoutReason {
                            device_id: entry.device_id.clone(),
                            seq: entry.seq,
                        });
                    }
                    if let Some((seq, at)) = open.take() {
                        intervals.push((device, seq, entry.seq, at, entry.device_time_ms));
                    }
                }
                _ => {}
            }
        }
        if let Some((seq, at)) = open {
            intervals.push((device, seq, u64::MAX, at, i64::MAX));
        }
    }
    for entry in entries {
        let covered = intervals.iter().any(|(device, start_seq, end_seq, start_ms, end_ms)| {
            if *device == entry.device_id {
                *start_seq < entry.seq && entry.seq < *end_seq
            } else {
                *start_ms <= entry.device_time_ms && entry.device_time_ms <= *end_ms
            }
        });
        if entry.kind == EntryKind::SealOrSeizure && !covered {
            findings.push(LogFinding::SealWithoutRecording { device_id: entry.device_id.clone(), seq: entry.seq });
        }
    }
    let shown: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::CertificatesShown { officer_ids } => Some(officer_ids.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    for officer in officers_present {
        if !shown.contains(officer.as_str()) {
            findings.push(LogFinding::CertificateNotShown { officer_id: officer.clone() });
        }
    }
    findings.extend(refusals(entries));
    findings
}

/// P2: each refusal of the inspection, with the officers it names who had not shown their
/// certificate before it (by the devices' clocks): the refusal's lawful ground.
fn refusals(entries: &[LogEntry]) -> Vec<LogFinding> {
    let mut refusals: Vec<&LogEntry> =
        entries.iter().filter(|e| matches!(e.kind, EntryKind::InspectionRefused { .. })).collect();
    refusals.sort_by_key(|e| (e.device_time_ms, e.device_id.clone(), e.seq));
    refusals
        .into_iter()
        .map(|refusal| {
            let EntryKind::InspectionRefused { officer_ids } = &refusal.kind else { unreachable!("filtered") };
            let shown_before: BTreeSet<&str> = entries
                .iter()
                .filter(|e| {
                    (e.device_id == refusal.device_id && e.seq < refusal.seq)
                        || (e.device_id != refusal.device_id && e.device_time_ms < refusal.device_time_ms)
                })
                .filter_map(|e| match &e.kind {
                    EntryKind::CertificatesShown { officer_ids } => Some(officer_ids.iter().map(String::as_str)),
                    _ => None,
                })
                .flatten()
                .collect();
            LogFinding::InspectionRefused {
                device_id: refusal.device_id.clone(),
                seq: refusal.seq,
                not_shown: officer_ids.iter().filter(|o| !shown_before.contains(o.as_str())).cloned().collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    #[test]
    fn content_payloads_read_back_and_old_ones_stay_notes() {
        let payload = content_payload(&[[2; 32], [1; 32]], "查封".as_bytes());
        assert_eq!(payload.len(), CONTENT_PAYLOAD_DOMAIN.len() + 4 + 64 + "查封".len());
        assert_eq!(read_payload(&payload), (Some(vec![[1; 32], [2; 32]]), "查封".as_bytes()));
        assert_eq!(read_payload(b"a note"), (None, &b"a note"[..]));
        let cut = &payload[..CONTENT_PAYLOAD_DOMAIN.len() + 4 + 40];
        assert_eq!(read_payload(cut).0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000_000;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    /// A chain of `kinds` on device `device`, one second apart.
    fn chain(device: &str, kinds: Vec<EntryKind>) -> Vec<LogEntry> {
        let mut previous = GENESIS_PREVIOUS;
        let mut entries = Vec::new();
        for (i, kind) in kinds.into_iter().enumerate() {
            let entry = LogEntry {
                device_id: device.into(),
                seq: i as u64 + 1,
                previous,
                device_time_ms: T0 + 1000 * i as i64,
                monotonic_ms: 5_000 + 1000 * i as u64,
                boot_id: "boot-1".into(),
                kind,
                record_id: Some("R1".into()),
                payload_hash: payload_hash(b""),
                seen_checkpoint: None,
            };
            previous = entry.hash();
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn a_signed_entry_verifies_only_with_its_key_and_unchanged() {
        let entry = chain("D1", vec![EntryKind::Arrive]).remove(0);
        let signed = entry.clone().sign(&key(1));
        assert_eq!(signed.verify(&key(1).verifying_key()), Ok(()));
        assert_eq!(signed.verify(&key(2).verifying_key()), Err(EntryError::BadSignature));
        let mut altered = signed.clone();
        altered.entry.device_time_ms += 1;
        assert_eq!(altered.verify(&key(1).verifying_key()), Err(EntryError::BadSignature));
        let mut forged = signed.clone();
        forged.signature[0] ^= 1;
        assert_eq!(forged.verify(&key(1).verifying_key()), Err(EntryError::BadSignature));
        assert_eq!(signed.check_payload(b""), Ok(()));
        assert_eq!(signed.check_payload(b"x"), Err(EntryError::PayloadMismatch));
    }

    /// Every field is in the signed bytes: changing any one changes them.
    #[test]
    fn every_field_is_signed() {
        let base = chain("D1", vec![EntryKind::RecordingStopped { reason: "电量不足".into() }]).remove(0);
        let variants: Vec<LogEntry> = vec![
            LogEntry { device_id: "D2".into(), ..base.clone() },
            LogEntry { seq: 2, ..base.clone() },
            LogEntry { previous: [1; 32], ..base.clone() },
            LogEntry { device_time_ms: base.device_time_ms + 1, ..base.clone() },
            LogEntry { monotonic_ms: base.monotonic_ms + 1, ..base.clone() },
            LogEntry { boot_id: "boot-2".into(), ..base.clone() },
            LogEntry { kind: EntryKind::RecordingStopped { reason: "电量不足。".into() }, ..base.clone() },
            LogEntry { kind: EntryKind::RecordingStarted, ..base.clone() },
            LogEntry { record_id: None, ..base.clone() },
            LogEntry { record_id: Some("R2".into()), ..base.clone() },
            LogEntry { payload_hash: payload_hash(b"x"), ..base.clone() },
            LogEntry { seen_checkpoint: Some(SeenCheckpoint { size: 1, root: [0; 32] }), ..base.clone() },
        ];
        let mut seen = BTreeSet::from([base.signing_bytes()]);
        for variant in variants {
            assert!(seen.insert(variant.signing_bytes()), "{variant:?} encodes like another");
        }
        assert!(base.signing_bytes().starts_with(ENTRY_DOMAIN));
    }

    /// Length prefixes keep fields apart: moving bytes from one text field to the next changes
    /// the encoding.
    #[test]
    fn field_boundaries_are_unambiguous() {
        let base = chain("D1", vec![EntryKind::Arrive]).remove(0);
        let a = LogEntry { device_id: "D1x".into(), boot_id: "y".into(), ..base.clone() };
        let b = LogEntry { device_id: "D1".into(), boot_id: "xy".into(), ..base };
        assert_ne!(a.signing_bytes(), b.signing_bytes());
    }

    #[test]
    fn placement_against_the_stored_chain() {
        let entries = chain("D1", vec![EntryKind::Arrive, EntryKind::RecordingStarted, EntryKind::Left]);
        let (first, second, third) = (&entries[0], &entries[1], &entries[2]);
        let other_second = LogEntry { device_time_ms: second.device_time_ms + 5, ..second.clone() };
        type Case<'a> = (&'a str, &'a LogEntry, Option<[u8; 32]>, Option<[u8; 32]>, Placement);
        let cases: Vec<Case> = vec![
            ("first entry of an empty chain", first, None, None, Placement::Extends),
            ("next entry", second, None, Some(first.hash()), Placement::Extends),
            ("the same entry again", second, Some(second.hash()), Some(first.hash()), Placement::Duplicate),
            ("another entry at a stored seq", &other_second, Some(second.hash()), Some(first.hash()), Placement::Fork),
            ("names another previous entry", third, None, Some(other_second.hash()), Placement::Fork),
            ("its previous entry not stored yet", third, None, None, Placement::Gap),
        ];
        for (what, entry, here, before, expected) in cases {
            assert_eq!(place(entry, here, before), expected, "{what}");
        }
        let rooted_elsewhere = LogEntry { previous: [9; 32], ..first.clone() };
        assert_eq!(place(&rooted_elsewhere, None, None), Placement::Fork, "a first entry names no previous entry");
    }

    fn officers(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn r2_r3_p2_findings_per_record() {
        use EntryKind::*;
        let shown = CertificatesShown { officer_ids: officers(&["O1", "O2"]) };
        let stopped = |reason: &str| RecordingStopped { reason: reason.into() };
        /// What, each device's chain of kinds, the officers present, the findings expected.
        type Case = (&'static str, Vec<Vec<EntryKind>>, Vec<&'static str>, Vec<LogFinding>);
        let cases: Vec<Case> = vec![
            (
                "R2 met: seal while recording, both certificates shown",
                vec![vec![Arrive, shown.clone(), RecordingStarted, SealOrSeizure, stopped("结束"), Left]],
                vec!["O1", "O2"],
                vec![],
            ),
            (
                "R2 broken: seal after the recording stopped",
                vec![vec![shown.clone(), RecordingStarted, stopped("设备故障"), SealOrSeizure]],
                vec!["O1", "O2"],
                vec![LogFinding::SealWithoutRecording { device_id: "D1".into(), seq: 4 }],
            ),
            (
                "R2 broken: seal with no recording at all",
                vec![vec![shown.clone(), SealOrSeizure]],
                vec!["O1", "O2"],
                vec![LogFinding::SealWithoutRecording { device_id: "D1".into(), seq: 2 }],
            ),
            (
                "R2 met: the other officer's device was recording",
                vec![vec![shown.clone(), SealOrSeizure], vec![RecordingStarted, Arrive, Arrive]],
                vec!["O1", "O2"],
                vec![],
            ),
            (
                "R3 broken: a recording stopped without a reason",
                vec![vec![shown.clone(), RecordingStarted, stopped("  "), RecordingStarted]],
                vec!["O1", "O2"],
                vec![LogFinding::RecordingStoppedWithoutReason { device_id: "D1".into(), seq: 3 }],
            ),
            (
                "P2 broken: O2 present, no certificates-shown entry for O2",
                vec![vec![CertificatesShown { officer_ids: officers(&["O1"]) }, Arrive]],
                vec!["O1", "O2"],
                vec![LogFinding::CertificateNotShown { officer_id: "O2".into() }],
            ),
        ];
        for (what, chains, present, expected) in cases {
            let entries: Vec<LogEntry> =
                chains.into_iter().enumerate().flat_map(|(i, kinds)| chain(&format!("D{}", i + 1), kinds)).collect();
            assert_eq!(check_record(&entries, &officers(&present)), expected, "{what}");
        }

        // P2: a refusal of the inspection is reported with the officers it names who had not shown
        // their certificate before it, by chain order on its device and by clock on the others.
        let refused = |ids: &[&str]| InspectionRefused { officer_ids: officers(ids) };
        type RefusalCase = (&'static str, Vec<Vec<EntryKind>>, Vec<&'static str>);
        let cases: Vec<RefusalCase> = vec![
            ("P2 refusal: nobody showed", vec![vec![Arrive, refused(&["O1", "O2"]), Left]], vec!["O1", "O2"]),
            (
                "P2 refusal: O1 showed, O2 did not",
                vec![vec![CertificatesShown { officer_ids: officers(&["O1"]) }, refused(&["O1", "O2"])]],
                vec!["O2"],
            ),
            ("P2 refusal without ground: both showed first", vec![vec![shown.clone(), refused(&["O1", "O2"])]], vec![]),
            ("P2 refusal before the certificates were shown", vec![vec![refused(&["O1"]), shown.clone()]], vec!["O1"]),
            (
                "P2 refusal after the other device's entry showing them",
                vec![vec![Arrive, Arrive, refused(&["O2"])], vec![shown.clone()]],
                vec![],
            ),
        ];
        for (what, chains, not_shown) in cases {
            let entries: Vec<LogEntry> =
                chains.into_iter().enumerate().flat_map(|(i, kinds)| chain(&format!("D{}", i + 1), kinds)).collect();
            let refusal = entries.iter().find(|e| matches!(e.kind, InspectionRefused { .. })).unwrap();
            let expected = LogFinding::InspectionRefused {
                device_id: refusal.device_id.clone(),
                seq: refusal.seq,
                not_shown: officers(&not_shown),
            };
            let findings = check_record(&entries, &[]);
            assert_eq!(findings, vec![expected], "{what}");
        }

        // R2 met within one millisecond: the device's own chain orders its entries, not its clock.
        let mut same_instant = chain("D1", vec![shown.clone(), RecordingStarted, SealOrSeizure, stopped("结束")]);
        for entry in &mut same_instant {
            entry.device_time_ms = T0;
        }
        assert_eq!(check_record(&same_instant, &officers(&["O1", "O2"])), vec![]);
        // Another device's recording that stopped at the seal's very millisecond covers it.
        let mut seal = chain("D1", vec![shown.clone(), SealOrSeizure]);
        let recording = chain("D2", vec![RecordingStarted, stopped("电池耗尽")]);
        seal[1].device_time_ms = recording[1].device_time_ms;
        let entries: Vec<LogEntry> = seal.into_iter().chain(recording).collect();
        assert_eq!(check_record(&entries, &officers(&["O1", "O2"])), vec![]);
    }

    #[test]
    fn field_limits_of_an_entry() {
        use crate::input::{MAX_ID, MAX_LONG_TEXT, MAX_SHORT_TEXT};
        let with = |kind: EntryKind| {
            let mut entry = chain("D1", vec![kind]).remove(0);
            entry.record_id = Some("R".into());
            entry
        };
        let cases: Vec<(&str, LogEntry, Result<(), EntryError>)> = vec![
            ("a plain entry", with(EntryKind::Arrive), Ok(())),
            ("a reason at its limit", with(EntryKind::RecordingStopped { reason: "因".repeat(MAX_LONG_TEXT) }), Ok(())),
            (
                "a reason over it",
                with(EntryKind::RecordingStopped { reason: "因".repeat(MAX_LONG_TEXT + 1) }),
                Err(EntryError::FieldTooLong { field: "reason", found: MAX_LONG_TEXT + 1, max: MAX_LONG_TEXT }),
            ),
            (
                "too many officers shown",
                with(EntryKind::CertificatesShown { officer_ids: vec!["O1".into(); MAX_OFFICERS_SHOWN + 1] }),
                Err(EntryError::TooManyOfficers { found: MAX_OFFICERS_SHOWN + 1 }),
            ),
            (
                "an officer id too long",
                with(EntryKind::Signed { officer_id: "O".repeat(MAX_ID + 1) }),
                Err(EntryError::FieldTooLong { field: "officer_id", found: MAX_ID + 1, max: MAX_ID }),
            ),
            (
                "a photo hash too long",
                with(EntryKind::PhotoTaken { sha256: "a".repeat(MAX_SHORT_TEXT + 1) }),
                Err(EntryError::FieldTooLong { field: "sha256", found: MAX_SHORT_TEXT + 1, max: MAX_SHORT_TEXT }),
            ),
            ("seq 0", LogEntry { seq: 0, ..with(EntryKind::Arrive) }, Err(EntryError::ZeroSeq)),
        ];
        for (what, entry, expected) in cases {
            assert_eq!(check_fields(&entry), expected, "{what}");
        }
    }

    #[test]
    fn entries_travel_as_json_and_come_back_equal() {
        let signed = chain("D1", vec![EntryKind::PhotoTaken { sha256: "ab".repeat(32) }]).remove(0).sign(&key(3));
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.verify(&key(3).verifying_key()), Ok(()));
    }
}
