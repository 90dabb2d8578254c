//! The supervisor's pages: random-check campaigns (create with tier quotas, commitment, draw,
//! teams, published results, overdue results), tasks (create, confidentiality, reassign), the
//! inspector registry and recusals. Every page needs the `supervisor` role, checked here and
//! again by the services.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Chrome, Console, Nothing, PageResult, Pagination, Posted, day, render, see_other, time};
use crate::http::AppState;
use crate::service::ApiError;
use crate::service::admin::{self, Recusal};
use crate::service::campaigns::registries::{self, Inspector};
use crate::service::campaigns::{self, Inspection, NewCampaign, OverdueResult, QuotaRequest};
use crate::service::recusals::{self, RecusedTeam};
use crate::service::tasks::{self, NewTask, SupervisedTask};
use crate::store::{CampaignTask, Matter, StoredCampaign, Task};
use schemas::Certificate;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/supervisor", get(|| async { Redirect::to("/supervisor/campaigns") }))
        .route("/supervisor/campaigns", get(campaigns_page).post(create_campaign))
        .route("/supervisor/campaigns/{campaign_id}", get(campaign_page))
        .route("/supervisor/campaigns/{campaign_id}/draw", post(draw))
        .route("/supervisor/campaigns/{campaign_id}/results/{task_id}/publish", post(publish))
        .route("/supervisor/overdue", get(overdue_page))
        .route("/supervisor/tasks", get(tasks_page).post(create_task))
        .route("/supervisor/tasks/{task_id}", get(task_page))
        .route("/supervisor/tasks/{task_id}/team", post(reassign))
        .route("/supervisor/inspectors", get(inspectors_page))
        .route("/supervisor/recusals", get(recusals_page).post(add_recusal))
}

const ROLE: &[&str] = &["supervisor"];

/// The value of the form field `name`, trimmed; `None` when absent or empty.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// A list typed as text: items separated by commas, spaces or new lines.
fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .split(|c: char| c == ',' || c == '，' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A number typed in a form, or `invalid_form` naming the field.
fn number<T: std::str::FromStr>(name: &str, text: Option<&str>) -> Result<Option<T>, ApiError> {
    text.map(|t| {
        t.parse::<T>().map_err(|_| ApiError::unprocessable("invalid_form", format!("{name}: {t:?} is not a number")))
    })
    .transpose()
}

/// The tiers of the entity registry, in the order quotas are asked for.
const TIERS: [&str; 3] = ["special", "key", "general"];

#[derive(Template)]
#[template(path = "console/supervisor/campaigns.html")]
struct CampaignsPage {
    c: Chrome,
    campaigns: Vec<CampaignRow>,
    matters: Vec<Matter>,
    tiers: [&'static str; 3],
    problem: Option<String>,
    today: String,
}

struct CampaignRow {
    campaign_id: String,
    matter: String,
    period: String,
    days: String,
    drawn: bool,
    tasks: usize,
    published: usize,
}

async fn campaigns_view(state: &AppState, console: Console, problem: Option<String>) -> PageResult {
    console.require(ROLE)?;
    let all = campaigns::campaigns(state, &console.caller).await.map_err(|e| console.error(e))?;
    let matters = registries::public_matters(state).await.map(|l| l.matters).unwrap_or_default();
    let campaigns = all
        .iter()
        .map(|(c, tasks)| CampaignRow {
            campaign_id: c.campaign_id.clone(),
            matter: c.spec.matter.clone(),
            period: c.spec.period.clone(),
            days: format!("{} – {}", c.spec.starts_on, c.spec.ends_on),
            drawn: c.drawn.is_some(),
            tasks: tasks.len(),
            published: tasks.iter().filter(|t| t.published_at_ms.is_some()).count(),
        })
        .collect();
    let today = registries::today().map(|d| d.to_string()).unwrap_or_default();
    let lang = console.chrome.lang;
    let page = CampaignsPage { c: console.chrome, campaigns, matters, tiers: TIERS, problem, today };
    let mut response = render(&page, lang)?;
    if page.problem.is_some() {
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

async fn campaigns_page(State(state): State<AppState>, console: Console) -> PageResult {
    campaigns_view(&state, console, None).await
}

/// A refusal the form's page shows above the form, with its code.
fn problem_of(error: &ApiError) -> Option<String> {
    match error {
        ApiError::Unprocessable { .. } | ApiError::Conflict { .. } | ApiError::BadRequest { .. } => {
            let (_, code) = error.status_and_code();
            Some(format!("{error} ({code})"))
        }
        _ => None,
    }
}

/// Creates a campaign from the form: its matter, period, team size, and for each tier either a
/// share (per mille) or a count.
async fn create_campaign(State(state): State<AppState>, posted: Posted<Vec<(String, String)>>) -> PageResult {
    let Posted { console, form } = posted;
    console.require(ROLE)?;
    let new = match campaign_of(&form) {
        Ok(new) => new,
        Err(error) => return campaigns_view(&state, console, problem_of(&error)).await,
    };
    match campaigns::create_campaign(&state, &console.caller, new).await {
        Ok(created) => see_other(&format!("/supervisor/campaigns/{}", created.campaign_id)),
        Err(error) => match problem_of(&error) {
            Some(problem) => campaigns_view(&state, console, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

fn campaign_of(form: &[(String, String)]) -> Result<NewCampaign, ApiError> {
    let mut tiers = Vec::new();
    for tier in TIERS {
        let per_mille = number::<u32>(&format!("per_mille_{tier}"), field(form, &format!("per_mille_{tier}")))?;
        let count = number::<u32>(&format!("count_{tier}"), field(form, &format!("count_{tier}")))?;
        if per_mille.is_some() || count.is_some() {
            tiers.push(QuotaRequest { tier: tier.to_string(), per_mille, count });
        }
    }
    let required = |name: &str| {
        field(form, name)
            .map(str::to_string)
            .ok_or_else(|| ApiError::unprocessable("invalid_form", format!("{name} is required")))
    };
    Ok(NewCampaign {
        campaign_id: field(form, "campaign_id").map(str::to_string),
        matter: required("matter")?,
        tiers,
        divisions: list(field(form, "divisions")),
        period: required("period")?,
        starts_on: required("starts_on")?,
        ends_on: required("ends_on")?,
        team_size: number("team_size", field(form, "team_size"))?.unwrap_or(2),
        max_tasks_per_officer: number("max_tasks_per_officer", field(form, "max_tasks_per_officer"))?.unwrap_or(3),
        joint_departments: list(field(form, "joint_departments")),
    })
}

#[derive(Template)]
#[template(path = "console/supervisor/campaign.html")]
struct CampaignPage {
    c: Chrome,
    campaign: StoredCampaign,
    committed_at: String,
    drawn_at: Option<String>,
    seed: Option<String>,
    tasks: Vec<CampaignTaskRow>,
    quotas: Vec<String>,
    problem: Option<String>,
}

struct CampaignTaskRow {
    position: usize,
    task_id: String,
    entity_id: String,
    tier: String,
    team: String,
    inspection: Option<Inspection>,
    inspected_at: Option<String>,
    published_at: Option<String>,
}

async fn campaign_view(state: &AppState, console: Console, campaign_id: String, problem: Option<String>) -> PageResult {
    console.require(ROLE)?;
    let (campaign, tasks) =
        campaigns::campaign_progress(state, &console.caller, campaign_id).await.map_err(|e| console.error(e))?;
    let drawn_tasks = campaign.drawn.as_ref().map(|d| d.draw.tasks.clone()).unwrap_or_default();
    let rows = tasks
        .into_iter()
        .map(|(task, inspection): (CampaignTask, Option<Inspection>)| {
            let drawn = drawn_tasks.get(task.position);
            CampaignTaskRow {
                position: task.position + 1,
                entity_id: drawn.map(|d| d.entity_id.clone()).unwrap_or_default(),
                tier: drawn.map(|d| d.tier.clone()).unwrap_or_default(),
                team: drawn.map(|d| d.team.join(", ")).unwrap_or_default(),
                inspected_at: inspection.as_ref().map(|i| time(i.ended_at_ms)),
                inspection,
                published_at: task.published_at_ms.map(time),
                task_id: task.task_id,
            }
        })
        .collect();
    let quotas = campaign
        .spec
        .tiers
        .iter()
        .map(|q| match q.quota {
            sync_core::draw::Quota::PerMille { per_mille } => format!("{}: {per_mille}‰", q.tier),
            sync_core::draw::Quota::Count { count } => format!("{}: {count}", q.tier),
        })
        .collect();
    let lang = console.chrome.lang;
    let page = CampaignPage {
        c: console.chrome,
        committed_at: time(campaign.published.published_at_ms),
        drawn_at: campaign.drawn.as_ref().map(|d| time(d.drawn_at_ms)),
        seed: campaign.drawn.as_ref().map(|_| hex::encode(campaign.seed)),
        campaign,
        tasks: rows,
        quotas,
        problem,
    };
    let mut response = render(&page, lang)?;
    if page.problem.is_some() {
        *response.status_mut() = axum::http::StatusCode::CONFLICT;
    }
    Ok(response)
}

async fn campaign_page(State(state): State<AppState>, console: Console, Path(campaign_id): Path<String>) -> PageResult {
    campaign_view(&state, console, campaign_id, None).await
}

#[derive(Deserialize)]
struct DrawForm {
    #[serde(default)]
    public_value: String,
}

/// Draws the campaign, with the public value when one is given.
async fn draw(
    State(state): State<AppState>,
    Path(campaign_id): Path<String>,
    Posted { console, form }: Posted<DrawForm>,
) -> PageResult {
    console.require(ROLE)?;
    let public_value = Some(form.public_value.trim().to_string()).filter(|v| !v.is_empty());
    match campaigns::draw_campaign(&state, &console.caller, campaign_id.clone(), public_value).await {
        Ok(_) => see_other(&format!("/supervisor/campaigns/{campaign_id}")),
        Err(error) => match problem_of(&error) {
            Some(problem) => campaign_view(&state, console, campaign_id, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

/// Publishes one inspected task's result.
async fn publish(
    State(state): State<AppState>,
    Path((campaign_id, task_id)): Path<(String, String)>,
    Posted { console, .. }: Posted<Nothing>,
) -> PageResult {
    console.require(ROLE)?;
    match campaigns::publish_result(&state, &console.caller, campaign_id.clone(), task_id).await {
        Ok(_) => see_other(&format!("/supervisor/campaigns/{campaign_id}")),
        Err(error) => match problem_of(&error) {
            Some(problem) => campaign_view(&state, console, campaign_id, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

#[derive(Template)]
#[template(path = "console/supervisor/overdue.html")]
struct OverduePage {
    c: Chrome,
    on: String,
    results: Vec<OverdueResult>,
}

#[derive(Deserialize)]
struct OnQuery {
    #[serde(default)]
    on: Option<String>,
}

/// Inspected tasks whose results were not public within 20 working days.
async fn overdue_page(State(state): State<AppState>, console: Console, Query(query): Query<OnQuery>) -> PageResult {
    console.require(ROLE)?;
    let on = query.on.filter(|d| !d.trim().is_empty());
    let results = campaigns::overdue(&state, &console.caller, on.clone()).await.map_err(|e| console.error(e))?;
    let on = on.unwrap_or_else(|| registries::today().map(|d| d.to_string()).unwrap_or_default());
    let lang = console.chrome.lang;
    render(&OverduePage { c: console.chrome, on, results }, lang)
}

#[derive(Template)]
#[template(path = "console/supervisor/tasks.html")]
struct TasksPage {
    c: Chrome,
    tasks: Vec<TaskRow>,
    pages: Pagination,
    filter: String,
    matters: Vec<Matter>,
    problem: Option<String>,
    today: String,
}

struct TaskRow {
    task: Task,
    confidential: bool,
    drawn: bool,
    window: String,
}

#[derive(Deserialize, Default)]
struct TasksQuery {
    #[serde(default)]
    page: Option<usize>,
    /// Part of a task id, entity id or officer id.
    #[serde(default)]
    q: Option<String>,
}

fn window(task: &Task) -> String {
    format!("{} – {}", time(task.window_start_ms), time(task.window_end_ms))
}

async fn tasks_view(state: &AppState, console: Console, query: TasksQuery, problem: Option<String>) -> PageResult {
    console.require(ROLE)?;
    let filter = query.q.unwrap_or_default().trim().to_string();
    let mut all: Vec<SupervisedTask> = tasks::supervised(state, &console.caller).await.map_err(|e| console.error(e))?;
    if !filter.is_empty() {
        all.retain(|t| {
            t.task.task_id.contains(&filter)
                || t.task.entity_id.contains(&filter)
                || t.task.team.iter().any(|o| o.contains(&filter))
        });
    }
    // Newest first: the work a supervisor is planning now.
    all.sort_by(|a, b| b.task.created_at_ms.cmp(&a.task.created_at_ms).then(a.task.task_id.cmp(&b.task.task_id)));
    let pages = Pagination::new(query.page, all.len());
    let tasks = pages
        .slice(&all)
        .iter()
        .map(|t| TaskRow {
            window: window(&t.task),
            task: t.task.clone(),
            confidential: t.confidential,
            drawn: t.drawn,
        })
        .collect();
    let matters = registries::public_matters(state).await.map(|l| l.matters).unwrap_or_default();
    let today = registries::today().map(|d| d.to_string()).unwrap_or_default();
    let lang = console.chrome.lang;
    let failed = problem.is_some();
    let mut response = render(&TasksPage { c: console.chrome, tasks, pages, filter, matters, problem, today }, lang)?;
    if failed {
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

async fn tasks_page(State(state): State<AppState>, console: Console, Query(query): Query<TasksQuery>) -> PageResult {
    tasks_view(&state, console, query, None).await
}

#[derive(Deserialize)]
struct TaskForm {
    #[serde(default)]
    task_id: String,
    entity_id: String,
    matter: String,
    team: String,
    starts_on: String,
    ends_on: String,
}

/// The first and the after-last instant of the days `starts_on` to `ends_on` (`YYYY-MM-DD`) in
/// the bureau's time zone.
fn window_of(starts_on: &str, ends_on: &str) -> Result<(i64, i64), ApiError> {
    let start = registries::parse_date("starts_on", starts_on.trim())?;
    let end = registries::parse_date("ends_on", ends_on.trim())?;
    Ok(sync_core::campaigns::period_ms(start, end))
}

/// Creates a task for a team.
async fn create_task(State(state): State<AppState>, Posted { console, form }: Posted<TaskForm>) -> PageResult {
    console.require(ROLE)?;
    let created = match window_of(&form.starts_on, &form.ends_on) {
        Ok((window_start_ms, window_end_ms)) => {
            let new = NewTask {
                task_id: Some(form.task_id.trim().to_string()).filter(|t| !t.is_empty()),
                entity_id: form.entity_id.trim().to_string(),
                matter: form.matter.trim().to_string(),
                team: list(Some(&form.team)),
                window_start_ms,
                window_end_ms,
            };
            tasks::create(&state, &console.caller, new).await
        }
        Err(error) => Err(error),
    };
    match created {
        Ok(task) => see_other(&format!("/supervisor/tasks/{}", task.task_id)),
        Err(error) => match problem_of(&error) {
            Some(problem) => tasks_view(&state, console, TasksQuery::default(), Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

#[derive(Template)]
#[template(path = "console/supervisor/task.html")]
struct TaskPage {
    c: Chrome,
    task: Task,
    window: String,
    confidential: bool,
    drawn: bool,
    /// (officer id, name, certificates as "number (valid to)")
    members: Vec<(String, String, String)>,
    problem: Option<String>,
}

async fn task_view(state: &AppState, console: Console, task_id: String, problem: Option<String>) -> PageResult {
    console.require(ROLE)?;
    let team = tasks::team(state, &console.caller, task_id.clone()).await.map_err(|e| console.error(e))?;
    let supervised = tasks::supervised(state, &console.caller).await.map_err(|e| console.error(e))?;
    let this = supervised.iter().find(|t| t.task.task_id == task_id);
    let members = team
        .members
        .iter()
        .map(|m| {
            let certificates: Vec<String> = m.certificates.iter().map(certificate_summary).collect();
            (m.officer_id.clone(), m.name.clone(), certificates.join("; "))
        })
        .collect();
    let lang = console.chrome.lang;
    let page = TaskPage {
        c: console.chrome,
        window: window(&team.task),
        confidential: this.is_some_and(|t| t.confidential),
        drawn: this.is_some_and(|t| t.drawn),
        task: team.task,
        members,
        problem,
    };
    let mut response = render(&page, lang)?;
    if page.problem.is_some() {
        *response.status_mut() = axum::http::StatusCode::CONFLICT;
    }
    Ok(response)
}

/// A certificate as one line: its number, validity and its latest status.
fn certificate_summary(c: &Certificate) -> String {
    let status = c.status_history.last().map(|s| format!(", {:?}", s.status).to_lowercase()).unwrap_or_default();
    format!("{} ({} – {}{status})", c.number, day(c.valid_from_ms), day(c.valid_until_ms - 1))
}

async fn task_page(State(state): State<AppState>, console: Console, Path(task_id): Path<String>) -> PageResult {
    task_view(&state, console, task_id, None).await
}

#[derive(Deserialize)]
struct TeamForm {
    team: String,
}

/// Gives a task another team.
async fn reassign(
    State(state): State<AppState>,
    Path(task_id): Path<String>,
    Posted { console, form }: Posted<TeamForm>,
) -> PageResult {
    console.require(ROLE)?;
    match tasks::reassign(&state, &console.caller, task_id.clone(), list(Some(&form.team))).await {
        Ok(_) => see_other(&format!("/supervisor/tasks/{task_id}")),
        Err(error) => match problem_of(&error) {
            Some(problem) => task_view(&state, console, task_id, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

#[derive(Template)]
#[template(path = "console/supervisor/inspectors.html")]
struct InspectorsPage {
    c: Chrome,
    at: String,
    until: String,
    inspectors: Vec<Inspector>,
    /// Every certificate by officer: (officer id, summary).
    certificates: Vec<(String, String)>,
}

impl InspectorsPage {
    fn certificates_of(&self, officer_id: &str) -> String {
        let of: Vec<&str> =
            self.certificates.iter().filter(|(o, _)| o == officer_id).map(|(_, s)| s.as_str()).collect();
        of.join("; ")
    }
}

#[derive(Deserialize)]
struct PeriodQuery {
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// The inspector registry: officers certified over a period, with every certificate's validity
/// and status, and their recusals.
async fn inspectors_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<PeriodQuery>,
) -> PageResult {
    console.require(ROLE)?;
    let at = query.at.filter(|d| !d.trim().is_empty());
    let until = query.until.filter(|d| !d.trim().is_empty());
    let review_period_ms = state.config.certificate_review_period_ms;
    let inspectors = registries::inspectors(&state, &console.caller, at.clone(), until.clone())
        .await
        .map_err(|e| console.error(e))?;
    let certificates = admin::list_certificates(&state, &console.caller)
        .await
        .map_err(|e| console.error(e))?
        .iter()
        .map(|c| {
            // P3: the periodic review's date beside each certificate still in use.
            let review = sync_core::certificates::review_due_ms(c, review_period_ms, crate::service::now_ms())
                .map(|due| format!(", {} {}", console.chrome.t("年审", "review due"), day(due)))
                .unwrap_or_default();
            (c.officer_id.clone(), format!("{}{review}", certificate_summary(c)))
        })
        .collect();
    let today = registries::today().map(|d| d.to_string()).unwrap_or_default();
    let at = at.unwrap_or(today);
    let until = until.unwrap_or_else(|| at.clone());
    let lang = console.chrome.lang;
    render(&InspectorsPage { c: console.chrome, at, until, inspectors, certificates }, lang)
}

#[derive(Template)]
#[template(path = "console/supervisor/recusals.html")]
struct RecusalsPage {
    c: Chrome,
    recusals: Vec<(String, String, String)>,
    teams: Vec<RecusedTeam>,
    problem: Option<String>,
}

async fn recusals_view(state: &AppState, console: Console, problem: Option<String>) -> PageResult {
    console.require(ROLE)?;
    let recusals = recusals::all(state, &console.caller).await.map_err(|e| console.error(e))?;
    let teams = recusals::recused_teams(state, &console.caller).await.map_err(|e| console.error(e))?;
    let lang = console.chrome.lang;
    let failed = problem.is_some();
    let mut response = render(&RecusalsPage { c: console.chrome, recusals, teams, problem }, lang)?;
    if failed {
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

async fn recusals_page(State(state): State<AppState>, console: Console) -> PageResult {
    recusals_view(&state, console, None).await
}

#[derive(Deserialize)]
struct RecusalForm {
    officer_id: String,
    entity_id: String,
    ground: String,
}

/// Records that an officer is recused from an entity.
async fn add_recusal(State(state): State<AppState>, Posted { console, form }: Posted<RecusalForm>) -> PageResult {
    console.require(ROLE)?;
    let recusal = Recusal {
        officer_id: form.officer_id.trim().to_string(),
        entity_id: form.entity_id.trim().to_string(),
        ground: form.ground.trim().to_string(),
    };
    match admin::add_recusal(&state, &console.caller, recusal).await {
        Ok(()) => see_other("/supervisor/recusals"),
        Err(error) => match problem_of(&error) {
            Some(problem) => recusals_view(&state, console, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_campaign_form_becomes_a_campaign_request() {
        let new = campaign_of(&form(&[
            ("matter", "M01"),
            ("period", "2026-Q4"),
            ("starts_on", "2026-10-01"),
            ("ends_on", "2026-12-31"),
            ("per_mille_special", "1000"),
            ("count_general", " 5 "),
            ("per_mille_key", ""),
            ("divisions", "450202, 450203，450204"),
        ]))
        .unwrap();
        assert_eq!(new.matter, "M01");
        assert_eq!(new.tiers.len(), 2);
        assert_eq!((new.tiers[0].tier.as_str(), new.tiers[0].per_mille), ("special", Some(1000)));
        assert_eq!((new.tiers[1].tier.as_str(), new.tiers[1].count), ("general", Some(5)));
        assert_eq!(new.divisions, ["450202", "450203", "450204"]);
        assert_eq!((new.team_size, new.max_tasks_per_officer), (2, 3));
        let missing = campaign_of(&form(&[("period", "2026-Q4")])).err().unwrap();
        assert_eq!(missing.status_and_code(), (422, "invalid_form"));
        let nan = campaign_of(&form(&[("matter", "M01"), ("count_key", "many")])).err().unwrap();
        assert!(nan.to_string().contains("count_key"), "{nan}");
    }
}
