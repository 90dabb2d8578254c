//! Device enrollment: the device proves it holds its Ed25519 key by signing a one-time challenge,
//! and is bound to the officer with that key and its Automerge actor id.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Tokens;
use crate::http::ApiJson;
use crate::http::AppState;
use crate::http::openapi::{
    self, AdminOnly, CallerErrors, ErrorBodySchema, InternalError, JsonBodyErrors, OfficerOnly, WriteErrors,
};
use crate::service::auth::Caller;
use crate::service::devices;
use crate::service::error::ApiResult;
use crate::store::Device;

pub use schemas::device::{ENROLLMENT_DOMAIN, enrollment_message};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/devices/challenge", post(challenge))
        .route("/v1/devices", post(enroll).get(list))
        .route("/v1/devices/{device_id}/revoke", post(revoke))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Challenge {
    /// 32 random bytes, base64.
    pub challenge: String,
    /// Unix milliseconds after which the challenge is refused.
    pub expires_at_ms: i64,
}

/// Issues a one-time challenge for the caller's next device to sign.
#[utoipa::path(
    post,
    operation_id = "device_challenge",
    path = "/v1/devices/challenge",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A challenge, valid for five minutes; any request body is ignored.", body = Challenge),
        (
            status = 429,
            description = "`too_many_challenges`: the caller holds `Config::max_open_challenges_per_officer` (5) \
                unused, unexpired challenges; answer one or wait for them to expire.",
            body = ErrorBodySchema,
        ),
        CallerErrors, WriteErrors, OfficerOnly,
    ),
)]
async fn challenge(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Challenge>> {
    let (nonce, expires_at_ms) = devices::challenge(&state, &caller).await?;
    Ok(Json(Challenge { challenge: STANDARD.encode(nonce), expires_at_ms }))
}

/// What a device sends to enroll.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Enrollment {
    /// The challenge from `/v1/devices/challenge`, 32 bytes, base64.
    #[schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")]
    pub challenge: String,
    /// Ed25519 public key, 32 bytes, base64.
    #[schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")]
    pub public_key: String,
    /// The device's Automerge actor id, 16 random bytes, hex.
    #[schema(pattern = "^[0-9a-fA-F]{32}$")]
    pub actor_id: String,
    /// Ed25519 signature, 64 bytes, base64, over [`enrollment_message`].
    #[schema(pattern = "^[A-Za-z0-9+/]{85}[AQgw]==$")]
    pub signature: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Enrolled {
    pub device_id: String,
    pub tokens: Tokens,
}

/// Enrolls a device: binds its Ed25519 key and Automerge actor id to the caller, and issues
/// tokens bound to it.
#[utoipa::path(
    post,
    operation_id = "enroll_device",
    path = "/v1/devices",
    tag = "devices",
    request_body = Enrollment,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new device's id and a pair of tokens bound to it.", body = Enrolled),
        (
            status = 401,
            description = openapi::caller_401(
                "`invalid_signature`: the public key is not a usable Ed25519 key, or the signature does \
                 not verify over the enrollment message. \
                 `invalid_challenge`: the challenge is unknown, used, expired or not the caller's. \
                 `invalid_credentials`: the caller's account no longer exists.",
            ),
            body = ErrorBodySchema,
        ),
        (
            status = 409,
            description = "`device_key_in_use`: this public key or actor id is already enrolled. \
                `reserved_actor`: the actor id is the genesis actor of a record. \
                `too_many_devices`: the caller has `Config::max_devices_per_officer` (5) devices not revoked; \
                `details.limit` says how many.",
            body = ErrorBodySchema,
        ),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "Enrollment",
                "`invalid_enrollment`: a field has the wrong length or encoding (`details.field` names it).",
            ),
            body = ErrorBodySchema,
        ),
        JsonBodyErrors, WriteErrors, InternalError, OfficerOnly,
    ),
)]
async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<Enrollment>,
) -> ApiResult<Json<Enrolled>> {
    let Enrollment { challenge, public_key, actor_id, signature } = request;
    let enrollment = devices::Enrollment { challenge, public_key, actor_id, signature };
    let (device_id, tokens) = devices::enroll(&state, &caller, enrollment).await?;
    Ok(Json(Enrolled { device_id, tokens: tokens.into() }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub officer_id: String,
    /// Ed25519 public key, base64.
    pub public_key: String,
    /// Automerge actor id, hex.
    pub actor_id: String,
    pub enrolled_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

impl From<Device> for DeviceView {
    fn from(d: Device) -> Self {
        DeviceView {
            device_id: d.device_id,
            officer_id: d.officer_id,
            public_key: STANDARD.encode(d.public_key),
            actor_id: hex::encode(d.actor_id),
            enrolled_at_ms: d.enrolled_at_ms,
            revoked_at_ms: d.revoked_at_ms,
        }
    }
}

/// Every enrolled device, revoked ones included: for admins.
#[utoipa::path(
    get,
    operation_id = "list_devices",
    path = "/v1/devices",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every device.", body = Vec<DeviceView>),
        CallerErrors, AdminOnly,
    ),
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<DeviceView>>> {
    let devices = devices::list(&state, &caller).await?;
    Ok(Json(devices.into_iter().map(DeviceView::from).collect()))
}

/// The answer of a device revocation.
#[derive(Serialize, Debug, ToSchema)]
pub struct DeviceRevoked {
    /// Always `revoked`.
    pub status: &'static str,
    /// When this request was handled, Unix milliseconds. The store keeps the first revocation
    /// time of a device revoked twice.
    pub revoked_at_ms: i64,
}

/// Revokes a device at once: its tokens and refresh tokens stop working, and it can no longer sync.
#[utoipa::path(
    post,
    operation_id = "revoke_device",
    path = "/v1/devices/{device_id}/revoke",
    tag = "devices",
    params(("device_id" = String, Path, description = "The device, as `/v1/devices` lists it.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The device is revoked (revoking twice is not an error).", body = DeviceRevoked),
        (status = 404, description = "`not_found`: no such device.", body = ErrorBodySchema),
        CallerErrors, WriteErrors, AdminOnly,
    ),
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> ApiResult<Json<DeviceRevoked>> {
    let now = devices::revoke(&state, &caller, device_id).await?;
    Ok(Json(DeviceRevoked { status: "revoked", revoked_at_ms: now }))
}
