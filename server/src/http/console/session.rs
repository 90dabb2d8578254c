//! Signing in and out of the console, the one-time password's change, and the start page.

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{Chrome, Console, Lang, Nothing, PageError, PageResult, Posted, SESSION_COOKIE, render, same_origin};
use crate::http::AppState;
use crate::service::ApiError;
use crate::service::auth::{self, CONSOLE_SESSION_SECONDS};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/password", get(password_page).post(change_password))
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    c: Chrome,
}

/// The start page: the signed-in officer's menu, or the public's.
async fn home(State(state): State<AppState>, mut parts: Parts) -> PageResult {
    let lang = Lang::of(&parts.headers);
    let c = match Console::from_request_parts(&mut parts, &state).await {
        Ok(console) => console.chrome,
        Err(PageError::ChangePassword) => return Err(PageError::ChangePassword),
        Err(_) => Chrome::public(lang, "/"),
    };
    render(&HomePage { c }, lang)
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    c: Chrome,
    next: String,
    officer_id: String,
    notice: Option<String>,
    problem: Option<String>,
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// Where to go after signing in: a path of this site, or the start page.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_string(),
        _ => "/".to_string(),
    }
}

async fn login_page(lang: Lang, Query(query): Query<LoginQuery>) -> PageResult {
    let notice = match query.done.as_deref() {
        Some("logout") => Some(lang.t("已退出。", "You are signed out.").to_string()),
        Some("password") => {
            Some(lang.t("密码已修改，请用新密码登录。", "Password changed: sign in with it.").to_string())
        }
        _ => None,
    };
    let page = LoginPage {
        c: Chrome::public(lang, "/login"),
        next: safe_next(query.next.as_deref()),
        officer_id: String::new(),
        notice,
        problem: None,
    };
    render(&page, lang)
}

#[derive(Deserialize)]
struct LoginForm {
    officer_id: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Whether the console's cookie must be `Secure`: the server serves TLS itself, or the proxy in
/// front says the browser's request came over HTTPS.
fn over_tls(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.tls.is_some()
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a session (`Max-Age` 0 to end it).
fn session_cookie(token: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&value).expect("a token is a header value")
}

/// Signs in with the API's login: the same address limit, back-off and failures, answered on
/// the sign-in page.
async fn login(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    lang: Lang,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let error = |error: ApiError| PageError::Api { error, lang };
    if !same_origin(&headers) {
        return Err(error(ApiError::forbidden("cross_origin_form", "this form was posted from another site")));
    }
    crate::http::routes::auth::limit_address(&state, &address).map_err(error)?;
    let next = safe_next(form.next.as_deref());
    match auth::console_login(&state, form.officer_id.clone(), form.password).await {
        Ok(session) => {
            let to = if session.must_change_password { "/password".to_string() } else { next };
            let mut response = Redirect::to(&to).into_response();
            let cookie = session_cookie(&session.token, CONSOLE_SESSION_SECONDS, over_tls(&state, &headers));
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(response)
        }
        Err(ApiError::Unauthorized { code, .. }) => {
            let page = LoginPage {
                c: Chrome::public(lang, "/login"),
                next,
                officer_id: form.officer_id,
                notice: None,
                problem: Some(format!("{} ({code})", lang.t("工号或密码错误", "Unknown officer or wrong password"))),
            };
            let mut response = render(&page, lang)?;
            *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            Ok(response)
        }
        Err(other) => Err(error(other)),
    }
}

/// Ends the session (as the API's logout does) and forgets the cookie.
async fn logout(State(state): State<AppState>, headers: HeaderMap, posted: Posted<Nothing>) -> PageResult {
    let console = posted.console;
    auth::logout(&state, &console.caller).await.map_err(|e| console.error(e))?;
    let mut response = Redirect::to("/login?done=logout").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", 0, over_tls(&state, &headers)));
    Ok(response)
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    c: Chrome,
    must_change: bool,
    problem: Option<String>,
}

async fn password_page(State(state): State<AppState>, console: Console) -> PageResult {
    let must_change = owes_password(&state, &console.caller.officer_id).await?;
    let lang = console.chrome.lang;
    render(&PasswordPage { c: console.chrome, must_change, problem: None }, lang)
}

/// Whether the account still has a one-time password.
async fn owes_password(state: &AppState, officer_id: &str) -> Result<bool, PageError> {
    let officer = officer_id.to_string();
    let account = state.blocking(move |store| store.account(&officer)).await;
    Ok(account.map_err(|error| PageError::Api { error, lang: Lang::Zh })?.is_some_and(|a| a.must_change_password))
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    repeat_password: String,
}

/// Changes the officer's password with the API's use case: every session ends, this one too,
/// and the browser signs in again.
async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted { console, form }: Posted<PasswordForm>,
) -> PageResult {
    let lang = console.chrome.lang;
    let problem = if form.new_password != form.repeat_password {
        Some(lang.t("两次输入的新密码不一致", "The two new passwords differ").to_string())
    } else {
        match auth::change_password(&state, &console.caller, form.current_password, form.new_password).await {
            Ok(()) => {
                let mut response = Redirect::to("/login?done=password").into_response();
                response.headers_mut().insert(header::SET_COOKIE, session_cookie("", 0, over_tls(&state, &headers)));
                return Ok(response);
            }
            Err(e @ (ApiError::Unauthorized { .. } | ApiError::Unprocessable { .. })) => {
                let (_, code) = e.status_and_code();
                Some(format!("{e} ({code})"))
            }
            Err(e) => return Err(console.error(e)),
        }
    };
    let must_change = owes_password(&state, &console.caller.officer_id).await?;
    let mut response = render(&PasswordPage { c: console.chrome, must_change, problem }, lang)?;
    *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_this_sites_paths() {
        assert_eq!(safe_next(Some("/review/records?page=2")), "/review/records?page=2");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict() {
        let cookie = session_cookie("t", 60, false);
        assert_eq!(cookie, "fieldsync_console=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        assert!(session_cookie("t", 60, true).to_str().unwrap().ends_with("; Secure"));
    }
}
