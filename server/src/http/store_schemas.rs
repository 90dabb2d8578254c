//! The OpenAPI schemas of the store's rows the API serves or reads as they are (a matter list,
//! a campaign's specification and commitment, an entity's history, a quarantined change, a
//! review decision, a photo's claimed metadata).
//!
//! The store knows nothing of OpenAPI: each row is described here by a stand-in that derives
//! `ToSchema` under the row's own name, field for field, and `described_by!` makes the row's
//! schema the stand-in's. The contract and schemathesis tests check answers against them.

use std::borrow::Cow;

use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::http::openapi::{IdentifierSchema, RejectionReasonSchema};
use crate::store::{
    CampaignCommitment, CampaignSpec, ClaimedMetadata, EntityChange, Matter, MatterList, QuarantinedChange,
    ReviewDecision,
};

/// `$row`'s schema is `$stand_in`'s, under the same name.
macro_rules! described_by {
    ($($row:ty => $stand_in:ty),* $(,)?) => {$(
        impl PartialSchema for $row {
            fn schema() -> RefOr<Schema> {
                <$stand_in as PartialSchema>::schema()
            }
        }

        impl ToSchema for $row {
            fn name() -> Cow<'static, str> {
                <$stand_in as ToSchema>::name()
            }
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$stand_in as ToSchema>::schemas(schemas)
            }
        }
    )*};
}

described_by!(
    EntityChange => EntityChangeSchema,
    Matter => MatterSchema,
    MatterList => MatterListSchema,
    CampaignSpec => CampaignSpecSchema,
    CampaignCommitment => CampaignCommitmentSchema,
    QuarantinedChange => QuarantinedChangeSchema,
    ReviewDecision => ReviewDecisionSchema,
    ClaimedMetadata => ClaimedMetadataSchema,
);

/// One change an import made to an entity of the registry.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = EntityChange)]
#[allow(dead_code)]
pub struct EntityChangeSchema {
    /// Position in the registry's history, increasing.
    seq: i64,
    entity_id: String,
    /// `added` or `changed`.
    change: String,
    /// The entity before the change; absent when the import added it.
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    /// The entity after the change.
    #[schema(value_type = Object)]
    after: serde_json::Value,
    /// When the import ran, Unix milliseconds.
    at_ms: i64,
    /// Who imported: an officer id, or `cli` for the admin command.
    by: String,
}

/// One matter of the random-check matter list (随机抽查事项清单), in the shape of
/// `../shared/data/matters.json`.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = Matter)]
#[allow(dead_code)]
pub struct MatterSchema {
    /// The matter's code, for example `M01`: an identifier, unique in the list.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    code: String,
    /// Its name in Chinese: one line of 1 to 200 characters.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 200
    )]
    zh: String,
    /// Its name in English.
    #[serde(default)]
    en: String,
    /// The tiers of the target registry it applies to: at least one, each an identifier.
    #[schema(min_items = 1, inline, value_type = Vec<IdentifierSchema>)]
    targets: Vec<String>,
    /// Its legal basis: one line of 1 to 200 characters.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 200
    )]
    basis: String,
    /// The checklist item codes it inspects.
    #[serde(default)]
    checklist: Vec<String>,
}

/// The random-check matter list as the bureau publishes it (U1).
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = MatterList)]
#[allow(dead_code)]
pub struct MatterListSchema {
    /// The list's format version: 1, the only one this server reads.
    #[schema(minimum = 1, maximum = 1)]
    version: u32,
    #[serde(default)]
    note: String,
    matters: Vec<Matter>,
    /// The bureau's inspection ratios per level and tier, as published (data, not rules); `{}`
    /// when the list has none.
    #[serde(default)]
    #[schema(value_type = Object)]
    ratios: serde_json::Value,
}

/// What a supervisor asked for when creating a campaign, kept as it was accepted; the campaign's
/// views show it as it is.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = CampaignSpec)]
#[allow(dead_code)]
pub struct CampaignSpecSchema {
    /// The matter's code in the matter list.
    matter: String,
    /// Quotas per tier, in draw order; the tiers are the target filter:
    /// `{"tier", "quota": "per_mille" | "count", "per_mille" | "count"}`.
    #[schema(value_type = Vec<Object>)]
    tiers: Vec<serde_json::Value>,
    /// Division codes the targets are limited to; empty for every division.
    divisions: Vec<String>,
    /// The period's label, for example `2026-Q4`.
    period: String,
    /// First day of the period (inspections may start), in the bureau's time zone.
    #[schema(value_type = String, format = Date)]
    starts_on: String,
    /// Last day of the period.
    #[schema(value_type = String, format = Date)]
    ends_on: String,
    team_size: u32,
    max_tasks_per_officer: u32,
    /// Other departments that inspect with the bureau on the same draw (a joint check).
    joint_departments: Vec<String>,
}

/// What a campaign publishes when it is created, before the draw: the commitment to its secret
/// seed and the hashes of the snapshot it will draw from.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = CampaignCommitment)]
#[allow(dead_code)]
pub struct CampaignCommitmentSchema {
    /// The draw's algorithm, `fieldsync-draw/v1`.
    algorithm: String,
    /// SHA-256 of the secret server seed, hex (`draw::commitment`).
    commitment: String,
    /// `draw::Campaign::canonical()` of the campaign, hex: it enters the draw's seed.
    campaign_canonical: String,
    /// SHA-256 of `campaign_canonical`'s bytes, hex.
    campaign_sha256: String,
    /// `draw::snapshot_hash` of the eligible entities (entity id, tier), hex.
    entities_hash: String,
    /// `draw::snapshot_hash` of the eligible officers, hex.
    officers_hash: String,
    /// `draw::snapshot_hash` of the recusals (officer id, entity id), hex.
    recusals_hash: String,
    entities: usize,
    officers: usize,
    recusals: usize,
    /// When it was published, Unix milliseconds.
    published_at_ms: i64,
}

/// A refused change kept in quarantine, once per change and sending device.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = QuarantinedChange)]
#[allow(dead_code)]
pub struct QuarantinedChangeSchema {
    record_id: String,
    change_hash: String,
    /// The device that sent it.
    device_id: String,
    /// The officer of the change's actor, when it is an enrolled device's.
    officer_id: Option<String>,
    #[schema(value_type = RejectionReasonSchema)]
    reason: serde_json::Value,
    /// Whether the refusal holds whoever sends the change again; a refusal that depended on the
    /// sender or on another change's verdict (`sync_core::validate::refusal_is_final`) does not.
    final_verdict: bool,
    /// Hex hashes of the changes it builds on.
    dependencies: Vec<String>,
    /// The change's whole length in bytes.
    change_bytes: i64,
    received_at_ms: i64,
    /// A reviewer's decision on a change held for review, once made.
    review: Option<ReviewDecision>,
}

/// What a reviewer decided about a change held for review.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = ReviewDecision)]
#[allow(dead_code)]
pub struct ReviewDecisionSchema {
    /// `accepted` (the change was merged) or `refused`.
    decision: String,
    reviewer_id: String,
    decided_at_ms: i64,
    note: String,
}

/// What a photo's EXIF claims. The device that took the photo wrote it, and anyone may have
/// edited it since: nothing checks it, and nothing should rely on it without saying so.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = ClaimedMetadata)]
#[allow(dead_code)]
pub struct ClaimedMetadataSchema {
    /// When the photo was taken, in the device's local time (ISO 8601 without an offset, for
    /// example `2026-05-04T10:20:30`), from `DateTimeOriginal`, or else `DateTime`.
    taken_at: Option<String>,
    /// The offset of that local time from UTC (`+08:00`), from `OffsetTimeOriginal`, or else
    /// `OffsetTime`.
    offset: Option<String>,
    /// Decimal degrees, north positive, from `GPSLatitude` and `GPSLatitudeRef`.
    latitude: Option<f64>,
    /// Decimal degrees, east positive, from `GPSLongitude` and `GPSLongitudeRef`.
    longitude: Option<f64>,
    /// The camera's maker (`Make`).
    make: Option<String>,
    /// The camera's model (`Model`).
    model: Option<String>,
    /// Why the EXIF could not be read whole; absent when the file has none or it read well.
    exif_error: Option<String>,
}
