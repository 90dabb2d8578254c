//! First sync and no-op resync of 1,000 realistic records between two in-process peers, with
//! plain Automerge sync of the same documents side by side in the same run. See BENCHMARKS.md.
//!
//! `cargo bench -p fieldsync-sync-core --bench sync` runs it; the byte counts are printed first.
//! `FIELDSYNC_BENCH_RECORDS` changes the number of records (default 1,000).

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::Duration;

use automerge::{ActorId, Automerge};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use schemas::wire::{from_cbor, to_cbor};
use schemas::{EntityRef, SyncResponse};
use sync_core::document::{RecordDocument, new_record_id};
use sync_core::sample::{self, PlainPeers};
use sync_core::session::{
    AcceptAll, ChangeFeed, ChangeGate, DeviceRecords, DeviceSession, ServerSession, SessionConfig,
};
use sync_core::validate::{ActorBinding, ValidationContext};

const T0: i64 = 1_780_272_000_000;
const DEVICE_ACTOR: [u8; 16] = [7; 16];

fn shared(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../shared/data/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("../shared/data beside the project")
}

/// One record as an officer makes it on site (see `sync_core::sample`).
fn realistic_record(n: usize, entity: &[&str], checklist: &[String]) -> RecordDocument {
    let record_id = new_record_id(T0 as u64 + n as u64, (n as u128).to_be_bytes()[6..].try_into().unwrap());
    sample::inspection_record(&sample::SampleInspection {
        record_id: &record_id,
        task_id: "T0001",
        actor: ActorId::from(DEVICE_ACTOR),
        started_at_ms: T0,
        entity: EntityRef {
            entity_id: Some(entity[0].into()),
            name: Some(entity[1].into()),
            credit_code: Some(entity[2].into()),
            legal_representative: Some(entity[7].into()),
            discharge_permit: (!entity[11].is_empty()).then(|| entity[11].into()),
            tier: Some(entity[6].into()),
        },
        address: entity[8],
        latitude: entity[9].parse().unwrap(),
        longitude: entity[10].parse().unwrap(),
        officers: [("O0001", "杨超", "GX20214502090001"), ("O0002", "周燕霞", "GX20224502000002")],
        checklist,
        photo_seed: n as u32,
    })
    .unwrap()
}

fn records(count: usize) -> DeviceRecords {
    let entities = shared("entities.csv");
    let entities: Vec<Vec<&str>> = entities.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let checklist: serde_json::Value = serde_json::from_str(&shared("checklist.json")).unwrap();
    let codes: Vec<String> =
        checklist["items"].as_array().unwrap().iter().map(|item| item["code"].as_str().unwrap().to_string()).collect();
    let mut device = DeviceRecords::new(ActorId::from(DEVICE_ACTOR));
    for n in 0..count {
        device.insert(realistic_record(n, &entities[n % entities.len()], &codes));
    }
    device
}

fn context() -> ValidationContext {
    let certificate = |officer: &str, number: &str| schemas::Certificate {
        number: number.into(),
        officer_id: officer.into(),
        issuing_authority: "广西壮族自治区人民政府".into(),
        valid_from_ms: 0,
        valid_until_ms: T0 + 400 * 86_400_000,
        status_history: vec![],
        periods: vec![],
        reviews: vec![],
    };
    ValidationContext {
        sending_device_id: "D001".into(),
        actors: BTreeMap::from([(
            ActorId::from(DEVICE_ACTOR),
            ActorBinding { device_id: "D001".into(), officer_id: "O0001".into() },
        )]),
        certificates: vec![certificate("O0001", "GX20214502090001"), certificate("O0002", "GX20224502000002")],
        teams: BTreeMap::from([("T0001".to_string(), BTreeSet::from(["O0001".to_string(), "O0002".to_string()]))]),
        now_ms: T0 + 86_400_000,
        max_clock_skew_ms: 300_000,
        refused: BTreeMap::new(),
        reviewed: Default::default(),
        task_entities: Default::default(),
        recusals: Default::default(),
        checklists: Default::default(),
        completeness: Default::default(),
    }
}

/// Both sides of the batched session, with CBOR on the wire.
struct SessionPeers<G> {
    device: DeviceRecords,
    device_session: DeviceSession,
    server_docs: BTreeMap<String, Automerge>,
    server_session: ServerSession,
    feed: ChangeFeed,
    gate: G,
}

impl<G: ChangeGate> SessionPeers<G> {
    fn new(device: DeviceRecords, gate: G) -> Self {
        let mut device_session = DeviceSession::new(SessionConfig::default());
        for (id, _) in device.iter() {
            device_session.record_changed(id);
        }
        Self {
            device,
            device_session,
            server_docs: BTreeMap::new(),
            server_session: ServerSession::new(),
            feed: ChangeFeed::default(),
            gate,
        }
    }

    /// One sync; returns (requests, bytes on the wire).
    fn sync(&mut self) -> (usize, usize) {
        let (mut requests, mut bytes) = (0, 0);
        self.device_session.begin();
        while let Some(request) = self.device_session.poll(&mut self.device) {
            let up = to_cbor(&request);
            let request = from_cbor(&up).unwrap();
            let feed = &mut self.feed;
            let (response, _) = self
                .server_session
                .handle(&request, &mut self.server_docs, &mut self.gate, |report| {
                    for id in &report.updated {
                        feed.record_changed(id);
                    }
                    feed.changed_since(request.since, 512)
                })
                .unwrap();
            let down = to_cbor(&response);
            let response: SyncResponse = from_cbor(&down).unwrap();
            self.device_session.handle(response, &mut self.device).unwrap();
            requests += 1;
            bytes += up.len() + down.len();
        }
        (requests, bytes)
    }
}

fn record_count() -> usize {
    std::env::var("FIELDSYNC_BENCH_RECORDS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000)
}

fn bench(c: &mut Criterion) {
    let count = record_count();
    let device = records(count);
    let changes: usize = device.iter().map(|(_, r)| r.automerge().get_changes(&[]).len()).sum();
    let saved: usize = device.iter().map(|(_, r)| r.save().len()).sum();

    // Byte counts, once.
    let mut plain = PlainPeers::new(device.iter().map(|(_, r)| r.automerge().clone()).collect());
    let plain_first = plain.sync();
    plain.reconnect();
    let plain_noop = plain.sync();
    let mut session = SessionPeers::new(device.clone(), AcceptAll);
    let session_first = session.sync();
    let session_noop = session.sync();
    let mut validated = SessionPeers::new(device.clone(), context());
    let validated_first = validated.sync();
    assert_eq!(validated.server_docs.len(), count, "every record accepted");
    println!("{count} records, {changes} changes, {saved} bytes saved");
    println!("first sync: plain automerge {} messages {} bytes", plain_first.0, plain_first.1);
    println!("first sync: session {} requests {} bytes", session_first.0, session_first.1);
    println!("first sync: session validated {} requests {} bytes", validated_first.0, validated_first.1);
    println!("no-op sync: plain automerge {} messages {} bytes", plain_noop.0, plain_noop.1);
    println!("no-op sync: session {} requests {} bytes", session_noop.0, session_noop.1);

    let mut group = c.benchmark_group(format!("first_sync_{count}"));
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("plain_automerge", |b| {
        b.iter_batched(
            || PlainPeers::new(device.iter().map(|(_, r)| r.automerge().clone()).collect()),
            |mut peers| black_box(peers.sync()),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("session", |b| {
        b.iter_batched(
            || SessionPeers::new(device.clone(), AcceptAll),
            |mut peers| black_box(peers.sync()),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("session_validated", |b| {
        b.iter_batched(
            || SessionPeers::new(device.clone(), context()),
            |mut peers| black_box(peers.sync()),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group(format!("noop_sync_{count}"));
    group.sample_size(20);
    group.bench_function("plain_automerge", |b| {
        b.iter(|| {
            plain.reconnect();
            black_box(plain.sync())
        })
    });
    group.bench_function("session", |b| b.iter(|| black_box(session.sync())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
