//! The admin API: officers, roles, certificates, the entity registry and recusals.
//! Every operation here is also an admin subcommand of the binary.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use schemas::{Certificate, CertificateStatus, CertificateStatusChange};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::admin::{self, ROLES};
use crate::error::{ApiError, ApiResult};
use crate::identity::{self, Caller};
use crate::store::Account;
use crate::{AppState, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/officers", post(create_officer).get(list_officers))
        .route("/v1/admin/roles", post(grant_role).delete(revoke_role))
        .route("/v1/admin/certificates", post(issue_certificate).get(list_certificates))
        .route("/v1/admin/certificates/{number}/renew", post(renew_certificate))
        .route("/v1/admin/certificates/{number}/status", post(change_certificate_status))
        .route("/v1/admin/entities", post(import_entities))
        .route("/v1/admin/recusals", post(add_recusal))
}

#[derive(Deserialize)]
pub struct NewOfficer {
    pub officer_id: String,
    pub name: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct CreatedOfficer {
    pub officer_id: String,
    /// Shown once; the officer must change it at first login.
    pub one_time_password: String,
}

fn check_roles(roles: &[String]) -> ApiResult<()> {
    match roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        Some(role) => Err(ApiError::unprocessable("unknown_role", format!("{role} is not one of {ROLES:?}"))),
        None => Ok(()),
    }
}

async fn create_officer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewOfficer>,
) -> ApiResult<Json<CreatedOfficer>> {
    caller.require(&["admin"])?;
    sync_core::input::identifier("officer_id", &request.officer_id)
        .and_then(|()| sync_core::input::short_text("name", &request.name))
        .map_err(|e| ApiError::unprocessable("invalid_officer", e.to_string()))?;
    let mut roles = request.roles.clone();
    if roles.is_empty() {
        roles.push("officer".into());
    }
    check_roles(&roles)?;
    let password = identity::one_time_password();
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || identity::hash_password(&password))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    };
    let account = Account {
        officer_id: request.officer_id.clone(),
        name: request.name,
        unit: request.unit,
        password_hash: Some(hash),
        must_change_password: true,
        roles,
    };
    let now = now_ms();
    state.blocking(move |store| store.create_account(account, now)).await?;
    Ok(Json(CreatedOfficer { officer_id: request.officer_id, one_time_password: password }))
}

#[derive(Serialize, Deserialize)]
pub struct OfficerView {
    pub officer_id: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
}

async fn list_officers(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<OfficerView>>> {
    caller.require(&["admin", "supervisor"])?;
    let accounts = state.blocking(|store| store.accounts()).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| OfficerView { officer_id: a.officer_id, name: a.name, unit: a.unit, roles: a.roles })
            .collect(),
    ))
}

#[derive(Deserialize)]
pub struct RoleChange {
    pub officer_id: String,
    pub role: String,
}

async fn grant_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RoleChange>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&["admin"])?;
    check_roles(std::slice::from_ref(&request.role))?;
    let officer = request.officer_id.clone();
    if state.blocking(move |store| store.account(&officer)).await?.is_none() {
        return Err(ApiError::NotFound { what: "officer" });
    }
    state.blocking(move |store| store.grant_role(&request.officer_id, &request.role)).await?;
    Ok(Json(serde_json::json!({ "status": "granted" })))
}

async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RoleChange>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&["admin"])?;
    state.blocking(move |store| store.revoke_role(&request.officer_id, &request.role)).await?;
    Ok(Json(serde_json::json!({ "status": "revoked" })))
}

async fn issue_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(certificate): ApiJson<Certificate>,
) -> ApiResult<Json<Certificate>> {
    caller.require(&["admin"])?;
    sync_core::input::identifier("number", &certificate.number)
        .map_err(|e| ApiError::unprocessable("invalid_certificate", e.to_string()))?;
    if certificate.valid_until_ms <= certificate.valid_from_ms {
        return Err(ApiError::unprocessable("invalid_certificate", "valid_until_ms must be after valid_from_ms"));
    }
    let officer = certificate.officer_id.clone();
    if state.blocking(move |store| store.account(&officer)).await?.is_none() {
        return Err(ApiError::NotFound { what: "officer" });
    }
    let stored = certificate.clone();
    let (by, now) = (caller.officer_id.clone(), now_ms());
    state.blocking(move |store| store.issue_certificate(&stored, &by, now)).await?;
    Ok(Json(certificate))
}

async fn list_certificates(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Certificate>>> {
    caller.require(&["admin", "supervisor", "reviewer"])?;
    Ok(Json(state.blocking(|store| store.certificates(None)).await?))
}

#[derive(Deserialize)]
pub struct Renewal {
    pub valid_until_ms: i64,
}

async fn renew_certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(request): ApiJson<Renewal>,
) -> ApiResult<Json<Certificate>> {
    caller.require(&["admin"])?;
    let n = number.clone();
    state.blocking(move |store| store.renew_certificate(&n, request.valid_until_ms)).await.map_err(not_found)?;
    let certificate = state.blocking(move |store| store.certificate(&number)).await?;
    certificate.map(Json).ok_or(ApiError::NotFound { what: "certificate" })
}

#[derive(Deserialize)]
pub struct StatusChange {
    pub status: CertificateStatus,
    /// When it takes effect; now when absent. Work timestamped after it is judged by it.
    #[serde(default)]
    pub at_ms: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

async fn change_certificate_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(request): ApiJson<StatusChange>,
) -> ApiResult<Json<Certificate>> {
    caller.require(&["admin"])?;
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let change =
        CertificateStatusChange { at_ms: request.at_ms.unwrap_or(now), status: request.status, reason: request.reason };
    let n = number.clone();
    state.blocking(move |store| store.change_certificate_status(&n, &change, &by, now)).await.map_err(not_found)?;
    let certificate = state.blocking(move |store| store.certificate(&number)).await?;
    certificate.map(Json).ok_or(ApiError::NotFound { what: "certificate" })
}

fn not_found(error: ApiError) -> ApiError {
    match error {
        ApiError::NotFound { .. } => ApiError::NotFound { what: "certificate" },
        other => other,
    }
}

/// Imports the entity registry from a CSV body (`text/csv`); any bad line refuses the whole file.
async fn import_entities(
    State(state): State<AppState>,
    caller: Caller,
    body: String,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&["admin"])?;
    let entities = admin::parse_entities_csv(&body).map_err(|problems| ApiError::Unprocessable {
        code: "invalid_csv",
        message: format!("{} bad line(s); nothing was imported", problems.len()),
        details: Some(serde_json::json!({ "problems": problems })),
    })?;
    let now = now_ms();
    let count = state.blocking(move |store| store.import_entities(&entities, now)).await?;
    Ok(Json(serde_json::json!({ "imported": count })))
}

#[derive(Deserialize)]
pub struct Recusal {
    pub officer_id: String,
    pub entity_id: String,
    pub ground: String,
}

async fn add_recusal(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<Recusal>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&["admin", "supervisor"])?;
    state.blocking(move |store| store.add_recusal(&request.officer_id, &request.entity_id, &request.ground)).await?;
    Ok(Json(serde_json::json!({ "status": "recorded" })))
}
