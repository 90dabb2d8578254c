//! Login, refresh and logout.

use axum::extract::{ConnectInfo, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::openapi::{self, CallerErrors, ErrorBodySchema, InternalError, JsonBodyErrors, WriteErrors};
use crate::http::{ApiJson, Status};
use crate::service::auth::{self, Caller};
use crate::service::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/challenge", post(login_challenge))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/password", post(change_password))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub officer_id: String,
    pub password: String,
    /// Log in on an enrolled device: the tokens are bound to it.
    #[serde(default)]
    pub device_id: Option<String>,
    /// A challenge from `POST /v1/auth/challenge` (base64), signed by the device's key in
    /// `device_signature`: a device that proves its key logs in past the account's back-off.
    #[serde(default)]
    pub device_challenge: Option<String>,
    /// The device's Ed25519 signature (base64) of `fieldsync/device-login/v1\0 || challenge ||
    /// device_id || 0x00 || officer_id || 0x00`.
    #[serde(default)]
    pub device_signature: Option<String>,
}

/// A challenge for a device to sign at login.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct LoginChallenge {
    /// 32 random bytes, base64; answerable once.
    pub challenge: String,
    /// Milliseconds it may be answered in.
    pub expires_in_ms: u64,
}

/// A pair of tokens.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct Tokens {
    /// A JWT to send as `Authorization: Bearer`; bound to the device when one was named.
    pub access_token: String,
    /// Presented once to `/v1/auth/refresh` for the next pair; a second use revokes its family.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The password is a one-time password: change it with `/v1/auth/password`.
    pub must_change_password: bool,
}

fn client_key(address: &std::net::SocketAddr) -> String {
    format!("ip:{}", address.ip())
}

/// Counts an attempt against the client's address, then against the refresh token. The address
/// comes first, so that a flood from one address is refused before it can fill the per-token table.
fn limit(state: &AppState, account_key: String, address: &std::net::SocketAddr) -> ApiResult<()> {
    limit_address(state, address)?;
    state.account_limiter.attempt(&account_key).map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })
}

/// Counts an attempt against the client's address.
pub(crate) fn limit_address(state: &AppState, address: &std::net::SocketAddr) -> ApiResult<()> {
    state.address_limiter.attempt(&client_key(address)).map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })
}

impl From<auth::Tokens> for Tokens {
    fn from(tokens: auth::Tokens) -> Self {
        Tokens {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: "Bearer".into(),
            expires_in: tokens.expires_in,
            must_change_password: tokens.must_change_password,
        }
    }
}

/// Logs an officer in, optionally on one of their enrolled devices.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The new pair of tokens.", body = Tokens),
        (
            status = 401,
            description = "`invalid_credentials`: unknown officer or wrong password. \
                `device_revoked`: the named device has been revoked. \
                `invalid_device_proof`: the device proof does not verify (an unknown, used or expired \
                challenge, another officer's or a revoked device, a bad signature).",
            body = ErrorBodySchema,
        ),
        (
            status = 403,
            description = "`device_not_yours`: the named device is not enrolled to this officer.",
            body = ErrorBodySchema,
        ),
        (status = 422, description = openapi::invalid_body_422("LoginRequest", ""), body = ErrorBodySchema),
        (
            status = 429,
            description = "`rate_limited`: too many attempts from this address, or the account backs off \
                after failed passwords (5 free, then a wait from 1 s doubling to 15 min; a device proof \
                logs in past it) (`details.retry_after_s`).",
            body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds until another attempt is counted.")),
        ),
        JsonBodyErrors, WriteErrors, InternalError,
    ),
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<Tokens>> {
    // The address first: a flood from one address stops here, before any per-account state.
    limit_address(&state, &address)?;
    let LoginRequest { officer_id, password, device_id, device_challenge, device_signature } = request;
    let login = auth::Login { officer_id, password, device_id, device_challenge, device_signature };
    Ok(Json(auth::login(&state, login).await?.into()))
}

/// A challenge for an enrolled device to sign at login (`LoginRequest::device_challenge`).
#[utoipa::path(
    post,
    path = "/v1/auth/challenge",
    tag = "auth",
    responses(
        (status = 200, description = "A challenge, answerable once within `expires_in_ms`.", body = LoginChallenge),
        (
            status = 429,
            description = "`rate_limited`: too many attempts from this address, or too many challenges open \
                (`details.retry_after_s`).",
            body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds until another attempt is counted.")),
        ),
        InternalError,
    ),
)]
async fn login_challenge(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
) -> ApiResult<Json<LoginChallenge>> {
    use base64::Engine as _;
    limit_address(&state, &address)?;
    let challenge =
        state.login_challenges.issue(std::time::Instant::now()).ok_or(ApiError::RateLimited { retry_after_s: 60 })?;
    Ok(Json(LoginChallenge {
        challenge: base64::engine::general_purpose::STANDARD.encode(challenge),
        expires_in_ms: auth::LOGIN_CHALLENGE_MS,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Trades a refresh token for a new pair; the presented token is used up.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The next pair of tokens, in the same family.", body = Tokens),
        (
            status = 401,
            description = "`invalid_token`: unknown refresh token. \
                `refresh_token_reused`: the token was used before and is not a retry (a retry is the same \
                token again within a minute of its use, while its replacement is unused: the replacement \
                is revoked and a new pair issued); its whole family is now revoked. \
                `refresh_token_expired`: the refresh token has expired. \
                `refresh_token_revoked`: the refresh token was revoked (logout, device revocation). \
                `device_revoked`: the token's device has been revoked. \
                `invalid_credentials`: the token's account no longer exists.",
            body = ErrorBodySchema,
        ),
        (status = 422, description = openapi::invalid_body_422("RefreshRequest", ""), body = ErrorBodySchema),
        (
            status = 429,
            description = "`rate_limited`: too many attempts with this token or from this address \
                (`details.retry_after_s`).",
            body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds until another attempt is counted.")),
        ),
        JsonBodyErrors, WriteErrors, InternalError,
    ),
)]
async fn refresh(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    let hash = auth::refresh_token_hash(&request.refresh_token);
    limit(&state, format!("refresh:{}", hex::encode(&hash[..8])), &address)?;
    Ok(Json(auth::refresh(&state, hash).await?.into()))
}

/// Ends the caller's session: its refresh tokens are revoked, and its access tokens are refused
/// from the next request on. Only the session's own access token can end it; a body is ignored.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"status\": \"logged_out\"}`.", body = Status),
        CallerErrors, WriteErrors,
    ),
)]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Status>> {
    auth::logout(&state, &caller).await?;
    Ok(Json(Status { status: "logged_out" }))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters.
    pub new_password: String,
}

/// Changes the caller's own password; needed after a one-time password. Every session of the
/// officer ends, this one too: log in again with the new password.
#[utoipa::path(
    post,
    path = "/v1/auth/password",
    tag = "auth",
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"status\": \"changed\"}`.", body = Status),
        (
            status = 401,
            description = openapi::caller_401("`invalid_credentials`: the current password is wrong."),
            body = ErrorBodySchema,
        ),
        (status = 404, description = "`not_found`: the caller's account no longer exists.", body = ErrorBodySchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "PasswordChange",
                "`weak_password`: the new password has fewer than 12 characters.",
            ),
            body = ErrorBodySchema,
        ),
        JsonBodyErrors, WriteErrors, InternalError,
    ),
)]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PasswordChange>,
) -> ApiResult<Json<Status>> {
    auth::change_password(&state, &caller, request.current_password, request.new_password).await?;
    Ok(Json(Status { status: "changed" }))
}
