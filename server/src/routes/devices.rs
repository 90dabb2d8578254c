//! Device enrollment: the device proves it holds its Ed25519 key by signing a one-time challenge,
//! and is bound to the officer with that key and its Automerge actor id.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use super::auth::{Tokens, issue_tokens};
use crate::error::{ApiError, ApiResult};
use crate::identity::{self, Caller};
use crate::store::Device;
use crate::{AppState, now_ms};

/// Prefix of the bytes a device signs to enroll: domain separation from every other signature.
pub const ENROLLMENT_DOMAIN: &[u8] = b"fieldsync/device-enrollment/v1\0";
/// How long a challenge may be answered.
pub const CHALLENGE_SECONDS: i64 = 300;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/devices/challenge", post(challenge))
        .route("/v1/devices", post(enroll).get(list))
        .route("/v1/devices/{device_id}/revoke", post(revoke))
}

#[derive(Serialize, Deserialize)]
pub struct Challenge {
    /// 32 random bytes, base64.
    pub challenge: String,
    pub expires_at_ms: i64,
}

async fn challenge(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Challenge>> {
    let nonce = identity::random_bytes::<32>();
    let expires_at_ms = now_ms() + CHALLENGE_SECONDS * 1000;
    let officer = caller.officer_id.clone();
    state.blocking(move |store| store.store_challenge(&nonce, &officer, expires_at_ms)).await?;
    Ok(Json(Challenge { challenge: STANDARD.encode(nonce), expires_at_ms }))
}

/// What a device sends to enroll.
#[derive(Serialize, Deserialize)]
pub struct Enrollment {
    pub challenge: String,
    /// Ed25519 public key, 32 bytes, base64.
    pub public_key: String,
    /// The device's Automerge actor id, 16 random bytes, hex.
    pub actor_id: String,
    /// Ed25519 signature, base64, over [`enrollment_message`].
    pub signature: String,
}

/// The bytes a device signs: domain, challenge, public key, actor id.
pub fn enrollment_message(challenge: &[u8], public_key: &[u8], actor_id: &[u8]) -> Vec<u8> {
    [ENROLLMENT_DOMAIN, challenge, public_key, actor_id].concat()
}

#[derive(Serialize, Deserialize)]
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

async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<Enrollment>,
) -> ApiResult<Json<Enrolled>> {
    let challenge = decode("challenge", &request.challenge, 32)?;
    let public_key = decode("public_key", &request.public_key, 32)?;
    let actor_id = decode("actor_id", &request.actor_id, 16)?;
    let signature = decode("signature", &request.signature, 64)?;
    let key = VerifyingKey::from_bytes(&public_key.clone().try_into().expect("32 bytes"))
        .map_err(|_| ApiError::unprocessable("invalid_enrollment", "the public key is not a valid Ed25519 point"))?;
    let signature = Signature::from_bytes(&signature.try_into().expect("64 bytes"));
    key.verify_strict(&enrollment_message(&challenge, &public_key, &actor_id), &signature)
        .map_err(|_| ApiError::unauthorized("invalid_signature", "the challenge signature does not verify"))?;
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
    state.blocking(move |store| store.enroll_device(&stored)).await.map_err(|error| match error {
        ApiError::Conflict { .. } => ApiError::Conflict {
            code: "device_key_in_use",
            message: "this public key or actor id is already enrolled".into(),
        },
        other => other,
    })?;
    let tokens = issue_tokens(&state, &caller.officer_id, Some(device.device_id.clone()), None, false).await?;
    Ok(Json(Enrolled { device_id: device.device_id, tokens }))
}

#[derive(Serialize, Deserialize)]
pub struct DeviceView {
    pub device_id: String,
    pub officer_id: String,
    pub public_key: String,
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

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<DeviceView>>> {
    caller.require(&["admin"])?;
    let devices = state.blocking(|store| store.devices()).await?;
    Ok(Json(devices.into_iter().map(DeviceView::from).collect()))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&["admin"])?;
    let now = now_ms();
    state.blocking(move |store| store.revoke_device(&device_id, now)).await.map_err(|error| match error {
        ApiError::NotFound { .. } => ApiError::NotFound { what: "device" },
        other => other,
    })?;
    Ok(Json(serde_json::json!({ "status": "revoked", "revoked_at_ms": now })))
}
