//! The device's one error type, each variant with a stable machine-readable code.

use std::path::PathBuf;

/// Everything that can go wrong on the device. [`ClientError::code`] is stable: scripts and the
/// mobile app match on it; the message is for people.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("this device is not enrolled: run `fieldsync enroll` first")]
    NotEnrolled,
    #[error("this device folder is already enrolled")]
    AlreadyEnrolled,
    #[error("no task {task_id} on this device (run `fieldsync sync` to fetch your tasks)")]
    UnknownTask { task_id: String },
    #[error("no record {record_id} on this device")]
    UnknownRecord { record_id: String },
    #[error("no record selected: name one with --record or create one with `fieldsync record new`")]
    NoCurrentRecord,
    #[error("{officer_id} is not on the team of task {task_id}")]
    NotOnTeam { officer_id: String, task_id: String },
    #[error("invalid {what}: {detail}")]
    InvalidInput { what: String, detail: String },
    #[error("checklist item {code} is not on the checklist of task {task_id}'s matter")]
    UnknownChecklistItem { code: String, task_id: String },
    #[error("edit refused: {detail}")]
    EditRefused {
        /// The rule that refused it, when one did (`P1`, `P2`, `locked`, ...).
        rule: Option<String>,
        detail: String,
    },
    #[error("photo file {path} cannot be read: {error}")]
    PhotoMissing { path: PathBuf, error: String },
    #[error("{path} is not an image this device can read: {error}")]
    NotAnImage { path: PathBuf, error: String },
    #[error("the record {record_id} was edited by another process meanwhile; try again")]
    ConcurrentEdit { record_id: String },
    #[error("another sync of this device is running")]
    SyncBusy,
    #[error("the server cannot be reached: {detail}")]
    Network { detail: String },
    #[error("the server refused the request ({status} {code}): {message}")]
    Server { status: u16, code: String, message: String },
    #[error("the server's session has ended: log in again with `fieldsync login`")]
    LoginRequired,
    #[error("refusing plain http:// to {url}: use https://, or --insecure-http if you mean it")]
    InsecureServer { url: String },
    #[error(
        "the server's certificate is not signed by a trusted CA (enroll with --ca-cert for the bureau's own): {detail}"
    )]
    TlsUnknownCa { detail: String },
    #[error("the server's certificate is not for this host name: {detail}")]
    TlsWrongHost { detail: String },
    #[error("the server's certificate has expired or is not valid yet: {detail}")]
    TlsExpired { detail: String },
    #[error("the TLS connection to the server failed: {detail}")]
    TlsFailed { detail: String },
    #[error("the server's answer is not understood: {detail}")]
    Protocol { detail: String },
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: String },
    #[error("the device store is damaged: {detail}")]
    CorruptStore { detail: String },
    #[error("the device store was written by a newer fieldsync (version {found}, this one knows {known})")]
    StoreTooNew { found: usize, known: usize },
    #[error("the published draw does not match its inputs: {detail}")]
    DrawMismatch { detail: String },
    #[error("the published draw carries no commitment to its seed (or not its times)")]
    CommitmentMissing,
    #[error("the published draw's commitment does not hold: {detail}")]
    CommitmentInvalid { detail: String },
    #[error("the evidence package does not verify: {items:?} fail\n{report}")]
    EvidenceInvalid { items: Vec<String>, report: String },
    #[error(
        "no trusted log key: give the bureau's published key with --log-key, or --trust-package-key to trust the package's own ({})",
        package_key.as_deref().unwrap_or("unreadable")
    )]
    UntrustedKey { package_key: Option<String> },
    #[error("{path}: a report is written as .pdf or .html, named by the file's extension")]
    ReportFormat { path: PathBuf },
    #[error(
        "no font with Chinese glyphs for the PDF report: give one with --font (install fonts-noto-cjk, or name any CJK .ttf, .otf or .ttc); tried {}",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    FontNotFound { tried: Vec<PathBuf> },
    #[error("{path}: not a font the report can use: {detail}")]
    FontUnusable { path: PathBuf, detail: String },
    #[error("the report cannot be written: {detail}")]
    ReportFailed { detail: String },
    #[error("the device store failed: {0}")]
    Store(#[from] rusqlite::Error),
}

impl ClientError {
    /// The stable code of this error.
    pub fn code(&self) -> &str {
        match self {
            ClientError::NotEnrolled => "not_enrolled",
            ClientError::AlreadyEnrolled => "already_enrolled",
            ClientError::UnknownTask { .. } => "unknown_task",
            ClientError::UnknownRecord { .. } => "unknown_record",
            ClientError::NoCurrentRecord => "no_current_record",
            ClientError::NotOnTeam { .. } => "not_on_team",
            ClientError::InvalidInput { .. } => "invalid_input",
            ClientError::UnknownChecklistItem { .. } => "unknown_checklist_item",
            ClientError::EditRefused { .. } => "edit_refused",
            ClientError::PhotoMissing { .. } => "photo_missing",
            ClientError::NotAnImage { .. } => "not_an_image",
            ClientError::ConcurrentEdit { .. } => "concurrent_edit",
            ClientError::SyncBusy => "sync_busy",
            ClientError::Network { .. } => "network",
            ClientError::Server { .. } => "server_refused",
            ClientError::LoginRequired => "login_required",
            ClientError::InsecureServer { .. } => "insecure_http",
            ClientError::TlsUnknownCa { .. } => "tls_unknown_ca",
            ClientError::TlsWrongHost { .. } => "tls_wrong_host",
            ClientError::TlsExpired { .. } => "tls_certificate_expired",
            ClientError::TlsFailed { .. } => "tls_failed",
            ClientError::Protocol { .. } => "protocol",
            ClientError::Io { .. } => "io",
            ClientError::CorruptStore { .. } => "corrupt_store",
            ClientError::StoreTooNew { .. } => "store_too_new",
            ClientError::DrawMismatch { .. } => "draw_mismatch",
            ClientError::CommitmentMissing => "commitment_missing",
            ClientError::CommitmentInvalid { .. } => "commitment_invalid",
            ClientError::EvidenceInvalid { .. } => "evidence_invalid",
            ClientError::UntrustedKey { .. } => "untrusted_key",
            ClientError::ReportFormat { .. } => "report_format",
            ClientError::FontNotFound { .. } => "font_not_found",
            ClientError::FontUnusable { .. } => "font_unusable",
            ClientError::ReportFailed { .. } => "report_failed",
            ClientError::Store(_) => "store",
        }
    }

    /// Details for machine readers, beside code and message.
    pub fn details(&self) -> serde_json::Value {
        match self {
            ClientError::EditRefused { rule: Some(rule), detail } if rule == "incomplete_record" => {
                serde_json::json!({ "rule": rule, "missing": sync_core::rules::missing_items(detail) })
            }
            ClientError::EditRefused { rule: Some(rule), .. } => serde_json::json!({ "rule": rule }),
            ClientError::UnknownChecklistItem { code, task_id } => {
                serde_json::json!({ "code": code, "task_id": task_id })
            }
            ClientError::Server { status, code, .. } => serde_json::json!({ "status": status, "code": code }),
            ClientError::UnknownTask { task_id } => serde_json::json!({ "task_id": task_id }),
            ClientError::EvidenceInvalid { items, .. } => serde_json::json!({ "failed_items": items }),
            ClientError::UntrustedKey { package_key } => serde_json::json!({ "package_key": package_key }),
            ClientError::UnknownRecord { record_id } => serde_json::json!({ "record_id": record_id }),
            _ => serde_json::Value::Null,
        }
    }

    /// Whether trying again later may succeed (the network, an overloaded server).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network { .. } => true,
            ClientError::Server { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;
