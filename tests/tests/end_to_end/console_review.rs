//! The reviewer's console pages over real data: two officers' devices (`field-client`, each with
//! its own store) sync a record whose conclusion they wrote differently offline, a record with a
//! photo carrying EXIF, a change refused into quarantine and a record both signed and locked;
//! then the queue's filters and pages, the record as the form shows it, the photos through the
//! console's blob routes, the evidence package built and verified, refusals (role, CSRF, a
//! confidential campaign task's record) and escaping, over HTTP; and a browser scene on the real
//! server program.

use std::path::Path;
use std::time::Duration;

use field_client::Device;
use field_client::remote::{SyncOptions, enroll};
use fieldsync_tests::browser::Browser;
use fieldsync_tests::console::ConsoleClient;
use fieldsync_tests::harness::{DAY, TestServer, spawn_server};
use serde_json::json;
use sync_core::document::{Edit, SignOutcome};

const PASSWORD: &str = "correct horse battery";
const SCRIPT: &str = "<script>alert('observed')</script>";
const CONCLUSION_A: &str = "甲：责令限期整改";
const CONCLUSION_B: &str = "乙：责令停产整治";

fn options() -> SyncOptions {
    SyncOptions {
        max_attempts: 12,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        ..SyncOptions::default()
    }
}

async fn sync(device: &mut Device) {
    device.sync(&options(), |_| {}).await.unwrap();
}

/// O1 and O2 on T1 (entity E00001) and T2 (E00002), O3 on neither, a supervisor and a reviewer.
async fn bureau(server: &TestServer) {
    server.entities(5);
    for officer in ["O1", "O2", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    let supervisor = server.token("SUP", PASSWORD).await;
    assert_eq!(server.task(&supervisor, "T1", &["O1", "O2"]).await.status(), 200);
    server.seed_task("T2", "E00002", &["O1", "O2"]);
}

/// The civil date (`YYYY-MM-DD`) and time (`HH:MM:SS`) of `ms` in China Standard Time.
fn china(ms: i64) -> (String, String) {
    let local = ms / 1000 + 8 * 3600;
    let (days, seconds) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", seconds / 3600, seconds % 3600 / 60, seconds % 60),
    )
}

/// A JPEG whose EXIF (IFD0) claims a camera (`Fieldcam FC-1`) and `taken` (`YYYY:MM:DD HH:MM:SS`).
fn jpeg_with_exif(taken: &str) -> Vec<u8> {
    let image =
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&image).unwrap();
    // TIFF, little-endian, IFD0 at 8 with three ASCII entries whose values follow it.
    let values: [(u16, String); 3] =
        [(0x010f, "Fieldcam".into()), (0x0110, "FC-1".into()), (0x0132, taken.to_string())];
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&(values.len() as u16).to_le_bytes());
    let mut data_at = 8 + 2 + 12 * values.len() + 4;
    let mut data = Vec::new();
    for (tag, text) in &values {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        tiff.extend_from_slice(&(data_at as u32).to_le_bytes());
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        data_at += bytes.len();
        data.extend_from_slice(&bytes);
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&data);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// What the devices made.
struct Made {
    /// Both officers wrote its conclusion offline, differently: an open conflict.
    conflict: String,
    /// O1's record with a photo (EXIF) and a script typed into its observations; O3's edit of
    /// it is refused.
    photo_record: String,
    sha256: String,
    photo: Vec<u8>,
    /// Signed by both officers and locked (task T2).
    locked: String,
    /// O3's device.
    outsider_device: String,
}

/// Two officers' devices make the inspections, and a third officer's edit is refused.
async fn inspect(base: &str) -> Made {
    let (a_dir, b_dir, c_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = enroll(a_dir.path(), base, "O1", PASSWORD).await.unwrap();
    let mut b = enroll(b_dir.path(), base, "O2", PASSWORD).await.unwrap();
    sync(&mut a).await;
    sync(&mut b).await;

    // The conflict: one record, both officers present, each writes the conclusion offline.
    let conflict = a.new_record("T1").unwrap();
    a.add_officer_present(&conflict, "O1", true).unwrap();
    a.add_officer_present(&conflict, "O2", true).unwrap();
    sync(&mut a).await;
    sync(&mut b).await;
    a.edit(&conflict, Edit::SetConclusion(CONCLUSION_A.into())).unwrap();
    b.edit(&conflict, Edit::SetConclusion(CONCLUSION_B.into())).unwrap();
    sync(&mut a).await;
    sync(&mut b).await;
    sync(&mut a).await;
    assert_eq!(a.record(&conflict).unwrap().conflicts.len(), 1, "the conclusion is in conflict");

    // The photo, with EXIF claiming now, and a script typed into the observations.
    let photo_record = a.new_record("T1").unwrap();
    a.add_officer_present(&photo_record, "O1", true).unwrap();
    let (date, clock) = china(server::now_ms());
    let photo = jpeg_with_exif(&format!("{} {clock}", date.replace('-', ":")));
    let path = a_dir.path().join("outfall.jpg");
    std::fs::write(&path, &photo).unwrap();
    let sha256 = a.add_photo(&photo_record, &path, "总排口").unwrap();
    a.edit(&photo_record, Edit::AppendObservations(SCRIPT.into())).unwrap();
    sync(&mut a).await;

    // The locked record: both sign.
    let locked = a.new_record("T2").unwrap();
    a.add_officer_present(&locked, "O1", true).unwrap();
    a.add_officer_present(&locked, "O2", true).unwrap();
    for completing in sync_core::sample::completing_edits(a.now_ms()) {
        a.edit(&locked, completing).unwrap();
    }
    a.edit(&locked, Edit::SetConclusion("未发现违法行为".into())).unwrap();
    sync(&mut a).await;
    sync(&mut b).await;
    assert_eq!(a.sign(&locked).unwrap(), SignOutcome::Signed);
    sync(&mut a).await;
    sync(&mut b).await;
    assert_eq!(b.sign(&locked).unwrap(), SignOutcome::SignedAndLocked);
    sync(&mut b).await;
    sync(&mut a).await;

    // O3, not on the team, edits a copy of the photo record: refused into quarantine.
    let mut c = enroll(c_dir.path(), base, "O3", PASSWORD).await.unwrap();
    sync(&mut c).await;
    let copied = a.store().record(&photo_record).unwrap().unwrap();
    c.store().put_local_record(&photo_record, Some("T1"), &copied.document, None, c.now_ms()).unwrap();
    c.edit(&photo_record, Edit::SetConclusion("O3 改的结论".into())).unwrap();
    let summary = c.sync(&options(), |_| {}).await.unwrap();
    assert!(!summary.refused.is_empty(), "O3's edit is refused");
    let outsider_device = c.identity().device_id.clone();
    Made { conflict, photo_record, sha256, photo, locked, outsider_device }
}

/// An attribute's value as the browser reads it (askama writes `&` as `&#38;`).
fn unescape(text: &str) -> String {
    text.replace("&#38;", "&").replace("&amp;", "&")
}

/// The record links of a queue page.
fn listed(html: &str) -> usize {
    html.matches("<a class=\"mono\" href=\"/review/records/").count()
}

#[tokio::test]
async fn a_reviewer_reads_the_queue_the_record_its_photos_and_verifies_its_evidence() {
    let server = TestServer::start().await;
    bureau(&server).await;
    let made = inspect(&server.base).await;
    let reviewer = ConsoleClient::sign_in(&server.base, "REV", PASSWORD).await;

    // The queue: everything, then each filter.
    let all = reviewer.get("/review/records").await;
    assert_eq!(all.status, 200, "{}", all.html);
    assert_eq!(listed(&all.html), 3);
    for id in [&made.conflict, &made.photo_record, &made.locked] {
        assert!(all.html.contains(id.as_str()), "{id} listed");
    }
    assert!(!all.html.contains(SCRIPT) && all.html.contains("&#60;script&#62;"), "the observations, escaped");
    let (today, _) = china(server::now_ms());
    let (tomorrow, _) = china(server::now_ms() + DAY);
    let (yesterday, _) = china(server::now_ms() - DAY);
    let cases = [
        ("status=locked", 1),
        ("status=draft", 2),
        ("task=T2", 1),
        ("task=T1", 2),
        ("entity=E00002", 1),
        ("entity=E00003", 0),
        ("officer=O1", 3),
        ("officer=O3", 0),
        (&format!("from={today}&to={today}") as &str, 3),
        (&format!("from={tomorrow}"), 0),
        (&format!("to={yesterday}&on=updated"), 0),
        (&format!("from={today}&on=updated&status=locked"), 1),
    ];
    for (query, expected) in cases {
        let page = reviewer.get(&format!("/review/records?{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        assert_eq!(listed(&page.html), expected, "{query}");
    }
    let bad = reviewer.get("/review/records?from=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.html.contains("invalid_query"), "{}", bad.html);
    assert_eq!(reviewer.get("/review/records?status=burnt").await.status, 400);

    // The record with the conflict: both values and who wrote each.
    let page = reviewer.get(&format!("/review/records/{}", made.conflict)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let conflicts = &page.html[page.html.find("id=\"conflicts\"").unwrap()..];
    let conflicts = &conflicts[..conflicts.find("</table>").unwrap()];
    assert!(conflicts.contains("header/conclusion"), "{conflicts}");
    assert!(conflicts.contains(CONCLUSION_A) && conflicts.contains(CONCLUSION_B), "{conflicts}");
    assert!(conflicts.contains("O1 (") && conflicts.contains("O2 ("), "each value's author: {conflicts}");
    for part in ["GX-O1", "GX-O2", "id=\"history\"", "E00001", "certificates_shown"] {
        assert!(page.html.contains(part), "{part} on the record page");
    }
    let history = &page.html[page.html.find("id=\"history\"").unwrap()..];
    assert!(history.matches("<li>").count() >= 4, "the changes of both devices: {history}");

    // The photo record: its thumbnail, its full size, its EXIF and the log's claim; escaped text.
    let page = reviewer.get(&format!("/review/records/{}", made.photo_record)).await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains(SCRIPT) && page.html.contains("&#60;script&#62;alert("), "escaped observations");
    let thumbnail_url = format!("/review/blobs/{}/thumbnail", made.sha256);
    assert!(page.html.contains(&thumbnail_url));
    assert!(page.html.contains("Fieldcam FC-1"), "the EXIF's camera");
    assert!(page.html.contains("photo_taken"), "the log's photo entry");
    let thumbnail = reviewer.client.get(format!("{}{thumbnail_url}", server.base)).send().await.unwrap();
    assert_eq!(thumbnail.status(), 200);
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    assert_eq!(&thumbnail.bytes().await.unwrap()[..2], &[0xff, 0xd8]);
    let full = reviewer.client.get(format!("{}/review/blobs/{}", server.base, made.sha256)).send().await.unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "image/jpeg");
    assert_eq!(full.bytes().await.unwrap().to_vec(), made.photo, "the stored bytes");
    let photo_page = reviewer.get(&format!("/review/records/{}/photos/{}", made.photo_record, made.sha256)).await;
    assert_eq!(photo_page.status, 200);
    assert!(photo_page.html.contains(&format!("src=\"/review/blobs/{}\"", made.sha256)));
    assert!(photo_page.html.contains("Fieldcam FC-1"));
    let unknown = "0".repeat(64);
    assert_eq!(reviewer.get(&format!("/review/blobs/{unknown}")).await.status, 404);
    assert_eq!(reviewer.get("/review/blobs/not-a-hash/thumbnail").await.status, 404);

    // The locked record: both signatures, the lock, the log's leaves.
    let page = reviewer.get(&format!("/review/records/{}", made.locked)).await;
    assert_eq!(page.status, 200);
    let signatures = &page.html[page.html.find("id=\"signatures\"").unwrap()..];
    let signatures = &signatures[..signatures.find("</table>").unwrap()];
    assert_eq!(signatures.matches("<tr><td>").count(), 2, "{signatures}");
    assert!(page.html.contains("id=\"record-status\">已锁定"), "locked");
    assert!(page.html.contains("id=\"inclusion\""));

    // The evidence: refused without the form's token, built and verified with it.
    let path = format!("/review/records/{}/evidence", made.locked);
    let before = server.snapshot();
    let forged = reviewer.post_raw(&path, &[]).await;
    assert_eq!(forged.status, 403);
    assert!(forged.html.contains("csrf_mismatch"));
    assert_eq!(server.snapshot(), before, "nothing built");
    let verdict = reviewer.post(&path, &[]).await;
    assert_eq!(verdict.status, 200, "{}", verdict.html);
    assert!(verdict.html.contains("id=\"verdict\"><span class=\"badge ok\">"), "{}", verdict.html);
    assert!(!verdict.html.contains("badge bad\">FAIL"), "every check holds");
    let shown = verdict.html.split("id=\"package-sha256\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let download = verdict.html.split("id=\"download\" href=\"").nth(1).unwrap().split('"').next().unwrap();
    let download = unescape(download);
    let package = reviewer.client.get(format!("{}{download}", server.base)).send().await.unwrap();
    assert_eq!(package.status(), 200);
    assert_eq!(package.headers()["content-type"], "application/x-tar");
    let package = package.bytes().await.unwrap();
    assert_eq!(server::service::blobs::content_address(&package), shown, "the very package verified");
    let key = server.client.get(format!("{}/v1/log/key", server.base)).send().await.unwrap().text().await.unwrap();
    let report = sync_core::evidence::verify_package(&package, sync_core::evidence::KeyTrust::Published(&key), 300_000);
    assert!(report.holds());

    // The quarantine: O3's refused change, its reason, device and record.
    let quarantine = reviewer.get("/review/quarantine").await;
    assert_eq!(quarantine.status, 200);
    for part in ["officer_not_on_team", "O3", made.outsider_device.as_str(), made.photo_record.as_str()] {
        assert!(quarantine.html.contains(part), "{part} in the quarantine");
    }
    let filtered = reviewer.get(&format!("/review/quarantine?record={}", made.locked)).await;
    assert!(!filtered.html.contains("officer_not_on_team"));

    // Another role is refused every page.
    let supervisor = ConsoleClient::sign_in(&server.base, "SUP", PASSWORD).await;
    for path in [
        "/review/records".to_string(),
        format!("/review/records/{}", made.conflict),
        "/review/quarantine".into(),
        format!("/review/blobs/{}", made.sha256),
    ] {
        let page = supervisor.get(&path).await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(supervisor.post(&path, &[]).await.status, 403);
}

#[tokio::test]
async fn the_queue_pages_by_fifty() {
    let server = TestServer::start().await;
    bureau(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let mut device = enroll(dir.path(), &server.base, "O2", PASSWORD).await.unwrap();
    sync(&mut device).await;
    for _ in 0..53 {
        device.new_record("T1").unwrap();
    }
    sync(&mut device).await;
    let reviewer = ConsoleClient::sign_in(&server.base, "REV", PASSWORD).await;
    let first = reviewer.get("/review/records?task=T1").await;
    assert_eq!(listed(&first.html), 50);
    assert!(first.html.contains("1 / 2 (53)"));
    let next = first.html.split("rel=\"next\" id=\"next-page\"").next().unwrap();
    let next = next.rsplit("href=\"").next().unwrap().split('"').next().unwrap();
    let next = unescape(next);
    assert!(next.contains("task=T1") && next.contains("page=2"), "{next}");
    let second = reviewer.get(&next).await;
    assert_eq!(listed(&second.html), 3);
    assert!(second.html.contains("2 / 2 (53)"));
    let beyond = reviewer.get("/review/records?task=T1&page=9").await;
    assert_eq!(listed(&beyond.html), 3, "a page beyond the last is the last");
}

#[tokio::test]
async fn a_confidential_campaign_tasks_record_is_not_found_by_a_reviewer() {
    let server = TestServer::start().await;
    server.entities(3000);
    for officer in ["O1", "O2", "O3", "O4"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("ADM", PASSWORD, &["admin"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    let admin = server.token("ADM", PASSWORD).await;
    let matters = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/matters.json")).unwrap();
    let response = server
        .client
        .post(server.url("/v1/admin/matters"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(matters)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let supervisor = server.token("SUP", PASSWORD).await;
    let today = |days: i64| sync_core::campaigns::date_of_ms(server::now_ms() + days * DAY).unwrap().to_string();
    let campaign = json!({
        "campaign_id": "C-SECRET", "matter": "M06", "tiers": [{"tier": "special", "count": 1}],
        "period": "2026-Q4", "starts_on": today(0), "ends_on": today(30),
        "team_size": 2, "max_tasks_per_officer": 1, "joint_departments": [],
    });
    assert_eq!(server.post("/v1/campaigns", &supervisor, campaign).await.status(), 200);
    let drawn = server.post("/v1/campaigns/C-SECRET/draw", &supervisor, json!({})).await;
    assert_eq!(drawn.status(), 200);
    let drawn: serde_json::Value = drawn.json().await.unwrap();
    let task_id = drawn["tasks"][0]["task_id"].as_str().unwrap().to_string();
    let officer = drawn["tasks"][0]["team"][0].as_str().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    let mut device = enroll(dir.path(), &server.base, &officer, PASSWORD).await.unwrap();
    sync(&mut device).await;
    let record_id = device.new_record(&task_id).unwrap();
    device.edit(&record_id, Edit::AppendObservations("保密检查".into())).unwrap();
    sync(&mut device).await;
    assert!(server.query("SELECT record_id FROM records").iter().any(|r| r[0] == record_id), "stored");

    let reviewer = ConsoleClient::sign_in(&server.base, "REV", PASSWORD).await;
    let queue = reviewer.get("/review/records").await;
    assert_eq!(queue.status, 200);
    assert!(!queue.html.contains(&record_id) && !queue.html.contains(&task_id), "not in the queue");
    let queue = reviewer.get(&format!("/review/records?task={task_id}")).await;
    assert_eq!(listed(&queue.html), 0);
    for path in [format!("/review/records/{record_id}"), format!("/review/records/{record_id}/evidence.tar")] {
        let page = reviewer.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.html.contains("not_found") && !page.html.contains("保密检查"), "{path}");
    }
    let verdict = reviewer.post(&format!("/review/records/{record_id}/evidence"), &[]).await;
    assert_eq!(verdict.status, 404);
    let unknown = reviewer.get("/review/records/0190f2a4-7c1e-7000-8000-00000000dead").await;
    assert_eq!(unknown.status, 404, "alike with a record that does not exist");
}

/// The scene in a real browser, on the real server program: the queue, the record with the
/// conflict, a photo at full size, the evidence built and verified (failing for the unsigned
/// record, whose content nothing proves yet, passing for the locked one).
#[tokio::test]
async fn a_reviewer_in_a_browser_sees_the_conflict_opens_a_photo_and_verifies_the_evidence() {
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().to_path_buf();
    let seeding = TestServer::start_with(|config| config.data_dir = folder).await;
    bureau(&seeding).await;
    let made = inspect(&seeding.base).await;
    seeding.stop().await;

    let program = Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let (mut child, address) = spawn_server(program, data.path(), "127.0.0.1:0", &[]).expect("serving");
    let base = format!("http://{address}");
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("console-screenshots");
    let browser = Browser::start(&screenshots, "zh-CN").await;
    browser.sign_in(&base, "REV", PASSWORD).await;

    browser.goto(&format!("{base}/review/records")).await;
    assert!(browser.text("#records").await.contains(&made.conflict));
    browser.screenshot("reviewer-records").await;
    browser.click(&format!("a[href=\"/review/records/{}\"]", made.conflict)).await;
    assert_eq!(browser.path().await, format!("/review/records/{}", made.conflict));
    let conflicts = browser.text("#conflicts").await;
    assert!(conflicts.contains(CONCLUSION_A) && conflicts.contains(CONCLUSION_B), "{conflicts}");
    assert!(conflicts.contains("O1 (") && conflicts.contains("O2 ("), "{conflicts}");
    browser.screenshot("reviewer-record").await;

    // A photo: its thumbnail on the record, then its page at full size.
    browser.goto(&format!("{base}/review/records/{}", made.photo_record)).await;
    let thumbnail: serde_json::Value =
        browser.client.execute("return document.querySelector('img.thumbnail').naturalWidth", vec![]).await.unwrap();
    assert!(thumbnail.as_u64().unwrap() > 0, "the thumbnail loads");
    browser.click("#photos a").await;
    assert_eq!(browser.path().await, format!("/review/records/{}/photos/{}", made.photo_record, made.sha256));
    let width: serde_json::Value =
        browser.client.execute("return document.querySelector('img').naturalWidth", vec![]).await.unwrap();
    assert_eq!(width.as_u64(), Some(64), "the photo at full size");
    assert!(browser.text("#photo-exif").await.contains("Fieldcam FC-1"));

    // The conflicted record's evidence does not prove its content: nobody could sign it yet.
    browser.goto(&format!("{base}/review/records/{}", made.conflict)).await;
    browser.click("#build-evidence").await;
    assert_eq!(browser.text("#verdict span.badge.bad").await, "未通过");
    assert!(browser.text("#checks").await.contains("(it is not signed yet)"));
    // The signed and locked record's evidence verifies, item by item.
    browser.goto(&format!("{base}/review/records/{}", made.locked)).await;
    browser.click("#build-evidence").await;
    let checks = browser.text("#checks").await;
    assert!(!checks.contains("FAIL"), "{checks}");
    assert_eq!(browser.text("#verdict span.badge.ok").await, "通过");
    assert_eq!(browser.text("#package-sha256").await.len(), 64);
    browser.screenshot("reviewer-evidence").await;
    let errors = browser.console_errors().await;
    browser.stop().await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(errors, Vec::<String>::new());
}
