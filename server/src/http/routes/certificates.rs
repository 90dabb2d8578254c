//! The admin API of certificates over time (P3): surrender, periodic review, the report of
//! certificates due for review, and the records a suspension reaches.
//! Each is also a `fieldsync-server certificate` subcommand.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use schemas::Certificate;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::http::openapi::{
    self, AdminOnly, AdminOrSupervisor, CallerErrors, CertificateNotFound, CertificateSchema, ErrorBodySchema,
    JsonBodyErrors, WriteErrors,
};
use crate::http::{ApiJson, ApiQuery, AppState};
use crate::service::auth::Caller;
use crate::service::certificates::{self, CertificateAffected, ReviewDue};
use crate::service::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/certificates/{number}/surrender", post(surrender))
        .route("/v1/admin/certificates/{number}/review", post(review))
        .route("/v1/admin/certificates/{number}/affected", get(affected))
        .route("/v1/admin/certificates/review-due", get(review_due))
}

#[derive(Deserialize, ToSchema)]
pub struct Surrender {
    /// When the holder surrendered it, Unix ms; now when absent.
    #[serde(default)]
    pub at_ms: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Records a certificate's surrender when its holder leaves (P3). Nothing changes it afterwards:
/// no status change, renewal or review.
#[utoipa::path(
    post,
    path = "/v1/admin/certificates/{number}/surrender",
    tag = "admin",
    params(("number" = String, Path, description = "The certificate number.")),
    request_body = Surrender,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificate with its surrender in its status history.", body = CertificateSchema),
        (status = 409, description = "`certificate_surrendered`: it was surrendered already.", body = ErrorBodySchema),
        (status = 422, description = openapi::invalid_body_422("Surrender", ""), body = ErrorBodySchema),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly, CertificateNotFound,
    ),
)]
async fn surrender(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(request): ApiJson<Surrender>,
) -> ApiResult<Json<Certificate>> {
    let status = schemas::CertificateStatus::Surrendered;
    Ok(Json(certificates::change_status(&state, &caller, number, status, request.at_ms, request.reason).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct Review {
    /// When the review was passed, Unix ms (1970-01-01 to 2100-01-01, not in the future); now when absent.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4_102_444_800_000_i64)]
    pub reviewed_at_ms: Option<i64>,
    /// One line of 1 to 200 characters, not only spaces, no control character.
    #[serde(default)]
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 200
    )]
    pub note: Option<String>,
}

/// Records a periodic review (年审) the certificate passed (P3); the next falls due a review
/// period (`Config::certificate_review_period_ms`, a year by default) after it.
#[utoipa::path(
    post,
    path = "/v1/admin/certificates/{number}/review",
    tag = "admin",
    params(("number" = String, Path, description = "The certificate number.")),
    request_body = Review,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificate with the review among its reviews.", body = CertificateSchema),
        (
            status = 409,
            description = "`certificate_surrendered`: it was surrendered. `certificate_not_valid`: it was not \
                valid when reviewed (suspended, revoked, expired or between two periods).",
            body = ErrorBodySchema,
        ),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "Review",
                "`invalid_certificate`: `reviewed_at_ms` is outside 1970-01-01 to 2100-01-01. `review_in_future`: \
                 it is after now. `invalid_note`: the note is not one line of 1 to 200 characters.",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, AdminOnly, CertificateNotFound,
    ),
)]
async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    ApiJson(request): ApiJson<Review>,
) -> ApiResult<Json<Certificate>> {
    Ok(Json(certificates::review(&state, &caller, number, request.reviewed_at_ms, request.note).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewDueQuery {
    /// How many days ahead to look, 0 to 3660; 30 when absent.
    #[param(minimum = 0, maximum = 3660)]
    pub within_days: Option<i64>,
}

// The document's name of the service's `ReviewDue`, whose fields it repeats.
/// A certificate whose periodic review falls due.
#[derive(ToSchema)]
#[schema(as = ReviewDue)]
#[allow(dead_code)]
pub struct ReviewDueEntry {
    pub number: String,
    pub officer_id: String,
    /// When the review falls due, Unix ms: a review period after the latest review or the start of
    /// the latest validity period, whichever is later.
    pub review_due_ms: i64,
    /// When it was last reviewed, if ever.
    pub last_reviewed_ms: Option<i64>,
    /// Whether the due date has passed.
    pub overdue: bool,
}

/// The certificates still in use whose periodic review falls due within `within_days`, soonest
/// first (overdue ones included).
#[utoipa::path(
    get,
    path = "/v1/admin/certificates/review-due",
    tag = "admin",
    params(ReviewDueQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificates due for review.", body = Vec<ReviewDueEntry>),
        (
            status = 400,
            description = "`invalid_query`: the query string does not parse (`within_days` not an integer, a \
                parameter given twice).",
            body = ErrorBodySchema,
        ),
        (status = 422, description = "`invalid_window`: `within_days` is not 0 to 3660.", body = ErrorBodySchema),
        CallerErrors, AdminOrSupervisor,
    ),
)]
async fn review_due(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReviewDueQuery>,
) -> ApiResult<Json<Vec<ReviewDue>>> {
    Ok(Json(certificates::review_due(&state, &caller, query.within_days).await?))
}

// The document's names of the service's `AffectedChange`, `AffectedRecord` and
// `CertificateAffected`, whose fields they repeat.
/// A change merged into a record, made while the certificate stood suspended, revoked or surrendered.
#[derive(ToSchema)]
#[schema(as = AffectedChange)]
#[allow(dead_code)]
pub struct AffectedChangeEntry {
    /// Hex hash of the change.
    pub change_hash: String,
    /// The officer's device that made it.
    pub device_id: String,
    /// The change's own time, Unix ms.
    pub timestamp_ms: i64,
    /// `suspended`, `revoked` or `surrendered`.
    pub standing: String,
    /// When that status took effect, Unix ms.
    pub since_ms: i64,
}

/// A record with changes made while the certificate stood suspended.
#[derive(ToSchema)]
#[schema(as = AffectedRecord)]
#[allow(dead_code)]
pub struct AffectedRecordEntry {
    pub record_id: String,
    pub task_id: Option<String>,
    pub changes: Vec<AffectedChangeEntry>,
}

/// The records a certificate's suspension, revocation or surrender reaches.
#[derive(ToSchema)]
#[schema(as = CertificateAffected)]
#[allow(dead_code)]
pub struct CertificateAffectedEntry {
    pub number: String,
    pub officer_id: String,
    pub records: Vec<AffectedRecordEntry>,
}

/// P3: every record with changes its officer made, through their devices, while this certificate
/// stood suspended, revoked or surrendered and no other of theirs was valid: the work merged
/// before a status was entered with a past effective time. Those changes stay in the record,
/// flagged (`while_suspended` in the record's history), for a reviewer to judge.
#[utoipa::path(
    get,
    path = "/v1/admin/certificates/{number}/affected",
    tag = "admin",
    params(("number" = String, Path, description = "The certificate number.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The records reached, each with its changes.", body = CertificateAffectedEntry),
        CallerErrors, AdminOnly, CertificateNotFound,
    ),
)]
async fn affected(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
) -> ApiResult<Json<CertificateAffected>> {
    Ok(Json(certificates::affected(&state, &caller, number).await?))
}
