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

mod city;
mod phones;

use city::*;
use phones::*;

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
