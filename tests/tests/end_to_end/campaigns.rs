//! Random inspection (双随机、一公开) over the synthetic city: the matter list and the registries,
//! a campaign's commitment published before its draw and checked after it, the draw's tasks on
//! their teams' devices, the public listing before and after the draw is public, verification
//! with `fieldsync verify-draw` and `fieldsync-server draw verify`, a draw refused for too few
//! officers, the entity registry's history and the bureau's calendar.

use std::process::Command;

use fieldsync_tests::harness::{DAY, TestServer, error_code};
use serde_json::{Value, json};
use server::store::Account;
use server::store::prelude::*;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "correct horse battery";

/// The first `n` officers of `officers.csv` with an active certificate: (id, name, unit).
fn city_officers(n: usize) -> Vec<(String, String, String)> {
    let csv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/officers.csv"))
        .expect("../shared/data beside the project");
    csv.lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|fields| fields[6] == "active")
        .take(n)
        .map(|fields| (fields[0].clone(), fields[1].clone(), fields[2].clone()))
        .collect()
}

/// A bureau over the whole synthetic city: its 3,000 entities, `officers` of its officers with
/// certificates valid for a year around now (each can log in), a supervisor and an administrator,
/// and the matter list imported through the admin API.
async fn bureau(officers: usize) -> (TestServer, Vec<String>) {
    let server = TestServer::start().await;
    server.entities(3000);
    let mut ids = Vec::new();
    for (id, name, unit) in city_officers(officers) {
        server
            .store
            .create_account(
                Account {
                    officer_id: id.clone(),
                    name,
                    unit,
                    password_hash: Some(server::service::auth::hash_password(PASSWORD)),
                    must_change_password: false,
                    roles: vec!["officer".into()],
                },
                server::now_ms(),
            )
            .unwrap();
        server.certificate(&id);
        ids.push(id);
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
    assert_eq!(response.json::<Value>().await.unwrap()["matters"], 6);
    (server, ids)
}

/// A day `days` from today in UTC+8, as `YYYY-MM-DD`.
fn day(days: i64) -> String {
    sync_core::campaigns::date_of_ms(server::now_ms() + days * DAY).unwrap().to_string()
}

/// A campaign of matter M06 (special and key units) drawing `special` special units.
fn campaign(id: &str, special: u32, starts: i64, ends: i64, max_tasks: u32) -> Value {
    json!({
        "campaign_id": id, "matter": "M06", "tiers": [{"tier": "special", "count": special}],
        "period": "2026-Q4", "starts_on": day(starts), "ends_on": day(ends),
        "team_size": 2, "max_tasks_per_officer": max_tasks, "joint_departments": ["柳州市应急管理局"],
    })
}

/// Creates campaign `id` (as [`campaign`] describes it) through the store as it would have been
/// created `ago` days ago.
fn created_days_ago(server: &TestServer, id: &str, special: u32, starts: i64, ends: i64, ago: i64) {
    let spec = server::store::CampaignSpec {
        matter: "M06".into(),
        tiers: vec![sync_core::draw::TierQuota {
            tier: "special".into(),
            quota: sync_core::draw::Quota::Count { count: special },
        }],
        divisions: vec![],
        period: "2026-Q3".into(),
        starts_on: day(starts).parse().unwrap(),
        ends_on: day(ends).parse().unwrap(),
        team_size: 2,
        max_tasks_per_officer: 1,
        joint_departments: vec!["柳州市应急管理局".into()],
    };
    let limits = server::service::campaigns::CampaignLimits::of(&server::Config::new(server.dir.path().to_path_buf()));
    let then = server::now_ms() - ago * DAY;
    server::service::campaigns::create(server.store.as_ref(), id, spec, rand::random(), "SUP", then, &limits).unwrap();
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Runs the `fieldsync` program with `args`; its success, stdout and stderr.
fn fieldsync(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync")).args(args).arg("--json").output().unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_commits_draws_reaches_its_teams_and_is_verified_once_public() {
    let (server, officers) = bureau(8).await;
    let supervisor = server.token("SUP", PASSWORD).await;
    let anonymous = reqwest::Client::new();

    // The matter list is public.
    let matters: Value = json_of(anonymous.get(server.url("/v1/public/matters")).send().await.unwrap()).await;
    assert_eq!(matters["matters"][5]["code"], "M06");

    // The inspector registry: every officer certified today, with unit and certificate.
    let inspectors =
        json_of(server.get(&format!("/v1/inspectors?at={}&until={}", day(0), day(30)), &supervisor).await).await;
    assert_eq!(inspectors.as_array().unwrap().len(), officers.len());
    assert_eq!(inspectors[0]["certificates"][0], format!("GX-{}", officers[0]));
    assert!(!inspectors[0]["unit"].as_str().unwrap().is_empty());

    // Created: the commitment and the snapshot's hashes are public at once, the draw is not.
    let created = json_of(server.post("/v1/campaigns", &supervisor, campaign("C-Q4", 2, 0, 30, 1)).await).await;
    let commitment = created["commitment"].clone();
    assert_eq!(commitment["algorithm"], "fieldsync-draw/v1");
    assert_eq!(commitment["entities"], 131, "every special unit of the city");
    assert_eq!(commitment["officers"], officers.len());
    assert!(created["draw"].is_null());
    let public = json_of(anonymous.get(server.url("/v1/public/campaigns/C-Q4")).send().await.unwrap()).await;
    assert_eq!(public["commitment"], commitment);
    assert!(public["draw"].is_null());
    assert_eq!(public["joint_departments"][0], "柳州市应急管理局");

    // Drawn with a public value: the revealed seed hashes to the commitment published before.
    let drawn =
        json_of(server.post("/v1/campaigns/C-Q4/draw", &supervisor, json!({"public_value": "2026127"})).await).await;
    let seed = hex::decode(drawn["published"]["inputs"]["server_seed"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&seed)), commitment["commitment"].as_str().unwrap());
    let tasks = drawn["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    let (again, _) = error_code(server.post("/v1/campaigns/C-Q4/draw", &supervisor, json!({})).await).await;
    assert_eq!(again, 409, "a campaign is drawn once");

    // Each task reaches its team through GET /v1/tasks, and no other officer.
    let task = &tasks[0];
    let member = task["team"][0].as_str().unwrap();
    let outsider = officers.iter().find(|o| !task["team"].as_array().unwrap().contains(&json!(o))).unwrap();
    let member_tasks = json_of(server.get("/v1/tasks", &server.token(member, PASSWORD).await).await).await;
    assert!(member_tasks.as_array().unwrap().iter().any(|t| t["task_id"] == task["task_id"]));
    let outsider_token = server.token(outsider, PASSWORD).await;
    let outsider_tasks = json_of(server.get("/v1/tasks", &outsider_token).await).await;
    assert!(!outsider_tasks.as_array().unwrap().iter().any(|t| t["task_id"] == task["task_id"]));
    let (status, _) = error_code(server.get("/v1/campaigns/C-Q4", &outsider_token).await).await;
    assert_eq!(status, 403, "the drawn list is for supervisors");
    // Not even a reviewer sees the drawn tasks before the draw is public.
    let reviewer = server.token("REV", PASSWORD).await;
    let reviewer_tasks = json_of(server.get("/v1/tasks", &reviewer).await).await;
    assert!(!reviewer_tasks.as_array().unwrap().iter().any(|t| t["task_id"] == task["task_id"]));
    let path = format!("/v1/tasks/{}", task["task_id"].as_str().unwrap());
    assert_eq!(server.get(&path, &reviewer).await.status(), 404);
    assert_eq!(server.get(&path, &supervisor).await.status(), 200);

    // In its period, with no result public, the draw stays confidential.
    let public = json_of(anonymous.get(server.url("/v1/public/campaigns/C-Q4")).send().await.unwrap()).await;
    assert!(public["draw"].is_null(), "{public}");
    assert!(!public.to_string().contains(task["entity_id"].as_str().unwrap()));

    // A campaign whose period has ended: its draw is public, and verifies. It was created in its
    // period, ninety days ago (the API refuses a campaign whose period has ended).
    created_days_ago(&server, "C-Q3", 2, -60, -2, 90);
    let ended = json_of(server.get("/v1/campaigns/C-Q3", &supervisor).await).await;
    json_of(server.post("/v1/campaigns/C-Q3/draw", &supervisor, json!({})).await).await;
    let public = json_of(anonymous.get(server.url("/v1/public/campaigns/C-Q3")).send().await.unwrap()).await;
    assert!(public["draw_public_on"].as_str() > public["ends_on"].as_str(), "public from the day after the period");
    // Once public, a reviewer sees its tasks too.
    let reviewer_tasks = json_of(server.get("/v1/tasks", &reviewer).await).await;
    let q3 = ended["campaign_id"].as_str().unwrap();
    assert!(reviewer_tasks.as_array().unwrap().iter().any(|t| t["task_id"].as_str().unwrap().starts_with(q3)));
    let published = &public["draw"];
    let seed = hex::decode(published["inputs"]["server_seed"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&seed)), ended["commitment"]["commitment"].as_str().unwrap());
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("draw.json");
    std::fs::write(&file, published.to_string()).unwrap();
    let (ok, stdout, stderr) = fieldsync(&["verify-draw", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["matches"], true);
    let mut altered = published.clone();
    altered["inputs"]["officers"].as_array_mut().unwrap().pop();
    std::fs::write(&file, altered.to_string()).unwrap();
    let (ok, _, stderr) = fieldsync(&["verify-draw", file.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(serde_json::from_str::<Value>(stderr.trim()).unwrap()["code"], "draw_mismatch", "{stderr}");
    let listing = json_of(anonymous.get(server.url("/v1/public/campaigns")).send().await.unwrap()).await;
    assert_eq!(listing.as_array().unwrap().len(), 2);
    let page = anonymous.get(server.url("/public/campaigns")).send().await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains(ended["commitment"]["commitment"].as_str().unwrap()));

    // The server's own check of its stored draws.
    let verify = |campaign: &str| {
        Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"))
            .arg("--data")
            .arg(server.dir.path())
            .args(["draw", "verify", campaign])
            .output()
            .unwrap()
    };
    let output = verify("C-Q4");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"draw_matches\": true"));
    // A stored draw changed behind the server's back no longer matches its published record.
    let conn = rusqlite::Connection::open(server.dir.path().join("fieldsync.sqlite3")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    conn.execute("UPDATE campaigns SET public_value = 'another' WHERE campaign_id = 'C-Q4'", []).unwrap();
    drop(conn);
    let output = verify("C-Q4");
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"draw_matches\": false"));
}

#[tokio::test]
async fn a_draw_with_too_few_officers_is_refused_and_stores_nothing() {
    let (server, _) = bureau(4).await;
    let supervisor = server.token("SUP", PASSWORD).await;
    // Four officers, at most one task each: two teams of two, not three.
    json_of(server.post("/v1/campaigns", &supervisor, campaign("C-SHORT", 3, 0, 30, 1)).await).await;
    let before = server.snapshot();
    let response = server.post("/v1/campaigns/C-SHORT/draw", &supervisor, json!({})).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_enough_officers", "{body}");
    assert_eq!(body["details"]["team_size"], 2);
    assert_eq!(server.snapshot(), before, "nothing stored");
    // A matter that does not target a tier, and a team of one, are refused at creation.
    let mut general = campaign("C-GEN", 1, 0, 30, 1);
    general["tiers"] = json!([{"tier": "general", "count": 1}]);
    assert_eq!(
        error_code(server.post("/v1/campaigns", &supervisor, general).await).await,
        (422, "tier_not_targeted".into())
    );
    let mut alone = campaign("C-ONE", 1, 0, 30, 1);
    alone["team_size"] = json!(1);
    assert_eq!(
        error_code(server.post("/v1/campaigns", &supervisor, alone).await).await,
        (422, "team_too_small".into())
    );
    assert_eq!(server.snapshot(), before, "nothing stored");
}

#[tokio::test]
async fn the_registry_keeps_every_change_an_import_made() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    server.account("SUP", PASSWORD, &["supervisor"]);
    let admin = server.token("ADM", PASSWORD).await;
    let csv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/entities.csv")).unwrap();
    let first: String = csv.lines().take(4).collect::<Vec<_>>().join("\n");
    let import = |body: String| {
        server
            .client
            .post(server.url("/v1/admin/entities"))
            .bearer_auth(&admin)
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    assert_eq!(import(first.clone()).await.unwrap().status(), 200);
    // The second import renames E00002 and leaves the others as they were.
    let second = first.replacen("柳州市利昌制糖有限责任公司", "柳州市利昌糖业有限公司", 1);
    assert_eq!(import(second).await.unwrap().status(), 200);
    let supervisor = server.token("SUP", PASSWORD).await;
    let history = json_of(server.get("/v1/admin/entities/E00002/history", &supervisor).await).await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!((history[0]["change"].as_str(), history[0]["by"].as_str()), (Some("added"), Some("ADM")));
    assert!(history[0]["before"].is_null());
    assert_eq!(history[0]["after"]["division_code"], "450203");
    assert_eq!(history[1]["change"], "changed");
    assert_eq!(history[1]["before"]["name"], "柳州市利昌制糖有限责任公司");
    assert_eq!(history[1]["after"]["name"], "柳州市利昌糖业有限公司");
    let unchanged = json_of(server.get("/v1/admin/entities/E00001/history", &supervisor).await).await;
    assert_eq!(unchanged.as_array().unwrap().len(), 1, "an unchanged entity gains no history");
    assert_eq!(error_code(server.get("/v1/admin/entities/E09999/history", &supervisor).await).await.0, 404);
}

#[tokio::test]
async fn the_calendar_is_kept_by_year_and_a_contradictory_one_is_refused() {
    let server = TestServer::start().await;
    server.account("ADM", PASSWORD, &["admin"]);
    let admin = server.token("ADM", PASSWORD).await;
    let put = |year: &str, body: Value| {
        server.client.put(server.url(&format!("/v1/admin/calendar/{year}"))).bearer_auth(&admin).json(&body).send()
    };
    let year = json!({"holidays": ["2026-10-01", "2026-10-02"], "working_weekends": ["2026-09-27"]});
    assert_eq!(put("2026", year.clone()).await.unwrap().status(), 200);
    assert_eq!(json_of(server.get("/v1/admin/calendar/2026", &admin).await).await, year);
    let before = server.snapshot();
    for (case, body) in [
        ("a worked weekday", json!({"holidays": [], "working_weekends": ["2026-09-28"]})),
        ("both", json!({"holidays": ["2026-09-27"], "working_weekends": ["2026-09-27"]})),
        ("another year", json!({"holidays": ["2027-01-01"], "working_weekends": []})),
    ] {
        let (status, code) = error_code(put("2026", body).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (422, "invalid_calendar"), "{case}");
    }
    assert_eq!(error_code(put("year", year).await.unwrap()).await, (400, "invalid_year".into()));
    assert_eq!(server.snapshot(), before);
    assert_eq!(error_code(server.get("/v1/admin/calendar/2027", &admin).await).await.0, 404);

    // The program sets and shows a year from a file, refuses a contradictory one, and imports
    // the matter list.
    let program = |args: Vec<std::ffi::OsString>| {
        let output = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"))
            .arg("--data")
            .arg(server.dir.path())
            .args(args)
            .output()
            .unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let file = server.dir.path().join("calendar-2027.json");
    std::fs::write(&file, r#"{"holidays": ["2027-01-01"], "working_weekends": ["2027-02-06"]}"#).unwrap();
    let (ok, out) = program(vec!["calendar".into(), "set".into(), "2027".into(), file.clone().into()]);
    assert!(ok && out.contains("2027: 1 holidays, 1 working weekend days"), "{out}");
    let (ok, out) = program(vec!["calendar".into(), "show".into(), "2027".into()]);
    assert!(ok, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown, json!({"holidays": ["2027-01-01"], "working_weekends": ["2027-02-06"]}));
    assert_eq!(json_of(server.get("/v1/admin/calendar/2027", &admin).await).await, shown);
    std::fs::write(&file, r#"{"holidays": ["2027-02-06"], "working_weekends": ["2027-02-06"]}"#).unwrap();
    let (ok, _) = program(vec!["calendar".into(), "set".into(), "2027".into(), file.into()]);
    assert!(!ok, "a day both a holiday and worked is refused");
    let matters = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/matters.json");
    let (ok, out) = program(vec!["matters".into(), "import".into(), matters.into()]);
    assert!(ok && out.contains("imported 6 matters"), "{out}");
    let listed: Value = server.client.get(server.url("/v1/public/matters")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["matters"].as_array().unwrap().len(), 6);
}

/// A drawn task inspected by its team (both officers sign, the record locks): its result is
/// overdue once 20 working days pass unpublished, and public once a supervisor publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inspected_tasks_result_is_overdue_until_published_and_then_public() {
    use fieldsync_tests::harness::{City, enroll};
    let (server, _) = bureau(4).await;
    let supervisor = server.token("SUP", PASSWORD).await;
    json_of(server.post("/v1/campaigns", &supervisor, campaign("C-R", 1, 0, 30, 1)).await).await;
    let drawn = json_of(server.post("/v1/campaigns/C-R/draw", &supervisor, json!({})).await).await;
    let task = &drawn["tasks"][0];
    let task_id = task["task_id"].as_str().unwrap();
    let team: Vec<&str> = task["team"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    let not_inspected =
        error_code(server.post(&format!("/v1/campaigns/C-R/results/{task_id}/publish"), &supervisor, json!({})).await)
            .await;
    assert_eq!(not_inspected, (422, "not_inspected".into()));

    // The team inspects: one phone makes the record, both sign, the record locks.
    let mut a = enroll(&server, team[0], PASSWORD).await;
    let mut b = enroll(&server, team[1], PASSWORD).await;
    let names: Vec<String> = team.iter().map(|o| server.store.account(o).unwrap().unwrap().name).collect();
    let numbers: Vec<String> = team.iter().map(|o| format!("GX-{o}")).collect();
    let record_id = sync_core::document::new_record_id(server::now_ms() as u64, [7; 10]);
    // The record's checklist is the matter's: the server refuses any other code.
    let mut city = City::load();
    city.checklist = City::matter_checklist("M06");
    let record = city.record(
        0,
        &record_id,
        task_id,
        task["entity_id"].as_str().unwrap(),
        a.actor.clone(),
        [(team[0], &names[0], &numbers[0]), (team[1], &names[1], &numbers[1])],
    );
    a.records.insert(record);
    a.session.record_changed(&record_id);
    assert!(a.sync(&server).await.is_empty());
    assert!(b.sync(&server).await.is_empty());
    let certificates = server.store.certificates(None).unwrap();
    b.records.get_mut(&record_id).unwrap().sign(team[1], server::now_ms(), &certificates).unwrap();
    b.session.record_changed(&record_id);
    assert!(b.sync(&server).await.is_empty());
    assert!(a.sync(&server).await.is_empty());
    a.records.get_mut(&record_id).unwrap().sign(team[0], server::now_ms(), &certificates).unwrap();
    a.session.record_changed(&record_id);
    assert!(a.sync(&server).await.is_empty());

    // Unpublished: due within 20 working days, overdue after.
    let overdue = |today: String| {
        let server = &server;
        let supervisor = supervisor.clone();
        async move { json_of(server.get(&format!("/v1/campaigns/overdue?today={today}"), &supervisor).await).await }
    };
    assert_eq!(overdue(day(1)).await, json!([]));
    let late = overdue(day(60)).await;
    assert_eq!(late[0]["task_id"], task_id, "{late}");
    assert_eq!(late[0]["state"], "overdue");
    assert_eq!(late[0]["record_id"], record_id.as_str());

    // Published: public with its conclusion, in time, and once only.
    let published =
        json_of(server.post(&format!("/v1/campaigns/C-R/results/{task_id}/publish"), &supervisor, json!({})).await)
            .await;
    assert_eq!(published["record_id"], record_id.as_str());
    let again =
        error_code(server.post(&format!("/v1/campaigns/C-R/results/{task_id}/publish"), &supervisor, json!({})).await)
            .await;
    assert_eq!(again, (409, "already_published".into()));
    assert_eq!(overdue(day(60)).await, json!([]));
    let public = json_of(reqwest::get(server.url("/v1/public/campaigns/C-R")).await.unwrap()).await;
    assert_eq!(public["results"][0]["entity_id"], task["entity_id"]);
    assert_eq!(public["results"][0]["conclusion"], "未发现环境违法行为。");
    // Its only task's result is public: so is the draw, from the same day.
    assert!(public["results"][0]["public_on"].is_string());
    assert_eq!(public["draw_public_on"], public["results"][0]["public_on"]);
    assert_eq!(public["draw"]["draw"], drawn["published"]["draw"]);
}

#[tokio::test]
async fn a_campaign_out_of_bounds_is_refused_with_its_code_and_stores_nothing() {
    let (server, _) = bureau(4).await;
    let supervisor = server.token("SUP", PASSWORD).await;
    let before = server.snapshot();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = campaign("C-EDGE", 1, 0, 30, 1);
        change(&mut body);
        body
    };
    let departments = |n: usize| Value::from((0..n).map(|i| format!("部门{i}")).collect::<Vec<_>>());
    let cases: [(&str, Value, u16, &str); 6] = [
        ("a team of a million", with(&|b| b["team_size"] = 1_000_000.into()), 422, "team_too_large"),
        ("a team of eleven", with(&|b| b["team_size"] = 11.into()), 422, "team_too_large"),
        (
            "a period that ended yesterday",
            with(&|b| {
                b["starts_on"] = day(-30).into();
                b["ends_on"] = day(-1).into();
            }),
            422,
            "period_ended",
        ),
        ("a thousand joint departments", with(&|b| b["joint_departments"] = departments(1_000)), 422, "list_too_long"),
        ("a thousand divisions", with(&|b| b["divisions"] = Value::from(vec!["450223"; 1_000])), 422, "list_too_long"),
        // The 100,000 departments of the attack do not even fit in a form's body.
        (
            "a hundred thousand joint departments",
            with(&|b| b["joint_departments"] = departments(100_000)),
            413,
            "body_too_large",
        ),
    ];
    for (what, body, status, code) in cases {
        let (got, error) = error_code(server.post("/v1/campaigns", &supervisor, body).await).await;
        assert_eq!((got, error.as_str()), (status, code), "{what}");
        assert_eq!(server.snapshot(), before, "{what}: nothing stored");
    }
    // At the bounds, and ending today, a campaign is created.
    let at_bounds = with(&|b| {
        b["ends_on"] = day(0).into();
        b["team_size"] = 10.into();
        b["joint_departments"] = departments(100);
    });
    let (status, code) = error_code(server.post("/v1/campaigns", &supervisor, at_bounds).await).await;
    assert_eq!((status, code.as_str()), (200, ""));
}

#[tokio::test]
async fn the_public_listing_comes_a_page_at_a_time() {
    let (server, _) = bureau(4).await;
    let supervisor = server.token("SUP", PASSWORD).await;
    for id in ["C-A", "C-B", "C-C"] {
        json_of(server.post("/v1/campaigns", &supervisor, campaign(id, 1, 0, 30, 1)).await).await;
    }
    let anonymous = reqwest::Client::new();
    let ids = |page: &Value| -> Vec<String> {
        page.as_array().unwrap().iter().map(|c| c["campaign_id"].as_str().unwrap().to_string()).collect()
    };
    let first = anonymous.get(server.url("/v1/public/campaigns?limit=2")).send().await.unwrap();
    let next = first.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(next, r#"</v1/public/campaigns?after=C-B&limit=2>; rel="next""#);
    assert_eq!(ids(&json_of(first).await), ["C-A", "C-B"]);
    let target = next.trim_start_matches('<').split('>').next().unwrap();
    let last = anonymous.get(server.url(target)).send().await.unwrap();
    assert!(last.headers().get("link").is_none(), "the last page links to none");
    assert_eq!(ids(&json_of(last).await), ["C-C"]);
    // The default page is the largest there is (20); more is refused, as is none.
    assert_eq!(ids(&json_of(anonymous.get(server.url("/v1/public/campaigns")).send().await.unwrap()).await).len(), 3);
    for query in ["limit=21", "limit=0", "limit=many"] {
        let response = anonymous.get(server.url(&format!("/v1/public/campaigns?{query}"))).send().await.unwrap();
        assert_eq!(error_code(response).await, (400, "invalid_query".to_string()), "{query}");
    }
    // The HTML page too, with a link to the next.
    let page = anonymous.get(server.url("/public/campaigns?limit=1")).send().await.unwrap();
    assert!(page.headers()["link"].to_str().unwrap().contains("after=C-A"));
    let html = page.text().await.unwrap();
    assert!(html.contains("href=\"/public/campaigns?after=C-A&#38;limit=1\""), "{html}");
}
