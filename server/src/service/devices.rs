//! Devices: an officer's device enrolls by signing a challenge of this server with its Ed25519
//! key, which binds the key and its Automerge actor id to the officer (and appends its enrolment
//! to the transparency log); an admin lists and revokes devices, and a revoked device's sessions
//! end at once.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::service::auth::{Caller, Tokens, issue_tokens, random_bytes, verify_device_signature};
use crate::service::{ApiError, ApiResult, Context, Metrics, now_ms};
use crate::store::{Device, StoreError};

use schemas::device::enrollment_message;

/// How long a challenge may be answered.
pub const CHALLENGE_SECONDS: i64 = 300;

/// A new enrolment challenge for the calling officer, and when it expires (Unix milliseconds).
pub async fn challenge(context: &Context, caller: &Caller) -> ApiResult<([u8; 32], i64)> {
    caller.require(&["officer"])?;
    let nonce = random_bytes::<32>();
    let now = now_ms();
    let expires_at_ms = now + CHALLENGE_SECONDS * 1000;
    let (officer, max_open) = (caller.officer_id.clone(), context.config.max_open_challenges_per_officer);
    context
        .blocking(move |store| match store.store_challenge(&nonce, &officer, now, expires_at_ms, max_open) {
            Err(StoreError::LimitReached { limit, .. }) => Ok(Err(limit)),
            other => other.map(Ok),
        })
        .await?
        .map_err(|limit| ApiError::Refused {
            status: 429,
            code: "too_many_challenges",
            message: format!("at most {limit} unanswered challenges at once"),
            details: Some(serde_json::json!({ "limit": limit })),
        })?;
    Ok((nonce, expires_at_ms))
}

/// What a device sends to enroll, as sent: base64 but for the actor id, in hex.
pub struct Enrollment {
    /// The challenge from [`challenge`], 32 bytes.
    pub challenge: String,
    /// Ed25519 public key, 32 bytes.
    pub public_key: String,
    /// The device's Automerge actor id, 16 bytes.
    pub actor_id: String,
    /// Ed25519 signature, 64 bytes, over [`enrollment_message`].
    pub signature: String,
}

fn decode(field: &'static str, text: &str, length: usize) -> ApiResult<Vec<u8>> {
    let bytes = if field == "actor_id" { hex::decode(text).ok() } else { STANDARD.decode(text).ok() };
    bytes.filter(|b| b.len() == length).ok_or_else(|| ApiError::Unprocessable {
        code: "invalid_enrollment",
        message: format!("{field} must be {length} bytes"),
        details: Some(serde_json::json!({ "field": field })),
    })
}

/// Enrolls a device: binds its key and actor id to the caller, and issues tokens bound to it.
/// The new device's id and the tokens.
pub async fn enroll(context: &Context, caller: &Caller, enrollment: Enrollment) -> ApiResult<(String, Tokens)> {
    caller.require(&["officer"])?;
    let challenge = decode("challenge", &enrollment.challenge, 32)?;
    let public_key = decode("public_key", &enrollment.public_key, 32)?;
    let actor_id = decode("actor_id", &enrollment.actor_id, 16)?;
    let signature = decode("signature", &enrollment.signature, 64)?;
    if !verify_device_signature(&public_key, &enrollment_message(&challenge, &public_key, &actor_id), &signature) {
        return Err(ApiError::unauthorized("invalid_signature", "the challenge signature does not verify"));
    }
    // The genesis actor of a record is derived from its id, so anyone can write as it: it is
    // never a device's (validation refuses to create a record whose genesis actor is one).
    let reserved = actor_id.clone();
    let is_genesis_actor = context
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
    let (officer, max_devices) = (caller.officer_id.clone(), context.config.max_devices_per_officer);
    let active = context
        .blocking(move |store| {
            Ok(store.devices()?.iter().filter(|d| d.officer_id == officer && d.revoked_at_ms.is_none()).count())
        })
        .await?;
    if active >= max_devices {
        return Err(too_many_devices(max_devices));
    }
    let officer = caller.officer_id.clone();
    let now = now_ms();
    let taken = context.blocking(move |store| store.take_challenge(&challenge, &officer, now)).await?;
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
    context
        .blocking(move |store| match store.enroll_device(&stored, max_devices) {
            Err(StoreError::LimitReached { limit, .. }) => Ok(Err(limit)),
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
    Metrics::add(&context.metrics.log_leaves_appended, 1);
    let tokens = issue_tokens(context, &caller.officer_id, Some(device.device_id.clone()), None, false).await?;
    Ok((device.device_id, tokens))
}

fn too_many_devices(limit: usize) -> ApiError {
    ApiError::Refused {
        status: 409,
        code: "too_many_devices",
        message: format!("at most {limit} devices per officer: revoke one first"),
        details: Some(serde_json::json!({ "limit": limit })),
    }
}

/// Every enrolled device, revoked ones included: for admins.
pub async fn list(context: &Context, caller: &Caller) -> ApiResult<Vec<Device>> {
    caller.require(&["admin"])?;
    context.blocking(|store| store.devices()).await
}

/// Revokes a device at once, and ends its sessions; when this request revoked it.
pub async fn revoke(context: &Context, caller: &Caller, device_id: String) -> ApiResult<i64> {
    caller.require(&["admin"])?;
    let now = now_ms();
    context.blocking(move |store| store.revoke_device(&device_id, now)).await.map_err(|error| match error {
        ApiError::NotFound { .. } => ApiError::NotFound { what: "device" },
        other => other,
    })?;
    // The device's sessions ended with it.
    context.sessions_ended().await?;
    Ok(now)
}
