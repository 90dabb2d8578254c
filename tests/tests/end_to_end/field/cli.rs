//! The `fieldsync` program as an officer (or a script) drives it: a whole inspection by two
//! officers on two devices, and every mistake answered with its code and a non-zero exit.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{PASSWORD, bureau};

/// What one run of the program printed, and how it ended.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert!(self.success, "failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// The error code of a failed run (`--json` prints the error on stderr).
    fn error_code(&self) -> String {
        assert!(!self.success, "succeeded: {}", self.stdout);
        let error: Value = serde_json::from_str(self.stderr.trim()).unwrap_or_else(|e| panic!("{e}: {}", self.stderr));
        error["code"].as_str().unwrap().to_string()
    }
}

/// Runs `fieldsync --device DIR [--json] ARGS` off the test's runtime, so that the in-process
/// server keeps serving.
async fn fieldsync(device: &Path, json: bool, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync"));
    command.arg("--device").arg(device).args(args).env("FIELDSYNC_PASSWORD", PASSWORD);
    if json {
        command.arg("--json");
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_officers_script_an_inspection_with_the_cli() {
    let server = bureau().await;
    let folder = tempfile::tempdir().unwrap();
    let (one, two) = (folder.path().join("one"), folder.path().join("two"));
    let run = |device: &Path, args: &[&str]| {
        let device = device.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move { fieldsync(&device, true, &args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };

    // Before enrollment nothing works, and says why.
    assert_eq!(run(&one, &["tasks"]).await.error_code(), "not_enrolled");
    let enrolled = run(&one, &["enroll", "--server", &server.base, "--officer", "O1"]).await.json();
    assert_eq!(enrolled["officer_id"], "O1");
    assert_eq!(
        run(&one, &["enroll", "--server", &server.base, "--officer", "O1"]).await.error_code(),
        "already_enrolled"
    );
    run(&two, &["enroll", "--server", &server.base, "--officer", "O2"]).await.json();
    assert_eq!(run(&one, &["sync"]).await.json()["tasks"], 1);
    let tasks = run(&one, &["tasks"]).await.json();
    assert_eq!(tasks[0]["task"]["task_id"], "T1");

    // The record, offline from here on, with each mistake an officer can make.
    assert_eq!(run(&one, &["record", "new", "--task", "T9"]).await.error_code(), "unknown_task");
    let record_id =
        run(&one, &["record", "new", "--task", "T1"]).await.json()["record_id"].as_str().unwrap().to_string();
    run(&one, &["record", "check", "PERMIT-POSTED", "compliant", "--note", "许可证正本悬挂"]).await.json();
    assert_eq!(run(&one, &["record", "check", "PERMIT-POSTED", "maybe"]).await.error_code(), "invalid_input");
    run(&one, &["record", "observe", "废水处理设施正常运行。"]).await.json();
    run(&one, &["record", "set", "location", "22.817,108.366"]).await.json();
    assert_eq!(run(&one, &["record", "set", "location", "north"]).await.error_code(), "invalid_input");
    run(&one, &["record", "set", "conclusion", "未发现环境违法行为"]).await.json();
    run(&one, &["record", "sample", "S-01", "总排口废水"]).await.json();
    run(&one, &["record", "measure", "sampling", "--note", "采集废水样品一份"]).await.json();
    assert_eq!(run(&one, &["record", "measure", "arrest"]).await.error_code(), "invalid_input");
    run(&one, &["record", "recusal", "不申请回避"]).await.json();
    let missing = folder.path().join("missing.jpg");
    assert_eq!(run(&one, &["record", "photo", missing.to_str().unwrap()]).await.error_code(), "photo_missing");
    let text = folder.path().join("notes.jpg");
    std::fs::write(&text, "现场笔记").unwrap();
    assert_eq!(run(&one, &["record", "photo", text.to_str().unwrap()]).await.error_code(), "not_an_image");
    let photo = folder.path().join("outfall.png");
    image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 120]))
        .save_with_format(&photo, image::ImageFormat::Png)
        .unwrap();
    let added = run(&one, &["record", "photo", photo.to_str().unwrap(), "--caption", "总排口"]).await.json();
    assert_eq!(added["sha256"].as_str().unwrap().len(), 64);
    run(&one, &["log", "add", "arrive"]).await.json();
    run(&one, &["log", "add", "recording-started", "--text", "开始录像"]).await.json();
    assert_eq!(run(&one, &["log", "add", "recording-stopped"]).await.error_code(), "invalid_input", "R3: a reason");
    run(&one, &["record", "present", "O1", "--certificate-shown"]).await.json();
    assert_eq!(run(&one, &["record", "present", "O3", "--certificate-shown"]).await.error_code(), "not_on_team");
    let alone = run(&one, &["record", "sign"]).await;
    assert_eq!(alone.error_code(), "edit_refused");
    assert!(alone.stderr.contains("\"rule\":\"P1\""), "{}", alone.stderr);
    run(&one, &["record", "present", "O2", "--certificate-shown"]).await.json();
    let person = run(&one, &["record", "party", "add", "韦某", "--role", "legal_representative"]).await.json();
    let person_id = person["person_id"].as_str().unwrap().to_string();
    run(&one, &["record", "party", "signs", &person_id]).await.json();
    // C7: not before the record is complete, each missing item named.
    let incomplete = run(&one, &["record", "sign"]).await;
    assert_eq!(incomplete.error_code(), "edit_refused");
    assert!(incomplete.stderr.contains("\"missing\":[\"header/ended_at_ms\"]"), "{}", incomplete.stderr);
    run(&one, &["record", "set", "ended_at", "now"]).await.json();
    let signed = run(&one, &["record", "sign"]).await.json();
    assert_eq!((signed["signed"].as_bool(), signed["locked"].as_bool()), (Some(true), Some(false)));
    let log = run(&one, &["log", "show"]).await.json();
    let kinds: Vec<&str> =
        log["entries"].as_array().unwrap().iter().map(|e| e["entry"]["kind"]["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["photo_taken", "arrive", "recording_started", "certificates_shown", "certificates_shown", "signed"],
        "{log}"
    );
    assert_eq!(log["findings"], serde_json::json!([]), "{log}");
    let shown = run(&one, &["record", "show"]).await.json();
    assert_eq!(shown["status"], "signing");
    assert_eq!(shown["photos"][0]["caption"], "总排口");
    assert_eq!(shown["people_present"][0]["signature"]["state"], "signed");
    assert_eq!(shown["samples"][0]["sample_id"], "S-01");
    assert_eq!(shown["measures"][0]["kind"], "sampling");
    assert_eq!(
        (shown["recusal"]["asked"].as_bool(), shown["recusal"]["answer"].as_str()),
        (Some(true), Some("不申请回避"))
    );
    assert_eq!(run(&one, &["record", "observe", "补充"]).await.error_code(), "edit_refused");

    // Status before and after the sync, in text and JSON.
    let before = run(&one, &["status"]).await.json();
    assert_eq!(before["pending"][0], record_id.as_str());
    run(&one, &["sync"]).await.json();
    let after = run(&one, &["status"]).await.json();
    assert_eq!(after["pending"].as_array().unwrap().len(), 0, "{after}");
    assert_eq!(after["missing_on_server"].as_array().unwrap().len(), 0, "{after}");
    let text = fieldsync(&one, false, &["status"]).await;
    assert!(text.success && text.stdout.contains("pending: none"), "{}", text.stdout);

    // The second officer signs on the other device: the record locks everywhere.
    run(&two, &["sync"]).await.json();
    run(&two, &["record", "select", &record_id]).await.json();
    let locked = run(&two, &["record", "sign"]).await.json();
    assert_eq!(locked["locked"], true);
    run(&two, &["sync"]).await.json();
    run(&one, &["sync"]).await.json();
    assert_eq!(run(&one, &["record", "show"]).await.json()["status"], "locked");
    let reviewer = server.token("REV", PASSWORD).await;
    let on_server: Value = server.get(&format!("/v1/records/{record_id}"), &reviewer).await.json().await.unwrap();
    assert_eq!(on_server["status"], "locked");
    assert_eq!(on_server, run(&two, &["record", "show"]).await.json());
}

/// Anyone holding a published draw recomputes it with `fieldsync verify-draw`, offline; a draw
/// whose result was altered after the fact (a team member swapped) is named a mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_draw_is_verified_offline_and_an_altered_one_is_not() {
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../sync-core/tests/data/draw-v1.json");
    let nowhere = tempfile::tempdir().unwrap();
    let verified = fieldsync(nowhere.path(), true, &["verify-draw", golden]).await.json();
    assert_eq!(verified["matches"], true, "{verified}");
    assert!(verified["tasks"].as_u64().unwrap() > 0);

    let mut published: Value = serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
    let team = published["draw"]["tasks"][0]["team"].as_array_mut().unwrap();
    team[0] = Value::String("O0099".into());
    let altered = nowhere.path().join("altered.json");
    std::fs::write(&altered, published.to_string()).unwrap();
    let refused = fieldsync(nowhere.path(), true, &["verify-draw", altered.to_str().unwrap()]).await;
    assert_eq!(refused.error_code(), "draw_mismatch");
    assert!(refused.stderr.contains("task 0"), "{}", refused.stderr);

    // A seed that does not hash to the commitment, and no commitment at all.
    let mut published: Value = serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
    published["commitment"] = Value::String("00".repeat(32));
    std::fs::write(&altered, published.to_string()).unwrap();
    let forged = fieldsync(nowhere.path(), true, &["verify-draw", altered.to_str().unwrap()]).await;
    assert_eq!(forged.error_code(), "commitment_invalid");
    published.as_object_mut().unwrap().remove("commitment");
    std::fs::write(&altered, published.to_string()).unwrap();
    let bare = fieldsync(nowhere.path(), true, &["verify-draw", altered.to_str().unwrap()]).await;
    assert_eq!(bare.error_code(), "commitment_missing");
    let inputs_only =
        fieldsync(nowhere.path(), true, &["verify-draw", altered.to_str().unwrap(), "--without-commitment"]).await;
    assert_eq!(inputs_only.json()["commitment_checked"], false);

    let mut published: Value = serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
    published["inputs"]["public_value"] = Value::String("another lottery number".into());
    std::fs::write(&altered, published.to_string()).unwrap();
    let moved = fieldsync(nowhere.path(), true, &["verify-draw", altered.to_str().unwrap()]).await;
    assert_eq!(moved.error_code(), "draw_mismatch", "another input, another draw");
}
