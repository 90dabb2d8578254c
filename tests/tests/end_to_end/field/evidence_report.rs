//! The report a court reads: a real inspection by two officers' devices against a real server,
//! exported as evidence, and `fieldsync verify --report` writing it as PDF and HTML. The PDF's
//! pages are rendered to images (`pdftoppm`) and its text read back (`pdftotext`), both from
//! Debian's poppler-utils: the record's conclusion, the officers' certificates, every finding
//! in words; a changed byte's report says the package fails, and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use field_client::Device;
use field_client::report::finding_words;
use schemas::log::EntryKind;
use sync_core::document::{Edit, SignOutcome};
use sync_core::evidence::{KeyTrust, verify_package};

use super::{bureau, phone, reviewer, shared_record, sync};

const CONCLUSION: &str = "责令限期改正，十五日内恢复在线监测";

fn log(device: &mut Device, kind: EntryKind, record_id: &str, payload: &str) {
    device.append_log(kind, Some(record_id), payload.as_bytes()).unwrap();
}

/// Runs a program to its end, off the runtime's threads; its status and output.
async fn run(mut command: Command) -> (bool, String, String) {
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

/// `fieldsync verify PACKAGE --log-key KEY ARGS`.
async fn verify(package: &Path, key: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync"));
    command.arg("verify").arg(package).args(["--log-key", key]).args(args);
    run(command).await
}

/// The PDF's text as `pdftotext` reads it, without the line breaks and spaces its layout put in.
async fn pdf_text(pdf: &Path) -> String {
    let mut command = Command::new("pdftotext");
    command.arg("-enc").arg("UTF-8").arg(pdf).arg("-");
    let (ok, text, error) = run(command).await;
    assert!(ok, "pdftotext (Debian's poppler-utils) reads the report: {error}");
    text.split_whitespace().collect()
}

/// Renders every page with `pdftoppm`; the PNGs.
async fn pdf_pages(pdf: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut command = Command::new("pdftoppm");
    command.args(["-png", "-r", "60"]).arg(pdf).arg(dir.join("page"));
    let (ok, _, error) = run(command).await;
    assert!(ok, "pdftoppm (Debian's poppler-utils) renders the report: {error}");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("page") && p.extension() == Some("png".as_ref())
        })
        .collect();
    pages.sort();
    pages
}

/// The share of a page's pixels that are not near white.
fn inked(png: &Path) -> f64 {
    let image = image::open(png).unwrap().to_luma8();
    let dark = image.pixels().filter(|p| p.0[0] < 160).count();
    dark as f64 / (image.width() * image.height()) as f64
}

#[tokio::test]
async fn the_report_renders_and_holds_the_conclusion_the_certificates_and_every_finding() {
    let server = bureau().await;
    let reviewer = reviewer(&server).await;
    let (mut a, a_dir) = phone(&server.base, "O1").await;
    let (mut b, _b_dir) = phone(&server.base, "O2").await;
    let record_id = shared_record(&mut a, &mut b).await;
    a.edit(&record_id, Edit::SetConclusion(CONCLUSION.into())).unwrap();
    a.edit(&record_id, Edit::AppendObservations("总排口有黑色废水外排，在线监测数据缺失两小时。".into())).unwrap();

    // A seal with no recording running (R2), a recording stopped with no reason (R3).
    log(&mut a, EntryKind::Arrive, &record_id, "");
    log(&mut a, EntryKind::SealOrSeizure, &record_id, "查封废水处理设备一套");
    log(&mut a, EntryKind::RecordingStarted, &record_id, "执法记录仪 01 开始录像");
    let photo = a_dir.path().join("outfall.png");
    fieldsync_tests::harness::noise_png(&photo, 240, 0x2545_f491);
    let sha256 = a.add_photo(&record_id, &photo, "总排口<script>alert(1)</script>").unwrap();
    log(&mut a, EntryKind::RecordingStopped { reason: String::new() }, &record_id, "");
    log(&mut b, EntryKind::PartyQuestioned, &record_id, "询问笔录第 1 页");
    sync(&mut a).await;
    sync(&mut b).await;
    log(&mut a, EntryKind::Left, &record_id, "");
    assert_eq!(a.sign(&record_id).unwrap(), SignOutcome::Signed);
    sync(&mut a).await;
    sync(&mut b).await;
    assert_eq!(b.sign(&record_id).unwrap(), SignOutcome::SignedAndLocked);
    sync(&mut b).await;
    sync(&mut a).await;

    let key = server.client.get(format!("{}/v1/log/key", server.base)).send().await.unwrap().text().await.unwrap();
    let response = server.get(&format!("/v1/records/{record_id}/evidence"), &reviewer).await;
    assert_eq!(response.status(), 200);
    let package = response.bytes().await.unwrap().to_vec();
    let verified = verify_package(&package, KeyTrust::Published(&key), 300_000);
    assert!(verified.holds(), "{:#?}", verified.checks.iter().filter(|c| !c.holds).collect::<Vec<_>>());
    let rules: Vec<&str> = verified.findings.iter().map(|f| finding_words(f).0).collect();
    assert!(rules.contains(&"R2") && rules.contains(&"R3"), "{:?}", verified.findings);
    let record = verified.contents.record.clone().expect("the record reads");
    let certificates: Vec<String> = record.officers_present.iter().map(|o| o.certificate_number.clone()).collect();
    assert_eq!(certificates.len(), 2);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.tar");
    std::fs::write(&file, &package).unwrap();
    let pdf = dir.path().join("report.pdf");
    let html = dir.path().join("report.html");
    let (ok, stdout, stderr) = verify(&file, &key, &["--report", pdf.to_str().unwrap()]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("report: {}", pdf.display())), "{stdout}");
    assert!(stdout.contains("ok   manifest.json"), "verify's own output stays: {stdout}");
    let (ok, stdout, stderr) = verify(&file, &key, &["--report", html.to_str().unwrap()]).await;
    assert!(ok, "{stdout}{stderr}");

    // The pages render, with ink on them.
    let pages_dir = dir.path().join("pages");
    std::fs::create_dir(&pages_dir).unwrap();
    let pages = pdf_pages(&pdf, &pages_dir).await;
    assert!(!pages.is_empty(), "pdftoppm rendered no page");
    for page in &pages {
        assert!(inked(page) > 0.004, "{} is blank", page.display());
    }
    // FIELDSYNC_KEEP_REPORT=/tmp/report keeps the PDF, its first page and the HTML to look at.
    if let Ok(keep) = std::env::var("FIELDSYNC_KEEP_REPORT") {
        std::fs::copy(&pages[0], format!("{keep}.png")).unwrap();
        std::fs::copy(&pdf, format!("{keep}.pdf")).unwrap();
        std::fs::copy(&html, format!("{keep}.html")).unwrap();
    }

    // Its text, read back: the verdict, the conclusion, the certificates, every finding, the photo.
    let text = pdf_text(&pdf).await;
    let html_text: String = std::fs::read_to_string(&html).unwrap().split_whitespace().collect();
    let mut expected = vec![
        "现场检查笔录电子证据核验报告".to_string(),
        "核验通过".into(),
        CONCLUSION.into(),
        record_id.clone(),
        "见证者".into(),
        sha256.clone(),
    ];
    expected.extend(certificates.iter().cloned());
    for finding in &verified.findings {
        let (rule, title, detail) = finding_words(finding);
        expected.push(format!("【{rule}】{title}"));
        expected.push(detail.split_whitespace().collect());
    }
    for words in &expected {
        assert!(text.contains(words.as_str()), "the PDF's text lacks {words:?}:\n{text}");
        assert!(html_text.contains(words.as_str()), "the HTML lacks {words:?}");
    }
    assert!(html_text.contains(key.trim()), "the HTML names the key it trusted");
    assert!(html_text.contains("data:image/png;base64,"), "the HTML shows the photo's thumbnail");
    assert!(!html_text.contains("<script>"), "the caption from the package is escaped");
    assert!(html_text.contains("总排口&lt;script&gt;"));

    // One byte of the photo changed: verify fails as before, and the report says so and why.
    let photo_bytes = std::fs::read(&photo).unwrap();
    let at = package.windows(64).position(|w| w == &photo_bytes[1000..1064]).expect("the photo is in the package");
    let mut changed = package.clone();
    changed[at + 10] ^= 0x01;
    let changed_file = dir.path().join("changed.tar");
    std::fs::write(&changed_file, &changed).unwrap();
    let failed_pdf = dir.path().join("failed.pdf");
    let (ok, _, stderr) = verify(&changed_file, &key, &["--report", failed_pdf.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(stderr.contains("[evidence_invalid]"), "{stderr}");
    let text = pdf_text(&failed_pdf).await;
    assert!(text.contains("核验未通过"), "{text}");
    assert!(text.contains(&format!("blobs/{sha256}")), "the failing item is named: {text}");
    assert!(text.contains("证据包中的照片缺失或与其哈希不符，不予显示"), "{text}");
    assert!(!text.contains("核验通过"), "{text}");

    // Hashes only: the report says the photo is not included.
    let response = server.get(&format!("/v1/records/{record_id}/evidence?blobs=hashes"), &reviewer).await;
    let hashes_only = dir.path().join("hashes-only.tar");
    std::fs::write(&hashes_only, response.bytes().await.unwrap()).unwrap();
    let hashes_html = dir.path().join("hashes-only.HTML");
    let (ok, stdout, stderr) = verify(&hashes_only, &key, &["--report", hashes_html.to_str().unwrap()]).await;
    assert!(ok, "{stdout}{stderr}");
    let page = std::fs::read_to_string(&hashes_html).unwrap();
    assert!(page.contains("本证据包只含此照片的哈希，未含照片本身"), "{page}");
    assert!(!page.contains("data:image/png"), "no photo, no thumbnail");

    // A report in another format, or with a font that is not one: refused, with their codes.
    let (ok, _, stderr) = verify(&file, &key, &["--report", dir.path().join("r.txt").to_str().unwrap()]).await;
    assert!(!ok && stderr.contains("[report_format]"), "{stderr}");
    let (ok, _, stderr) =
        verify(&file, &key, &["--report", pdf.to_str().unwrap(), "--font", file.to_str().unwrap()]).await;
    assert!(!ok && stderr.contains("[font_unusable]"), "{stderr}");
}
