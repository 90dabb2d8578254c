//! The administrator's pages: officers and their roles, enforcement certificates and their
//! status history, devices, the entity registry and its CSV import, the random-check matter
//! list, the working calendar, the settings the server runs with (read-only), and the database's
//! backup and check. Every page needs the `admin` role, checked here and again by the services,
//! which are the ones the JSON admin API calls.

mod lists;
mod operations;
mod people;

use lists::*;
use operations::*;
use people::*;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{get, post};
use schemas::{Certificate, CertificateStatus, CertificateStatusChange};
use serde::Deserialize;
use sync_core::calendar::{Date, WorkingCalendar};

use super::{Chrome, Console, Nothing, PageResult, Pagination, Posted, day, render, see_other, time};
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
        .route("/admin/certificates/{number}/review", post(review_certificate))
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

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    q: Option<String>,
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
            periods: vec![],
            reviews: vec![],
        };
        assert_eq!(status_at(&certificate, 5), CertificateStatus::Active);
        assert_eq!(status_at(&certificate, 20), CertificateStatus::Suspended);
        assert_eq!(status_at(&certificate, 60), CertificateStatus::Active);
    }
}
