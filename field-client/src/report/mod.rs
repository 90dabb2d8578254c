//! The report a court reads: `fieldsync verify --report x.pdf` (or `x.html`) writes, in Chinese,
//! the verdict with the key it trusted, the record as the 现场检查笔录, each officer with their
//! certificate, the timeline with the intervals the log proves, the photos as thumbnails with
//! their hashes, and every finding in words.
//!
//! The report is built from the verifier's own structured output ([`Verification`] and the
//! package contents it read), never from its text, into one [`Report`] of blocks; [`html`] and
//! [`pdf`] render the same blocks, so that both hold the same words. Everything in a package
//! is hostile input: the HTML escapes every value, and photos are decoded within limits.

use std::path::{Path, PathBuf};

use schemas::log::{EntryKind, LogEntry, LogFinding};
use schemas::{ChecklistResult, InspectionRecord, MeasureKind, PartySignature, PersonRole, RecordStatus};
use sync_core::evidence::{IntervalSubject, TrustedBy, Verification};

use crate::{ClientError, ClientResult};

pub mod font;
pub mod html;
pub mod pdf;
mod photos;

pub use font::ReportFont;
pub use photos::Thumbnail;

/// The formats a report is written in, by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Html,
}

impl Format {
    /// The format `path` names by its extension (`.pdf`, `.html` or `.htm`); anything else is
    /// refused (`report_format`).
    pub fn of(path: &Path) -> ClientResult<Format> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("pdf") => Ok(Format::Pdf),
            Some("html" | "htm") => Ok(Format::Html),
            _ => Err(ClientError::ReportFormat { path: path.to_path_buf() }),
        }
    }
}

/// What the report says about the package beyond the verdict: where it came from.
pub struct Source<'a> {
    /// The package's file name, as the reviewer gave it.
    pub file_name: &'a str,
    /// SHA-256 of the package's bytes, hex: the package's identity.
    pub sha256: &'a str,
    /// The clock skew allowed, ms.
    pub max_skew_ms: i64,
    /// When the verification ran, Unix ms.
    pub verified_at_ms: i64,
}

/// A report, as blocks any renderer lays out.
#[derive(Clone, Debug)]
pub struct Report {
    pub title: String,
    /// Lines under the title: record, package, time of verification.
    pub subtitle: Vec<String>,
    pub blocks: Vec<Block>,
    /// A line at the foot of every page.
    pub footer: String,
}

#[derive(Clone, Debug)]
pub enum Block {
    Heading(String),
    Paragraph(String),
    /// The verdict, set apart.
    Verdict {
        holds: bool,
        text: String,
    },
    /// A finding's title (its rule and name), set apart.
    Finding(String),
    /// Label and value rows.
    Pairs(Vec<(String, String)>),
    /// Columns (title, share of the width) and rows of cells.
    Table {
        columns: Vec<(String, f32)>,
        rows: Vec<Vec<String>>,
    },
    Photos(Vec<Photo>),
}

/// A photo of the record: its hash, and its thumbnail when the package holds its proven bytes.
#[derive(Clone, Debug)]
pub struct Photo {
    pub sha256: String,
    pub caption: String,
    pub thumbnail: Option<Thumbnail>,
    /// What is known of it: its claimed time, or why it is not shown.
    pub note: String,
}

/// Writes the report of `verification` to `path`, in the format its extension names.
pub fn write(
    path: &Path,
    verification: &Verification,
    source: &Source<'_>,
    font: Option<&ReportFont>,
) -> ClientResult<()> {
    let report = build(verification, source);
    let bytes = match Format::of(path)? {
        Format::Html => html::render(&report).into_bytes(),
        Format::Pdf => {
            let font = font.ok_or_else(|| ClientError::FontNotFound { tried: Vec::new() })?;
            pdf::render(&report, font)?
        }
    };
    std::fs::write(path, bytes).map_err(|e| ClientError::Io { path: path.to_path_buf(), error: e.to_string() })
}

/// The font a PDF report needs, found before anything is verified; `None` for HTML.
pub fn font_for(path: &Path, font: Option<&PathBuf>) -> ClientResult<Option<ReportFont>> {
    match Format::of(path)? {
        Format::Html => Ok(None),
        Format::Pdf => ReportFont::find(font.map(PathBuf::as_path)).map(Some),
    }
}

/// A Unix ms time in Beijing time (UTC+8), to the second.
pub fn beijing(ms: i64) -> String {
    let offset = jiff::tz::Offset::constant(8);
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| format!("{ms} ms"),
        |t| t.to_zoned(offset.to_time_zone()).strftime("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// A finding's rule, its name, and what it means for this record, in words.
pub fn finding_words(finding: &LogFinding) -> (&'static str, &'static str, String) {
    match finding {
        LogFinding::SealWithoutRecording { device_id, seq } => (
            "R2",
            "查封扣押时未录音录像",
            format!(
                "设备 {device_id} 第 {seq} 条日志记录了查封、扣押，当时没有任何设备在录音录像；查封、扣押须全程录音录像。"
            ),
        ),
        LogFinding::RecordingStoppedWithoutReason { device_id, seq } => (
            "R3",
            "录音录像中断未说明理由",
            format!(
                "设备 {device_id} 第 {seq} 条日志停止了录音录像，没有说明理由；录音录像只可因技术原因中断，并须说明。"
            ),
        ),
        LogFinding::CertificateNotShown { officer_id } => (
            "P2",
            "执法人员未出示执法证",
            format!("执法人员 {officer_id} 在场，但日志中没有其向当事人出示执法证（亮证）的记录。"),
        ),
        LogFinding::InspectionRefused { device_id, seq, not_shown } => (
            "P2",
            "当事人拒绝检查",
            if not_shown.is_empty() {
                format!(
                    "设备 {device_id} 第 {seq} 条日志记录当事人以未出示执法证为由拒绝检查，但其所指执法人员此前均已出示执法证。"
                )
            } else {
                format!(
                    "设备 {device_id} 第 {seq} 条日志记录当事人拒绝检查；此前未出示执法证的执法人员：{}。执法人员未出示执法证的，当事人有权拒绝检查。",
                    not_shown.join("、")
                )
            },
        ),
        LogFinding::PhotoTimeOutsideInterval { sha256, device_id, seq, exif_ms } => (
            "照片时间",
            "照片拍摄时间超出日志证明的区间",
            format!(
                "照片 {sha256} 的 EXIF 拍摄时间为 {}，不在日志为拍摄它的设备 {device_id} 第 {seq} 条日志所证明的时间区间内：该照片可能不是本次检查时所拍。",
                beijing(*exif_ms)
            ),
        ),
    }
}

/// The report of `verification`.
pub fn build(verification: &Verification, source: &Source<'_>) -> Report {
    let contents = &verification.contents;
    let record_id = verification.record_id.as_deref().unwrap_or("（无法读取）");
    let mut blocks = Vec::new();
    verdict(&mut blocks, verification, source);
    match &contents.record {
        Some(record) => {
            record_blocks(&mut blocks, record);
            officers(&mut blocks, verification, record);
        }
        None => {
            blocks.push(Block::Heading("二、现场检查笔录".into()));
            blocks.push(Block::Paragraph("证据包中的记录文档无法读取为现场检查笔录，见第一部分的核验结论。".into()));
        }
    }
    timeline(&mut blocks, verification);
    blocks.push(Block::Heading("五、照片".into()));
    blocks.push(Block::Paragraph("每张照片以其 SHA-256 哈希标识；缩略图只取自证据包中与其哈希相符的照片本身。".into()));
    blocks.push(Block::Photos(photos::photos(verification)));
    findings(&mut blocks, verification);
    checks(&mut blocks, verification);
    Report {
        title: "现场检查笔录电子证据核验报告".into(),
        subtitle: vec![
            format!("记录编号：{record_id}"),
            format!("证据包：{}（SHA-256 {}）", source.file_name, source.sha256),
            format!("核验时间：{}（北京时间，本报告所有时间均为北京时间 UTC+8）", beijing(source.verified_at_ms)),
        ],
        blocks,
        footer: format!("记录 {record_id} 证据核验报告"),
    }
}

fn verdict(blocks: &mut Vec<Block>, verification: &Verification, source: &Source<'_>) {
    blocks.push(Block::Heading("一、核验结论".into()));
    let failed = verification.failed_items();
    let text = if verification.holds() {
        format!("核验通过：证据包的 {} 项检查全部成立，记录内容与日志证明的一致。", verification.checks.len())
    } else if verification.checks.is_empty() {
        "核验未通过：证据包无法读取。".to_string()
    } else {
        format!(
            "核验未通过：{} 项不成立（{}），证据包不能证明其所载内容。",
            failed.len(),
            failed.iter().copied().collect::<Vec<_>>().join("、")
        )
    };
    blocks.push(Block::Verdict { holds: verification.holds(), text });
    let key = verification.log_key.clone().unwrap_or_else(|| "无（证据包的日志公钥无法读取）".into());
    let trusted = match verification.trusted_by {
        Some(TrustedBy::PublishedKey) => "复核人提供的本局公布的日志公钥，证据包的公钥与之相同",
        Some(TrustedBy::PackageKey) => {
            "证据包自带的日志公钥，按复核人要求信任：只证明证据包是该公钥持有人所签，须与本局公布的公钥比对"
        }
        None => "未信任任何公钥",
    };
    let exported = verification.contents.exported_at_ms.map_or_else(|| "（无法读取）".into(), beijing);
    blocks.push(Block::Pairs(vec![
        ("信任的日志公钥".into(), key),
        ("信任依据".into(), trusted.into()),
        (
            "见证者联署".into(),
            "未要求，也未检查：本核验只信任上述一把日志公钥，不依赖任何见证者（witness）对检查点的联署。".into(),
        ),
        (
            "日志检查点".into(),
            verification.tree_size.map_or_else(|| "（无法读取）".into(), |s| format!("日志大小 {s} 条叶")),
        ),
        ("导出时间".into(), exported),
        ("允许的时钟偏差".into(), format!("{} 秒", source.max_skew_ms / 1000)),
    ]));
    if !verification.holds() {
        blocks.push(Block::Paragraph("不成立的检查（说明为核验程序的原文）：".into()));
        let rows =
            verification.checks.iter().filter(|c| !c.holds).map(|c| vec![c.item.clone(), c.detail.clone()]).collect();
        blocks.push(Block::Table { columns: vec![("项目".into(), 0.35), ("说明".into(), 0.65)], rows });
    }
}

fn or_blank(value: &Option<String>) -> String {
    value.clone().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "（未填写）".into())
}

fn record_blocks(blocks: &mut Vec<Block>, record: &InspectionRecord) {
    blocks.push(Block::Heading("二、现场检查笔录".into()));
    let header = &record.header;
    let time = |ms: Option<i64>| ms.map_or_else(|| "（未填写）".into(), beijing);
    let location = match (header.latitude, header.longitude) {
        (Some(lat), Some(lon)) => format!("北纬 {lat:.6}，东经 {lon:.6}（WGS 84）"),
        _ => "（未填写）".into(),
    };
    let status = match record.status {
        RecordStatus::Draft => "草稿（尚无人签名）",
        RecordStatus::Signing => "签署中（已有执法人员签名，内容已冻结）",
        RecordStatus::Locked => "已锁定（在场执法人员均已签名）",
    };
    let recusal = match (record.recusal.asked, &record.recusal.answer) {
        (Some(true), answer) => format!("已告知当事人申请回避的权利；当事人答：{}", or_blank(answer)),
        (Some(false), answer) => format!("未告知；理由：{}", or_blank(answer)),
        (None, _) => "（未记录）".into(),
    };
    blocks.push(Block::Pairs(vec![
        ("检查任务".into(), or_blank(&header.task_id)),
        ("被检查单位".into(), or_blank(&record.entity.name)),
        ("统一社会信用代码".into(), or_blank(&record.entity.credit_code)),
        ("法定代表人".into(), or_blank(&record.entity.legal_representative)),
        ("排污许可证".into(), or_blank(&record.entity.discharge_permit)),
        ("检查地点".into(), or_blank(&header.address)),
        ("位置".into(), location),
        ("检查开始时间".into(), time(header.started_at_ms)),
        ("检查结束时间".into(), time(header.ended_at_ms)),
        ("回避告知".into(), recusal),
        ("记录状态".into(), status.into()),
        ("检查结论".into(), or_blank(&header.conclusion)),
    ]));
    blocks.push(Block::Paragraph(format!(
        "现场情况：{}",
        if record.observations.trim().is_empty() { "（未填写）" } else { &record.observations }
    )));
    if !record.checklist.is_empty() {
        let rows = record
            .checklist
            .iter()
            .map(|item| {
                let result = match item.result {
                    Some(ChecklistResult::Compliant) => "符合",
                    Some(ChecklistResult::NonCompliant) => "不符合",
                    Some(ChecklistResult::NotApplicable) => "不适用",
                    Some(ChecklistResult::NotChecked) | None => "未检查",
                };
                vec![item.code.clone(), result.into(), item.note.clone().unwrap_or_default()]
            })
            .collect();
        let columns = vec![("检查项".into(), 0.35), ("结果".into(), 0.15), ("备注".into(), 0.5)];
        blocks.push(Block::Table { columns, rows });
    }
    if !record.people_present.is_empty() {
        let rows = record
            .people_present
            .iter()
            .map(|person| {
                let role = match person.role {
                    PersonRole::LegalRepresentative => "法定代表人",
                    PersonRole::Staff => "工作人员",
                    PersonRole::Witness => "见证人",
                    PersonRole::Other => "其他",
                };
                let signature = match &person.signature {
                    PartySignature::NotYet => "未签名".to_string(),
                    PartySignature::Signed { signed_at_ms } => format!("{} 签名", beijing(*signed_at_ms)),
                    PartySignature::Refused { note } => format!("拒绝签名：{note}"),
                };
                vec![person.name.clone(), role.into(), person.contact.clone().unwrap_or_default(), signature]
            })
            .collect();
        let columns =
            vec![("在场人员".into(), 0.25), ("身份".into(), 0.15), ("联系方式".into(), 0.25), ("签名".into(), 0.35)];
        blocks.push(Block::Table { columns, rows });
    }
    if !record.samples.is_empty() {
        let rows = record
            .samples
            .iter()
            .map(|s| vec![s.sample_id.clone(), s.description.clone(), s.taken_at_ms.map(beijing).unwrap_or_default()])
            .collect();
        let columns = vec![("样品编号".into(), 0.25), ("样品".into(), 0.45), ("采样时间".into(), 0.3)];
        blocks.push(Block::Table { columns, rows });
    }
    if !record.measures.is_empty() {
        let rows = record.measures.iter().map(|m| vec![measure_words(m.kind).into(), m.note.clone()]).collect();
        blocks.push(Block::Table { columns: vec![("采取的措施".into(), 0.3), ("说明".into(), 0.7)], rows });
    }
    for conflict in &record.conflicts {
        let values: Vec<String> = conflict.values.iter().map(|v| v.value.to_string()).collect();
        blocks.push(Block::Paragraph(format!(
            "未解决的冲突：字段 {} 有 {} 个互相冲突的值（{}）{}。",
            conflict.field,
            values.len(),
            values.join("；"),
            if conflict.legally_significant { "，涉及法律要件" } else { "" }
        )));
    }
    for resolution in &record.resolutions {
        blocks.push(Block::Paragraph(format!(
            "冲突的解决：字段 {} 由执法人员 {} 于 {} 定为 {}。",
            resolution.field,
            resolution.resolved_by_officer,
            beijing(resolution.resolved_at_ms),
            resolution.value
        )));
    }
}

fn measure_words(kind: MeasureKind) -> &'static str {
    match kind {
        MeasureKind::Photograph => "拍照",
        MeasureKind::AudioVideoRecording => "录音录像",
        MeasureKind::CopyDocuments => "复制资料",
        MeasureKind::Questioning => "询问",
        MeasureKind::Sampling => "采样",
        MeasureKind::OrderToCorrect => "责令改正",
        MeasureKind::OrderToStop => "责令停止",
        MeasureKind::SealOrSeizure => "查封、扣押",
        MeasureKind::Other => "其他",
    }
}

fn officers(blocks: &mut Vec<Block>, verification: &Verification, record: &InspectionRecord) {
    blocks.push(Block::Heading("三、执法人员与执法证".into()));
    let rows = record
        .officers_present
        .iter()
        .map(|officer| {
            let signed = record.signatures.iter().find(|s| s.officer_id == officer.officer_id);
            let signature = match signed {
                Some(s) if s.certificate_number == officer.certificate_number => {
                    format!("{} 签名", beijing(s.signed_at_ms))
                }
                Some(s) => format!("{} 以执法证 {} 签名", beijing(s.signed_at_ms), s.certificate_number),
                None => "未签名".into(),
            };
            let shown = if officer.certificate_shown { "已亮证" } else { "未记录亮证" };
            vec![
                officer.officer_id.clone(),
                officer.name.clone(),
                officer.certificate_number.clone(),
                shown.into(),
                signature,
            ]
        })
        .collect();
    let columns = vec![
        ("执法人员".into(), 0.16),
        ("姓名".into(), 0.14),
        ("执法证号".into(), 0.22),
        ("亮证".into(), 0.14),
        ("签名".into(), 0.34),
    ];
    blocks.push(Block::Table { columns, rows });
    for signature in
        record.signatures.iter().filter(|s| !record.officers_present.iter().any(|o| o.officer_id == s.officer_id))
    {
        blocks.push(Block::Paragraph(format!(
            "执法人员 {} 以执法证 {} 于 {} 签名，但不在在场执法人员之列。",
            signature.officer_id,
            signature.certificate_number,
            beijing(signature.signed_at_ms)
        )));
    }
    let rows = verification
        .contents
        .devices
        .iter()
        .map(|d| {
            let enrolment = d.leaf_index.map_or_else(|| "不在日志中".into(), |i| format!("日志第 {i} 条叶"));
            vec![d.device_id.clone(), d.officer_id.clone(), enrolment, d.public_key.clone()]
        })
        .collect();
    let columns = vec![
        ("设备".into(), 0.2),
        ("执法人员".into(), 0.14),
        ("登记".into(), 0.16),
        ("设备公钥（Ed25519）".into(), 0.5),
    ];
    blocks.push(Block::Paragraph("执法人员的设备（其登记在日志中，日志条目由设备密钥签名）：".into()));
    blocks.push(Block::Table { columns, rows });
}

/// An entry's kind, in words.
pub fn entry_words(kind: &EntryKind) -> String {
    match kind {
        EntryKind::Arrive => "到达现场".into(),
        EntryKind::CertificatesShown { officer_ids } => format!("出示执法证：{}", officer_ids.join("、")),
        EntryKind::RecordingStarted => "开始录音录像".into(),
        EntryKind::RecordingStopped { reason } if reason.trim().is_empty() => "停止录音录像，未说明理由".into(),
        EntryKind::RecordingStopped { reason } => format!("停止录音录像，理由：{reason}"),
        EntryKind::PhotoTaken { sha256 } => format!("拍摄照片 {}", short(sha256)),
        EntryKind::PartyQuestioned => "询问当事人".into(),
        EntryKind::SampleTaken { sample_id } => format!("采样，样品编号 {sample_id}"),
        EntryKind::EvidencePreserved => "证据保全".into(),
        EntryKind::SealOrSeizure => "查封、扣押".into(),
        EntryKind::DocumentServed { document } => format!("送达文书：{document}"),
        EntryKind::PartyRefused { note } => format!("当事人拒绝：{note}"),
        EntryKind::InspectionRefused { officer_ids } => {
            format!("当事人以未出示执法证为由拒绝检查：{}", officer_ids.join("、"))
        }
        EntryKind::Signed { officer_id } => format!("执法人员 {officer_id} 签名"),
        EntryKind::Left => "离开现场".into(),
    }
}

/// The first 16 hex digits of a hash, for a table.
fn short(sha256: &str) -> String {
    match sha256.get(..16) {
        Some(head) if sha256.len() > 16 => format!("{head}…"),
        _ => sha256.to_string(),
    }
}

fn timeline(blocks: &mut Vec<Block>, verification: &Verification) {
    let contents = &verification.contents;
    blocks.push(Block::Heading("四、时间线（日志证明的时间区间）".into()));
    blocks.push(Block::Paragraph(
        "“不晚于”是服务器收到该项并记入透明日志的时间；“不早于”来自设备写入该项时已见到的日志检查点，设备未见过检查点时没有下界。“声称时间”是设备时钟、签名或照片 EXIF 所称的时间，仅为声称。".into(),
    ));
    let entry = |device_id: &str, seq: u64| -> Option<&LogEntry> {
        contents.entries.iter().find(|e| e.device_id == device_id && e.seq == seq)
    };
    let officer_of =
        |device_id: &str| contents.devices.iter().find(|d| d.device_id == device_id).map(|d| d.officer_id.clone());
    let mut items: Vec<_> = verification.item_intervals.iter().collect();
    items.sort_by_key(|i| (i.not_after_ms, i.not_before_ms));
    let rows = items
        .iter()
        .map(|interval| {
            let what = match &interval.subject {
                IntervalSubject::Enrolment { device_id } => {
                    format!("设备 {device_id} 登记（执法人员 {}）", officer_of(device_id).unwrap_or_default())
                }
                IntervalSubject::Entry { device_id, seq } => {
                    let kind = entry(device_id, *seq).map_or_else(|| "日志条目".into(), |e| entry_words(&e.kind));
                    let note = contents
                        .notes
                        .get(&(device_id.clone(), *seq))
                        .map(|n| format!("；备注：{n}"))
                        .unwrap_or_default();
                    format!("{kind}（设备 {device_id} 第 {seq} 条{note}）")
                }
                IntervalSubject::Photo { sha256, device_id, seq } => {
                    format!("照片 {}（设备 {device_id} 第 {seq} 条拍摄）", short(sha256))
                }
                IntervalSubject::Signature { officer_id } => format!("执法人员 {officer_id} 签名记入日志"),
                IntervalSubject::Lock => "记录锁定".into(),
            };
            let outside = match &interval.subject {
                IntervalSubject::Entry { device_id, seq } => {
                    verification.intervals.iter().any(|(d, s, i)| d == device_id && s == seq && i.claim_outside)
                }
                _ => false,
            };
            let claimed = match interval.claimed_ms {
                Some(ms) if outside => format!("{}（超出证明的区间）", beijing(ms)),
                Some(ms) => beijing(ms),
                None => "—".into(),
            };
            let not_before = interval.not_before_ms.map_or_else(|| "无下界".into(), beijing);
            vec![what, not_before, beijing(interval.not_after_ms), claimed]
        })
        .collect();
    let columns = vec![("事项".into(), 0.4), ("不早于".into(), 0.2), ("不晚于".into(), 0.2), ("声称时间".into(), 0.2)];
    blocks.push(Block::Table { columns, rows });
}

fn findings(blocks: &mut Vec<Block>, verification: &Verification) {
    blocks.push(Block::Heading("六、发现的问题".into()));
    if verification.findings.is_empty() {
        blocks.push(Block::Paragraph(
            "日志未显示违反 R2（查封扣押全程录音录像）、R3（录音录像中断须说明理由）、P2（亮证）的情况，也没有拍摄时间超出区间的照片。".into(),
        ));
    }
    for finding in &verification.findings {
        let (rule, title, detail) = finding_words(finding);
        blocks.push(Block::Finding(format!("【{rule}】{title}")));
        blocks.push(Block::Paragraph(detail));
    }
    for sha256 in &verification.not_included {
        blocks.push(Block::Paragraph(format!("未含照片：{sha256} 只以哈希列入证据包，照片本身未包含。")));
    }
    for unproven in &verification.unproven {
        blocks.push(Block::Paragraph(format!("未能证明（核验程序原文）：{unproven}")));
    }
}

fn checks(blocks: &mut Vec<Block>, verification: &Verification) {
    blocks.push(Block::Heading("七、逐项检查".into()));
    blocks.push(Block::Paragraph("核验程序对证据包每一项的检查；说明为核验程序的原文。".into()));
    let rows = verification
        .checks
        .iter()
        .map(|c| vec![c.item.clone(), if c.holds { "成立" } else { "不成立" }.into(), c.detail.clone()])
        .collect();
    let columns = vec![("项目".into(), 0.3), ("结果".into(), 0.1), ("说明".into(), 0.6)];
    blocks.push(Block::Table { columns, rows });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_the_extension_and_nothing_else() {
        assert_eq!(Format::of(Path::new("a/report.PDF")).unwrap(), Format::Pdf);
        assert_eq!(Format::of(Path::new("report.html")).unwrap(), Format::Html);
        assert_eq!(Format::of(Path::new("report.htm")).unwrap(), Format::Html);
        for refused in ["report.txt", "report", "pdf", "report.pdf.gz"] {
            assert_eq!(Format::of(Path::new(refused)).unwrap_err().code(), "report_format", "{refused}");
        }
    }

    #[test]
    fn beijing_time_is_eight_hours_ahead_of_utc() {
        assert_eq!(beijing(1_777_861_230_000), "2026-05-04 10:20:30");
    }

    #[test]
    fn every_finding_has_its_rule_and_words() {
        let findings = [
            LogFinding::SealWithoutRecording { device_id: "D1".into(), seq: 4 },
            LogFinding::RecordingStoppedWithoutReason { device_id: "D1".into(), seq: 5 },
            LogFinding::CertificateNotShown { officer_id: "O2".into() },
            LogFinding::PhotoTimeOutsideInterval {
                sha256: "ab".repeat(32),
                device_id: "D2".into(),
                seq: 3,
                exif_ms: 0,
            },
        ];
        let words: Vec<_> = findings.iter().map(finding_words).collect();
        let rules: Vec<&str> = words.iter().map(|(rule, _, _)| *rule).collect();
        assert_eq!(rules, ["R2", "R3", "P2", "照片时间"]);
        assert!(words[0].2.contains("D1") && words[0].2.contains('4'));
        assert!(words[2].2.contains("O2"));
        assert!(words[3].2.contains(&"ab".repeat(32)) && words[3].2.contains("1970-01-01 08:00:00"));
        let titles: std::collections::BTreeSet<&str> = words.iter().map(|(_, title, _)| *title).collect();
        assert_eq!(titles.len(), 4, "each finding its own words");
    }

    #[test]
    fn a_package_that_does_not_read_still_gets_a_report_that_says_so() {
        let verification =
            sync_core::evidence::verify_package(b"not a tar", sync_core::evidence::KeyTrust::PackageKey, 300_000);
        let source = Source { file_name: "x.tar", sha256: "00", max_skew_ms: 300_000, verified_at_ms: 0 };
        let report = build(&verification, &source);
        let verdict = report.blocks.iter().find_map(|b| match b {
            Block::Verdict { holds, text } => Some((*holds, text.clone())),
            _ => None,
        });
        let (holds, text) = verdict.expect("a verdict");
        assert!(!holds);
        assert!(text.starts_with("核验未通过"), "{text}");
        assert!(report.blocks.iter().any(|b| matches!(b, Block::Paragraph(p) if p.contains("无法读取为现场检查笔录"))));
    }
}
