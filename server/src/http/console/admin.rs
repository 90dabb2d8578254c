//! The administrator's pages: officers and their roles, enforcement certificates and their
//! status history, devices, the entity registry and its CSV import, the random-check matter
//! list, the working calendar, the settings the server runs with (read-only), and the database's
//! backup and check. Every page needs the `admin` role, checked here and again by the services,
//! which are the ones the JSON admin API calls.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{get, post};
use schemas::{Certificate, CertificateStatus, CertificateStatusChange};
use serde::Deserialize;
use sync_core::calendar::{Date, WorkingCalendar};

use super::{Chrome, Console, PageResult, Pagination, Posted, render, see_other, time};
use crate::http::AppState;
use crate::service::campaigns::registries;
use crate::service::{ApiError, admin, devices, now_ms};
use crate::store::{Device, Entity, Matter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/officers") }))
        .route("/admin/officers", get(officers_page).post(create_officer))
        .route("/admin/officers/roles", post(change_role))
        .route("/admin/certificates", get(certificates_page).post(issue_certificate))
        .route("/admin/certificates/{number}", get(certificate_page))
        .route("/admin/certificates/{number}/renew", post(renew_certificate))
        .route("/admin/certificates/{number}/status", post(change_status))
        .route("/admin/devices", get(devices_page))
        .route("/admin/devices/{device_id}/revoke", post(revoke_device))
        .route("/admin/entities", get(entities_page).post(import_entities))
        .route("/admin/matters", get(matters_page).post(import_matters))
        .route("/admin/calendar", get(calendar_page).post(put_calendar))
        .route("/admin/settings", get(settings_page))
        .route("/admin/operations", get(operations_page))
        .route("/admin/operations/backup", post(backup))
        .route("/admin/operations/check", post(check))
}

const ROLE: &[&str] = &["admin"];

/// A refusal the form's page shows above the form (with the status it is answered with), or
/// `None` when it is one the error page shows instead (a role, an internal error).
fn problem_of(error: &ApiError) -> Option<(StatusCode, String)> {
    match error {
        ApiError::Unprocessable { .. }
        | ApiError::Conflict { .. }
        | ApiError::BadRequest { .. }
        | ApiError::NotFound { .. } => {
            let (status, code) = error.status_and_code();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            Some((status, format!("{error} ({code})")))
        }
        _ => None,
    }
}

/// Renders `page`, answered with the problem's status when it shows one.
fn answer(page: &impl Template, console_lang: super::Lang, problem: &Option<(StatusCode, String)>) -> PageResult {
    let mut response = render(page, console_lang)?;
    if let Some((status, _)) = problem {
        *response.status_mut() = *status;
    }
    Ok(response)
}

/// The text of a problem, for the template.
fn text(problem: &Option<(StatusCode, String)>) -> Option<String> {
    problem.as_ref().map(|(_, text)| text.clone())
}

/// A day typed in a form (`YYYY-MM-DD`), or `invalid_form` naming the field.
fn form_date(name: &str, text: &str) -> Result<Date, ApiError> {
    text.trim()
        .parse::<Date>()
        .map_err(|_| ApiError::unprocessable("invalid_form", format!("{name}: {text:?} is not a day (YYYY-MM-DD)")))
}

/// An instant typed in a `datetime-local` field (`YYYY-MM-DDTHH:MM[:SS]`) in China Standard Time;
/// `None` when the field is empty.
fn form_instant(name: &str, text: &str) -> Result<Option<i64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || ApiError::unprocessable("invalid_form", format!("{name}: {text:?} is not a date and time"));
    let civil: jiff::civil::DateTime = text.parse().map_err(|_| invalid())?;
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8));
    let zoned = civil.to_zoned(zone).map_err(|_| invalid())?;
    Ok(Some(zoned.timestamp().as_millisecond()))
}

/// Now as a `datetime-local` field's value in China Standard Time.
fn now_local() -> String {
    time(now_ms()).replace(' ', "T")[..16].to_string()
}

/// The day of an instant in the bureau's time zone.
fn day(ms: i64) -> String {
    sync_core::campaigns::date_of_ms(ms).map(|d| d.to_string()).unwrap_or_default()
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    q: Option<String>,
}

// Officers and roles.

#[derive(Template)]
#[template(path = "console/admin/officers.html")]
struct OfficersPage {
    c: Chrome,
    officers: Vec<OfficerRow>,
    pages: Pagination,
    filter: String,
    roles: [&'static str; 4],
    problem: Option<String>,
}

struct OfficerRow {
    officer_id: String,
    name: String,
    unit: String,
    roles: String,
    password_pending: bool,
}

async fn officers_view(
    state: &AppState,
    console: Console,
    query: ListQuery,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    let filter = query.q.unwrap_or_default().trim().to_string();
    let mut all = admin::list_officers(state, &console.caller).await.map_err(|e| console.error(e))?;
    if !filter.is_empty() {
        all.retain(|a| a.officer_id.contains(&filter) || a.name.contains(&filter) || a.unit.contains(&filter));
    }
    all.sort_by(|a, b| a.officer_id.cmp(&b.officer_id));
    let pages = Pagination::new(query.page, all.len());
    let officers = pages
        .slice(&all)
        .iter()
        .map(|a| OfficerRow {
            officer_id: a.officer_id.clone(),
            name: a.name.clone(),
            unit: a.unit.clone(),
            roles: a.roles.join(", "),
            password_pending: a.must_change_password,
        })
        .collect();
    let lang = console.chrome.lang;
    let page =
        OfficersPage { c: console.chrome, officers, pages, filter, roles: admin::ROLES, problem: text(&problem) };
    answer(&page, lang, &problem)
}

async fn officers_page(State(state): State<AppState>, console: Console, Query(query): Query<ListQuery>) -> PageResult {
    officers_view(&state, console, query, None).await
}

#[derive(Template)]
#[template(path = "console/admin/officer_created.html")]
struct OfficerCreatedPage {
    c: Chrome,
    officer_id: String,
    password: String,
}

/// Creates an officer's account; the result page shows its one-time password, once.
async fn create_officer(
    State(state): State<AppState>,
    Posted { console, form }: Posted<Vec<(String, String)>>,
) -> PageResult {
    console.require(ROLE)?;
    let value =
        |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let roles: Vec<String> = form.iter().filter(|(n, _)| n == "roles").map(|(_, v)| v.trim().to_string()).collect();
    let officer =
        admin::NewOfficer { officer_id: value("officer_id"), name: value("name"), unit: value("unit"), roles };
    let officer_id = officer.officer_id.clone();
    match admin::create_officer(&state, &console.caller, officer).await {
        Ok(password) => {
            let lang = console.chrome.lang;
            render(&OfficerCreatedPage { c: console.chrome, officer_id, password }, lang)
        }
        Err(error) => match problem_of(&error) {
            Some(problem) => officers_view(&state, console, ListQuery::default(), Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

#[derive(Deserialize)]
struct RoleForm {
    officer_id: String,
    role: String,
    /// `grant` or `revoke`: the button pressed.
    action: String,
}

/// Grants or revokes a role.
async fn change_role(State(state): State<AppState>, Posted { console, form }: Posted<RoleForm>) -> PageResult {
    console.require(ROLE)?;
    let change =
        admin::RoleChange { officer_id: form.officer_id.trim().to_string(), role: form.role.trim().to_string() };
    let done = match form.action.as_str() {
        "grant" => admin::grant_role(&state, &console.caller, change).await,
        "revoke" => admin::revoke_role(&state, &console.caller, change).await,
        other => Err(ApiError::unprocessable("invalid_form", format!("action {other:?} is not grant or revoke"))),
    };
    match done {
        Ok(()) => see_other(&format!("/admin/officers?q={}", urlencoding(&form.officer_id))),
        Err(error) => match problem_of(&error) {
            Some(problem) => officers_view(&state, console, ListQuery::default(), Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

/// `text` as a query string's value.
fn urlencoding(text: &str) -> String {
    serde_urlencoded::to_string([("", text.trim())]).unwrap_or_default().trim_start_matches('=').to_string()
}

// Certificates.

/// The status of a certificate at `at_ms`: that of its last change in effect then.
fn status_at(certificate: &Certificate, at_ms: i64) -> CertificateStatus {
    certificate
        .status_history
        .iter()
        .filter(|change| change.at_ms <= at_ms)
        .max_by_key(|change| change.at_ms)
        .map_or(CertificateStatus::Active, |change| change.status)
}

fn status_name(status: CertificateStatus) -> &'static str {
    match status {
        CertificateStatus::Active => "active",
        CertificateStatus::Suspended => "suspended",
        CertificateStatus::Revoked => "revoked",
        CertificateStatus::Surrendered => "surrendered",
    }
}

/// A certificate as a row: its validity by day and its status now.
struct CertificateRow {
    number: String,
    officer_id: String,
    authority: String,
    valid_from: String,
    valid_to: String,
    valid_now: bool,
    status: &'static str,
    changes: usize,
}

impl CertificateRow {
    fn of(certificate: &Certificate, now: i64) -> Self {
        CertificateRow {
            number: certificate.number.clone(),
            officer_id: certificate.officer_id.clone(),
            authority: certificate.issuing_authority.clone(),
            valid_from: day(certificate.valid_from_ms),
            valid_to: day(certificate.valid_until_ms - 1),
            valid_now: (certificate.valid_from_ms..certificate.valid_until_ms).contains(&now),
            status: status_name(status_at(certificate, now)),
            changes: certificate.status_history.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/admin/certificates.html")]
struct CertificatesPage {
    c: Chrome,
    certificates: Vec<CertificateRow>,
    pages: Pagination,
    filter: String,
    problem: Option<String>,
    today: String,
}

async fn certificates_view(
    state: &AppState,
    console: Console,
    query: ListQuery,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    let filter = query.q.unwrap_or_default().trim().to_string();
    let mut all = admin::list_certificates(state, &console.caller).await.map_err(|e| console.error(e))?;
    if !filter.is_empty() {
        all.retain(|c| c.number.contains(&filter) || c.officer_id.contains(&filter));
    }
    all.sort_by(|a, b| a.number.cmp(&b.number));
    let pages = Pagination::new(query.page, all.len());
    let now = now_ms();
    let certificates = pages.slice(&all).iter().map(|c| CertificateRow::of(c, now)).collect();
    let today = registries::today().map(|d| d.to_string()).unwrap_or_default();
    let lang = console.chrome.lang;
    let page = CertificatesPage { c: console.chrome, certificates, pages, filter, problem: text(&problem), today };
    answer(&page, lang, &problem)
}

async fn certificates_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ListQuery>,
) -> PageResult {
    certificates_view(&state, console, query, None).await
}

#[derive(Deserialize)]
struct IssueForm {
    number: String,
    officer_id: String,
    issuing_authority: String,
    valid_from: String,
    /// The last valid day.
    valid_to: String,
}

fn certificate_of(form: &IssueForm) -> Result<Certificate, ApiError> {
    let from = form_date("valid_from", &form.valid_from)?;
    let to = form_date("valid_to", &form.valid_to)?;
    let (valid_from_ms, _) = sync_core::campaigns::period_ms(from, from);
    let (_, valid_until_ms) = sync_core::campaigns::period_ms(to, to);
    Ok(Certificate {
        number: form.number.trim().to_string(),
        officer_id: form.officer_id.trim().to_string(),
        issuing_authority: form.issuing_authority.trim().to_string(),
        valid_from_ms,
        valid_until_ms,
        status_history: Vec::new(),
    })
}

/// Records a certificate issued to an officer.
async fn issue_certificate(State(state): State<AppState>, Posted { console, form }: Posted<IssueForm>) -> PageResult {
    console.require(ROLE)?;
    let issued = match certificate_of(&form) {
        Ok(certificate) => admin::issue_certificate(&state, &console.caller, certificate).await,
        Err(error) => Err(error),
    };
    match issued {
        Ok(certificate) => see_other(&format!("/admin/certificates/{}", certificate.number)),
        Err(error) => match problem_of(&error) {
            Some(problem) => certificates_view(&state, console, ListQuery::default(), Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

#[derive(Template)]
#[template(path = "console/admin/certificate.html")]
struct CertificatePage {
    c: Chrome,
    row: CertificateRow,
    history: Vec<ChangeRow>,
    problem: Option<String>,
    now: String,
    statuses: [&'static str; 4],
}

struct ChangeRow {
    at: String,
    status: &'static str,
    reason: String,
    in_effect: bool,
}

fn change_row(change: &CertificateStatusChange, now: i64) -> ChangeRow {
    ChangeRow {
        at: time(change.at_ms),
        status: status_name(change.status),
        reason: change.reason.clone().unwrap_or_default(),
        in_effect: change.at_ms <= now,
    }
}

async fn certificate_view(
    state: &AppState,
    console: Console,
    number: String,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    let certificate = admin::certificate(state, &console.caller, number).await.map_err(|e| console.error(e))?;
    let now = now_ms();
    let history = certificate.status_history.iter().map(|c| change_row(c, now)).collect();
    let lang = console.chrome.lang;
    let page = CertificatePage {
        c: console.chrome,
        row: CertificateRow::of(&certificate, now),
        history,
        problem: text(&problem),
        now: now_local(),
        statuses: ["suspended", "revoked", "surrendered", "active"],
    };
    answer(&page, lang, &problem)
}

async fn certificate_page(State(state): State<AppState>, console: Console, Path(number): Path<String>) -> PageResult {
    certificate_view(&state, console, number, None).await
}

#[derive(Deserialize)]
struct RenewForm {
    /// The new last valid day.
    valid_to: String,
}

/// Moves a certificate's end of validity to the end of the day given.
async fn renew_certificate(
    State(state): State<AppState>,
    Path(number): Path<String>,
    Posted { console, form }: Posted<RenewForm>,
) -> PageResult {
    console.require(ROLE)?;
    let renewed = match form_date("valid_to", &form.valid_to) {
        Ok(to) => {
            let (_, until) = sync_core::campaigns::period_ms(to, to);
            admin::renew_certificate(&state, &console.caller, number.clone(), until).await
        }
        Err(error) => Err(error),
    };
    certificate_answer(&state, console, number, renewed).await
}

/// After a certificate's form: back to its page, or its page with the problem.
async fn certificate_answer(
    state: &AppState,
    console: Console,
    number: String,
    done: Result<Certificate, ApiError>,
) -> PageResult {
    match done {
        Ok(_) => see_other(&format!("/admin/certificates/{}", urlencoding(&number))),
        Err(ApiError::NotFound { what }) => Err(console.error(ApiError::NotFound { what })),
        Err(error) => match problem_of(&error) {
            Some(problem) => certificate_view(state, console, number, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    /// When it takes effect (`datetime-local`, China Standard Time); now when empty.
    #[serde(default)]
    at: String,
    #[serde(default)]
    reason: String,
}

fn status_of(form: &StatusForm) -> Result<(CertificateStatus, Option<i64>, Option<String>), ApiError> {
    let status = match form.status.as_str() {
        "active" => CertificateStatus::Active,
        "suspended" => CertificateStatus::Suspended,
        "revoked" => CertificateStatus::Revoked,
        "surrendered" => CertificateStatus::Surrendered,
        other => return Err(ApiError::unprocessable("invalid_form", format!("status {other:?} is not a status"))),
    };
    let at = form_instant("at", &form.at)?;
    let reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
    Ok((status, at, reason))
}

/// Records a change of a certificate's status (suspension, revocation, surrender,
/// reinstatement) from the time given.
async fn change_status(
    State(state): State<AppState>,
    Path(number): Path<String>,
    Posted { console, form }: Posted<StatusForm>,
) -> PageResult {
    console.require(ROLE)?;
    let changed = match status_of(&form) {
        Ok((status, at, reason)) => {
            admin::change_certificate_status(&state, &console.caller, number.clone(), status, at, reason).await
        }
        Err(error) => Err(error),
    };
    certificate_answer(&state, console, number, changed).await
}

// Devices.

#[derive(Template)]
#[template(path = "console/admin/devices.html")]
struct DevicesPage {
    c: Chrome,
    devices: Vec<DeviceRow>,
    pages: Pagination,
    filter: String,
    problem: Option<String>,
}

struct DeviceRow {
    device_id: String,
    officer_id: String,
    enrolled_at: String,
    revoked_at: Option<String>,
}

async fn devices_view(
    state: &AppState,
    console: Console,
    query: ListQuery,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    let filter = query.q.unwrap_or_default().trim().to_string();
    let mut all: Vec<Device> = devices::list(state, &console.caller).await.map_err(|e| console.error(e))?;
    if !filter.is_empty() {
        all.retain(|d| d.device_id.contains(&filter) || d.officer_id.contains(&filter));
    }
    // Devices in use first, then by officer and enrolment.
    all.sort_by(|a, b| {
        (a.revoked_at_ms.is_some(), &a.officer_id, a.enrolled_at_ms).cmp(&(
            b.revoked_at_ms.is_some(),
            &b.officer_id,
            b.enrolled_at_ms,
        ))
    });
    let pages = Pagination::new(query.page, all.len());
    let devices = pages
        .slice(&all)
        .iter()
        .map(|d| DeviceRow {
            device_id: d.device_id.clone(),
            officer_id: d.officer_id.clone(),
            enrolled_at: time(d.enrolled_at_ms),
            revoked_at: d.revoked_at_ms.map(time),
        })
        .collect();
    let lang = console.chrome.lang;
    let page = DevicesPage { c: console.chrome, devices, pages, filter, problem: text(&problem) };
    answer(&page, lang, &problem)
}

async fn devices_page(State(state): State<AppState>, console: Console, Query(query): Query<ListQuery>) -> PageResult {
    devices_view(&state, console, query, None).await
}

#[derive(Deserialize)]
struct Nothing {}

/// Revokes a device at once; its sessions end with it.
async fn revoke_device(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    Posted { console, .. }: Posted<Nothing>,
) -> PageResult {
    console.require(ROLE)?;
    match devices::revoke(&state, &console.caller, device_id).await {
        Ok(_) => see_other("/admin/devices"),
        Err(error) => match problem_of(&error) {
            Some(problem) => devices_view(&state, console, ListQuery::default(), Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

// The entity registry.

#[derive(Template)]
#[template(path = "console/admin/entities.html")]
struct EntitiesPage {
    c: Chrome,
    total: usize,
    entities: Vec<Entity>,
    pages: Pagination,
    filter: String,
    imported: Option<usize>,
    csv: String,
    problem: Option<String>,
    /// The bad lines of a refused import.
    problems: Vec<CsvLine>,
}

/// One bad line of a refused CSV import, as the API reports it.
#[derive(Deserialize)]
struct CsvLine {
    line: usize,
    #[serde(default)]
    column: Option<usize>,
    #[serde(default)]
    field: Option<String>,
    problem: String,
}

#[derive(Deserialize, Default)]
struct EntitiesQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    imported: Option<usize>,
}

struct Import {
    csv: String,
    problem: Option<(StatusCode, String)>,
    problems: Vec<CsvLine>,
}

async fn entities_view(state: &AppState, console: Console, query: EntitiesQuery, import: Import) -> PageResult {
    console.require(ROLE)?;
    let filter = query.q.unwrap_or_default().trim().to_string();
    let mut all = admin::entities(state, &console.caller).await.map_err(|e| console.error(e))?;
    let total = all.len();
    if !filter.is_empty() {
        let lower = filter.to_lowercase();
        all.retain(|e| {
            e.entity_id.to_lowercase().contains(&lower)
                || e.name.contains(&filter)
                || e.credit_code.to_lowercase().contains(&lower)
        });
    }
    let pages = Pagination::new(query.page, all.len());
    let entities = pages.slice(&all).to_vec();
    let lang = console.chrome.lang;
    let page = EntitiesPage {
        c: console.chrome,
        total,
        entities,
        pages,
        filter,
        imported: query.imported,
        csv: import.csv,
        problem: text(&import.problem),
        problems: import.problems,
    };
    answer(&page, lang, &import.problem)
}

async fn entities_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<EntitiesQuery>,
) -> PageResult {
    entities_view(&state, console, query, Import { csv: String::new(), problem: None, problems: Vec::new() }).await
}

#[derive(Deserialize)]
struct CsvForm {
    csv: String,
}

/// Imports the registry from pasted CSV, as `POST /v1/admin/entities` does: any bad line refuses
/// the whole file, and the page lists every bad line by line and column.
async fn import_entities(State(state): State<AppState>, Posted { console, form }: Posted<CsvForm>) -> PageResult {
    console.require(ROLE)?;
    match admin::import_entities(&state, &console.caller, form.csv.as_bytes()).await {
        Ok(count) => see_other(&format!("/admin/entities?imported={count}")),
        Err(error) => {
            let Some(problem) = problem_of(&error) else { return Err(console.error(error)) };
            let problems = match &error {
                ApiError::Unprocessable { details: Some(details), .. } => {
                    serde_json::from_value(details["problems"].clone()).unwrap_or_default()
                }
                _ => Vec::new(),
            };
            let import = Import { csv: form.csv, problem: Some(problem), problems };
            entities_view(&state, console, EntitiesQuery::default(), import).await
        }
    }
}

// The matter list.

#[derive(Template)]
#[template(path = "console/admin/matters.html")]
struct MattersPage {
    c: Chrome,
    note: String,
    matters: Vec<Matter>,
    imported: Option<usize>,
    json: String,
    problem: Option<String>,
}

#[derive(Deserialize, Default)]
struct ImportedQuery {
    #[serde(default)]
    imported: Option<usize>,
}

async fn matters_view(
    state: &AppState,
    console: Console,
    imported: Option<usize>,
    json: String,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    let (note, matters) = match registries::public_matters(state).await {
        Ok(list) => (list.note, list.matters),
        Err(ApiError::NotFound { .. }) => (String::new(), Vec::new()),
        Err(error) => return Err(console.error(error)),
    };
    let lang = console.chrome.lang;
    let page = MattersPage { c: console.chrome, note, matters, imported, json, problem: text(&problem) };
    answer(&page, lang, &problem)
}

async fn matters_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ImportedQuery>,
) -> PageResult {
    matters_view(&state, console, query.imported, String::new(), None).await
}

#[derive(Deserialize)]
struct MattersForm {
    matters: String,
}

/// Replaces the matter list with the pasted `matters.json`, as `POST /v1/admin/matters` does.
async fn import_matters(State(state): State<AppState>, Posted { console, form }: Posted<MattersForm>) -> PageResult {
    console.require(ROLE)?;
    // As the API reads its body: JSON, its integral numbers as integers.
    let matters =
        serde_json::from_str::<serde_json::Value>(&form.matters).map_err(|e| e.to_string()).map(|mut value| {
            crate::http::integral_numbers(&mut value);
            serde_json::to_vec(&value).unwrap_or_default()
        });
    match registries::import_matters(&state, &console.caller, matters).await {
        Ok(count) => see_other(&format!("/admin/matters?imported={count}")),
        Err(error) => match problem_of(&error) {
            Some(problem) => matters_view(&state, console, None, form.matters, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

// The working calendar.

#[derive(Template)]
#[template(path = "console/admin/calendar.html")]
struct CalendarPage {
    c: Chrome,
    year: String,
    calendar: Option<WorkingCalendar>,
    json: String,
    problem: Option<String>,
}

/// A year of the calendar as the API reads and writes it.
#[derive(serde::Serialize, Deserialize)]
struct CalendarYear {
    holidays: Vec<Date>,
    working_weekends: Vec<Date>,
}

#[derive(Deserialize, Default)]
struct YearQuery {
    #[serde(default)]
    year: Option<String>,
}

fn this_year() -> String {
    registries::today().map(|d| d.year().to_string()).unwrap_or_default()
}

async fn calendar_view(
    state: &AppState,
    console: Console,
    year: String,
    json: Option<String>,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    // A year that is not one: this year's page, with the problem.
    let (year, problem) = match year.parse::<i16>() {
        Ok(y) if (1..=9999).contains(&y) => (year, problem),
        _ => {
            let refused = ApiError::bad_request("invalid_year", format!("{year:?} is not a year"));
            (this_year(), problem.or_else(|| problem_of(&refused)))
        }
    };
    let calendar = match registries::calendar_year(state, &console.caller, &year).await {
        Ok(calendar) => Some(calendar),
        Err(ApiError::NotFound { .. }) => None,
        Err(error) => return Err(console.error(error)),
    };
    let json = json.unwrap_or_else(|| {
        let shown =
            calendar.as_ref().map_or(CalendarYear { holidays: Vec::new(), working_weekends: Vec::new() }, |c| {
                CalendarYear {
                    holidays: c.holidays.iter().copied().collect(),
                    working_weekends: c.working_weekends.iter().copied().collect(),
                }
            });
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    });
    let lang = console.chrome.lang;
    let page = CalendarPage { c: console.chrome, year, calendar, json, problem: text(&problem) };
    answer(&page, lang, &problem)
}

async fn calendar_page(State(state): State<AppState>, console: Console, Query(query): Query<YearQuery>) -> PageResult {
    let year = query.year.map(|y| y.trim().to_string()).filter(|y| !y.is_empty()).unwrap_or_else(this_year);
    calendar_view(&state, console, year, None, None).await
}

#[derive(Deserialize)]
struct CalendarForm {
    year: String,
    calendar: String,
}

/// Replaces a year of the calendar with the pasted JSON (`{"holidays": [...],
/// "working_weekends": [...]}`), as `PUT /v1/admin/calendar/{year}` does.
async fn put_calendar(State(state): State<AppState>, Posted { console, form }: Posted<CalendarForm>) -> PageResult {
    console.require(ROLE)?;
    let year = form.year.trim().to_string();
    let put = match serde_json::from_str::<CalendarYear>(&form.calendar) {
        Ok(shown) => {
            let calendar = WorkingCalendar {
                holidays: shown.holidays.into_iter().collect(),
                working_weekends: shown.working_weekends.into_iter().collect(),
            };
            registries::put_calendar_year(&state, &console.caller, &year, calendar).await
        }
        Err(e) => Err(ApiError::unprocessable("invalid_calendar", format!("not a calendar year: {e}"))),
    };
    match put {
        Ok(_) => see_other(&format!("/admin/calendar?year={}", urlencoding(&year))),
        Err(error) => match problem_of(&error) {
            Some(problem) => calendar_view(&state, console, year, Some(form.calendar), Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

// Settings.

#[derive(Template)]
#[template(path = "console/admin/settings.html")]
struct SettingsPage {
    c: Chrome,
    /// (what, value, where it is set)
    settings: Vec<(&'static str, String, &'static str)>,
}

fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// The bureau's settings the server runs with: read-only, from `serve`'s options.
async fn settings_page(State(state): State<AppState>, console: Console) -> PageResult {
    console.require(ROLE)?;
    let config = &state.config;
    let t = |zh: &'static str, en: &'static str| console.t(zh, en);
    let fixed = t("内置默认值（Config::new）", "built-in default (Config::new)");
    let seconds = |d: std::time::Duration| format!("{} s", d.as_secs());
    let settings = vec![
        (t("数据目录", "Data folder"), config.data_dir.display().to_string(), "--data / FIELDSYNC_DATA"),
        (
            t("透明日志来源名", "Transparency log origin"),
            config.log_origin.clone(),
            "--log-origin / FIELDSYNC_LOG_ORIGIN",
        ),
        (t("检查组最多人数", "Most officers on a team"), config.max_team_size.to_string(), fixed),
        (
            t("抽查活动每个列表最多项数", "Most items in a campaign's lists"),
            config.max_campaign_list_items.to_string(),
            fixed,
        ),
        (t("每名人员最多设备数", "Devices per officer"), config.max_devices_per_officer.to_string(), fixed),
        (
            t("每名人员未用的登记挑战数", "Open enrolment challenges per officer"),
            config.max_open_challenges_per_officer.to_string(),
            fixed,
        ),
        (t("请求体上限（同步、导入）", "Largest body (sync, imports)"), bytes(config.max_body_bytes as u64), fixed),
        (t("表单请求体上限", "Largest form body"), bytes(config.max_form_body_bytes as u64), fixed),
        (t("登录等小请求体上限", "Largest small body (login, ...)"), bytes(config.max_small_body_bytes as u64), fixed),
        (
            t("请求体内存总量上限", "Request bodies in memory, all together"),
            bytes(config.max_body_memory_bytes as u64),
            "--max-body-memory-mib / FIELDSYNC_MAX_BODY_MEMORY_MIB",
        ),
        (
            t("每个刷新令牌每分钟尝试次数", "Refresh attempts per token per minute"),
            config.auth_attempts_per_minute.to_string(),
            "--auth-attempts-per-minute / FIELDSYNC_AUTH_ATTEMPTS_PER_MINUTE",
        ),
        (
            t("每个地址每分钟登录次数", "Login attempts per address per minute"),
            config.auth_attempts_per_minute_per_address.to_string(),
            "--auth-attempts-per-minute-per-address / FIELDSYNC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS",
        ),
        (
            t("密码连续错误免等待次数", "Failed passwords before backing off"),
            config.auth_free_failures.to_string(),
            fixed,
        ),
        (
            t("密码错误等待（首次 / 最长）", "Password back-off (first / longest)"),
            format!("{} ms / {} ms", config.auth_backoff_base_ms, config.auth_backoff_max_ms),
            fixed,
        ),
        (t("单个附件上限", "Largest blob"), bytes(config.max_blob_bytes), fixed),
        (t("每台设备未完成上传数", "Unfinished uploads per device"), config.max_uploads_per_device.to_string(), fixed),
        (
            t("未完成上传的保留时间", "Unfinished upload kept for"),
            format!("{} h", config.upload_expiry_ms / 3_600_000),
            fixed,
        ),
        (t("每次同步最多笔录数", "Records per sync"), config.max_documents_per_sync.to_string(), fixed),
        (t("每条笔录最多修改块数", "Change chunks per record"), config.max_changes_per_document.to_string(), fixed),
        (t("设备时钟允许超前", "Device clock allowed ahead"), format!("{} s", config.max_clock_skew_ms / 1000), fixed),
        (
            t("每次上传执法日志条数", "Enforcement-log entries per upload"),
            config.max_log_entries_per_upload.to_string(),
            fixed,
        ),
        (t("执法日志单条大小上限", "Largest enforcement-log entry"), bytes(config.max_log_payload_bytes as u64), fixed),
        (t("公开页面每页条数", "Public page size"), config.max_public_page.to_string(), fixed),
        (
            t("请求头超时", "Request head timeout"),
            seconds(config.header_read_timeout),
            "--header-read-timeout-s / FIELDSYNC_HEADER_READ_TIMEOUT_S",
        ),
        (
            t("请求体超时", "Request body timeout"),
            seconds(config.body_read_timeout),
            "--body-read-timeout-s / FIELDSYNC_BODY_READ_TIMEOUT_S",
        ),
        (
            t("空闲连接超时", "Idle connection timeout"),
            seconds(config.idle_timeout),
            "--idle-timeout-s / FIELDSYNC_IDLE_TIMEOUT_S",
        ),
        (
            t("每个地址最多连接数", "Connections per address"),
            config.max_connections_per_address.to_string(),
            "--max-connections-per-address / FIELDSYNC_MAX_CONNECTIONS_PER_ADDRESS",
        ),
        (
            t("HTTPS", "HTTPS"),
            if config.tls.is_some() {
                t("由本服务提供", "served by this server")
            } else {
                t("否（由代理提供或未用）", "no (a proxy's, or none)")
            }
            .to_string(),
            "--tls-cert, --tls-key / FIELDSYNC_TLS_CERT, FIELDSYNC_TLS_KEY",
        ),
        (
            t("/metrics", "/metrics"),
            match (config.metrics_on_api, config.metrics_token.is_some()) {
                (true, true) => t("本地址，需令牌", "on this address, with a token"),
                (true, false) => t("本地址", "on this address"),
                (false, _) => t("不在本地址", "not on this address"),
            }
            .to_string(),
            "--metrics-listen, --metrics-token / FIELDSYNC_METRICS_LISTEN, FIELDSYNC_METRICS_TOKEN",
        ),
    ];
    let lang = console.chrome.lang;
    render(&SettingsPage { c: console.chrome, settings }, lang)
}

// Backup and check.

#[derive(Template)]
#[template(path = "console/admin/operations.html")]
struct OperationsPage {
    c: Chrome,
    backup: Option<(String, String)>,
    check: Option<CheckView>,
}

struct CheckView {
    ok: bool,
    /// (ok, line)
    lines: Vec<(bool, String)>,
}

fn check_view(report: &admin::CheckReport) -> CheckView {
    let mut lines = Vec::new();
    // SQLite's integrity check lists problems; none (or its one `ok`) is a sound database.
    let database_ok = report.database.iter().all(|l| l == "ok");
    let database = if database_ok { "integrity check passed".to_string() } else { report.database.join("; ") };
    lines.push((database_ok, format!("database: {database}")));
    lines.push((
        report.blobs.is_empty(),
        format!("blobs: {} checked, {} problems", report.blobs_checked, report.blobs.len()),
    ));
    for blob in &report.blobs {
        lines.push((false, format!("blob {}: {}", blob.sha256, blob.problem)));
    }
    lines.push((
        report.records.is_empty(),
        format!("records: {} checked, {} problems", report.records_checked, report.records.len()),
    ));
    for record in &report.records {
        lines.push((false, format!("record {}: {}", record.record_id, record.problem)));
    }
    lines.push((
        report.transparency_log.is_empty(),
        format!("transparency log: {} problems", report.transparency_log.len()),
    ));
    for problem in &report.transparency_log {
        lines.push((false, format!("transparency log: {problem}")));
    }
    CheckView { ok: report.ok, lines }
}

async fn operations_page(console: Console) -> PageResult {
    console.require(ROLE)?;
    let lang = console.chrome.lang;
    render(&OperationsPage { c: console.chrome, backup: None, check: None }, lang)
}

/// Copies the database into the data folder's `backups/`; the page shows the file and its size.
async fn backup(State(state): State<AppState>, Posted { console, .. }: Posted<Nothing>) -> PageResult {
    console.require(ROLE)?;
    let (path, size) = admin::backup(&state, &console.caller).await.map_err(|e| console.error(e))?;
    let lang = console.chrome.lang;
    let backup = Some((path.display().to_string(), format!("{size} B ({})", bytes_rounded(size))));
    render(&OperationsPage { c: console.chrome, backup, check: None }, lang)
}

fn bytes_rounded(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

/// Checks the database, the blobs' files and the transparency log; the page shows each line.
async fn check(State(state): State<AppState>, Posted { console, .. }: Posted<Nothing>) -> PageResult {
    console.require(ROLE)?;
    let report = admin::check_all(&state, &console.caller).await.map_err(|e| console.error(e))?;
    let lang = console.chrome.lang;
    render(&OperationsPage { c: console.chrome, backup: None, check: Some(check_view(&report)) }, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_form_covers_whole_days_in_china_time() {
        let form = IssueForm {
            number: " GX1 ".into(),
            officer_id: "O1".into(),
            issuing_authority: "广西".into(),
            valid_from: "2026-01-01".into(),
            valid_to: "2026-12-31".into(),
        };
        let certificate = certificate_of(&form).unwrap();
        assert_eq!(certificate.number, "GX1");
        assert_eq!(time(certificate.valid_from_ms), "2026-01-01 00:00:00");
        assert_eq!(time(certificate.valid_until_ms), "2027-01-01 00:00:00");
        let bad = certificate_of(&IssueForm { valid_to: "31/12/2026".into(), ..form }).err().unwrap();
        assert_eq!(bad.status_and_code(), (422, "invalid_form"));
    }

    #[test]
    fn a_status_form_reads_its_time_in_china_time_and_now_when_empty() {
        let form = StatusForm { status: "suspended".into(), at: "2026-12-03T09:30".into(), reason: " 停职 ".into() };
        let (status, at, reason) = status_of(&form).unwrap();
        assert_eq!(status, CertificateStatus::Suspended);
        assert_eq!(time(at.unwrap()), "2026-12-03 09:30:00");
        assert_eq!(reason.as_deref(), Some("停职"));
        let now = StatusForm { status: "active".into(), at: " ".into(), reason: String::new() };
        assert_eq!(status_of(&now).unwrap(), (CertificateStatus::Active, None, None));
        let bad = StatusForm { status: "gone".into(), at: String::new(), reason: String::new() };
        assert_eq!(status_of(&bad).err().unwrap().status_and_code(), (422, "invalid_form"));
        let bad_time = StatusForm { status: "active".into(), at: "yesterday".into(), reason: String::new() };
        assert_eq!(status_of(&bad_time).err().unwrap().status_and_code(), (422, "invalid_form"));
    }

    #[test]
    fn the_status_now_is_the_last_change_in_effect() {
        let change = |at_ms, status| CertificateStatusChange { at_ms, status, reason: None };
        let certificate = Certificate {
            number: "N".into(),
            officer_id: "O".into(),
            issuing_authority: "A".into(),
            valid_from_ms: 0,
            valid_until_ms: 100,
            status_history: vec![change(10, CertificateStatus::Suspended), change(50, CertificateStatus::Active)],
        };
        assert_eq!(status_at(&certificate, 5), CertificateStatus::Active);
        assert_eq!(status_at(&certificate, 20), CertificateStatus::Suspended);
        assert_eq!(status_at(&certificate, 60), CertificateStatus::Active);
    }
}
