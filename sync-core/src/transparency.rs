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
//! | 6 | record state | record id, heads (list of 32), items hash (32) |
//!
//! A record-state leaf follows, in the same transaction, every item that joins a record: an
//! entry of the record (code 2), a signature or the lock (3, 4). Its heads are those of the
//! record's latest signature or lock (none before the first), and its items hash is
//! [`record_items_hash`] of the record's items so far ([`RecordItems`]), which an evidence
//! package carries whole: the package must hold exactly those items, so that leaving one out
//! fails and names it.
//!
//! The items' encoding, hashed with SHA-256: the prefix `fieldsync/record-items/v1\0`, the
//! record id (text), the devices as a list (each: device id as text, first seq, last seq,
//! number of entries, last entry hash (32)) in ascending order of device id, the photos as a
//! list of SHA-256 (32) in ascending order, and the anchors (the leaves of the record's
//! signatures and lock) as a list of leaf indexes (8 bytes each) in ascending order. Integers,
//! texts and lists as above.

use schemas::evidence::{DeviceItems, RecordItems};
use schemas::log::TimeInterval;
use sha2::{Digest, Sha256};

use crate::enforcement_log::bytes as put_bytes;
use crate::merkle::{Hash, leaf_hash};

/// Domain separation of a record's items list, hashed into its record-state leaf.
pub const RECORD_ITEMS_DOMAIN: &[u8] = b"fieldsync/record-items/v1\0";

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
    /// The items that belong to a record changed: the heads of its latest signature or lock,
    /// and [`record_items_hash`] of its items.
    RecordState { record_id: String, heads: Vec<[u8; 32]>, items_hash: [u8; 32] },
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
            LeafItem::RecordState { record_id, heads, items_hash } => {
                out.push(6);
                put_bytes(&mut out, record_id.as_bytes());
                put_hashes(&mut out, heads);
                out.extend(items_hash);
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
            6 => LeafItem::RecordState {
                record_id: reader.text()?,
                heads: reader.hashes()?,
                items_hash: reader.array()?,
            },
            code => return Err(LeafError::UnknownItem { code }),
        };
        if !reader.rest.is_empty() {
            return Err(LeafError::TrailingBytes { extra: reader.rest.len() });
        }
        Ok(Leaf { received_ms, item })
    }
}

/// Why a record's items cannot be encoded: a hash that is not 64 lowercase hex digits, or a list
/// out of its order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the record's items are not canonical: {0}")]
pub struct ItemsError(pub String);

fn hash_from_hex(hex_text: &str) -> Result<[u8; 32], ItemsError> {
    let canonical = hex_text.len() == 64 && hex_text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex::decode(hex_text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .filter(|_| canonical)
        .ok_or_else(|| ItemsError(format!("{hex_text:?} is not a lowercase hex SHA-256")))
}

/// The items' encoding (see the module's documentation), refusing any list out of order.
pub fn record_items_bytes(record_id: &str, items: &RecordItems) -> Result<Vec<u8>, ItemsError> {
    let ascending = |ok: bool, what: &str| if ok { Ok(()) } else { Err(ItemsError(format!("{what} not ascending"))) };
    ascending(items.devices.windows(2).all(|w| w[0].device_id < w[1].device_id), "devices")?;
    ascending(items.photos.windows(2).all(|w| w[0] < w[1]), "photos")?;
    ascending(items.anchors.windows(2).all(|w| w[0] < w[1]), "anchors")?;
    let mut out = RECORD_ITEMS_DOMAIN.to_vec();
    put_bytes(&mut out, record_id.as_bytes());
    out.extend((items.devices.len() as u32).to_be_bytes());
    for device in &items.devices {
        put_bytes(&mut out, device.device_id.as_bytes());
        out.extend(device.first_seq.to_be_bytes());
        out.extend(device.last_seq.to_be_bytes());
        out.extend(device.entries.to_be_bytes());
        out.extend(hash_from_hex(&device.last_entry_hash)?);
    }
    out.extend((items.photos.len() as u32).to_be_bytes());
    for photo in &items.photos {
        out.extend(hash_from_hex(photo)?);
    }
    out.extend((items.anchors.len() as u32).to_be_bytes());
    for anchor in &items.anchors {
        out.extend(anchor.to_be_bytes());
    }
    Ok(out)
}

/// SHA-256 of the items' encoding: what a record-state leaf binds.
pub fn record_items_hash(record_id: &str, items: &RecordItems) -> Result<[u8; 32], ItemsError> {
    Ok(Sha256::digest(record_items_bytes(record_id, items)?).into())
}

/// An entry of the record joins its items: entries of one device arrive in chain order, so it
/// becomes the device's last; a photo entry adds its photo when it names a SHA-256 in lowercase
/// hex (any other text is the device's to answer for, and the entry itself stays an item).
pub fn add_entry(items: &mut RecordItems, device_id: &str, seq: u64, entry_hash: &[u8; 32], photo: Option<&str>) {
    let last_entry_hash = hex::encode(entry_hash);
    match items.devices.binary_search_by(|d| d.device_id.as_str().cmp(device_id)) {
        Ok(at) => {
            let device = &mut items.devices[at];
            device.last_seq = seq;
            device.entries += 1;
            device.last_entry_hash = last_entry_hash;
        }
        Err(at) => items.devices.insert(
            at,
            DeviceItems {
                device_id: device_id.to_string(),
                first_seq: seq,
                last_seq: seq,
                entries: 1,
                last_entry_hash,
            },
        ),
    }
    if let Some(photo) = photo
        && hash_from_hex(photo).is_ok()
        && let Err(at) = items.photos.binary_search_by(|p| p.as_str().cmp(photo))
    {
        items.photos.insert(at, photo.to_string());
    }
}

/// A signature or lock leaf of the record joins its items.
pub fn add_anchor(items: &mut RecordItems, leaf_index: u64) {
    if let Err(at) = items.anchors.binary_search(&leaf_index) {
        items.anchors.insert(at, leaf_index);
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
            Leaf {
                received_ms: at,
                item: LeafItem::RecordState { record_id: "r".into(), heads: vec![[5; 32]], items_hash: [6; 32] },
            },
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

    /// The items' encoding, byte for byte as documented, and lists out of order refused.
    #[test]
    fn record_items_encode_as_documented() {
        let mut items = RecordItems::default();
        add_entry(&mut items, "d2", 4, &[2; 32], None);
        add_entry(&mut items, "d1", 7, &[1; 32], Some(&"ab".repeat(32)));
        add_entry(&mut items, "d1", 8, &[3; 32], None);
        add_anchor(&mut items, 40);
        add_anchor(&mut items, 12);
        let mut expected = b"fieldsync/record-items/v1\0".to_vec();
        expected.extend([0, 0, 0, 1, b'r']);
        expected.extend([0, 0, 0, 2]);
        expected.extend([0, 0, 0, 2, b'd', b'1']);
        expected.extend(7u64.to_be_bytes());
        expected.extend(8u64.to_be_bytes());
        expected.extend(2u64.to_be_bytes());
        expected.extend([3; 32]);
        expected.extend([0, 0, 0, 2, b'd', b'2']);
        expected.extend(4u64.to_be_bytes());
        expected.extend(4u64.to_be_bytes());
        expected.extend(1u64.to_be_bytes());
        expected.extend([2; 32]);
        expected.extend([0, 0, 0, 1]);
        expected.extend([0xab; 32]);
        expected.extend([0, 0, 0, 2]);
        expected.extend(12u64.to_be_bytes());
        expected.extend(40u64.to_be_bytes());
        assert_eq!(record_items_bytes("r", &items), Ok(expected));
        let mut unordered = items.clone();
        unordered.anchors.reverse();
        assert!(record_items_bytes("r", &unordered).is_err());
        let mut upper = items;
        upper.photos[0] = "AB".repeat(32);
        assert!(record_items_bytes("r", &upper).is_err());
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
