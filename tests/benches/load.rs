//! Load run: N simulated devices against the real `fieldsync-server` binary on loopback. Each
//! device enrolls, makes M realistic records offline, syncs them all (first sync), then does K
//! no-op syncs. Reports records merged per second, no-op latency, bytes, and the server's peak
//! resident memory. See BENCHMARKS.md.
//!
//!     cargo build --release -p fieldsync-server
//!     cargo bench -p fieldsync-tests --bench load
//!
//! `FIELDSYNC_LOAD_DEVICES` (default 200), `FIELDSYNC_LOAD_RECORDS` (50), `FIELDSYNC_LOAD_NOOPS` (10),
//! `FIELDSYNC_LOAD_PERIOD_MS` (1000: the mean interval between one device's paced no-op syncs).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldsync_tests::harness::{City, Phone, TestServer, enroll, spawn_server};
use server::store::prelude::*;
use server::store::sqlite::SqliteStore;
use sync_core::document::new_record_id;

const PASSWORD: &str = "correct horse battery";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// CPU time (user and system) a process has used, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let devices = setting("FIELDSYNC_LOAD_DEVICES", 200);
    let records = setting("FIELDSYNC_LOAD_RECORDS", 50);
    let noops = setting("FIELDSYNC_LOAD_NOOPS", 10);
    let period_ms = setting("FIELDSYNC_LOAD_PERIOD_MS", 1000) as u64;
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/fieldsync-server");
    assert!(binary.exists(), "build it first: cargo build --release -p fieldsync-server");

    // A bureau: devices officers with certificates, tasks for pairs, the entity registry.
    let dir = tempfile::tempdir().unwrap();
    let database = server::store::sqlite::database_path(dir.path());
    let store = SqliteStore::open(&database).unwrap();
    store.add_signing_key(server::service::admin::new_signing_key(server::now_ms())).unwrap();
    let csv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/entities.csv")).unwrap();
    store.import_entities(&server::service::admin::parse_entities_csv(&csv).unwrap(), server::now_ms()).unwrap();
    let city = City::load();
    let seeding = TestServer::external(String::new(), store.clone(), tempfile::tempdir().unwrap());
    for n in 0..devices {
        let id = format!("O{n:04}");
        seeding.account(&id, PASSWORD, &["officer"]);
        seeding.certificate(&id);
    }
    let now = server::now_ms();
    for n in (0..devices).step_by(2) {
        let (first, second) = (format!("O{n:04}"), format!("O{:04}", (n + 1) % devices));
        seeding.seed_task(&format!("T{n:04}"), &city.rows[n % city.rows.len()][0], &[&first, &second]);
    }
    store.close();
    drop(store);

    let (mut child, address) = spawn_server(
        &binary,
        dir.path(),
        "127.0.0.1:0",
        // Every simulated device connects from 127.0.0.1: the per-address caps are for a
        // unit's phones behind one NAT, not for a whole bureau on one address.
        &[
            "--auth-attempts-per-minute",
            "1000000",
            "--auth-attempts-per-minute-per-address",
            "1000000",
            "--max-connections-per-address",
            "100000",
        ],
    )
    .expect("the server starts (a binary older than the database exits: cargo build --release -p fieldsync-server)");
    let store = SqliteStore::open(&database).unwrap();
    let server = Arc::new(TestServer::external(format!("http://{address}"), store, dir));

    // Enrollment and offline work are not timed.
    let mut phones = Vec::new();
    for n in 0..devices {
        let mut phone = enroll(&server, &format!("O{n:04}"), PASSWORD).await;
        let task = format!("T{:04}", n - n % 2);
        for r in 0..records {
            let record_id = new_record_id(now as u64 + r as u64, {
                let mut random = [0u8; 10];
                random[..4].copy_from_slice(&(n as u32).to_be_bytes());
                random[4..8].copy_from_slice(&(r as u32).to_be_bytes());
                random
            });
            // The partner is the other officer of the task's team.
            let partner = if n % 2 == 0 { (n + 1) % devices } else { n - 1 };
            let (me, partner) = (format!("O{n:04}"), format!("O{partner:04}"));
            let (my_certificate, partner_certificate) = (format!("GX-{me}"), format!("GX-{partner}"));
            let record = city.record(
                n * records + r,
                &record_id,
                &task,
                &city.rows[(n - n % 2) % city.rows.len()][0],
                phone.actor.clone(),
                [(&me, "甲", &my_certificate), (&partner, "乙", &partner_certificate)],
            );
            phone.records.insert(record);
            phone.session.record_changed(&record_id);
        }
        phones.push(phone);
    }

    // First sync of every device at once.
    println!("enrolled {devices} devices; first sync starts");
    let cpu_before = cpu_time(child.id());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut phone in phones {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let stats = phone.sync_counted(&server).await;
            assert!(stats.rejections.is_empty(), "{:?}", stats.rejections.first());
            (phone, stats)
        }));
    }
    let mut phones: Vec<Phone> = Vec::new();
    let (mut first_up, mut first_down, mut first_requests) = (0, 0, 0);
    for task in tasks {
        let (phone, stats) = task.await.unwrap();
        first_up += stats.bytes_up;
        first_down += stats.bytes_down;
        first_requests += stats.requests;
        phones.push(phone);
    }
    let first = started.elapsed();
    let first_cpu = cpu_time(child.id()) - cpu_before;
    let merged = devices * records;

    // Each device then receives its partner's records (same task): not timed, so that the
    // no-op syncs below are truly no-ops.
    let mut tasks = Vec::new();
    for mut phone in phones {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            phone.sync_counted(&server).await;
            phone
        }));
    }
    let mut phones: Vec<Phone> = Vec::new();
    for task in tasks {
        phones.push(task.await.unwrap());
    }

    // No-op syncs: every device, `noops` times, all devices at once.
    let mut tasks = Vec::new();
    for mut phone in phones {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for _ in 0..noops {
                let started = Instant::now();
                let stats = phone.sync_counted(&server).await;
                samples.push((started.elapsed(), stats.bytes_up + stats.bytes_down, stats.requests));
            }
            (phone, samples)
        }));
    }
    let mut latencies = Vec::new();
    let mut noop_bytes = Vec::new();
    let mut phones: Vec<Phone> = Vec::new();
    for task in tasks {
        let (phone, samples) = task.await.unwrap();
        phones.push(phone);
        for (latency, bytes, requests) in samples {
            assert_eq!(requests, 1, "a no-op sync is one request");
            latencies.push(latency);
            noop_bytes.push(bytes);
        }
    }
    latencies.sort();

    // Paced no-op syncs: each device syncs at random instants, on average every `period_ms`
    // (uniform gaps in [0, 2 x period]), as phones in the field would, not all in one instant.
    let mut tasks = Vec::new();
    for mut phone in phones {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % period_ms.max(1))).await;
            for _ in 0..noops {
                let started = Instant::now();
                let stats = phone.sync_counted(&server).await;
                samples.push((started.elapsed(), stats.requests));
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % (2 * period_ms).max(1))).await;
            }
            samples
        }));
    }
    let mut paced = Vec::new();
    for task in tasks {
        for (latency, requests) in task.await.unwrap() {
            assert_eq!(requests, 1, "a no-op sync is one request");
            paced.push(latency);
        }
    }
    paced.sort();
    let peak = peak_rss_kib(child.id());
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();

    println!("load: {devices} devices x {records} records, {noops} no-op syncs each, server on loopback");
    println!(
        "first sync: {merged} records in {:.2} s = {:.0} records/s; {first_requests} requests; {} bytes up, {} bytes down",
        first.as_secs_f64(),
        merged as f64 / first.as_secs_f64(),
        first_up,
        first_down
    );
    println!(
        "no-op sync, all devices at once: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; bytes per sync {}..={}",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        noop_bytes.iter().min().unwrap(),
        noop_bytes.iter().max().unwrap()
    );
    println!(
        "server CPU during the first sync: {:.2} s = {:.3} ms per record ({:.0} records/s per core)",
        first_cpu.as_secs_f64(),
        first_cpu.as_secs_f64() * 1e3 / merged as f64,
        merged as f64 / first_cpu.as_secs_f64()
    );
    println!(
        "paced no-op sync (each device every {period_ms} ms on average, {:.0} syncs/s in all): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        devices as f64 * 1000.0 / period_ms as f64,
        percentile(&paced, 0.5).as_secs_f64() * 1e3,
        percentile(&paced, 0.99).as_secs_f64() * 1e3,
        paced.last().unwrap().as_secs_f64() * 1e3
    );
    println!("server peak resident memory: {:.1} MiB", peak as f64 / 1024.0);
}
