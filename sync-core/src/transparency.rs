//! The transparency log's leaves: what the server appends to its Merkle tree, and when.
//!
//! Every accepted enforcement-log entry, every record signature and lock, every enrolled device
//! and every stored blob becomes one [`Leaf`], stamped with the server's receipt time. The
//! tree ([`merkle`](crate::merkle)) and its signed checkpoints
//! ([`checkpoint`](crate::checkpoint)) then prove to anyone holding the server's key that the
//! item existed by that time and that the server has not rewritten it since.
//!
//! A device names in each entry the latest checkpoint it had seen, so an entry is no older than
//! that checkpoint's last leaf: [`interval`] puts the device's claimed time beside what the log
//! proves, and flags a claim outside it.
//!
//! Encoding, version 1 (the leaf's data; its Merkle hash is `SHA-256(0x00 || data)`): the
//! prefix `fieldsync/transparency-leaf/v1\0`, the receipt time (Unix ms, 8 bytes big-endian,
//! signed), the item's code (one byte) and its fields in order. Integers are 8 bytes
//! big-endian; text and variable bytes are a 4-byte big-endian length and the bytes; fixed
//! hashes and keys are their 32 bytes; a list is a 4-byte count and its elements.
//!
//! | code | item | fields |
//! |---|---|---|
//! | 1 | device enrolled | device id, officer id, Ed25519 public key (32), actor id (bytes) |
//! | 2 | log entry | device id, seq, entry hash (32) |
//! | 3 | record signed | record id, officer id, the signature entry (JSON text as stored), heads (list of 32) |
//! | 4 | record locked | record id, heads (list of 32) |
//! | 5 | blob stored | SHA-256 (32), size |

use schemas::log::TimeInterval;

use crate::enforcement_log::bytes as put_bytes;
use crate::merkle::{Hash, leaf_hash};

/// Domain separation: a leaf's data starts with these bytes and nothing else does.
pub const LEAF_DOMAIN: &[u8] = b"fieldsync/transparency-leaf/v1\0";

/// One leaf: an item and the server's receipt time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// When the server received the item, Unix ms: the item existed by then.
    pub received_ms: i64,
    pub item: LeafItem,
}

/// What a leaf attests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeafItem {
    /// A device was enrolled for an officer with this key and Automerge actor id.
    DeviceEnrolled { device_id: String, officer_id: String, public_key: [u8; 32], actor_id: Vec<u8> },
    /// An entry of a device's enforcement-log chain, by its hash.
    LogEntry { device_id: String, seq: u64, entry_hash: [u8; 32] },
    /// An officer's signature on a record: the signature entry as the record holds it, and the
    /// record's heads once the server stored it.
    RecordSigned { record_id: String, officer_id: String, signature: String, heads: Vec<[u8; 32]> },
    /// A record became locked; its heads once the server stored it.
    RecordLocked { record_id: String, heads: Vec<[u8; 32]> },
    /// A blob (a photo, ...) was stored.
    Blob { sha256: [u8; 32], size: u64 },
}

/// Why bytes are not a leaf.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("the leaf does not start with the domain prefix")]
    WrongDomain,
    #[error("the leaf ends early")]
    Truncated,
    #[error("unknown item code {code}")]
    UnknownItem { code: u8 },
    #[error("text in the leaf is not UTF-8")]
    NotUtf8,
    #[error("{extra} bytes follow the leaf's last field")]
    TrailingBytes { extra: usize },
}

impl Leaf {
    /// The leaf's data, as hashed into the tree.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = LEAF_DOMAIN.to_vec();
        out.extend(self.received_ms.to_be_bytes());
        match &self.item {
            LeafItem::DeviceEnrolled { device_id, officer_id, public_key, actor_id } => {
                out.push(1);
                put_bytes(&mut out, device_id.as_bytes());
                put_bytes(&mut out, officer_id.as_bytes());
                out.extend(public_key);
                put_bytes(&mut out, actor_id);
            }
            LeafItem::LogEntry { device_id, seq, entry_hash } => {
                out.push(2);
                put_bytes(&mut out, device_id.as_bytes());
                out.extend(seq.to_be_bytes());
                out.extend(entry_hash);
            }
            LeafItem::RecordSigned { record_id, officer_id, signature, heads } => {
                out.push(3);
                put_bytes(&mut out, record_id.as_bytes());
                put_bytes(&mut out, officer_id.as_bytes());
                put_bytes(&mut out, signature.as_bytes());
                put_hashes(&mut out, heads);
            }
            LeafItem::RecordLocked { record_id, heads } => {
                out.push(4);
                put_bytes(&mut out, record_id.as_bytes());
                put_hashes(&mut out, heads);
            }
            LeafItem::Blob { sha256, size } => {
                out.push(5);
                out.extend(sha256);
                out.extend(size.to_be_bytes());
            }
        }
        out
    }

    /// The leaf's Merkle hash.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.to_bytes())
    }

    /// Reads a leaf strictly: the whole input, nothing after the last field.
    pub fn from_bytes(data: &[u8]) -> Result<Leaf, LeafError> {
        let rest = data.strip_prefix(LEAF_DOMAIN).ok_or(LeafError::WrongDomain)?;
        let mut reader = Reader { rest };
        let received_ms = i64::from_be_bytes(reader.array()?);
        let item = match reader.array::<1>()?[0] {
            1 => LeafItem::DeviceEnrolled {
                device_id: reader.text()?,
                officer_id: reader.text()?,
                public_key: reader.array()?,
                actor_id: reader.bytes()?.to_vec(),
            },
            2 => LeafItem::LogEntry {
                device_id: reader.text()?,
                seq: u64::from_be_bytes(reader.array()?),
                entry_hash: reader.array()?,
            },
            3 => LeafItem::RecordSigned {
                record_id: reader.text()?,
                officer_id: reader.text()?,
                signature: reader.text()?,
                heads: reader.hashes()?,
            },
            4 => LeafItem::RecordLocked { record_id: reader.text()?, heads: reader.hashes()? },
            5 => LeafItem::Blob { sha256: reader.array()?, size: u64::from_be_bytes(reader.array()?) },
            code => return Err(LeafError::UnknownItem { code }),
        };
        if !reader.rest.is_empty() {
            return Err(LeafError::TrailingBytes { extra: reader.rest.len() });
        }
        Ok(Leaf { received_ms, item })
    }
}

fn put_hashes(out: &mut Vec<u8>, hashes: &[[u8; 32]]) {
    out.extend((hashes.len() as u32).to_be_bytes());
    for hash in hashes {
        out.extend(hash);
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LeafError> {
        if self.rest.len() < n {
            return Err(LeafError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LeafError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], LeafError> {
        let length = u32::from_be_bytes(self.array()?) as usize;
        self.take(length)
    }

    fn text(&mut self) -> Result<String, LeafError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| LeafError::NotUtf8)
    }

    fn hashes(&mut self) -> Result<Vec<[u8; 32]>, LeafError> {
        let count = u32::from_be_bytes(self.array()?) as usize;
        if count > self.rest.len() / 32 {
            return Err(LeafError::Truncated);
        }
        (0..count).map(|_| self.array()).collect()
    }
}

/// The interval the log proves for an item beside the device's claimed time: made no earlier
/// than `not_before_ms` (the receipt of the last leaf of the checkpoint the device had seen),
/// received by `not_after_ms`. A claim outside it by more than `max_skew_ms` is flagged.
pub fn interval(claimed_ms: i64, not_before_ms: Option<i64>, not_after_ms: i64, max_skew_ms: i64) -> TimeInterval {
    let too_early = not_before_ms.is_some_and(|not_before| claimed_ms < not_before.saturating_sub(max_skew_ms));
    let too_late = claimed_ms > not_after_ms.saturating_add(max_skew_ms);
    TimeInterval { claimed_ms, not_before_ms, not_after_ms, claim_outside: too_early || too_late }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn leaves() -> Vec<Leaf> {
        let at = 1_790_000_000_000;
        vec![
            Leaf {
                received_ms: at,
                item: LeafItem::DeviceEnrolled {
                    device_id: "d1".into(),
                    officer_id: "O001".into(),
                    public_key: [7; 32],
                    actor_id: vec![1; 16],
                },
            },
            Leaf { received_ms: at, item: LeafItem::LogEntry { device_id: "d1".into(), seq: 3, entry_hash: [9; 32] } },
            Leaf {
                received_ms: at,
                item: LeafItem::RecordSigned {
                    record_id: "r".into(),
                    officer_id: "O001".into(),
                    signature: "{\"officer_id\":\"O001\"}".into(),
                    heads: vec![[1; 32], [2; 32]],
                },
            },
            Leaf { received_ms: at, item: LeafItem::RecordLocked { record_id: "r".into(), heads: vec![] } },
            Leaf { received_ms: -1, item: LeafItem::Blob { sha256: [4; 32], size: 10_000_000 } },
        ]
    }

    #[test]
    fn leaves_read_back_and_differ() {
        let all = leaves();
        for leaf in &all {
            assert_eq!(Leaf::from_bytes(&leaf.to_bytes()).as_ref(), Ok(leaf));
        }
        let hashes: std::collections::BTreeSet<Hash> = all.iter().map(Leaf::hash).collect();
        assert_eq!(hashes.len(), all.len());
    }

    #[test]
    fn malformed_leaves_are_refused() {
        let data = leaves()[2].to_bytes();
        assert_eq!(Leaf::from_bytes(&data[1..]), Err(LeafError::WrongDomain));
        assert_eq!(Leaf::from_bytes(&data[..data.len() - 1]), Err(LeafError::Truncated));
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(Leaf::from_bytes(&longer), Err(LeafError::TrailingBytes { extra: 1 }));
        let mut unknown = data;
        unknown[LEAF_DOMAIN.len() + 8] = 99;
        assert_eq!(Leaf::from_bytes(&unknown), Err(LeafError::UnknownItem { code: 99 }));
    }

    #[test]
    fn claimed_times_outside_the_proven_interval_are_flagged() {
        let cases = [
            // claimed, not before, not after, flagged
            (1_000, Some(900), 1_100, false),
            (1_000, None, 1_100, false),
            (1_000, Some(900), 1_000, false),
            (1_150, Some(900), 1_100, false), // within the skew of 60
            (1_161, Some(900), 1_100, true),  // claims a time after the server received it
            (800, Some(900), 1_100, true),    // claims a time before a checkpoint it had seen
            (841, Some(900), 1_100, false),
        ];
        for (claimed, not_before, not_after, flagged) in cases {
            assert_eq!(interval(claimed, not_before, not_after, 60).claim_outside, flagged, "{claimed} {not_before:?}");
        }
    }

    proptest! {
        /// Arbitrary bytes never panic the reader, and what it reads encodes back to them.
        #[test]
        fn arbitrary_bytes(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut data = LEAF_DOMAIN.to_vec();
            data.extend(&tail);
            if let Ok(leaf) = Leaf::from_bytes(&data) {
                prop_assert_eq!(leaf.to_bytes(), data);
            }
        }
    }
}
