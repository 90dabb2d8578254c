//! The enforcement log's upload and the transparency log: entries accepted, held, forked and
//! refused; every enrolment, blob, signature and lock a leaf; checkpoints opened with the log's
//! key and proofs checked with `sync-core`'s verifiers, as a reviewer would offline; a record's
//! log with its proven intervals and findings; who may call what.

use ed25519_dalek::{SigningKey, VerifyingKey};
use schemas::log::{
    ConsistencyProof, EntryKind, EntryOutcome, InclusionProof, LogEntry, LogFinding, LogUpload, LogUploadResponse,
    RecordLog, SeenCheckpoint, UploadedEntry,
};
use serde_json::{Value, json};
use server::service::blobs::content_address;
use server::store::prelude::*;
use sync_core::checkpoint::{Checkpoint, open_note, parse_verifier_key};
use sync_core::document::{Edit, RecordDocument, new_record_id};
use sync_core::enforcement_log::{EntryEncoding, GENESIS_PREVIOUS, payload_hash};
use sync_core::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use sync_core::transparency::{Leaf, LeafItem};

use fieldsync_tests::harness::{Phone, TestServer, enroll, error_code as code, spawn_server};

const PASSWORD: &str = "correct horse battery";

/// A city with a supervisor, a reviewer, an administrator, three certified officers and task T1
/// for O1 and O2 (O3 is on no team).
async fn city() -> TestServer {
    city_with(|_| {}).await
}

/// [`city`] with its server configured by `configure`.
async fn city_with(configure: impl FnOnce(&mut server::Config)) -> TestServer {
    let server = TestServer::start_with(configure).await;
    server.entities(3);
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    server.account("ADM", PASSWORD, &["admin"]);
    for officer in ["O1", "O2", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.seed_task("T1", "E00001", &["O1", "O2"]);
    server
}

/// A device's enforcement-log chain as the device keeps it: the next seq and the last hash.
struct Chain {
    device_id: String,
    key: SigningKey,
    seq: u64,
    previous: [u8; 32],
}

impl Chain {
    fn of(phone: &Phone) -> Self {
        Self { device_id: phone.device_id.clone(), key: phone.key.clone(), seq: 0, previous: GENESIS_PREVIOUS }
    }

    /// The next entry, made now, signed, with its payload.
    fn next(&mut self, kind: EntryKind, record_id: Option<&str>, payload: &[u8]) -> UploadedEntry {
        self.next_at(kind, record_id, payload, server::now_ms(), None)
    }

    /// The next entry with this claimed time and seen checkpoint.
    fn next_at(
        &mut self,
        kind: EntryKind,
        record_id: Option<&str>,
        payload: &[u8],
        device_time_ms: i64,
        seen_checkpoint: Option<SeenCheckpoint>,
    ) -> UploadedEntry {
        self.seq += 1;
        let entry = LogEntry {
            device_id: self.device_id.clone(),
            seq: self.seq,
            previous: self.previous,
            device_time_ms,
            monotonic_ms: 10_000 + self.seq,
            boot_id: "6f1c0e5e-2b5d-4c53-9d1e-3f0b8c1a7e21".into(),
            kind,
            record_id: record_id.map(str::to_string),
            payload_hash: payload_hash(payload),
            seen_checkpoint,
        };
        self.previous = entry.hash();
        UploadedEntry { signed: entry.sign(&self.key), payload: payload.to_vec() }
    }
}

/// `POST /v1/log/entries` with a body in a content type.
async fn post_entries(server: &TestServer, token: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    server
        .client
        .post(server.url("/v1/log/entries"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Uploads entries in CBOR, as a device does, and reads the answer.
async fn upload(server: &TestServer, token: &str, entries: Vec<UploadedEntry>) -> LogUploadResponse {
    let body = schemas::wire::to_cbor(&LogUpload { entries });
    let response = post_entries(server, token, "application/cbor", body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    assert_eq!(response.headers()["content-type"], "application/cbor");
    schemas::wire::from_cbor(&response.bytes().await.unwrap()).unwrap()
}

/// The log's verifier key, read as a reviewer would: name and Ed25519 key.
async fn log_key(server: &TestServer) -> (String, VerifyingKey) {
    let response = server.client.get(server.url("/v1/log/key")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    parse_verifier_key(&response.text().await.unwrap()).unwrap()
}

/// Opens a signed checkpoint with the log's key and reads its body.
fn open(note: &str, key: &(String, VerifyingKey)) -> Checkpoint {
    let (text, signers) = open_note(note, std::slice::from_ref(key)).unwrap();
    assert_eq!(signers, std::slice::from_ref(&key.0));
    let checkpoint = Checkpoint::parse_body(&text).unwrap();
    assert_eq!(checkpoint.origin, key.0, "the checkpoint names the log");
    checkpoint
}

/// The current checkpoint, opened.
async fn checkpoint(server: &TestServer, key: &(String, VerifyingKey)) -> Checkpoint {
    let response = server.client.get(server.url("/v1/log/checkpoint")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    open(&response.text().await.unwrap(), key)
}

/// The inclusion proof of leaf `index` (at `size`, or the latest checkpoint's).
async fn inclusion(server: &TestServer, token: &str, index: u64, size: Option<u64>) -> InclusionProof {
    let query = size.map_or(format!("index={index}"), |size| format!("index={index}&size={size}"));
    let response = server.get(&format!("/v1/log/proofs/inclusion?{query}"), token).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    response.json().await.unwrap()
}

/// Checks an inclusion proof against a checkpoint, as a reviewer would, and decodes the leaf.
fn proven_leaf(proof: &InclusionProof, checkpoint: &Checkpoint) -> Leaf {
    assert_eq!(proof.tree_size, checkpoint.size);
    let data = hex::decode(proof.leaf.as_ref().expect("the leaf's data")).unwrap();
    let path: Vec<Vec<u8>> = proof.proof.iter().map(|h| hex::decode(h).unwrap()).collect();
    verify_inclusion(proof.leaf_index, proof.tree_size, &leaf_hash(&data), &path, &checkpoint.root).unwrap();
    Leaf::from_bytes(&data).unwrap()
}

/// The leaf appended last, proven against the current checkpoint.
async fn last_leaf(server: &TestServer, token: &str, key: &(String, VerifyingKey)) -> Leaf {
    let checkpoint = checkpoint(server, key).await;
    let proof = inclusion(server, token, checkpoint.size - 1, Some(checkpoint.size)).await;
    proven_leaf(&proof, &checkpoint)
}

/// A counter's value on `/metrics`.
async fn metric(server: &TestServer, name: &str) -> u64 {
    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in {text}"))
        .parse()
        .unwrap()
}

/// A draft record of T1 made on the phone with O1 and O2 present, complete enough to sign, synced.
async fn record(server: &TestServer, phone: &mut Phone, n: u8, photos: &[&[u8]]) -> String {
    let now = server::now_ms();
    let id = new_record_id(now as u64, [n; 10]);
    let mut record = RecordDocument::create(&id, phone.actor.clone(), "T1", now).unwrap();
    record.apply(Edit::SetStartedAt(now - 60_000), now).unwrap();
    for officer in ["O1", "O2"] {
        let present = schemas::OfficerPresent {
            officer_id: officer.into(),
            name: officer.into(),
            certificate_number: format!("GX-{officer}"),
            certificate_shown: true,
        };
        record.apply(Edit::AddOfficerPresent(present), now).unwrap();
    }
    for photo in photos {
        record.apply(Edit::AddPhoto { sha256: content_address(photo), caption: "现场照片".into() }, now).unwrap();
    }
    for completing in sync_core::sample::completing_edits(now) {
        record.apply(completing, now).unwrap();
    }
    phone.records.insert(record);
    phone.session.record_changed(&id);
    assert!(phone.sync(server).await.is_empty(), "the record is accepted");
    id
}

fn accepted(outcome: &EntryOutcome) -> u64 {
    match outcome {
        EntryOutcome::Accepted { leaf_index, .. } => *leaf_index,
        other => panic!("not accepted: {other:?}"),
    }
}

#[tokio::test]
async fn accepted_entries_are_proven_in_signed_checkpoints_that_stay_consistent() {
    let server = city().await;
    let phone = enroll(&server, "O1", PASSWORD).await;
    let key = log_key(&server).await;
    let mut chain = Chain::of(&phone);
    let first = vec![
        chain.next(EntryKind::Arrive, None, b"arrived at the gate"),
        chain.next(EntryKind::RecordingStarted, None, b""),
    ];
    let answer = upload(&server, &phone.token, first.clone()).await;
    assert!(matches!(
        answer.outcomes[..],
        [EntryOutcome::Accepted { seq: 1, .. }, EntryOutcome::Accepted { seq: 2, .. }]
    ));
    let first_checkpoint = open(&answer.checkpoint, &key);
    assert_eq!(checkpoint(&server, &key).await, first_checkpoint, "the tree has not grown since the upload");
    for (outcome, uploaded) in answer.outcomes.iter().zip(&first) {
        let index = accepted(outcome);
        let proof = inclusion(&server, &phone.token, index, None).await;
        let leaf = proven_leaf(&proof, &first_checkpoint);
        assert_eq!(
            leaf.item,
            LeafItem::LogEntry {
                device_id: phone.device_id.clone(),
                seq: uploaded.signed.entry.seq,
                entry_hash: uploaded.signed.entry.hash()
            }
        );
    }

    // Later entries, in JSON, naming the checkpoint the device was given.
    let seen = SeenCheckpoint { size: first_checkpoint.size, root: first_checkpoint.root };
    let later = vec![chain.next_at(EntryKind::Left, None, b"left", server::now_ms(), Some(seen))];
    let response = post_entries(
        &server,
        &phone.token,
        "application/json",
        serde_json::to_vec(&LogUpload { entries: later }).unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let answer: LogUploadResponse = response.json().await.unwrap();
    let index = accepted(&answer.outcomes[0]);
    let second_checkpoint = open(&answer.checkpoint, &key);
    assert_eq!(second_checkpoint.size, index + 1);

    let consistency: ConsistencyProof = reqwest::get(
        server.url(&format!("/v1/log/proofs/consistency?from={}&to={}", first_checkpoint.size, second_checkpoint.size)),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let path: Vec<Vec<u8>> = consistency.proof.iter().map(|h| hex::decode(h).unwrap()).collect();
    verify_consistency(
        first_checkpoint.size,
        second_checkpoint.size,
        &path,
        &first_checkpoint.root,
        &second_checkpoint.root,
    )
    .unwrap();
    // A leaf of the first tree is proven in it as well as in the second.
    let old = inclusion(&server, &phone.token, 0, Some(first_checkpoint.size)).await;
    proven_leaf(&old, &first_checkpoint);
    let now = inclusion(&server, &phone.token, 0, None).await;
    proven_leaf(&now, &second_checkpoint);

    // Sending the same entries again changes nothing.
    let before = server.snapshot();
    let again = upload(&server, &phone.token, first).await;
    assert_eq!(again.outcomes, [EntryOutcome::Duplicate { seq: 1 }, EntryOutcome::Duplicate { seq: 2 }]);
    assert_eq!(again.checkpoint, answer.checkpoint, "no new checkpoint");
    assert_eq!(server.snapshot(), before, "a duplicate upload changed nothing");

    // Proofs only within the log.
    let size = second_checkpoint.size;
    let refused_inclusion = |query: &str| format!("/v1/log/proofs/inclusion?{query}");
    for (query, status, expected) in [
        (format!("index={size}"), 422, "index_out_of_range"),
        (format!("index=0&size={}", size + 1), 422, "size_out_of_range"),
        ("index=-1".to_string(), 400, "invalid_query"),
        ("size=1".to_string(), 400, "invalid_query"),
    ] {
        let response = server.get(&refused_inclusion(&query), &phone.token).await;
        assert_eq!(code(response).await, (status, expected.to_string()), "{query}");
    }
    for (from, to, status, expected) in [
        (0, size, 422, "invalid_range"),
        (size, size - 1, 422, "invalid_range"),
        (1, size + 1, 422, "size_out_of_range"),
    ] {
        let url = server.url(&format!("/v1/log/proofs/consistency?from={from}&to={to}"));
        assert_eq!(code(reqwest::get(url).await.unwrap()).await, (status, expected.to_string()), "{from} {to}");
    }
    let equal: ConsistencyProof =
        reqwest::get(server.url(&format!("/v1/log/proofs/consistency?from={size}&to={size}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(equal.proof.is_empty());
    assert_eq!(metric(&server, "fieldsync_log_entries_accepted_total").await, 3);
}

#[tokio::test]
async fn an_entry_after_a_gap_is_held_and_joins_the_chain_when_the_gap_is_filled() {
    let server = city().await;
    let mut phone = enroll(&server, "O1", PASSWORD).await;
    let id = record(&server, &mut phone, 1, &[]).await;
    let mut chain = Chain::of(&phone);
    let entries: Vec<UploadedEntry> =
        (0..4).map(|n| chain.next(EntryKind::PartyQuestioned, Some(&id), format!("问话 {n}").as_bytes())).collect();
    let answer = upload(&server, &phone.token, vec![entries[3].clone(), entries[0].clone(), entries[2].clone()]).await;
    assert!(matches!(
        answer.outcomes[..],
        [EntryOutcome::Held { seq: 4 }, EntryOutcome::Accepted { seq: 1, .. }, EntryOutcome::Held { seq: 3 }]
    ));
    assert_eq!(server.query("SELECT seq FROM log_held ORDER BY seq"), [["3"], ["4"]]);
    // Held again while the gap stays: still held, kept once.
    let again = upload(&server, &phone.token, vec![entries[3].clone()]).await;
    assert_eq!(again.outcomes, [EntryOutcome::Held { seq: 4 }]);
    assert_eq!(server.query("SELECT COUNT(*) FROM log_held"), [["2"]]);

    let filled = upload(&server, &phone.token, vec![entries[1].clone()]).await;
    accepted(&filled.outcomes[0]);
    assert!(server.query("SELECT * FROM log_held").is_empty(), "nothing held any more");
    assert_eq!(server.query("SELECT seq FROM log_chain ORDER BY seq"), [["1"], ["2"], ["3"], ["4"]]);
    // Every entry of the chain is in the log, the promoted ones too, under the checkpoint given.
    let key = log_key(&server).await;
    let signed = open(&filled.checkpoint, &key);
    let log: RecordLog = server.get(&format!("/v1/records/{id}/log"), &phone.token).await.json().await.unwrap();
    assert_eq!(log.entries.iter().map(|e| e.signed.entry.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    for (entry, uploaded) in log.entries.iter().zip(&entries) {
        assert_eq!(entry.signed, uploaded.signed);
        let leaf = proven_leaf(&inclusion(&server, &phone.token, entry.leaf_index, None).await, &signed);
        assert_eq!(
            leaf.item,
            LeafItem::LogEntry {
                device_id: phone.device_id.clone(),
                seq: entry.signed.entry.seq,
                entry_hash: entry.signed.entry.hash()
            }
        );
    }
    assert_eq!(metric(&server, "fieldsync_log_entries_held_total").await, 3);
    assert_eq!(metric(&server, "fieldsync_log_entries_accepted_total").await, 4);
}

#[tokio::test]
async fn a_device_holds_a_bounded_number_of_entries_after_a_gap() {
    let server = city_with(|c| c.max_held_log_entries_per_device = 2).await;
    let mut phone = enroll(&server, "O1", PASSWORD).await;
    let id = record(&server, &mut phone, 1, &[]).await;
    let mut chain = Chain::of(&phone);
    let entries: Vec<UploadedEntry> =
        (0..6).map(|n| chain.next(EntryKind::PartyQuestioned, Some(&id), format!("问话 {n}").as_bytes())).collect();
    // Seqs 4, 5 and 6 with 1 to 3 missing: two are held, the third is not kept.
    let answer = upload(&server, &phone.token, entries[3..].to_vec()).await;
    assert!(
        matches!(
            &answer.outcomes[..],
            [EntryOutcome::Held { seq: 4 }, EntryOutcome::Held { seq: 5 }, EntryOutcome::Refused { seq: 6, code, .. }]
                if code == "too_many_held"
        ),
        "{:?}",
        answer.outcomes
    );
    assert_eq!(server.query("SELECT seq FROM log_held ORDER BY seq"), [["4"], ["5"]]);
    // A held entry sent again is still held, not refused.
    let again = upload(&server, &phone.token, vec![entries[4].clone()]).await;
    assert_eq!(again.outcomes, [EntryOutcome::Held { seq: 5 }]);
    // The gap filled, the held ones join the chain, and the refused one is taken when sent again.
    let filled = upload(&server, &phone.token, entries[..3].to_vec()).await;
    assert!(filled.outcomes.iter().all(|o| matches!(o, EntryOutcome::Accepted { .. })), "{:?}", filled.outcomes);
    assert!(server.query("SELECT * FROM log_held").is_empty());
    let last = upload(&server, &phone.token, vec![entries[5].clone()]).await;
    accepted(&last.outcomes[0]);
    assert_eq!(server.query("SELECT COUNT(*) FROM log_chain"), [["6"]]);
}

#[tokio::test]
async fn a_fork_is_kept_and_flagged_and_nothing_is_dropped() {
    let server = city().await;
    let mut phone = enroll(&server, "O1", PASSWORD).await;
    let id = record(&server, &mut phone, 1, &[]).await;
    let mut chain = Chain::of(&phone);
    let first = chain.next(EntryKind::Arrive, Some(&id), b"");
    let second = chain.next(EntryKind::RecordingStarted, Some(&id), b"");
    upload(&server, &phone.token, vec![first, second.clone()]).await;
    // A second history from seq 2 on, validly signed by the same device: a rewritten chain.
    let mut rewritten = Chain { seq: 1, previous: second.signed.entry.previous, ..Chain::of(&phone) };
    let other_second = rewritten.next(EntryKind::Left, Some(&id), b"");
    let other_third = rewritten.next(EntryKind::SealOrSeizure, Some(&id), b"");
    let answer = upload(&server, &phone.token, vec![other_third, other_second]).await;
    assert_eq!(answer.outcomes, [EntryOutcome::Fork { seq: 3 }, EntryOutcome::Fork { seq: 2 }]);
    assert_eq!(server.query("SELECT seq FROM log_chain ORDER BY seq"), [["1"], ["2"]], "the chain stays");
    assert_eq!(server.query("SELECT seq FROM log_forks ORDER BY seq"), [["2"], ["3"]], "both kept");
    let log: RecordLog = server.get(&format!("/v1/records/{id}/log"), &phone.token).await.json().await.unwrap();
    assert_eq!(log.forked_devices, [phone.device_id.clone()]);
    assert_eq!(log.entries.len(), 2);
    assert_eq!(metric(&server, "fieldsync_log_entries_forked_total").await, 2);
    // The original chain goes on.
    let third = chain.next(EntryKind::Left, Some(&id), b"");
    accepted(&upload(&server, &phone.token, vec![third]).await.outcomes[0]);
}

#[tokio::test]
async fn refused_entries_and_uploads_get_their_code_and_change_nothing() {
    let server = city().await;
    let phone = enroll(&server, "O1", PASSWORD).await;
    let other = enroll(&server, "O2", PASSWORD).await;
    let key = log_key(&server).await;
    checkpoint(&server, &key).await;
    let mut chain = Chain::of(&phone);
    let good = chain.next(EntryKind::Arrive, None, b"payload");
    let mut forged = good.clone();
    forged.signed.signature[0] ^= 1;
    let mut elsewhere = Chain { device_id: other.device_id.clone(), ..Chain::of(&phone) };
    let someone_elses = elsewhere.next(EntryKind::Arrive, None, b"");
    let wrong_payload = UploadedEntry { payload: b"another payload".to_vec(), ..good.clone() };
    let zero_seq = {
        let mut entry = good.signed.entry.clone();
        entry.seq = 0;
        UploadedEntry { signed: entry.sign(&phone.key), payload: b"payload".to_vec() }
    };
    let long_boot = {
        let mut entry = good.signed.entry.clone();
        entry.boot_id = "b".repeat(201);
        UploadedEntry { signed: entry.sign(&phone.key), payload: b"payload".to_vec() }
    };
    let before = server.snapshot();
    let answer = upload(&server, &phone.token, vec![forged, someone_elses, wrong_payload, zero_seq, long_boot]).await;
    let codes: Vec<(u64, &str)> = answer
        .outcomes
        .iter()
        .map(|outcome| match outcome {
            EntryOutcome::Refused { seq, code, .. } => (*seq, code.as_str()),
            other => panic!("not refused: {other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            (1, "bad_signature"),
            (1, "not_own_device"),
            (1, "payload_mismatch"),
            (0, "invalid_entry"),
            (1, "invalid_entry")
        ]
    );
    assert_eq!(server.snapshot(), before, "refused entries changed nothing");
    assert_eq!(metric(&server, "fieldsync_log_entries_refused_total").await, 5);

    let refused = |body: Vec<u8>, content_type: &'static str| post_entries(&server, &phone.token, content_type, body);
    let many = LogUpload { entries: vec![good.clone(); 1_001] };
    assert_eq!(
        code(refused(schemas::wire::to_cbor(&many), "application/cbor").await).await,
        (422, "too_many_entries".into())
    );
    let large = LogUpload { entries: vec![UploadedEntry { payload: vec![7; 64 * 1024 + 1], ..good.clone() }] };
    let response = refused(schemas::wire::to_cbor(&large), "application/cbor").await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["code"].as_str(), body["details"]["limit"].as_u64()), (Some("payload_too_large"), Some(65_536)));
    assert_eq!(code(refused(vec![1, 2, 3], "application/cbor").await).await, (400, "malformed_log_upload".into()));
    assert_eq!(
        code(refused(b"{\"entries\": 1}".to_vec(), "application/json").await).await,
        (400, "malformed_log_upload".into())
    );
    assert_eq!(code(refused(b"{}".to_vec(), "text/plain").await).await, (415, "unsupported_content_type".into()));
    assert_eq!(server.snapshot(), before, "refused uploads changed nothing");
    // The entry itself was good all along.
    accepted(&upload(&server, &phone.token, vec![good]).await.outcomes[0]);
}

#[tokio::test]
async fn an_enrolment_a_blob_a_signature_and_a_lock_each_append_a_leaf() {
    let server = city().await;
    let reviewer = server.token("REV", PASSWORD).await;
    let key = log_key(&server).await;
    let size = checkpoint(&server, &key).await.size;
    let mut a = enroll(&server, "O1", PASSWORD).await;
    let enrolled = last_leaf(&server, &reviewer, &key).await;
    assert_eq!(
        enrolled.item,
        LeafItem::DeviceEnrolled {
            device_id: a.device_id.clone(),
            officer_id: "O1".into(),
            public_key: a.key.verifying_key().to_bytes(),
            actor_id: a.actor.to_bytes().to_vec(),
        }
    );
    assert_eq!(checkpoint(&server, &key).await.size, size + 1);
    let mut b = enroll(&server, "O2", PASSWORD).await;

    // A blob stored once is one leaf.
    let photo = b"not an image, stored all the same".to_vec();
    let id = record(&server, &mut a, 1, &[&photo]).await;
    assert!(b.sync(&server).await.is_empty());
    let size = checkpoint(&server, &key).await.size;
    let begin = json!({ "sha256": content_address(&photo), "size": photo.len(), "record_id": id });
    let started: Value = server.post("/v1/uploads", &a.token, begin).await.json().await.unwrap();
    let upload_id = started["upload_id"].as_str().unwrap();
    let appended = server
        .client
        .patch(server.url(&format!("/v1/uploads/{upload_id}")))
        .bearer_auth(&a.token)
        .header("content-type", "application/octet-stream")
        .header("upload-offset", 0)
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 200);
    let finished = server.post(&format!("/v1/uploads/{upload_id}/finish"), &a.token, json!({})).await;
    assert_eq!(finished.status(), 200);
    let stored = last_leaf(&server, &reviewer, &key).await;
    let sha256: [u8; 32] = hex::decode(content_address(&photo)).unwrap().try_into().unwrap();
    assert_eq!(stored.item, LeafItem::Blob { sha256, size: photo.len() as u64 });
    assert_eq!(checkpoint(&server, &key).await.size, size + 1);

    // The first signature is a leaf with the signature entry and the record's heads as stored.
    let certificates = server.store.certificates(None).unwrap();
    let heads = |server: &TestServer| -> Vec<[u8; 32]> {
        let stored = server.store.record(&id).unwrap().unwrap();
        automerge::Automerge::load(&stored.document).unwrap().get_heads().iter().map(|h| h.0).collect()
    };
    b.records.get_mut(&id).unwrap().sign("O2", server::now_ms(), &certificates).unwrap();
    b.session.record_changed(&id);
    assert!(b.sync(&server).await.is_empty());
    let on_server: schemas::InspectionRecord =
        server.get(&format!("/v1/records/{id}"), &reviewer).await.json().await.unwrap();
    // The record's state follows the signature, naming it among the record's items.
    let state = last_leaf(&server, &reviewer, &key).await;
    assert!(matches!(state.item, LeafItem::RecordState { ref record_id, .. } if *record_id == id), "{state:?}");
    let with_state = checkpoint(&server, &key).await;
    let LeafItem::RecordSigned { record_id, officer_id, signature, heads: signed_heads } =
        proven_leaf(&inclusion(&server, &reviewer, with_state.size - 2, None).await, &with_state).item
    else {
        panic!("not a signature leaf");
    };
    assert_eq!((record_id.as_str(), officer_id.as_str()), (id.as_str(), "O2"));
    let signature: schemas::OfficerSignature = serde_json::from_str(&signature).unwrap();
    assert_eq!(on_server.signatures, [signature]);
    assert_eq!(signed_heads, heads(&server));

    // The last signature locks: a signature leaf, then a lock leaf, and nothing more.
    let size = checkpoint(&server, &key).await.size;
    assert!(a.sync(&server).await.is_empty());
    a.records.get_mut(&id).unwrap().sign("O1", server::now_ms(), &certificates).unwrap();
    a.session.record_changed(&id);
    assert!(a.sync(&server).await.is_empty());
    let after = checkpoint(&server, &key).await;
    assert_eq!(after.size, size + 4, "one signature and one lock, each followed by the record's state");
    let signed = proven_leaf(&inclusion(&server, &reviewer, size, None).await, &after);
    assert!(matches!(signed.item, LeafItem::RecordSigned { ref officer_id, .. } if officer_id == "O1"));
    let locked = proven_leaf(&inclusion(&server, &reviewer, size + 2, None).await, &after);
    assert_eq!(locked.item, LeafItem::RecordLocked { record_id: id.clone(), heads: heads(&server) });
    for index in [size + 1, size + 3] {
        let state = proven_leaf(&inclusion(&server, &reviewer, index, None).await, &after);
        let LeafItem::RecordState { heads: state_heads, .. } = state.item else { panic!("not a record state") };
        assert_eq!(state_heads, heads(&server));
    }
    // Syncing again, or a draft record, appends nothing.
    assert!(b.sync(&server).await.is_empty());
    record(&server, &mut b, 2, &[]).await;
    assert_eq!(checkpoint(&server, &key).await.size, after.size);
    assert_eq!(metric(&server, "fieldsync_log_leaves_appended_total").await, after.size);
}

#[tokio::test]
async fn a_records_log_lists_its_entries_with_intervals_and_findings() {
    let server = city().await;
    let mut phone = enroll(&server, "O1", PASSWORD).await;
    let outsider = enroll(&server, "O3", PASSWORD).await;
    let id = record(&server, &mut phone, 1, &[]).await;
    let key = log_key(&server).await;
    let seen = checkpoint(&server, &key).await;
    let seen_checkpoint = Some(SeenCheckpoint { size: seen.size, root: seen.root });
    let unknown_checkpoint = Some(SeenCheckpoint { size: seen.size, root: [9; 32] });
    let now = server::now_ms();
    let mut chain = Chain::of(&phone);
    let shown = EntryKind::CertificatesShown { officer_ids: vec!["O1".into()] };
    let entries = vec![
        chain.next_at(shown, Some(&id), b"", now, seen_checkpoint),
        chain.next_at(EntryKind::RecordingStarted, Some(&id), b"", now + 1, seen_checkpoint),
        chain.next_at(EntryKind::RecordingStopped { reason: " ".into() }, Some(&id), b"", now + 2, seen_checkpoint),
        chain.next_at(EntryKind::SealOrSeizure, Some(&id), b"", now + 3, unknown_checkpoint),
        // A claimed time a day ahead of the server's clock.
        chain.next_at(EntryKind::Left, Some(&id), b"", now + 86_400_000, seen_checkpoint),
        chain.next(EntryKind::Arrive, Some("another-record"), b""),
    ];
    upload(&server, &phone.token, entries.clone()).await;
    // An officer off the team logs against the record: not the record's log.
    let mut stray = Chain::of(&outsider);
    accepted(&upload(&server, &outsider.token, vec![stray.next(EntryKind::Arrive, Some(&id), b"")]).await.outcomes[0]);
    assert_eq!(metric(&server, "fieldsync_log_unknown_checkpoints_total").await, 1);

    let log: RecordLog = server.get(&format!("/v1/records/{id}/log"), &phone.token).await.json().await.unwrap();
    assert_eq!(log.record_id, id);
    assert_eq!(
        log.entries.iter().map(|e| &e.signed).collect::<Vec<_>>(),
        entries[..5].iter().map(|e| &e.signed).collect::<Vec<_>>()
    );
    let receipts = server.query(&format!(
        "SELECT seq, received_at_ms FROM log_chain WHERE device_id = '{}' ORDER BY seq",
        phone.device_id
    ));
    let last_seen_leaf = server.query(&format!("SELECT received_at_ms FROM log_leaves WHERE idx = {}", seen.size - 1));
    let not_before: i64 = last_seen_leaf[0][0].parse().unwrap();
    for (entry, receipt) in log.entries.iter().zip(&receipts) {
        let seq = entry.signed.entry.seq;
        assert_eq!(entry.interval.claimed_ms, entry.signed.entry.device_time_ms);
        assert_eq!(entry.interval.not_after_ms.to_string(), receipt[1], "seq {seq}: received then");
        let expected_not_before = if seq == 4 { None } else { Some(not_before) };
        assert_eq!(entry.interval.not_before_ms, expected_not_before, "seq {seq}: a checkpoint the log had, or not");
        assert_eq!(entry.interval.claim_outside, seq == 5, "seq {seq}");
    }
    let device = phone.device_id.clone();
    assert_eq!(
        log.findings,
        [
            LogFinding::RecordingStoppedWithoutReason { device_id: device.clone(), seq: 3 },
            LogFinding::SealWithoutRecording { device_id: device, seq: 4 },
            LogFinding::CertificateNotShown { officer_id: "O2".into() },
        ]
    );
    assert!(log.forked_devices.is_empty());
    // Who may read it: the team, supervisors and reviewers; not an officer off the team.
    for reader in ["O2", "SUP", "REV"] {
        let token = server.token(reader, PASSWORD).await;
        let response = server.get(&format!("/v1/records/{id}/log"), &token).await;
        assert_eq!(response.status(), 200, "{reader}");
    }
    for refused in ["O3", "ADM"] {
        let token = server.token(refused, PASSWORD).await;
        assert_eq!(
            code(server.get(&format!("/v1/records/{id}/log"), &token).await).await,
            (404, "not_found".into()),
            "{refused}"
        );
    }
    let missing = server.get("/v1/records/nothing-here/log", &phone.token).await;
    assert_eq!(code(missing).await, (404, "not_found".into()));
    let anonymous = server.client.get(server.url(&format!("/v1/records/{id}/log"))).send().await.unwrap();
    assert_eq!(code(anonymous).await, (401, "missing_token".into()));
}

#[tokio::test]
async fn each_log_endpoint_admits_its_callers_and_refuses_the_others() {
    let server = city().await;
    let phone = enroll(&server, "O1", PASSWORD).await;
    let mut chain = Chain::of(&phone);
    let body = schemas::wire::to_cbor(&LogUpload { entries: vec![chain.next(EntryKind::Arrive, None, b"")] });
    // Uploads: an officer's enrolled device only.
    let officer = server.token("O1", PASSWORD).await;
    assert_eq!(
        code(post_entries(&server, &officer, "application/cbor", body.clone()).await).await,
        (403, "device_required".into())
    );
    for role in ["SUP", "REV", "ADM"] {
        let token = server.token(role, PASSWORD).await;
        assert_eq!(
            code(post_entries(&server, &token, "application/cbor", body.clone()).await).await,
            (403, "role_required".into()),
            "{role}"
        );
    }
    let anonymous = server.client.post(server.url("/v1/log/entries")).body(body.clone()).send().await.unwrap();
    assert_eq!(code(anonymous).await, (401, "missing_token".into()));
    assert_eq!(post_entries(&server, &phone.token, "application/cbor", body.clone()).await.status(), 200);
    // A revoked device uploads nothing more.
    let admin = server.token("ADM", PASSWORD).await;
    assert_eq!(server.post(&format!("/v1/devices/{}/revoke", phone.device_id), &admin, json!({})).await.status(), 200);
    assert_eq!(
        code(post_entries(&server, &phone.token, "application/cbor", body).await).await,
        (401, "device_revoked".into())
    );
    // Inclusion proofs: anyone signed in.
    for role in ["O2", "SUP", "REV", "ADM"] {
        let token = server.token(role, PASSWORD).await;
        assert_eq!(server.get("/v1/log/proofs/inclusion?index=0", &token).await.status(), 200, "{role}");
    }
    let anonymous = server.client.get(server.url("/v1/log/proofs/inclusion?index=0")).send().await.unwrap();
    assert_eq!(code(anonymous).await, (401, "missing_token".into()));
    // Checkpoint, key and consistency proofs: anyone.
    for path in ["/v1/log/checkpoint", "/v1/log/key", "/v1/log/proofs/consistency?from=1&to=1"] {
        assert_eq!(reqwest::get(server.url(path)).await.unwrap().status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_logs_origin_is_chosen_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let init = std::process::Command::new(program)
        .arg("--data")
        .arg(dir.path())
        .args(["init", "--log-origin", "bureau.example/log"])
        .env_remove("FIELDSYNC_LOG_ORIGIN")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let printed = String::from_utf8(init.stdout).unwrap();
    let verifier_key =
        printed.lines().find_map(|line| line.strip_prefix("transparency log: ")).expect("init prints the log's key");
    let key = parse_verifier_key(verifier_key).unwrap();
    assert_eq!(key.0, "bureau.example/log");
    // Another origin for the same log is refused: the program does not serve.
    let other = spawn_server(program, dir.path(), "127.0.0.1:0", &["--log-origin", "other.example/log"]);
    assert!(other.is_none(), "a second origin is refused");
    let (mut child, address) = spawn_server(program, dir.path(), "127.0.0.1:0", &[]).expect("serves");
    let served = reqwest::get(format!("http://{address}/v1/log/key")).await.unwrap().text().await.unwrap();
    assert_eq!(served, verifier_key, "the key made at init");
    let note = reqwest::get(format!("http://{address}/v1/log/checkpoint")).await.unwrap().text().await.unwrap();
    assert_eq!(open(&note, &key).size, 0, "an empty log, signed");
    child.kill().unwrap();
    child.wait().unwrap();
}
