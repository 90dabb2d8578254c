//! Validating incoming changes before they become part of a record.
//!
//! The server never merges what the rules forbid. [`validate`] takes the
//! stored document, the changes a device sent, and a [`ValidationContext`]
//! built from the server's data, and splits the changes into accepted and
//! refused, with one machine-readable [`RejectionReason`] per refused change.
//!
//! Checks, per change, in causal order (ties broken by change hash, so the
//! result never depends on the order in which changes arrived):
//!
//! 1. it does not build on a refused change (the change graph allows no holes);
//! 2. its actor belongs to an enrolled device, and that device sent it;
//! 3. its time is not further in the future than the clock skew allows;
//! 4. its officer held a valid certificate at its time (P2, P3);
//! 5. its officer is on the team of the record's task;
//! 6. the record it produces is valid: readable, its task unchanged, not edited
//!    after a signature or lock, signatures only by their own officer and only
//!    where the signing rules allow (P1, P2), locked only when all signed.
//!
//! Checks 1 to 5 read only change metadata. Check 6 needs the document after
//! the change; it is done once for all changes together when the record is a
//! draft before and after (the common case), and change by change otherwise.

use std::collections::{BTreeMap, BTreeSet};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ROOT, ReadDoc, ScalarValue};
use schemas::{Certificate, InspectionRecord, RecordStatus, RejectionReason};

use crate::document::{genesis_actor, is_genesis_change, read_record};
use crate::rules::{self, CertificateStanding};

/// Which device and officer an actor id belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorBinding {
    pub device_id: String,
    pub officer_id: String,
}

/// Everything [`validate`] needs to know, given as data by the caller.
#[derive(Clone, Debug, Default)]
pub struct ValidationContext {
    /// The authenticated device that sent the changes.
    pub sending_device_id: String,
    /// Every enrolled device's actor id.
    pub actors: BTreeMap<ActorId, ActorBinding>,
    /// Certificates of the officers concerned, with their status history.
    pub certificates: Vec<Certificate>,
    /// The team of every task the sending officer may write records of.
    pub teams: BTreeMap<String, BTreeSet<String>>,
    /// The server's clock when the changes arrived.
    pub now_ms: i64,
    /// How far ahead of `now_ms` a change's time may be.
    pub max_clock_skew_ms: i64,
    /// Changes refused earlier (in quarantine), with their reasons: such a change sent again is
    /// refused again, and a change building on one is refused too.
    pub refused: BTreeMap<ChangeHash, RejectionReason>,
}

/// A refused change, kept whole so that it can be quarantined.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub change: Change,
    pub reason: RejectionReason,
}

/// The outcome of [`validate`].
#[derive(Clone, Debug, Default)]
pub struct Validation {
    /// Changes to make part of the document, in causal order.
    pub accepted: Vec<Change>,
    /// Changes refused, each with its reason, in causal order.
    pub refused: Vec<Refusal>,
}

/// Splits `incoming` into the changes that may become part of `doc` and those refused.
pub fn validate(record_id: &str, doc: &Automerge, incoming: Vec<Change>, context: &ValidationContext) -> Validation {
    validate_with_result(record_id, doc, None, incoming, context)
}

/// [`validate`], given also `doc` with every incoming change applied when the caller has it
/// (a sync applies the message to a copy first), which saves applying them again.
pub fn validate_with_result(
    record_id: &str,
    doc: &Automerge,
    with_all: Option<&Automerge>,
    incoming: Vec<Change>,
    context: &ValidationContext,
) -> Validation {
    let ordered = causal_order(doc, incoming);
    // At most one change is the genesis: found once (its operations are decoded once), then
    // recognised by its hash.
    let genesis = genesis_actor(record_id);
    let genesis_hash =
        ordered.iter().find(|c| c.actor_id() == &genesis && is_genesis_change(record_id, c)).map(Change::hash);
    let is_genesis = |change: &Change| Some(change.hash()) == genesis_hash;
    let incoming_count = ordered.len();
    let mut outcome = Validation::default();
    let before = if doc.get_heads().is_empty() {
        None
    } else {
        match read_record(record_id, doc) {
            Ok(record) => Some(record),
            Err(error) => {
                // Nothing is built on a stored record that does not read; it needs a person.
                let reason =
                    RejectionReason::SchemaViolation { detail: format!("the stored record does not read: {error}") };
                outcome.refused =
                    ordered.into_iter().map(|change| Refusal { change, reason: reason.clone() }).collect();
                return outcome;
            }
        }
    };

    let mut refused: BTreeMap<ChangeHash, RejectionReason> = BTreeMap::new();
    let mut candidates: Vec<Change> = Vec::new();
    for change in ordered {
        let reason = check_metadata(doc, &change, is_genesis(&change), context, &refused, &candidates);
        match reason {
            Some(reason) => {
                refused.insert(change.hash(), reason.clone());
                outcome.refused.push(Refusal { change, reason });
            }
            None => candidates.push(change),
        }
    }
    if candidates.is_empty() {
        return outcome;
    }

    // Fast path: no change writes the root or a signature, a draft stays a draft, and everything
    // together gives a valid record.
    let applied_all = match with_all {
        Some(with_all) if candidates.len() == incoming_count => Some(std::borrow::Cow::Borrowed(with_all)),
        _ => {
            let mut after_all = doc.clone();
            after_all.apply_changes(candidates.iter().cloned()).is_ok().then_some(std::borrow::Cow::Owned(after_all))
        }
    };
    if let Some(after_all) = applied_all
        && let Some(signatures) = container_id(if before.is_some() { doc } else { &after_all }, "signatures")
        && candidates.iter().all(|c| is_genesis(c) || !touches_root_or(c, &signatures))
        && draft_stays_valid(record_id, before.as_ref(), &after_all, &candidates, &is_genesis, context)
    {
        outcome.accepted = candidates;
        return outcome;
    }

    // Slow path: change by change against the document as it grows.
    let mut working = doc.clone();
    let mut working_record = before;
    for change in candidates {
        if let Some(dependency) = change.deps().iter().find(|d| refused.contains_key(d)) {
            let reason = RejectionReason::DependsOnRefusedChange { dependency: dependency.to_string() };
            refused.insert(change.hash(), reason.clone());
            outcome.refused.push(Refusal { change, reason });
            continue;
        }
        let reason = if is_genesis(&change) { None } else { root_write_problem(&change) };
        let reason = reason.or_else(|| {
            let mut candidate = working.clone();
            match candidate.apply_changes([change.clone()]) {
                Err(error) => Some(RejectionReason::SchemaViolation { detail: error.to_string() }),
                Ok(()) => match read_record(record_id, &candidate) {
                    Err(error) => Some(RejectionReason::SchemaViolation { detail: error.to_string() }),
                    Ok(after) => {
                        let before = working_record.as_ref();
                        let reason =
                            check_state(record_id, &change, is_genesis(&change), before, &candidate, &after, context);
                        if reason.is_none() {
                            working = candidate;
                            working_record = Some(after);
                        }
                        reason
                    }
                },
            }
        });
        match reason {
            Some(reason) => {
                refused.insert(change.hash(), reason.clone());
                outcome.refused.push(Refusal { change, reason });
            }
            None => outcome.accepted.push(change),
        }
    }
    outcome
}

/// The legacy object id of a genesis container, for comparing with a change's operations.
fn container_id(doc: &Automerge, key: &str) -> Option<ObjectId> {
    match doc.get(ROOT, key) {
        Ok(Some((automerge::Value::Object(_), automerge::ObjId::Id(counter, actor, _)))) => {
            Some(ObjectId::Id(OpId(counter, actor)))
        }
        _ => None,
    }
}

/// Whether a change writes at the root of the document or into `container`.
fn touches_root_or(change: &Change, container: &ObjectId) -> bool {
    change.decode().operations.iter().any(|op| op.obj == ObjectId::Root || &op.obj == container)
}

/// Below the genesis, the only write at the root is `locked = true`.
fn root_write_problem(change: &Change) -> Option<RejectionReason> {
    for op in change.decode().operations.iter().filter(|op| op.obj == ObjectId::Root) {
        let locks = matches!(&op.key, Key::Map(key) if key == "locked")
            && matches!(&op.action, OpType::Put(ScalarValue::Boolean(true)));
        if !locks {
            return Some(RejectionReason::SchemaViolation {
                detail: "below the genesis, the only write at the root of a record is locking it".into(),
            });
        }
    }
    None
}

/// The fast path's state check: the record is a draft before and after, valid after, its task
/// unchanged, and every non-genesis author on the team of its task.
fn draft_stays_valid(
    record_id: &str,
    before: Option<&InspectionRecord>,
    after_all: &Automerge,
    changes: &[Change],
    is_genesis: &impl Fn(&Change) -> bool,
    context: &ValidationContext,
) -> bool {
    let Ok(after) = read_record(record_id, after_all) else { return false };
    let task_before = before.and_then(|r| r.header.task_id.as_ref());
    before.is_none_or(|b| b.status == RecordStatus::Draft)
        && after.status == RecordStatus::Draft
        && after.signatures.is_empty()
        && task_before.is_none_or(|t| after.header.task_id.as_ref() == Some(t))
        && changes.iter().all(|c| is_genesis(c) || check_team(c, &after, context).is_none())
        && (after.header.task_id.is_some() || changes.iter().all(is_genesis))
}

/// Incoming changes that `doc` does not have yet, in causal order with ties broken by hash.
fn causal_order(doc: &Automerge, incoming: Vec<Change>) -> Vec<Change> {
    let mut pending: BTreeMap<ChangeHash, Change> = BTreeMap::new();
    for change in incoming {
        if doc.get_change_meta_by_hash(&change.hash()).is_none() {
            pending.insert(change.hash(), change);
        }
    }
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready: Vec<ChangeHash> = pending
            .iter()
            .filter(|(_, change)| change.deps().iter().all(|dep| !pending.contains_key(dep)))
            .map(|(hash, _)| *hash)
            .collect();
        if ready.is_empty() {
            // A cycle cannot occur with hashes; keep whatever is left in hash order.
            ordered.extend(std::mem::take(&mut pending).into_values());
            break;
        }
        for hash in ready {
            ordered.push(pending.remove(&hash).expect("ready hashes are pending"));
        }
    }
    ordered
}

fn check_metadata(
    doc: &Automerge,
    change: &Change,
    is_genesis: bool,
    context: &ValidationContext,
    refused: &BTreeMap<ChangeHash, RejectionReason>,
    candidates: &[Change],
) -> Option<RejectionReason> {
    if let Some(reason) = context.refused.get(&change.hash()) {
        return Some(reason.clone());
    }
    let mut latest_dependency_ms = i64::MIN;
    for dependency in change.deps() {
        if refused.contains_key(dependency) || context.refused.contains_key(dependency) {
            return Some(RejectionReason::DependsOnRefusedChange { dependency: dependency.to_string() });
        }
        let time = match doc.get_change_meta_by_hash(dependency) {
            Some(meta) => Some(meta.timestamp),
            None => candidates.iter().find(|c| c.hash() == *dependency).map(Change::timestamp),
        };
        let Some(time) = time else {
            return Some(RejectionReason::MissingDependency { dependency: dependency.to_string() });
        };
        latest_dependency_ms = latest_dependency_ms.max(time);
    }
    if is_genesis {
        return None;
    }
    let Some(binding) = context.actors.get(change.actor_id()) else {
        return Some(RejectionReason::UnknownActor);
    };
    if binding.device_id != context.sending_device_id {
        return Some(RejectionReason::ActorNotBoundToDevice {
            actor_device_id: binding.device_id.clone(),
            sending_device_id: context.sending_device_id.clone(),
        });
    }
    if change.timestamp() > context.now_ms.saturating_add(context.max_clock_skew_ms) {
        return Some(RejectionReason::TimestampInFuture {
            timestamp_ms: change.timestamp(),
            now_ms: context.now_ms,
            max_skew_ms: context.max_clock_skew_ms,
        });
    }
    // A change cannot be made before what it builds on (beyond clock skew between devices): this
    // keeps a device from backdating work to before a suspension.
    if latest_dependency_ms > i64::MIN && change.timestamp() < latest_dependency_ms - context.max_clock_skew_ms {
        return Some(RejectionReason::TimestampBeforeDependency {
            timestamp_ms: change.timestamp(),
            dependency_ms: latest_dependency_ms,
            max_skew_ms: context.max_clock_skew_ms,
        });
    }
    let standing = rules::officer_standing(&context.certificates, &binding.officer_id, change.timestamp());
    if standing != CertificateStanding::Valid {
        return Some(RejectionReason::OfficerNotCertified {
            officer_id: binding.officer_id.clone(),
            at_ms: change.timestamp(),
            certificate_status: standing.as_str().to_string(),
        });
    }
    None
}

fn officer_of<'a>(change: &Change, context: &'a ValidationContext) -> Option<&'a str> {
    context.actors.get(change.actor_id()).map(|b| b.officer_id.as_str())
}

fn check_team(change: &Change, after: &InspectionRecord, context: &ValidationContext) -> Option<RejectionReason> {
    let officer = officer_of(change, context)?;
    let Some(task_id) = &after.header.task_id else {
        return Some(RejectionReason::SchemaViolation { detail: "the record names no task".into() });
    };
    match context.teams.get(task_id) {
        None => Some(RejectionReason::UnknownTask { task_id: Some(task_id.clone()) }),
        Some(team) if !team.contains(officer) => {
            // The task is not named: an officer not on its team has no business knowing it.
            Some(RejectionReason::OfficerNotOnTeam { officer_id: officer.to_string(), task_id: None })
        }
        Some(_) => None,
    }
}

/// The record without what may still change once someone signed: signatures and status.
fn signed_content(record: &InspectionRecord) -> InspectionRecord {
    let mut content = record.clone();
    content.signatures.clear();
    content.status = RecordStatus::Draft;
    content.conflicts.retain(|c| !c.field.starts_with("signatures/"));
    content
}

fn check_state(
    record_id: &str,
    change: &Change,
    is_genesis: bool,
    before: Option<&InspectionRecord>,
    with_change: &Automerge,
    after: &InspectionRecord,
    context: &ValidationContext,
) -> Option<RejectionReason> {
    if is_genesis {
        return None;
    }
    let before_status = before.map_or(RecordStatus::Draft, |b| b.status);
    if before_status == RecordStatus::Locked {
        // Locking again (two devices locked at once) changes nothing and is no edit.
        return (before != Some(after)).then_some(RejectionReason::RecordLocked);
    }
    if let Some(task_before) = before.and_then(|b| b.header.task_id.as_ref())
        && after.header.task_id.as_ref() != Some(task_before)
    {
        return Some(RejectionReason::SchemaViolation { detail: "the task of a record cannot change".into() });
    }
    if let Some(reason) = check_team(change, after, context) {
        return Some(reason);
    }
    if before_status == RecordStatus::Signing && before.map(signed_content) != Some(signed_content(after)) {
        return Some(RejectionReason::RecordSigned);
    }
    let officer = officer_of(change, context).unwrap_or_default();
    let empty = Vec::new();
    let signatures_before = before.map_or(&empty, |b| &b.signatures);
    for old in signatures_before {
        if !after.signatures.contains(old) {
            return Some(RejectionReason::SigningRuleViolated {
                rule: "signature_changed".into(),
                detail: format!("the signature of {} was changed or removed", old.officer_id),
            });
        }
    }
    for new in after.signatures.iter().filter(|s| !signatures_before.contains(s)) {
        if new.signed_at_ms != change.timestamp() {
            return Some(RejectionReason::SigningRuleViolated {
                rule: "signed_at".into(),
                detail: format!("a signature dated {} in a change made at {}", new.signed_at_ms, change.timestamp()),
            });
        }
        // The signer must have seen the content they sign: the record as it stood when they signed
        // (at the change's dependencies) must be the record as it stands here.
        let seen = with_change.fork_at(change.deps()).ok().and_then(|doc| read_record(record_id, &doc).ok());
        if seen.as_ref().map(signed_content) != before.map(signed_content) {
            return Some(RejectionReason::SigningRuleViolated {
                rule: "unseen_content".into(),
                detail: format!("{} signed before seeing changes the record has since received", new.officer_id),
            });
        }
        if new.officer_id != officer {
            return Some(RejectionReason::SigningRuleViolated {
                rule: "signer".into(),
                detail: format!("{officer} wrote a signature of {}", new.officer_id),
            });
        }
        let mut unsigned = after.clone();
        unsigned.signatures.retain(|s| s != new);
        unsigned.status = if unsigned.signatures.is_empty() { RecordStatus::Draft } else { RecordStatus::Signing };
        match rules::check_signing(&unsigned, officer, change.timestamp(), &context.certificates) {
            Err(refusal) => {
                return Some(RejectionReason::SigningRuleViolated {
                    rule: refusal.rule.as_str().to_string(),
                    detail: refusal.detail,
                });
            }
            Ok(expected) if expected.certificate_number != new.certificate_number => {
                return Some(RejectionReason::SigningRuleViolated {
                    rule: "P2".into(),
                    detail: format!("signature names certificate {}", new.certificate_number),
                });
            }
            Ok(_) => {}
        }
    }
    if after.status == RecordStatus::Locked {
        let signed: Vec<&str> = after.signatures.iter().map(|s| s.officer_id.as_str()).collect();
        if !rules::all_present_signed(after, &signed) {
            return Some(RejectionReason::SigningRuleViolated {
                rule: "lock".into(),
                detail: "locked before every officer present signed".into(),
            });
        }
    }
    None
}
