//! The console's sessions and forms over real HTTP: the cookie's attributes, each role's pages and
//! no others, CSRF tokens, forged and ended sessions, the one-time password, text escaped on
//! every page that shows it, and the supervisor's forms doing what the JSON API does.

use fieldsync_tests::console::ConsoleClient;
use fieldsync_tests::harness::*;
use server::store::prelude::*;

const PASSWORD: &str = "correct horse battery";

/// A server with a supervisor, a reviewer, an administrator and two certified officers, ten
/// entities and the synthetic city's matter list.
async fn bureau() -> TestServer {
    let server = TestServer::start().await;
    server.account("SUP", PASSWORD, &["supervisor"]);
    server.account("REV", PASSWORD, &["reviewer"]);
    server.account("ADM", PASSWORD, &["admin"]);
    for officer in ["O1", "O2", "O3"] {
        server.account(officer, PASSWORD, &["officer"]);
        server.certificate(officer);
    }
    server.entities(10);
    let matters = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/matters.json")).unwrap();
    let list = server::service::campaigns::parse_matters(&matters).unwrap();
    server.store.import_matters(&list, "test", server::now_ms()).unwrap();
    server
}

#[tokio::test]
async fn signing_in_sets_a_strict_cookie_and_each_role_sees_only_its_pages() {
    let server = bureau().await;
    // The cookie as the browser gets it.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = client
        .post(server.url("/login"))
        .form(&[("officer_id", "SUP"), ("password", PASSWORD), ("next", "/supervisor/tasks")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/supervisor/tasks");
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["fieldsync_console=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: a Secure cookie would never come back");
    let behind_tls = client
        .post(server.url("/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("officer_id", "SUP"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(behind_tls.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));

    let pages = [
        (
            "supervisor",
            vec![
                "/supervisor/campaigns",
                "/supervisor/tasks",
                "/supervisor/overdue",
                "/supervisor/inspectors",
                "/supervisor/recusals",
            ],
        ),
        ("reviewer", vec!["/review/records", "/review/quarantine"]),
        (
            "admin",
            vec![
                "/admin/officers",
                "/admin/certificates",
                "/admin/devices",
                "/admin/entities",
                "/admin/matters",
                "/admin/calendar",
                "/admin/settings",
                "/admin/operations",
            ],
        ),
    ];
    for (officer, role) in [("SUP", "supervisor"), ("REV", "reviewer"), ("ADM", "admin")] {
        let console = ConsoleClient::sign_in(&server.base, officer, PASSWORD).await;
        let home = console.get("/").await;
        assert_eq!(home.status, 200);
        for (page_role, paths) in &pages {
            for path in paths {
                let page = console.get(path).await;
                if *page_role == role {
                    assert_eq!(page.status, 200, "{officer} on {path}: {}", page.html);
                    assert!(home.html.contains(&format!("href=\"{path}\"")), "{path} is in {officer}'s menu");
                } else {
                    assert_eq!(page.status, 403, "{officer} on {path}");
                    assert!(page.html.contains("role_required"), "{officer} on {path}: {}", page.html);
                    assert!(!home.html.contains(&format!("href=\"{path}\"")), "{path} is not in {officer}'s menu");
                }
            }
        }
    }
    // No session: the browser is sent to sign in, and back afterwards.
    let anonymous = ConsoleClient::anonymous(&server.base);
    let page = anonymous.get("/review/records?status=locked").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login?next=%2Freview%2Frecords%3Fstatus%3Dlocked"));
    // A wrong password is answered on the sign-in page, with the API's code.
    let wrong = anonymous.post_raw("/login", &[("officer_id", "SUP"), ("password", "wrong password")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.html.contains("invalid_credentials"), "{}", wrong.html);
    // The public pages need no one.
    for path in ["/", "/public/matters", "/public/officers", "/public/campaigns"] {
        assert_eq!(anonymous.get(path).await.status, 200, "{path}");
    }
    let officers = anonymous.get("/public/officers").await;
    assert!(officers.html.contains("GX-O1"), "U1: certificate numbers are public");
    assert!(!officers.html.contains("SUP"), "an account without a certificate is not an enforcement officer");
}

#[tokio::test]
async fn a_form_without_the_sessions_token_or_from_another_site_is_refused_and_changes_nothing() {
    let server = bureau().await;
    let supervisor = ConsoleClient::sign_in(&server.base, "SUP", PASSWORD).await;
    let task = [
        ("task_id", "T-CSRF"),
        ("entity_id", "E00001"),
        ("matter", "M01"),
        ("team", "O1, O2"),
        ("starts_on", "2026-01-01"),
        ("ends_on", "2026-12-31"),
    ];
    let before = server.snapshot();
    let without = supervisor.post_raw("/supervisor/tasks", &task).await;
    assert_eq!(without.status, 403);
    assert!(without.html.contains("csrf_mismatch"), "{}", without.html);
    let mut wrong = vec![("csrf", "not-the-token")];
    wrong.extend_from_slice(&task);
    assert_eq!(supervisor.post_raw("/supervisor/tasks", &wrong).await.status, 403);
    // Another session's token is not this one's.
    let other = ConsoleClient::sign_in(&server.base, "SUP", PASSWORD).await;
    let others_token = other.get("/").await.csrf().unwrap();
    let mut borrowed = vec![("csrf", others_token.as_str())];
    borrowed.extend_from_slice(&task);
    assert_eq!(supervisor.post_raw("/supervisor/tasks", &borrowed).await.status, 403);
    // The right token from another site's page.
    let token = supervisor.get("/").await.csrf().unwrap();
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend_from_slice(&task);
    let cross = supervisor
        .client
        .post(server.url("/supervisor/tasks"))
        .header("origin", "https://evil.example")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.text().await.unwrap().contains("cross_origin_form"));
    // Another role's session, with its own valid token.
    let reviewer = ConsoleClient::sign_in(&server.base, "REV", PASSWORD).await;
    let refused = reviewer.post("/supervisor/tasks", &task).await;
    assert_eq!(refused.status, 403);
    assert!(refused.html.contains("role_required"));
    assert_eq!(server.snapshot(), before, "nothing refused reached the database");
    // The same form, right: the task exists, as the JSON API would have made it.
    let made = supervisor.post("/supervisor/tasks", &task).await;
    assert_eq!((made.status, made.location.as_deref()), (303, Some("/supervisor/tasks/T-CSRF")), "{made:?}");
    let stored = server.store.task("T-CSRF").unwrap().unwrap();
    assert_eq!(stored.team, ["O1", "O2"]);
    assert_eq!(stored.created_by, "SUP");
    // A team the law would not send is refused with the API's code, on the form's page.
    let recused = supervisor
        .post(
            "/supervisor/tasks",
            &[
                ("task_id", "T-ONE"),
                ("entity_id", "E00001"),
                ("matter", "M01"),
                ("team", "O1"),
                ("starts_on", "2026-01-01"),
                ("ends_on", "2026-01-02"),
            ],
        )
        .await;
    assert_eq!(recused.status, 422);
    assert!(recused.html.contains("team_too_small"), "{}", recused.html);
    assert!(server.store.task("T-ONE").unwrap().is_none());
    // Reassigning: checked like a new team, and the device's team follows.
    let reassigned = supervisor.post("/supervisor/tasks/T-CSRF/team", &[("team", "O1 O3")]).await;
    assert_eq!(reassigned.status, 303, "{reassigned:?}");
    assert_eq!(server.store.task("T-CSRF").unwrap().unwrap().team, ["O1", "O3"]);
}

#[tokio::test]
async fn a_forged_foreign_or_ended_session_is_refused() {
    let server = bureau().await;
    let with_cookie = |cookie: String| {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = server.url("/supervisor/tasks");
        async move { client.get(url).header("cookie", format!("fieldsync_console={cookie}")).send().await.unwrap() }
    };
    // Garbage, and the API's own access token (another audience), are no session.
    assert_eq!(with_cookie("garbage".into()).await.status(), 303);
    let access = server.token("SUP", PASSWORD).await;
    assert_eq!(with_cookie(access).await.status(), 303, "an access token is not a console session");
    // A console token signed with another key.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header { kid: Some("k1".into()), ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256) },
        &serde_json::json!({
            "iss": "fieldsync-server", "aud": "fieldsync-console", "sub": "SUP", "iat": 0,
            "exp": 4_000_000_000i64, "roles": ["supervisor"], "sid": "s", "csrf": "x",
        }),
        &jsonwebtoken::EncodingKey::from_secret(b"not the server's key"),
    )
    .unwrap();
    assert_eq!(with_cookie(forged).await.status(), 303);
    // Signing out ends the session: a copy of its cookie, kept by someone, opens nothing afterwards.
    let cookie = session_cookie(&server, "SUP").await;
    assert_eq!(with_cookie(cookie.clone()).await.status(), 200);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let header = format!("fieldsync_console={cookie}");
    let home = client.get(server.url("/")).header("cookie", &header).send().await.unwrap().text().await.unwrap();
    let page = fieldsync_tests::console::Page { status: 200, location: None, html: home };
    let token = page.csrf().expect("the session's own token");
    let out =
        client.post(server.url("/logout")).header("cookie", &header).form(&[("csrf", token)]).send().await.unwrap();
    assert_eq!((out.status().as_u16(), out.headers()["location"].to_str().unwrap()), (303, "/login?done=logout"));
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"), "the browser forgets it");
    assert_eq!(with_cookie(cookie).await.status(), 303, "an ended session's cookie is refused");
}

/// A fresh console session's cookie value for `officer`.
async fn session_cookie(server: &TestServer, officer: &str) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = client
        .post(server.url("/login"))
        .form(&[("officer_id", officer), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    cookie.trim_start_matches("fieldsync_console=").split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_one_time_password_is_changed_first_and_the_change_ends_every_session() {
    let server = bureau().await;
    server.store.set_password("O1", &server::service::auth::hash_password("one-time-pass"), true).unwrap();
    let console = ConsoleClient::anonymous(&server.base);
    let signed = console.post_raw("/login", &[("officer_id", "O1"), ("password", "one-time-pass")]).await;
    assert_eq!((signed.status, signed.location.as_deref()), (303, Some("/password")));
    let elsewhere = console.get("/").await;
    assert_eq!((elsewhere.status, elsewhere.location.as_deref()), (303, Some("/password")));
    let page = console.get("/password").await;
    assert_eq!(page.status, 200);
    let token = page.csrf().unwrap();
    let short = console
        .post_raw(
            "/password",
            &[
                ("csrf", &token),
                ("current_password", "one-time-pass"),
                ("new_password", "short"),
                ("repeat_password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(short.html.contains("weak_password"), "{}", short.html);
    let changed = console
        .post_raw(
            "/password",
            &[
                ("csrf", &token),
                ("current_password", "one-time-pass"),
                ("new_password", "a password of my own"),
                ("repeat_password", "a password of my own"),
            ],
        )
        .await;
    assert_eq!((changed.status, changed.location.as_deref()), (303, Some("/login?done=password")));
    assert_eq!(console.get("/").await.status, 200, "signed out: the public start page");
    assert!(!console.get("/").await.html.contains("name=\"csrf\""));
    ConsoleClient::sign_in(&server.base, "O1", "a password of my own").await;
}

#[tokio::test]
async fn text_typed_into_the_console_is_escaped_on_every_page_that_shows_it() {
    let server = bureau().await;
    let supervisor = ConsoleClient::sign_in(&server.base, "SUP", PASSWORD).await;
    let html = "<script>alert(1)</script><b onmouseover=x>\"'&";
    // As askama escapes: numeric character references.
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;&#60;b onmouseover=x&#62;&#34;&#39;&#38;";
    let recusal = supervisor
        .post("/supervisor/recusals", &[("officer_id", "O3"), ("entity_id", "E00002"), ("ground", html)])
        .await;
    assert_eq!(recusal.status, 303, "{recusal:?}");
    let campaign = supervisor
        .post(
            "/supervisor/campaigns",
            &[
                ("campaign_id", "C-ESC"),
                ("matter", "M01"),
                ("period", html),
                ("starts_on", "2026-01-01"),
                ("ends_on", "2026-12-31"),
                ("count_key", "1"),
                ("joint_departments", html),
            ],
        )
        .await;
    assert_eq!(campaign.status, 303, "{campaign:?}");
    // A refused form shows what was typed, escaped too.
    let refused = supervisor
        .post(
            "/supervisor/tasks",
            &[
                ("entity_id", html),
                ("matter", "M01"),
                ("team", html),
                ("starts_on", "2026-01-01"),
                ("ends_on", "2026-01-02"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    let anonymous = ConsoleClient::anonymous(&server.base);
    let pages = [
        supervisor.get("/supervisor/recusals").await,
        supervisor.get("/supervisor/inspectors").await,
        supervisor.get("/supervisor/campaigns").await,
        supervisor.get("/supervisor/campaigns/C-ESC").await,
        anonymous.get("/public/campaigns").await,
        anonymous.get("/public/campaigns/C-ESC").await,
        refused,
    ];
    let mut shown = 0;
    for page in pages {
        assert!(!page.html.contains("<script>alert") && !page.html.contains("<b onmouseover"), "{}", page.html);
        shown += usize::from(page.html.contains(escaped));
    }
    assert!(shown >= 4, "the typed text is shown, escaped, on the pages that show it ({shown})");
}

#[tokio::test]
async fn a_supervisor_creates_and_draws_a_campaign_and_publishes_nothing_before_an_inspection() {
    let server = bureau().await;
    let supervisor = ConsoleClient::sign_in(&server.base, "SUP", PASSWORD).await;
    let created = supervisor
        .post(
            "/supervisor/campaigns",
            &[
                ("campaign_id", "C-1"),
                ("matter", "M01"),
                ("period", "2026-Q4"),
                ("starts_on", "2026-10-01"),
                ("ends_on", "2026-12-31"),
                ("count_key", "1"),
                ("count_general", "1"),
                ("team_size", "2"),
                ("max_tasks_per_officer", "2"),
            ],
        )
        .await;
    assert_eq!((created.status, created.location.as_deref()), (303, Some("/supervisor/campaigns/C-1")), "{created:?}");
    let page = supervisor.get("/supervisor/campaigns/C-1").await;
    let commitment = server.store.campaign("C-1").unwrap().unwrap().published.commitment;
    assert!(page.html.contains(&commitment), "the commitment is shown before the draw");
    assert!(page.html.contains("id=\"draw-form\""));
    let drawn = supervisor.post("/supervisor/campaigns/C-1/draw", &[("public_value", "2026-11-30 福彩 123")]).await;
    assert_eq!(drawn.status, 303, "{drawn:?}");
    let page = supervisor.get("/supervisor/campaigns/C-1").await;
    assert!(page.html.contains("2026-11-30 福彩 123"));
    let tasks = server.store.campaign_tasks("C-1").unwrap();
    assert_eq!(tasks.len(), 2);
    for task in &tasks {
        assert!(page.html.contains(&task.task_id), "the draw's task {} is listed", task.task_id);
    }
    // A second draw is refused with the API's code, on the campaign's page.
    let again = supervisor.post("/supervisor/campaigns/C-1/draw", &[]).await;
    assert_eq!(again.status, 409, "{again:?}");
    // Nothing is inspected: publishing is refused, and the campaign's tasks cannot be reassigned.
    let publish =
        supervisor.post(&format!("/supervisor/campaigns/C-1/results/{}/publish", tasks[0].task_id), &[]).await;
    assert!(publish.status >= 400 && publish.status < 500, "{publish:?}");
    let reassign = supervisor.post(&format!("/supervisor/tasks/{}/team", tasks[0].task_id), &[("team", "O1 O2")]).await;
    assert_eq!(reassign.status, 409);
    assert!(reassign.html.contains("drawn_task"));
    // The drawn tasks are confidential until the draw is public.
    let list = supervisor.get("/supervisor/tasks").await;
    assert!(list.html.contains(&tasks[0].task_id) && list.html.contains("badge warn"), "{}", list.html);
}

/// The real server program on a free port, over a data folder seeded as [`bureau`] seeds one
/// (plus `officers` more certified officers and `entities` entities); the child is killed when
/// the guard drops.
struct RealServer {
    child: std::process::Child,
    server: TestServer,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn real_server(officers: usize, entities: usize) -> RealServer {
    use server::store::sqlite::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&server::store::sqlite::database_path(dir.path())).unwrap();
    store.add_signing_key(server::service::admin::new_signing_key(server::now_ms())).unwrap();
    let seeding = TestServer::external(String::new(), store, dir);
    seeding.account("SUP", PASSWORD, &["supervisor"]);
    seeding.account("REV", PASSWORD, &["reviewer"]);
    seeding.account("ADM", PASSWORD, &["admin"]);
    for n in 1..=officers {
        let officer = format!("O{n}");
        seeding.account(&officer, PASSWORD, &["officer"]);
        seeding.certificate(&officer);
    }
    seeding.entities(entities);
    let matters = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/matters.json")).unwrap();
    let list = server::service::campaigns::parse_matters(&matters).unwrap();
    seeding.store.import_matters(&list, "test", server::now_ms()).unwrap();
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let (child, address) = spawn_server(program, seeding.dir.path(), "127.0.0.1:0", &[]).expect("serves");
    let server = TestServer::external(format!("http://{address}"), seeding.store.clone(), seeding.dir);
    RealServer { child, server }
}

/// Where the browser scenes leave their screenshots for a person to look at.
fn screenshots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("console-screenshots")
}

#[tokio::test]
async fn in_a_browser_each_role_signs_in_and_sees_only_its_pages() {
    let real = real_server(2, 10);
    let base = real.server.base.clone();
    let browser = fieldsync_tests::browser::Browser::start(&screenshots(), "zh-CN").await;
    browser.goto(&format!("{base}/")).await;
    assert!(browser.text("main h1").await.contains("执法"), "Chinese first");
    browser.screenshot("public-start").await;
    browser.goto(&format!("{base}/public/officers")).await;
    assert!(browser.text("#officers").await.contains("GX-O1"));
    browser.screenshot("public-officers").await;
    let mains = [
        ("SUP", "/supervisor/campaigns", "supervisor"),
        ("REV", "/review/records", "reviewer"),
        ("ADM", "/admin/officers", "admin"),
    ];
    for (officer, main_page, role) in mains {
        browser.sign_in(&base, officer, PASSWORD).await;
        let menu = browser.text("nav.menu").await;
        for (_, other_page, other_role) in mains {
            let link =
                browser.client.find(fantoccini::Locator::Css(&format!("nav.menu a[href=\"{other_page}\"]"))).await;
            assert_eq!(link.is_ok(), other_role == role, "{officer}'s menu and {other_page}: {menu}");
        }
        browser.click(&format!("nav.menu a[href=\"{main_page}\"]")).await;
        browser.find("main h1").await;
        assert_eq!(browser.path().await, main_page);
        browser.screenshot(&format!("{role}-main")).await;
        // Another role's page, typed into the address bar, is refused by the server.
        let other = mains.iter().find(|(_, _, r)| *r != role).unwrap().1;
        browser.goto(&format!("{base}{other}")).await;
        let code = browser.find("#error-code").await.attr("data-code").await.unwrap();
        assert_eq!(code.as_deref(), Some("role_required"), "{officer} on {other}");
        // The browser logs the refusal's own status, and nothing else.
        let refusal = browser.console_errors().await;
        assert!(refusal.iter().all(|e| e.contains(other) && e.contains("403")), "{refusal:?}");
        browser.goto(&format!("{base}/")).await;
        browser.click("#logout").await;
        browser.find("#login-link").await;
        let errors = browser.console_errors().await;
        assert!(errors.is_empty(), "{errors:?}");
    }
    browser.stop().await;
    // English when the browser asks for it.
    let english = fieldsync_tests::browser::Browser::start(&screenshots(), "en-US").await;
    english.goto(&format!("{base}/login")).await;
    assert_eq!(english.text("#sign-in").await, "Sign in");
    english.stop().await;
}

#[tokio::test]
async fn in_a_browser_a_supervisor_draws_a_campaign_and_the_teams_devices_receive_its_tasks() {
    let real = real_server(6, 60);
    let base = real.server.base.clone();
    let browser = fieldsync_tests::browser::Browser::start(&screenshots(), "zh-CN").await;
    browser.sign_in(&base, "SUP", PASSWORD).await;
    browser.goto(&format!("{base}/supervisor/campaigns")).await;
    let today = sync_core::campaigns::date_of_ms(server::now_ms()).unwrap();
    let ends = sync_core::campaigns::date_of_ms(server::now_ms() + 30 * DAY).unwrap();
    browser.fill("#campaign_id", "C-BROWSER").await;
    browser.fill("#period", "演示期").await;
    // Date inputs take the date as the browser's locale types it; set their values directly.
    for (id, value) in [("starts_on", today.to_string()), ("ends_on", ends.to_string())] {
        browser
            .client
            .execute(&format!("document.getElementById('{id}').value = arguments[0]"), vec![value.into()])
            .await
            .unwrap();
    }
    browser.fill("#count_key", "2").await;
    browser.fill("#max_tasks_per_officer", "2").await;
    browser.click("#create-campaign").await;
    let commitment = browser.text("#commitment").await;
    assert_eq!(commitment.len(), 64, "the commitment is published before the draw: {commitment}");
    browser.screenshot("supervisor-campaign-committed").await;
    browser.fill("#public_value", "福彩3D 2026-12-03 123").await;
    browser.click("#draw").await;
    browser.find("#draw-tasks").await;
    browser.screenshot("supervisor-campaign-drawn").await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    browser.stop().await;
    let tasks = real.server.store.campaign_tasks("C-BROWSER").unwrap();
    assert_eq!(tasks.len(), 2);
    // Each drawn team's officers' devices receive their task at their next sync.
    let options = field_client::remote::SyncOptions::default();
    for task in &tasks {
        let stored = real.server.store.task(&task.task_id).unwrap().unwrap();
        for officer in &stored.team {
            let dir = tempfile::tempdir().unwrap();
            let mut device = field_client::remote::enroll(dir.path(), &base, officer, PASSWORD).await.unwrap();
            device.sync(&options, |_| {}).await.unwrap();
            let received: Vec<String> = device.tasks().unwrap().into_iter().map(|t| t.task.task_id).collect();
            assert!(received.contains(&task.task_id), "{officer} received {received:?}");
        }
    }
}

#[tokio::test]
async fn in_a_browser_the_demos_pages_load_with_no_error() {
    use server::demo::{REVIEWER, REVIEWER_PASSWORD, SUPERVISOR, SUPERVISOR_PASSWORD};
    let data = tempfile::tempdir().unwrap();
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let made = std::process::Command::new(program)
        .arg("--data")
        .arg(data.path())
        .args(["demo", "--no-serve", "--listen", "127.0.0.1:0", "--records", "6"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (mut child, address) = spawn_server(program, data.path(), "127.0.0.1:0", &[]).expect("serves");
    let base = format!("http://{address}");
    let browser = fieldsync_tests::browser::Browser::start(&screenshots(), "zh-CN").await;
    browser.goto(&format!("{base}/")).await;
    browser.find("#login-link").await;
    browser.screenshot("demo-start").await;
    for path in ["/public/matters", "/public/officers", "/public/campaigns"] {
        browser.goto(&format!("{base}{path}")).await;
        browser.find("main h1").await;
    }
    browser.screenshot("demo-public-campaigns").await;
    for (officer, password, pages) in [
        (SUPERVISOR, SUPERVISOR_PASSWORD, ["/supervisor/campaigns", "/supervisor/tasks"]),
        (REVIEWER, REVIEWER_PASSWORD, ["/review/records", "/review/quarantine"]),
    ] {
        browser.sign_in(&base, officer, password).await;
        for path in pages {
            browser.goto(&format!("{base}{path}")).await;
            browser.find("main h1").await;
            assert!(browser.client.find(fantoccini::Locator::Css("#error-code")).await.is_err(), "{path}");
        }
        browser.screenshot(&format!("demo-{officer}")).await;
        browser.goto(&format!("{base}/")).await;
        browser.click("#logout").await;
        browser.find("#login-link").await;
    }
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "the demo's pages log no error: {errors:?}");
    browser.stop().await;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn the_sign_in_form_has_the_apis_limits() {
    let server = TestServer::start_with(|config| config.auth_attempts_per_minute_per_address = 3).await;
    server.account("SUP", PASSWORD, &["supervisor"]);
    let console = ConsoleClient::anonymous(&server.base);
    for _ in 0..3 {
        let wrong = console.post_raw("/login", &[("officer_id", "SUP"), ("password", "wrong password")]).await;
        assert_eq!(wrong.status, 401);
    }
    // The address's limit holds for the right password too, as on `/v1/auth/login`.
    let limited = console
        .client
        .post(server.url("/login"))
        .form(&[("officer_id", "SUP"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.text().await.unwrap().contains("rate_limited"));
    assert_eq!(server.login("SUP", PASSWORD, None).await.status(), 429, "one budget for the API and the console");
}
