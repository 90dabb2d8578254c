//! The registries random inspection draws from, as the admin API and supervisors read and
//! replace them: the random-check matter list (public), the entity registry's history, the
//! bureau's working-day calendar and the inspector registry (执法检查人员名录库).

use sync_core::calendar::{Date, WorkingCalendar};

use super::{check_calendar_year, parse_matters};
use crate::service::auth::Caller;
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{EntityChange, MatterList};

/// Today in the bureau's time zone.
pub fn today() -> ApiResult<Date> {
    sync_core::campaigns::date_of_ms(now_ms()).ok_or_else(|| ApiError::Internal("the clock is out of range".into()))
}

/// `text` as a day, `YYYY-MM-DD`; else `invalid_query`, naming `field`.
pub fn parse_date(field: &str, text: &str) -> ApiResult<Date> {
    text.parse::<Date>()
        .map_err(|_| ApiError::bad_request("invalid_query", format!("{field} {text:?} is not YYYY-MM-DD")))
}

/// The random-check matter list (U1: it is public).
pub async fn public_matters(context: &Context) -> ApiResult<MatterList> {
    let mut list =
        context.blocking(|store| store.matters()).await?.ok_or(ApiError::NotFound { what: "matter list" })?;
    // A list imported before ratios were required to be an object may hold `null`.
    if !list.ratios.is_object() {
        list.ratios = serde_json::Value::Object(serde_json::Map::new());
    }
    Ok(list)
}

/// Replaces the random-check matter list: for admins. `matters` is the body read as JSON (with
/// its integral numbers as integers), or why it is not JSON; how many matters the list holds.
pub async fn import_matters(context: &Context, caller: &Caller, matters: Result<Vec<u8>, String>) -> ApiResult<usize> {
    caller.require(&["admin"])?;
    let invalid = |e: String| ApiError::unprocessable("invalid_matters", e);
    let matters = matters.map_err(|e| invalid(format!("not a matter list: {e}")))?;
    let list = parse_matters(&matters).map_err(invalid)?;
    let (by, now) = (caller.officer_id.clone(), now_ms());
    context.blocking(move |store| store.import_matters(&list, &by, now)).await
}

/// An entity's history in the registry: every import that added or changed it.
pub async fn entity_history(context: &Context, caller: &Caller, entity_id: String) -> ApiResult<Vec<EntityChange>> {
    caller.require(&["admin", "supervisor"])?;
    let history = context.blocking(move |store| store.entity_history(&entity_id)).await?;
    if history.is_empty() {
        return Err(ApiError::NotFound { what: "entity" });
    }
    Ok(history)
}

fn year_of(text: &str) -> ApiResult<i16> {
    text.parse::<i16>()
        .ok()
        .filter(|y| (1..=9999).contains(y))
        .ok_or_else(|| ApiError::bad_request("invalid_year", format!("{text:?} is not a year")))
}

/// A year of the bureau's working-day calendar: for admins and supervisors.
pub async fn calendar_year(context: &Context, caller: &Caller, year: &str) -> ApiResult<WorkingCalendar> {
    caller.require(&["admin", "supervisor"])?;
    let year = year_of(year)?;
    let calendar = context.blocking(move |store| store.calendar_year(year)).await?;
    calendar.ok_or(ApiError::NotFound { what: "calendar year" })
}

/// Replaces a year of the bureau's working-day calendar: for admins.
pub async fn put_calendar_year(
    context: &Context,
    caller: &Caller,
    year: &str,
    calendar: WorkingCalendar,
) -> ApiResult<WorkingCalendar> {
    caller.require(&["admin"])?;
    let year = year_of(year)?;
    check_calendar_year(year, &calendar).map_err(|e| ApiError::unprocessable("invalid_calendar", e))?;
    let (by, now, stored) = (caller.officer_id.clone(), now_ms(), calendar.clone());
    context.blocking(move |store| store.put_calendar_year(year, &stored, &by, now)).await?;
    Ok(calendar)
}

/// An officer certified throughout a period, with their account's name and unit and the
/// certificates that certify them: what the inspector registry and the public list both read.
struct Certified {
    officer_id: String,
    name: String,
    unit: String,
    certificates: Vec<schemas::Certificate>,
}

/// The officers holding a certificate valid from `from_ms` to `until_ms`, in officer id order.
fn certified_officers(
    store: &dyn crate::store::Store,
    from_ms: i64,
    until_ms: i64,
) -> crate::store::StoreResult<Vec<Certified>> {
    let certificates = store.certificates(None)?;
    let accounts = store.accounts()?;
    let eligible = sync_core::campaigns::eligible_officers(&certificates, from_ms, until_ms);
    Ok(eligible
        .into_iter()
        .map(|officer_id| {
            let account = accounts.iter().find(|a| a.officer_id == officer_id);
            Certified {
                name: account.map(|a| a.name.clone()).unwrap_or_default(),
                unit: account.map(|a| a.unit.clone()).unwrap_or_default(),
                certificates: certificates
                    .iter()
                    .filter(|c| {
                        c.officer_id == officer_id && sync_core::campaigns::certified_throughout(c, from_ms, until_ms)
                    })
                    .cloned()
                    .collect(),
                officer_id,
            }
        })
        .collect())
}

/// An enforcement officer as the public sees them (U1): name, unit, and the numbers of the
/// certificates valid today, by the issuing authority. Nothing else of the account is shown.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PublicOfficer {
    pub name: String,
    pub unit: String,
    /// (certificate number, issuing authority, last valid day), for each certificate valid today.
    pub certificates: Vec<(String, String, String)>,
}

/// The officers holding a certificate valid today (U1: they are public), by unit and name.
pub async fn public_officers(context: &Context) -> ApiResult<Vec<PublicOfficer>> {
    let today = today()?;
    let (from_ms, until_ms) = sync_core::campaigns::period_ms(today, today);
    let mut officers: Vec<PublicOfficer> = context
        .blocking(move |store| certified_officers(store, from_ms, until_ms))
        .await?
        .into_iter()
        .map(|officer| PublicOfficer {
            name: officer.name,
            unit: officer.unit,
            certificates: officer
                .certificates
                .into_iter()
                .map(|c| {
                    let last_day = sync_core::campaigns::date_of_ms(c.valid_until_ms - 1)
                        .map(|d| d.to_string())
                        .unwrap_or_default();
                    (c.number, c.issuing_authority, last_day)
                })
                .collect(),
        })
        .collect();
    officers.sort_by(|a, b| (&a.unit, &a.name).cmp(&(&b.unit, &b.name)));
    Ok(officers)
}

/// An officer of the inspector registry.
pub struct Inspector {
    pub officer_id: String,
    pub name: String,
    pub unit: String,
    /// Numbers of the certificates valid over the whole period.
    pub certificates: Vec<String>,
    /// The entities the officer is recused from, each with the ground.
    pub recusals: Vec<(String, String)>,
}

/// The inspector registry: officers with a certificate valid over the days from `at` (today when
/// absent) to `until` (`at` when absent), their unit and their recusals. For supervisors.
pub async fn inspectors(
    context: &Context,
    caller: &Caller,
    at: Option<String>,
    until: Option<String>,
) -> ApiResult<Vec<Inspector>> {
    caller.require(&["supervisor"])?;
    let at = match &at {
        Some(text) => parse_date("at", text)?,
        None => today()?,
    };
    let until = match &until {
        Some(text) => parse_date("until", text)?,
        None => at,
    };
    if until < at {
        return Err(ApiError::bad_request("invalid_query", "until is before at"));
    }
    let (from_ms, until_ms) = sync_core::campaigns::period_ms(at, until);
    let (officers, recusals) =
        context.blocking(move |store| Ok((certified_officers(store, from_ms, until_ms)?, store.recusals()?))).await?;
    let inspectors = officers
        .into_iter()
        .map(|officer| Inspector {
            certificates: officer.certificates.into_iter().map(|c| c.number).collect(),
            recusals: recusals
                .iter()
                .filter(|(o, _, _)| *o == officer.officer_id)
                .map(|(_, entity_id, ground)| (entity_id.clone(), ground.clone()))
                .collect(),
            officer_id: officer.officer_id,
            name: officer.name,
            unit: officer.unit,
        })
        .collect();
    Ok(inspectors)
}
