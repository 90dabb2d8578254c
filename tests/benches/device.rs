//! Device sync: one officer's device (`field-client`, its SQLite store) holding N realistic
//! records made offline, against the server on loopback (real HTTP, validated, committed to
//! SQLite): the first sync and no-op syncs, side by side with plain in-process Automerge sync of
//! the same documents in the same run. See BENCHMARKS.md.
//!
//!     cargo bench -p fieldsync-tests --bench device
//!
//! `FIELDSYNC_DEVICE_RECORDS` (default 500), `FIELDSYNC_DEVICE_RUNS` (3), `FIELDSYNC_DEVICE_NOOPS` (20).

use std::time::{Duration, Instant};

use field_client::remote::{SyncOptions, enroll};
use fieldsync_tests::harness::{City, TestServer};
use sync_core::document::new_record_id;
use sync_core::sample::PlainPeers;

const PASSWORD: &str = "correct horse battery";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Figures {
    first: Duration,
    first_bytes: usize,
    first_requests: usize,
    noop: Duration,
    noop_bytes: usize,
    noop_requests: usize,
    plain_first: Duration,
    plain_first_bytes: usize,
    plain_noop: Duration,
    plain_noop_bytes: usize,
}

async fn run(records: usize, noops: usize) -> Figures {
    let server = TestServer::start().await;
    server.entities(20);
    for officer in ["O1", "O2"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.seed_task("T1", "E00001", &["O1", "O2"]);
    let now = server::now_ms();
    let dir = tempfile::tempdir().unwrap();
    let mut device = enroll(dir.path(), &server.base, "O1", PASSWORD).await.unwrap();
    let actor = automerge::ActorId::from(hex::decode(&device.identity().actor_id).unwrap());

    // Offline: the records, as the phone's officer makes them (not timed).
    let city = City::load();
    let mut documents = Vec::new();
    for r in 0..records {
        let record_id = new_record_id(now as u64 + r as u64, rand::random());
        let record =
            city.record(r, &record_id, "T1", "E00001", actor.clone(), [("O1", "甲", "GX-O1"), ("O2", "乙", "GX-O2")]);
        device.store().put_local_record(&record_id, Some("T1"), &record.save(), None, now).unwrap();
        documents.push(record.automerge().clone());
    }

    let options = SyncOptions::default();
    let started = Instant::now();
    let first = device.sync(&options, |_| {}).await.unwrap();
    let first_time = started.elapsed();
    assert!(first.refused.is_empty(), "{:?}", first.refused.first());
    assert!(device.status().unwrap().missing_on_server.is_empty());
    let mut noop_times = Vec::new();
    let mut noop = None;
    for _ in 0..noops {
        let started = Instant::now();
        let summary = device.sync(&options, |_| {}).await.unwrap();
        noop_times.push(started.elapsed());
        noop = Some(summary);
    }
    let noop = noop.unwrap();

    let mut plain = PlainPeers::new(documents);
    let started = Instant::now();
    let (_, plain_first_bytes) = plain.sync();
    let plain_first = started.elapsed();
    let mut plain_noops = Vec::new();
    let mut plain_noop_bytes = 0;
    for _ in 0..noops {
        plain.reconnect();
        let started = Instant::now();
        plain_noop_bytes = plain.sync().1;
        plain_noops.push(started.elapsed());
    }
    server.stop().await;
    Figures {
        first: first_time,
        first_bytes: first.bytes_up + first.bytes_down,
        first_requests: first.requests,
        noop: median(noop_times),
        noop_bytes: noop.bytes_up + noop.bytes_down,
        noop_requests: noop.requests,
        plain_first,
        plain_first_bytes,
        plain_noop: median(plain_noops),
        plain_noop_bytes,
    }
}

#[tokio::main]
async fn main() {
    let records = setting("FIELDSYNC_DEVICE_RECORDS", 500);
    let runs = setting("FIELDSYNC_DEVICE_RUNS", 3);
    let noops = setting("FIELDSYNC_DEVICE_NOOPS", 20);
    println!("device: {records} records made offline, {runs} runs, {noops} no-op syncs per run");
    let mut all = Vec::new();
    for run_number in 0..runs {
        let f = run(records, noops).await;
        println!(
            "run {run_number}: first sync {:.1} ms, {} bytes, {} requests (plain {:.1} ms, {} bytes); \
             no-op {:.2} ms, {} bytes, {} requests (plain {:.3} ms, {} bytes)",
            ms(f.first),
            f.first_bytes,
            f.first_requests,
            ms(f.plain_first),
            f.plain_first_bytes,
            ms(f.noop),
            f.noop_bytes,
            f.noop_requests,
            ms(f.plain_noop),
            f.plain_noop_bytes
        );
        all.push(f);
    }
    let first = median(all.iter().map(|f| f.first).collect());
    let plain_first = median(all.iter().map(|f| f.plain_first).collect());
    let noop = median(all.iter().map(|f| f.noop).collect());
    let plain_noop = median(all.iter().map(|f| f.plain_noop).collect());
    let last = all.last().unwrap();
    println!(
        "median: first sync {:.1} ms = {:.0} records/s ({:.2}x plain {:.1} ms), bytes {:.2}x plain; \
         no-op {:.2} ms ({:.2}x plain {:.3} ms), {} bytes vs plain {}",
        ms(first),
        records as f64 / first.as_secs_f64(),
        first.as_secs_f64() / plain_first.as_secs_f64(),
        ms(plain_first),
        last.first_bytes as f64 / last.plain_first_bytes as f64,
        ms(noop),
        noop.as_secs_f64() / plain_noop.as_secs_f64(),
        ms(plain_noop),
        last.noop_bytes,
        last.plain_noop_bytes
    );
}
