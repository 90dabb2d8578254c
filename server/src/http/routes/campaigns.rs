//! Random inspection (双随机、一公开): the registries it draws from (the entity registry's
//! history, the random-check matter list, the inspector registry), campaigns with their
//! commit–reveal draw, the publication of results, the public listing, the bureau's calendar
//! and the report of results not public in time. The rules are in [`crate::service::campaigns`].

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sync_core::calendar::{Date, WorkingCalendar};
use sync_core::draw::{Quota, TierQuota};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema, TaskSchema};
use crate::http::{ApiBytes, ApiJson, ApiQuery};
use crate::service::auth::{self, Caller};
use crate::service::campaigns::{self as rules, CampaignError, OverdueResult, PublicCampaign, PublishedDraw};
use crate::service::error::{ApiError, ApiResult};
use crate::service::now_ms;
use crate::store::{CampaignCommitment, CampaignSpec, EntityChange, MatterList, StoredCampaign, Task};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/public/matters", get(public_matters))
        .route("/v1/admin/matters", post(import_matters))
        .route("/v1/admin/entities/{entity_id}/history", get(entity_history))
        .route("/v1/admin/calendar/{year}", get(calendar_year).put(put_calendar_year))
        .route("/v1/inspectors", get(inspectors))
        .route("/v1/campaigns", post(create).get(list))
        .route("/v1/campaigns/overdue", get(overdue))
        .route("/v1/campaigns/{campaign_id}", get(one))
        .route("/v1/campaigns/{campaign_id}/draw", post(draw))
        .route("/v1/campaigns/{campaign_id}/results/{task_id}/publish", post(publish))
        .route("/v1/public/campaigns", get(public_list))
        .route("/v1/public/campaigns/{campaign_id}", get(public_one))
        .route("/public/campaigns", get(public_page))
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

/// Today in the bureau's time zone.
fn today() -> ApiResult<Date> {
    sync_core::campaign::date_of_ms(now_ms()).ok_or_else(|| ApiError::Internal("the clock is out of range".into()))
}

fn parse_date(field: &str, text: &str) -> ApiResult<Date> {
    text.parse::<Date>()
        .map_err(|_| ApiError::bad_request("invalid_query", format!("{field} {text:?} is not YYYY-MM-DD")))
}

/// The random-check matter list (U1: it is public).
#[utoipa::path(
    get,
    path = "/v1/public/matters",
    tag = "campaigns",
    responses(
        (status = 200, description = "The matter list as imported.", body = MatterList),
        (status = 404, description = "`not_found`: no matter list has been imported.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn public_matters(State(state): State<AppState>) -> ApiResult<Json<MatterList>> {
    let mut list = state.blocking(|store| store.matters()).await?.ok_or(ApiError::NotFound { what: "matter list" })?;
    // A list imported before ratios were required to be an object may hold `null`.
    if !list.ratios.is_object() {
        list.ratios = serde_json::Value::Object(serde_json::Map::new());
    }
    Ok(Json(list))
}

/// How many matters an import holds.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ImportedMatters {
    pub matters: usize,
}

/// Replaces the random-check matter list with a list in the shape of `shared/data/matters.json`.
#[utoipa::path(
    post,
    path = "/v1/admin/matters",
    tag = "campaigns",
    request_body(content = MatterList, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many matters the list holds.", body = ImportedMatters),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not an `admin`.", body = ErrorBodySchema),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (
            status = 422,
            description = "`invalid_matters`: the body is not a matter list, its version is not 1, its ratios \
                are not an object, a code is not an identifier or appears twice, a name or basis is empty, or a \
                matter targets no tier; nothing was imported.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn import_matters(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiBytes,
) -> ApiResult<Json<ImportedMatters>> {
    caller.require(&["admin"])?;
    let invalid = |e: String| ApiError::unprocessable("invalid_matters", e);
    let mut value: serde_json::Value =
        serde_json::from_slice(&body.0).map_err(|e| invalid(format!("not a matter list: {e}")))?;
    crate::http::integral_numbers(&mut value);
    let list = rules::parse_matters(&serde_json::to_vec(&value).unwrap_or_default()).map_err(invalid)?;
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let matters = state.blocking(move |store| store.import_matters(&list, &by, now)).await?;
    Ok(Json(ImportedMatters { matters }))
}

/// An entity's history in the registry: every import that added or changed it.
#[utoipa::path(
    get,
    path = "/v1/admin/entities/{entity_id}/history",
    tag = "campaigns",
    params(("entity_id" = String, Path, description = "The entity.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Each change, oldest first.", body = Vec<EntityChange>),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 403,
            description = "`role_required`: the caller is neither an `admin` nor a `supervisor`.",
            body = ErrorBodySchema,
        ),
        (status = 404, description = "`not_found`: no such entity.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn entity_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(entity_id): Path<String>,
) -> ApiResult<Json<Vec<EntityChange>>> {
    caller.require(&["admin", "supervisor"])?;
    let history = state.blocking(move |store| store.entity_history(&entity_id)).await?;
    if history.is_empty() {
        return Err(ApiError::NotFound { what: "entity" });
    }
    Ok(Json(history))
}

/// A year of the bureau's calendar.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CalendarYear {
    /// Weekdays off (法定节假日), `YYYY-MM-DD`, all in the year.
    #[schema(value_type = Vec<String>, format = Date)]
    pub holidays: Vec<Date>,
    /// Saturdays and Sundays worked (调休上班), `YYYY-MM-DD`, all in the year.
    #[schema(value_type = Vec<String>, format = Date)]
    pub working_weekends: Vec<Date>,
}

fn year_of(text: &str) -> ApiResult<i16> {
    text.parse::<i16>()
        .ok()
        .filter(|y| (1..=9999).contains(y))
        .ok_or_else(|| ApiError::bad_request("invalid_year", format!("{text:?} is not a year")))
}

/// A year of the bureau's working-day calendar: for admins and supervisors.
#[utoipa::path(
    get,
    path = "/v1/admin/calendar/{year}",
    tag = "campaigns",
    params(("year" = i16, Path, minimum = 1, maximum = 9999, description = "The year, for example `2026`.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The year's holidays and worked weekend days.", body = CalendarYear),
        (status = 400, description = "`invalid_year`: the path does not name a year.", body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 403,
            description = "`role_required`: the caller is neither an `admin` nor a `supervisor`.",
            body = ErrorBodySchema,
        ),
        (status = 404, description = "`not_found`: the year has no calendar yet.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn calendar_year(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<String>,
) -> ApiResult<Json<CalendarYear>> {
    caller.require(&["admin", "supervisor"])?;
    let year = year_of(&year)?;
    let calendar = state.blocking(move |store| store.calendar_year(year)).await?;
    let calendar = calendar.ok_or(ApiError::NotFound { what: "calendar year" })?;
    Ok(Json(CalendarYear {
        holidays: calendar.holidays.into_iter().collect(),
        working_weekends: calendar.working_weekends.into_iter().collect(),
    }))
}

/// Replaces a year of the bureau's working-day calendar.
#[utoipa::path(
    put,
    path = "/v1/admin/calendar/{year}",
    tag = "campaigns",
    params(("year" = i16, Path, minimum = 1, maximum = 9999, description = "The year, for example `2026`.")),
    request_body = CalendarYear,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The year as stored.", body = CalendarYear),
        (
            status = 400,
            description = "`invalid_year`: the path does not name a year. `malformed_json`: the body is not valid \
                JSON. `unreadable_body`: the body could not be read.",
            body = ErrorBodySchema,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not an `admin`.", body = ErrorBodySchema),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (status = 415, description = openapi::JSON_415, body = ErrorBodySchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "CalendarYear",
                "`invalid_calendar`: a day is not in the year, is both a holiday and a worked day, or a worked \
                 weekend day is not a Saturday or Sunday.",
            ),
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn put_calendar_year(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<String>,
    ApiJson(request): ApiJson<CalendarYear>,
) -> ApiResult<Json<CalendarYear>> {
    caller.require(&["admin"])?;
    let year = year_of(&year)?;
    let calendar = WorkingCalendar {
        holidays: request.holidays.iter().copied().collect(),
        working_weekends: request.working_weekends.iter().copied().collect(),
    };
    rules::check_calendar_year(year, &calendar).map_err(|e| ApiError::unprocessable("invalid_calendar", e))?;
    let (by, now, stored) = (caller.officer_id.clone(), now_ms(), calendar.clone());
    state.blocking(move |store| store.put_calendar_year(year, &stored, &by, now)).await?;
    Ok(Json(CalendarYear {
        holidays: calendar.holidays.into_iter().collect(),
        working_weekends: calendar.working_weekends.into_iter().collect(),
    }))
}

/// The days the inspector registry is asked about.
#[derive(Deserialize)]
pub struct InspectorsQuery {
    /// First day, `YYYY-MM-DD`; today when absent.
    pub at: Option<String>,
    /// Last day, `YYYY-MM-DD`; `at` when absent.
    pub until: Option<String>,
}

/// An entity an inspector is recused from (P4).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecusalLink {
    pub entity_id: String,
    pub ground: String,
}

/// An officer of the inspector registry (执法检查人员名录库).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Inspector {
    pub officer_id: String,
    pub name: String,
    pub unit: String,
    /// Numbers of the certificates valid over the whole period.
    pub certificates: Vec<String>,
    pub recusals: Vec<RecusalLink>,
}

/// The inspector registry: officers with a certificate valid over the days asked about, their
/// unit and their recusals. For supervisors.
#[utoipa::path(
    get,
    path = "/v1/inspectors",
    tag = "campaigns",
    params(
        ("at" = Option<String>, Query, format = Date, description = "First day, `YYYY-MM-DD`; today when absent."),
        ("until" = Option<String>, Query, format = Date, description = "Last day, `YYYY-MM-DD`, not before `at`; `at` when absent."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The inspectors, by officer id.", body = Vec<Inspector>),
        (
            status = 400,
            description = "`invalid_query`: `at` or `until` is not a date, or `until` is before `at`.",
            body = ErrorBodySchema,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn inspectors(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InspectorsQuery>,
) -> ApiResult<Json<Vec<Inspector>>> {
    caller.require(&["supervisor"])?;
    let at = match &query.at {
        Some(text) => parse_date("at", text)?,
        None => today()?,
    };
    let until = match &query.until {
        Some(text) => parse_date("until", text)?,
        None => at,
    };
    if until < at {
        return Err(ApiError::bad_request("invalid_query", "until is before at"));
    }
    let (from_ms, until_ms) = sync_core::campaign::period_ms(at, until);
    let inspectors = state
        .blocking(move |store| {
            let certificates = store.certificates(None)?;
            let officers = sync_core::campaign::eligible_officers(&certificates, from_ms, until_ms);
            let recusals = store.recusals()?;
            let accounts = store.accounts()?;
            Ok(officers
                .into_iter()
                .map(|officer_id| {
                    let account = accounts.iter().find(|a| a.officer_id == officer_id);
                    Inspector {
                        name: account.map(|a| a.name.clone()).unwrap_or_default(),
                        unit: account.map(|a| a.unit.clone()).unwrap_or_default(),
                        certificates: certificates
                            .iter()
                            .filter(|c| {
                                c.officer_id == officer_id
                                    && sync_core::campaign::certified_throughout(c, from_ms, until_ms)
                            })
                            .map(|c| c.number.clone())
                            .collect(),
                        recusals: recusals
                            .iter()
                            .filter(|(o, _, _)| *o == officer_id)
                            .map(|(_, entity_id, ground)| RecusalLink {
                                entity_id: entity_id.clone(),
                                ground: ground.clone(),
                            })
                            .collect(),
                        officer_id,
                    }
                })
                .collect())
        })
        .await?;
    Ok(Json(inspectors))
}

/// A tier's quota: exactly one of `per_mille` (a share, in thousandths, rounded up) or `count`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct QuotaRequest {
    /// A tier of the target registry the matter targets, for example `key`.
    pub tier: String,
    #[serde(default)]
    pub per_mille: Option<u32>,
    #[serde(default)]
    pub count: Option<u32>,
}

/// A new campaign.
#[derive(Deserialize, ToSchema)]
pub struct NewCampaign {
    /// The campaign's id (at most 59 characters); `C-` and a random UUID when absent.
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// The code of a matter of the matter list.
    pub matter: String,
    /// Quotas per tier, in draw order; their tiers are the target filter.
    pub tiers: Vec<QuotaRequest>,
    /// 6-digit division codes the targets are limited to; every division when empty.
    #[serde(default)]
    pub divisions: Vec<String>,
    /// The period's label, for example `2026-Q4`.
    pub period: String,
    /// First day, `YYYY-MM-DD`, in the bureau's time zone (UTC+8).
    #[schema(format = Date)]
    pub starts_on: String,
    /// Last day, `YYYY-MM-DD`, not before the first.
    #[schema(format = Date)]
    pub ends_on: String,
    /// Officers per team, at least 2 (P1).
    pub team_size: u32,
    /// Most tasks one officer may be drawn for.
    pub max_tasks_per_officer: u32,
    /// Other departments of a joint check that share this draw.
    #[serde(default)]
    pub joint_departments: Vec<String>,
}

/// A campaign as supervisors see it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    pub campaign_id: String,
    #[serde(flatten)]
    pub spec: CampaignSpec,
    /// What was published at creation.
    pub commitment: CampaignCommitment,
    pub created_by: String,
    pub created_at_ms: i64,
    /// The draw and its revealed inputs, once drawn.
    pub draw: Option<PublishedDraw>,
    pub drawn_at_ms: Option<i64>,
    /// The drawn tasks with their publication.
    pub tasks: Vec<CampaignTaskView>,
}

/// A drawn task and its result's publication.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CampaignTaskView {
    pub task_id: String,
    pub entity_id: String,
    pub team: Vec<String>,
    pub record_id: Option<String>,
    pub published_at_ms: Option<i64>,
}

fn view(campaign: StoredCampaign, tasks: Vec<crate::store::CampaignTask>) -> CampaignView {
    let drawn_tasks = campaign.drawn.as_ref().map(|d| d.draw.tasks.clone()).unwrap_or_default();
    let tasks = tasks
        .into_iter()
        .map(|t| {
            let drawn = drawn_tasks.get(t.position);
            CampaignTaskView {
                entity_id: drawn.map(|d| d.entity_id.clone()).unwrap_or_default(),
                team: drawn.map(|d| d.team.clone()).unwrap_or_default(),
                task_id: t.task_id,
                record_id: t.record_id,
                published_at_ms: t.published_at_ms,
            }
        })
        .collect();
    let draw = campaign.drawn.as_ref().map(|d| rules::published_draw(&campaign, d));
    CampaignView {
        campaign_id: campaign.campaign_id,
        spec: campaign.spec,
        commitment: campaign.published,
        created_by: campaign.created_by,
        created_at_ms: campaign.created_at_ms,
        drawn_at_ms: campaign.drawn.as_ref().map(|d| d.drawn_at_ms),
        draw,
        tasks,
    }
}

const CAMPAIGN_422: &str = "`invalid_campaign`: an id, the period label, a date, a division code or a \
    department is not acceptable, the period ends before it starts, no tier is given, a quota names neither or \
    both of `per_mille` and `count` or more than 1000 per mille, or `max_tasks_per_officer` is 0. \
    `unknown_matter`: the matter is not in the matter list. `tier_not_targeted`: the matter does not target a \
    tier. `team_too_small`: `team_size` is below 2 (P1). `team_too_large`: `team_size` is above \
    `Config::max_team_size` (10 by default). `list_too_long`: `tiers`, `divisions` or `joint_departments` has more \
    than `Config::max_campaign_list_items` (100 by default) items. `period_ended`: `ends_on` is before today in \
    the bureau's time zone. `duplicate_tier`: a tier is named twice.";

/// Creates a campaign and publishes its commitment: for supervisors. The server draws a secret
/// seed, freezes the eligible entities, officers and recusals, and answers with what is public
/// from now on (the seed's SHA-256, the snapshot's hashes, the canonical campaign).
#[utoipa::path(
    post,
    path = "/v1/campaigns",
    tag = "campaigns",
    request_body = NewCampaign,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The campaign with its published commitment; not drawn yet.", body = CampaignView),
        (status = 400, description = openapi::JSON_400, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (status = 409, description = "`campaign_exists`: a campaign with this id exists.", body = ErrorBodySchema),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (status = 415, description = openapi::JSON_415, body = ErrorBodySchema),
        (status = 422, description = openapi::invalid_body_422("NewCampaign", CAMPAIGN_422), body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewCampaign>,
) -> ApiResult<Json<CampaignView>> {
    caller.require(&["supervisor"])?;
    let invalid = |message: String| ApiError::unprocessable("invalid_campaign", message);
    let date = |field: &str, text: &str| {
        text.parse::<Date>().map_err(|_| invalid(format!("{field} {text:?} is not a date (YYYY-MM-DD)")))
    };
    let mut tiers = Vec::new();
    for quota in &request.tiers {
        sync_core::input::identifier("tier", &quota.tier).map_err(|e| invalid(e.to_string()))?;
        let quota_of = match (quota.per_mille, quota.count) {
            (Some(per_mille), None) => Quota::PerMille { per_mille },
            (None, Some(count)) => Quota::Count { count },
            _ => return Err(invalid(format!("tier {}: give exactly one of per_mille and count", quota.tier))),
        };
        tiers.push(TierQuota { tier: quota.tier.clone(), quota: quota_of });
    }
    let spec = CampaignSpec {
        matter: request.matter,
        tiers,
        divisions: request.divisions,
        period: request.period,
        starts_on: date("starts_on", &request.starts_on)?,
        ends_on: date("ends_on", &request.ends_on)?,
        team_size: request.team_size,
        max_tasks_per_officer: request.max_tasks_per_officer,
        joint_departments: request.joint_departments,
    };
    let campaign_id = request.campaign_id.unwrap_or_else(|| format!("C-{}", uuid::Uuid::new_v4()));
    let (by, now, seed) = (caller.officer_id.clone(), now_ms(), auth::random_bytes::<32>());
    let limits = rules::CampaignLimits::of(&state.config);
    let created =
        state.blocking(move |store| Ok(rules::create(store, &campaign_id, spec, seed, &by, now, &limits))).await??;
    Ok(Json(view(created, Vec::new())))
}

/// Every campaign with its draw and tasks: for supervisors.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "campaigns",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every campaign, by creation.", body = Vec<CampaignView>),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<CampaignView>>> {
    caller.require(&["supervisor"])?;
    let campaigns = state
        .blocking(|store| {
            store
                .campaigns()?
                .into_iter()
                .map(|c| {
                    let tasks = store.campaign_tasks(&c.campaign_id)?;
                    Ok(view(c, tasks))
                })
                .collect()
        })
        .await?;
    Ok(Json(campaigns))
}

/// One campaign with its draw and tasks: for supervisors.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{campaign_id}",
    tag = "campaigns",
    params(("campaign_id" = String, Path, description = "The campaign.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The campaign.", body = CampaignView),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (status = 404, description = "`not_found`: no such campaign.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(campaign_id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    caller.require(&["supervisor"])?;
    let found = state
        .blocking(move |store| {
            let Some(campaign) = store.campaign(&campaign_id)? else { return Ok(None) };
            let tasks = store.campaign_tasks(&campaign_id)?;
            Ok(Some(view(campaign, tasks)))
        })
        .await?;
    Ok(Json(found.ok_or(ApiError::NotFound { what: "campaign" })?))
}

/// What a draw may be given.
#[derive(Deserialize, ToSchema, Default)]
pub struct DrawRequest {
    /// A value published by someone else at draw time (a lottery number), mixed into the seed:
    /// at most 200 characters, no control character but line breaks and tabs.
    #[serde(default)]
    #[schema(pattern = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$", max_length = 200)]
    pub public_value: Option<String>,
}

/// The draw and the tasks it made.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DrawResult {
    /// The draw with its revealed inputs, as `fieldsync verify-draw` reads it.
    pub published: PublishedDraw,
    /// One inspection task per drawn entity, sent to its team's devices on their next sync.
    #[schema(value_type = Vec<TaskSchema>)]
    pub tasks: Vec<Task>,
}

/// Makes a campaign's draw, once: for supervisors. Reveals the seed, draws from the frozen
/// snapshot, and creates one task per drawn inspection (P1, P2 and P4 checked as for any task).
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/draw",
    tag = "campaigns",
    params(("campaign_id" = String, Path, description = "The campaign.")),
    request_body = DrawRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The draw and its tasks.", body = DrawResult),
        (status = 400, description = openapi::JSON_400, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (status = 404, description = "`not_found`: no such campaign.", body = ErrorBodySchema),
        (status = 409, description = "`already_drawn`: the campaign has been drawn.", body = ErrorBodySchema),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (status = 415, description = openapi::JSON_415, body = ErrorBodySchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "DrawRequest",
                "Nothing was stored. `invalid_campaign`: the public value is too long or has control characters. \
                 `not_enough_officers`: too few eligible officers, not recused and under the per-officer limit, \
                 for a drawn entity (`details` names it). `quota_too_large`: a count is larger than its tier's \
                 eligible entities. `officer_recused`: a drawn officer has been recused from the entity since the \
                 campaign was created (P4). `officer_not_certified`: a drawn officer's certificate is not valid at \
                 the period's start any more (P2). `team_too_small`, `duplicate_officer`: a drawn team breaks P1.",
            ),
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn draw(
    State(state): State<AppState>,
    caller: Caller,
    Path(campaign_id): Path<String>,
    ApiJson(request): ApiJson<DrawRequest>,
) -> ApiResult<Json<DrawResult>> {
    caller.require(&["supervisor"])?;
    let public_value = request.public_value.unwrap_or_default();
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let (campaign, tasks) =
        state.blocking(move |store| Ok(rules::make_draw(store, &campaign_id, &public_value, &by, now))).await??;
    let drawn = campaign.drawn.as_ref().ok_or_else(|| ApiError::Internal("a draw was stored without one".into()))?;
    let published = rules::published_draw(&campaign, drawn);
    Ok(Json(DrawResult { published, tasks }))
}

/// A published result.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PublishedResult {
    pub task_id: String,
    pub record_id: String,
    pub published_at_ms: i64,
}

/// Publishes one inspected task's result (its locked record's conclusion): for supervisors.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/results/{task_id}/publish",
    tag = "campaigns",
    params(
        ("campaign_id" = String, Path, description = "The campaign."),
        ("task_id" = String, Path, description = "A task of its draw."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The result as published.", body = PublishedResult),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (
            status = 404,
            description = "`not_found`: no such campaign, or the task is not of its draw.",
            body = ErrorBodySchema,
        ),
        (status = 409, description = "`already_published`: the result is public already.", body = ErrorBodySchema),
        (status = 422, description = "`not_inspected`: the task has no locked record.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((campaign_id, task_id)): Path<(String, String)>,
) -> ApiResult<Json<PublishedResult>> {
    caller.require(&["supervisor"])?;
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let task = state.blocking(move |store| Ok(rules::publish(store, &campaign_id, &task_id, &by, now))).await??;
    Ok(Json(PublishedResult {
        task_id: task.task_id,
        record_id: task.record_id.unwrap_or_default(),
        published_at_ms: task.published_at_ms.unwrap_or(now),
    }))
}

/// The day the overdue report is made for.
#[derive(Deserialize)]
pub struct OverdueQuery {
    /// `YYYY-MM-DD`; today when absent.
    pub today: Option<String>,
}

/// Inspected campaign tasks whose results were not public within 20 working days of the
/// inspection's end, by the bureau's calendar: for supervisors.
#[utoipa::path(
    get,
    path = "/v1/campaigns/overdue",
    tag = "campaigns",
    params(("today" = Option<String>, Query, format = Date, description = "The day to judge on, `YYYY-MM-DD`; today when absent.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Results overdue or published late.", body = Vec<OverdueResult>),
        (status = 400, description = "`invalid_query`: `today` is not a date.", body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn overdue(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OverdueQuery>,
) -> ApiResult<Json<Vec<OverdueResult>>> {
    caller.require(&["supervisor"])?;
    let today = match &query.today {
        Some(text) => parse_date("today", text)?,
        None => today()?,
    };
    let report = state
        .blocking(move |store| {
            let calendar = store.calendar()?;
            Ok(rules::inspected_tasks(store).map(|tasks| rules::overdue_report(&calendar, &tasks, today)))
        })
        .await??;
    Ok(Json(report))
}

/// Which campaigns the public asks for.
enum PublicSelection {
    One(String),
    /// A page of the listing: at most `limit`, by campaign id, after `after`.
    Page {
        after: Option<String>,
        limit: usize,
    },
}

/// A page of the public listing: `?limit=` (1 to `Config::max_public_page`, which is also the
/// default) campaigns by campaign id, `?after=` the last campaign id of the previous page.
#[derive(Deserialize)]
pub struct PublicPageQuery {
    pub limit: Option<usize>,
    pub after: Option<String>,
}

impl PublicPageQuery {
    /// The page's `after` and `limit`, the limit checked against `config`.
    fn page(self, config: &crate::config::Config) -> ApiResult<(Option<String>, usize)> {
        let max = config.max_public_page;
        let limit = self.limit.unwrap_or(max);
        if !(1..=max).contains(&limit) {
            return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {max}")));
        }
        Ok((self.after, limit))
    }
}

/// The campaigns of one public page, and the `after` of the next page when there is one.
async fn public_page_of(state: &AppState, query: PublicPageQuery) -> ApiResult<(Vec<PublicCampaign>, Option<String>)> {
    let (after, limit) = query.page(&state.config)?;
    let mut campaigns = public_campaigns(state, PublicSelection::Page { after, limit }).await?;
    let next = (campaigns.len() > limit).then(|| {
        campaigns.truncate(limit);
        campaigns.last().map(|c| c.campaign_id.clone()).unwrap_or_default()
    });
    Ok((campaigns, next))
}

/// A `Link` header to the page after `after`.
fn next_link(path: &str, after: &str, limit: Option<usize>) -> (header::HeaderName, String) {
    let mut target = format!("{path}?after={}", percent_encoded(after));
    if let Some(limit) = limit {
        target.push_str(&format!("&limit={limit}"));
    }
    (header::LINK, format!("<{target}>; rel=\"next\""))
}

/// `text` with everything but unreserved characters percent-encoded, for a query value.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn public_campaigns(state: &AppState, selection: PublicSelection) -> ApiResult<Vec<PublicCampaign>> {
    let today = today()?;
    let campaigns = state
        .blocking(move |store| {
            let campaigns = match &selection {
                PublicSelection::One(id) => store.campaign(id)?.into_iter().collect(),
                // One more than the page, to know whether another follows.
                PublicSelection::Page { after, limit } => store.campaigns_after(after.as_deref(), limit + 1)?,
            };
            Ok(campaigns
                .into_iter()
                .map(|campaign| {
                    let tasks = store.campaign_tasks(&campaign.campaign_id)?;
                    let results = rules::published_results(store, &campaign, &tasks)?;
                    Ok(rules::public_view(&campaign, &tasks, results, today))
                })
                .collect::<Result<Vec<_>, CampaignError>>())
        })
        .await??;
    Ok(campaigns)
}

/// The campaigns as the public sees them (一公开), a page at a time, no sign-in needed.
#[utoipa::path(
    get,
    path = "/v1/public/campaigns",
    tag = "campaigns",
    params(
        (
            "limit" = Option<usize>, Query,
            description = "Most campaigns in the page, 1 to `Config::max_public_page` (20 by default), which is \
                also the default.",
            minimum = 1,
            maximum = 20,
        ),
        ("after" = Option<String>, Query, description = "The last campaign id of the previous page."),
    ),
    responses(
        (
            status = 200,
            description = "A page of campaigns by campaign id: each campaign's commitment; its draw with the \
                revealed inputs once its period has ended or every result is public; its published results. \
                When more follow, a `Link: <...?after=...>; rel=\"next\"` header names the next page.",
            body = Vec<PublicCampaign>,
            headers(("link" = String, description = "The next page, when there is one (RFC 8288).")),
        ),
        (
            status = 400,
            description = "`invalid_query`: `limit` is not a number from 1 to `Config::max_public_page`.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn public_list(State(state): State<AppState>, ApiQuery(query): ApiQuery<PublicPageQuery>) -> ApiResult<Response> {
    let limit = query.limit;
    let (campaigns, next) = public_page_of(&state, query).await?;
    let mut response = Json(campaigns).into_response();
    if let Some(after) = next {
        let (name, value) = next_link("/v1/public/campaigns", &after, limit);
        response.headers_mut().insert(name, value.parse().map_err(|_| ApiError::Internal("a link".into()))?);
    }
    Ok(response)
}

/// One campaign as the public sees it, no sign-in needed.
#[utoipa::path(
    get,
    path = "/v1/public/campaigns/{campaign_id}",
    tag = "campaigns",
    params(("campaign_id" = String, Path, description = "The campaign.")),
    responses(
        (status = 200, description = "The campaign as the public sees it.", body = PublicCampaign),
        (status = 404, description = "`not_found`: no such campaign.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn public_one(State(state): State<AppState>, Path(campaign_id): Path<String>) -> ApiResult<Json<PublicCampaign>> {
    let mut found = public_campaigns(&state, PublicSelection::One(campaign_id)).await?;
    Ok(Json(found.pop().ok_or(ApiError::NotFound { what: "campaign" })?))
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The public listing as a plain HTML page.
pub fn render_page(campaigns: &[PublicCampaign]) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>双随机抽查公示</title></head><body>\n\
         <h1>双随机、一公开 抽查公示</h1>\n",
    );
    for c in campaigns {
        page.push_str(&format!(
            "<section><h2>{} · {} · {}</h2>\n<p>{} – {}</p>\n<p>commitment <code>{}</code> ({}, published {})</p>\n",
            escape(&c.campaign_id),
            escape(&c.spec.matter),
            escape(&c.spec.period),
            c.spec.starts_on,
            c.spec.ends_on,
            escape(&c.commitment.commitment),
            escape(&c.commitment.algorithm),
            c.commitment.published_at_ms,
        ));
        match (&c.draw, c.draw_public_on) {
            (Some(draw), Some(day)) => {
                page.push_str(&format!(
                    "<p>seed <code>{}</code>, public value {:?}, public since {day}</p>\n<ol>\n",
                    hex::encode(draw.inputs.server_seed),
                    escape(&draw.inputs.public_value),
                ));
                for task in &draw.draw.tasks {
                    page.push_str(&format!(
                        "<li>{} ({}): {}</li>\n",
                        escape(&task.entity_id),
                        escape(&task.tier),
                        escape(&task.team.join(", "))
                    ));
                }
                page.push_str("</ol>\n");
            }
            _ => page.push_str("<p>The draw is not public yet.</p>\n"),
        }
        if !c.results.is_empty() {
            page.push_str(
                "<table><tr><th>entity</th><th>inspected</th><th>conclusion</th><th>public since</th></tr>\n",
            );
            for r in &c.results {
                page.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(&r.entity_id),
                    r.inspected_on,
                    escape(r.conclusion.as_deref().unwrap_or("")),
                    r.public_on
                ));
            }
            page.push_str("</table>\n");
        }
        page.push_str("</section>\n");
    }
    page.push_str("</body></html>\n");
    page
}

/// The public listing as a plain HTML page, no sign-in needed.
#[utoipa::path(
    get,
    path = "/public/campaigns",
    tag = "campaigns",
    params(
        (
            "limit" = Option<usize>, Query,
            description = "Most campaigns on the page, 1 to `Config::max_public_page` (20 by default), which is \
                also the default.",
            minimum = 1,
            maximum = 20,
        ),
        ("after" = Option<String>, Query, description = "The last campaign id of the previous page."),
    ),
    responses(
        (
            status = 200,
            description = "A page of the public listing, server-rendered HTML, with a link to the next page when \
                more follow (and the same `Link` header as `/v1/public/campaigns`).",
            content_type = "text/html",
        ),
        (
            status = 400,
            description = "`invalid_query`: `limit` is not a number from 1 to `Config::max_public_page`.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn public_page(State(state): State<AppState>, ApiQuery(query): ApiQuery<PublicPageQuery>) -> ApiResult<Response> {
    let limit = query.limit;
    let (campaigns, next) = public_page_of(&state, query).await?;
    let mut page = render_page(&campaigns);
    let mut response_headers = vec![(header::CONTENT_TYPE, "text/html; charset=utf-8".to_string())];
    if let Some(after) = next {
        let (name, value) = next_link("/public/campaigns", &after, limit);
        let target = value.trim_start_matches('<').split('>').next().unwrap_or_default().to_string();
        page = page.replace("</body>", &format!("<p><a href=\"{}\">next page</a></p>\n</body>", escape(&target)));
        response_headers.push((name, value));
    }
    let mut response = page.into_response();
    for (name, value) in response_headers {
        response.headers_mut().insert(name, value.parse().map_err(|_| ApiError::Internal("a header".into()))?);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
        let campaign = PublicCampaign {
            campaign_id: "C1".into(),
            spec: CampaignSpec {
                matter: "<b>M01</b>".into(),
                period: "2026-Q4".into(),
                starts_on: "2026-10-01".parse().unwrap(),
                ends_on: "2026-12-31".parse().unwrap(),
                tiers: vec![],
                divisions: vec![],
                team_size: 2,
                max_tasks_per_officer: 3,
                joint_departments: vec![],
            },
            commitment: CampaignCommitment {
                algorithm: "fieldsync-draw/v1".into(),
                commitment: "ab".into(),
                campaign_canonical: String::new(),
                campaign_sha256: String::new(),
                entities_hash: String::new(),
                officers_hash: String::new(),
                recusals_hash: String::new(),
                entities: 0,
                officers: 0,
                recusals: 0,
                published_at_ms: 0,
            },
            drawn_at_ms: None,
            draw: None,
            draw_public_on: None,
            results: vec![],
        };
        let page = render_page(&[campaign]);
        assert!(page.contains("&lt;b&gt;M01&lt;/b&gt;") && !page.contains("<b>M01"), "{page}");
        assert!(page.contains("not public yet"));
    }
}
