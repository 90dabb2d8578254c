//! `fieldsync-server demo`: a demonstration bureau in a fresh data folder, made from the synthetic
//! city of `../shared/data/`, served until Ctrl-C (or, with `--no-serve`, made and left).
//!
//! What it makes: the city's registries (its 3,000 entities, its recusals, the random-check
//! matter list); an account for every officer of `officers.csv` with their real ids and their
//! certificates as the file states them (the suspended ones suspended, the expired ones expired),
//! plus `admin`, `supervisor1` and `reviewer1`, each role with one printed password; a random
//! inspection campaign created and drawn, and further tasks; then `--records` inspection records
//! made by the teams' phones. Some are locked (both officers signed), some keep an open conflict
//! (both officers set the conclusion offline, differently), some were locked after a change was
//! refused and quarantined (an officer added to the observations offline after the partner had
//! signed). Every record has a photo carrying EXIF (time and place) and entries in the devices'
//! enforcement logs, and one record a seal made while nothing recorded (an R2 finding). The
//! campaign's results are published once its records are locked.
//!
//! Why through the real paths: a demo that wrote records into the database would show what the
//! demo's author believed the server does, not what it does. So the registries and accounts go
//! through the store operations the admin subcommands use, the campaign, its draw, the tasks and
//! the publication through the service functions the supervisors' API calls, and the records are
//! made by the device library (`field_client`, each phone with its own store under
//! `DIR/devices/`) offline, then synced over HTTP with the server serving as `serve` does
//! (`cli::serve`): every change validated, every photo uploaded in chunks and examined, every log
//! entry placed on its chain and in the transparency log. What the summary counts is read back
//! through the service's read paths, as a supervisor.
//!
//! The phones sync in the order of their officers' ids. A task's team is sorted by id and its
//! first officer leads, so in one pass every lead's signature reaches the server before the
//! partner's offline edit of the same record: the edit is refused, as it would be in the field.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use field_client::Device;
use field_client::device::edit_error;
use field_client::remote::{SyncOptions, SyncSummary};
use field_client::transport::Transport;
use schemas::log::LogFinding;
use schemas::{
    Certificate, CertificateStatus, CertificateStatusChange, ChecklistResult, EntityRef, Measure, MeasureKind,
    RecordStatus,
};
use sync_core::calendar::Date;
use sync_core::document::{Edit, SignOutcome};
use sync_core::enforcement_log::EntryKind;

use crate::cli::{Listen, serve, shutdown_signal};
use crate::http::AppState;
use crate::service::auth::{Caller, hash_password};
use crate::service::campaigns::{self, NewCampaign, QuotaRequest};
use crate::service::{Context, admin, blobs, enforcement_log, now_ms, records, tasks};
use crate::store::sqlite::{SqliteStore, database_path};
use crate::store::{Account, Store};

/// Records made when `--records` is not given.
pub const DEFAULT_RECORDS: usize = 50;

/// The demo's passwords, one per role, printed when it is made: it is a demo.
pub const ADMIN_PASSWORD: &str = "demo-admin-2026";
pub const SUPERVISOR_PASSWORD: &str = "demo-supervisor-2026";
pub const REVIEWER_PASSWORD: &str = "demo-reviewer-2026";
pub const OFFICER_PASSWORD: &str = "demo-officer-2026";

/// The accounts the demo adds beside the city's officers.
pub const ADMIN: &str = "admin";
pub const SUPERVISOR: &str = "supervisor1";
pub const REVIEWER: &str = "reviewer1";

/// Who the demo's writes in the registries are by.
const BY: &str = "demo";

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// The campaign's matter, and the other tasks'.
const CAMPAIGN_MATTER: &str = "M01";
const TASK_MATTER: &str = "M02";

/// What `fieldsync-server demo` was asked for.
pub struct DemoOptions {
    /// The data folder to make; it must not hold a database.
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub records: usize,
    /// The synthetic city's folder, when given on the command line.
    pub city: Option<PathBuf>,
    /// Keep serving after the summary, until Ctrl-C.
    pub serve: bool,
}

/// Runs the demo: makes the bureau, prints where to log in and what was made, and serves.
pub async fn run(options: DemoOptions, log_origin: Option<&str>) -> anyhow::Result<()> {
    if options.records < 3 {
        bail!("--records must be at least 3: one locked, one with an open conflict, one with a refused change");
    }
    let started = Instant::now();
    let city_dir = find_city(options.city.as_deref())?;
    let city = City::load(&city_dir)?;
    refuse_existing(&options.data)?;
    // An address in use is found before anything is made (the server binds it again later).
    drop(std::net::TcpListener::bind(options.listen).with_context(|| format!("binding {}", options.listen))?);
    std::fs::create_dir_all(&options.data).with_context(|| format!("creating {}", options.data.display()))?;
    eprintln!(
        "fieldsync demo: making {} records in {} from {}",
        options.records,
        options.data.display(),
        city_dir.display()
    );
    let half_made = || format!("the demo stopped half-way: remove {} before running it again", options.data.display());
    let store: Arc<dyn Store> =
        SqliteStore::open_in(&options.data).map_err(|e| anyhow!("opening the database: {e}"))?;
    let registry = seed(store.as_ref(), &city, now_ms()).with_context(half_made)?;

    // Served as `serve` serves, on a task of its own, while the phones work against it.
    let (ready, listening) = tokio::sync::oneshot::channel::<(SocketAddr, AppState)>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn({
        let (store, data, log_origin) = (store.clone(), options.data.clone(), log_origin.map(str::to_string));
        let listen = Listen { address: options.listen, metrics: None };
        async move {
            serve(
                store,
                &data,
                log_origin.as_deref(),
                listen,
                |_| Ok(()),
                move |address, state| {
                    let _ = ready.send((address, state.clone()));
                    let signal = shutdown_signal()?;
                    Ok(async move {
                        tokio::select! {
                            _ = signal => {},
                            _ = stopped => {},
                        }
                    })
                },
            )
            .await
        }
    });
    let Ok((address, state)) = listening.await else {
        let error = serving.await?.err().unwrap_or_else(|| anyhow!("the server stopped before it listened"));
        return Err(error.context(half_made()));
    };
    let made = match populate(&state.context, &city, &options, address).await {
        Ok(made) => made,
        Err(error) => {
            let _ = stop.send(());
            let _ = serving.await;
            return Err(error.context(half_made()));
        }
    };
    print_summary(&options, &city_dir, &city, &registry, &made, address, started.elapsed().as_secs_f64());
    if options.serve {
        println!("\nserving until Ctrl-C");
    } else {
        let _ = stop.send(());
    }
    serving.await.context("the server")??;
    Ok(())
}

/// The city's folder: `--city`, else `../shared/data` from the current folder, else the one beside
/// the sources this program was built from.
fn find_city(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match given {
        Some(dir) => vec![dir.to_path_buf()],
        None => vec![PathBuf::from("../shared/data"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")],
    };
    for dir in &candidates {
        if dir.join("entities.csv").is_file() {
            return Ok(dir.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    bail!("no synthetic city (entities.csv) in {}: give its folder with --city", tried.join(" or "))
}

/// Refuses a data folder that holds a database or devices already: the demo makes a fresh one
/// and never adds to a bureau's data.
fn refuse_existing(data: &Path) -> anyhow::Result<()> {
    let database = database_path(data);
    if database.exists() {
        bail!(
            "{} already holds a database ({}): the demo makes a fresh data folder; give another --data, \
             or remove that folder",
            data.display(),
            database.display()
        );
    }
    let devices = data.join("devices");
    if devices.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{} already holds demo devices: give another --data, or remove that folder", devices.display());
    }
    Ok(())
}

/// One entity of `entities.csv`, with what a record says of it.
#[derive(Clone, Debug)]
struct EntityRow {
    entity_id: String,
    name: String,
    credit_code: String,
    tier: String,
    legal_representative: String,
    address: String,
    latitude: f64,
    longitude: f64,
    discharge_permit: String,
}

/// One officer of `officers.csv`.
#[derive(Clone, Debug)]
struct OfficerRow {
    officer_id: String,
    name: String,
    unit: String,
    certificate_number: String,
    issued: Date,
    valid_to: Date,
    status: String,
}

/// The synthetic city's files, read once.
struct City {
    /// `entities.csv` as it is, for the registry's import.
    entities_csv: String,
    entities: Vec<EntityRow>,
    officers: Vec<OfficerRow>,
    /// (officer, entity, ground).
    recusals: Vec<(String, String, String)>,
    matters_json: Vec<u8>,
    /// Each matter's checklist item codes.
    checklists: BTreeMap<String, Vec<String>>,
}

impl City {
    fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()))
        };
        let rows = |text: &str| -> Vec<Vec<String>> {
            text.lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.split(',').map(str::to_string).collect())
                .collect()
        };
        let entities_csv = read("entities.csv")?;
        let mut entities = Vec::new();
        for row in rows(&entities_csv) {
            let [
                entity_id,
                name,
                credit_code,
                _,
                _,
                _,
                tier,
                legal_representative,
                address,
                latitude,
                longitude,
                permit,
            ] = &row[..]
            else {
                bail!("entities.csv: a line has {} columns, not 12", row.len());
            };
            entities.push(EntityRow {
                entity_id: entity_id.clone(),
                name: name.clone(),
                credit_code: credit_code.clone(),
                tier: tier.clone(),
                legal_representative: legal_representative.clone(),
                address: address.clone(),
                latitude: latitude.parse().with_context(|| format!("entities.csv: {entity_id}'s latitude"))?,
                longitude: longitude.parse().with_context(|| format!("entities.csv: {entity_id}'s longitude"))?,
                discharge_permit: permit.clone(),
            });
        }
        let mut officers = Vec::new();
        for row in rows(&read("officers.csv")?) {
            let [officer_id, name, unit, certificate_number, issued, valid_to, status, _] = &row[..] else {
                bail!("officers.csv: a line has {} columns, not 8", row.len());
            };
            let date = |text: &str| text.parse::<Date>().with_context(|| format!("officers.csv: {officer_id}: {text}"));
            officers.push(OfficerRow {
                officer_id: officer_id.clone(),
                name: name.clone(),
                unit: unit.clone(),
                certificate_number: certificate_number.clone(),
                issued: date(issued)?,
                valid_to: date(valid_to)?,
                status: status.clone(),
            });
        }
        let mut recusals = Vec::new();
        for row in rows(&read("recusals.csv")?) {
            let [officer, entity, ground] = &row[..] else {
                bail!("recusals.csv: a line has {} columns, not 3", row.len());
            };
            recusals.push((officer.clone(), entity.clone(), ground.clone()));
        }
        let matters_json = read("matters.json")?.into_bytes();
        let list = campaigns::parse_matters(&matters_json).map_err(|e| anyhow!("matters.json: {e}"))?;
        let checklists = list.matters.iter().map(|m| (m.code.clone(), m.checklist.clone())).collect();
        Ok(Self { entities_csv, entities, officers, recusals, matters_json, checklists })
    }

    fn entity(&self, entity_id: &str) -> anyhow::Result<&EntityRow> {
        self.entities.iter().find(|e| e.entity_id == entity_id).ok_or_else(|| anyhow!("no entity {entity_id}"))
    }

    fn officer_name(&self, officer_id: &str) -> &str {
        self.officers.iter().find(|o| o.officer_id == officer_id).map_or("", |o| o.name.as_str())
    }
}

/// What went into the registries.
struct Registry {
    entities: usize,
    officers: usize,
    suspended: Vec<String>,
    expired: usize,
    recusals: usize,
    matters: usize,
}

/// Unix ms of 00:00 of `day` in the bureau's time zone.
fn start_of(day: Date) -> i64 {
    sync_core::campaigns::period_ms(day, day).0
}

/// Fills the registries and accounts through the store operations the admin subcommands use
/// (`officer add`, `certificate issue|suspend|revoke`, `entities import`, `matters import`).
fn seed(store: &dyn Store, city: &City, now: i64) -> anyhow::Result<Registry> {
    // One hash per role: every account of a role has the role's printed password.
    let account = |officer_id: &str, name: &str, unit: &str, hash: &str, role: &str| {
        store.create_account(
            Account {
                officer_id: officer_id.to_string(),
                name: name.to_string(),
                unit: unit.to_string(),
                password_hash: Some(hash.to_string()),
                must_change_password: false,
                roles: vec![role.to_string()],
            },
            now,
        )
    };
    account(ADMIN, "系统管理员", "", &hash_password(ADMIN_PASSWORD), "admin")?;
    account(SUPERVISOR, "执法监督科科长", "市生态环境局", &hash_password(SUPERVISOR_PASSWORD), "supervisor")?;
    account(REVIEWER, "法制审核员", "市生态环境局", &hash_password(REVIEWER_PASSWORD), "reviewer")?;
    let officer_hash = hash_password(OFFICER_PASSWORD);
    let (mut suspended, mut expired) = (Vec::new(), 0);
    for officer in &city.officers {
        account(&officer.officer_id, &officer.name, &officer.unit, &officer_hash, "officer")?;
        let certificate = Certificate {
            number: officer.certificate_number.clone(),
            officer_id: officer.officer_id.clone(),
            issuing_authority: "广西壮族自治区人民政府".into(),
            valid_from_ms: start_of(officer.issued),
            valid_until_ms: sync_core::campaigns::period_ms(officer.valid_to, officer.valid_to).1,
            status_history: vec![],
        };
        store.issue_certificate(&certificate, BY, now)?;
        if certificate.valid_until_ms <= now {
            expired += 1;
        }
        let status = match officer.status.as_str() {
            "active" => None,
            "suspended" => Some((CertificateStatus::Suspended, "停职接受调查")),
            "revoked" => Some((CertificateStatus::Revoked, "执法证件被注销")),
            other => bail!("officers.csv: {}: status {other:?}", officer.officer_id),
        };
        if let Some((status, reason)) = status {
            let at_ms = (now - 30 * DAY).max(certificate.valid_from_ms);
            let change = CertificateStatusChange { at_ms, status, reason: Some(reason.into()) };
            store.change_certificate_status(&certificate.number, &change, BY, now)?;
            if status == CertificateStatus::Suspended {
                suspended.push(certificate.number.clone());
            }
        }
    }
    // Parsed a hundred lines at a time, each with the header: the parser counts a line's number
    // from the start of its text, which over the whole registry at once took 14 s in a debug
    // build. The city's file has no line breaks inside quoted fields, so its lines are its rows.
    let mut lines = city.entities_csv.lines();
    let header = lines.next().unwrap_or_default();
    let rows: Vec<&str> = lines.collect();
    let mut entities = Vec::new();
    for (chunk_number, chunk) in rows.chunks(100).enumerate() {
        let text = format!("{header}\n{}\n", chunk.join("\n"));
        let parsed = admin::parse_entities_csv(&text).map_err(|problems| {
            let first = problems.first().map_or(0, |p| chunk_number * 100 + p.line);
            anyhow!("entities.csv: {} bad line(s), the first on line {first}", problems.len())
        })?;
        entities.extend(parsed);
    }
    let imported = store.import_entities_by(&entities, BY, now)?;
    for (officer, entity, ground) in &city.recusals {
        store.add_recusal(officer, entity, ground)?;
    }
    let list = campaigns::parse_matters(&city.matters_json).map_err(|e| anyhow!("matters.json: {e}"))?;
    let matters = store.import_matters(&list, BY, now)?;
    Ok(Registry {
        entities: imported,
        officers: city.officers.len(),
        suspended,
        expired,
        recusals: city.recusals.len(),
        matters,
    })
}

/// How an inspection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Both officers sign: locked.
    Locked,
    /// Both set the conclusion offline, differently: an open conflict nobody settled.
    Conflict,
    /// The partner adds to the observations offline after the lead signed: refused and
    /// quarantined; then both sign.
    RefusedThenLocked,
}

/// One task's inspection, by its team's two phones.
struct Inspection {
    task_id: String,
    /// The campaign's, when the draw made the task.
    campaign_id: Option<String>,
    entity: EntityRow,
    checklist: Vec<String>,
    /// The team's first officer by id: starts the record and signs first.
    lead: String,
    partner: String,
    ending: Ending,
    /// The lead seals something while nothing records (R2).
    seal_without_recording: bool,
    record_id: String,
    photo: String,
}

/// What the demo made, read back through the service as a supervisor.
struct Made {
    campaign_id: String,
    campaign_tasks: usize,
    published: usize,
    other_tasks: usize,
    devices: usize,
    records: usize,
    locked: usize,
    conflicts: usize,
    refused_then_locked: usize,
    quarantined: usize,
    photos: usize,
    photos_with_exif: usize,
    log_entries: usize,
    r2_findings: Vec<String>,
    /// Two officers who made records, to print.
    officers: [String; 2],
}

/// The supervisor the demo acts as for the campaign and the tasks, as the service knows a caller.
fn supervisor() -> Caller {
    Caller {
        officer_id: SUPERVISOR.into(),
        roles: vec!["supervisor".into()],
        device_id: None,
        session_id: "demo".into(),
    }
}

/// How many records end each way: a tenth with a conflict, a twenty-fifth with a refused change
/// (at least one of each), the rest locked; half of the locked ones on the campaign's tasks.
fn endings(records: usize) -> (usize, usize, usize) {
    let conflicts = (records / 10).max(1);
    let refused = (records / 25).max(1);
    let campaign = ((records - conflicts - refused) / 2).max(1);
    (conflicts, refused, campaign)
}

/// Makes the campaign, the tasks and the records, and reads back what was made.
async fn populate(context: &Context, city: &City, options: &DemoOptions, address: SocketAddr) -> anyhow::Result<Made> {
    let supervisor = supervisor();
    let (conflicts, refused, campaign_size) = endings(options.records);
    let now = now_ms();
    let today = sync_core::campaigns::date_of_ms(now).ok_or_else(|| anyhow!("the clock is out of range"))?;
    let ends_on = today.checked_add(jiff::Span::new().days(13)).context("the campaign's last day")?;

    // The campaign, created and drawn as `POST /v1/campaigns` and its draw do.
    let (from_ms, until_ms) = sync_core::campaigns::period_ms(today, ends_on);
    let certificates = context.store.certificates(None)?;
    let eligible = sync_core::campaigns::eligible_officers(&certificates, from_ms, until_ms);
    if eligible.len() < 2 {
        bail!("fewer than two officers of the city hold a certificate valid from {today} to {ends_on}");
    }
    let campaign_id = format!("C-DEMO-{}", today.strftime("%Y%m%d"));
    let special = (campaign_size / 5).min(count_tier(city, "special"));
    let key = (campaign_size / 4).min(count_tier(city, "key"));
    let general = campaign_size - special - key;
    let tiers = [("special", special), ("key", key), ("general", general)]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(tier, count)| QuotaRequest { tier: tier.into(), per_mille: None, count: Some(count as u32) })
        .collect();
    let new = NewCampaign {
        campaign_id: Some(campaign_id.clone()),
        matter: CAMPAIGN_MATTER.into(),
        tiers,
        divisions: vec![],
        period: today.strftime("%Y-%m").to_string(),
        starts_on: today.to_string(),
        ends_on: ends_on.to_string(),
        team_size: 2,
        max_tasks_per_officer: (2 * campaign_size).div_ceil(eligible.len()) as u32 + 1,
        joint_departments: vec![],
    };
    campaigns::create_campaign(context, &supervisor, new).await.context("creating the campaign")?;
    let (_, drawn) = campaigns::draw_campaign(context, &supervisor, campaign_id.clone(), Some("demo".into()))
        .await
        .context("drawing the campaign")?;
    let campaign_checklist = city.checklists.get(CAMPAIGN_MATTER).cloned().unwrap_or_default();
    let mut inspections = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for task in &drawn {
        used.insert(task.entity_id.clone());
        inspections.push(inspection(city, task, Some(&campaign_id), &campaign_checklist, Ending::Locked)?);
    }

    // The other tasks, created as `POST /v1/tasks` does, for officers certified over their window.
    let (window_start_ms, window_end_ms) = (now - HOUR, now + 14 * DAY);
    let officers = sync_core::campaigns::eligible_officers(&certificates, window_start_ms, window_end_ms);
    if officers.len() < 2 {
        bail!("fewer than two officers of the city hold a certificate valid for the next two weeks");
    }
    let task_checklist = city.checklists.get(TASK_MATTER).cloned().unwrap_or_default();
    let matter = format!("{TASK_MATTER} 污染防治设施运行情况检查");
    let others = options.records - drawn.len();
    let mut candidates = (0..city.entities.len()).map(|i| &city.entities[(i * 7919) % city.entities.len()]);
    for n in 0..others {
        let entity = loop {
            let entity = candidates.next().ok_or_else(|| anyhow!("not enough entities for {others} tasks"))?;
            if used.insert(entity.entity_id.clone()) {
                break entity;
            }
        };
        let ending = if n < conflicts {
            Ending::Conflict
        } else if n < conflicts + refused {
            Ending::RefusedThenLocked
        } else {
            Ending::Locked
        };
        let task =
            create_task(context, &supervisor, &officers, n, &entity.entity_id, &matter, window_start_ms, window_end_ms)
                .await?;
        inspections.push(inspection(city, &task, None, &task_checklist, ending)?);
    }
    // The seal without a recording: on a plain inspection outside the campaign when there is one.
    let sealed = inspections.iter().position(|i| i.campaign_id.is_none() && i.ending == Ending::Locked).unwrap_or(0);
    inspections[sealed].seal_without_recording = true;

    let mut devices = enroll_devices(&inspections, &options.data, address).await?;
    let mut tally = Tally::default();
    work(&mut devices, &mut inspections, &mut tally).await?;

    // The campaign's results, public once its records are locked.
    let mut published = 0;
    for inspection in inspections.iter().filter(|i| i.campaign_id.is_some()) {
        campaigns::publish_result(context, &supervisor, campaign_id.clone(), inspection.task_id.clone())
            .await
            .with_context(|| format!("publishing the result of {}", inspection.task_id))?;
        published += 1;
    }

    let mut made = read_back(context, &supervisor, &inspections, &devices, &tally).await?;
    made.campaign_id = campaign_id;
    made.campaign_tasks = drawn.len();
    made.published = published;
    made.other_tasks = others;
    Ok(made)
}

fn count_tier(city: &City, tier: &str) -> usize {
    city.entities.iter().filter(|e| e.tier == tier).count()
}

/// Creates the `n`th task outside the campaign for two of `officers`, as `POST /v1/tasks` does;
/// a pair with an officer recused from the entity gives way to the next pair.
#[allow(clippy::too_many_arguments)]
async fn create_task(
    context: &Context,
    supervisor: &Caller,
    officers: &[String],
    n: usize,
    entity_id: &str,
    matter: &str,
    window_start_ms: i64,
    window_end_ms: i64,
) -> anyhow::Result<crate::store::Task> {
    for shift in 0..officers.len() {
        let first = (2 * n + shift) % officers.len();
        let second = (first + 1) % officers.len();
        let mut team = vec![officers[first].clone(), officers[second].clone()];
        team.sort();
        let new = tasks::NewTask {
            task_id: Some(format!("T-DEMO-{:04}", n + 1)),
            entity_id: entity_id.to_string(),
            matter: matter.to_string(),
            team,
            window_start_ms,
            window_end_ms,
        };
        match tasks::create(context, supervisor, new).await {
            Ok(task) => return Ok(task),
            Err(error) if error.status_and_code().1 == "officer_recused" => continue,
            Err(error) => return Err(error).with_context(|| format!("creating task {} on {entity_id}", n + 1)),
        }
    }
    bail!("every pair of officers is recused from {entity_id}")
}

fn inspection(
    city: &City,
    task: &crate::store::Task,
    campaign_id: Option<&str>,
    checklist: &[String],
    ending: Ending,
) -> anyhow::Result<Inspection> {
    let mut team = task.team.clone();
    team.sort();
    let [lead, partner] = &team[..] else { bail!("task {} has a team of {}, not 2", task.task_id, team.len()) };
    Ok(Inspection {
        task_id: task.task_id.clone(),
        campaign_id: campaign_id.map(str::to_string),
        entity: city.entity(&task.entity_id)?.clone(),
        checklist: checklist.to_vec(),
        lead: lead.clone(),
        partner: partner.clone(),
        ending,
        seal_without_recording: false,
        record_id: String::new(),
        photo: String::new(),
    })
}

/// Where this machine reaches a server bound to `address`: the loopback address for one listening
/// on every interface.
fn reachable(address: SocketAddr) -> SocketAddr {
    let host = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(host, address.port())
}

/// Enrolls one phone for every officer on a team, in `DATA/devices/<officer id>`, as the
/// `fieldsync enroll` command does.
async fn enroll_devices(
    inspections: &[Inspection],
    data: &Path,
    address: SocketAddr,
) -> anyhow::Result<BTreeMap<String, Device>> {
    // Plain HTTP to an address that is not the loopback one is the demo's own choice, allowed
    // explicitly.
    let reachable = reachable(address);
    let server = format!("http://{reachable}");
    let transport = Transport { ca_certificate: None, insecure_http: !reachable.ip().is_loopback() };
    let officers: BTreeSet<&str> = inspections.iter().flat_map(|i| [i.lead.as_str(), i.partner.as_str()]).collect();
    let mut devices = BTreeMap::new();
    for officer in officers {
        let dir = data.join("devices").join(officer);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let clock = field_client::device::system_clock();
        let device = field_client::remote::enroll_with(&dir, &server, officer, OFFICER_PASSWORD, &transport, clock)
            .await
            .with_context(|| format!("enrolling {officer}'s phone"))?;
        devices.insert(officer.to_string(), device);
    }
    Ok(devices)
}

/// What the phones' syncs reported.
#[derive(Default)]
struct Tally {
    /// Changes refused, by record.
    refused: BTreeMap<String, Vec<String>>,
    photos_uploaded: usize,
}

impl Tally {
    fn add(&mut self, officer: &str, summary: SyncSummary) -> anyhow::Result<()> {
        if let Some((record, error)) = summary.errors.first() {
            bail!("{officer}'s phone could not apply the server's message for {record}: {error}");
        }
        if let Some((sha256, code)) = summary.photo_errors.first() {
            bail!("the server refused {officer}'s photo {sha256}: {code}");
        }
        if let Some((seq, code)) = summary.log_errors.first() {
            bail!("the server refused {officer}'s log entry {seq}: {code}");
        }
        for refused in summary.refused {
            let code = refused.reason["code"].as_str().unwrap_or("").to_string();
            self.refused.entry(refused.record_id).or_default().push(code);
        }
        self.photos_uploaded += summary.photos_uploaded.len();
        Ok(())
    }
}

/// Syncs every phone once, in the order of its officer's id.
async fn sync_all(devices: &mut BTreeMap<String, Device>, tally: &mut Tally) -> anyhow::Result<()> {
    let options = SyncOptions::default();
    for (officer, device) in devices.iter_mut() {
        let summary = device.sync(&options, |_| {}).await.with_context(|| format!("syncing {officer}'s phone"))?;
        tally.add(officer, summary)?;
    }
    Ok(())
}

/// Syncs every phone twice: what any phone sent in the first pass, every phone has after the second.
async fn settle(devices: &mut BTreeMap<String, Device>, tally: &mut Tally) -> anyhow::Result<()> {
    sync_all(devices, tally).await?;
    sync_all(devices, tally).await
}

fn device<'a>(devices: &'a mut BTreeMap<String, Device>, officer: &str) -> anyhow::Result<&'a mut Device> {
    devices.get_mut(officer).ok_or_else(|| anyhow!("no phone for {officer}"))
}

/// The inspections, phase by phase, each phase's edits made offline and then synced.
async fn work(
    devices: &mut BTreeMap<String, Device>,
    inspections: &mut [Inspection],
    tally: &mut Tally,
) -> anyhow::Result<()> {
    // The tasks and teams reach the phones.
    sync_all(devices, tally).await?;

    // On site: the lead starts the record, shows both certificates, records, photographs.
    for (n, inspection) in inspections.iter_mut().enumerate() {
        let lead = device(devices, &inspection.lead)?;
        start(lead, inspection, n as u32)
            .with_context(|| format!("{}'s record of {}", inspection.lead, inspection.task_id))?;
    }
    settle(devices, tally).await?;

    // Both at work offline: the partner checks the rest of the list and writes observations, the
    // lead concludes; for a conflict, the partner concludes otherwise.
    for inspection in inspections.iter() {
        let record_id = inspection.record_id.as_str();
        let lead = device(devices, &inspection.lead)?;
        lead.edit(record_id, Edit::SetConclusion("未发现环境违法行为。".into()))?;
        let ended = lead.now_ms();
        lead.edit(record_id, Edit::SetEndedAt(ended))?;
        if !inspection.seal_without_recording {
            lead.append_log(EntryKind::RecordingStopped { reason: "检查结束".into() }, Some(record_id), b"")?;
        }
        lead.append_log(EntryKind::Left, Some(record_id), b"")?;
        let partner = device(devices, &inspection.partner)?;
        partner.append_log(EntryKind::Arrive, Some(record_id), b"")?;
        let half = inspection.checklist.len() / 2;
        partner.modify(record_id, |document, now| {
            for code in &inspection.checklist[half..] {
                let result = ChecklistResult::Compliant;
                document
                    .apply(Edit::SetChecklistItem { code: code.clone(), result, note: None }, now)
                    .map_err(edit_error)?;
            }
            let text = "乙：核查在线监测数据及运行台账，记录完整。";
            document.apply(Edit::AppendObservations(text.into()), now).map_err(edit_error)?;
            if inspection.ending == Ending::Conflict {
                let conclusion = "雨水排口有废水排出，建议立案调查。";
                document.apply(Edit::SetConclusion(conclusion.into()), now).map_err(edit_error)?;
            }
            Ok(())
        })?;
    }
    settle(devices, tally).await?;

    // The partner adds to the observations offline while the lead signs; in one pass in the
    // officers' order, the lead's signature reaches the server first and the addition is refused.
    for inspection in inspections.iter().filter(|i| i.ending != Ending::Conflict) {
        let record_id = inspection.record_id.as_str();
        if inspection.ending == Ending::RefusedThenLocked {
            let partner = device(devices, &inspection.partner)?;
            partner.edit(record_id, Edit::AppendObservations("乙补充：企业承诺三日内补齐台账。".into()))?;
        }
        let lead = device(devices, &inspection.lead)?;
        let signed = lead.sign(record_id).with_context(|| format!("{} signing {record_id}", inspection.lead))?;
        if signed != SignOutcome::Signed {
            bail!("{}'s signature of {record_id} locked it alone", inspection.lead);
        }
    }
    sync_all(devices, tally).await?;

    // The partner signs last, which locks the record.
    for inspection in inspections.iter().filter(|i| i.ending != Ending::Conflict) {
        let record_id = inspection.record_id.as_str();
        let partner = device(devices, &inspection.partner)?;
        let signed = partner.sign(record_id).with_context(|| format!("{} signing {record_id}", inspection.partner))?;
        if signed != SignOutcome::SignedAndLocked {
            bail!("{}'s signature of {record_id} did not lock it", inspection.partner);
        }
    }
    settle(devices, tally).await?;

    // Only the additions made after a signature were refused, one or more on each such record.
    for (record_id, codes) in &tally.refused {
        let expected = inspections.iter().any(|i| i.record_id == *record_id && i.ending == Ending::RefusedThenLocked);
        if !expected {
            bail!("the server refused changes of {record_id} that the demo did not mean to be refused: {codes:?}");
        }
    }
    for inspection in inspections.iter().filter(|i| i.ending == Ending::RefusedThenLocked) {
        if !tally.refused.contains_key(&inspection.record_id) {
            bail!("the offline addition to {} after its signature was not refused", inspection.record_id);
        }
    }
    Ok(())
}

/// The lead's work on site, offline: the record, both officers present with certificates shown,
/// the entity, place and first half of the checklist, a photo, the party questioned, and the
/// enforcement-log entries of each step (some made by the device itself).
fn start(lead: &mut Device, inspection: &mut Inspection, n: u32) -> anyhow::Result<()> {
    let record_id = lead.new_record(&inspection.task_id)?;
    lead.append_log(EntryKind::Arrive, Some(&record_id), b"")?;
    lead.add_officer_present(&record_id, &inspection.lead, true)?;
    lead.add_officer_present(&record_id, &inspection.partner, true)?;
    if !inspection.seal_without_recording {
        lead.append_log(EntryKind::RecordingStarted, Some(&record_id), b"")?;
    }
    let entity = &inspection.entity;
    let half = inspection.checklist.len() / 2;
    lead.modify(&record_id, |document, now| {
        let entity_ref = EntityRef {
            entity_id: Some(entity.entity_id.clone()),
            name: Some(entity.name.clone()),
            credit_code: Some(entity.credit_code.clone()),
            legal_representative: Some(entity.legal_representative.clone()),
            discharge_permit: (!entity.discharge_permit.is_empty()).then(|| entity.discharge_permit.clone()),
            tier: Some(entity.tier.clone()),
        };
        let edits = [
            Edit::SetEntity(entity_ref),
            Edit::SetAddress(entity.address.clone()),
            Edit::SetLocation { latitude: entity.latitude, longitude: entity.longitude },
            Edit::SetRecusal { asked: true, answer: Some("不申请回避".into()) },
            Edit::AppendObservations("甲：执法人员出示执法证件，告知检查事由，企业正常生产。".into()),
        ];
        for edit in edits {
            document.apply(edit, now).map_err(edit_error)?;
        }
        for (index, code) in inspection.checklist[..half].iter().enumerate() {
            let non_compliant = (n as usize + index) % 7 == 3;
            let (result, note) = if non_compliant {
                (ChecklistResult::NonCompliant, Some("现场发现问题，已拍照取证。".to_string()))
            } else {
                (ChecklistResult::Compliant, None)
            };
            document.apply(Edit::SetChecklistItem { code: code.clone(), result, note }, now).map_err(edit_error)?;
        }
        Ok(())
    })?;
    let camera = lead.dir().join("camera");
    std::fs::create_dir_all(&camera).with_context(|| format!("creating {}", camera.display()))?;
    let path = camera.join(format!("IMG_{:05}.jpg", n + 1));
    let jpeg = photo(n, lead.now_ms(), entity.latitude, entity.longitude)?;
    std::fs::write(&path, jpeg).with_context(|| format!("writing {}", path.display()))?;
    inspection.photo = lead.add_photo(&record_id, &path, "厂区废水总排口")?;
    lead.append_log(EntryKind::PartyQuestioned, Some(&record_id), "询问企业负责人生产及治污设施运行情况".as_bytes())?;
    if inspection.seal_without_recording {
        let note = "查封未经批准使用的废水旁路阀门";
        lead.edit(&record_id, Edit::AddMeasure(Measure { kind: MeasureKind::SealOrSeizure, note: note.into() }))?;
        lead.append_log(EntryKind::SealOrSeizure, Some(&record_id), note.as_bytes())?;
    }
    inspection.record_id = record_id;
    Ok(())
}

/// A 320×240 JPEG as a phone's camera writes it, with an EXIF block claiming when (`taken_at_ms`,
/// as local time in UTC+8) and where it was taken. A bar code of `n` along its top makes every
/// photo's bytes differ.
fn photo(n: u32, taken_at_ms: i64, latitude: f64, longitude: f64) -> anyhow::Result<Vec<u8>> {
    use exif::experimental::Writer;
    use exif::{Field, In, Rational, Tag, Value};

    let picture = image::RgbImage::from_fn(320, 240, |x, y| {
        if y < 16 {
            let bit = (n >> (x / 10)) & 1;
            return if bit == 1 { image::Rgb([20, 20, 20]) } else { image::Rgb([235, 235, 235]) };
        }
        image::Rgb([(x * 255 / 320) as u8, (y * 255 / 240) as u8, (n.wrapping_mul(37) % 256) as u8])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&picture)?;
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(sync_core::campaigns::BUREAU_UTC_OFFSET_HOURS));
    let local =
        jiff::Timestamp::from_millisecond(taken_at_ms)?.to_zoned(zone).strftime("%Y:%m:%d %H:%M:%S").to_string();
    let ascii =
        |tag: Tag, text: &str| Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.as_bytes().to_vec()]) };
    // Degrees, minutes and hundredths of seconds.
    let degrees = |tag: Tag, value: f64| {
        let value = value.abs();
        let whole = value.trunc() as u32;
        let minutes = ((value - f64::from(whole)) * 60.0).trunc() as u32;
        let hundredths = (((value - f64::from(whole)) * 60.0 - f64::from(minutes)) * 6000.0).round() as u32;
        let parts = vec![
            Rational { num: whole, denom: 1 },
            Rational { num: minutes, denom: 1 },
            Rational { num: hundredths, denom: 100 },
        ];
        Field { tag, ifd_num: In::PRIMARY, value: Value::Rational(parts) }
    };
    let fields = [
        ascii(Tag::Make, "fieldsync"),
        ascii(Tag::Model, "demo phone"),
        ascii(Tag::DateTime, &local),
        ascii(Tag::DateTimeOriginal, &local),
        ascii(Tag::OffsetTimeOriginal, "+08:00"),
        ascii(Tag::GPSLatitudeRef, if latitude >= 0.0 { "N" } else { "S" }),
        degrees(Tag::GPSLatitude, latitude),
        ascii(Tag::GPSLongitudeRef, if longitude >= 0.0 { "E" } else { "W" }),
        degrees(Tag::GPSLongitude, longitude),
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).map_err(|e| anyhow!("writing the photo's EXIF: {e}"))?;
    let tiff = tiff.into_inner();
    // An APP1 segment right after the start-of-image marker, where cameras put it.
    let length = u16::try_from(2 + 6 + tiff.len()).context("the EXIF block is too large")?;
    let mut bytes = jpeg[..2].to_vec();
    bytes.extend_from_slice(&[0xFF, 0xE1]);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(b"Exif\0\0");
    bytes.extend_from_slice(&tiff);
    bytes.extend_from_slice(&jpeg[2..]);
    Ok(bytes)
}

/// Reads back what the server holds, through the service's read paths as a supervisor.
async fn read_back(
    context: &Context,
    supervisor: &Caller,
    inspections: &[Inspection],
    devices: &BTreeMap<String, Device>,
    tally: &Tally,
) -> anyhow::Result<Made> {
    let (mut locked, mut conflicts, mut refused_then_locked, mut photos_with_exif) = (0, 0, 0, 0);
    let mut r2_findings = Vec::new();
    for inspection in inspections {
        let record = records::record(context, supervisor, inspection.record_id.clone()).await?;
        if record.status == RecordStatus::Locked {
            locked += 1;
            if inspection.ending == Ending::RefusedThenLocked {
                refused_then_locked += 1;
            }
        }
        if record.conflicts.iter().any(|c| c.legally_significant) {
            conflicts += 1;
        }
        let (_, metadata) = blobs::readable_metadata(context, supervisor, &inspection.photo).await?;
        if metadata.claimed.taken_at.is_some() && metadata.claimed.latitude.is_some() {
            photos_with_exif += 1;
        }
        if inspection.seal_without_recording {
            let log = enforcement_log::record_log(context, supervisor, inspection.record_id.clone()).await?;
            if log.findings.iter().any(|f| matches!(f, LogFinding::SealWithoutRecording { .. })) {
                r2_findings.push(inspection.record_id.clone());
            }
        }
    }
    let quarantined = records::quarantine(context, supervisor, None).await?.len();
    let mut log_entries = 0;
    for (officer, device) in devices {
        let status = device.status()?;
        if status.log_entries_not_uploaded > 0 || !status.photos_not_uploaded.is_empty() {
            bail!("{officer}'s phone still holds entries or photos the server does not");
        }
        log_entries += device.log(None)?.len();
    }
    let shown = inspections.iter().find(|i| i.ending == Ending::Locked).unwrap_or(&inspections[0]);
    Ok(Made {
        campaign_id: String::new(),
        campaign_tasks: 0,
        published: 0,
        other_tasks: 0,
        devices: devices.len(),
        records: inspections.len(),
        locked,
        conflicts,
        refused_then_locked,
        quarantined,
        photos: tally.photos_uploaded,
        photos_with_exif,
        log_entries,
        r2_findings,
        officers: [shown.lead.clone(), shown.partner.clone()],
    })
}

/// Prints where to log in, the accounts by role and what was made.
fn print_summary(
    options: &DemoOptions,
    city_dir: &Path,
    city: &City,
    registry: &Registry,
    made: &Made,
    address: SocketAddr,
    seconds: f64,
) {
    println!("fieldsync demo: made in {seconds:.1} s in {} from {}", options.data.display(), city_dir.display());
    println!();
    println!("log in at http://{}/", reachable(address));
    if address.ip().is_unspecified() {
        println!("(listening on every interface, port {})", address.port());
    }
    println!();
    println!("accounts (every account of a role has that role's password):");
    println!("  administrator  {ADMIN:<12} {ADMIN_PASSWORD}");
    println!("  supervisor     {SUPERVISOR:<12} {SUPERVISOR_PASSWORD}");
    println!("  reviewer       {REVIEWER:<12} {REVIEWER_PASSWORD}");
    for officer in &made.officers {
        println!("  officer        {officer:<12} {OFFICER_PASSWORD}  ({})", city.officer_name(officer));
    }
    println!(
        "  and every officer of officers.csv by id, with {OFFICER_PASSWORD}; their phones are in {}",
        options.data.join("devices").display()
    );
    println!();
    println!("made:");
    println!(
        "  registry: {} entities, {} recusals, {} matters",
        registry.entities, registry.recusals, registry.matters
    );
    println!(
        "  officers: {} with certificates, {} suspended ({}), {} past their end date",
        registry.officers,
        registry.suspended.len(),
        registry.suspended.join(", "),
        registry.expired
    );
    println!(
        "  campaign {}: {} tasks drawn, {} results published; {} other tasks",
        made.campaign_id, made.campaign_tasks, made.published, made.other_tasks
    );
    println!("  devices: {} phones enrolled, synced over HTTP", made.devices);
    println!(
        "  records: {} ({} locked, {} with open conflicts, {} locked after a refused change)",
        made.records, made.locked, made.conflicts, made.refused_then_locked
    );
    println!("  quarantine: {} refused changes", made.quarantined);
    println!("  photos: {} stored, {} with EXIF claims (time and place)", made.photos, made.photos_with_exif);
    println!(
        "  enforcement log: {} entries; R2 findings (seal without recording) on {}",
        made.log_entries,
        made.r2_findings.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_has_a_record_and_the_campaign_a_task() {
        for records in [3, 12, 50, 1_500] {
            let (conflicts, refused, campaign) = endings(records);
            assert!(conflicts >= 1 && refused >= 1 && campaign >= 1, "{records}");
            assert!(conflicts + refused + campaign <= records, "{records}");
        }
        assert_eq!(endings(50), (5, 2, 21));
    }

    #[test]
    fn a_photo_claims_its_time_and_place() {
        let at = 1_780_000_000_000;
        let jpeg = photo(7, at, 24.297723, 109.637874).unwrap();
        let examined = crate::service::media::examine(&jpeg);
        assert_eq!(examined.claimed.offset.as_deref(), Some("+08:00"));
        let taken_at = examined.claimed.taken_at.expect("a time");
        assert_eq!(sync_core::evidence::exif_time_ms(&format!("{taken_at}+08:00")), Some(at / 1000 * 1000));
        assert!((examined.claimed.latitude.unwrap() - 24.297723).abs() < 1e-5);
        assert!((examined.claimed.longitude.unwrap() - 109.637874).abs() < 1e-5);
        assert_ne!(photo(8, at, 24.0, 109.0).unwrap(), photo(7, at, 24.0, 109.0).unwrap());
    }
}
