//! The administrator's backup and check, through the admin API and the program: a blob whose
//! file went missing or changed, and a transparency log whose stored leaf changed, are found.

use std::process::Command;

use field_client::remote::{SyncOptions, enroll};
use fieldsync_tests::harness::TestServer;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

/// A server with one record and one photo stored, through an officer's device; an admin's and
/// an officer's tokens.
async fn server_with_a_photo() -> (TestServer, String, String, String) {
    let server = TestServer::start().await;
    server.entities(2);
    for officer in ["O1", "O2"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.account("ADM", PASSWORD, &["admin"]);
    server.seed_task("T1", "E00001", &["O1", "O2"]);
    let dir = tempfile::tempdir().unwrap();
    let mut device = enroll(dir.path(), &server.base, "O1", PASSWORD).await.unwrap();
    let options = SyncOptions::default();
    device.sync(&options, |_| {}).await.unwrap();
    let record_id = device.new_record("T1").unwrap();
    let photo = dir.path().join("photo.png");
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 128]))
        .save_with_format(&photo, image::ImageFormat::Png)
        .unwrap();
    let sha256 = device.add_photo(&record_id, &photo, "总排口").unwrap();
    let summary = device.sync(&options, |_| {}).await.unwrap();
    assert_eq!(summary.photos_uploaded, vec![sha256.clone()]);
    let admin = server.token("ADM", PASSWORD).await;
    let officer = server.token("O2", PASSWORD).await;
    (server, admin, officer, sha256)
}

async fn check(server: &TestServer, token: &str) -> Value {
    let response = server.get("/v1/admin/check", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Runs `fieldsync-server --data DIR ARGS`.
async fn program(server: &TestServer, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    command.arg("--data").arg(server.dir.path()).args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

#[tokio::test]
async fn check_finds_changed_and_missing_blobs_and_a_changed_log() {
    let (server, admin, officer, sha256) = server_with_a_photo().await;
    let report = check(&server, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["blobs_checked"], 1);
    assert!(program(&server, &["check"]).await.status.success());
    assert_eq!(server.get("/v1/admin/check", &officer).await.status(), 403);

    let file = server.dir.path().join("blobs").join(&sha256[..2]).join(&sha256);
    let original = std::fs::read(&file).unwrap();
    let cases: [(&str, Option<Vec<u8>>); 3] = [
        (
            "wrong_hash",
            Some({
                let mut changed = original.clone();
                changed[original.len() / 2] ^= 0x01;
                changed
            }),
        ),
        ("wrong_size", Some(original[..original.len() - 1].to_vec())),
        ("missing", None),
    ];
    for (problem, content) in cases {
        match content {
            Some(bytes) => std::fs::write(&file, bytes).unwrap(),
            None => std::fs::remove_file(&file).unwrap(),
        }
        let report = check(&server, &admin).await;
        assert_eq!(report["ok"], false, "{problem}: {report}");
        assert_eq!(report["blobs"][0]["sha256"], sha256.as_str());
        assert!(report["blobs"][0]["problem"].as_str().unwrap().starts_with(problem), "{report}");
        let run = program(&server, &["check"]).await;
        assert!(!run.status.success());
        assert!(String::from_utf8_lossy(&run.stderr).contains(&sha256), "{problem}");
    }
    std::fs::write(&file, &original).unwrap();
    assert_eq!(check(&server, &admin).await["ok"], true);

    // A leaf changed behind the log's back no longer hashes to what the tree holds.
    let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
    conn.execute("UPDATE log_leaves SET data = CAST(data || x'00' AS BLOB) WHERE idx = 0", []).unwrap();
    conn.execute("UPDATE log_leaves SET data = 'not bytes' WHERE idx = 1", []).unwrap();
    drop(conn);
    let report = check(&server, &admin).await;
    assert_eq!(report["ok"], false);
    let problems = report["transparency_log"].as_array().unwrap();
    assert!(problems.iter().any(|p| p.as_str().unwrap() == "leaf 0 does not hash to its stored subtree"), "{report}");
    assert!(problems.iter().any(|p| p.as_str().unwrap() == "leaf 1 is not bytes"), "{report}");
}

#[tokio::test]
async fn a_backup_through_the_api_is_a_consistent_copy() {
    let (server, admin, officer, sha256) = server_with_a_photo().await;
    assert_eq!(server.post("/v1/admin/backup", &officer, serde_json::json!({})).await.status(), 403);
    let response = server.post("/v1/admin/backup", &admin, serde_json::json!({})).await;
    assert_eq!(response.status(), 200);
    let made: Value = response.json().await.unwrap();
    let path = std::path::PathBuf::from(made["path"].as_str().unwrap());
    assert!(path.starts_with(server.dir.path().join("backups")));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), made["bytes"].as_u64().unwrap());
    let copy = rusqlite::Connection::open(&path).unwrap();
    let integrity: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let blobs: Vec<String> = copy
        .prepare("SELECT sha256 FROM blobs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(blobs, vec![sha256]);
    let records: i64 = copy.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0)).unwrap();
    assert_eq!(records, 1);
}
