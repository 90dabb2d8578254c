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
//! 1. the change on its own ([`precheck`], before Automerge applies anything): only the
//!    record's genesis is by the genesis actor or builds on nothing (`not_genesis`), and a record
//!    whose genesis actor is a device's is never created; its actor is an enrolled device's; its size, dependencies, sequence number and operation counters
//!    ([`change_check::check_structure`]); every operation allowed by the record's schema, every
//!    value within its bounds, and a resolution only in the name of the change's own officer
//!    ([`change_check::check_operations`]);
//! 2. it does not build on a refused change (the change graph allows no holes);
//! 3. its actor belongs to an enrolled device, and that device sent it;
//! 4. its time is not further in the future than the clock skew allows, nor
//!    before what it builds on beyond it;
//! 5. its officer held a valid certificate at its time (P2, P3); a change dated before a
//!    suspension or revocation in force when it arrives is held for a reviewer;
//! 6. its officer is on the team of the record's task, and not recused from its entity (P4);
//! 7. what it does to the record: once the record is locked, nothing at all; once an officer has
//!    signed, nothing but the next signature (by the change's own officer, under its own key,
//!    never over another) and the lock; a signature only where the signing rules allow (P1, P2)
//!    and on a complete record (C7, P4: [`rules::missing_for_lock`]); locked only when all signed
//!    and complete; the record it produces valid and within its bounds, every officer it names as
//!    present on the task's team, the entity it sets the task's, every checklist code it writes on
//!    the checklist of the task's matter, a party's refusal of the inspection naming only officers
//!    present who showed no certificate (P2).
//!
//! Checks 1 to 6 read only the change and its lineage. Check 7 needs the document after
//! the change; it is done once for all changes together when the record is a
//! draft before and after and no change touches a signature or the root (the common case),
//! and change by change otherwise. Checks 2 to 6 run for every change whatever the record's
//! status.

use std::collections::{BTreeMap, BTreeSet};

use automerge::legacy::ObjectId;
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjType, ScalarValue};
use schemas::{Certificate, InspectionRecord, RecordStatus, RejectionReason};

use crate::change_check::{self, Lineage};
use crate::document::{entries_over_limit, genesis_actor, is_genesis_change, read_record};
use crate::rules::{self, CertificateStanding, CompletenessPolicy};

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
    /// refused again, and a change building on one is refused too. Only final verdicts belong
    /// here ([`refusal_is_final`]); a refusal that depended on who sent the change is not.
    pub refused: BTreeMap<ChangeHash, RejectionReason>,
    /// Changes held for review ([`RejectionReason::HeldForReview`]) that a reviewer accepted:
    /// judged as if no suspension had come after them.
    pub reviewed: BTreeSet<ChangeHash>,
    /// The entity each task of `teams` inspects: a record's entity is its task's.
    pub task_entities: BTreeMap<String, String>,
    /// Officers recused from entities (P4), as (officer id, entity id): such an officer writes
    /// nothing to a record of that entity, whenever the recusal was made.
    pub recusals: BTreeSet<(String, String)>,
    /// The checklist item codes of each task's matter: a record of such a task takes no other
    /// code. A task absent here (its matter is in no matter list) takes any well-formed code.
    pub checklists: BTreeMap<String, BTreeSet<String>>,
    /// What the bureau asks of a complete record, checked at every signature and at the lock.
    pub completeness: CompletenessPolicy,
}

/// Whether a refusal is final for the change, whoever sends it again: true unless it depended
/// on the sender (an actor bound to another device) or on another change's verdict (a refused
/// or missing dependency), which the rightful device or a later message may change.
pub fn refusal_is_final(reason: &RejectionReason) -> bool {
    !matches!(
        reason,
        RejectionReason::ActorNotBoundToDevice { .. }
            | RejectionReason::DependsOnRefusedChange { .. }
            | RejectionReason::MissingDependency { .. }
    )
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
    let Validation { accepted, refused } = precheck(record_id, doc, incoming, context);
    let mut outcome = validate_with_result(record_id, doc, None, accepted, context);
    outcome.refused.splice(0..0, refused);
    outcome
}

/// The first check (see the module's documentation), which needs no document after the changes:
/// splits `incoming` into the changes that may go on to Automerge and the validation after it,
/// in causal order, and those refused on their own (with every change that builds on them).
pub fn precheck(record_id: &str, doc: &Automerge, incoming: Vec<Change>, context: &ValidationContext) -> Validation {
    let ordered = causal_order(doc, incoming);
    let genesis = genesis_actor(record_id);
    let containers = change_check::containers(record_id);
    // A device whose actor id is this record's genesis actor was enrolled before the record
    // existed: its genesis could not be told from that device's work, so it is not created.
    let reserved = doc.get_heads().is_empty() && context.actors.contains_key(&genesis);
    let mut lineage = Lineage::new(doc);
    let mut outcome = Validation::default();
    let mut refused: BTreeSet<ChangeHash> = BTreeSet::new();
    for change in ordered {
        let reason = if reserved {
            Some(RejectionReason::ReservedActor)
        } else if let Some(dependency) = change.deps().iter().find(|d| refused.contains(d)) {
            Some(RejectionReason::DependsOnRefusedChange { dependency: dependency.to_string() })
        } else if change.actor_id() == &genesis {
            (!is_genesis_change(record_id, &change)).then_some(RejectionReason::NotGenesis)
        } else if change.deps().is_empty() {
            // Every change of a record but its genesis builds on the genesis: a change that
            // builds on nothing claims to be a genesis (another record's, or a made-up one).
            Some(RejectionReason::NotGenesis)
        } else if !context.actors.contains_key(change.actor_id()) {
            // Cheapest first: an actor no device has writes nothing, whatever it carries.
            Some(RejectionReason::UnknownActor)
        } else {
            change_check::check_structure(&mut lineage, &change)
                .and_then(|()| change_check::decode(&change))
                .and_then(|expanded| {
                    change_check::check_operations(&containers, &change, &expanded)?;
                    check_resolutions(&change, &expanded, &containers, context)
                })
                .err()
        };
        match reason {
            Some(reason) => {
                refused.insert(change.hash());
                outcome.refused.push(Refusal { change, reason });
            }
            None => {
                lineage.admit(&change);
                outcome.accepted.push(change);
            }
        }
    }
    outcome
}

/// A resolution is written in the name of the officer whose device makes it.
fn check_resolutions(
    change: &Change,
    expanded: &automerge::ExpandedChange,
    containers: &BTreeMap<ObjectId, (&'static str, ObjType)>,
    context: &ValidationContext,
) -> Result<(), RejectionReason> {
    let Some((resolutions, _)) = containers.iter().find(|(_, (name, _))| *name == "resolutions") else {
        return Ok(());
    };
    let officer = officer_of(change, context).unwrap_or_default();
    for (key, value, _) in change_check::writes_into(expanded, resolutions) {
        let Some(ScalarValue::Str(text)) = value else { continue };
        let named = serde_json::from_str::<schemas::ConflictResolution>(text)
            .map(|resolution| resolution.resolved_by_officer)
            .unwrap_or_default();
        if named != officer {
            return Err(RejectionReason::WrongAuthor {
                field: format!("resolutions/{key}"),
                named_officer: named,
                officer_id: officer.to_string(),
            });
        }
    }
    Ok(())
}

/// [`validate`] of changes that passed [`precheck`], given also `doc` with every one of them
/// applied when the caller has it (a sync applies the message to a copy first), which saves
/// applying them again.
pub fn validate_with_result(
    record_id: &str,
    doc: &Automerge,
    with_all: Option<&Automerge>,
    incoming: Vec<Change>,
    context: &ValidationContext,
) -> Validation {
    let ordered = causal_order(doc, incoming);
    // At most one change is the genesis (the precheck refused any other change by its actor):
    // recognised by its actor.
    let genesis = genesis_actor(record_id);
    let is_genesis = |change: &Change| change.actor_id() == &genesis;
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
    let signatures = signatures_container(record_id);
    if let Some(after_all) = applied_all
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
        let reason = {
            let mut candidate = working.clone();
            match candidate.apply_changes([change.clone()]) {
                Err(error) => Some(RejectionReason::MalformedChange { detail: error.to_string() }),
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
        };
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

/// The legacy object id of a record's `signatures` container.
fn signatures_container(record_id: &str) -> ObjectId {
    change_check::containers(record_id)
        .into_iter()
        .find(|(_, (name, _))| *name == "signatures")
        .map(|(id, _)| id)
        .expect("signatures is a genesis container")
}

/// Whether a change writes at the root of the document or into `container` (or cannot be
/// decoded, which the slow path then refuses).
fn touches_root_or(change: &Change, container: &ObjectId) -> bool {
    change_check::decode(change)
        .map_or(true, |expanded| expanded.operations.iter().any(|op| op.obj == ObjectId::Root || &op.obj == container))
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
        && entries_over_limit(after_all).is_none()
        && after.status == RecordStatus::Draft
        && after.signatures.is_empty()
        && task_before.is_none_or(|t| after.header.task_id.as_ref() == Some(t))
        && changes.iter().all(|c| is_genesis(c) || check_team(c, &after, context).is_none())
        && check_task_bounds(before, &after, context).is_none()
        && rules::check_refusal(&after).is_ok()
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
    // The change's own time is a claim: dated before a suspension already in force when it
    // arrives, it may have been made after and backdated. It waits for a reviewer.
    if !context.reviewed.contains(&change.hash())
        && let Some((standing, since_ms)) =
            rules::suspended_since(&context.certificates, &binding.officer_id, change.timestamp(), context.now_ms)
    {
        return Some(RejectionReason::HeldForReview {
            officer_id: binding.officer_id.clone(),
            claimed_at_ms: change.timestamp(),
            suspended_at_ms: since_ms,
            certificate_status: standing.as_str().to_string(),
        });
    }
    None
}

fn officer_of<'a>(change: &Change, context: &'a ValidationContext) -> Option<&'a str> {
    context.actors.get(change.actor_id()).map(|b| b.officer_id.as_str())
}

/// Once an officer has signed, and in any change that signs or locks, the operations allowed are
/// exactly these: at most one signature, new, under the key of the change's own officer, and the
/// root's `locked = true`. After the first signature, a change must do one of them.
fn check_signing_form(
    record_id: &str,
    change: &Change,
    status: RecordStatus,
    officer: &str,
) -> Option<RejectionReason> {
    let signatures = signatures_container(record_id);
    let expanded = match change_check::decode(change) {
        Ok(expanded) => expanded,
        Err(reason) => return Some(reason),
    };
    let signs_or_locks = expanded.operations.iter().any(|op| op.obj == ObjectId::Root || op.obj == signatures);
    if status == RecordStatus::Draft && !signs_or_locks {
        return None;
    }
    let refuse = |detail: &str| {
        Some(if status == RecordStatus::Signing {
            RejectionReason::RecordSigned
        } else {
            RejectionReason::OperationNotAllowed { detail: detail.to_string() }
        })
    };
    if expanded.operations.is_empty() {
        return refuse("a change after the first signature signs or locks");
    }
    if expanded.operations.iter().any(|op| op.obj != ObjectId::Root && op.obj != signatures) {
        return refuse("a change that signs or locks does nothing else");
    }
    let written: Vec<_> = change_check::writes_into(&expanded, &signatures).collect();
    if written.len() > 1 {
        return refuse("a change signs once");
    }
    for (key, value, overwrites) in written {
        if value.is_none() || overwrites > 0 {
            return Some(RejectionReason::SigningRuleViolated {
                rule: "signature_changed".into(),
                detail: format!("the signature of {key} was changed or removed"),
            });
        }
        if key != officer {
            return Some(RejectionReason::SigningRuleViolated {
                rule: "signer".into(),
                detail: format!("{officer} wrote a signature of {key}"),
            });
        }
    }
    None
}

fn check_team(change: &Change, after: &InspectionRecord, context: &ValidationContext) -> Option<RejectionReason> {
    officer_of(change, context)?;
    let Some(task_id) = &after.header.task_id else {
        return Some(RejectionReason::SchemaViolation { detail: "the record names no task".into() });
    };
    check_team_of(change, task_id, context)
}

/// What the task holds the record to, beyond who writes it: every officer the change names as
/// present is on its team, every checklist code it writes is on the checklist of the task's
/// matter, and the entity it sets is the task's. Only what the change itself names is judged, so
/// a later change of the team or of the matter list leaves earlier work standing.
fn check_task_bounds(
    before: Option<&InspectionRecord>,
    after: &InspectionRecord,
    context: &ValidationContext,
) -> Option<RejectionReason> {
    let task_id = after.header.task_id.as_ref()?;
    let team = context.teams.get(task_id)?;
    let named_before = |id: &str| before.is_some_and(|b| b.officers_present.iter().any(|o| o.officer_id == id));
    if let Some(officer) =
        after.officers_present.iter().find(|o| !named_before(&o.officer_id) && !team.contains(&o.officer_id))
    {
        return Some(RejectionReason::OfficerPresentNotOnTeam { officer_id: officer.officer_id.clone() });
    }
    if let Some(checklist) = context.checklists.get(task_id) {
        let written_before = |code: &str| before.is_some_and(|b| b.checklist.iter().any(|item| item.code == code));
        if let Some(item) =
            after.checklist.iter().find(|item| !written_before(&item.code) && !checklist.contains(&item.code))
        {
            return Some(RejectionReason::UnknownChecklistItem { item_code: item.code.clone() });
        }
    }
    let entity = after.entity.entity_id.as_ref()?;
    let changed = before.is_none_or(|b| b.entity.entity_id.as_ref() != Some(entity));
    match context.task_entities.get(task_id) {
        Some(task_entity) if changed && task_entity != entity => {
            Some(RejectionReason::EntityNotOfTask { entity_id: entity.clone() })
        }
        _ => None,
    }
}

/// The change's officer is on the team of `task_id`, and not recused from its entity (P4).
fn check_team_of(change: &Change, task_id: &str, context: &ValidationContext) -> Option<RejectionReason> {
    let officer = officer_of(change, context)?;
    if let Some(entity_id) = context.task_entities.get(task_id)
        && context.recusals.contains(&(officer.to_string(), entity_id.clone()))
    {
        return Some(RejectionReason::OfficerRecused { officer_id: officer.to_string(), entity_id: entity_id.clone() });
    }
    match context.teams.get(task_id) {
        None => Some(RejectionReason::UnknownTask { task_id: Some(task_id.to_string()) }),
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
    // Who may write comes first, whatever the record's status: a locked record's id is no key.
    let task = before.and_then(|b| b.header.task_id.as_ref()).or(after.header.task_id.as_ref());
    if let Some(reason) = task.and_then(|task| check_team_of(change, task, context)) {
        return Some(reason);
    }
    if before_status == RecordStatus::Locked {
        // Nothing whatever its effect: not even a lock again, nor a change that writes nothing.
        return Some(RejectionReason::RecordLocked);
    }
    let officer = officer_of(change, context).unwrap_or_default();
    if let Some(reason) = check_signing_form(record_id, change, before_status, officer) {
        return Some(reason);
    }
    if let Some(task_before) = before.and_then(|b| b.header.task_id.as_ref())
        && after.header.task_id.as_ref() != Some(task_before)
    {
        return Some(RejectionReason::SchemaViolation { detail: "the task of a record cannot change".into() });
    }
    if let Some(reason) = check_team(change, after, context) {
        return Some(reason);
    }
    if let Some(reason) = check_task_bounds(before, after, context) {
        return Some(reason);
    }
    if let Err(officer_id) = rules::check_refusal(after) {
        return Some(RejectionReason::InspectionRefusalUnfounded { officer_id });
    }
    if let Some((container, max, found)) = entries_over_limit(with_change) {
        return Some(RejectionReason::LimitExceeded {
            what: format!("{container}_entries"),
            limit: max as u64,
            found: found as u64,
        });
    }
    if before_status == RecordStatus::Signing && before.map(signed_content) != Some(signed_content(after)) {
        return Some(RejectionReason::RecordSigned);
    }
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
        if let Some(reason) = check_complete(after, context) {
            return Some(reason);
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
        return check_complete(after, context);
    }
    None
}

/// A record is signed and locked only complete ([`rules::missing_for_lock`]): the refusal names
/// each missing item.
fn check_complete(record: &InspectionRecord, context: &ValidationContext) -> Option<RejectionReason> {
    rules::check_complete(record, &context.completeness).err().map(|refusal| RejectionReason::SigningRuleViolated {
        rule: refusal.rule.as_str().to_string(),
        detail: refusal.detail,
    })
}
