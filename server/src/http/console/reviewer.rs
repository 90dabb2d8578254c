//! The reviewer's pages: the queue of records (filtered and paginated), one record as the form
//! 现场检查笔录 with its photos, conflicts, history, enforcement log, transparency-log status and
//! held changes, its evidence package built and verified, and the quarantine of refused changes.
//! Every page needs the `reviewer` role, checked here and again by the services; every read goes
//! through the same service functions (and access rules) as the JSON API.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use schemas::log::{EntryKind, LogFinding, RecordLog};
use schemas::{ChecklistResult, InspectionRecord, MeasureKind, PartySignature, PersonRole, PhotoRef, RecordStatus};
use serde::Deserialize;

use super::{Chrome, Console, PageResult, Pagination, Posted, render, see_other, time};
use crate::http::AppState;
use crate::service::ApiError;
use crate::service::evidence::{self, Blobs, VerifiedPackage};
use crate::service::records::{self, HistoryChange, QueueQuery};
use crate::service::review::{self, HeldChange};
use crate::service::transparency::{self, RecordInclusion};
use crate::service::{blobs, enforcement_log};
use crate::store::{BlobMetadata, QuarantinedChange, SummaryDate};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/review", get(|| async { Redirect::to("/review/records") }))
        .route("/review/records", get(queue_page))
        .route("/review/records/{record_id}", get(record_page))
        .route("/review/records/{record_id}/photos/{sha256}", get(photo_page))
        .route("/review/records/{record_id}/evidence", post(verify_evidence))
        .route("/review/records/{record_id}/evidence.tar", get(download_evidence))
        .route("/review/records/{record_id}/held/{change_hash}", post(decide_held))
        .route("/review/blobs/{sha256}", get(blob))
        .route("/review/blobs/{sha256}/thumbnail", get(thumbnail))
        .route("/review/quarantine", get(quarantine_page))
}

const ROLE: &[&str] = &["reviewer"];

/// The statuses a record may have, as stored.
const STATUSES: [&str; 3] = ["draft", "signing", "locked"];

fn invalid_query(message: String) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// `text` with nothing but spaces as absent.
fn given(text: &Option<String>) -> Option<String> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
}

/// The first instant (Unix ms) of the day `text` (`YYYY-MM-DD`) in China Standard Time, or of
/// the day after it when `next_day`.
fn day_ms(name: &str, text: &str, next_day: bool) -> Result<i64, ApiError> {
    let date: jiff::civil::Date =
        text.parse().map_err(|_| invalid_query(format!("{name}: {text:?} is not a date (YYYY-MM-DD)")))?;
    let date = if next_day { date.tomorrow().map_err(|e| invalid_query(e.to_string()))? } else { date };
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8));
    Ok(date.to_zoned(zone).map_err(|e| invalid_query(e.to_string()))?.timestamp().as_millisecond())
}

/// The queue's filters, as the form sends them.
#[derive(Deserialize, Default)]
struct QueueForm {
    status: Option<String>,
    task: Option<String>,
    officer: Option<String>,
    entity: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// `started` (the default) or `updated`.
    on: Option<String>,
    page: Option<usize>,
}

impl QueueForm {
    fn status_is(&self, status: &str) -> bool {
        self.status.as_deref() == Some(status)
    }

    fn query(&self) -> Result<QueueQuery, ApiError> {
        let status = given(&self.status);
        if let Some(status) = &status
            && !STATUSES.contains(&status.as_str())
        {
            return Err(invalid_query(format!("status is one of {}, not {status:?}", STATUSES.join(", "))));
        }
        let date = match given(&self.on).as_deref() {
            None | Some("started") => SummaryDate::Started,
            Some("updated") => SummaryDate::Updated,
            Some(other) => return Err(invalid_query(format!("on is `started` or `updated`, not {other:?}"))),
        };
        let from_ms = given(&self.from).map(|t| day_ms("from", &t, false)).transpose()?;
        let to_ms = given(&self.to).map(|t| day_ms("to", &t, true)).transpose()?;
        Ok(QueueQuery {
            task_id: given(&self.task),
            entity_id: given(&self.entity),
            status,
            officer_id: given(&self.officer),
            from_ms,
            to_ms,
            date,
            offset: 0,
            limit: Pagination::PER_PAGE,
        })
    }

    /// The filters as a query string, for the pager's links.
    fn link(&self, page: usize) -> String {
        let pairs: Vec<(&str, String)> = [
            ("status", &self.status),
            ("task", &self.task),
            ("officer", &self.officer),
            ("entity", &self.entity),
            ("from", &self.from),
            ("to", &self.to),
            ("on", &self.on),
        ]
        .into_iter()
        .filter_map(|(name, value)| given(value).map(|v| (name, v)))
        .chain([("page", page.to_string())])
        .collect();
        format!("/review/records?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
    }
}

#[derive(Template)]
#[template(path = "console/reviewer/records.html")]
struct QueuePage {
    c: Chrome,
    rows: Vec<QueueRow>,
    pages: Pagination,
    previous: Option<String>,
    next: Option<String>,
    filter: QueueForm,
    statuses: [&'static str; 3],
}

struct QueueRow {
    record_id: String,
    task_id: String,
    entity: String,
    status: String,
    started: String,
    updated: String,
    conclusion: String,
    conflicts: usize,
}

/// At most `n` characters of `text`, with an ellipsis when cut.
fn excerpt(text: &str, n: usize) -> String {
    let mut cut: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        cut.push('…');
    }
    cut
}

async fn queue_page(State(state): State<AppState>, console: Console, Query(filter): Query<QueueForm>) -> PageResult {
    console.require(ROLE)?;
    let query = filter.query().map_err(|e| console.error(e))?;
    // The page asked for, read in the store; past the last page, the last page.
    let wanted = Pagination::new(filter.page, usize::MAX);
    let page_of = |pages: &Pagination| QueueQuery { offset: pages.offset(), ..query.clone() };
    let (mut total, mut found) =
        records::queue(&state, &console.caller, page_of(&wanted)).await.map_err(|e| console.error(e))?;
    let pages = Pagination::new(filter.page, total);
    if pages.page != wanted.page {
        (total, found) =
            records::queue(&state, &console.caller, page_of(&pages)).await.map_err(|e| console.error(e))?;
    }
    let pages = Pagination::new(Some(pages.page), total);
    let rows = found
        .into_iter()
        .map(|row| {
            let summary = row.summary;
            QueueRow {
                task_id: row.task_id.unwrap_or_default(),
                entity: [summary.entity_id, summary.entity_name].into_iter().flatten().collect::<Vec<_>>().join(" "),
                status: row.status,
                started: summary.started_at_ms.map(time).unwrap_or_default(),
                updated: time(row.updated_at_ms),
                // The conclusion, or what was observed while there is none.
                conclusion: excerpt(
                    summary.conclusion.as_deref().filter(|c| !c.trim().is_empty()).unwrap_or(&summary.observations),
                    60,
                ),
                conflicts: summary.conflicts as usize,
                record_id: summary.record_id,
            }
        })
        .collect();
    let lang = console.chrome.lang;
    let page = QueuePage {
        c: console.chrome,
        rows,
        previous: pages.previous().map(|p| filter.link(p)),
        next: pages.next().map(|p| filter.link(p)),
        pages,
        filter,
        statuses: STATUSES,
    };
    render(&page, lang)
}

fn status_label(c: &Chrome, status: RecordStatus) -> String {
    match status {
        RecordStatus::Draft => c.t("草稿", "draft"),
        RecordStatus::Signing => c.t("签名中", "signing"),
        RecordStatus::Locked => c.t("已锁定", "locked"),
    }
    .to_string()
}

fn role_label(c: &Chrome, role: PersonRole) -> String {
    match role {
        PersonRole::LegalRepresentative => c.t("法定代表人", "legal representative"),
        PersonRole::Staff => c.t("工作人员", "staff"),
        PersonRole::Witness => c.t("见证人", "witness"),
        PersonRole::Other => c.t("其他", "other"),
    }
    .to_string()
}

fn result_label(c: &Chrome, result: Option<ChecklistResult>) -> (String, &'static str) {
    match result {
        Some(ChecklistResult::Compliant) => (c.t("符合", "compliant").into(), "ok"),
        Some(ChecklistResult::NonCompliant) => (c.t("不符合", "non-compliant").into(), "bad"),
        Some(ChecklistResult::NotApplicable) => (c.t("不适用", "not applicable").into(), ""),
        Some(ChecklistResult::NotChecked) | None => (c.t("未检查", "not checked").into(), "warn"),
    }
}

fn measure_label(c: &Chrome, kind: MeasureKind) -> String {
    match kind {
        MeasureKind::Photograph => c.t("拍照", "photograph"),
        MeasureKind::AudioVideoRecording => c.t("录音录像", "audio/video recording"),
        MeasureKind::CopyDocuments => c.t("复制资料", "copy documents"),
        MeasureKind::Questioning => c.t("询问", "questioning"),
        MeasureKind::Sampling => c.t("采样", "sampling"),
        MeasureKind::OrderToCorrect => c.t("责令改正", "order to correct"),
        MeasureKind::OrderToStop => c.t("责令停止", "order to stop"),
        MeasureKind::SealOrSeizure => c.t("查封扣押", "seal or seizure"),
        MeasureKind::Other => c.t("其他", "other"),
    }
    .to_string()
}

fn kind_label(kind: &EntryKind) -> String {
    serde_json::to_string(kind).unwrap_or_default()
}

fn finding_text(c: &Chrome, finding: &LogFinding) -> String {
    match finding {
        LogFinding::SealWithoutRecording { device_id, seq } => {
            format!(
                "R2 {} ({device_id} #{seq})",
                c.t("查封扣押时无设备在录像", "a seal or seizure while nothing recorded")
            )
        }
        LogFinding::RecordingStoppedWithoutReason { device_id, seq } => {
            format!("R3 {} ({device_id} #{seq})", c.t("录像中止未说明理由", "a recording stopped without a reason"))
        }
        LogFinding::CertificateNotShown { officer_id } => {
            format!("P2 {} ({officer_id})", c.t("未记录出示执法证", "no entry of certificates shown"))
        }
        LogFinding::InspectionRefused { device_id, seq, not_shown } => format!(
            "P2 {} ({device_id} #{seq}): {}",
            c.t("当事人拒绝检查", "the party refused the inspection"),
            if not_shown.is_empty() {
                c.t("执法证均已出示，拒绝无依据", "every certificate had been shown: no ground").to_string()
            } else {
                format!("{} {}", c.t("未出示执法证：", "no certificate shown by"), not_shown.join(", "))
            }
        ),
        LogFinding::PhotoTimeOutsideInterval { sha256, device_id, seq, exif_ms } => format!(
            "{} {sha256} ({device_id} #{seq}, EXIF {})",
            c.t("照片时间不在日志证明的区间内", "a photo's time lies outside the interval the log proves"),
            time(*exif_ms)
        ),
    }
}

/// Who wrote a change: the officer and device of its actor, from the record's history.
fn author(history: &[HistoryChange], actor: &str) -> String {
    match history.iter().find(|h| h.actor == actor) {
        Some(HistoryChange { officer_id: Some(officer), device_id: Some(device), .. }) => {
            format!("{officer} ({device})")
        }
        _ => format!("{} {}", "actor", excerpt(actor, 12)),
    }
}

struct ConflictRow {
    field: String,
    legally_significant: bool,
    /// Each value (as JSON text) with its author and change.
    values: Vec<(String, String, String)>,
}

struct ResolutionRow {
    field: String,
    by: String,
    at: String,
    value: String,
}

struct PhotoRow {
    photo: PhotoRef,
    /// The device's claim in its log: when the entry that took it says, and what the log proves.
    logged: Option<String>,
    /// What the photo's EXIF claims, and its size; or why it cannot be read.
    exif: Vec<(String, String)>,
    thumbnail: bool,
    held: bool,
}

struct HistoryRow {
    at: String,
    author: String,
    revoked: bool,
    operations: usize,
    change_hash: String,
    /// P3: made while the officer's certificate stood suspended (a status entered later with a
    /// past time): the certificate, the status and since when.
    while_suspended: Option<String>,
}

struct LogRow {
    device_id: String,
    seq: u64,
    kind: String,
    claimed: String,
    proven: String,
    outside: bool,
    leaf_index: u64,
}

struct HeldRow {
    change_hash: String,
    device_id: String,
    officer_id: String,
    received: String,
    reason: String,
    decision: Option<String>,
    entries: usize,
}

#[derive(Template)]
#[template(path = "console/reviewer/record.html")]
struct RecordPage {
    c: Chrome,
    record: InspectionRecord,
    task_id: String,
    registry_name: Option<String>,
    status: String,
    locked: bool,
    started: String,
    ended: String,
    people: Vec<(String, String, String, String)>,
    checklist: Vec<(String, String, &'static str, String)>,
    samples: Vec<(String, String, String)>,
    measures: Vec<(String, String)>,
    signatures: Vec<(String, String, String)>,
    conflicts: Vec<ConflictRow>,
    resolutions: Vec<ResolutionRow>,
    photos: Vec<PhotoRow>,
    history: Vec<HistoryRow>,
    log: Vec<LogRow>,
    findings: Vec<String>,
    forked: Vec<String>,
    inclusion: RecordInclusion,
    checkpoint_at: String,
    held: Vec<HeldRow>,
    problem: Option<String>,
}

fn interval_text(interval: &schemas::log::TimeInterval) -> String {
    match interval.not_before_ms {
        Some(before) => format!("{} – {}", time(before), time(interval.not_after_ms)),
        None => format!("… – {}", time(interval.not_after_ms)),
    }
}

fn exif_rows(c: &Chrome, metadata: &BlobMetadata) -> Vec<(String, String)> {
    let claimed = &metadata.claimed;
    let mut rows = Vec::new();
    if let Some(taken_at) = &claimed.taken_at {
        rows.push((
            c.t("拍摄时间（EXIF）", "taken at (EXIF)").to_string(),
            format!("{taken_at}{}", claimed.offset.as_deref().unwrap_or("")),
        ));
    }
    if let (Some(lat), Some(lon)) = (claimed.latitude, claimed.longitude) {
        rows.push((c.t("位置（EXIF）", "position (EXIF)").to_string(), format!("{lat:.6}, {lon:.6}")));
    }
    let device: Vec<&str> = [claimed.make.as_deref(), claimed.model.as_deref()].into_iter().flatten().collect();
    if !device.is_empty() {
        rows.push((c.t("设备（EXIF）", "camera (EXIF)").to_string(), device.join(" ")));
    }
    if let Some(error) = &claimed.exif_error {
        rows.push((c.t("EXIF 错误", "EXIF error").to_string(), error.clone()));
    }
    if rows.is_empty() {
        rows.push((c.t("EXIF", "EXIF").to_string(), c.t("无", "none").to_string()));
    }
    if let Some((w, h)) = metadata.dimensions {
        rows.push((c.t("尺寸", "size").to_string(), format!("{w} × {h}")));
    }
    if let Some((code, message)) = &metadata.error {
        rows.push((c.t("无缩略图", "no thumbnail").to_string(), format!("{message} ({code})")));
    }
    rows
}

async fn record_view(state: &AppState, console: Console, record_id: String, problem: Option<String>) -> PageResult {
    console.require(ROLE)?;
    let caller = &console.caller;
    let fail = |e| console.error(e);
    let stored = records::readable(state, caller, record_id.clone()).await.map_err(fail)?;
    let record = records::record(state, caller, record_id.clone()).await.map_err(fail)?;
    let history = records::history(state, caller, record_id.clone()).await.map_err(fail)?;
    let log: RecordLog = enforcement_log::record_log(state, caller, record_id.clone()).await.map_err(fail)?;
    let inclusion = transparency::record_inclusion(state, caller, record_id.clone()).await.map_err(fail)?;
    let held: Vec<HeldChange> = review::held_changes(state, caller, record_id.clone()).await.map_err(fail)?;
    let registry_name = records::registry_name(state, caller, record_id.clone()).await.map_err(fail)?;
    let c = &console.chrome;

    let mut photos = Vec::new();
    for photo in &record.photos {
        let logged = log
            .entries
            .iter()
            .find(|e| matches!(&e.signed.entry.kind, EntryKind::PhotoTaken { sha256 } if *sha256 == photo.sha256))
            .map(|e| {
                format!(
                    "{} {} ({} {})",
                    c.t("设备称拍摄于", "the device says taken at"),
                    time(e.signed.entry.device_time_ms),
                    c.t("日志证明", "the log proves"),
                    interval_text(&e.interval)
                )
            });
        let (exif, thumbnail, held) = match blobs::readable_metadata(state, caller, &photo.sha256).await {
            Ok((_, metadata)) => (exif_rows(c, &metadata), metadata.thumbnail.is_some(), true),
            Err(ApiError::NotFound { .. }) => (Vec::new(), false, false),
            Err(e) => return Err(console.error(e)),
        };
        photos.push(PhotoRow { photo: photo.clone(), logged, exif, thumbnail, held });
    }

    let conflicts = record
        .conflicts
        .iter()
        .map(|conflict| ConflictRow {
            field: conflict.field.clone(),
            legally_significant: conflict.legally_significant,
            values: conflict
                .values
                .iter()
                .map(|v| (v.value.to_string(), author(&history, &v.actor), v.change_hash.clone()))
                .collect(),
        })
        .collect();
    let resolutions = record
        .resolutions
        .iter()
        .map(|r| ResolutionRow {
            field: r.field.clone(),
            by: r.resolved_by_officer.clone(),
            at: time(r.resolved_at_ms),
            value: r.value.to_string(),
        })
        .collect();
    let people = record
        .people_present
        .iter()
        .map(|p| {
            let signature = match &p.signature {
                PartySignature::NotYet => c.t("未签名", "not signed yet").to_string(),
                PartySignature::Signed { signed_at_ms } => {
                    format!("{} {}", c.t("已签名", "signed"), time(*signed_at_ms))
                }
                PartySignature::Refused { note } => format!("{}：{note}", c.t("拒绝签名", "refused to sign")),
            };
            (p.name.clone(), role_label(c, p.role), p.contact.clone().unwrap_or_default(), signature)
        })
        .collect();
    let checklist = record
        .checklist
        .iter()
        .map(|item| {
            let (label, class) = result_label(c, item.result);
            (item.code.clone(), label, class, item.note.clone().unwrap_or_default())
        })
        .collect();
    let samples = record
        .samples
        .iter()
        .map(|s| (s.sample_id.clone(), s.description.clone(), s.taken_at_ms.map(time).unwrap_or_default()))
        .collect();
    let measures = record.measures.iter().map(|m| (measure_label(c, m.kind), m.note.clone())).collect();
    let signatures = record
        .signatures
        .iter()
        .map(|s| (s.officer_id.clone(), s.certificate_number.clone(), time(s.signed_at_ms)))
        .collect();
    let history_rows = history
        .iter()
        .map(|h| HistoryRow {
            at: time(h.timestamp_ms),
            author: match (&h.officer_id, &h.device_id) {
                (Some(officer), Some(device)) => format!("{officer} ({device})"),
                _ => c.t("创建（无设备）", "genesis (no device)").to_string(),
            },
            revoked: h.device_revoked_at_ms.is_some(),
            operations: h.operations,
            change_hash: h.change_hash.clone(),
            while_suspended: h
                .while_suspended
                .as_ref()
                .map(|w| format!("{} {} {}", w.number, w.standing, time(w.since_ms))),
        })
        .collect();
    let log_rows = log
        .entries
        .iter()
        .map(|e| LogRow {
            device_id: e.signed.entry.device_id.clone(),
            seq: e.signed.entry.seq,
            kind: kind_label(&e.signed.entry.kind),
            claimed: time(e.signed.entry.device_time_ms),
            proven: interval_text(&e.interval),
            outside: e.interval.claim_outside,
            leaf_index: e.leaf_index,
        })
        .collect();
    let findings = log.findings.iter().map(|f| finding_text(c, f)).collect();
    let held_rows = held
        .iter()
        .map(|h| HeldRow {
            change_hash: h.change.change_hash.clone(),
            device_id: h.change.device_id.clone(),
            officer_id: h.change.officer_id.clone().unwrap_or_default(),
            received: time(h.change.received_at_ms),
            reason: reason_text(&h.change),
            decision: h
                .change
                .review
                .as_ref()
                .map(|d| format!("{} {} {}：{}", d.decision, d.reviewer_id, time(d.decided_at_ms), d.note)),
            entries: h.device_log.len(),
        })
        .collect();
    let lang = console.chrome.lang;
    let page = RecordPage {
        task_id: stored.task_id.clone().unwrap_or_default(),
        registry_name,
        status: status_label(&console.chrome, record.status),
        locked: record.status == RecordStatus::Locked,
        started: record.header.started_at_ms.map(time).unwrap_or_default(),
        ended: record.header.ended_at_ms.map(time).unwrap_or_default(),
        people,
        checklist,
        samples,
        measures,
        signatures,
        conflicts,
        resolutions,
        photos,
        history: history_rows,
        log: log_rows,
        findings,
        forked: log.forked_devices.clone(),
        checkpoint_at: inclusion.checkpoint.map(|(_, at)| time(at)).unwrap_or_default(),
        inclusion,
        held: held_rows,
        problem,
        record,
        c: console.chrome,
    };
    let mut response = render(&page, lang)?;
    if page.problem.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// A refusal's reason as text: its message and code.
fn reason_text(change: &QuarantinedChange) -> String {
    let code = change.reason.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let message = change.reason.get("message").and_then(|c| c.as_str()).unwrap_or("");
    format!("{message} ({code})")
}

async fn record_page(State(state): State<AppState>, console: Console, Path(record_id): Path<String>) -> PageResult {
    record_view(&state, console, record_id, None).await
}

#[derive(Deserialize)]
struct DecisionForm {
    decision: String,
    #[serde(default)]
    note: String,
}

/// Accepts or refuses a held change, with the reviewer's note.
async fn decide_held(
    State(state): State<AppState>,
    Path((record_id, change_hash)): Path<(String, String)>,
    posted: Posted<DecisionForm>,
) -> PageResult {
    let Posted { console, form } = posted;
    console.require(ROLE)?;
    match review::decide(&state, &console.caller, record_id.clone(), change_hash, &form.decision, form.note).await {
        Ok(_) => see_other(&format!("/review/records/{}#held", urlencoding(&record_id))),
        Err(error @ (ApiError::Unprocessable { .. } | ApiError::Conflict { .. })) => {
            let (_, code) = error.status_and_code();
            record_view(&state, console, record_id, Some(format!("{error} ({code})"))).await
        }
        Err(error) => Err(console.error(error)),
    }
}

fn urlencoding(text: &str) -> String {
    serde_urlencoded::to_string([("", text)]).map(|s| s.trim_start_matches('=').to_string()).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "console/reviewer/photo.html")]
struct PhotoPage {
    c: Chrome,
    record_id: String,
    photo: PhotoRef,
    exif: Vec<(String, String)>,
    media_type: String,
    size: u64,
    uploaded_by: String,
    uploaded_at: String,
}

/// One photo of a record at full size, with what its EXIF claims.
async fn photo_page(
    State(state): State<AppState>,
    console: Console,
    Path((record_id, sha256)): Path<(String, String)>,
) -> PageResult {
    console.require(ROLE)?;
    let record = records::record(&state, &console.caller, record_id.clone()).await.map_err(|e| console.error(e))?;
    let photo = record
        .photos
        .iter()
        .find(|p| p.sha256 == sha256)
        .cloned()
        .ok_or_else(|| console.error(ApiError::NotFound { what: "photo" }))?;
    let (blob, metadata) =
        blobs::readable_metadata(&state, &console.caller, &sha256).await.map_err(|e| console.error(e))?;
    let lang = console.chrome.lang;
    let exif = exif_rows(&console.chrome, &metadata);
    let page = PhotoPage {
        c: console.chrome,
        record_id,
        photo,
        exif,
        media_type: blob.media_type,
        size: blob.size,
        uploaded_by: blob.uploaded_by,
        uploaded_at: time(blob.uploaded_at_ms),
    };
    render(&page, lang)
}

/// A blob at full size, as `GET /v1/blobs/{sha256}` answers it, for the session's caller.
async fn blob(State(state): State<AppState>, console: Console, Path(sha256): Path<String>) -> PageResult {
    console.require(ROLE)?;
    let (blob, file, length) =
        blobs::open_blob(&state, &console.caller, &sha256).await.map_err(|e| console.error(e))?;
    let bytes = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut bytes = Vec::with_capacity(length as usize);
        let mut file = file;
        file.read_to_end(&mut bytes).map(|_| bytes)
    })
    .await
    .map_err(|e| console.error(ApiError::Internal(e.to_string())))?
    .map_err(|e| console.error(ApiError::Internal(e.to_string())))?;
    let media_type =
        HeaderValue::from_str(&blob.media_type).map_err(|e| console.error(ApiError::Internal(e.to_string())))?;
    let headers = [
        (header::CONTENT_TYPE, media_type),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, bytes).into_response())
}

/// A blob's thumbnail, as `GET /v1/blobs/{sha256}/thumbnail` answers it.
async fn thumbnail(State(state): State<AppState>, console: Console, Path(sha256): Path<String>) -> PageResult {
    console.require(ROLE)?;
    let jpeg = blobs::thumbnail(&state, &console.caller, &sha256).await.map_err(|e| console.error(e))?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, jpeg).into_response())
}

#[derive(Template)]
#[template(path = "console/reviewer/evidence.html")]
struct EvidencePage {
    c: Chrome,
    record_id: String,
    package: VerifiedPackage,
    holds: bool,
    exported_at: String,
    findings: Vec<String>,
    intervals: Vec<(String, String, String)>,
}

/// Builds the record's evidence package and verifies it as `fieldsync verify` would.
async fn verify_evidence(
    State(state): State<AppState>,
    Path(record_id): Path<String>,
    posted: Posted<Vec<(String, String)>>,
) -> PageResult {
    let console = posted.console;
    console.require(ROLE)?;
    let package = evidence::verify_record_package(&state, &console.caller, record_id.clone())
        .await
        .map_err(|e| console.error(e))?;
    let c = &console.chrome;
    let findings = package.verification.findings.iter().map(|f| finding_text(c, f)).collect();
    let intervals = package
        .verification
        .item_intervals
        .iter()
        .map(|i| {
            let proven = match i.not_before_ms {
                Some(before) => format!("{} – {}", time(before), time(i.not_after_ms)),
                None => format!("… – {}", time(i.not_after_ms)),
            };
            (i.item.clone(), proven, i.claimed_ms.map(time).unwrap_or_default())
        })
        .collect();
    let lang = console.chrome.lang;
    let page = EvidencePage {
        holds: package.verification.holds(),
        exported_at: time(package.exported_at_ms),
        findings,
        intervals,
        record_id,
        package,
        c: console.chrome,
    };
    render(&page, lang)
}

#[derive(Deserialize)]
struct DownloadQuery {
    at: Option<i64>,
}

/// The record's evidence package as a tar file: exported at `at` (the time the verdict page
/// names, so that it is the very package verified while the log has not grown), else now.
async fn download_evidence(
    State(state): State<AppState>,
    console: Console,
    Path(record_id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> PageResult {
    console.require(ROLE)?;
    let at = query.at.unwrap_or_else(crate::service::now_ms);
    let package = evidence::record_package_at(&state, &console.caller, record_id.clone(), Blobs::Include, at)
        .await
        .map_err(|e| console.error(e))?;
    let disposition = format!("attachment; filename=\"evidence-{record_id}.tar\"");
    let disposition = HeaderValue::from_str(&disposition)
        .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"evidence.tar\""));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        package,
    )
        .into_response())
}

#[derive(Deserialize)]
struct QuarantineQuery {
    page: Option<usize>,
    record: Option<String>,
}

#[derive(Template)]
#[template(path = "console/reviewer/quarantine.html")]
struct QuarantinePage {
    c: Chrome,
    rows: Vec<QuarantineRow>,
    pages: Pagination,
    record: String,
}

struct QuarantineRow {
    record_id: String,
    change_hash: String,
    device_id: String,
    officer_id: String,
    code: String,
    message: String,
    received: String,
    final_verdict: bool,
    decision: Option<String>,
}

async fn quarantine_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<QuarantineQuery>,
) -> PageResult {
    console.require(ROLE)?;
    let record = given(&query.record);
    let mut changes =
        records::quarantine(&state, &console.caller, record.clone()).await.map_err(|e| console.error(e))?;
    changes.sort_by(|a, b| b.received_at_ms.cmp(&a.received_at_ms).then_with(|| a.change_hash.cmp(&b.change_hash)));
    let pages = Pagination::new(query.page, changes.len());
    let rows = pages
        .slice(&changes)
        .iter()
        .map(|change| QuarantineRow {
            record_id: change.record_id.clone(),
            change_hash: change.change_hash.clone(),
            device_id: change.device_id.clone(),
            officer_id: change.officer_id.clone().unwrap_or_default(),
            code: change.reason.get("code").and_then(|c| c.as_str()).unwrap_or("").to_string(),
            message: change.reason.get("message").and_then(|c| c.as_str()).unwrap_or("").to_string(),
            received: time(change.received_at_ms),
            final_verdict: change.final_verdict,
            decision: change.review.as_ref().map(|d| format!("{} {}", d.decision, d.reviewer_id)),
        })
        .collect();
    let lang = console.chrome.lang;
    let page = QuarantinePage { c: console.chrome, rows, pages, record: record.unwrap_or_default() };
    render(&page, lang)
}
