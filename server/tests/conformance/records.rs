//! Records and the sync exchange: the snapshot → commit check, the quarantine's bound,
//! concurrent writers and the change feed.

use std::sync::Arc;

use server::service::{sync_commit, transparency};
use server::store::{
    QUARANTINE_ROWS_PER_DEVICE, QuarantinedChange, RecordSummary, Store, SummaryDate, SummaryFilter, SyncJob, SyncTx,
    SyncWrite, Task,
};
use sync_core::transparency::{Leaf, LeafItem};

use super::{Backend, officer};

fn empty_response() -> schemas::SyncResponse {
    schemas::SyncResponse {
        protocol: schemas::SYNC_PROTOCOL_VERSION,
        cursor: 0,
        documents: vec![],
        rejections: vec![],
        more: false,
    }
}

/// An exchange that reads record R and stores `document` as it.
fn writing(document: &'static [u8]) -> SyncJob {
    Box::new(move |tx| {
        tx.record("R")?;
        tx.record_seq_head()?;
        tx.put_record("R", None, document, "draft", 1)?;
        Ok(empty_response())
    })
}

/// An exchange that stores the record and appends a leaf for it.
fn locking(document: &'static [u8]) -> SyncJob {
    Box::new(move |tx| {
        tx.record("R")?;
        tx.record_seq_head()?;
        tx.put_record("R", None, document, "locked", 1)?;
        tx.append_leaf(&Leaf {
            received_ms: 1,
            item: LeafItem::RecordLocked { record_id: "R".into(), heads: vec![] },
        })?;
        Ok(empty_response())
    })
}

fn refusal(n: usize, device: &str, code: &str) -> QuarantinedChange {
    QuarantinedChange {
        record_id: "R".into(),
        change_hash: format!("c{n}"),
        device_id: device.into(),
        officer_id: None,
        reason: serde_json::json!({ "code": code }),
        final_verdict: true,
        dependencies: Vec::new(),
        change: vec![1],
        change_bytes: 1,
        received_at_ms: 1,
        review: None,
    }
}

pub fn a_prepared_exchange_whose_record_changed_meanwhile_is_not_committed(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    let (_, first) = sync_commit::prepare(store, "O1", writing(b"first")).unwrap();
    let (_, second) = sync_commit::prepare(store, "O1", writing(b"second")).unwrap();
    assert!(first.writes.iter().any(|w| matches!(w, SyncWrite::Record { .. })), "nothing written yet");
    assert!(store.record("R").unwrap().is_none(), "a prepared exchange stores nothing");
    assert_eq!(sync_commit::commit(store, first).unwrap(), Some(1));
    assert_eq!(sync_commit::commit(store, second).unwrap(), None, "the record changed since its snapshot");
    assert_eq!(store.record("R").unwrap().unwrap().document, b"first");
    // Run again inside the writer, the second exchange sees the first and goes in.
    sync_commit::run_in_writer(store, writing(b"second")).unwrap();
    assert_eq!(store.record("R").unwrap().unwrap().document, b"second");
}

pub fn a_prepared_exchanges_leaves_are_appended_with_its_writes_and_only_then(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    let (_, first) = sync_commit::prepare(store, "O1", writing(b"first")).unwrap();
    let (_, second) = sync_commit::prepare(store, "O1", locking(b"second")).unwrap();
    assert!(second.writes.iter().any(|w| matches!(w, SyncWrite::Leaf(_))));
    assert_eq!(transparency::log_size(store).unwrap(), 0, "a prepared exchange appends nothing");
    assert!(sync_commit::commit(store, first).unwrap().is_some());
    assert_eq!(sync_commit::commit(store, second).unwrap(), None, "the record changed since its snapshot");
    assert_eq!(transparency::log_size(store).unwrap(), 0, "a plan not committed appends nothing");
    // Run again inside the writer, the exchange appends its leaf with its record, and the
    // record's state after it.
    sync_commit::run_in_writer(store, locking(b"second")).unwrap();
    assert_eq!(transparency::log_size(store).unwrap(), 2);
    let (_, third) = sync_commit::prepare(store, "O1", locking(b"third")).unwrap();
    assert!(sync_commit::commit(store, third).unwrap().is_some());
    assert_eq!(transparency::log_size(store).unwrap(), 4, "a committed plan appends its leaf");
    let (leaf, _) = transparency::log_inclusion(store, 2, 4).unwrap().unwrap();
    assert_eq!(
        Leaf::from_bytes(&leaf.data).unwrap().item,
        LeafItem::RecordLocked { record_id: "R".into(), heads: vec![] }
    );
}

pub fn an_exchange_prepared_before_a_refusal_of_its_record_runs_again_in_the_writer(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    sync_commit::run_in_writer(store, writing(b"first")).unwrap();
    let (_, accepting) = sync_commit::prepare(store, "O1", writing(b"with the change")).unwrap();
    let refusing: SyncJob = Box::new(|tx| {
        tx.record("R")?;
        tx.quarantine(&refusal(0, "D1", "timestamp_in_future"))?;
        Ok(empty_response())
    });
    let (_, refused) = sync_commit::prepare(store, "O1", refusing).unwrap();
    assert!(sync_commit::commit(store, refused).unwrap().is_some());
    assert_eq!(sync_commit::commit(store, accepting).unwrap(), None, "a refusal was committed since its snapshot");
    assert_eq!(store.record("R").unwrap().unwrap().document, b"first");
}

pub fn a_device_keeps_a_bounded_number_of_refusals_per_record(backend: Backend) {
    let (_guard, store) = backend();
    let job: SyncJob = Box::new(move |tx| {
        for n in 0..QUARANTINE_ROWS_PER_DEVICE + 5 {
            tx.quarantine(&refusal(n, "D1", "timestamp_in_future"))?;
        }
        // A kept refusal's verdict is brought up to date; another device has its own bound.
        tx.quarantine(&refusal(0, "D1", "record_locked"))?;
        tx.quarantine(&refusal(0, "D2", "record_locked"))?;
        Ok(empty_response())
    });
    sync_commit::run_in_writer(store.as_ref(), job).unwrap();
    let rows = store.quarantined(Some("R")).unwrap();
    assert_eq!(rows.iter().filter(|r| r.device_id == "D1").count(), QUARANTINE_ROWS_PER_DEVICE);
    assert_eq!(rows.iter().filter(|r| r.device_id == "D2").count(), 1);
    assert_eq!(rows[0].reason["code"], "record_locked");
}

/// An exchange that reads record `record_id` (a counter) and stores it one higher.
fn incrementing(record_id: String) -> SyncJob {
    Box::new(move |tx| {
        let now = match tx.record(&record_id)? {
            Some(stored) => u64::from_be_bytes(stored.document.try_into().unwrap()),
            None => 0,
        };
        tx.record_seq_head()?;
        tx.put_record(&record_id, Some("T1"), &(now + 1).to_be_bytes(), "draft", 1)?;
        Ok(empty_response())
    })
}

/// Many writers on one record at once, each through the snapshot → commit protocol (running
/// again in the writer when its record changed meanwhile), lose no write.
pub fn concurrent_writers_on_one_record_lose_no_write(backend: Backend) {
    let (_guard, store) = backend();
    let (writers, each) = (6, 15);
    std::thread::scope(|scope| {
        for _ in 0..writers {
            let store: Arc<dyn Store> = store.clone();
            scope.spawn(move || {
                for _ in 0..each {
                    let store = store.as_ref();
                    let (_, plan) = sync_commit::prepare(store, "O1", incrementing("R".into())).unwrap();
                    if sync_commit::commit(store, plan).unwrap().is_none() {
                        sync_commit::run_in_writer(store, incrementing("R".into())).unwrap();
                    }
                }
            });
        }
    });
    let stored = store.record("R").unwrap().unwrap();
    assert_eq!(u64::from_be_bytes(stored.document.try_into().unwrap()), writers * each, "every write counted once");
}

/// Records written by many writers at once are all listed by the change feed, each once, at its
/// latest position, however the feed is paged.
pub fn the_change_feed_never_skips_a_record(backend: Backend) {
    let (_guard, store) = backend();
    store.create_account(officer("O1"), 1).unwrap();
    store.import_entities_by(&[super::registry::entity("E1", "甲厂")], "cli", 1).unwrap();
    let task = Task {
        task_id: "T1".into(),
        entity_id: "E1".into(),
        matter: "M01".into(),
        window_start_ms: 0,
        window_end_ms: 10,
        team: vec!["O1".into()],
        created_by: "SUP".into(),
        created_at_ms: 1,
    };
    store.create_task(&task).unwrap();
    // A reader pages the feed while the writers write, and once more after them: a record
    // written after the reader's cursor passed it shows again later, never before the cursor.
    let mut seen = std::collections::BTreeMap::new();
    let (mut cursor, mut pages) = (0, 0);
    let read_page = |cursor: &mut u64, seen: &mut std::collections::BTreeMap<String, u64>| {
        let page = snapshot(store.as_ref(), |tx| tx.changed_since("O1", *cursor, 7));
        for (record_id, seq) in &page {
            assert!(*seq > *cursor, "the feed goes forward");
            *cursor = *seq;
            seen.insert(record_id.clone(), *seq);
        }
        !page.is_empty()
    };
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let store: Arc<dyn Store> = store.clone();
                scope.spawn(move || {
                    for n in 0..25 {
                        // Each writer writes its own records and writes some of them twice.
                        let record_id = format!("R{writer}-{}", n % 20);
                        sync_commit::run_in_writer(store.as_ref(), incrementing(record_id)).unwrap();
                    }
                })
            })
            .collect();
        while !writers.iter().all(|w| w.is_finished()) {
            if read_page(&mut cursor, &mut seen) {
                pages += 1;
            }
        }
    });
    while read_page(&mut cursor, &mut seen) {
        pages += 1;
    }
    let head = snapshot(store.as_ref(), |tx| tx.record_seq_head());
    assert_eq!(seen.len(), 80, "every record written");
    assert_eq!(cursor, head, "the feed ends at the head");
    assert!(pages >= 80 / 7, "paged: {pages}");
    for (record_id, seq) in seen {
        assert_eq!(store.record(&record_id).unwrap().unwrap().seq as u64, seq, "{record_id} at its latest position");
    }
}

/// What `read` answers from one snapshot of the records.
fn snapshot<R>(store: &dyn Store, read: impl Fn(&dyn SyncTx) -> server::store::StoreResult<R>) -> R {
    let mut answer = None;
    store
        .sync_read(&mut |tx| {
            answer = Some(read(tx)?);
            Ok(())
        })
        .unwrap();
    answer.unwrap()
}

/// A record stored as `status` for task `task_id`, by the writer.
fn store_record(store: &dyn Store, record_id: &str, task_id: &str, status: &str, now_ms: i64) {
    let (record_id, task_id, status) = (record_id.to_string(), task_id.to_string(), status.to_string());
    sync_commit::run_in_writer(
        store,
        Box::new(move |tx| {
            tx.record(&record_id)?;
            tx.record_seq_head()?;
            tx.put_record(&record_id, Some(&task_id), b"doc", &status, now_ms)?;
            Ok(empty_response())
        }),
    )
    .unwrap();
}

/// A summary of `record_id` read at `seq`, started at `started`.
fn summary(record_id: &str, seq: i64, started: i64) -> RecordSummary {
    RecordSummary {
        record_id: record_id.into(),
        seq,
        started_at_ms: Some(started),
        conclusion: Some(format!("{record_id} 结论")),
        observations: "现场".into(),
        conflicts: 1,
        ..RecordSummary::default()
    }
}

/// Summaries are stale once their record moves and never replaced by an older read; a page of
/// them is filtered, bounded in time, leaves hidden tasks out, and counts every match.
pub fn record_summaries_follow_their_records_and_page_in_the_store(backend: Backend) {
    let (_guard, store) = backend();
    let store = store.as_ref();
    for (n, task) in ["T1", "T2", "T3"].into_iter().enumerate() {
        let task = Task {
            task_id: task.into(),
            entity_id: "E1".into(),
            matter: "M01".into(),
            window_start_ms: 0,
            window_end_ms: 10,
            team: vec![format!("O{n}")],
            created_by: "SUP".into(),
            created_at_ms: 1,
        };
        store.create_account(officer(&task.team[0]), 1).unwrap();
        if n == 0 {
            store.import_entities_by(&[super::registry::entity("E1", "甲厂")], "cli", 1).unwrap();
        }
        store.create_task(&task).unwrap();
    }
    store_record(store, "R1", "T1", "locked", 100);
    store_record(store, "R2", "T2", "draft", 200);
    store_record(store, "R3", "T3", "locked", 300);
    let stale = |after: Option<&str>| -> Vec<String> {
        store.unsummarized(after, 10).unwrap().into_iter().map(|r| r.record_id).collect()
    };
    assert_eq!(stale(None), ["R1", "R2", "R3"], "nothing is summarized yet");
    assert_eq!(stale(Some("R1")), ["R2", "R3"], "paged by record id");
    let seq = |id: &str| store.record(id).unwrap().unwrap().seq;
    store
        .put_summaries(vec![
            summary("R1", seq("R1"), 1_000),
            summary("R2", seq("R2"), 2_000),
            summary("R3", seq("R3"), 3_000),
        ])
        .unwrap();
    assert!(stale(None).is_empty());
    let all = SummaryFilter { limit: 10, ..SummaryFilter::default() };
    let (total, rows) = store.summaries(&all).unwrap();
    assert_eq!(total, 3);
    assert_eq!(rows[0].summary, summary("R1", seq("R1"), 1_000));
    assert_eq!(
        (rows[0].task_id.as_deref(), rows[0].status.as_str(), rows[0].updated_at_ms),
        (Some("T1"), "locked", 100)
    );

    // A change makes the summary stale; an older read never replaces a newer one.
    let old = seq("R2");
    store_record(store, "R2", "T2", "signing", 400);
    assert_eq!(stale(None), ["R2"]);
    store.put_summaries(vec![summary("R2", seq("R2"), 2_500)]).unwrap();
    store.put_summaries(vec![summary("R2", old, 9_999)]).unwrap();
    assert!(stale(None).is_empty());
    assert_eq!(store.summaries(&all).unwrap().1[1].summary.started_at_ms, Some(2_500), "the newer read kept");

    let page = |filter: SummaryFilter| -> (usize, Vec<String>) {
        let (total, rows) = store.summaries(&SummaryFilter { limit: 10, ..filter }).unwrap();
        (total, rows.into_iter().map(|r| r.summary.record_id).collect())
    };
    assert_eq!(
        page(SummaryFilter { status: Some("locked".into()), ..Default::default() }),
        (2, vec!["R1".into(), "R3".into()])
    );
    assert_eq!(page(SummaryFilter { from_ms: Some(2_000), ..Default::default() }), (2, vec!["R2".into(), "R3".into()]));
    assert_eq!(page(SummaryFilter { to_ms: Some(3_000), ..Default::default() }), (2, vec!["R1".into(), "R2".into()]));
    assert_eq!(
        page(SummaryFilter { date: SummaryDate::Updated, from_ms: Some(300), ..Default::default() }),
        (2, vec!["R2".into(), "R3".into()]),
        "bounded by the last merge instead"
    );
    assert_eq!(
        page(SummaryFilter { hidden_tasks: vec!["T1".into(), "T3".into()], ..Default::default() }),
        (1, vec!["R2".into()])
    );
    assert_eq!(page(SummaryFilter { visible_to: Some("O2".into()), ..Default::default() }), (1, vec!["R3".into()]));
    assert_eq!(page(SummaryFilter { officer_id: Some("O0".into()), ..Default::default() }), (1, vec!["R1".into()]));
    assert_eq!(page(SummaryFilter { task_id: Some("T2".into()), ..Default::default() }), (1, vec!["R2".into()]));
    assert_eq!(page(SummaryFilter { entity_id: Some("E9".into()), ..Default::default() }), (0, vec![]));
    let (total, rows) = store.summaries(&SummaryFilter { offset: 1, limit: 1, ..SummaryFilter::default() }).unwrap();
    assert_eq!((total, rows[0].summary.record_id.as_str()), (3, "R2"), "a page by offset still counts every match");

    let locked: Vec<String> =
        store.locked_summaries(&["T2".into(), "T3".into()]).unwrap().into_iter().map(|r| r.summary.record_id).collect();
    assert_eq!(locked, ["R3"], "only locked records of the tasks asked for");
}
