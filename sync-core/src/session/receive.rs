//! Receiving one device's message into a record through the gate: every change checked on its
//! own before Automerge sees it, applied to a copy under a panic guard, validated, and kept only
//! if the record then loads again from its saved bytes.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{self, Message, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use schemas::RejectionReason;

use super::wire::message_changes;
use super::{ChangeGate, MAX_HELD_CHANGES};
use crate::validate::{Refusal, Validation};

/// Runs `f` on input from a device, under a panic guard: Automerge panics on some inputs it
/// decodes (repeated operation ids, some action and value pairs), and a device's bytes must
/// never take a request down. A panic is that input's refusal.
pub(super) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "Automerge could not apply the change".to_string())
}

/// Most bytes of a stored record: far above any inspection's, a bound on what a device can make
/// a record grow to with changes that write and delete.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// The saved bytes of a record that may be stored: `Err` with the reason when it would not load
/// again from them, or would be too large. The only way a server's record becomes bytes to store.
pub fn storable(doc: &Automerge) -> Result<Vec<u8>, RejectionReason> {
    let saved = guarded(|| doc.save_nocompress()).map_err(|detail| RejectionReason::MalformedChange { detail })?;
    if saved.len() > MAX_RECORD_BYTES {
        return Err(RejectionReason::LimitExceeded {
            what: "record_bytes".into(),
            limit: MAX_RECORD_BYTES as u64,
            found: saved.len() as u64,
        });
    }
    match guarded(|| Automerge::load(&saved)) {
        Ok(Ok(_)) => Ok(saved),
        Ok(Err(error)) => Err(RejectionReason::MalformedChange {
            detail: format!("the record would not load again with the change: {error}"),
        }),
        Err(_) => {
            Err(RejectionReason::MalformedChange { detail: "the record would not load again with the change".into() })
        }
    }
}

/// Applies `changes` (in causal order) to a copy of `doc` one at a time, refusing each that
/// `accept` turns down and every change built on one: the slow path for a batch that failed as a
/// whole, so that one bad change does not cost the others. Returns the changes kept.
pub(super) fn isolate(
    doc: &Automerge,
    changes: Vec<Change>,
    refusals: &mut Vec<Refusal>,
    accept: impl Fn(&Automerge) -> Result<(), RejectionReason>,
) -> Vec<Change> {
    let mut working = doc.clone();
    let mut kept = Vec::new();
    let mut refused: BTreeSet<ChangeHash> = BTreeSet::new();
    for change in changes {
        if let Some(dependency) = change.deps().iter().find(|d| refused.contains(d)) {
            refused.insert(change.hash());
            let reason = RejectionReason::DependsOnRefusedChange { dependency: dependency.to_string() };
            refusals.push(Refusal { change, reason });
            continue;
        }
        let mut candidate = working.clone();
        let outcome = match guarded(|| candidate.apply_changes([change.clone()])) {
            Ok(Ok(())) => accept(&candidate),
            Ok(Err(error)) => Err(RejectionReason::MalformedChange { detail: error.to_string() }),
            Err(detail) => Err(RejectionReason::MalformedChange { detail }),
        };
        match outcome {
            Ok(()) => {
                working = candidate;
                kept.push(change);
            }
            Err(reason) => {
                refused.insert(change.hash());
                refusals.push(Refusal { change, reason });
            }
        }
    }
    kept
}

/// A message carrying exactly `changes`, in place of what `message` carried.
pub(super) fn with_changes(message: &Message, changes: &[Change]) -> Message {
    let mut message = message.clone();
    message.changes = changes.iter().map(|c| c.raw_bytes().to_vec()).collect::<Vec<_>>().into();
    message.version = sync::MessageVersion::V1;
    message
}

/// What [`receive_validated`] did to one record.
pub(super) struct Received {
    /// Whether the document changed.
    pub(super) updated: bool,
    /// Changes refused for good, for quarantine.
    pub(super) refusals: Vec<Refusal>,
    /// Changes not held (the bound on waiting changes was reached): the device sends them again.
    pub(super) not_held: Vec<Refusal>,
    /// The document's saved bytes, checked to load again, when it changed under validation.
    pub(super) saved: Option<Vec<u8>>,
}

/// Receives one sync message into `doc` through the gate: every change is checked on its own
/// before Automerge sees it, applied to a copy under a panic guard, validated, and the accepted
/// ones kept only if the record then loads again from its saved bytes.
pub(super) fn receive_validated(
    record_id: &str,
    doc: &mut Automerge,
    state: &mut sync::State,
    mut message: Message,
    refused: &mut BTreeMap<ChangeHash, Vec<ChangeHash>>,
    held: &mut Vec<Change>,
    gate: &mut impl ChangeGate,
) -> Result<Received, String> {
    message.heads = strip_refused(&message.heads, refused);
    if !held.is_empty() {
        let mut chunks: Vec<Vec<u8>> = held.iter().map(|c| c.raw_bytes().to_vec()).collect();
        chunks.extend(message.changes.iter().map(<[u8]>::to_vec));
        message.changes = chunks.into();
    }
    let before = doc.get_heads();
    // A message without changes cannot change the document: only the sync state moves.
    if !gate.validates() || message.changes.is_empty() {
        let mut fork_state = state.clone();
        guarded(|| doc.receive_sync_message(&mut fork_state, message))?.map_err(|e| e.to_string())?;
        *state = fork_state;
        let updated = doc.get_heads() != before;
        return Ok(Received { updated, refusals: Vec::new(), not_held: Vec::new(), saved: None });
    }

    // Each change on its own, before Automerge applies anything.
    let sent = guarded(|| message_changes(&message))?;
    let Validation { accepted: passed, refused: mut refusals } = gate.precheck(record_id, doc, sent);
    if !refusals.is_empty() {
        message = with_changes(&message, &passed);
    }
    let mut fork = doc.clone();
    let mut fork_state = state.clone();
    // Reading the changes back is part of applying them: a hostile operation can leave a
    // document whose changes Automerge cannot collect again (it panics in `get_changes`).
    let applied =
        guarded(|| fork.receive_sync_message(&mut fork_state, message.clone()).map(|()| fork.get_changes(&before)));
    let mut incoming = match applied {
        Ok(Ok(incoming)) => incoming,
        _ => {
            // Automerge refused or panicked on the batch: find the changes it cannot apply, or
            // whose document it cannot read back.
            let readable = |candidate: &Automerge| {
                guarded(|| candidate.get_changes(&before))
                    .map(|_| ())
                    .map_err(|detail| RejectionReason::MalformedChange { detail })
            };
            let kept = isolate(doc, passed, &mut refusals, readable);
            message = with_changes(&message, &kept);
            fork = doc.clone();
            fork_state = state.clone();
            guarded(|| fork.receive_sync_message(&mut fork_state, message.clone()))?.map_err(|e| e.to_string())?;
            guarded(|| fork.get_changes(&before))?
        }
    };

    // Automerge keeps a change whose dependencies are missing in a queue inside the document and
    // applies it, unchecked, as soon as they arrive. No stored document may keep such a queue:
    // the copy is rebuilt from what applied, and the waiting changes are held instead.
    let mut waiting = Vec::new();
    if !fork.get_missing_deps(&[]).is_empty() {
        let applied: BTreeSet<ChangeHash> = incoming.iter().map(Change::hash).collect();
        for change in message_changes(&message) {
            if !applied.contains(&change.hash()) && doc.get_change_meta_by_hash(&change.hash()).is_none() {
                waiting.push(change);
            }
        }
        fork = doc.clone();
        fork.apply_changes(incoming.iter().cloned()).map_err(|e| e.to_string())?;
        incoming = guarded(|| fork.get_changes(&before))?;
    }
    let incoming_count = incoming.len();
    let Validation { accepted, refused: checked } = if incoming.is_empty() {
        Validation::default()
    } else {
        let all = incoming.clone();
        guarded(|| gate.check(record_id, doc, &fork, incoming)).unwrap_or_else(|detail| Validation {
            accepted: Vec::new(),
            refused: all
                .into_iter()
                .map(|change| Refusal { change, reason: RejectionReason::MalformedChange { detail: detail.clone() } })
                .collect(),
        })
    };
    refusals.extend(checked);
    // A record no device may create is not stored with only its genesis: a refused creation
    // leaves nothing behind.
    let genesis = crate::document::genesis_actor(record_id);
    let accepted =
        if before.is_empty() && accepted.iter().all(|c| c.actor_id() == &genesis) { Vec::new() } else { accepted };
    // A waiting change that builds on a refused one can never be accepted: refuse it now. The
    // others wait, once each (a replayed message brings copies), up to a bound.
    let mut still_waiting: BTreeMap<ChangeHash, Change> = BTreeMap::new();
    let mut not_held = Vec::new();
    waiting.sort_by_key(Change::seq);
    for change in waiting {
        let refused_dependency = change
            .deps()
            .iter()
            .find(|d| refused.contains_key(d) || refusals.iter().any(|r| r.change.hash() == **d))
            .copied();
        match refused_dependency {
            Some(dependency) => refusals.push(Refusal {
                reason: RejectionReason::DependsOnRefusedChange { dependency: dependency.to_string() },
                change,
            }),
            None if still_waiting.contains_key(&change.hash()) => {}
            None if still_waiting.len() >= MAX_HELD_CHANGES => {
                let dependency = change.deps().first().map(ToString::to_string).unwrap_or_default();
                not_held.push(Refusal { reason: RejectionReason::MissingDependency { dependency }, change });
            }
            None => {
                still_waiting.insert(change.hash(), change);
            }
        }
    }

    // The record with the accepted changes is stored only if it loads again from its bytes.
    let (mut candidate, mut candidate_state) = if accepted.len() == incoming_count && !accepted.is_empty() {
        (fork, fork_state)
    } else {
        let mut candidate = doc.clone();
        let mut candidate_state = state.clone();
        message.heads = strip_refused(&message.heads, refused);
        let only_accepted = with_changes(&message, &accepted);
        guarded(|| candidate.receive_sync_message(&mut candidate_state, only_accepted))?.map_err(|e| e.to_string())?;
        (candidate, candidate_state)
    };
    let mut saved = None;
    if candidate.get_heads() != before {
        match storable(&candidate) {
            Ok(bytes) => saved = Some(bytes),
            Err(_) => {
                let kept = isolate(doc, accepted, &mut refusals, |doc| storable(doc).map(|_| ()));
                candidate = doc.clone();
                candidate_state = state.clone();
                let only_kept = with_changes(&message, &kept);
                guarded(|| candidate.receive_sync_message(&mut candidate_state, only_kept))?
                    .map_err(|e| e.to_string())?;
                if candidate.get_heads() != before {
                    saved = Some(storable(&candidate).map_err(|reason| format!("{reason:?}"))?);
                }
            }
        }
    }
    // A change under another enrolled device's actor is refused to this sender only: its own
    // device may still deliver it (after a restore from backup, teammates re-upload each other's
    // changes). It is quarantined against this sender, but not stripped from what the device
    // holds, and the sender's changes built on it wait for it, like a missing dependency.
    let mut relayed: BTreeSet<ChangeHash> = BTreeSet::new();
    let mut kept_refusals = Vec::with_capacity(refusals.len());
    for refusal in refusals {
        let root = match &refusal.reason {
            RejectionReason::ActorNotBoundToDevice { .. } => {
                relayed.insert(refusal.change.hash());
                kept_refusals.push(refusal);
                continue;
            }
            RejectionReason::DependsOnRefusedChange { dependency } => {
                relayed.iter().find(|hash| hash.to_string() == *dependency).copied()
            }
            _ => None,
        };
        match root {
            Some(root) => {
                relayed.insert(refusal.change.hash());
                let reason = RejectionReason::MissingDependency { dependency: root.to_string() };
                not_held.push(Refusal { change: refusal.change, reason });
            }
            None => kept_refusals.push(refusal),
        }
    }
    let refusals = kept_refusals;
    for refusal in refusals.iter().filter(|r| !relayed.contains(&r.change.hash())) {
        refused.insert(refusal.change.hash(), refusal.change.deps().to_vec());
    }
    candidate_state.their_heads = candidate_state.their_heads.map(|heads| strip_refused(&heads, refused));
    *doc = candidate;
    *state = candidate_state;
    *held = still_waiting.into_values().collect();
    // Ask for what the held changes wait for. Automerge would, from its own queue; the held
    // changes are outside it, so their missing dependencies join the heads the device is known
    // to have, and the answer's `need` names them. (A Bloom filter's false positive is how the
    // device came to skip them.)
    let missing: BTreeSet<ChangeHash> = held
        .iter()
        .flat_map(|change| change.deps().iter().copied())
        .filter(|dependency| {
            doc.get_change_meta_by_hash(dependency).is_none() && !held.iter().any(|h| h.hash() == *dependency)
        })
        .collect();
    if !missing.is_empty() {
        let heads = state.their_heads.get_or_insert_with(Vec::new);
        for dependency in missing {
            if !heads.contains(&dependency) {
                heads.push(dependency);
            }
        }
    }
    Ok(Received { updated: doc.get_heads() != before, refusals, not_held, saved })
}

/// Heads with every refused change replaced by its nearest dependencies that were not refused.
pub(super) fn strip_refused(heads: &[ChangeHash], refused: &BTreeMap<ChangeHash, Vec<ChangeHash>>) -> Vec<ChangeHash> {
    if refused.is_empty() {
        return heads.to_vec();
    }
    let mut out = BTreeSet::new();
    let mut stack: Vec<ChangeHash> = heads.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(hash) = stack.pop() {
        if !seen.insert(hash) {
            continue;
        }
        match refused.get(&hash) {
            Some(deps) => stack.extend(deps.iter().copied()),
            None => {
                out.insert(hash);
            }
        }
    }
    out.into_iter().collect()
}
