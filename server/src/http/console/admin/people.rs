//! The administrator's pages for people: officers and their roles, certificates and their status history, devices.

use super::*;

// Officers and roles.

#[derive(Template)]
#[template(path = "console/admin/officers.html")]
pub(super) struct OfficersPage {
    pub(super) c: Chrome,
    pub(super) officers: Vec<OfficerRow>,
    pub(super) pages: Pagination,
    pub(super) filter: String,
    pub(super) roles: [&'static str; 4],
    pub(super) problem: Option<String>,
}

pub(super) struct OfficerRow {
    pub(super) officer_id: String,
    pub(super) name: String,
    pub(super) unit: String,
    pub(super) roles: String,
    pub(super) password_pending: bool,
}

pub(super) async fn officers_view(
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

pub(super) async fn officers_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ListQuery>,
) -> PageResult {
    officers_view(&state, console, query, None).await
}

#[derive(Template)]
#[template(path = "console/admin/officer_created.html")]
pub(super) struct OfficerCreatedPage {
    pub(super) c: Chrome,
    pub(super) officer_id: String,
    pub(super) password: String,
}

/// Creates an officer's account; the result page shows its one-time password, once.
pub(super) async fn create_officer(
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
pub(super) struct RoleForm {
    pub(super) officer_id: String,
    pub(super) role: String,
    /// `grant` or `revoke`: the button pressed.
    pub(super) action: String,
}

/// Grants or revokes a role.
pub(super) async fn change_role(
    State(state): State<AppState>,
    Posted { console, form }: Posted<RoleForm>,
) -> PageResult {
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
pub(super) fn urlencoding(text: &str) -> String {
    serde_urlencoded::to_string([("", text.trim())]).unwrap_or_default().trim_start_matches('=').to_string()
}

// Certificates.

/// The status of a certificate at `at_ms`: that of its last change in effect then.
pub(super) fn status_at(certificate: &Certificate, at_ms: i64) -> CertificateStatus {
    certificate
        .status_history
        .iter()
        .filter(|change| change.at_ms <= at_ms)
        .max_by_key(|change| change.at_ms)
        .map_or(CertificateStatus::Active, |change| change.status)
}

pub(super) fn status_name(status: CertificateStatus) -> &'static str {
    match status {
        CertificateStatus::Active => "active",
        CertificateStatus::Suspended => "suspended",
        CertificateStatus::Revoked => "revoked",
        CertificateStatus::Surrendered => "surrendered",
    }
}

/// A certificate as a row: its validity by day and its status now.
pub(super) struct CertificateRow {
    pub(super) number: String,
    pub(super) officer_id: String,
    pub(super) authority: String,
    pub(super) valid_from: String,
    pub(super) valid_to: String,
    pub(super) valid_now: bool,
    pub(super) status: &'static str,
    pub(super) changes: usize,
    /// The day its periodic review falls due (P3), empty when it is no longer in use.
    pub(super) review_due: String,
    pub(super) review_overdue: bool,
    /// Each validity period by day: how it began, first and last valid day.
    pub(super) periods: Vec<(&'static str, String, String)>,
}

impl CertificateRow {
    pub(super) fn of(certificate: &Certificate, now: i64, review_period_ms: i64) -> Self {
        let due = sync_core::certificates::review_due_ms(certificate, review_period_ms, now);
        let periods = certificate
            .periods
            .iter()
            .map(|p| {
                let kind = match p.kind {
                    schemas::CertificatePeriodKind::Issued => "issued",
                    schemas::CertificatePeriodKind::Renewed => "renewed",
                };
                (kind, day(p.valid_from_ms), day(p.valid_until_ms - 1))
            })
            .collect();
        CertificateRow {
            number: certificate.number.clone(),
            officer_id: certificate.officer_id.clone(),
            authority: certificate.issuing_authority.clone(),
            valid_from: day(certificate.valid_from_ms),
            valid_to: day(certificate.valid_until_ms - 1),
            valid_now: sync_core::rules::validity_periods(certificate).iter().any(|(f, u)| (*f..*u).contains(&now)),
            status: status_name(status_at(certificate, now)),
            changes: certificate.status_history.len(),
            review_due: due.map(day).unwrap_or_default(),
            review_overdue: due.is_some_and(|due| due <= now),
            periods,
        }
    }
}

#[derive(Template)]
#[template(path = "console/admin/certificates.html")]
pub(super) struct CertificatesPage {
    pub(super) c: Chrome,
    pub(super) certificates: Vec<CertificateRow>,
    pub(super) pages: Pagination,
    pub(super) filter: String,
    pub(super) problem: Option<String>,
    pub(super) today: String,
}

pub(super) async fn certificates_view(
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
    let certificates = pages
        .slice(&all)
        .iter()
        .map(|c| CertificateRow::of(c, now, state.config.certificate_review_period_ms))
        .collect();
    let today = registries::today().map(|d| d.to_string()).unwrap_or_default();
    let lang = console.chrome.lang;
    let page = CertificatesPage { c: console.chrome, certificates, pages, filter, problem: text(&problem), today };
    answer(&page, lang, &problem)
}

pub(super) async fn certificates_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ListQuery>,
) -> PageResult {
    certificates_view(&state, console, query, None).await
}

#[derive(Deserialize)]
pub(super) struct IssueForm {
    pub(super) number: String,
    pub(super) officer_id: String,
    pub(super) issuing_authority: String,
    pub(super) valid_from: String,
    /// The last valid day.
    pub(super) valid_to: String,
}

pub(super) fn certificate_of(form: &IssueForm) -> Result<Certificate, ApiError> {
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
        periods: vec![],
        reviews: vec![],
    })
}

/// Records a certificate issued to an officer.
pub(super) async fn issue_certificate(
    State(state): State<AppState>,
    Posted { console, form }: Posted<IssueForm>,
) -> PageResult {
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
pub(super) struct CertificatePage {
    pub(super) c: Chrome,
    pub(super) row: CertificateRow,
    pub(super) history: Vec<ChangeRow>,
    pub(super) problem: Option<String>,
    pub(super) now: String,
    pub(super) statuses: [&'static str; 4],
}

pub(super) struct ChangeRow {
    pub(super) at: String,
    pub(super) status: &'static str,
    pub(super) reason: String,
    pub(super) in_effect: bool,
}

pub(super) fn change_row(change: &CertificateStatusChange, now: i64) -> ChangeRow {
    ChangeRow {
        at: time(change.at_ms),
        status: status_name(change.status),
        reason: change.reason.clone().unwrap_or_default(),
        in_effect: change.at_ms <= now,
    }
}

pub(super) async fn certificate_view(
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
        row: CertificateRow::of(&certificate, now, state.config.certificate_review_period_ms),
        history,
        problem: text(&problem),
        now: now_local(),
        statuses: ["suspended", "revoked", "surrendered", "active"],
    };
    answer(&page, lang, &problem)
}

pub(super) async fn certificate_page(
    State(state): State<AppState>,
    console: Console,
    Path(number): Path<String>,
) -> PageResult {
    certificate_view(&state, console, number, None).await
}

#[derive(Deserialize)]
pub(super) struct RenewForm {
    /// The new last valid day.
    pub(super) valid_to: String,
}

/// Moves a certificate's end of validity to the end of the day given.
pub(super) async fn renew_certificate(
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

#[derive(Deserialize)]
pub(super) struct ReviewForm {
    /// The day the review was passed; today when empty.
    #[serde(default)]
    pub(super) on: String,
    #[serde(default)]
    pub(super) note: String,
}

/// Records a periodic review (P3) passed on the day given.
pub(super) async fn review_certificate(
    State(state): State<AppState>,
    Path(number): Path<String>,
    Posted { console, form }: Posted<ReviewForm>,
) -> PageResult {
    console.require(ROLE)?;
    let note = Some(form.note.trim().to_string()).filter(|n| !n.is_empty());
    let reviewed = match form.on.trim() {
        "" => Ok(None),
        on => form_date("on", on).map(|d| Some(sync_core::campaigns::period_ms(d, d).0)),
    };
    let reviewed = match reviewed {
        Ok(at) => crate::service::certificates::review(&state, &console.caller, number.clone(), at, note).await,
        Err(error) => Err(error),
    };
    certificate_answer(&state, console, number, reviewed).await
}

/// After a certificate's form: back to its page, or its page with the problem.
pub(super) async fn certificate_answer(
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
pub(super) struct StatusForm {
    pub(super) status: String,
    /// When it takes effect (`datetime-local`, China Standard Time); now when empty.
    #[serde(default)]
    pub(super) at: String,
    #[serde(default)]
    pub(super) reason: String,
}

pub(super) fn status_of(form: &StatusForm) -> Result<(CertificateStatus, Option<i64>, Option<String>), ApiError> {
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
pub(super) async fn change_status(
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
pub(super) struct DevicesPage {
    pub(super) c: Chrome,
    pub(super) devices: Vec<DeviceRow>,
    pub(super) pages: Pagination,
    pub(super) filter: String,
    pub(super) problem: Option<String>,
}

pub(super) struct DeviceRow {
    pub(super) device_id: String,
    pub(super) officer_id: String,
    pub(super) enrolled_at: String,
    pub(super) revoked_at: Option<String>,
}

pub(super) async fn devices_view(
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

pub(super) async fn devices_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ListQuery>,
) -> PageResult {
    devices_view(&state, console, query, None).await
}

/// Revokes a device at once; its sessions end with it.
pub(super) async fn revoke_device(
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
