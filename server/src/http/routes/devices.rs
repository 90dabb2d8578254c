//! Device enrollment: the device proves it holds its Ed25519 key by signing a one-time challenge,
//! and is bound to the officer with that key and its Automerge actor id.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Tokens, issue_tokens};
use crate::http::ApiJson;
use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema};
use crate::service::auth::{self, Caller};
use crate::service::error::{ApiError, ApiResult};
use crate::service::{Metrics, now_ms};
use crate::store::Device;

pub use schemas::device::{ENROLLMENT_DOMAIN, enrollment_message};

/// How long a challenge may be answered.
pub const CHALLENGE_SECONDS: i64 = 300;

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
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 429,
            description = "`too_many_challenges`: the caller holds `Config::max_open_challenges_per_officer` (5) \
                unused, unexpired challenges; answer one or wait for them to expire.",
            body = ErrorBodySchema,
        ),
        (status = 403, description = "`role_required`: the caller is not an `officer`.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn challenge(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Challenge>> {
    caller.require(&["officer"])?;
    let nonce = auth::random_bytes::<32>();
    let now = now_ms();
    let expires_at_ms = now + CHALLENGE_SECONDS * 1000;
    let (officer, max_open) = (caller.officer_id.clone(), state.config.max_open_challenges_per_officer);
    state
        .blocking(move |store| match store.store_challenge(&nonce, &officer, now, expires_at_ms, max_open) {
            Err(crate::store::StoreError::LimitReached { limit, .. }) => Ok(Err(limit)),
            other => other.map(Ok),
        })
        .await?
        .map_err(|limit| ApiError::Refused {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS.as_u16(),
            code: "too_many_challenges",
            message: format!("at most {limit} unanswered challenges at once"),
            details: Some(serde_json::json!({ "limit": limit })),
        })?;
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

fn decode(field: &'static str, text: &str, length: usize) -> ApiResult<Vec<u8>> {
    let bytes = if field == "actor_id" { hex::decode(text).ok() } else { STANDARD.decode(text).ok() };
    bytes.filter(|b| b.len() == length).ok_or_else(|| ApiError::Unprocessable {
        code: "invalid_enrollment",
        message: format!("{field} must be {length} bytes"),
        details: Some(serde_json::json!({ "field": field })),
    })
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
        (status = 400, description = openapi::JSON_400, body = ErrorBodySchema),
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
        (status = 403, description = "`role_required`: the caller is not an `officer`.", body = ErrorBodySchema),
        (
            status = 409,
            description = "`device_key_in_use`: this public key or actor id is already enrolled. \
                `reserved_actor`: the actor id is the genesis actor of a record. \
                `too_many_devices`: the caller has `Config::max_devices_per_officer` (5) devices not revoked; \
                `details.limit` says how many.",
            body = ErrorBodySchema,
        ),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (status = 415, description = openapi::JSON_415, body = ErrorBodySchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "Enrollment",
                "`invalid_enrollment`: a field has the wrong length or encoding (`details.field` names it).",
            ),
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<Enrollment>,
) -> ApiResult<Json<Enrolled>> {
    caller.require(&["officer"])?;
    let challenge = decode("challenge", &request.challenge, 32)?;
    let public_key = decode("public_key", &request.public_key, 32)?;
    let actor_id = decode("actor_id", &request.actor_id, 16)?;
    let signature = decode("signature", &request.signature, 64)?;
    if !auth::verify_device_signature(&public_key, &enrollment_message(&challenge, &public_key, &actor_id), &signature)
    {
        return Err(ApiError::unauthorized("invalid_signature", "the challenge signature does not verify"));
    }
    // The genesis actor of a record is derived from its id, so anyone can write as it: it is
    // never a device's (validation refuses to create a record whose genesis actor is one).
    let reserved = actor_id.clone();
    let is_genesis_actor = state
        .blocking(move |store| {
            Ok(store.record_ids()?.iter().any(|id| sync_core::document::genesis_actor(id).to_bytes() == reserved))
        })
        .await?;
    if is_genesis_actor {
        return Err(ApiError::Conflict {
            code: "reserved_actor",
            message: "this actor id is the genesis actor of a record; a device's actor id must be its own".into(),
        });
    }
    // Checked before the challenge is spent, and again as the device is stored (a race).
    let (officer, max_devices) = (caller.officer_id.clone(), state.config.max_devices_per_officer);
    let active = state
        .blocking(move |store| {
            Ok(store.devices()?.iter().filter(|d| d.officer_id == officer && d.revoked_at_ms.is_none()).count())
        })
        .await?;
    if active >= max_devices {
        return Err(too_many_devices(max_devices));
    }
    let officer = caller.officer_id.clone();
    let now = now_ms();
    let taken = state.blocking(move |store| store.take_challenge(&challenge, &officer, now)).await?;
    if !taken {
        return Err(ApiError::unauthorized(
            "invalid_challenge",
            "the challenge is unknown, used, expired or not yours",
        ));
    }
    let device = Device {
        device_id: format!("D-{}", uuid::Uuid::new_v4()),
        officer_id: caller.officer_id.clone(),
        public_key,
        actor_id,
        enrolled_at_ms: now,
        revoked_at_ms: None,
    };
    let stored = device.clone();
    state
        .blocking(move |store| match store.enroll_device(&stored, max_devices) {
            Err(crate::store::StoreError::LimitReached { limit, .. }) => Ok(Err(limit)),
            other => other.map(Ok),
        })
        .await
        .map_err(|error| match error {
            ApiError::Conflict { .. } => ApiError::Conflict {
                code: "device_key_in_use",
                message: "this public key or actor id is already enrolled".into(),
            },
            other => other,
        })?
        .map_err(too_many_devices)?;
    Metrics::add(&state.metrics.log_leaves_appended, 1);
    let tokens = issue_tokens(&state, &caller.officer_id, Some(device.device_id.clone()), None, false).await?;
    Ok(Json(Enrolled { device_id: device.device_id, tokens }))
}

fn too_many_devices(limit: usize) -> ApiError {
    ApiError::Refused {
        status: axum::http::StatusCode::CONFLICT.as_u16(),
        code: "too_many_devices",
        message: format!("at most {limit} devices per officer: revoke one first"),
        details: Some(serde_json::json!({ "limit": limit })),
    }
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
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not an `admin`.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<DeviceView>>> {
    caller.require(&["admin"])?;
    let devices = state.blocking(|store| store.devices()).await?;
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
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not an `admin`.", body = ErrorBodySchema),
        (status = 404, description = "`not_found`: no such device.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> ApiResult<Json<DeviceRevoked>> {
    caller.require(&["admin"])?;
    let now = now_ms();
    state.blocking(move |store| store.revoke_device(&device_id, now)).await.map_err(|error| match error {
        ApiError::NotFound { .. } => ApiError::NotFound { what: "device" },
        other => other,
    })?;
    // The device's sessions ended with it.
    state.sessions_ended().await?;
    Ok(Json(DeviceRevoked { status: "revoked", revoked_at_ms: now }))
}
