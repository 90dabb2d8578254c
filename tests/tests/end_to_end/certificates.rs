//! Certificates over time (P3), through the admin API, the `fieldsync-server` program and a real
//! device: a suspension entered with a past effective time lists the record merged after it and
//! flags its changes in the record's history and in `check`; a renewal after a lapse leaves the
//! lapse invalid; a surrender is final; reviews and the report of certificates due for review.

use std::process::Command;

use field_client::remote::{SyncOptions, enroll};
use fieldsync_tests::console::ConsoleClient;
use fieldsync_tests::harness::{DAY, TestServer};
use schemas::{Certificate, CertificatePeriodKind};
use serde_json::{Value, json};
use sync_core::document::Edit;
use sync_core::rules::{CertificateStanding, certificate_standing};

const PASSWORD: &str = "correct horse battery";

/// A server with two certified officers on task T1, an administrator and a reviewer.
fn server_with_a_team(server: &TestServer) {
    server.entities(2);
    for officer in ["O1", "O2", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.account("ADM", PASSWORD, &["admin"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    server.seed_task("T1", "E00001", &["O1", "O2"]);
}

/// Runs `fieldsync-server --data DIR ARGS` on the test server's database.
async fn program(server: &TestServer, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    command.arg("--data").arg(server.dir.path()).args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

async fn post(server: &TestServer, path: &str, token: &str, body: Value) -> (u16, Value) {
    let response = server.post(path, token, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(server: &TestServer, path: &str, token: &str) -> (u16, Value) {
    let response = server.get(path, token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn p3_a_backdated_suspension_lists_the_affected_record_and_flags_its_changes() {
    let server = TestServer::start().await;
    server_with_a_team(&server);
    let dir = tempfile::tempdir().unwrap();
    let mut device = enroll(dir.path(), &server.base, "O1", PASSWORD).await.unwrap();
    let options = SyncOptions::default();
    device.sync(&options, |_| {}).await.unwrap();
    let before = device.new_record("T1").unwrap();
    device.edit(&before, Edit::AppendObservations("停职前的检查。".into())).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let suspended_at = server::now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let after = device.new_record("T1").unwrap();
    device.edit(&after, Edit::AppendObservations("停职后的检查。".into())).unwrap();
    device.sync(&options, |_| {}).await.unwrap();
    let admin = server.token("ADM", PASSWORD).await;
    let reviewer = server.token("REV", PASSWORD).await;

    // Nothing is affected before the suspension is entered.
    let (status, affected) = get(&server, "/v1/admin/certificates/GX-O1/affected", &admin).await;
    assert_eq!(status, 200, "{affected}");
    assert_eq!(affected["records"], json!([]));

    // The suspension is entered now, effective from before the second record was made.
    let body = json!({ "status": "suspended", "at_ms": suspended_at, "reason": "停职调查" });
    let (status, certificate) = post(&server, "/v1/admin/certificates/GX-O1/status", &admin, body).await;
    assert_eq!(status, 200, "{certificate}");

    let (status, affected) = get(&server, "/v1/admin/certificates/GX-O1/affected", &admin).await;
    assert_eq!(status, 200, "{affected}");
    assert_eq!(affected["officer_id"], "O1");
    let records = affected["records"].as_array().unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r["record_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [after.as_str()], "only the record made after the effective time: {affected}");
    let changes = records[0]["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for change in changes {
        assert_eq!(change["standing"], "suspended");
        assert_eq!(change["since_ms"], suspended_at);
        assert_eq!(change["device_id"], device.identity().device_id.as_str());
        assert!(change["timestamp_ms"].as_i64().unwrap() >= suspended_at);
    }
    // Only admins read it; an unknown certificate is not found.
    assert_eq!(get(&server, "/v1/admin/certificates/GX-O1/affected", &reviewer).await.0, 403);
    let (status, body) = get(&server, "/v1/admin/certificates/GX-NONE/affected", &admin).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    // The record's history keeps the changes, flagged; the earlier record's are not.
    let (status, history) = get(&server, &format!("/v1/records/{after}/history"), &reviewer).await;
    assert_eq!(status, 200, "{history}");
    let flagged: Vec<&Value> = history.as_array().unwrap().iter().filter(|h| !h["while_suspended"].is_null()).collect();
    assert_eq!(flagged.len(), changes.len(), "{history}");
    assert!(flagged.iter().all(|h| h["while_suspended"]["number"] == "GX-O1" && h["officer_id"] == "O1"));
    let (_, history) = get(&server, &format!("/v1/records/{before}/history"), &reviewer).await;
    assert!(history.as_array().unwrap().iter().all(|h| h["while_suspended"].is_null()), "{history}");

    // The reviewer's console marks them on the record's page; the administrator's shows the review date.
    let console = ConsoleClient::sign_in(&server.base, "REV", PASSWORD).await;
    let page = console.get(&format!("/review/records/{after}")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.html.matches("while-suspended").count(), changes.len(), "{}", page.html);
    let page = console.get(&format!("/review/records/{before}")).await;
    assert!(!page.html.contains("while-suspended"));
    let console = ConsoleClient::sign_in(&server.base, "ADM", PASSWORD).await;
    let page = console.get("/admin/certificates/GX-O1").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("id=\"certificate-review-due\"") && page.html.contains("id=\"periods\""),
        "{}",
        page.html
    );

    // `check` reports it, through the API and the program, without calling the database broken.
    let (status, report) = get(&server, "/v1/admin/check", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["work_while_suspended"][0]["records"][0]["record_id"], after.as_str(), "{report}");
    let run = program(&server, &["check"]).await;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout} {}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains(&format!("while suspended: certificate GX-O1 (O1): record {after}")), "{stdout}");
    let run = program(&server, &["certificate", "affected", "GX-O1"]).await;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success());
    assert!(stdout.lines().all(|line| line.starts_with(&after)) && stdout.lines().count() == changes.len(), "{stdout}");

    // New work by the suspended officer is refused when it arrives, as before.
    device.edit(&before, Edit::AppendObservations("停职期间补记。".into())).unwrap();
    let summary = device.sync(&options, |_| {}).await.unwrap();
    assert!(!summary.refused.is_empty(), "{:?}", summary.refused);
}

#[tokio::test]
async fn p3_renewal_after_a_lapse_surrender_and_review_through_the_api_and_the_program() {
    let server = TestServer::start().await;
    server_with_a_team(&server);
    let admin = server.token("ADM", PASSWORD).await;
    let now = server::now_ms();
    let lapsed_at = now - 10 * DAY;
    let issue = json!({
        "number": "GX-LAPSED", "officer_id": "O3", "issuing_authority": "柳州市生态环境局",
        "valid_from_ms": now - 400 * DAY, "valid_until_ms": lapsed_at, "status_history": [],
    });
    let (status, issued) = post(&server, "/v1/admin/certificates", &admin, issue.clone()).await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["periods"][0]["kind"], "issued");
    let mut with_periods = issue.clone();
    with_periods["number"] = json!("GX-OTHER");
    with_periods["periods"] = json!([{ "kind": "issued", "valid_from_ms": 0, "valid_until_ms": 1 }]);
    let (status, body) = post(&server, "/v1/admin/certificates", &admin, with_periods).await;
    assert_eq!(
        (status, body["code"].as_str(), body["details"]["field"].as_str()),
        (422, Some("invalid_certificate"), Some("periods"))
    );

    let renew = "/v1/admin/certificates/GX-LAPSED/renew";
    let until = now + 365 * DAY;
    let cases = [
        (
            "backdated to the lapse",
            json!({ "valid_until_ms": until, "valid_from_ms": lapsed_at }),
            422,
            "renewal_backdated",
        ),
        (
            "inside the lapse",
            json!({ "valid_until_ms": until, "valid_from_ms": lapsed_at + DAY }),
            422,
            "renewal_backdated",
        ),
        (
            "inside the period",
            json!({ "valid_until_ms": until, "valid_from_ms": lapsed_at - DAY }),
            409,
            "period_overlaps",
        ),
        ("ending before it starts", json!({ "valid_until_ms": now - DAY }), 422, "invalid_certificate"),
    ];
    for (name, body, status, code) in cases {
        let before = server.snapshot();
        let (got, answer) = post(&server, renew, &admin, body).await;
        assert_eq!((got, answer["code"].as_str().unwrap_or("")), (status, code), "{name}: {answer}");
        assert!(before == server.snapshot(), "{name}: nothing changed");
    }
    let (status, renewed) = post(&server, renew, &admin, json!({ "valid_until_ms": until })).await;
    assert_eq!(status, 200, "{renewed}");
    let renewed: Certificate = serde_json::from_value(renewed).unwrap();
    assert_eq!(renewed.periods.len(), 2);
    assert_eq!(renewed.periods[1].kind, CertificatePeriodKind::Renewed);
    assert!(renewed.periods[1].valid_from_ms >= now, "a lapsed certificate's renewal starts when recorded");
    assert_eq!(
        certificate_standing(&renewed, lapsed_at + DAY),
        CertificateStanding::Expired,
        "the lapse stays a lapse"
    );
    assert_eq!(certificate_standing(&renewed, lapsed_at - DAY), CertificateStanding::Valid);
    assert_eq!(certificate_standing(&renewed, until - DAY), CertificateStanding::Valid);

    // A review, and the report of those due: a year after the latest review.
    let (status, reviewed) =
        post(&server, "/v1/admin/certificates/GX-O2/review", &admin, json!({ "note": "年审合格" })).await;
    assert_eq!(status, 200, "{reviewed}");
    let reviewed_at = reviewed["reviews"][0]["reviewed_at_ms"].as_i64().unwrap();
    let (status, body) =
        post(&server, "/v1/admin/certificates/GX-O2/review", &admin, json!({ "reviewed_at_ms": now + 2 * DAY })).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("review_in_future")));
    let (status, due) = get(&server, "/v1/admin/certificates/review-due?within_days=400", &admin).await;
    assert_eq!(status, 200, "{due}");
    let o2 = due.as_array().unwrap().iter().find(|d| d["number"] == "GX-O2").expect("GX-O2 due within 400 days");
    assert_eq!(o2["review_due_ms"], reviewed_at + 365 * DAY);
    assert_eq!(o2["overdue"], false);
    let (_, due_soon) = get(&server, "/v1/admin/certificates/review-due?within_days=30", &admin).await;
    assert!(due_soon.as_array().unwrap().iter().all(|d| d["number"] != "GX-O2"), "{due_soon}");
    let (status, body) = get(&server, "/v1/admin/certificates/review-due?within_days=99999", &admin).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_window")));
    let run = program(&server, &["certificate", "due", "--within-days", "400"]).await;
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stdout).lines().any(|l| l.starts_with("GX-O2\tO2\t")));

    // A surrender is final: no second surrender, status change, renewal or review.
    let surrender = "/v1/admin/certificates/GX-O2/surrender";
    let (status, surrendered) = post(&server, surrender, &admin, json!({ "reason": "调离" })).await;
    assert_eq!(status, 200, "{surrendered}");
    let after: [(&str, Value); 4] = [
        (surrender, json!({})),
        ("/v1/admin/certificates/GX-O2/status", json!({ "status": "active" })),
        ("/v1/admin/certificates/GX-O2/renew", json!({ "valid_until_ms": until + DAY })),
        ("/v1/admin/certificates/GX-O2/review", json!({})),
    ];
    for (path, body) in after {
        let (status, answer) = post(&server, path, &admin, body).await;
        assert_eq!((status, answer["code"].as_str()), (409, Some("certificate_surrendered")), "{path}");
    }
    let (_, due) = get(&server, "/v1/admin/certificates/review-due?within_days=400", &admin).await;
    assert!(due.as_array().unwrap().iter().all(|d| d["number"] != "GX-O2"), "a surrendered one is not reviewed");

    // The program surrenders too, and refuses a second time.
    let run = program(&server, &["certificate", "surrender", "GX-O3", "--reason", "退休"]).await;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let run = program(&server, &["certificate", "surrender", "GX-O3"]).await;
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("surrendered"), "{}", String::from_utf8_lossy(&run.stderr));
}
