//! What the store keeps for random inspection (双随机、一公开): the entity registry's history,
//! the random-check matter list, campaigns with their frozen snapshot, secret seed and draw,
//! the publication of their results, and the bureau's working-day calendar.

use serde::{Deserialize, Serialize};
use sync_core::calendar::Date;
use sync_core::draw::{Campaign, Draw, EligibleEntity, TierQuota};

/// One change an import made to an entity of the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityChange {
    /// Position in the registry's history, increasing.
    pub seq: i64,
    pub entity_id: String,
    /// `added` or `changed`.
    pub change: String,
    /// The entity before the change; absent when the import added it.
    pub before: Option<serde_json::Value>,
    /// The entity after the change.
    pub after: serde_json::Value,
    /// When the import ran, Unix milliseconds.
    pub at_ms: i64,
    /// Who imported: an officer id, or `cli` for the admin command.
    pub by: String,
}

/// One matter of the random-check matter list (随机抽查事项清单), in the shape of
/// `../shared/data/matters.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matter {
    /// The matter's code, for example `M01`: an identifier, unique in the list.
    pub code: String,
    /// Its name in Chinese: one line of 1 to 200 characters.
    pub zh: String,
    /// Its name in English.
    #[serde(default)]
    pub en: String,
    /// The tiers of the target registry it applies to: at least one, each an identifier.
    pub targets: Vec<String>,
    /// Its legal basis: one line of 1 to 200 characters.
    pub basis: String,
    /// The checklist item codes it inspects.
    #[serde(default)]
    pub checklist: Vec<String>,
}

/// The random-check matter list as the bureau publishes it (U1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatterList {
    /// The list's format version: 1, the only one this server reads.
    pub version: u32,
    #[serde(default)]
    pub note: String,
    pub matters: Vec<Matter>,
    /// The bureau's inspection ratios per level and tier, as published (data, not rules); `{}`
    /// when the list has none.
    #[serde(default = "no_ratios")]
    pub ratios: serde_json::Value,
}

/// A matter list's ratios when it names none: an empty object, as the schema says, never `null`.
fn no_ratios() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The matter-list format version this server reads.
pub const MATTER_LIST_VERSION: u32 = 1;

/// What a supervisor asked for when creating a campaign, kept as it was accepted; the campaign's
/// views show it as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSpec {
    /// The matter's code in the matter list.
    pub matter: String,
    /// Quotas per tier, in draw order; the tiers are the target filter:
    /// `{"tier", "quota": "per_mille" | "count", "per_mille" | "count"}`.
    pub tiers: Vec<TierQuota>,
    /// Division codes the targets are limited to; empty for every division.
    pub divisions: Vec<String>,
    /// The period's label, for example `2026-Q4`.
    pub period: String,
    /// First day of the period (inspections may start), in the bureau's time zone.
    pub starts_on: Date,
    /// Last day of the period.
    pub ends_on: Date,
    pub team_size: u32,
    pub max_tasks_per_officer: u32,
    /// Other departments that inspect with the bureau on the same draw (a joint check).
    pub joint_departments: Vec<String>,
}

/// What a campaign publishes when it is created, before the draw: the commitment to its secret
/// seed and the hashes of the snapshot it will draw from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignCommitment {
    /// The draw's algorithm, `fieldsync-draw/v1`.
    pub algorithm: String,
    /// SHA-256 of the secret server seed, hex (`draw::commitment`).
    pub commitment: String,
    /// `draw::Campaign::canonical()` of the campaign, hex: it enters the draw's seed.
    pub campaign_canonical: String,
    /// SHA-256 of `campaign_canonical`'s bytes, hex.
    pub campaign_sha256: String,
    /// `draw::snapshot_hash` of the eligible entities (entity id, tier), hex.
    pub entities_hash: String,
    /// `draw::snapshot_hash` of the eligible officers, hex.
    pub officers_hash: String,
    /// `draw::snapshot_hash` of the recusals (officer id, entity id), hex.
    pub recusals_hash: String,
    pub entities: usize,
    pub officers: usize,
    pub recusals: usize,
    /// When it was published, Unix milliseconds.
    pub published_at_ms: i64,
}

/// A draw as made and stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDraw {
    /// The public value given at draw time (empty when none).
    pub public_value: String,
    pub draw: Draw,
    pub drawn_by: String,
    pub drawn_at_ms: i64,
}

/// A campaign as stored: its specification, the snapshot it draws from, its secret seed, what
/// it published at creation and, once made, its draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCampaign {
    pub campaign_id: String,
    pub spec: CampaignSpec,
    /// The campaign as the draw takes it.
    pub campaign: Campaign,
    pub entities: Vec<EligibleEntity>,
    pub officers: Vec<String>,
    /// (officer id, entity id).
    pub recusals: Vec<(String, String)>,
    /// The secret seed: never shown before the draw.
    pub seed: [u8; 32],
    pub published: CampaignCommitment,
    pub created_by: String,
    pub created_at_ms: i64,
    pub drawn: Option<StoredDraw>,
}

/// A task a campaign's draw made, and its result's publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignTask {
    pub task_id: String,
    pub campaign_id: String,
    /// Its position in the draw's tasks.
    pub position: usize,
    /// The locked record whose result was published, once published.
    pub record_id: Option<String>,
    pub published_at_ms: Option<i64>,
    pub published_by: Option<String>,
}

use super::{StoreResult, Task};

/// Random-inspection campaigns: their frozen snapshot, draw, tasks and published results.
pub trait Campaigns {
    /// Stores a new campaign (without a draw); a campaign with its id is a conflict.
    fn create_campaign(&self, campaign: &StoredCampaign) -> StoreResult<()>;
    fn campaign(&self, campaign_id: &str) -> StoreResult<Option<StoredCampaign>>;
    /// Every campaign, by creation.
    fn campaigns(&self) -> StoreResult<Vec<StoredCampaign>>;
    /// At most `limit` campaigns by campaign id, those after `after` when given: one page of the
    /// public listing.
    fn campaigns_after(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<StoredCampaign>>;
    /// Stores a campaign's draw and creates its tasks (as
    /// [`Tasks::create_task`](crate::store::Tasks::create_task) does), all in one write. False,
    /// and nothing written, if the campaign was drawn already.
    fn store_draw(&self, campaign_id: &str, draw: &StoredDraw, tasks: &[Task]) -> StoreResult<bool>;
    /// The tasks of a campaign's draw, in the draw's order.
    fn campaign_tasks(&self, campaign_id: &str) -> StoreResult<Vec<CampaignTask>>;
    /// The campaign task `task_id`, if a draw made it.
    fn campaign_task(&self, task_id: &str) -> StoreResult<Option<CampaignTask>>;
    /// Publishes a campaign task's result from its locked record `record_id`. False, and nothing
    /// written, if it was published already.
    fn publish_result(&self, task_id: &str, record_id: &str, by: &str, now_ms: i64) -> StoreResult<bool>;
}
