//! The bytes of a sync exchange: decoding a peer's sync message (refusing the Bloom filters
//! Automerge 0.12 trusts), the storage chunks a message carries, and the heads of a saved
//! document read from its header.

use automerge::sync::Message;
use automerge::{Automerge, Change, ChangeHash};
/// Most hash probes a received Bloom filter may ask for; Automerge makes 7.
pub(super) const MAX_BLOOM_PROBES: u64 = 64;
/// Most bits per entry a received Bloom filter may declare; Automerge uses 10.
pub(super) const MAX_BLOOM_BITS_PER_ENTRY: u64 = 64;

/// Decodes an Automerge sync message from a peer and checks what Automerge itself trusts: a
/// Bloom filter with entries but no bits would divide by zero, and one asking for billions of
/// probes would allocate without bound.
pub fn decode_message(bytes: &[u8]) -> Result<Message, String> {
    let message = Message::decode(bytes).map_err(|error| error.to_string())?;
    for have in &message.have {
        let encoded = have.bloom.to_bytes();
        if encoded.is_empty() {
            continue; // an empty filter: no entries
        }
        let mut rest = encoded.as_slice();
        let mut next = || -> Result<u64, String> {
            read_uleb(&mut rest)
                .filter(|value| *value <= u64::from(u32::MAX))
                .ok_or_else(|| "a truncated Bloom filter or a parameter out of range".to_string())
        };
        let (_entries, bits_per_entry, probes) = (next()?, next()?, next()?);
        if rest.is_empty() || bits_per_entry == 0 || bits_per_entry > MAX_BLOOM_BITS_PER_ENTRY {
            return Err(format!("a Bloom filter with {bits_per_entry} bits per entry and {} bytes", rest.len()));
        }
        if probes == 0 || probes > MAX_BLOOM_PROBES {
            return Err(format!("a Bloom filter asking for {probes} probes"));
        }
    }
    Ok(message)
}

/// Every change a message carries, whatever its chunk format: each element of the chunk list
/// may hold several storage chunks back to back, each a change, a compressed change, or a
/// whole document.
pub(super) fn message_changes(message: &Message) -> Vec<Change> {
    let mut changes = Vec::new();
    for element in message.changes.iter() {
        for chunk in storage_chunks(element) {
            match Change::from_bytes(chunk.to_vec()) {
                Ok(change) => changes.push(change),
                Err(_) => {
                    if let Ok(loaded) = Automerge::load(chunk) {
                        changes.extend(loaded.get_changes(&[]));
                    }
                }
            }
        }
    }
    changes
}

/// How many storage chunks (changes, or whole documents) a message carries.
pub fn message_chunk_count(message: &Message) -> usize {
    message.changes.iter().map(|element| storage_chunks(element).len().max(1)).sum()
}

/// The first bytes of every Automerge storage chunk.
pub(super) const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The chunk type of a whole document.
pub(super) const DOCUMENT_CHUNK: u8 = 0;

/// Reads an unsigned LEB128 number of at most 64 bits from the front of `bytes`; a tenth byte
/// with bits beyond the 64th is refused, not truncated.
pub(super) fn read_uleb(bytes: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// One Automerge storage chunk: 4 magic bytes, a 4-byte checksum, a type byte, a LEB128 length,
/// then that many bytes of contents.
pub(super) struct StorageChunk<'a> {
    /// The whole chunk, header included.
    bytes: &'a [u8],
    checksum: &'a [u8],
    kind: u8,
    contents: &'a [u8],
}

/// The storage chunk at the front of `bytes`, and what follows it.
pub(super) fn split_chunk(bytes: &[u8]) -> Option<(StorageChunk<'_>, &[u8])> {
    if bytes.len() < 10 || bytes[..4] != CHUNK_MAGIC {
        return None;
    }
    let mut rest = &bytes[9..];
    let length = usize::try_from(read_uleb(&mut rest)?).ok()?;
    let header = bytes.len() - rest.len();
    let end = header.checked_add(length).filter(|end| *end <= bytes.len())?;
    let chunk =
        StorageChunk { bytes: &bytes[..end], checksum: &bytes[4..8], kind: bytes[8], contents: &bytes[header..end] };
    Some((chunk, &bytes[end..]))
}

/// Splits bytes into Automerge storage chunks (changes, compressed changes or whole documents).
/// Stops at the first thing that is not a chunk.
pub(super) fn storage_chunks(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    while let Some((chunk, rest)) = split_chunk(bytes) {
        chunks.push(chunk.bytes);
        bytes = rest;
    }
    chunks
}

/// The heads of a saved document (`Automerge::save` or `save_nocompress`), read from the
/// document chunk's header without loading it: the chunk's checksum (the first four bytes of the
/// SHA-256 of its type, length and contents) must hold, and nothing may follow the chunk. `None`
/// when the bytes are not one such chunk, including a document saved with changes appended after
/// it. Only the actors and heads are parsed: the rest is covered by the checksum, not checked, so
/// this is for bytes Automerge saved (a store's own), not for bytes from a peer.
pub fn document_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    use sha2::{Digest, Sha256};
    let (StorageChunk { checksum, kind, mut contents, .. }, rest) = split_chunk(bytes)?;
    if kind != DOCUMENT_CHUNK || !rest.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update([kind]);
    let mut length = Vec::with_capacity(5);
    let mut n = contents.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        length.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
    hasher.update(&length);
    hasher.update(contents);
    if hasher.finalize()[..4] != *checksum {
        return None;
    }
    let actors = read_uleb(&mut contents)?;
    for _ in 0..actors {
        let length = usize::try_from(read_uleb(&mut contents)?).ok()?;
        contents = contents.get(length..)?;
    }
    let count = usize::try_from(read_uleb(&mut contents)?).ok()?;
    let mut heads = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let (head, tail) = contents.split_at_checked(32)?;
        heads.push(ChangeHash(head.try_into().expect("32 bytes")));
        contents = tail;
    }
    Some(heads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ActorId;
    use automerge::transaction::Transactable;
    use proptest::prelude::*;

    /// A document with two actors, concurrent edits (two heads) and text long enough for Automerge
    /// to compress its columns.
    fn two_headed_document() -> Automerge {
        let mut a = Automerge::new().with_actor(ActorId::from([1u8; 16]));
        a.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(automerge::ROOT, "note", "现场检查".repeat(200))?;
            Ok(())
        })
        .unwrap();
        let mut b = a.fork().with_actor(ActorId::from([2u8; 16]));
        a.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(automerge::ROOT, "a", 1).map(|_| ())).unwrap();
        b.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(automerge::ROOT, "b", 2).map(|_| ())).unwrap();
        a.merge(&mut b).unwrap();
        a
    }

    #[test]
    fn leb128_numbers_are_read_whole_or_refused() {
        let read = |bytes: &[u8]| {
            let mut rest = bytes;
            read_uleb(&mut rest).map(|value| (value, rest.len()))
        };
        assert_eq!(read(&[0x00]), Some((0, 0)));
        assert_eq!(read(&[0xe5, 0x8e, 0x26, 0xff]), Some((624_485, 1)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read(&max), Some((u64::MAX, 0)));
        // A tenth byte with bits beyond the 64th, an eleventh byte, and a number cut short.
        let mut overlong = max;
        overlong[9] = 0x02;
        assert_eq!(read(&overlong), None);
        assert_eq!(read(&[0x80; 11]), None);
        assert_eq!(read(&[0x80, 0x80]), None);
    }

    #[test]
    fn the_heads_of_a_saved_document_are_read_without_loading_it() {
        let doc = two_headed_document();
        assert_eq!(doc.get_heads().len(), 2);
        let compressed = doc.save();
        let plain = doc.save_nocompress();
        assert!(compressed.len() < plain.len(), "the columns were compressed");
        assert_eq!(document_heads(&compressed), Some(doc.get_heads()));
        assert_eq!(document_heads(&plain), Some(doc.get_heads()));
        assert_eq!(document_heads(&Automerge::new().save()), Some(vec![]));
    }

    #[test]
    fn anything_but_one_intact_document_chunk_has_no_heads() {
        let doc = two_headed_document();
        let saved = doc.save_nocompress();
        // Every single changed byte of the header and the heads breaks the checksum or the magic.
        for at in 0..80.min(saved.len()) {
            let mut changed = saved.clone();
            changed[at] ^= 0x01;
            assert_eq!(document_heads(&changed), None, "byte {at} changed");
        }
        for cut in [0, 4, 9, saved.len() / 2, saved.len() - 1] {
            assert_eq!(document_heads(&saved[..cut]), None, "cut at {cut}");
        }
        let change = doc.get_last_local_change().unwrap();
        assert_eq!(document_heads(change.raw_bytes()), None, "a change chunk");
        let mut appended = saved.clone();
        appended.extend(change.raw_bytes());
        assert_eq!(document_heads(&appended), None, "a document with a change after it");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_heads_reader(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = document_heads(&bytes);
            let _ = storage_chunks(&bytes);
        }

        #[test]
        fn a_valid_header_with_arbitrary_contents_is_read_or_refused(contents in proptest::collection::vec(any::<u8>(), 0..200)) {
            use sha2::{Digest, Sha256};
            let mut chunk = CHUNK_MAGIC.to_vec();
            let mut hashed = vec![DOCUMENT_CHUNK, contents.len() as u8 | if contents.len() > 127 { 0x80 } else { 0 }];
            if contents.len() > 127 {
                hashed.push((contents.len() >> 7) as u8);
            }
            hashed.extend(&contents);
            chunk.extend(&Sha256::digest(&hashed)[..4]);
            chunk.extend(&hashed);
            // Whatever the contents, the reader answers without panicking, and what it reads fits.
            if let Some(heads) = document_heads(&chunk) {
                prop_assert!(heads.len() * 32 <= contents.len());
            }
        }
    }

    /// A sync message with one `have` whose Bloom filter is `bloom`, and no changes.
    fn message_with_bloom(bloom: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x42, 0x00, 0x00, 0x01, 0x00, bloom.len() as u8];
        bytes.extend_from_slice(bloom);
        bytes.push(0x00);
        bytes
    }

    /// Regression: such a filter made Automerge divide by zero (found by `hostile_bytes`).
    #[test]
    fn a_bloom_filter_with_entries_but_no_bits_is_refused() {
        let bytes = message_with_bloom(&[0x01, 0x00, 0x07]);
        assert!(Message::decode(&bytes).is_ok(), "Automerge itself accepts it");
        assert!(decode_message(&bytes).unwrap_err().contains("0 bits per entry"));
    }

    #[test]
    fn a_bloom_filter_asking_for_billions_of_probes_is_refused() {
        let bytes = message_with_bloom(&[0x01, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00]);
        assert!(Message::decode(&bytes).is_ok(), "Automerge itself accepts it");
        assert!(decode_message(&bytes).unwrap_err().contains("probes"));
    }

    #[test]
    fn a_real_bloom_filter_passes() {
        let bytes = message_with_bloom(&[0x01, 0x0a, 0x07, 0x12, 0x34]);
        assert!(decode_message(&bytes).is_ok());
    }
}
