//! The administrator's pages for the server itself: its settings (read-only) and the backup and check.

use super::*;

// Settings.

#[derive(Template)]
#[template(path = "console/admin/settings.html")]
pub(super) struct SettingsPage {
    pub(super) c: Chrome,
    /// (what, value, where it is set)
    pub(super) settings: Vec<(&'static str, String, &'static str)>,
}

pub(super) fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// The bureau's settings the server runs with: read-only, from `serve`'s options.
pub(super) async fn settings_page(State(state): State<AppState>, console: Console) -> PageResult {
    console.require(ROLE)?;
    let config = &state.config;
    let t = |zh: &'static str, en: &'static str| console.t(zh, en);
    let fixed = t("内置默认值（Config::new）", "built-in default (Config::new)");
    let seconds = |d: std::time::Duration| format!("{} s", d.as_secs());
    let settings = vec![
        (t("数据目录", "Data folder"), config.data_dir.display().to_string(), "--data / FIELDSYNC_DATA"),
        (
            t("透明日志来源名", "Transparency log origin"),
            config.log_origin.clone(),
            "--log-origin / FIELDSYNC_LOG_ORIGIN",
        ),
        (t("检查组最多人数", "Most officers on a team"), config.max_team_size.to_string(), fixed),
        (
            t("抽查活动每个列表最多项数", "Most items in a campaign's lists"),
            config.max_campaign_list_items.to_string(),
            fixed,
        ),
        (t("每名人员最多设备数", "Devices per officer"), config.max_devices_per_officer.to_string(), fixed),
        (
            t("每名人员未用的登记挑战数", "Open enrolment challenges per officer"),
            config.max_open_challenges_per_officer.to_string(),
            fixed,
        ),
        (t("请求体上限（同步、导入）", "Largest body (sync, imports)"), bytes(config.max_body_bytes as u64), fixed),
        (t("表单请求体上限", "Largest form body"), bytes(config.max_form_body_bytes as u64), fixed),
        (t("登录等小请求体上限", "Largest small body (login, ...)"), bytes(config.max_small_body_bytes as u64), fixed),
        (
            t("请求体内存总量上限", "Request bodies in memory, all together"),
            bytes(config.max_body_memory_bytes as u64),
            "--max-body-memory-mib / FIELDSYNC_MAX_BODY_MEMORY_MIB",
        ),
        (
            t("每个刷新令牌每分钟尝试次数", "Refresh attempts per token per minute"),
            config.auth_attempts_per_minute.to_string(),
            "--auth-attempts-per-minute / FIELDSYNC_AUTH_ATTEMPTS_PER_MINUTE",
        ),
        (
            t("每个地址每分钟登录次数", "Login attempts per address per minute"),
            config.auth_attempts_per_minute_per_address.to_string(),
            "--auth-attempts-per-minute-per-address / FIELDSYNC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS",
        ),
        (
            t("密码连续错误免等待次数", "Failed passwords before backing off"),
            config.auth_free_failures.to_string(),
            fixed,
        ),
        (
            t("密码错误等待（首次 / 最长）", "Password back-off (first / longest)"),
            format!("{} ms / {} ms", config.auth_backoff_base_ms, config.auth_backoff_max_ms),
            fixed,
        ),
        (t("单个附件上限", "Largest blob"), bytes(config.max_blob_bytes), fixed),
        (t("每台设备未完成上传数", "Unfinished uploads per device"), config.max_uploads_per_device.to_string(), fixed),
        (
            t("未完成上传的保留时间", "Unfinished upload kept for"),
            format!("{} h", config.upload_expiry_ms / 3_600_000),
            fixed,
        ),
        (t("每次同步最多笔录数", "Records per sync"), config.max_documents_per_sync.to_string(), fixed),
        (t("每条笔录最多修改块数", "Change chunks per record"), config.max_changes_per_document.to_string(), fixed),
        (t("设备时钟允许超前", "Device clock allowed ahead"), format!("{} s", config.max_clock_skew_ms / 1000), fixed),
        (
            t("每次上传执法日志条数", "Enforcement-log entries per upload"),
            config.max_log_entries_per_upload.to_string(),
            fixed,
        ),
        (t("执法日志单条大小上限", "Largest enforcement-log entry"), bytes(config.max_log_payload_bytes as u64), fixed),
        (t("公开页面每页条数", "Public page size"), config.max_public_page.to_string(), fixed),
        (
            t("请求头超时", "Request head timeout"),
            seconds(config.header_read_timeout),
            "--header-read-timeout-s / FIELDSYNC_HEADER_READ_TIMEOUT_S",
        ),
        (
            t("请求体超时", "Request body timeout"),
            seconds(config.body_read_timeout),
            "--body-read-timeout-s / FIELDSYNC_BODY_READ_TIMEOUT_S",
        ),
        (
            t("空闲连接超时", "Idle connection timeout"),
            seconds(config.idle_timeout),
            "--idle-timeout-s / FIELDSYNC_IDLE_TIMEOUT_S",
        ),
        (
            t("每个地址最多连接数", "Connections per address"),
            config.max_connections_per_address.to_string(),
            "--max-connections-per-address / FIELDSYNC_MAX_CONNECTIONS_PER_ADDRESS",
        ),
        (
            t("HTTPS", "HTTPS"),
            if config.tls.is_some() {
                t("由本服务提供", "served by this server")
            } else {
                t("否（由代理提供或未用）", "no (a proxy's, or none)")
            }
            .to_string(),
            "--tls-cert, --tls-key / FIELDSYNC_TLS_CERT, FIELDSYNC_TLS_KEY",
        ),
        (
            t("/metrics", "/metrics"),
            match (config.metrics_on_api, config.metrics_token.is_some()) {
                (true, true) => t("本地址，需令牌", "on this address, with a token"),
                (true, false) => t("本地址", "on this address"),
                (false, _) => t("不在本地址", "not on this address"),
            }
            .to_string(),
            "--metrics-listen, --metrics-token / FIELDSYNC_METRICS_LISTEN, FIELDSYNC_METRICS_TOKEN",
        ),
    ];
    let lang = console.chrome.lang;
    render(&SettingsPage { c: console.chrome, settings }, lang)
}

// Backup and check.

#[derive(Template)]
#[template(path = "console/admin/operations.html")]
pub(super) struct OperationsPage {
    pub(super) c: Chrome,
    pub(super) backup: Option<(String, String)>,
    pub(super) check: Option<CheckView>,
}

pub(super) struct CheckView {
    pub(super) ok: bool,
    /// (ok, line)
    pub(super) lines: Vec<(bool, String)>,
}

pub(super) fn check_view(report: &admin::CheckReport) -> CheckView {
    let mut lines = Vec::new();
    // SQLite's integrity check lists problems; none (or its one `ok`) is a sound database.
    let database_ok = report.database.iter().all(|l| l == "ok");
    let database = if database_ok { "integrity check passed".to_string() } else { report.database.join("; ") };
    lines.push((database_ok, format!("database: {database}")));
    lines.push((
        report.blobs.is_empty(),
        format!("blobs: {} checked, {} problems", report.blobs_checked, report.blobs.len()),
    ));
    for blob in &report.blobs {
        lines.push((false, format!("blob {}: {}", blob.sha256, blob.problem)));
    }
    lines.push((
        report.records.is_empty(),
        format!("records: {} checked, {} problems", report.records_checked, report.records.len()),
    ));
    for record in &report.records {
        lines.push((false, format!("record {}: {}", record.record_id, record.problem)));
    }
    lines.push((
        report.transparency_log.is_empty(),
        format!("transparency log: {} problems", report.transparency_log.len()),
    ));
    for problem in &report.transparency_log {
        lines.push((false, format!("transparency log: {problem}")));
    }
    CheckView { ok: report.ok, lines }
}

pub(super) async fn operations_page(console: Console) -> PageResult {
    console.require(ROLE)?;
    let lang = console.chrome.lang;
    render(&OperationsPage { c: console.chrome, backup: None, check: None }, lang)
}

/// Copies the database into the data folder's `backups/`; the page shows the file and its size.
pub(super) async fn backup(State(state): State<AppState>, Posted { console, .. }: Posted<Nothing>) -> PageResult {
    console.require(ROLE)?;
    let (path, size) = admin::backup(&state, &console.caller).await.map_err(|e| console.error(e))?;
    let lang = console.chrome.lang;
    let backup = Some((path.display().to_string(), format!("{size} B ({})", bytes_rounded(size))));
    render(&OperationsPage { c: console.chrome, backup, check: None }, lang)
}

pub(super) fn bytes_rounded(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

/// Checks the database, the blobs' files and the transparency log; the page shows each line.
pub(super) async fn check(State(state): State<AppState>, Posted { console, .. }: Posted<Nothing>) -> PageResult {
    console.require(ROLE)?;
    let report = admin::check_all(&state, &console.caller).await.map_err(|e| console.error(e))?;
    let lang = console.chrome.lang;
    render(&OperationsPage { c: console.chrome, backup: None, check: Some(check_view(&report)) }, lang)
}
