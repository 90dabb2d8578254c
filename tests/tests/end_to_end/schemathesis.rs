//! Schemathesis, the property-based fuzzer driven by the served `/openapi.json`, against the real
//! server program as the administrator: every check (`--checks all`), zero failures allowed.
//! It runs when the `st` program is installed (`.ci/run` installs it from PyPI; elsewhere
//! `pip install schemathesis`) and says it was skipped when it is not.
//! `FIELDSYNC_SCHEMATHESIS_SECONDS` sets its time budget (60 s by default); its seed is fixed.

use std::process::Command;

use serde_json::{Value, json};

use fieldsync_tests::harness::spawn_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_mismatch_between_the_document_and_the_server() {
    if !Command::new("st").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("schemathesis (`st`) is not installed: skipped (pip install schemathesis)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
    let init = Command::new(program).arg("--data").arg(data.path()).arg("init").output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let stdout = String::from_utf8(init.stdout).unwrap();
    let one_time = stdout.lines().find_map(|l| l.strip_prefix("one-time password: ")).unwrap().to_string();
    let (mut child, address) = spawn_server(program, data.path(), "127.0.0.1:0", &[]).expect("serving");
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let login = |password: String| {
        let client = client.clone();
        let url = format!("{base}/v1/auth/login");
        async move {
            let body: Value = client
                .post(url)
                .json(&json!({ "officer_id": "admin", "password": password }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let first = login(one_time.clone()).await;
    let password = "correct horse battery staple";
    let changed = client
        .post(format!("{base}/v1/auth/password"))
        .bearer_auth(&first)
        .json(&json!({ "current_password": one_time, "new_password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let token = login(password.to_string()).await;
    let seconds = std::env::var("FIELDSYNC_SCHEMATHESIS_SECONDS").unwrap_or_else(|_| "60".into());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis/schemathesis.toml");
    let run = tokio::task::spawn_blocking({
        let (base, token, folder) = (base.clone(), token.clone(), data.path().to_path_buf());
        move || {
            Command::new("st")
                // Its cache of crashes goes into the test's folder, not the source tree.
                .current_dir(folder)
                .args(["--no-color", "--config-file", config, "run"])
                .arg(format!("{base}/openapi.json"))
                .args(["--header", &format!("Authorization: Bearer {token}")])
                // A fixed seed: the run starts with the same cases everywhere; how far it gets in
                // its time depends on the machine (a fixed number of cases took over ten minutes).
                .args(["--checks", "all", "--workers", "1", "--seed", "20261203", "--max-time", &seconds])
                // Ending the administrator's session or changing its password would end the run.
                .args(["--exclude-path", "/v1/auth/logout", "--exclude-path", "/v1/auth/password"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "schemathesis found failures:\n{report}\n{}", String::from_utf8_lossy(&run.stderr));
}
