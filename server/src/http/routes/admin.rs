//! The admin API: officers, roles, certificates, the entity registry, recusals, and the
//! database's backup and check.
//! Every operation here is also an admin subcommand of the binary.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use schemas::{Certificate, CertificateStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::openapi::{
    self, AdminOnly, AdminOrSupervisor, CallerErrors, CertificateNotFound, CertificateSchema, CertificateStatusSchema,
    CheckReportSchema, ErrorBodySchema, JsonBodyErrors, OfficerNotFound, Unauthenticated, WriteErrors,
};
use crate::http::{ApiBytes, ApiJson, Status};
use crate::service::admin;
use crate::service::auth::Caller;
use crate::service::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/officers", post(create_officer).get(list_officers))
        .route("/v1/admin/roles", post(grant_role).delete(revoke_role))
        .route("/v1/admin/certificates", post(issue_certificate).get(list_certificates))
        .route("/v1/admin/certificates/{number}/renew", post(renew_certificate))
        .route("/v1/admin/certificates/{number}/status", post(change_certificate_status))
        .route("/v1/admin/entities", post(import_entities))
        .route("/v1/admin/recusals", post(add_recusal))
        .route("/v1/admin/check", get(check))
        .route("/v1/admin/backup", post(backup))
}

#[derive(Deserialize, ToSchema)]
pub struct NewOfficer {
    /// An identifier: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub officer_id: String,
    /// One line of 1 to 200 characters, not only spaces, no control character.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 200
    )]
    pub name: String,
    #[serde(default)]
    pub unit: String,
    /// Some of `officer`, `supervisor`, `reviewer`, `admin`; `officer` when empty.
    #[serde(default)]
    #[schema(value_type = Vec<crate::http::openapi::RoleSchema>)]
    pub roles: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreatedOfficer {
    pub officer_id: String,
    /// Shown once; the officer must change it at first login.
    pub one_time_password: String,
}

/// Creates an officer's account with a one-time password.
#[utoipa::path(
    post,
    path = "/v1/admin/officers",
    tag = "admin",
    request_body = NewOfficer,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account, with its one-time password.", body = CreatedOfficer),
        (status = 409, description = "`already_exists`: an account with this officer id exists.", body = ErrorBodySchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "NewOfficer",
                "`invalid_officer`: the officer id or the name is not acceptable. \
                 `unknown_role`: a role is not one of `officer`, `supervisor`, `reviewer`, `admin`.",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly,
    ),
)]
async fn create_officer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewOfficer>,
) -> ApiResult<Json<CreatedOfficer>> {
    let NewOfficer { officer_id, name, unit, roles } = request;
    let officer = admin::NewOfficer { officer_id: officer_id.clone(), name, unit, roles };
    let password = admin::create_officer(&state, &caller, officer).await?;
    Ok(Json(CreatedOfficer { officer_id, one_time_password: password }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OfficerView {
    pub officer_id: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
}

/// Every account: for admins and supervisors.
#[utoipa::path(
    get,
    path = "/v1/admin/officers",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every account.", body = Vec<OfficerView>),
        CallerErrors, AdminOrSupervisor,
    ),
)]
async fn list_officers(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<OfficerView>>> {
    let accounts = admin::list_officers(&state, &caller).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| OfficerView { officer_id: a.officer_id, name: a.name, unit: a.unit, roles: a.roles })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RoleChange {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub officer_id: String,
    /// One of `officer`, `supervisor`, `reviewer`, `admin`.
    #[schema(value_type = crate::http::openapi::RoleSchema)]
    pub role: String,
}

/// Grants a role; granting a role held already is not an error.
#[utoipa::path(
    post,
    path = "/v1/admin/roles",
    tag = "admin",
    request_body = RoleChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"status\": \"granted\"}`.", body = Status),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "RoleChange",
                "`unknown_role`: the role is not one of `officer`, `supervisor`, `reviewer`, `admin`.",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly, OfficerNotFound,
    ),
)]
async fn grant_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RoleChange>,
) -> ApiResult<Json<Status>> {
    let RoleChange { officer_id, role } = request;
    admin::grant_role(&state, &caller, admin::RoleChange { officer_id, role }).await?;
    Ok(Json(Status { status: "granted" }))
}

/// Revokes a role; revoking a role not held, or of an unknown officer, is not an error.
#[utoipa::path(
    delete,
    path = "/v1/admin/roles",
    tag = "admin",
    request_body = RoleChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"status\": \"revoked\"}`.", body = Status),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "RoleChange",
                "`unknown_role`: the role is not one of the four. `invalid_officer`: the officer id is not an \
                 identifier.",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly,
    ),
)]
async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RoleChange>,
) -> ApiResult<Json<Status>> {
    let RoleChange { officer_id, role } = request;
    admin::revoke_role(&state, &caller, admin::RoleChange { officer_id, role }).await?;
    Ok(Json(Status { status: "revoked" }))
}

/// Records an enforcement certificate issued to an officer.
#[utoipa::path(
    post,
    path = "/v1/admin/certificates",
    tag = "admin",
    request_body = CertificateSchema,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificate as recorded.", body = CertificateSchema),
        (
            status = 409,
            description = "`already_exists`: a certificate with this number exists.",
            body = ErrorBodySchema,
        ),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "Certificate",
                "`invalid_certificate`: the number is not an acceptable identifier, \
                 `valid_until_ms` is not after `valid_from_ms`, or either is outside 1970-01-01 to 2100-01-01 \
                 (`details.field` names it), or `periods` or `reviews` are given (the server records them: \
                 the issue is the first period, renewals and reviews add theirs).",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly, OfficerNotFound,
    ),
)]
async fn issue_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(certificate): ApiJson<Certificate>,
) -> ApiResult<Json<Certificate>> {
    Ok(Json(admin::issue_certificate(&state, &caller, certificate).await?))
}

/// Every certificate: for admins, supervisors and reviewers.
#[utoipa::path(
    get,
    path = "/v1/admin/certificates",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every certificate with its status history.", body = Vec<CertificateSchema>),
        (
            status = 403,
            description = "`role_required`: the caller is not an `admin`, a `supervisor` or a `reviewer`.",
            body = ErrorBodySchema,
        ),
        CallerErrors,
    ),
)]
async fn list_certificates(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Certificate>>> {
    Ok(Json(admin::list_certificates(&state, &caller).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct Renewal {
    /// The new period's first instant after validity, Unix milliseconds (1970-01-01 to 2100-01-01).
    #[schema(minimum = 0, maximum = 4_102_444_800_000_i64)]
    pub valid_until_ms: i64,
    /// The new period's first instant, Unix milliseconds; when absent, where the latest period
    /// ends, or now if that has passed. Never inside the latest period, and never before now once
    /// the certificate has lapsed: a lapse stays a lapse.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4_102_444_800_000_i64)]
    pub valid_from_ms: Option<i64>,
}

/// Renews a certificate with a new validity period of its own (P3): every act is judged against
/// the period that held at its time, and the time between two periods is not valid.
#[utoipa::path(
    post,
    path = "/v1/admin/certificates/{number}/renew",
    tag = "admin",
    params(("number" = String, Path, description = "The certificate number.")),
    request_body = Renewal,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificate as it now is.", body = CertificateSchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "Renewal",
                "`invalid_certificate`: `valid_until_ms` or `valid_from_ms` is outside 1970-01-01 to \
                 2100-01-01, or the period would end before it starts. `renewal_backdated`: the certificate \
                 has lapsed and the period would start before now.",
            ),
            body = ErrorBodySchema,
        ),
        (
            status = 409,
            description = "`period_overlaps`: the period would start inside the latest one. \
                `certificate_surrendered`: the certificate was surrendered.",
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly, CertificateNotFound,
    ),
)]
async fn renew_certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(request): ApiJson<Renewal>,
) -> ApiResult<Json<Certificate>> {
    let renewed =
        crate::service::certificates::renew(&state, &caller, number, request.valid_from_ms, request.valid_until_ms);
    Ok(Json(renewed.await?))
}

#[derive(Deserialize, ToSchema)]
pub struct StatusChange {
    #[schema(value_type = CertificateStatusSchema)]
    pub status: CertificateStatus,
    /// When it takes effect; now when absent. Work timestamped after it is judged by it.
    #[serde(default)]
    pub at_ms: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Records a change of a certificate's status (suspension, revocation, surrender, reinstatement).
#[utoipa::path(
    post,
    path = "/v1/admin/certificates/{number}/status",
    tag = "admin",
    params(("number" = String, Path, description = "The certificate number.")),
    request_body = StatusChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificate with its new status history.", body = CertificateSchema),
        (status = 422, description = openapi::invalid_body_422("StatusChange", ""), body = ErrorBodySchema),
        (
            status = 409,
            description = "`certificate_surrendered`: the certificate was surrendered; nothing changes it afterwards.",
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly, CertificateNotFound,
    ),
)]
async fn change_certificate_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(request): ApiJson<StatusChange>,
) -> ApiResult<Json<Certificate>> {
    let StatusChange { status, at_ms, reason } = request;
    Ok(Json(admin::change_certificate_status(&state, &caller, number, status, at_ms, reason).await?))
}

/// The answer of an entity import.
#[derive(Serialize, Debug, ToSchema)]
pub struct Imported {
    /// Entities added or updated.
    pub imported: usize,
}

/// Imports the entity registry from a CSV body (`text/csv`); any bad line refuses the whole file.
#[utoipa::path(
    post,
    path = "/v1/admin/entities",
    tag = "admin",
    request_body(
        content = String,
        content_type = "text/csv",
        description = "A header line naming at least the columns `id`, `name`, `credit_code`, `tier`, \
            `address`, `latitude` and `longitude` (in any order, other columns ignored), then one entity \
            per line, as a spreadsheet exports it: UTF-8 (a byte-order mark allowed) or GB18030, LF or CRLF \
            line ends, fields quoted where they hold commas, quotes or line breaks. An entity already imported \
            is updated. The content type is not checked.",
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every line was imported.", body = Imported),
        (
            status = 400,
            description = "`unreadable_body`: the body could not be read; `invalid_csv_encoding`: it is neither \
                UTF-8 (with or without a byte-order mark) nor GB18030; `details.line` is the line of the first \
                byte that is neither.",
            body = ErrorBodySchema,
        ),
        (
            status = 409,
            description = "`already_exists`: a credit code belongs to another entity already imported.",
            body = ErrorBodySchema,
        ),
        (status = 413, description = "`body_too_large`: the body is larger than the server accepts.", body = ErrorBodySchema),
        (
            status = 422,
            description = "`invalid_csv`: some lines are bad and nothing was imported; `details.problems` \
                lists every bad line as `{\"line\", \"column\", \"field\", \"problem\"}` (line 1 is the header; \
                `column`, 1-based, and `field`, the header's name, are there when one field is at fault).",
            body = ErrorBodySchema,
        ),
        CallerErrors, WriteErrors, AdminOnly,
    ),
)]
async fn import_entities(State(state): State<AppState>, caller: Caller, body: ApiBytes) -> ApiResult<Json<Imported>> {
    let count = admin::import_entities(&state, &caller, &body.0).await?;
    Ok(Json(Imported { imported: count }))
}

/// An officer to keep from inspecting an entity (P4), and why.
// Named `RecusalRequest` in the OpenAPI description, where `Recusal` is the record's type.
#[derive(Deserialize, ToSchema)]
#[schema(as = RecusalRequest)]
pub struct Recusal {
    pub officer_id: String,
    pub entity_id: String,
    pub ground: String,
}

/// Records that an officer is recused from an entity; recording it again replaces the ground.
#[utoipa::path(
    post,
    path = "/v1/admin/recusals",
    tag = "admin",
    request_body = Recusal,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"status\": \"recorded\"}`.", body = Status),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "RecusalRequest",
                "`unknown_officer`: no such officer. `unknown_entity`: no such entity in the registry.",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOrSupervisor,
    ),
)]
async fn add_recusal(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<Recusal>,
) -> ApiResult<Json<Status>> {
    let Recusal { officer_id, entity_id, ground } = request;
    admin::add_recusal(&state, &caller, admin::Recusal { officer_id, entity_id, ground }).await?;
    Ok(Json(Status { status: "recorded" }))
}

/// Checks the database, every stored blob's file and the transparency log, as `fieldsync-server
/// check` does.
#[utoipa::path(
    get,
    path = "/v1/admin/check",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "What was checked and the problems found (`ok` is false if any): SQLite's integrity \
                check, each blob's file (`missing`, `wrong_size`, `wrong_hash`), the transparency log's leaves, \
                subtrees and checkpoints.",
            body = CheckReportSchema,
        ),
        CallerErrors, AdminOnly,
    ),
)]
async fn check(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<admin::CheckReport>> {
    let report = admin::check_all(&state, &caller).await?;
    Ok(Json(report))
}

/// Where a backup made through the API went.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BackupMade {
    /// The file, in the server's `backups` folder under its data folder.
    pub path: String,
    pub bytes: u64,
}

/// Copies the database, consistently, while serving, into a new file under the data folder's
/// `backups/` (as `fieldsync-server backup --to FILE` does to any file). Blobs are files that
/// never change once stored: copy the `blobs/` folder beside it.
#[utoipa::path(
    post,
    path = "/v1/admin/backup",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The backup's file and size.", body = BackupMade),
        (
            status = 500,
            description = "`internal`: the backup could not be written (the disk full, a permission).",
            body = ErrorBodySchema,
        ),
        Unauthenticated, AdminOnly,
    ),
)]
async fn backup(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<BackupMade>> {
    let (path, bytes) = admin::backup(&state, &caller).await?;
    Ok(Json(BackupMade { path: path.display().to_string(), bytes }))
}
