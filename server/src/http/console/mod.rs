//! The console: the server-rendered HTML pages supervisors, reviewers and administrators work
//! in, and the public pages, at `/`.
//!
//! - Pages are askama templates under `server/templates/console/`, compiled into the binary and
//!   escaped by default; forms are plain HTML forms that work without script.
//! - A handler parses, calls the same service function the JSON API calls (with the session's
//!   [`Caller`]), and renders; the rules live in the services, never here.
//! - A session is a cookie ([`SESSION_COOKIE`]: HttpOnly, SameSite=Strict, Secure behind TLS)
//!   holding a console token of the account's ordinary session (`service::auth::console_login`):
//!   a logout, a password change or a revocation ends it as it ends the API's tokens.
//! - Every form posted carries the session's CSRF token; [`Posted`] refuses one without it (and
//!   one whose `Origin` is another site) before its handler runs.
//! - Labels are Chinese first, English when the browser's first language is English
//!   ([`Lang`]).

pub mod admin;
pub mod public;
pub mod reviewer;
pub mod session;
pub mod supervisor;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::service::ApiError;
use crate::service::auth::{Caller, authenticate_console};

/// The cookie that carries a console session.
pub const SESSION_COOKIE: &str = "fieldsync_console";

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console.css", get(stylesheet))
        .route("/favicon.ico", get(icon))
        .route("/favicon.svg", get(icon))
        .merge(session::router())
        .merge(public::router())
        .merge(supervisor::router())
        .merge(reviewer::router())
        .merge(admin::router())
}

async fn stylesheet() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")];
    (headers, include_str!("console.css")).into_response()
}

async fn icon() -> Response {
    let headers = [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=86400")];
    (headers, include_str!("favicon.svg")).into_response()
}

/// The language of a page: Chinese unless the browser's first language is English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The language `Accept-Language` asks for first, of the two the console speaks.
    pub fn of(headers: &HeaderMap) -> Lang {
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut best: Option<(f32, Lang)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else if tag == "zh" || tag.starts_with("zh-") {
                Lang::Zh
            } else {
                continue;
            };
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, lang)| lang)
    }

    /// `zh` or `en`, as this language is.
    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// The `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        self.t("zh-CN", "en")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of(&parts.headers))
    }
}

/// One entry of the menu.
pub struct MenuItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// What every page's frame shows: its language, who is signed in, the menu of their roles, and
/// the CSRF token of their forms.
pub struct Chrome {
    pub lang: Lang,
    pub officer_id: Option<String>,
    pub roles: Vec<String>,
    pub csrf: String,
    /// The path of the page, to mark its menu entry.
    pub path: String,
}

impl Chrome {
    /// The frame of a page no one need be signed in to see.
    pub fn public(lang: Lang, path: &str) -> Chrome {
        Chrome { lang, officer_id: None, roles: Vec::new(), csrf: String::new(), path: path.to_string() }
    }

    /// `zh` or `en`, as the page's language is.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.t(zh, en)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The menu: the public pages, then one group per role the officer holds, each entry marked
    /// when the page is under it.
    pub fn menu(&self) -> Vec<(&'static str, Vec<MenuItem>)> {
        let t = |zh: &'static str, en: &'static str| self.lang.t(zh, en);
        let item = |href: &'static str, label: &'static str| MenuItem {
            href,
            label,
            active: self.path == href || self.path.starts_with(&format!("{href}/")),
        };
        let mut groups = Vec::new();
        if self.has_role("supervisor") {
            groups.push((
                t("监督", "Supervision"),
                vec![
                    item("/supervisor/campaigns", t("双随机抽查", "Random checks")),
                    item("/supervisor/overdue", t("逾期公示", "Overdue results")),
                    item("/supervisor/tasks", t("检查任务", "Tasks")),
                    item("/supervisor/inspectors", t("执法人员名录", "Inspector registry")),
                    item("/supervisor/recusals", t("回避", "Recusals")),
                ],
            ));
        }
        if self.has_role("reviewer") {
            groups.push((
                t("审核", "Review"),
                vec![
                    item("/review/records", t("检查笔录", "Records")),
                    item("/review/quarantine", t("被拒修改", "Quarantine")),
                ],
            ));
        }
        if self.has_role("admin") {
            groups.push((
                t("管理", "Administration"),
                vec![
                    item("/admin/officers", t("人员与角色", "Officers and roles")),
                    item("/admin/certificates", t("执法证", "Certificates")),
                    item("/admin/devices", t("设备", "Devices")),
                    item("/admin/entities", t("检查对象名录", "Entity registry")),
                    item("/admin/matters", t("抽查事项清单", "Matter list")),
                    item("/admin/calendar", t("工作日历", "Calendar")),
                    item("/admin/settings", t("系统设置", "Settings")),
                    item("/admin/operations", t("备份与检查", "Backup and check")),
                ],
            ));
        }
        groups.push((
            t("公开", "Public"),
            vec![
                item("/public/matters", t("抽查事项清单", "Matter list")),
                item("/public/officers", t("执法人员", "Enforcement officers")),
                item("/public/campaigns", t("抽查公示", "Random checks")),
            ],
        ));
        groups
    }
}

/// A signed-in console caller: the session's [`Caller`], the page's frame and whether the
/// request came over TLS. Extracting it answers a request with no valid session by sending the
/// browser to the sign-in page, and one whose account owes a new password to the password page.
pub struct Console {
    pub caller: Caller,
    pub chrome: Chrome,
}

impl Console {
    /// Refuses the page unless the caller holds one of `roles` (the services check again).
    pub fn require(&self, roles: &[&str]) -> Result<(), PageError> {
        self.caller.require(roles).map_err(|e| self.error(e))
    }

    /// `error` as a page in this console's language.
    pub fn error(&self, error: ApiError) -> PageError {
        PageError::Api { error, lang: self.chrome.lang }
    }

    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.chrome.t(zh, en)
    }
}

/// The console session's token in the request's cookies.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Where the sign-in page sends the browser back to: the request's path and query, when it is a
/// path of this site.
fn return_path(parts: &Parts) -> String {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if path.starts_with('/') && !path.starts_with("//") { path.to_string() } else { "/".to_string() }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(&parts.headers);
        let path = parts.uri.path().to_string();
        let Some(token) = session_cookie(&parts.headers) else {
            return Err(PageError::SignIn { next: return_path(parts) });
        };
        let changing_password = path == "/password";
        match authenticate_console(state, token, changing_password).await {
            Ok((caller, csrf)) => {
                let chrome = Chrome {
                    lang,
                    officer_id: Some(caller.officer_id.clone()),
                    roles: caller.roles.clone(),
                    csrf,
                    path,
                };
                Ok(Console { caller, chrome })
            }
            Err(ApiError::Forbidden { code: "password_change_required", .. }) => Err(PageError::ChangePassword),
            Err(ApiError::Unauthorized { .. }) => Err(PageError::SignIn { next: return_path(parts) }),
            Err(error) => Err(PageError::Api { error, lang }),
        }
    }
}

/// A posted console form: its session, checked against the form's `csrf` field and the request's
/// `Origin`, and the form's fields as `T` (`application/x-www-form-urlencoded`). A form without
/// the session's token is refused 403 `csrf_mismatch` and its handler never runs.
pub struct Posted<T> {
    pub console: Console,
    pub form: T,
}

/// Whether the request's `Origin`, when it sends one, is this site (`Host`).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Constant-time equality of two tokens.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let refused = |code: &'static str, message: &str| {
            console.error(ApiError::Forbidden { code, message: message.to_string() })
        };
        if !same_origin(&parts.headers) {
            return Err(refused("cross_origin_form", "this form was posted from another site"));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| console.error(ApiError::bad_request("unreadable_body", e.body_text())))?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| console.error(ApiError::bad_request("invalid_form", e.to_string())))?;
        let token = fields.iter().find(|(name, _)| name == "csrf").map(|(_, value)| value.as_str()).unwrap_or("");
        if !same_token(token, &console.chrome.csrf) {
            return Err(refused("csrf_mismatch", "the form's CSRF token is missing or not this session's"));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| console.error(ApiError::unprocessable("invalid_form", e.to_string())))?;
        Ok(Posted { console, form })
    }
}

/// Why a console page is not shown: the browser must sign in or change its one-time password
/// first, or the use case refused (shown as a page with the refusal's status and code).
pub enum PageError {
    SignIn { next: String },
    ChangePassword,
    Api { error: ApiError, lang: Lang },
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    c: Chrome,
    status: u16,
    code: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
                Redirect::to(&format!("/login?{query}")).into_response()
            }
            PageError::ChangePassword => Redirect::to("/password").into_response(),
            PageError::Api { error, lang } => {
                let (status, code) = error.status_and_code();
                let message = match &error {
                    ApiError::Internal(detail) => {
                        tracing::error!(%detail, "internal error");
                        lang.t("服务器内部错误", "internal error").to_string()
                    }
                    other => other.to_string(),
                };
                let page = ErrorPage { c: Chrome::public(lang, ""), status, code, message };
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = match page.render() {
                    Ok(html) => (status, Html(html)).into_response(),
                    Err(e) => (status, e.to_string()).into_response(),
                };
                if let ApiError::RateLimited { retry_after_s } = error
                    && let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string())
                {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
        }
    }
}

/// A rendered page, or the page of the error that kept it from rendering.
pub type PageResult = Result<Response, PageError>;

/// Renders `template` as the answer.
pub fn render(template: &impl Template, lang: Lang) -> PageResult {
    template
        .render()
        .map(|html| Html(html).into_response())
        .map_err(|e| PageError::Api { error: ApiError::Internal(format!("template: {e}")), lang })
}

/// The browser is sent on to `to` after a form did what it asked (303 See Other).
pub fn see_other(to: &str) -> PageResult {
    Ok(Redirect::to(to).into_response())
}

/// A page of a paginated list: `page` counts from 1.
#[derive(Clone, Copy, Debug)]
pub struct Pagination {
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
}

impl Pagination {
    pub const PER_PAGE: usize = 50;

    pub fn new(page: Option<usize>, total: usize) -> Self {
        let per_page = Self::PER_PAGE;
        let last = total.div_ceil(per_page).max(1);
        Pagination { page: page.unwrap_or(1).clamp(1, last), per_page, total }
    }

    /// How many items come before this page.
    pub fn offset(&self) -> usize {
        (self.page - 1) * self.per_page
    }

    /// The items of this page.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = ((self.page - 1) * self.per_page).min(items.len());
        &items[start..(start + self.per_page).min(items.len())]
    }

    pub fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }

    pub fn previous(&self) -> Option<usize> {
        (self.page > 1).then(|| self.page - 1)
    }

    pub fn next(&self) -> Option<usize> {
        (self.page < self.pages()).then(|| self.page + 1)
    }
}

/// A form with nothing to say but its CSRF token (a button).
#[derive(serde::Deserialize)]
pub struct Nothing {}

/// The day of an instant in the bureau's time zone, `YYYY-MM-DD`.
pub fn day(ms: i64) -> String {
    sync_core::campaigns::date_of_ms(ms).map(|d| d.to_string()).unwrap_or_default()
}

/// A time in milliseconds since the epoch as the console shows it: `YYYY-MM-DD HH:MM:SS` in
/// China Standard Time (UTC+8, no daylight saving), the officers' clock.
pub fn time(ms: i64) -> String {
    let Ok(at) = jiff::Timestamp::from_millisecond(ms) else { return ms.to_string() };
    let offset = jiff::tz::Offset::constant(8);
    at.to_zoned(jiff::tz::TimeZone::fixed(offset)).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Lang {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(value).unwrap());
        Lang::of(&headers)
    }

    #[test]
    fn chinese_unless_the_browser_asks_for_english_first() {
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::Zh);
        assert_eq!(accept("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(accept("en-US,en;q=0.9"), Lang::En);
        assert_eq!(accept("en;q=0.5,zh;q=0.9"), Lang::Zh);
        assert_eq!(accept("fr-FR,en;q=0.8"), Lang::En);
        assert_eq!(accept("fr-FR"), Lang::Zh);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; fieldsync_console=tok.en; b=2"));
        assert_eq!(session_cookie(&headers), Some("tok.en"));
        headers.insert(header::COOKIE, HeaderValue::from_static("fieldsync_consolex=no"));
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn a_form_from_another_origin_is_not_this_sites() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers), "no Origin: a form of this site's own page in an old browser");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn pages_hold_fifty_and_stay_in_range() {
        let items: Vec<usize> = (0..120).collect();
        let first = Pagination::new(None, items.len());
        assert_eq!((first.slice(&items).len(), first.pages(), first.previous(), first.next()), (50, 3, None, Some(2)));
        let last = Pagination::new(Some(9), items.len());
        assert_eq!((last.page, last.slice(&items), last.next()), (3, &items[100..], None));
        assert_eq!(Pagination::new(Some(0), 0).slice(&items[..0]).len(), 0);
    }

    #[test]
    fn times_are_shown_in_china_standard_time() {
        assert_eq!(time(0), "1970-01-01 08:00:00");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", "abc"));
    }
}
