//! The genesis of a record: the change every replica starts from, the containers it makes, and
//! the most entries each container may hold.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue};
use schemas::RECORD_SCHEMA_VERSION;
use sha2::{Digest, Sha256};

use super::read::map_in;

/// The containers made by the genesis change, with their types.
pub(crate) const CONTAINERS: [(&str, ObjType); 13] = [
    ("header", ObjType::Map),
    ("entity", ObjType::Map),
    ("recusal", ObjType::Map),
    ("checklist_results", ObjType::Map),
    ("checklist_notes", ObjType::Map),
    ("observations", ObjType::Text),
    ("photos", ObjType::Map),
    ("officers_present", ObjType::Map),
    ("people_present", ObjType::Map),
    ("samples", ObjType::Map),
    ("measures", ObjType::Map),
    ("signatures", ObjType::Map),
    ("resolutions", ObjType::Map),
];

const GENESIS_DOMAIN: &[u8] = b"fieldsync/record-genesis/v1\0";

/// Most entries of each map container: checked by the device before it writes a new key, and by
/// validation on every change, so that no device can grow a record without bound.
pub const MAX_ENTRIES: [(&str, usize); 9] = [
    ("checklist_results", 500),
    ("checklist_notes", 500),
    ("photos", 500),
    ("officers_present", 20),
    ("people_present", 100),
    ("samples", 200),
    ("measures", 9),
    ("signatures", 20),
    ("resolutions", 2_000),
];

/// The most entries a map container may hold ([`MAX_ENTRIES`]).
pub fn max_entries(container: &str) -> Option<usize> {
    MAX_ENTRIES.iter().find(|(name, _)| *name == container).map(|(_, max)| *max)
}

/// The first map container of `doc` holding more entries than [`MAX_ENTRIES`] allows, with its
/// count.
pub fn entries_over_limit<R: ReadDoc>(doc: &R) -> Option<(&'static str, usize, usize)> {
    MAX_ENTRIES.iter().find_map(|(container, max)| {
        let map = map_in(doc, container).ok()?;
        let found = doc.length(&map);
        (found > *max).then_some((*container, *max, found))
    })
}

/// The actor id of a record's genesis change: derived from the record id, never a device's.
pub fn genesis_actor(record_id: &str) -> ActorId {
    let digest = Sha256::new().chain_update(GENESIS_DOMAIN).chain_update(record_id.as_bytes()).finalize();
    ActorId::from(&digest[..16])
}

/// The genesis document of a record: the same bytes on every device.
pub fn genesis(record_id: &str) -> Automerge {
    let mut doc = Automerge::new().with_actor(genesis_actor(record_id));
    doc.transact_with::<_, _, AutomergeError, _>(
        |_| CommitOptions::default().with_time(0).with_message("genesis"),
        |tx| {
            tx.put(ROOT, "schema", ScalarValue::Uint(RECORD_SCHEMA_VERSION))?;
            tx.put(ROOT, "record_id", record_id)?;
            for (key, kind) in CONTAINERS {
                tx.put_object(ROOT, key, kind)?;
            }
            tx.put(ROOT, "locked", false)?;
            Ok(())
        },
    )
    .expect("the genesis change writes only fixed keys");
    doc
}

/// The hash of a record's genesis change, which every validator accepts without an actor binding.
pub fn genesis_change_hash(record_id: &str) -> ChangeHash {
    genesis(record_id).get_heads()[0]
}

/// Whether `change` is the genesis change of `record_id`, decided without building the genesis
/// document: the genesis actor, first of its sequence, no dependencies, time 0, and exactly the
/// genesis operations. A change that passes is byte for byte the genesis (same hash).
pub fn is_genesis_change(record_id: &str, change: &automerge::Change) -> bool {
    use automerge::legacy::{Key, ObjectId, OpType};
    if change.actor_id() != &genesis_actor(record_id)
        || change.seq() != 1
        || !change.deps().is_empty()
        || change.timestamp() != 0
        || change.message() != Some("genesis")
    {
        return false;
    }
    let Ok(expanded) = crate::change_check::decode(change) else { return false };
    let mut expected: Vec<(&str, Option<ScalarValue>, Option<ObjType>)> = vec![
        ("schema", Some(ScalarValue::Uint(RECORD_SCHEMA_VERSION)), None),
        ("record_id", Some(ScalarValue::Str(record_id.into())), None),
    ];
    expected.extend(CONTAINERS.iter().map(|(key, kind)| (*key, None, Some(*kind))));
    expected.push(("locked", Some(ScalarValue::Boolean(false)), None));
    expanded.operations.len() == expected.len()
        && expanded.operations.iter().zip(&expected).all(|(op, (key, value, kind))| {
            let right_place = op.obj == ObjectId::Root
                && op.pred.is_empty()
                && !op.insert
                && matches!(&op.key, Key::Map(k) if k == key);
            let right_action = match (&op.action, value, kind) {
                (OpType::Put(found), Some(value), None) => found == value,
                (OpType::Make(found), None, Some(kind)) => found == kind,
                _ => false,
            };
            right_place && right_action
        })
}

/// A new record id: a UUIDv7 from the device's clock and ten random bytes, both given by the caller.
pub fn new_record_id(unix_ms: u64, random: [u8; 10]) -> String {
    uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid().to_string()
}
