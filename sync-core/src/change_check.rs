//! What one incoming change may be, judged on its own bytes and its place in the change graph,
//! before Automerge applies it.
//!
//! Automerge decodes many changes that its own API never makes and that it cannot live with:
//! a change whose operation counters start at or below those it builds on (a Lamport violation)
//! is applied in memory, but the saved document no longer loads; two changes of one actor whose
//! counters overlap give repeated operation ids, on which Automerge panics. The sender is
//! assumed hostile, so every change is checked here first, on what its operations do, not only
//! on the record they produce:
//!
//! - [`check_structure`]: its size, its dependencies, its sequence number (one more than the
//!   latest change of its actor, which it builds on), and its first operation counter (above every
//!   counter it builds on).
//! - [`check_operations`]: below the genesis, a record's schema allows only scalar writes into the
//!   genesis containers, single characters inserted into or deleted from the observations, and the
//!   root's `locked = true`; no objects, marks or counters, no write anywhere else.
//!
//! Whatever passes still goes through Automerge under a panic guard, and a record is stored only
//! if its saved bytes load again (`session`): these checks give precise reasons, the guard and the
//! reload make sure no input they miss can brick a record.

use std::collections::{BTreeMap, BTreeSet};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjType, ScalarValue};
use schemas::RejectionReason;

use crate::document::{CONTAINERS, genesis_actor};

/// Most bytes of one change: an observations text of the longest length typed in one go, in
/// three-byte characters, fits with room to spare.
pub const MAX_CHANGE_BYTES: usize = 2 << 20;
/// Most operations in one change: the whole observations text deleted and typed again.
pub const MAX_OPERATIONS: usize = 2 * crate::input::MAX_OBSERVATIONS + 256;
/// Most dependencies of one change; a change depends on the heads its device held, a handful.
pub const MAX_DEPENDENCIES: usize = 256;
/// How far past the counters it builds on a change may start its own. Automerge starts exactly
/// one past them; the margin tolerates other implementations while keeping counters far from
/// the 32-bit columns of Automerge's document format.
pub const MAX_OPERATION_GAP: u64 = 1 << 20;

/// What validation needs to know of a change already in the graph.
#[derive(Clone, Debug)]
struct Meta {
    actor: ActorId,
    seq: u64,
    max_op: u64,
    deps: Vec<ChangeHash>,
}

/// The change graph a batch of changes is checked against: the document's changes, and the
/// changes of the batch that passed so far.
pub struct Lineage<'a> {
    doc: &'a Automerge,
    admitted: BTreeMap<ChangeHash, Meta>,
    /// Each actor's latest change (its sequence number and hash), in the document and the batch:
    /// read once per batch from the document's change metadata, so that no change's check walks
    /// the history.
    latest: Option<BTreeMap<ActorId, (u64, ChangeHash)>>,
}

/// Most changes visited to confirm that a change builds on its actor's previous one: the changes
/// made since that one, which for an honest device are a handful.
pub const MAX_ANCESTRY_VISITS: usize = 4096;

impl<'a> Lineage<'a> {
    pub fn new(doc: &'a Automerge) -> Self {
        Self { doc, admitted: BTreeMap::new(), latest: None }
    }

    /// Adds a change that passed, so that later changes of the batch can build on it.
    pub fn admit(&mut self, change: &Change) {
        let meta = Meta {
            actor: change.actor_id().clone(),
            seq: change.seq(),
            max_op: change.max_op(),
            deps: change.deps().to_vec(),
        };
        let latest = self.latest();
        if latest.get(&meta.actor).is_none_or(|(seq, _)| *seq < meta.seq) {
            latest.insert(meta.actor.clone(), (meta.seq, change.hash()));
        }
        self.admitted.insert(change.hash(), meta);
    }

    fn latest(&mut self) -> &mut BTreeMap<ActorId, (u64, ChangeHash)> {
        let doc = self.doc;
        self.latest.get_or_insert_with(|| {
            let mut latest: BTreeMap<ActorId, (u64, ChangeHash)> = BTreeMap::new();
            for meta in doc.get_changes_meta(&[]) {
                let entry = latest.entry(meta.actor.clone().into_owned()).or_insert((0, meta.hash));
                if meta.seq > entry.0 {
                    *entry = (meta.seq, meta.hash);
                }
            }
            latest
        })
    }

    fn meta(&self, hash: &ChangeHash) -> Option<Meta> {
        if let Some(meta) = self.admitted.get(hash) {
            return Some(meta.clone());
        }
        self.doc.get_change_meta_by_hash(hash).map(|meta| Meta {
            actor: meta.actor.into_owned(),
            seq: meta.seq,
            max_op: meta.max_op,
            deps: meta.deps,
        })
    }

    /// Whether `ancestor` is among the ancestors of `deps` (or one of them). Only changes whose
    /// last counter is at least the ancestor's can lead to it (counters grow along every path), so
    /// the walk covers what was made since it; past [`MAX_ANCESTRY_VISITS`] it answers `None`.
    fn builds_on(&self, ancestor: &ChangeHash, deps: &[ChangeHash]) -> Option<bool> {
        let floor = self.meta(ancestor)?.max_op;
        let mut stack: Vec<ChangeHash> = deps.to_vec();
        let mut seen: BTreeSet<ChangeHash> = BTreeSet::new();
        while let Some(hash) = stack.pop() {
            if hash == *ancestor {
                return Some(true);
            }
            if !seen.insert(hash) {
                continue;
            }
            if seen.len() > MAX_ANCESTRY_VISITS {
                return None;
            }
            let Some(meta) = self.meta(&hash) else { continue };
            if meta.max_op < floor {
                continue;
            }
            stack.extend(meta.deps);
        }
        Some(false)
    }
}

fn malformed(detail: impl Into<String>) -> RejectionReason {
    RejectionReason::MalformedChange { detail: detail.into() }
}

fn not_allowed(detail: impl Into<String>) -> RejectionReason {
    RejectionReason::OperationNotAllowed { detail: detail.into() }
}

fn limit(what: &str, limit: usize, found: usize) -> RejectionReason {
    RejectionReason::LimitExceeded { what: what.to_string(), limit: limit as u64, found: found as u64 }
}

/// Checks a change's size, dependencies, sequence number and operation counters against the
/// graph it builds on. A change whose dependencies are not all known yet passes the checks that
/// need them: it waits for them, and is checked again when they arrive.
pub fn check_structure(lineage: &mut Lineage<'_>, change: &Change) -> Result<(), RejectionReason> {
    let bytes = change.raw_bytes().len();
    if bytes > MAX_CHANGE_BYTES {
        return Err(limit("change_bytes", MAX_CHANGE_BYTES, bytes));
    }
    if change.len() > MAX_OPERATIONS {
        return Err(limit("change_operations", MAX_OPERATIONS, change.len()));
    }
    let deps = change.deps();
    if deps.len() > MAX_DEPENDENCIES {
        return Err(limit("change_dependencies", MAX_DEPENDENCIES, deps.len()));
    }
    if deps.iter().collect::<BTreeSet<_>>().len() != deps.len() {
        return Err(malformed("the change names one dependency twice"));
    }
    if change.author().is_some() {
        return Err(malformed("the change carries an Automerge author, which records do not use"));
    }
    if change.seq() == 0 {
        return Err(malformed("the change's sequence number is 0; sequences start at 1"));
    }
    let mut built_on = 0;
    for dep in deps {
        match lineage.meta(dep) {
            Some(meta) => built_on = built_on.max(meta.max_op),
            None => return Ok(()),
        }
    }
    let start = change.start_op().get();
    if start <= built_on {
        return Err(malformed(format!(
            "the change's operations start at counter {start}, not above counter {built_on} of the changes it builds on"
        )));
    }
    if start > built_on + 1 + MAX_OPERATION_GAP {
        return Err(malformed(format!(
            "the change's operations start at counter {start}, more than {MAX_OPERATION_GAP} past counter {built_on} of the changes it builds on"
        )));
    }
    // One past the actor's latest change, which it builds on: Automerge never makes another.
    let latest = lineage.latest().get(change.actor_id()).copied();
    match latest {
        None if change.seq() == 1 => {}
        None => {
            return Err(malformed(format!(
                "the change is number {} of its actor, which has no earlier change here",
                change.seq()
            )));
        }
        Some((previous, _)) if previous + 1 != change.seq() => {
            return Err(malformed(format!(
                "the change is number {} of its actor, whose latest change here is number {previous}",
                change.seq()
            )));
        }
        Some((previous, hash)) => match lineage.builds_on(&hash, deps) {
            Some(true) => {}
            Some(false) => {
                return Err(malformed(format!(
                    "the change does not build on number {previous} of its actor, its previous change"
                )));
            }
            None => {
                return Err(RejectionReason::LimitExceeded {
                    what: "changes_since_the_actors_previous".into(),
                    limit: MAX_ANCESTRY_VISITS as u64,
                    found: MAX_ANCESTRY_VISITS as u64 + 1,
                });
            }
        },
    }
    Ok(())
}

/// The genesis containers of a record, by the legacy object id their genesis operation made.
pub fn containers(record_id: &str) -> BTreeMap<ObjectId, (&'static str, ObjType)> {
    let genesis = genesis_actor(record_id);
    // The genesis writes `schema` and `record_id` first, then the containers in order.
    CONTAINERS
        .iter()
        .enumerate()
        .map(|(index, (name, kind))| (ObjectId::Id(OpId(3 + index as u64, genesis.clone())), (*name, *kind)))
        .collect()
}

/// Containers whose keys, once written, are history: a signature or a resolution is never
/// deleted.
const NEVER_DELETED: [&str; 2] = ["signatures", "resolutions"];

/// Checks every operation of a change made below the genesis against the record's schema: what
/// it writes where, and that every counter it refers to is below its own. `containers` is
/// [`containers`] of the record, `expanded` the change [`decode`]d. Values are checked here too, so that a value written and
/// overwritten in one change (never visible in the record) is held to the same bounds.
pub fn check_operations(
    containers: &BTreeMap<ObjectId, (&'static str, ObjType)>,
    change: &Change,
    expanded: &automerge::ExpandedChange,
) -> Result<(), RejectionReason> {
    let start = change.start_op().get();
    for (index, op) in expanded.operations.iter().enumerate() {
        let counter = start + index as u64;
        if let Some(pred) = op.pred.iter().find(|pred| pred.counter() >= counter) {
            return Err(malformed(format!(
                "operation {counter} overwrites operation {}, which is not before it",
                pred.counter()
            )));
        }
        match &op.action {
            OpType::Make(_) => return Err(not_allowed("below the genesis, a change creates no object")),
            OpType::MarkBegin(..) | OpType::MarkEnd(..) => return Err(not_allowed("a record holds no marks")),
            OpType::Increment(_) => return Err(not_allowed("a record holds no counters")),
            OpType::Put(ScalarValue::Counter(_)) => return Err(not_allowed("a record holds no counters")),
            OpType::Put(_) | OpType::Delete => {}
        }
        if op.obj == ObjectId::Root {
            let locks = matches!(&op.key, Key::Map(key) if key == "locked")
                && matches!(&op.action, OpType::Put(ScalarValue::Boolean(true)))
                && !op.insert;
            if !locks {
                return Err(not_allowed("below the genesis, the only write at the root of a record is locking it"));
            }
            continue;
        }
        let Some((container, kind)) = containers.get(&op.obj) else {
            return Err(not_allowed("the change writes into an object that is not one of the record's containers"));
        };
        match kind {
            ObjType::Text => match (&op.key, op.insert, &op.action) {
                (Key::Seq(element), true, OpType::Put(ScalarValue::Str(text))) => {
                    if text.chars().count() != 1 {
                        return Err(not_allowed("a character inserted into the observations is one character"));
                    }
                    if let ElementId::Id(after) = element
                        && after.counter() >= counter
                    {
                        return Err(malformed(format!(
                            "character {counter} is inserted after character {}, which is not before it",
                            after.counter()
                        )));
                    }
                }
                (Key::Seq(_), false, OpType::Delete) => {}
                _ => {
                    return Err(not_allowed(
                        "the observations take only characters inserted as text and characters deleted",
                    ));
                }
            },
            _ => {
                let Key::Map(key) = &op.key else {
                    return Err(not_allowed(format!("{container} is a map: a write into it names a key")));
                };
                if op.insert {
                    return Err(not_allowed(format!("{container} is a map: nothing is inserted into it")));
                }
                match &op.action {
                    OpType::Delete if NEVER_DELETED.contains(container) => {
                        return Err(not_allowed(format!("an entry of {container} is never deleted")));
                    }
                    OpType::Delete => {}
                    OpType::Put(value) => crate::document::check_field(container, key, value)
                        .map_err(|error| RejectionReason::SchemaViolation { detail: error.to_string() })?,
                    _ => unreachable!("other actions were refused above"),
                }
            }
        }
    }
    Ok(())
}

/// A change's operations, decoded under a panic guard: Automerge's decoder panics on some action
/// and value combinations that its parser lets through.
pub fn decode(change: &Change) -> Result<automerge::ExpandedChange, RejectionReason> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change.decode()))
        .map_err(|_| malformed("Automerge could not decode the change's operations"))
}

/// The keys a change writes into one container, with the value written (`None` for a deletion).
pub fn writes_into<'a>(
    expanded: &'a automerge::ExpandedChange,
    container: &ObjectId,
) -> impl Iterator<Item = (&'a str, Option<&'a ScalarValue>, usize)> + 'a {
    let container = container.clone();
    expanded.operations.iter().filter(move |op| op.obj == container).filter_map(|op| match (&op.key, &op.action) {
        (Key::Map(key), OpType::Put(value)) => Some((key.as_str(), Some(value), op.pred.len())),
        (Key::Map(key), OpType::Delete) => Some((key.as_str(), None, op.pred.len())),
        _ => None,
    })
}
