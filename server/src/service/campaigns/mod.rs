//! Random inspection (双随机、一公开): campaigns with a commit–reveal draw, their tasks, the
//! publication of their results, and the report of results not public in time. The admin API,
//! the supervisors' API and the `fieldsync-server` subcommands share these operations.
//!
//! A campaign is created with a fresh secret seed and a frozen snapshot of what it draws from
//! (eligible entities, officers and recusals); what it publishes then (the seed's SHA-256, the
//! snapshot's hashes, the canonical campaign) binds the draw made later, which reveals the seed.
//!
//! This module holds the rules and the supervisors' use cases; [`registries`] the registries a
//! draw reads (matters, entity history, calendar, inspectors), [`public`] the public listing,
//! and [`commands`] the program's subcommands.
//!
//! The draw (once per campaign) runs `sync_core::draw::draw` on the stored snapshot, the revealed
//! seed and an optional public value, checks every team as a supervisor's task is checked, and
//! stores the draw and one task per drawn entity in one write; a draw that fails stores nothing.
//! Reviewers do not see a campaign's tasks until its draw is public ([`confidential`]). The public
//! listing shows the commitment from creation, and the draw, with its inputs, once the period has
//! ended or every task's result is public ([`published_draw`]).

pub mod commands;
mod progress;
pub mod public;
pub mod registries;

pub use progress::campaign_progress;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sync_core::calendar::{Date, Publication, RESULT_PUBLICATION_WORKING_DAYS, WorkingCalendar, publication};
use sync_core::campaigns::{self, RegistryEntity, TargetFilter};
use sync_core::draw::{self, Campaign, Draw, DrawError, DrawInputs, Quota, TierQuota};

use crate::service::auth::{Caller, random_bytes};
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{
    CampaignCommitment, CampaignSpec, CampaignTask, MatterList, Store, StoreError, StoredCampaign, StoredDraw, Task,
};

/// Why a campaign operation was refused; [`CampaignError::code`] is its stable code.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{0}")]
    Invalid(String),
    #[error("no matter {0} in the random-check matter list")]
    UnknownMatter(String),
    #[error("matter {matter} does not target tier {tier}")]
    TierNotTargeted { matter: String, tier: String },
    #[error("no campaign {0}")]
    NotFound(String),
    #[error("a campaign with id {0} exists")]
    Exists(String),
    #[error("campaign {0} has been drawn already")]
    AlreadyDrawn(String),
    #[error("campaign {0} has not been drawn")]
    NotDrawn(String),
    #[error(transparent)]
    Draw(DrawError),
    #[error("task {task}: {problem}")]
    Team { task: usize, problem: sync_core::rules::TeamProblem },
    #[error("task {0} is not a task of this campaign")]
    UnknownTask(String),
    #[error("task {0} has no locked record")]
    NotInspected(String),
    #[error("the result of task {0} is public already")]
    AlreadyPublished(String),
    #[error("a team of {team_size} is more than the {limit} officers a campaign's team may have")]
    TeamTooLarge { team_size: u32, limit: u32 },
    #[error("{field} has {found} items; a campaign may have at most {limit}")]
    ListTooLong { field: &'static str, found: usize, limit: usize },
    #[error("the period ended on {ends_on}, before today ({today}): a campaign is created before or in its period")]
    PeriodEnded { ends_on: Date, today: Date },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The bounds a campaign is created within (the bureau's settings: `Config::max_team_size` and
/// `Config::max_campaign_list_items`).
#[derive(Clone, Copy, Debug)]
pub struct CampaignLimits {
    pub max_team_size: u32,
    pub max_list_items: usize,
}

impl CampaignLimits {
    pub fn of(config: &crate::config::Config) -> Self {
        Self { max_team_size: config.max_team_size, max_list_items: config.max_campaign_list_items }
    }
}

impl CampaignError {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            CampaignError::Invalid(_) => "invalid_campaign",
            CampaignError::UnknownMatter(_) => "unknown_matter",
            CampaignError::TierNotTargeted { .. } => "tier_not_targeted",
            CampaignError::NotFound(_) => "not_found",
            CampaignError::Exists(_) => "campaign_exists",
            CampaignError::AlreadyDrawn(_) => "already_drawn",
            CampaignError::NotDrawn(_) => "not_drawn",
            CampaignError::Draw(DrawError::TeamTooSmall { .. }) => "team_too_small",
            CampaignError::Draw(DrawError::QuotaTooLarge { .. }) => "quota_too_large",
            CampaignError::Draw(DrawError::DuplicateTier { .. }) => "duplicate_tier",
            CampaignError::Draw(DrawError::NotEnoughOfficers { .. }) => "not_enough_officers",
            CampaignError::Team { problem, .. } => match problem {
                sync_core::rules::TeamProblem::Recused { .. } => "officer_recused",
                sync_core::rules::TeamProblem::NotCertified { .. } => "officer_not_certified",
                sync_core::rules::TeamProblem::Duplicate { .. } => "duplicate_officer",
                sync_core::rules::TeamProblem::TooFewCertified { .. } => "team_too_small",
            },
            CampaignError::UnknownTask(_) => "not_found",
            CampaignError::NotInspected(_) => "not_inspected",
            CampaignError::AlreadyPublished(_) => "already_published",
            CampaignError::TeamTooLarge { .. } => "team_too_large",
            CampaignError::ListTooLong { .. } => "list_too_long",
            CampaignError::PeriodEnded { .. } => "period_ended",
            CampaignError::Store(_) => "internal",
        }
    }
}

/// Reads and checks a random-check matter list in the shape of `../shared/data/matters.json`:
/// every code an identifier and once, every name and basis short text, at least one target.
pub fn parse_matters(json: &[u8]) -> Result<MatterList, String> {
    let list: MatterList = serde_json::from_slice(json).map_err(|e| format!("not a matter list: {e}"))?;
    if list.version != crate::store::campaigns::MATTER_LIST_VERSION {
        return Err(format!("version {} is not {}", list.version, crate::store::campaigns::MATTER_LIST_VERSION));
    }
    if !list.ratios.is_object() {
        return Err("ratios is not an object".into());
    }
    let mut codes = BTreeSet::new();
    for matter in &list.matters {
        sync_core::input::identifier("code", &matter.code)
            .and_then(|()| sync_core::input::short_text("zh", &matter.zh))
            .and_then(|()| sync_core::input::short_text("basis", &matter.basis))
            .map_err(|e| format!("matter {:?}: {e}", matter.code))?;
        if !codes.insert(matter.code.as_str()) {
            return Err(format!("matter {} appears twice", matter.code));
        }
        if matter.targets.is_empty() {
            return Err(format!("matter {} targets no tier", matter.code));
        }
        for tier in &matter.targets {
            sync_core::input::identifier("targets", tier).map_err(|e| format!("matter {}: {e}", matter.code))?;
        }
    }
    Ok(list)
}

/// Hex of 32 bytes.
fn hex32(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// Checks a campaign's specification against itself, its limits, today and the matter list.
fn check_spec(
    campaign_id: &str,
    spec: &CampaignSpec,
    matters: Option<&MatterList>,
    limits: &CampaignLimits,
    today: Date,
) -> Result<(), CampaignError> {
    let invalid = |e: sync_core::input::InvalidValue| CampaignError::Invalid(e.to_string());
    for (field, found) in [
        ("tiers", spec.tiers.len()),
        ("divisions", spec.divisions.len()),
        ("joint_departments", spec.joint_departments.len()),
    ] {
        if found > limits.max_list_items {
            return Err(CampaignError::ListTooLong { field, found, limit: limits.max_list_items });
        }
    }
    if spec.team_size > limits.max_team_size {
        return Err(CampaignError::TeamTooLarge { team_size: spec.team_size, limit: limits.max_team_size });
    }
    sync_core::input::identifier("campaign_id", campaign_id).map_err(invalid)?;
    if campaign_id.len() > sync_core::input::MAX_ID - 5 {
        return Err(CampaignError::Invalid(format!(
            "a campaign id has at most {} characters (its tasks' ids add five)",
            sync_core::input::MAX_ID - 5
        )));
    }
    sync_core::input::short_text("period", &spec.period).map_err(invalid)?;
    for department in &spec.joint_departments {
        sync_core::input::short_text("joint_departments", department).map_err(invalid)?;
    }
    for division in &spec.divisions {
        if division.len() != 6 || !division.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CampaignError::Invalid(format!("division {division:?} is not a 6-digit code")));
        }
    }
    if spec.ends_on < spec.starts_on {
        return Err(CampaignError::Invalid("the period must not end before it starts".into()));
    }
    if spec.ends_on < today {
        return Err(CampaignError::PeriodEnded { ends_on: spec.ends_on, today });
    }
    if spec.team_size < 2 {
        return Err(CampaignError::Draw(DrawError::TeamTooSmall { team_size: spec.team_size }));
    }
    if spec.max_tasks_per_officer == 0 {
        return Err(CampaignError::Invalid("max_tasks_per_officer must be at least 1".into()));
    }
    if spec.tiers.is_empty() {
        return Err(CampaignError::Invalid("a campaign draws from at least one tier".into()));
    }
    let mut tiers = BTreeSet::new();
    for tier in &spec.tiers {
        if !tiers.insert(tier.tier.as_str()) {
            return Err(CampaignError::Draw(DrawError::DuplicateTier { tier: tier.tier.clone() }));
        }
        if let draw::Quota::PerMille { per_mille } = tier.quota
            && per_mille > 1000
        {
            return Err(CampaignError::Invalid(format!("tier {}: {per_mille} per mille is over 1000", tier.tier)));
        }
    }
    let matter = matters
        .and_then(|list| list.matters.iter().find(|m| m.code == spec.matter))
        .ok_or_else(|| CampaignError::UnknownMatter(spec.matter.clone()))?;
    if let Some(tier) = spec.tiers.iter().find(|t| !matter.targets.contains(&t.tier)) {
        return Err(CampaignError::TierNotTargeted { matter: matter.code.clone(), tier: tier.tier.clone() });
    }
    Ok(())
}

/// Creates a campaign: checks its specification, draws a fresh secret seed, freezes the
/// snapshot it will draw from (the entities its filter admits, the officers certified over its
/// whole period, the recusals between them) and stores it with what it publishes now.
pub fn create(
    store: &dyn Store,
    campaign_id: &str,
    spec: CampaignSpec,
    seed: [u8; 32],
    by: &str,
    now_ms: i64,
    limits: &CampaignLimits,
) -> Result<StoredCampaign, CampaignError> {
    let today =
        campaigns::date_of_ms(now_ms).ok_or_else(|| CampaignError::Invalid("the clock is out of range".into()))?;
    check_spec(campaign_id, &spec, store.matters()?.as_ref(), limits, today)?;
    let filter = TargetFilter {
        tiers: spec.tiers.iter().map(|t| t.tier.clone()).collect(),
        divisions: spec.divisions.iter().cloned().collect(),
    };
    let registry = store.entities()?;
    let entities = campaigns::eligible_entities(
        registry.iter().map(|e| RegistryEntity {
            entity_id: &e.entity_id,
            tier: &e.tier,
            division_code: &e.division_code,
        }),
        &filter,
    );
    let (from_ms, until_ms) = campaigns::period_ms(spec.starts_on, spec.ends_on);
    let officers = campaigns::eligible_officers(&store.certificates(None)?, from_ms, until_ms);
    let all_recusals = store.recusals()?;
    let recusals = campaigns::relevant_recusals(
        all_recusals.iter().map(|(o, e, _)| (o.as_str(), e.as_str())),
        &officers,
        &entities,
    );
    let campaign = Campaign {
        campaign_id: campaign_id.to_string(),
        matter: spec.matter.clone(),
        period: spec.period.clone(),
        tiers: spec.tiers.clone(),
        team_size: spec.team_size,
        max_tasks_per_officer: spec.max_tasks_per_officer,
    };
    let canonical = campaign.canonical();
    let published = CampaignCommitment {
        algorithm: draw::ALGORITHM.to_string(),
        commitment: hex32(&draw::commitment(&seed)),
        campaign_sha256: hex::encode(Sha256::digest(&canonical)),
        campaign_canonical: hex::encode(&canonical),
        entities_hash: hex32(&draw::snapshot_hash(entities.iter().map(|e| [e.entity_id.clone(), e.tier.clone()]))),
        officers_hash: hex32(&draw::snapshot_hash(officers.iter().map(|o| [o.clone()]))),
        recusals_hash: hex32(&draw::snapshot_hash(recusals.iter().map(|(o, e)| [o.clone(), e.clone()]))),
        entities: entities.len(),
        officers: officers.len(),
        recusals: recusals.len(),
        published_at_ms: now_ms,
    };
    let stored = StoredCampaign {
        campaign_id: campaign_id.to_string(),
        spec,
        campaign,
        entities,
        officers,
        recusals,
        seed,
        published,
        created_by: by.to_string(),
        created_at_ms: now_ms,
        drawn: None,
    };
    store.create_campaign(&stored).map_err(|error| match error {
        StoreError::Conflict(_) => CampaignError::Exists(campaign_id.to_string()),
        other => CampaignError::Store(other),
    })?;
    Ok(stored)
}

/// The draw's inputs from a campaign's frozen snapshot, its seed and a public value.
pub fn inputs(campaign: &StoredCampaign, public_value: &str) -> DrawInputs {
    DrawInputs {
        campaign: campaign.campaign.clone(),
        entities: campaign.entities.clone(),
        officers: campaign.officers.clone(),
        recusals: campaign.recusals.clone(),
        server_seed: campaign.seed,
        public_value: public_value.to_string(),
    }
}

/// The id of the task a campaign's draw makes at `position`.
pub fn task_id(campaign_id: &str, position: usize) -> String {
    format!("{campaign_id}-{:04}", position + 1)
}

/// Makes a campaign's draw, once: runs [`draw::draw`] on the frozen snapshot with the revealed
/// seed and `public_value`, checks every drawn team as a supervisor's task is checked (P1, P2 at
/// the period's start, P4 with the recusals as they are now), and stores the draw with one task
/// per drawn inspection. A refused draw stores nothing.
pub fn make_draw(
    store: &dyn Store,
    campaign_id: &str,
    public_value: &str,
    by: &str,
    now_ms: i64,
) -> Result<(StoredCampaign, Vec<Task>), CampaignError> {
    sync_core::input::long_text("public_value", public_value, sync_core::input::MAX_SHORT_TEXT)
        .map_err(|e| CampaignError::Invalid(e.to_string()))?;
    let mut campaign = store.campaign(campaign_id)?.ok_or_else(|| CampaignError::NotFound(campaign_id.to_string()))?;
    if campaign.drawn.is_some() {
        return Err(CampaignError::AlreadyDrawn(campaign_id.to_string()));
    }
    let made = draw::draw(&inputs(&campaign, public_value)).map_err(CampaignError::Draw)?;
    let matter = store
        .matters()?
        .and_then(|list| list.matters.into_iter().find(|m| m.code == campaign.spec.matter))
        .map_or_else(|| campaign.spec.matter.clone(), |m| format!("{} {}", m.code, m.zh));
    let (from_ms, until_ms) = campaigns::period_ms(campaign.spec.starts_on, campaign.spec.ends_on);
    let certificates = store.certificates(Some(&campaign.officers))?;
    let mut tasks = Vec::new();
    for (position, drawn) in made.tasks.iter().enumerate() {
        let recused = store.recused_officers(&drawn.entity_id)?;
        sync_core::rules::check_team(&drawn.team, &certificates, &recused, from_ms)
            .map_err(|problem| CampaignError::Team { task: position, problem })?;
        tasks.push(Task {
            task_id: task_id(campaign_id, position),
            entity_id: drawn.entity_id.clone(),
            matter: matter.clone(),
            window_start_ms: from_ms,
            window_end_ms: until_ms,
            team: drawn.team.clone(),
            created_by: by.to_string(),
            created_at_ms: now_ms,
        });
    }
    let stored = StoredDraw {
        public_value: public_value.to_string(),
        draw: made,
        drawn_by: by.to_string(),
        drawn_at_ms: now_ms,
    };
    if !store.store_draw(campaign_id, &stored, &tasks)? {
        return Err(CampaignError::AlreadyDrawn(campaign_id.to_string()));
    }
    campaign.drawn = Some(stored);
    Ok((campaign, tasks))
}

/// What recomputing a stored draw found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub campaign_id: String,
    /// SHA-256 of the revealed seed is the commitment published at creation.
    pub commitment_matches: bool,
    /// The frozen snapshot and campaign hash to what was published at creation.
    pub snapshot_matches: bool,
    /// Recomputing the draw from its published inputs gives the stored draw.
    pub draw_matches: bool,
    pub tasks: usize,
}

impl Verification {
    /// Whether every check passed.
    pub fn matches(&self) -> bool {
        self.commitment_matches && self.snapshot_matches && self.draw_matches
    }
}

/// Recomputes a campaign's stored draw from its published record: the commitment, the snapshot's
/// hashes and the draw itself.
pub fn verify(campaign: &StoredCampaign) -> Result<Verification, CampaignError> {
    let drawn = campaign.drawn.as_ref().ok_or_else(|| CampaignError::NotDrawn(campaign.campaign_id.clone()))?;
    let published = &campaign.published;
    let inputs = inputs(campaign, &drawn.public_value);
    let snapshot_matches = published.entities_hash
        == hex32(&draw::snapshot_hash(inputs.entities.iter().map(|e| [e.entity_id.clone(), e.tier.clone()])))
        && published.officers_hash == hex32(&draw::snapshot_hash(inputs.officers.iter().map(|o| [o.clone()])))
        && published.recusals_hash
            == hex32(&draw::snapshot_hash(inputs.recusals.iter().map(|(o, e)| [o.clone(), e.clone()])))
        && published.campaign_canonical == hex::encode(inputs.campaign.canonical());
    Ok(Verification {
        campaign_id: campaign.campaign_id.clone(),
        commitment_matches: published.commitment == hex32(&draw::commitment(&inputs.server_seed)),
        snapshot_matches,
        draw_matches: draw::draw(&inputs).as_ref() == Ok(&drawn.draw),
        tasks: drawn.draw.tasks.len(),
    })
}

/// A draw as anyone may check it: exactly what `fieldsync verify-draw` reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedDraw {
    /// `sync_core::draw::DrawInputs`, the seed revealed.
    pub inputs: DrawInputs,
    /// `sync_core::draw::Draw`.
    pub draw: Draw,
    /// SHA-256 of the server's seed, hex, published when the campaign was created.
    pub commitment: String,
    /// When the commitment was published, Unix milliseconds.
    pub committed_at_ms: i64,
    /// When the draw was made and the seed revealed, Unix milliseconds.
    pub drawn_at_ms: i64,
}

/// A stored draw as it is published (`sync_core::draw::verify_published` checks it).
pub fn published_draw(campaign: &StoredCampaign, drawn: &StoredDraw) -> PublishedDraw {
    PublishedDraw {
        inputs: inputs(campaign, &drawn.public_value),
        draw: drawn.draw.clone(),
        commitment: campaign.published.commitment.clone(),
        committed_at_ms: campaign.published.published_at_ms,
        drawn_at_ms: drawn.drawn_at_ms,
    }
}

/// A campaign task's inspection: its locked record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub record_id: String,
    /// The record's end time, or its last write (the lock) when it has none.
    pub ended_at_ms: i64,
    pub conclusion: Option<String>,
}

/// The locked record of a task, if it has one (the first by record id when several are).
pub fn inspection(store: &dyn Store, task_id: &str) -> Result<Option<Inspection>, CampaignError> {
    Ok(inspections(store, &[task_id.to_string()])?.remove(task_id))
}

/// The locked record of each of `task_ids` that has one ([`inspection`] for many tasks at
/// once: one read of the records' summaries, not a document per task).
pub fn inspections(store: &dyn Store, task_ids: &[String]) -> Result<BTreeMap<String, Inspection>, CampaignError> {
    crate::service::records::summarize(store)?;
    let mut found = BTreeMap::new();
    for row in store.locked_summaries(task_ids)? {
        let Some(task_id) = row.task_id else { continue };
        // Rows come in record id order: the first of a task is kept.
        found.entry(task_id).or_insert(Inspection {
            ended_at_ms: row.summary.ended_at_ms.unwrap_or(row.updated_at_ms),
            conclusion: row.summary.conclusion,
            record_id: row.summary.record_id,
        });
    }
    Ok(found)
}

/// A task's published result, as the public sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicResult {
    pub task_id: String,
    pub entity_id: String,
    /// The locked inspection record the result is taken from.
    pub record_id: String,
    /// The day the inspection ended, in the bureau's time zone.
    pub inspected_on: Date,
    /// The record's conclusion.
    pub conclusion: Option<String>,
    /// The day the result became public.
    pub public_on: Date,
    pub published_at_ms: i64,
}

/// A campaign as the public sees it: what was published at creation, and once its results are
/// all public or its period has ended, the draw with its revealed inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicCampaign {
    pub campaign_id: String,
    #[serde(flatten)]
    pub spec: CampaignSpec,
    /// Published at creation, before the draw.
    pub commitment: CampaignCommitment,
    /// When the draw was made, if it was.
    pub drawn_at_ms: Option<i64>,
    /// The draw with its inputs (the seed revealed), once public.
    pub draw: Option<PublishedDraw>,
    /// The day the draw became public.
    pub draw_public_on: Option<Date>,
    /// The published results of inspected tasks, in the draw's order.
    pub results: Vec<PublicResult>,
}

/// The day a drawn campaign's draw becomes public: the day after its period ends, or the day its
/// last result was published if every task's result is public before that; `None` if neither
/// has come by `today`.
pub fn draw_public_on(spec: &CampaignSpec, tasks: &[CampaignTask], today: Date) -> Option<Date> {
    let after_period = spec.ends_on.tomorrow().unwrap_or(spec.ends_on);
    let all_published = tasks
        .iter()
        .map(|t| t.published_at_ms.and_then(campaigns::date_of_ms))
        .collect::<Option<Vec<Date>>>()
        .and_then(|days| days.into_iter().max());
    let day = match all_published {
        Some(published) if !tasks.is_empty() => published.min(after_period),
        _ => after_period,
    };
    (day <= today).then_some(day)
}

/// Whether `task_id` is a campaign task whose draw is not public on `today`: until then the
/// drawn list is confidential (DOMAIN.md, random inspection item 5), seen only by supervisors
/// and, task by task, by its team.
pub fn confidential(store: &dyn Store, task_id: &str, today: Date) -> Result<bool, crate::store::StoreError> {
    let Some(task) = store.campaign_task(task_id)? else { return Ok(false) };
    let Some(campaign) = store.campaign(&task.campaign_id)? else { return Ok(false) };
    let tasks = store.campaign_tasks(&task.campaign_id)?;
    Ok(draw_public_on(&campaign.spec, &tasks, today).is_none())
}

/// The ids of every campaign task whose draw is not public on `today` ([`confidential`] for a
/// whole task list at once: one read per campaign, not three per task).
pub fn confidential_tasks(
    store: &dyn Store,
    today: Date,
) -> Result<std::collections::BTreeSet<String>, crate::store::StoreError> {
    let mut hidden = std::collections::BTreeSet::new();
    for campaign in store.campaigns()? {
        let tasks = store.campaign_tasks(&campaign.campaign_id)?;
        if draw_public_on(&campaign.spec, &tasks, today).is_none() {
            hidden.extend(tasks.into_iter().map(|task| task.task_id));
        }
    }
    Ok(hidden)
}

/// A campaign's public view on `today`; `results` are the published results.
pub fn public_view(
    campaign: &StoredCampaign,
    tasks: &[CampaignTask],
    results: Vec<PublicResult>,
    today: Date,
) -> PublicCampaign {
    let spec = &campaign.spec;
    let (draw, public_on) = match &campaign.drawn {
        Some(drawn) => match draw_public_on(spec, tasks, today) {
            Some(day) => (Some(published_draw(campaign, drawn)), Some(day)),
            None => (None, None),
        },
        None => (None, None),
    };
    PublicCampaign {
        campaign_id: campaign.campaign_id.clone(),
        spec: spec.clone(),
        commitment: campaign.published.clone(),
        drawn_at_ms: campaign.drawn.as_ref().map(|d| d.drawn_at_ms),
        draw,
        draw_public_on: public_on,
        results,
    }
}

/// The published results of a campaign's tasks, read from their locked records.
pub fn published_results(
    store: &dyn Store,
    campaign: &StoredCampaign,
    tasks: &[CampaignTask],
) -> Result<Vec<PublicResult>, CampaignError> {
    let drawn = campaign.drawn.as_ref().map(|d| d.draw.tasks.as_slice()).unwrap_or_default();
    let published: Vec<String> =
        tasks.iter().filter(|t| t.published_at_ms.is_some()).map(|t| t.task_id.clone()).collect();
    let mut inspected = inspections(store, &published)?;
    let mut results = Vec::new();
    for task in tasks {
        let (Some(record_id), Some(published_at_ms)) = (&task.record_id, task.published_at_ms) else { continue };
        let Some(inspection) = inspected.remove(&task.task_id) else { continue };
        if &inspection.record_id != record_id {
            continue;
        }
        let (Some(inspected_on), Some(public_on)) =
            (campaigns::date_of_ms(inspection.ended_at_ms), campaigns::date_of_ms(published_at_ms))
        else {
            continue;
        };
        results.push(PublicResult {
            task_id: task.task_id.clone(),
            entity_id: drawn.get(task.position).map(|t| t.entity_id.clone()).unwrap_or_default(),
            record_id: record_id.clone(),
            inspected_on,
            conclusion: inspection.conclusion,
            public_on,
            published_at_ms,
        });
    }
    Ok(results)
}

/// Publishes the result of a campaign task from its locked record.
pub fn publish(
    store: &dyn Store,
    campaign_id: &str,
    task_id: &str,
    by: &str,
    now_ms: i64,
) -> Result<CampaignTask, CampaignError> {
    store.campaign(campaign_id)?.ok_or_else(|| CampaignError::NotFound(campaign_id.to_string()))?;
    let task = store
        .campaign_task(task_id)?
        .filter(|t| t.campaign_id == campaign_id)
        .ok_or_else(|| CampaignError::UnknownTask(task_id.to_string()))?;
    if task.published_at_ms.is_some() {
        return Err(CampaignError::AlreadyPublished(task_id.to_string()));
    }
    let inspection = inspection(store, task_id)?.ok_or_else(|| CampaignError::NotInspected(task_id.to_string()))?;
    if !store.publish_result(task_id, &inspection.record_id, by, now_ms)? {
        return Err(CampaignError::AlreadyPublished(task_id.to_string()));
    }
    Ok(CampaignTask {
        record_id: Some(inspection.record_id),
        published_at_ms: Some(now_ms),
        published_by: Some(by.to_string()),
        ..task
    })
}

/// An inspected campaign task, for the publication report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectedTask {
    pub campaign_id: String,
    pub task_id: String,
    pub entity_id: String,
    pub record_id: String,
    /// The day the inspection ended.
    pub ended_on: Date,
    /// The day its result was published, if it was.
    pub published_on: Option<Date>,
}

/// An inspected task whose result was not public within the deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueResult {
    pub campaign_id: String,
    pub task_id: String,
    pub entity_id: String,
    pub record_id: String,
    pub ended_on: Date,
    /// The last day the result could be published in time.
    pub deadline: Date,
    /// `overdue` (not published yet) or `late` (published after the deadline).
    pub state: String,
    /// Working days past the deadline: until today, or until publication.
    pub working_days_late: u32,
    pub published_on: Option<Date>,
}

/// The inspected tasks whose results were not public within
/// [`RESULT_PUBLICATION_WORKING_DAYS`] working days of the inspection's end, by the bureau's
/// calendar, on `today`.
pub fn overdue_report(calendar: &WorkingCalendar, inspected: &[InspectedTask], today: Date) -> Vec<OverdueResult> {
    inspected
        .iter()
        .filter_map(|task| {
            let (state, deadline, working_days_late) =
                match publication(calendar, task.ended_on, RESULT_PUBLICATION_WORKING_DAYS, task.published_on, today) {
                    Publication::Overdue { deadline, working_days_late } => ("overdue", deadline, working_days_late),
                    Publication::Late { deadline, working_days_late } => ("late", deadline, working_days_late),
                    Publication::OnTime { .. } | Publication::Due { .. } => return None,
                };
            Some(OverdueResult {
                campaign_id: task.campaign_id.clone(),
                task_id: task.task_id.clone(),
                entity_id: task.entity_id.clone(),
                record_id: task.record_id.clone(),
                ended_on: task.ended_on,
                deadline,
                state: state.to_string(),
                working_days_late,
                published_on: task.published_on,
            })
        })
        .collect()
}

/// Every inspected task of every drawn campaign.
pub fn inspected_tasks(store: &dyn Store) -> Result<Vec<InspectedTask>, CampaignError> {
    let mut inspected = Vec::new();
    for campaign in store.campaigns()? {
        let Some(drawn) = &campaign.drawn else { continue };
        let tasks = store.campaign_tasks(&campaign.campaign_id)?;
        let mut found = inspections(store, &tasks.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>())?;
        for task in tasks {
            let Some(found) = found.remove(&task.task_id) else { continue };
            let Some(ended_on) = campaigns::date_of_ms(found.ended_at_ms) else { continue };
            inspected.push(InspectedTask {
                campaign_id: campaign.campaign_id.clone(),
                task_id: task.task_id.clone(),
                entity_id: drawn.draw.tasks.get(task.position).map(|t| t.entity_id.clone()).unwrap_or_default(),
                record_id: found.record_id,
                ended_on,
                published_on: task.published_at_ms.and_then(campaigns::date_of_ms),
            });
        }
    }
    Ok(inspected)
}

impl From<CampaignError> for ApiError {
    fn from(error: CampaignError) -> Self {
        let code = error.code();
        match error {
            CampaignError::Store(error) => ApiError::from(error),
            CampaignError::NotFound(_) => ApiError::NotFound { what: "campaign" },
            CampaignError::UnknownTask(_) => ApiError::NotFound { what: "campaign task" },
            CampaignError::Exists(_) | CampaignError::AlreadyDrawn(_) | CampaignError::AlreadyPublished(_) => {
                ApiError::Conflict { code, message: error.to_string() }
            }
            CampaignError::Draw(ref draw) => {
                ApiError::Unprocessable { code, message: error.to_string(), details: serde_json::to_value(draw).ok() }
            }
            other => ApiError::unprocessable(code, other.to_string()),
        }
    }
}

/// Checks a year's calendar: every day of that year, and [`WorkingCalendar::check`].
pub fn check_calendar_year(year: i16, calendar: &WorkingCalendar) -> Result<(), String> {
    if let Some(day) = calendar.holidays.iter().chain(&calendar.working_weekends).find(|d| d.year() != year) {
        return Err(format!("{day} is not in {year}"));
    }
    calendar.check().map_err(|e| e.to_string())
}

/// A tier's quota as asked for: exactly one of `per_mille` or `count`.
pub struct QuotaRequest {
    pub tier: String,
    pub per_mille: Option<u32>,
    pub count: Option<u32>,
}

/// A new campaign as a supervisor asks for it; the days are `YYYY-MM-DD`.
pub struct NewCampaign {
    /// `C-` and a random UUID when absent.
    pub campaign_id: Option<String>,
    pub matter: String,
    pub tiers: Vec<QuotaRequest>,
    pub divisions: Vec<String>,
    pub period: String,
    pub starts_on: String,
    pub ends_on: String,
    pub team_size: u32,
    pub max_tasks_per_officer: u32,
    pub joint_departments: Vec<String>,
}

/// Creates a campaign and publishes its commitment: for supervisors. The server draws a secret
/// seed, freezes the eligible entities, officers and recusals; what is public from now on is in
/// the campaign's commitment.
pub async fn create_campaign(context: &Context, caller: &Caller, new: NewCampaign) -> ApiResult<StoredCampaign> {
    caller.require(&["supervisor"])?;
    let invalid = |message: String| ApiError::unprocessable("invalid_campaign", message);
    let date = |field: &str, text: &str| {
        text.parse::<Date>().map_err(|_| invalid(format!("{field} {text:?} is not a date (YYYY-MM-DD)")))
    };
    let mut tiers = Vec::new();
    for quota in &new.tiers {
        sync_core::input::identifier("tier", &quota.tier).map_err(|e| invalid(e.to_string()))?;
        let quota_of = match (quota.per_mille, quota.count) {
            (Some(per_mille), None) => Quota::PerMille { per_mille },
            (None, Some(count)) => Quota::Count { count },
            _ => return Err(invalid(format!("tier {}: give exactly one of per_mille and count", quota.tier))),
        };
        tiers.push(TierQuota { tier: quota.tier.clone(), quota: quota_of });
    }
    let spec = CampaignSpec {
        matter: new.matter,
        tiers,
        divisions: new.divisions,
        period: new.period,
        starts_on: date("starts_on", &new.starts_on)?,
        ends_on: date("ends_on", &new.ends_on)?,
        team_size: new.team_size,
        max_tasks_per_officer: new.max_tasks_per_officer,
        joint_departments: new.joint_departments,
    };
    let campaign_id = new.campaign_id.unwrap_or_else(|| format!("C-{}", uuid::Uuid::new_v4()));
    let (by, now, seed) = (caller.officer_id.clone(), now_ms(), random_bytes::<32>());
    let limits = CampaignLimits::of(&context.config);
    let created =
        context.blocking(move |store| Ok(create(store, &campaign_id, spec, seed, &by, now, &limits))).await??;
    Ok(created)
}

/// Every campaign with its tasks: for supervisors.
pub async fn campaigns(context: &Context, caller: &Caller) -> ApiResult<Vec<(StoredCampaign, Vec<CampaignTask>)>> {
    caller.require(&["supervisor"])?;
    context
        .blocking(|store| {
            store
                .campaigns()?
                .into_iter()
                .map(|c| {
                    let tasks = store.campaign_tasks(&c.campaign_id)?;
                    Ok((c, tasks))
                })
                .collect()
        })
        .await
}

/// One campaign with its tasks: for supervisors.
pub async fn one_campaign(
    context: &Context,
    caller: &Caller,
    campaign_id: String,
) -> ApiResult<(StoredCampaign, Vec<CampaignTask>)> {
    caller.require(&["supervisor"])?;
    let found = context
        .blocking(move |store| {
            let Some(campaign) = store.campaign(&campaign_id)? else { return Ok(None) };
            let tasks = store.campaign_tasks(&campaign_id)?;
            Ok(Some((campaign, tasks)))
        })
        .await?;
    found.ok_or(ApiError::NotFound { what: "campaign" })
}

/// Makes a campaign's draw, once: for supervisors. Reveals the seed, draws from the frozen
/// snapshot, and creates one task per drawn inspection; the published draw and the tasks.
pub async fn draw_campaign(
    context: &Context,
    caller: &Caller,
    campaign_id: String,
    public_value: Option<String>,
) -> ApiResult<(PublishedDraw, Vec<Task>)> {
    caller.require(&["supervisor"])?;
    let public_value = public_value.unwrap_or_default();
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let (campaign, tasks) =
        context.blocking(move |store| Ok(make_draw(store, &campaign_id, &public_value, &by, now))).await??;
    let drawn = campaign.drawn.as_ref().ok_or_else(|| ApiError::Internal("a draw was stored without one".into()))?;
    let published = published_draw(&campaign, drawn);
    Ok((published, tasks))
}

/// Publishes one inspected task's result (its locked record's conclusion): for supervisors. The
/// task, and when this request was made.
pub async fn publish_result(
    context: &Context,
    caller: &Caller,
    campaign_id: String,
    task_id: String,
) -> ApiResult<(CampaignTask, i64)> {
    caller.require(&["supervisor"])?;
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let task = context.blocking(move |store| Ok(publish(store, &campaign_id, &task_id, &by, now))).await??;
    Ok((task, now))
}

/// Inspected campaign tasks whose results were not public within 20 working days of the
/// inspection's end, by the bureau's calendar, on `today` (`YYYY-MM-DD`; today when absent):
/// for supervisors.
pub async fn overdue(context: &Context, caller: &Caller, on: Option<String>) -> ApiResult<Vec<OverdueResult>> {
    caller.require(&["supervisor"])?;
    let day = match &on {
        Some(text) => registries::parse_date("today", text)?,
        None => registries::today()?,
    };
    let report = context
        .blocking(move |store| {
            let calendar = store.calendar()?;
            Ok(inspected_tasks(store).map(|tasks| overdue_report(&calendar, &tasks, day)))
        })
        .await??;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn inspected(task_id: &str, ended_on: Date, published_on: Option<Date>) -> InspectedTask {
        InspectedTask {
            campaign_id: "C1".into(),
            task_id: task_id.into(),
            entity_id: "E00001".into(),
            record_id: format!("R-{task_id}"),
            ended_on,
            published_on,
        }
    }

    /// Results are public within 20 working days of the inspection's end, counted by the bureau's
    /// calendar: a holiday moves the deadline later, a worked weekend day earlier.
    #[test]
    fn results_not_public_within_20_working_days_are_reported() {
        // 2026-09-01 is a Tuesday. With no calendar, 20 working days after it is 2026-09-29.
        let plain = WorkingCalendar::default();
        // A holiday on Friday 2026-09-25 and the Saturday 2026-09-26 worked.
        let swapped =
            WorkingCalendar { holidays: [date(2026, 9, 25)].into(), working_weekends: [date(2026, 9, 26)].into() };
        // Two holidays, no day worked: the deadline moves two working days, to 2026-10-01.
        let holidays = WorkingCalendar {
            holidays: [date(2026, 9, 24), date(2026, 9, 25)].into(),
            working_weekends: BTreeSet::new(),
        };
        let ended = date(2026, 9, 1);
        type Expected = Option<(&'static str, Date, u32)>;
        #[rustfmt::skip]
        let cases: &[(&str, &WorkingCalendar, Option<Date>, Date, Expected)] = &[
            ("due on the deadline", &plain, None, date(2026, 9, 29), None),
            ("overdue the day after", &plain, None, date(2026, 9, 30), Some(("overdue", date(2026, 9, 29), 1))),
            ("published on the deadline", &plain, Some(date(2026, 9, 29)), date(2026, 12, 1), None),
            ("published a day late", &plain, Some(date(2026, 9, 30)), date(2026, 12, 1),
                Some(("late", date(2026, 9, 29), 1))),
            ("a worked Saturday replaces a holiday", &swapped, None, date(2026, 9, 29), None),
            ("overdue by the swapped calendar", &swapped, None, date(2026, 9, 30),
                Some(("overdue", date(2026, 9, 29), 1))),
            ("two holidays move the deadline", &holidays, None, date(2026, 10, 1), None),
            ("overdue after the moved deadline", &holidays, None, date(2026, 10, 2),
                Some(("overdue", date(2026, 10, 1), 1))),
            ("published in time by the moved deadline", &holidays, Some(date(2026, 9, 30)), date(2026, 12, 1), None),
        ];
        for (case, calendar, published_on, today, expected) in cases {
            let report = overdue_report(calendar, &[inspected("T1", ended, *published_on)], *today);
            let found = report.first().map(|r| (r.state.as_str(), r.deadline, r.working_days_late));
            assert_eq!(found, *expected, "{case}");
        }
    }

    #[test]
    fn the_draw_becomes_public_after_the_period_or_once_every_result_is() {
        let spec = CampaignSpec {
            matter: "M01".into(),
            tiers: vec![],
            divisions: vec![],
            period: "2026-Q4".into(),
            starts_on: date(2026, 10, 1),
            ends_on: date(2026, 12, 31),
            team_size: 2,
            max_tasks_per_officer: 3,
            joint_departments: vec![],
        };
        let task = |published: Option<Date>| CampaignTask {
            task_id: "T".into(),
            campaign_id: "C".into(),
            position: 0,
            record_id: published.map(|_| "R".into()),
            published_at_ms: published.map(sync_core::campaigns::start_of_day_ms),
            published_by: None,
        };
        let one_open = [task(Some(date(2026, 11, 2))), task(None)];
        assert_eq!(draw_public_on(&spec, &one_open, date(2026, 12, 31)), None, "in the period, a result not public");
        assert_eq!(draw_public_on(&spec, &one_open, date(2027, 1, 1)), Some(date(2027, 1, 1)), "the period ended");
        let all = [task(Some(date(2026, 11, 2))), task(Some(date(2026, 11, 9)))];
        assert_eq!(draw_public_on(&spec, &all, date(2026, 11, 8)), None, "not before the last publication");
        assert_eq!(draw_public_on(&spec, &all, date(2026, 11, 9)), Some(date(2026, 11, 9)));
        assert_eq!(draw_public_on(&spec, &[], date(2026, 11, 9)), None, "no task: the period decides");
    }

    #[test]
    fn the_synthetic_citys_matter_list_reads_and_a_bad_one_is_refused() {
        let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/matters.json"))
            .expect("../shared/data beside the project");
        let list = parse_matters(&json).unwrap();
        assert_eq!(list.matters.len(), 6);
        assert_eq!(list.matters[0].code, "M01");
        assert!(list.ratios["city"]["key"]["share"].is_number());
        let mut twice: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let first = twice["matters"][0].clone();
        twice["matters"].as_array_mut().unwrap().push(first);
        assert!(parse_matters(twice.to_string().as_bytes()).unwrap_err().contains("twice"));
        let mut untargeted: serde_json::Value = serde_json::from_slice(&json).unwrap();
        untargeted["matters"][0]["targets"] = serde_json::json!([]);
        assert!(parse_matters(untargeted.to_string().as_bytes()).unwrap_err().contains("no tier"));
    }
}
