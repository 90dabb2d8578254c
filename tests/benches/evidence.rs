//! Evidence figures: a device's photo upload against the server on loopback, beside this
//! machine's SHA-256 and durable write speeds measured in the same run, the server's ingestion
//! of a device's enforcement-log chain, Merkle proofs at a million leaves, and the offline
//! verification of a record's evidence package (with its report a court reads) beside the time
//! to hash and to untar the same package. See BENCHMARKS.md.
//!
//!     cargo bench -p fieldsync-tests --bench evidence
//!
//! `FIELDSYNC_EVIDENCE_PHOTO_SIDE` (default 1830: a noise PNG of about 10 MB),
//! `FIELDSYNC_EVIDENCE_LEAVES` (default 1,000,000), `FIELDSYNC_EVIDENCE_ENTRIES` (default 20,000), `FIELDSYNC_EVIDENCE_CHUNK_KIB` (default 256,
//! the device's default upload chunk); the package: `FIELDSYNC_EVIDENCE_PACKAGE_PHOTOS` (default
//! 20), `FIELDSYNC_EVIDENCE_PACKAGE_ENTRIES` (default 200), `FIELDSYNC_EVIDENCE_PACKAGE_PHOTO_SIDE`
//! (default 1000: noise PNGs of about 3 MB), `FIELDSYNC_EVIDENCE_PACKAGE_RUNS` (default 5).

use std::time::{Duration, Instant};

use field_client::remote::{SyncOptions, enroll};
use fieldsync_tests::harness::TestServer;
use schemas::log::{EntryKind, EntryOutcome, LogEntry, LogUpload, LogUploadResponse, UploadedEntry};
use sha2::Digest;
use sync_core::enforcement_log::{EntryEncoding, EntryVerification, payload_hash};
use sync_core::merkle::{
    SubtreeCache, consistency_proof, consistency_proof_of, inclusion_proof, inclusion_proof_of, leaf_hash, root,
    verify_consistency, verify_inclusion,
};

const PASSWORD: &str = "correct horse battery";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU time of this process so far (user and system), in seconds.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let side = setting("FIELDSYNC_EVIDENCE_PHOTO_SIDE", 1830) as u32;
    let leaves = setting("FIELDSYNC_EVIDENCE_LEAVES", 1_000_000);
    let entries = setting("FIELDSYNC_EVIDENCE_ENTRIES", 20_000);

    // A photo that does not compress: noise.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.png");
    fieldsync_tests::harness::noise_png(&path, side, 0x2545_f491);
    let photo = std::fs::read(&path).unwrap();

    // This machine's SHA-256 speed over the same bytes.
    let started = Instant::now();
    let rounds = 5;
    for _ in 0..rounds {
        std::hint::black_box(sha2::Sha256::digest(&photo));
    }
    let sha256 = mb_per_s(photo.len() * rounds, started.elapsed());

    // This disk's durable write speed over the same bytes: written and fsynced, as the server
    // keeps an upload. No durable upload can be faster.
    let started = Instant::now();
    for round in 0..rounds {
        use std::io::Write;
        let mut file = std::fs::File::create(dir.path().join(format!("durable-{round}"))).unwrap();
        file.write_all(&photo).unwrap();
        file.sync_all().unwrap();
    }
    let durable = mb_per_s(photo.len() * rounds, started.elapsed());

    // The upload: a device whose record already reached the server adds the photo, and one sync
    // sends the record's new change and the photo in 256 KiB chunks (the server hashes it whole
    // before storing it, then makes its thumbnail).
    let server = TestServer::start_with(|config| config.max_blob_bytes = 64 << 20).await;
    server.entities(2);
    for officer in ["O1", "O2"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.seed_task("T1", "E00001", &["O1", "O2"]);
    let device_dir = tempfile::tempdir().unwrap();
    let mut device = enroll(device_dir.path(), &server.base, "O1", PASSWORD).await.unwrap();
    let options = SyncOptions {
        upload_chunk_bytes: setting("FIELDSYNC_EVIDENCE_CHUNK_KIB", 256) << 10,
        ..SyncOptions::default()
    };
    device.sync(&options, |_| {}).await.unwrap();
    let record_id = device.new_record("T1").unwrap();
    device.sync(&options, |_| {}).await.unwrap();
    device.add_photo(&record_id, &path, "噪声").unwrap();
    let started = Instant::now();
    let summary = device.sync(&options, |_| {}).await.unwrap();
    let upload = started.elapsed();
    assert_eq!(summary.photos_uploaded.len(), 1, "{summary:?}");
    let upload_rate = mb_per_s(photo.len(), upload);

    // Log ingestion: one device's chain of `entries` entries, uploaded in CBOR batches of 1,000
    // (the server's limit), each entry's signature checked strictly, placed against the stored
    // chain and appended to the transparency log. CPU time is the whole process's (server and
    // client), so entries per CPU-second is a lower bound for the server on one core.
    let phone = fieldsync_tests::harness::enroll(&server, "O2", PASSWORD).await;
    let mut previous = sync_core::enforcement_log::GENESIS_PREVIOUS;
    let mut uploaded = Vec::with_capacity(entries);
    for seq in 1..=entries as u64 {
        let payload = format!("第{seq}条：现场检查记录，执法记录仪持续录像。").into_bytes();
        let entry = LogEntry {
            device_id: phone.device_id.clone(),
            seq,
            previous,
            device_time_ms: 1_790_000_000_000 + seq as i64 * 1_000,
            monotonic_ms: seq * 1_000,
            boot_id: "boot-bench".into(),
            kind: if seq % 5 == 0 { EntryKind::PartyQuestioned } else { EntryKind::Arrive },
            record_id: Some(record_id.clone()),
            payload_hash: payload_hash(&payload),
            seen_checkpoint: None,
        };
        previous = entry.hash();
        uploaded.push(UploadedEntry { signed: entry.sign(&phone.key), payload });
    }
    let started_verify = Instant::now();
    for entry in &uploaded {
        entry.signed.verify(&phone.key.verifying_key()).unwrap();
    }
    let verify_rate = entries as f64 / started_verify.elapsed().as_secs_f64();
    let (started, cpu_before) = (Instant::now(), cpu_seconds());
    for batch in uploaded.chunks(1_000) {
        let body = schemas::wire::to_cbor(&LogUpload { entries: batch.to_vec() });
        let response = server
            .client
            .post(format!("{}/v1/log/entries", server.base))
            .bearer_auth(&phone.token)
            .header("content-type", "application/cbor")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: LogUploadResponse = schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap();
        assert!(answer.outcomes.iter().all(|o| matches!(o, EntryOutcome::Accepted { .. })));
    }
    let (ingest_wall, ingest_cpu) = (started.elapsed(), cpu_seconds() - cpu_before);
    let package = package_verification(&server).await;
    server.stop().await;

    // Merkle proofs over a million leaves, built from the leaf hashes with `sync_core::merkle`.
    let started = Instant::now();
    let hashes: Vec<_> = (0..leaves).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect();
    let hashing = started.elapsed();
    let started = Instant::now();
    let top = root(&hashes);
    let root_time = started.elapsed();
    let index = leaves / 3;
    let started = Instant::now();
    let inclusion = inclusion_proof(&hashes, index).unwrap();
    let inclusion_time = started.elapsed();
    let started = Instant::now();
    let consistency = consistency_proof(&hashes, leaves / 2).unwrap();
    let consistency_time = started.elapsed();
    let half = root(&hashes[..leaves / 2]);
    let started = Instant::now();
    verify_inclusion(index as u64, leaves as u64, &hashes[index], &inclusion, &top).unwrap();
    verify_consistency((leaves / 2) as u64, leaves as u64, &consistency, &half, &top).unwrap();
    let verify_time = started.elapsed();

    // The same proofs from the complete subtrees a log keeps as leaves arrive (the server keeps
    // them in SQLite): O(log² n) hashes read per proof instead of every leaf.
    let started = Instant::now();
    let mut cache = SubtreeCache::default();
    for hash in &hashes {
        cache.push(*hash);
    }
    let cache_time = started.elapsed();
    let repeats = 1_000;
    let started = Instant::now();
    for _ in 0..repeats {
        let Ok(proof) = inclusion_proof_of(&cache, leaves as u64, index as u64);
        assert_eq!(proof.as_ref(), Some(&inclusion));
        let Ok(proof) = consistency_proof_of(&cache, leaves as u64, (leaves / 2) as u64);
        assert_eq!(proof.as_ref(), Some(&consistency));
    }
    let cached_proofs = started.elapsed() / repeats;

    println!("photo: {} bytes ({side}x{side} noise PNG)", photo.len());
    println!("SHA-256 on this machine: {sha256:.0} MB/s; durable write (write and fsync): {durable:.0} MB/s");
    println!(
        "upload through one device sync: {:.1} ms = {upload_rate:.0} MB/s = {:.0} % of SHA-256 speed, {:.0} % of \
         durable write speed; {} chunks of {} KiB",
        upload.as_secs_f64() * 1e3,
        100.0 * upload_rate / sha256,
        100.0 * upload_rate / durable,
        photo.len().div_ceil(options.upload_chunk_bytes),
        options.upload_chunk_bytes >> 10
    );
    println!(
        "log ingestion, {entries} entries in batches of 1,000: {:.0} entries/s wall, {:.0} entries per CPU-second \
         (server and client in one process); strict signature checks alone {verify_rate:.0}/s on one core",
        entries as f64 / ingest_wall.as_secs_f64(),
        entries as f64 / ingest_cpu
    );
    println!(
        "merkle, {leaves} leaves: leaf hashes {:.0} ms; root {:.0} ms; inclusion proof {:.0} ms ({} hashes); \
         consistency proof {:.0} ms ({} hashes); both verified in {:.3} ms",
        hashing.as_secs_f64() * 1e3,
        root_time.as_secs_f64() * 1e3,
        inclusion_time.as_secs_f64() * 1e3,
        inclusion.len(),
        consistency_time.as_secs_f64() * 1e3,
        consistency.len(),
        verify_time.as_secs_f64() * 1e3
    );
    println!(
        "merkle from complete subtrees: kept in {:.0} ms for {leaves} leaves; an inclusion and a consistency proof \
         together {:.1} µs",
        cache_time.as_secs_f64() * 1e3,
        cached_proofs.as_secs_f64() * 1e6
    );
    println!("{package}");
}

/// The median of `runs` timings of `work`.
fn median(runs: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

/// A record of two officers with `FIELDSYNC_EVIDENCE_PACKAGE_PHOTOS` photos and
/// `FIELDSYNC_EVIDENCE_PACKAGE_ENTRIES` log entries, signed and locked, exported with its
/// photos; its offline verification and its report, beside SHA-256 and untarring of the same
/// bytes. The figures, as a line.
async fn package_verification(server: &TestServer) -> String {
    use field_client::report::{self, ReportFont, Source};
    use sync_core::evidence::{KeyTrust, verify_package};

    let photos = setting("FIELDSYNC_EVIDENCE_PACKAGE_PHOTOS", 20);
    let entries = setting("FIELDSYNC_EVIDENCE_PACKAGE_ENTRIES", 200);
    let side = setting("FIELDSYNC_EVIDENCE_PACKAGE_PHOTO_SIDE", 1000) as u32;
    let runs = setting("FIELDSYNC_EVIDENCE_PACKAGE_RUNS", 5);
    let options = SyncOptions::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = enroll(a_dir.path(), &server.base, "O1", PASSWORD).await.unwrap();
    let mut b = enroll(b_dir.path(), &server.base, "O2", PASSWORD).await.unwrap();
    a.sync(&options, |_| {}).await.unwrap();
    b.sync(&options, |_| {}).await.unwrap();
    let record_id = a.new_record("T1").unwrap();
    a.add_officer_present(&record_id, "O1", true).unwrap();
    a.add_officer_present(&record_id, "O2", true).unwrap();
    // Complete before it is signed (the recusal question, the end time), then its own conclusion.
    for completing in sync_core::sample::completing_edits(a.now_ms()) {
        a.edit(&record_id, completing).unwrap();
    }
    a.edit(&record_id, sync_core::document::Edit::SetConclusion("责令限期改正".into())).unwrap();
    for n in 0..photos {
        let path = a_dir.path().join(format!("photo-{n}.png"));
        fieldsync_tests::harness::noise_png(&path, side, 0x9e37_79b9u32.wrapping_mul(n as u32 + 1));
        a.add_photo(&record_id, &path, &format!("第{n}张")).unwrap();
    }
    // The entries up to the count, less the two signatures that end the record.
    let mut n = a.log(Some(&record_id)).unwrap().len();
    while n + 2 < entries {
        let kind = if n % 2 == 0 { EntryKind::PartyQuestioned } else { EntryKind::EvidencePreserved };
        a.append_log(kind, Some(&record_id), format!("第{n}条：现场检查记录。").as_bytes()).unwrap();
        n += 1;
    }
    a.sync(&options, |_| {}).await.unwrap();
    b.sync(&options, |_| {}).await.unwrap();
    a.sign(&record_id).unwrap();
    a.sync(&options, |_| {}).await.unwrap();
    b.sync(&options, |_| {}).await.unwrap();
    b.sign(&record_id).unwrap();
    b.sync(&options, |_| {}).await.unwrap();
    a.sync(&options, |_| {}).await.unwrap();
    let token = server.token("O1", PASSWORD).await;
    let response = server.get(&format!("/v1/records/{record_id}/evidence"), &token).await;
    assert_eq!(response.status(), 200);
    let package = response.bytes().await.unwrap().to_vec();
    // The same record's package with its photos' hashes only: what the entries, proofs and
    // document cost without the photos' bytes.
    let response = server.get(&format!("/v1/records/{record_id}/evidence?blobs=hashes"), &token).await;
    assert_eq!(response.status(), 200);
    let hashes_only = response.bytes().await.unwrap().to_vec();

    let sha256 = median(runs, || {
        std::hint::black_box(sha2::Sha256::digest(&package));
    });
    let untar = median(runs, || {
        let mut archive = tar::Archive::new(&package[..]);
        for member in archive.entries().unwrap() {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut member.unwrap(), &mut bytes).unwrap();
            std::hint::black_box(bytes);
        }
    });
    let verified = verify_package(&package, KeyTrust::PackageKey, 300_000);
    assert!(verified.holds(), "{:#?}", verified.checks.iter().filter(|c| !c.holds).collect::<Vec<_>>());
    let logged = verified.intervals.len();
    assert_eq!(logged, a.log(Some(&record_id)).unwrap().len() + b.log(Some(&record_id)).unwrap().len());
    assert_eq!(verified.contents.blob_bytes.len(), photos);
    let verify = median(runs, || {
        std::hint::black_box(verify_package(&package, KeyTrust::PackageKey, 300_000));
    });
    assert!(verify_package(&hashes_only, KeyTrust::PackageKey, 300_000).holds());
    let verify_hashes_only = median(runs, || {
        std::hint::black_box(verify_package(&hashes_only, KeyTrust::PackageKey, 300_000));
    });
    let source = Source { file_name: "package.tar", sha256: "", max_skew_ms: 300_000, verified_at_ms: 0 };
    let html = median(runs, || {
        std::hint::black_box(report::html::render(&report::build(&verified, &source)));
    });
    let pdf = match ReportFont::find(None) {
        Ok(font) => {
            let started = Instant::now();
            ReportFont::find(None).unwrap();
            let loading = started.elapsed();
            let time = median(runs, || {
                std::hint::black_box(report::pdf::render(&report::build(&verified, &source), &font).unwrap());
            });
            format!("PDF report {:.0} ms (its font, {}, read in {:.0} ms)", ms(time), font.family, ms(loading))
        }
        Err(e) => format!("no PDF report ({})", e.code()),
    };
    format!(
        "evidence package of a record with {photos} photos ({side}x{side} noise PNGs) and {logged} log entries: \
         {:.1} MB; median of {runs}: SHA-256 of its bytes {:.1} ms, untar {:.1} ms, verification {:.1} ms \
         ({:.1} x SHA-256); the same with hashes only ({:.2} MB): verification {:.1} ms; HTML report {:.0} ms \
         (thumbnails included); {pdf}",
        package.len() as f64 / 1e6,
        ms(sha256),
        ms(untar),
        ms(verify),
        verify.as_secs_f64() / sha256.as_secs_f64(),
        hashes_only.len() as f64 / 1e6,
        ms(verify_hashes_only),
        ms(html)
    )
}
