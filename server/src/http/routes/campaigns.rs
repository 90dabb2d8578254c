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
use utoipa::ToSchema;

use crate::http::openapi::{
    self, AdminOnly, AdminOrSupervisor, BodyTooLarge, CallerErrors, CampaignNotFound, ErrorBodySchema, InternalError,
    InvalidPublicPage, JsonBodyErrors, NotJson, OverdueResultSchema, PublicCampaignSchema, PublishedDrawSchema,
    SupervisorOnly, TaskSchema, WriteErrors,
};
use crate::http::{ApiBytes, ApiJson, ApiQuery, AppState};
use crate::service::auth::Caller;
use crate::service::campaigns::{self, OverdueResult, PublicCampaign, PublishedDraw, public, registries};
use crate::service::error::{ApiError, ApiResult};
use crate::store::{CampaignCommitment, CampaignSpec, CampaignTask, EntityChange, MatterList, StoredCampaign, Task};

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
}

/// The random-check matter list (U1: it is public).
#[utoipa::path(
    get,
    path = "/v1/public/matters",
    tag = "campaigns",
    responses(
        (status = 200, description = "The matter list as imported.", body = MatterList),
        (status = 404, description = "`not_found`: no matter list has been imported.", body = ErrorBodySchema),
        InternalError,
    ),
)]
async fn public_matters(State(state): State<AppState>) -> ApiResult<Json<MatterList>> {
    Ok(Json(registries::public_matters(&state).await?))
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
        (
            status = 422,
            description = "`invalid_matters`: the body is not a matter list, its version is not 1, its ratios \
                are not an object, a code is not an identifier or appears twice, a name or basis is empty, or a \
                matter targets no tier; nothing was imported.",
            body = ErrorBodySchema,
        ),
        CallerErrors, WriteErrors, BodyTooLarge, AdminOnly,
    ),
)]
async fn import_matters(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiBytes,
) -> ApiResult<Json<ImportedMatters>> {
    let matters = serde_json::from_slice::<serde_json::Value>(&body.0).map_err(|e| e.to_string()).map(|mut value| {
        crate::http::integral_numbers(&mut value);
        serde_json::to_vec(&value).unwrap_or_default()
    });
    let matters = registries::import_matters(&state, &caller, matters).await?;
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
        (status = 404, description = "`not_found`: no such entity.", body = ErrorBodySchema),
        CallerErrors, AdminOrSupervisor,
    ),
)]
async fn entity_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(entity_id): Path<String>,
) -> ApiResult<Json<Vec<EntityChange>>> {
    let history = registries::entity_history(&state, &caller, entity_id).await?;
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
        (status = 404, description = "`not_found`: the year has no calendar yet.", body = ErrorBodySchema),
        CallerErrors, AdminOrSupervisor,
    ),
)]
async fn calendar_year(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<String>,
) -> ApiResult<Json<CalendarYear>> {
    let calendar = registries::calendar_year(&state, &caller, &year).await?;
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
        (
            status = 422,
            description = openapi::invalid_body_422(
                "CalendarYear",
                "`invalid_calendar`: a day is not in the year, is both a holiday and a worked day, or a worked \
                 weekend day is not a Saturday or Sunday.",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, WriteErrors, BodyTooLarge, NotJson, AdminOnly,
    ),
)]
async fn put_calendar_year(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<String>,
    ApiJson(request): ApiJson<CalendarYear>,
) -> ApiResult<Json<CalendarYear>> {
    let calendar = WorkingCalendar {
        holidays: request.holidays.iter().copied().collect(),
        working_weekends: request.working_weekends.iter().copied().collect(),
    };
    let calendar = registries::put_calendar_year(&state, &caller, &year, calendar).await?;
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
        CallerErrors, SupervisorOnly,
    ),
)]
async fn inspectors(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InspectorsQuery>,
) -> ApiResult<Json<Vec<Inspector>>> {
    let inspectors = registries::inspectors(&state, &caller, query.at, query.until).await?;
    Ok(Json(
        inspectors
            .into_iter()
            .map(|inspector| Inspector {
                officer_id: inspector.officer_id,
                name: inspector.name,
                unit: inspector.unit,
                certificates: inspector.certificates,
                recusals: inspector
                    .recusals
                    .into_iter()
                    .map(|(entity_id, ground)| RecusalLink { entity_id, ground })
                    .collect(),
            })
            .collect(),
    ))
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
    #[schema(value_type = Option<PublishedDrawSchema>)]
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

fn view(campaign: StoredCampaign, tasks: Vec<CampaignTask>) -> CampaignView {
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
    let draw = campaign.drawn.as_ref().map(|d| campaigns::published_draw(&campaign, d));
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
        (status = 409, description = "`campaign_exists`: a campaign with this id exists.", body = ErrorBodySchema),
        (status = 422, description = openapi::invalid_body_422("NewCampaign", CAMPAIGN_422), body = ErrorBodySchema),
        CallerErrors, JsonBodyErrors, WriteErrors, SupervisorOnly,
    ),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewCampaign>,
) -> ApiResult<Json<CampaignView>> {
    let tiers = request
        .tiers
        .into_iter()
        .map(|QuotaRequest { tier, per_mille, count }| campaigns::QuotaRequest { tier, per_mille, count })
        .collect();
    let new = campaigns::NewCampaign {
        campaign_id: request.campaign_id,
        matter: request.matter,
        tiers,
        divisions: request.divisions,
        period: request.period,
        starts_on: request.starts_on,
        ends_on: request.ends_on,
        team_size: request.team_size,
        max_tasks_per_officer: request.max_tasks_per_officer,
        joint_departments: request.joint_departments,
    };
    let created = campaigns::create_campaign(&state, &caller, new).await?;
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
        CallerErrors, SupervisorOnly,
    ),
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<CampaignView>>> {
    let campaigns = campaigns::campaigns(&state, &caller).await?;
    Ok(Json(campaigns.into_iter().map(|(campaign, tasks)| view(campaign, tasks)).collect()))
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
        CallerErrors, SupervisorOnly, CampaignNotFound,
    ),
)]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(campaign_id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let (campaign, tasks) = campaigns::one_campaign(&state, &caller, campaign_id).await?;
    Ok(Json(view(campaign, tasks)))
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
    #[schema(value_type = PublishedDrawSchema)]
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
        (status = 409, description = "`already_drawn`: the campaign has been drawn.", body = ErrorBodySchema),
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
        CallerErrors, JsonBodyErrors, WriteErrors, SupervisorOnly, CampaignNotFound,
    ),
)]
async fn draw(
    State(state): State<AppState>,
    caller: Caller,
    Path(campaign_id): Path<String>,
    ApiJson(request): ApiJson<DrawRequest>,
) -> ApiResult<Json<DrawResult>> {
    let (published, tasks) = campaigns::draw_campaign(&state, &caller, campaign_id, request.public_value).await?;
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
        (
            status = 404,
            description = "`not_found`: no such campaign, or the task is not of its draw.",
            body = ErrorBodySchema,
        ),
        (status = 409, description = "`already_published`: the result is public already.", body = ErrorBodySchema),
        (status = 422, description = "`not_inspected`: the task has no locked record.", body = ErrorBodySchema),
        CallerErrors, WriteErrors, SupervisorOnly,
    ),
)]
async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((campaign_id, task_id)): Path<(String, String)>,
) -> ApiResult<Json<PublishedResult>> {
    let (task, now) = campaigns::publish_result(&state, &caller, campaign_id, task_id).await?;
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
        (status = 200, description = "Results overdue or published late.", body = Vec<OverdueResultSchema>),
        (status = 400, description = "`invalid_query`: `today` is not a date.", body = ErrorBodySchema),
        CallerErrors, SupervisorOnly,
    ),
)]
async fn overdue(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OverdueQuery>,
) -> ApiResult<Json<Vec<OverdueResult>>> {
    let report = campaigns::overdue(&state, &caller, query.today).await?;
    Ok(Json(report))
}

/// A page of the public listing: `?limit=` (1 to `Config::max_public_page`, which is also the
/// default) campaigns by campaign id, `?after=` the last campaign id of the previous page.
#[derive(Deserialize)]
pub struct PublicPageQuery {
    pub limit: Option<usize>,
    pub after: Option<String>,
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
            body = Vec<PublicCampaignSchema>,
            headers(("link" = String, description = "The next page, when there is one (RFC 8288).")),
        ),
        InternalError, InvalidPublicPage,
    ),
)]
async fn public_list(State(state): State<AppState>, ApiQuery(query): ApiQuery<PublicPageQuery>) -> ApiResult<Response> {
    let limit = query.limit;
    let (campaigns, next) = public::public_page(&state, query.after, query.limit).await?;
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
        (status = 200, description = "The campaign as the public sees it.", body = PublicCampaignSchema),
        InternalError, CampaignNotFound,
    ),
)]
async fn public_one(State(state): State<AppState>, Path(campaign_id): Path<String>) -> ApiResult<Json<PublicCampaign>> {
    Ok(Json(public::public_campaign(&state, campaign_id).await?))
}
