//! `fieldsync-server demo` (issue 15), run as the real program: it makes a fresh demo bureau
//! whose records came through the devices' real sync, prints where to log in and with what, and
//! refuses a folder that already holds a database. What it printed is then checked against the
//! folder, served by the real program and asked over HTTP as each role, and read from its SQLite
//! file.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use fieldsync_tests::harness::spawn_server;
use serde_json::Value;

const PROGRAM: &str = env!("CARGO_BIN_EXE_e2e-fieldsync-server");

/// Enough records for every ending (locked, conflict, refused then locked) and a campaign, and
/// few enough for a debug build on two cores.
const RECORDS: usize = 12;

/// Runs `fieldsync-server --data DATA demo --no-serve` on a free port.
fn demo(data: &Path) -> Output {
    Command::new(PROGRAM)
        .arg("--data")
        .arg(data)
        .args(["demo", "--no-serve", "--listen", "127.0.0.1:0", "--records", &RECORDS.to_string()])
        .env_remove("RUST_LOG")
        .env_remove("FIELDSYNC_DATA")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// The numbers on the printed line that starts with `label`, in order.
fn printed_numbers(printed: &str, label: &str) -> Vec<usize> {
    let line =
        printed.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{label}: {printed}"));
    line.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(|w| w.parse().unwrap()).collect()
}

/// The printed accounts: (role, officer id, password).
fn printed_accounts(printed: &str) -> Vec<(String, String, String)> {
    printed
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let role = *words.first()?;
            ["administrator", "supervisor", "reviewer", "officer"]
                .contains(&role)
                .then(|| (role.to_string(), words[1].to_string(), words[2].to_string()))
        })
        .collect()
}

async fn token(client: &reqwest::Client, base: &str, officer_id: &str, password: &str) -> String {
    let response = client
        .post(format!("{base}/v1/auth/login"))
        .json(&serde_json::json!({ "officer_id": officer_id, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{officer_id} logs in with the printed password");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn get(client: &reqwest::Client, base: &str, path: &str, token: &str) -> Value {
    let response = client.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The rows of a query on the demo's database, read-only, each value as text.
fn query(data: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open_with_flags(
        data.join("fieldsync.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut statement = conn.prepare(sql).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| {
            Ok((0..columns)
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    other => format!("{other:?}"),
                })
                .collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn the_demo_makes_what_it_prints_through_the_real_sync_and_refuses_a_folder_with_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo-data");
    let made = demo(&data);
    let printed = String::from_utf8_lossy(&made.stdout).into_owned();
    assert!(made.status.success(), "{printed}\n{}", String::from_utf8_lossy(&made.stderr));

    // Where to log in: the port it really listened on, not the 0 it was given.
    let url = printed.lines().find_map(|l| l.strip_prefix("log in at ")).expect("where to log in");
    let address: SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    assert_eq!(address.ip().to_string(), "127.0.0.1");
    assert_ne!(address.port(), 0, "{printed}");
    let accounts = printed_accounts(&printed);
    let roles: Vec<&str> = accounts.iter().map(|(role, _, _)| role.as_str()).collect();
    assert_eq!(roles, ["administrator", "supervisor", "reviewer", "officer", "officer"], "{printed}");

    // What it says it made.
    let [records, locked, conflicts, refused_then_locked] = printed_numbers(&printed, "records:")[..] else {
        panic!("{printed}")
    };
    assert_eq!(records, RECORDS, "{printed}");
    assert!(locked >= 1 && conflicts >= 1 && refused_then_locked >= 1, "{printed}");
    let quarantined = printed_numbers(&printed, "quarantine:")[0];
    assert!(quarantined >= refused_then_locked, "{printed}");
    let [photos, with_exif] = printed_numbers(&printed, "photos:")[..] else { panic!("{printed}") };
    assert_eq!((photos, with_exif), (RECORDS, RECORDS), "{printed}");

    // Served by the real program, the folder holds what was printed, for each role.
    let (mut server, listening) = spawn_server(Path::new(PROGRAM), &data, "127.0.0.1:0", &[]).expect("it serves");
    let base = format!("http://{listening}");
    let client = reqwest::Client::new();
    let mut tokens = std::collections::BTreeMap::new();
    for (role, officer_id, password) in &accounts {
        tokens.insert(role.clone(), token(&client, &base, officer_id, password).await);
    }
    let supervisor = &tokens["supervisor"];
    let page = get(&client, &base, "/v1/records?limit=1000", supervisor).await;
    let listed = page["records"].as_array().unwrap();
    assert_eq!(listed.len(), RECORDS);
    let locked_listed = listed.iter().filter(|r| r["status"] == "locked").count();
    assert_eq!(locked_listed, locked);
    let (mut with_conflicts, mut r2_findings, mut log_entries) = (0, 0, 0);
    for summary in listed {
        let record_id = summary["record_id"].as_str().unwrap();
        let record = get(&client, &base, &format!("/v1/records/{record_id}"), supervisor).await;
        if record["conflicts"].as_array().unwrap().iter().any(|c| c["legally_significant"] == true) {
            with_conflicts += 1;
            assert_ne!(record["status"], "locked", "a record with an open conflict is not signed");
        }
        let photos = record["photos"].as_array().unwrap();
        assert_eq!(photos.len(), 1, "{record}");
        let sha256 = photos[0]["sha256"].as_str().unwrap();
        let metadata = get(&client, &base, &format!("/v1/blobs/{sha256}/metadata"), supervisor).await;
        assert_eq!(metadata["media_type"], "image/jpeg");
        assert_eq!(metadata["claimed"]["offset"], "+08:00", "{metadata}");
        assert!(
            metadata["claimed"]["taken_at"].is_string() && metadata["claimed"]["latitude"].is_number(),
            "{metadata}"
        );
        let log = get(&client, &base, &format!("/v1/records/{record_id}/log"), supervisor).await;
        log_entries += log["entries"].as_array().unwrap().len();
        let findings = log["findings"].as_array().unwrap();
        r2_findings += findings.iter().filter(|f| f["rule"] == "seal_without_recording").count();
        assert!(findings.iter().all(|f| f["rule"] == "seal_without_recording"), "no other finding: {findings:?}");
    }
    assert_eq!(with_conflicts, conflicts);
    assert_eq!(r2_findings, 1, "one seal without a recording");
    assert_eq!(log_entries, printed_numbers(&printed, "enforcement log:")[0]);
    assert!(log_entries >= 2 * RECORDS, "{log_entries}");

    // The reviewer sees the quarantine, and the campaign's records too: its results are public.
    let reviewer = &tokens["reviewer"];
    let quarantine = get(&client, &base, "/v1/quarantine", reviewer).await;
    let quarantine = quarantine.as_array().unwrap();
    assert_eq!(quarantine.len(), quarantined);
    assert!(quarantine.iter().all(|q| q["reason"]["code"] == "record_signed"), "{quarantine:?}");
    let seen = get(&client, &base, "/v1/records?limit=1000", reviewer).await;
    assert_eq!(seen["records"].as_array().unwrap().len(), RECORDS, "the draw is public");

    // The administrator sees the officers' certificates, suspended ones among them.
    let certificates = get(&client, &base, "/v1/admin/certificates", &tokens["administrator"]).await;
    let suspended = certificates
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status_history"].as_array().unwrap().last().is_some_and(|s| s["status"] == "suspended"))
        .count();
    assert!(suspended >= 1);
    assert_eq!(suspended, printed_numbers(&printed, "officers:")[1], "{printed}");
    server.kill().unwrap();
    server.wait().unwrap();

    // The records came through the sync (changes of the officers' enrolled devices), the photos
    // through uploads (their metadata examined and stored), the entries onto devices' chains.
    let devices = query(&data, "SELECT COUNT(*) FROM devices")[0][0].parse::<usize>().unwrap();
    assert!(devices >= 2 && data.join("devices").read_dir().unwrap().count() == devices);
    let sql = "SELECT COUNT(*) FROM blob_metadata WHERE claimed_taken_at IS NOT NULL AND claimed_latitude IS NOT NULL";
    assert_eq!(query(&data, sql), [[RECORDS.to_string()]]);
    let chained = query(&data, "SELECT COUNT(*) FROM log_chain")[0][0].parse::<usize>().unwrap();
    assert_eq!(chained, printed_numbers(&printed, "enforcement log:")[0]);

    // Run again into the same folder: refused, saying why, and nothing is touched.
    let before = query(&data, "SELECT COUNT(*) FROM records");
    let again = demo(&data);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("already holds a database"), "{said}");
    assert_eq!(query(&data, "SELECT COUNT(*) FROM records"), before);
}
