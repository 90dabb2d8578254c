//! Console figures: how long each page takes to answer over a city's year of work, beside the
//! JSON API's record list and `/healthz` measured in the same run. See BENCHMARKS.md.
//!
//!     cargo bench -p fieldsync-tests --bench console
//!
//! The data is the demo's (`fieldsync-server demo --no-serve`), made through the real sync:
//! `FIELDSYNC_CONSOLE_RECORDS` records (default 1,500) over the synthetic city's 150 officers and
//! 3,000 entities; each page is asked `FIELDSYNC_CONSOLE_ROUNDS` times (default 20) by one
//! client on loopback, one request at a time, against the real server program.

use std::path::Path;
use std::time::{Duration, Instant};

use fieldsync_tests::console::ConsoleClient;
use fieldsync_tests::harness::spawn_server;
use server::demo::{ADMIN, ADMIN_PASSWORD, REVIEWER, REVIEWER_PASSWORD, SUPERVISOR, SUPERVISOR_PASSWORD};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The median and the slowest of `times`, in milliseconds.
fn summary(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(times[times.len() / 2]), ms(times[times.len() - 1]))
}

/// Asks `path` `rounds` times; every answer must be 200.
async fn time_page(console: &ConsoleClient, path: &str, rounds: usize) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(rounds);
    let mut bytes = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let page = console.get(path).await;
        times.push(started.elapsed());
        assert_eq!(page.status, 200, "{path}: {}", page.html.chars().take(400).collect::<String>());
        bytes = page.html.len();
    }
    let (median, slowest) = summary(&mut times);
    (median, slowest, bytes)
}

/// The first link on `html` that starts with `prefix` (a record's or a campaign's page).
fn first_link(html: &str, prefix: &str) -> Option<String> {
    let at = html.find(&format!("href=\"{prefix}"))? + "href=\"".len();
    Some(html[at..].split('"').next()?.replace("&amp;", "&"))
}

#[tokio::main]
async fn main() {
    let records = setting("FIELDSYNC_CONSOLE_RECORDS", 1_500);
    let rounds = setting("FIELDSYNC_CONSOLE_ROUNDS", 20).max(1);
    let program = Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let data = tempfile::tempdir().unwrap();
    let made = Instant::now();
    let output = std::process::Command::new(program)
        .arg("--data")
        .arg(data.path())
        .args(["demo", "--no-serve", "--listen", "127.0.0.1:0", "--records", &records.to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "the demo: {}", String::from_utf8_lossy(&output.stderr));
    println!("demo data: {records} records made through the real sync in {:.1} s", made.elapsed().as_secs_f64());
    let (mut child, address) = spawn_server(program, data.path(), "127.0.0.1:0", &[]).expect("serves");
    let base = format!("http://{address}");

    let supervisor = ConsoleClient::sign_in(&base, SUPERVISOR, SUPERVISOR_PASSWORD).await;
    let reviewer = ConsoleClient::sign_in(&base, REVIEWER, REVIEWER_PASSWORD).await;
    let admin = ConsoleClient::sign_in(&base, ADMIN, ADMIN_PASSWORD).await;
    let anonymous = ConsoleClient::anonymous(&base);
    let queue = reviewer.get("/review/records").await.html;
    let record = first_link(&queue, "/review/records/").expect("a record in the queue");
    let campaigns = supervisor.get("/supervisor/campaigns").await.html;
    let campaign = first_link(&campaigns, "/supervisor/campaigns/").expect("a campaign");
    let tasks = supervisor.get("/supervisor/tasks").await.html;
    let task = first_link(&tasks, "/supervisor/tasks/").expect("a task");

    let pages: Vec<(&str, &ConsoleClient, String)> = vec![
        ("public: start", &anonymous, "/".into()),
        ("public: matter list", &anonymous, "/public/matters".into()),
        ("public: enforcement officers", &anonymous, "/public/officers".into()),
        ("public: campaigns", &anonymous, "/public/campaigns".into()),
        ("supervisor: campaigns", &supervisor, "/supervisor/campaigns".into()),
        ("supervisor: a campaign", &supervisor, campaign),
        ("supervisor: overdue results", &supervisor, "/supervisor/overdue".into()),
        ("supervisor: tasks", &supervisor, "/supervisor/tasks".into()),
        ("supervisor: a task", &supervisor, task),
        ("supervisor: inspector registry", &supervisor, "/supervisor/inspectors".into()),
        ("supervisor: recusals", &supervisor, "/supervisor/recusals".into()),
        ("reviewer: record queue", &reviewer, "/review/records".into()),
        ("reviewer: queue, locked only", &reviewer, "/review/records?status=locked".into()),
        ("reviewer: a record", &reviewer, record),
        ("reviewer: quarantine", &reviewer, "/review/quarantine".into()),
        ("admin: officers", &admin, "/admin/officers".into()),
        ("admin: certificates", &admin, "/admin/certificates".into()),
        ("admin: devices", &admin, "/admin/devices".into()),
        ("admin: entity registry", &admin, "/admin/entities".into()),
        ("admin: matter list", &admin, "/admin/matters".into()),
        ("admin: calendar", &admin, "/admin/calendar".into()),
        ("admin: settings", &admin, "/admin/settings".into()),
    ];

    // The baselines, in the same run: the server's cheapest answer, and the JSON API's first
    // page of records as a device or script would ask for it.
    let token = {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{base}/v1/auth/login"))
            .json(&serde_json::json!({ "officer_id": REVIEWER, "password": REVIEWER_PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_string()
    };
    let http = reqwest::Client::new();
    let baseline = |path: &'static str| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let mut times = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let started = Instant::now();
                let answer = http.get(format!("{base}{path}")).bearer_auth(&token).send().await.unwrap();
                assert_eq!(answer.status(), 200, "{path}");
                let _ = answer.bytes().await.unwrap();
                times.push(started.elapsed());
            }
            summary(&mut times)
        }
    };
    let health = baseline("/healthz").await;
    let json_records = baseline("/v1/records?limit=50").await;

    println!("\n{records} records, {rounds} requests per page, one at a time, loopback:");
    println!("| page | median ms | slowest ms | HTML bytes |");
    println!("| --- | --- | --- | --- |");
    println!("| baseline: `/healthz` | {:.2} | {:.2} | |", health.0, health.1);
    println!("| baseline: JSON `/v1/records?limit=50` | {:.2} | {:.2} | |", json_records.0, json_records.1);
    let mut slowest_page = (0.0, String::new());
    for (name, console, path) in &pages {
        let (median, slowest, bytes) = time_page(console, path, rounds).await;
        println!("| {name} (`{path}`) | {median:.2} | {slowest:.2} | {bytes} |");
        if slowest > slowest_page.0 {
            slowest_page = (slowest, name.to_string());
        }
    }
    println!("\nslowest answer of any page: {:.2} ms ({})", slowest_page.0, slowest_page.1);
    let _ = child.kill();
    let _ = child.wait();
}
