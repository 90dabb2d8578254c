//! `fieldsync`: the officer's device from a shell. The program is [`main`]; it lives in the
//! library so that the end-to-end tests build and run the very same program.
//!
//! Every command works offline except `enroll`, `login` and `sync`; `--json` prints one JSON value per command for scripts, and errors as
//! `{"code", "message", "details"}` on stderr with exit code 1.

use std::path::PathBuf;

use crate::device::{Device, LogDetails, entry_kind, field_edit, party_signature};
use crate::remote::SyncOptions;
use crate::{ClientError, ClientResult};
use clap::{Parser, Subcommand};
use schemas::{ChecklistResult, PersonPresent, PersonRole};
use serde_json::json;
use sync_core::document::{Edit, SignOutcome};
use sync_core::enforcement_log::EntryEncoding;
use sync_core::evidence::{KeyTrust, TrustedBy, utc_text as utc};

#[derive(Parser)]
#[command(name = "fieldsync", version, about = "The officer's offline inspection device")]
struct Cli {
    /// The device's data folder (several devices may live on one machine).
    #[arg(long, global = true, env = "FIELDSYNC_DEVICE", default_value = "fieldsync-device")]
    device: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this device with a server for an officer (password from FIELDSYNC_PASSWORD or a prompt).
    Enroll {
        /// The server's address: https://..., or http:// on the loopback address.
        #[arg(long)]
        server: String,
        #[arg(long)]
        officer: String,
        /// The bureau's own CA certificate (PEM), trusted beside the platform's roots from now
        /// on, for a server whose certificate it signed.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// Allow plain http:// to a server that is not on the loopback address: the password,
        /// tokens and records then cross the network in clear text.
        #[arg(long)]
        insecure_http: bool,
    },
    /// Log in again after the server ended this device's session.
    Login,
    /// The inspection tasks cached at the last sync.
    Tasks,
    /// Create, edit, sign and show inspection records.
    Record {
        /// The record to act on (default: the last one created or selected).
        #[arg(long, global = true)]
        record: Option<String>,
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// The full-process enforcement log (全过程记录) of this device.
    Log {
        /// The record the entries are about (default: the selected record).
        #[arg(long, global = true)]
        record: Option<String>,
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Exchange records with the server.
    Sync,
    /// What is pending, refused by the server, or missing on it.
    Status,
    /// Recompute a published random-inspection draw (双随机) from its inputs and say whether it
    /// matches. Needs no device and no network.
    VerifyDraw {
        /// A published draw: `{"inputs", "draw", "commitment", "committed_at_ms", "drawn_at_ms"}`
        /// as JSON.
        file: PathBuf,
        /// Check only that the draw follows from its inputs, not that its seed was committed to
        /// before the draw (which alone shows the seed was not chosen after the fact).
        #[arg(long)]
        without_commitment: bool,
    },
    /// Check an evidence package offline, item by item: the server's signed checkpoint, every
    /// inclusion proof, the devices' enrolments, every log entry's signature and chain, the
    /// blobs' hashes, and the record's document with its signatures. Needs no device and no
    /// network.
    Verify {
        /// The package (a `.tar` file exported by the server).
        package: PathBuf,
        /// The bureau's published transparency-log key (a note verifier key). Without it the
        /// package is not verified (`untrusted_key`) unless `--trust-package-key` is given.
        #[arg(long, conflicts_with = "trust_package_key")]
        log_key: Option<String>,
        /// Trust the log key the package carries: the verdict then proves only that the package
        /// is what that key's holder signed, and names the key to be compared with the bureau's.
        #[arg(long)]
        trust_package_key: bool,
        /// Clock skew allowed before a claimed time outside its proven interval is flagged, in seconds.
        #[arg(long, default_value_t = 300)]
        max_skew_seconds: i64,
        /// Also write the report a court reads, in Chinese, whatever the verdict: `.pdf` or
        /// `.html`, by the file's extension.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// The font of a PDF report: any font file with Chinese glyphs (.ttf, .otf, .ttc).
        /// Without it, the usual places of the common CJK fonts are tried.
        #[arg(long, value_name = "FILE", env = "FIELDSYNC_REPORT_FONT", requires = "report")]
        font: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RecordCommand {
    /// Start a record for a task and select it.
    New {
        #[arg(long)]
        task: String,
    },
    /// List the records on this device.
    List,
    /// Select the record the other commands act on.
    Select { record_id: String },
    /// Set a field: address, conclusion, started_at, ended_at (Unix ms or `now`), location
    /// (`LAT,LON`), entity_name, credit_code, legal_representative, discharge_permit,
    /// recusal_asked (true/false), recusal_answer.
    Set { field: String, value: String },
    /// Record a checklist result: compliant, non_compliant, not_applicable, not_checked.
    Check {
        item: String,
        result: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Append text to the observations.
    Observe { text: String },
    /// Record a sample taken: its label id and what it is (taken now unless --taken-at).
    Sample {
        sample_id: String,
        description: String,
        /// Unix milliseconds.
        #[arg(long)]
        taken_at: Option<i64>,
    },
    /// Record a measure taken: photograph, audio_video_recording, copy_documents, questioning,
    /// sampling, order_to_correct, order_to_stop, seal_or_seizure, other.
    Measure {
        kind: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Record the recusal question (回避告知) and the party's answer.
    Recusal {
        /// What the party answered when asked whether it requests any officer's recusal.
        answer: String,
        /// The question was not asked (the answer then says why).
        #[arg(long)]
        not_asked: bool,
    },
    /// Keep a photo and reference it from the record.
    Photo {
        file: PathBuf,
        #[arg(long, default_value = "")]
        caption: String,
    },
    /// Add a team member to the officers present.
    Present {
        officer: String,
        /// The certificate was shown to the party (亮证).
        #[arg(long)]
        certificate_shown: bool,
    },
    /// Add a person present (party or witness), or record their signature or refusal.
    Party {
        #[command(subcommand)]
        command: PartyCommand,
    },
    /// Sign the record as this device's officer.
    Sign,
    /// Settle an open conflict on FIELD with VALUE (JSON, or plain text for text fields).
    Resolve { field: String, value: String },
    /// Show the record with its open conflicts.
    Show,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Add an entry: arrive, certificates-shown (--officers), recording-started,
    /// recording-stopped (--reason), party-questioned, sample-taken (--sample),
    /// evidence-preserved, seal-or-seizure, document-served (--document), party-refused
    /// (--note), inspection-refused (--officers: who showed no certificate, P2), left. Photos and
    /// signatures are logged by the device itself.
    Add {
        kind: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long, value_delimiter = ',')]
        officers: Vec<String>,
        #[arg(long)]
        document: Option<String>,
        #[arg(long)]
        sample: Option<String>,
        /// Free text kept beside the entry (its SHA-256 is in the signed entry).
        #[arg(long, default_value = "")]
        text: String,
    },
    /// This device's entries for the record, and the rules they break (R2, R3, P2).
    Show,
}

#[derive(Subcommand)]
enum PartyCommand {
    /// Add a person present: role legal_representative, staff, witness or other.
    Add {
        name: String,
        #[arg(long, default_value = "legal_representative")]
        role: String,
        #[arg(long)]
        contact: Option<String>,
    },
    /// The person signed the record.
    Signs { person_id: String },
    /// The person refused to sign, with what they said.
    Refuses {
        person_id: String,
        #[arg(long)]
        note: String,
    },
}

/// The `fieldsync` program.
pub fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(output) => print(json, &output),
        Err(error) => {
            if json {
                let body = json!({ "code": error.code(), "message": error.to_string(), "details": error.details() });
                eprintln!("{body}");
            } else {
                eprintln!("fieldsync: {error} [{}]", error.code());
            }
            std::process::exit(1);
        }
    }
}

/// What a command prints: a JSON value, and its text rendering.
struct Output {
    value: serde_json::Value,
    text: String,
}

fn print(json: bool, output: &Output) {
    if json {
        println!("{}", output.value);
    } else if !output.text.is_empty() {
        println!("{}", output.text);
    }
}

fn password() -> ClientResult<String> {
    if let Ok(password) = std::env::var("FIELDSYNC_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password("password: ")
        .map_err(|e| ClientError::InvalidInput { what: "password".into(), detail: e.to_string() })
}

async fn run(cli: Cli) -> ClientResult<Output> {
    let dir = cli.device;
    match cli.command {
        Command::Enroll { server, officer, ca_cert, insecure_http } => {
            let ca_certificate = match ca_cert {
                Some(path) => {
                    let pem = std::fs::read_to_string(&path)
                        .map_err(|e| ClientError::Io { path: path.clone(), error: e.to_string() })?;
                    crate::transport::check_ca_certificate(&pem)?;
                    Some(pem)
                }
                None => None,
            };
            let transport = crate::transport::Transport { ca_certificate, insecure_http };
            // Refused before the password is asked for, let alone sent.
            crate::transport::check_server_url(&server, &transport)?;
            let clock = crate::device::system_clock();
            let device = crate::remote::enroll_with(&dir, &server, &officer, &password()?, &transport, clock).await?;
            let identity = device.identity();
            Ok(Output {
                value: json!(identity),
                text: format!(
                    "enrolled device {} for {} with {}",
                    identity.device_id, identity.officer_id, identity.server
                ),
            })
        }
        Command::Login => {
            let mut device = Device::open(&dir)?;
            device.login(&password()?).await?;
            Ok(Output { value: json!({ "logged_in": true }), text: "logged in".into() })
        }
        Command::Tasks => {
            let device = Device::open(&dir)?;
            let tasks = device.tasks()?;
            let text = tasks
                .iter()
                .map(|t| {
                    format!(
                        "{}  {}  {}  team {}",
                        t.task.task_id,
                        t.task.entity_id,
                        t.task.matter,
                        t.task.team.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output { value: json!(tasks), text })
        }
        Command::Sync => {
            let mut device = Device::open(&dir)?;
            let bar = indicatif::ProgressBar::new(0);
            if cli.json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let summary = device
                .sync(&SyncOptions::default(), |progress| {
                    if progress.photo_bytes_total > 0 {
                        bar.set_message("photos");
                        bar.set_length(progress.photo_bytes_total);
                        bar.set_position(progress.photo_bytes_sent);
                    } else {
                        bar.set_length(progress.pending_at_start.max(progress.pending) as u64);
                        bar.set_position(progress.pending_at_start.saturating_sub(progress.pending) as u64);
                    }
                })
                .await?;
            bar.finish_and_clear();
            let mut text = format!(
                "synced: {} requests, {} bytes up, {} bytes down, {} records received, {} changes refused, {} tasks",
                summary.requests,
                summary.bytes_up,
                summary.bytes_down,
                summary.received.len(),
                summary.refused.len(),
                summary.tasks
            );
            if !summary.photos_uploaded.is_empty() {
                text.push_str(&format!("\n{} photo(s) uploaded", summary.photos_uploaded.len()));
            }
            for (sha256, code) in &summary.photo_errors {
                text.push_str(&format!("\nphoto {sha256} refused by the server: {code}"));
            }
            if summary.log_uploaded > 0 {
                text.push_str(&format!("\n{} log entr(ies) uploaded", summary.log_uploaded));
            }
            for (seq, code) in &summary.log_errors {
                text.push_str(&format!("\nlog entry {seq}: {code}"));
            }
            if let Some(checkpoint) = &summary.checkpoint {
                text.push_str(&format!("\ntransparency log seen at size {}", checkpoint.size));
            }

            for (record_id, error) in &summary.errors {
                text.push_str(&format!("\nnot applied, asked again at the next sync: record {record_id}: {error}"));
            }
            Ok(Output { value: json!(summary), text })
        }
        Command::Status => {
            let device = Device::open(&dir)?;
            let status = device.status()?;
            let mut text = format!(
                "device {} of {} ({})\n{} records, {} tasks, {} photos on this device\npending: {}\nmissing on server: {}\nphotos not uploaded: {}",
                status.device_id,
                status.officer_id,
                status.server,
                status.records,
                status.tasks,
                status.photos_on_device,
                list(&status.pending),
                list(&status.missing_on_server),
                list(&status.photos_not_uploaded),
            );
            text.push_str(&format!("\nlog entries not uploaded: {}", status.log_entries_not_uploaded));
            if let Some(seen) = &status.seen_checkpoint {
                text.push_str(&format!("\ntransparency log last seen at size {}", seen.size));
            }
            for refused in &status.refused {
                text.push_str(&format!(
                    "\nrefused: record {} change {}: {}",
                    refused.record_id, refused.change_hash, refused.reason
                ));
            }
            Ok(Output { value: json!(status), text })
        }
        Command::VerifyDraw { file, without_commitment } => verify_draw(&file, without_commitment),
        Command::Verify { package, log_key, trust_package_key, max_skew_seconds, report, font } => {
            let trust = match (&log_key, trust_package_key) {
                (Some(key), _) => KeyTrust::Published(key),
                (None, true) => KeyTrust::PackageKey,
                (None, false) => return Err(untrusted_key(&package)),
            };
            // The report's format and font are settled before anything is verified.
            let report = match report {
                Some(path) => {
                    let font = crate::report::font_for(&path, font.as_ref())?;
                    Some((path, font))
                }
                None => None,
            };
            verify_evidence(&package, trust, max_skew_seconds * 1000, report)
        }
        Command::Record { record, command } => record_command(&dir, record.as_deref(), command),
        Command::Log { record, command } => log_command(&dir, record.as_deref(), command),
    }
}

/// The refusal to verify with no trusted key: names the key the package carries, for the
/// reviewer to compare with the bureau's published one.
fn untrusted_key(package: &std::path::Path) -> ClientError {
    let package_key = std::fs::read(package)
        .ok()
        .and_then(|bytes| sync_core::evidence::verify_package(&bytes, KeyTrust::PackageKey, 0).log_key);
    ClientError::UntrustedKey { package_key }
}

fn verify_evidence(
    package: &std::path::Path,
    trust: KeyTrust<'_>,
    max_skew_ms: i64,
    report_to: Option<(PathBuf, Option<crate::report::ReportFont>)>,
) -> ClientResult<Output> {
    let bytes =
        std::fs::read(package).map_err(|e| ClientError::Io { path: package.to_path_buf(), error: e.to_string() })?;
    let report = sync_core::evidence::verify_package(&bytes, trust, max_skew_ms);
    let mut text = format!(
        "evidence package of record {} against the log at size {}",
        report.record_id.as_deref().unwrap_or("?"),
        report.tree_size.map_or("?".to_string(), |s| s.to_string())
    );
    text.push_str(&match (&report.log_key, report.trusted_by) {
        (Some(key), Some(TrustedBy::PublishedKey)) => {
            format!("\ntrusted key: {key} (the bureau's published key, given)")
        }
        (Some(key), Some(TrustedBy::PackageKey)) => format!(
            "\ntrusted key: {key} (the package's own key, trusted as told: compare it with the bureau's published key)"
        ),
        _ => "\ntrusted key: none (the package's key could not be read)".to_string(),
    });
    for check in &report.checks {
        text.push_str(&format!("\n{} {}: {}", if check.holds { "ok  " } else { "FAIL" }, check.item, check.detail));
    }
    for interval in &report.item_intervals {
        let not_before = match interval.not_before_ms {
            Some(ms) => format!("after {}", utc(ms)),
            None => "no lower bound".to_string(),
        };
        let claimed = interval.claimed_ms.map_or(String::new(), |ms| format!("; claimed {}", utc(ms)));
        text.push_str(&format!(
            "\ninterval: {}: {not_before}, by {}{claimed}",
            interval.item,
            utc(interval.not_after_ms)
        ));
    }
    for (device_id, seq, _) in report.intervals.iter().filter(|(_, _, i)| i.not_before_ms.is_none()) {
        text.push_str(&format!(
            "\nno lower bound: entry {seq} of {device_id} names no checkpoint the log proves, so nothing proves it was not written earlier"
        ));
    }
    for (device_id, seq, interval) in report.intervals.iter().filter(|(_, _, i)| i.claim_outside) {
        text.push_str(&format!(
            "\nflagged: entry {seq} of {device_id} claims {} ms, the log proves {:?}..{} ms",
            interval.claimed_ms, interval.not_before_ms, interval.not_after_ms
        ));
    }
    for sha256 in &report.not_included {
        text.push_str(&format!(
            "\nnot included: photo {sha256}: this package carries only its hash, not the photo itself"
        ));
    }
    for unproven in &report.unproven {
        text.push_str(&format!("\nnot proven: {unproven}"));
    }
    for finding in &report.findings {
        text.push_str(&format!("\nfinding: {}", serde_json::to_string(finding).expect("a finding serializes")));
    }
    if let Some((path, font)) = report_to {
        let file_name = package.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let verified_at_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let source = crate::report::Source { file_name: &file_name, sha256: &sha256, max_skew_ms, verified_at_ms };
        crate::report::write(&path, &report, &source, font.as_ref())?;
        text.push_str(&format!("\nreport: {}", path.display()));
    }
    if !report.holds() {
        return Err(ClientError::EvidenceInvalid {
            items: report.failed_items().into_iter().map(str::to_string).collect(),
            report: text,
        });
    }
    Ok(Output { value: json!(report), text })
}

fn verify_draw(file: &std::path::Path, without_commitment: bool) -> ClientResult<Output> {
    use sync_core::draw::PublishedDrawError;
    let text = std::fs::read_to_string(file)
        .map_err(|e| ClientError::Io { path: file.to_path_buf(), error: e.to_string() })?;
    let published: sync_core::draw::PublishedDraw = serde_json::from_str(&text)
        .map_err(|e| ClientError::InvalidInput { what: "published draw".into(), detail: e.to_string() })?;
    let verified = if without_commitment {
        sync_core::draw::verify_inputs(&published)
    } else {
        sync_core::draw::verify_published(&published)
    };
    let recomputed = verified.map_err(|error| match error {
        PublishedDrawError::Mismatch(detail) => ClientError::DrawMismatch { detail },
        PublishedDrawError::Inputs(_) => {
            ClientError::InvalidInput { what: "published draw".into(), detail: error.to_string() }
        }
        PublishedDrawError::CommitmentMissing => ClientError::CommitmentMissing,
        other => ClientError::CommitmentInvalid { detail: other.to_string() },
    })?;
    let commitment = if without_commitment {
        "its commitment not checked".to_string()
    } else {
        "the revealed seed hashes to the commitment, published before the draw".to_string()
    };
    Ok(Output {
        value: json!({
            "matches": true,
            "commitment_checked": !without_commitment,
            "seed": hex::encode(recomputed.seed),
            "tasks": recomputed.tasks.len(),
        }),
        text: format!(
            "the draw matches its inputs: {} tasks, seed {}; {commitment}",
            recomputed.tasks.len(),
            hex::encode(recomputed.seed)
        ),
    })
}

fn log_command(dir: &std::path::Path, record: Option<&str>, command: LogCommand) -> ClientResult<Output> {
    let mut device = Device::open(dir)?;
    let record_id = match record {
        Some(id) => Some(id.to_string()),
        None => device.store().current_record()?,
    };
    match command {
        LogCommand::Add { kind, reason, note, officers, document, sample, text } => {
            let kind = entry_kind(&kind, LogDetails { reason, note, officers, document, sample })?;
            let signed = device.append_log(kind, record_id.as_deref(), text.as_bytes())?;
            let text = format!("log entry {} ({})", signed.entry.seq, hex::encode(signed.entry.hash()));
            Ok(Output { value: json!(signed), text })
        }
        LogCommand::Show => {
            let entries = device.log(record_id.as_deref())?;
            let findings = match &record_id {
                Some(id) => device.log_findings(id)?,
                None => Vec::new(),
            };
            let mut text: Vec<String> = entries
                .iter()
                .map(|s| format!("{:>4}  {}  {}", s.entry.seq, s.entry.device_time_ms, json!(s.entry.kind)))
                .collect();
            text.extend(findings.iter().map(|f| format!("finding: {}", json!(f))));
            Ok(Output { value: json!({ "entries": entries, "findings": findings }), text: text.join("\n") })
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

fn done(record_id: &str, what: &str) -> Output {
    Output { value: json!({ "record_id": record_id, "done": what }), text: format!("{what}: {record_id}") }
}

fn record_command(dir: &std::path::Path, record: Option<&str>, command: RecordCommand) -> ClientResult<Output> {
    let mut device = Device::open(dir)?;
    if let RecordCommand::New { task } = &command {
        let record_id = device.new_record(task)?;
        return Ok(Output { value: json!({ "record_id": record_id }), text: record_id });
    }
    if let RecordCommand::List = &command {
        let records = device.records()?;
        let text = records
            .iter()
            .map(|r| {
                format!(
                    "{}  task {}  {:?}  {} conflict(s)",
                    r.record_id,
                    r.header.task_id.as_deref().unwrap_or("-"),
                    r.status,
                    r.conflicts.len()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        return Ok(Output { value: json!(records), text });
    }
    if let RecordCommand::Select { record_id } = &command {
        device.select(record_id)?;
        return Ok(done(record_id, "selected"));
    }
    let record_id = device.record_id(record)?;
    match command {
        RecordCommand::New { .. } | RecordCommand::List | RecordCommand::Select { .. } => {
            unreachable!("handled above")
        }
        RecordCommand::Set { field, value } => {
            let edit = field_edit(&field, &value, device.now_ms())?;
            device.edit(&record_id, edit)?;
            Ok(done(&record_id, "set"))
        }
        RecordCommand::Check { item, result, note } => {
            let result: ChecklistResult =
                serde_json::from_value(json!(result)).map_err(|_| ClientError::InvalidInput {
                    what: "checklist result".into(),
                    detail: format!("{result:?} is not compliant, non_compliant, not_applicable or not_checked"),
                })?;
            device.edit(&record_id, Edit::SetChecklistItem { code: item, result, note })?;
            Ok(done(&record_id, "checked"))
        }
        RecordCommand::Observe { text } => {
            device.edit(&record_id, Edit::AppendObservations(text))?;
            Ok(done(&record_id, "observed"))
        }
        RecordCommand::Sample { sample_id, description, taken_at } => {
            let taken_at_ms = Some(taken_at.unwrap_or_else(|| device.now_ms()));
            device.edit(&record_id, Edit::AddSample(schemas::Sample { sample_id, description, taken_at_ms }))?;
            Ok(done(&record_id, "sampled"))
        }
        RecordCommand::Measure { kind, note } => {
            let kind: schemas::MeasureKind =
                serde_json::from_value(json!(kind)).map_err(|_| ClientError::InvalidInput {
                    what: "measure".into(),
                    detail: format!(
                        "{kind:?} is not photograph, audio_video_recording, copy_documents, questioning, sampling, \
                         order_to_correct, order_to_stop, seal_or_seizure or other"
                    ),
                })?;
            device.edit(&record_id, Edit::AddMeasure(schemas::Measure { kind, note }))?;
            Ok(done(&record_id, "measured"))
        }
        RecordCommand::Recusal { answer, not_asked } => {
            device.edit(&record_id, Edit::SetRecusal { asked: !not_asked, answer: Some(answer) })?;
            Ok(done(&record_id, "recusal"))
        }
        RecordCommand::Photo { file, caption } => {
            let sha256 = device.add_photo(&record_id, &file, &caption)?;
            Ok(Output { value: json!({ "record_id": record_id, "sha256": sha256 }), text: format!("photo {sha256}") })
        }
        RecordCommand::Present { officer, certificate_shown } => {
            device.add_officer_present(&record_id, &officer, certificate_shown)?;
            Ok(done(&record_id, "present"))
        }
        RecordCommand::Party { command } => match command {
            PartyCommand::Add { name, role, contact } => {
                let role: PersonRole = serde_json::from_value(json!(role)).map_err(|_| ClientError::InvalidInput {
                    what: "role".into(),
                    detail: format!("{role:?} is not legal_representative, staff, witness or other"),
                })?;
                let person_id = format!("P{}", hex::encode(rand::random::<[u8; 6]>()));
                device.edit(
                    &record_id,
                    Edit::AddPersonPresent(PersonPresent {
                        person_id: person_id.clone(),
                        name,
                        role,
                        contact,
                        signature: schemas::PartySignature::NotYet,
                    }),
                )?;
                Ok(Output { value: json!({ "record_id": record_id, "person_id": person_id }), text: person_id })
            }
            PartyCommand::Signs { person_id } => {
                let signature = party_signature(None, device.now_ms());
                device.edit(&record_id, Edit::SetPartySignature { person_id, signature })?;
                Ok(done(&record_id, "party signed"))
            }
            PartyCommand::Refuses { person_id, note } => {
                let signature = party_signature(Some(note), device.now_ms());
                device.edit(&record_id, Edit::SetPartySignature { person_id, signature })?;
                Ok(done(&record_id, "party refused"))
            }
        },
        RecordCommand::Sign => {
            let outcome = device.sign(&record_id)?;
            let locked = outcome == SignOutcome::SignedAndLocked;
            Ok(Output {
                value: json!({ "record_id": record_id, "signed": true, "locked": locked }),
                text: if locked { format!("signed and locked: {record_id}") } else { format!("signed: {record_id}") },
            })
        }
        RecordCommand::Resolve { field, value } => {
            let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
            device.resolve(&record_id, &field, value)?;
            Ok(done(&record_id, "resolved"))
        }
        RecordCommand::Show => {
            let view = device.record(&record_id)?;
            let text = serde_json::to_string_pretty(&view).unwrap_or_default();
            Ok(Output { value: json!(view), text })
        }
    }
}
