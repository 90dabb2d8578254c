//! The `fieldsync-server` binary as an operator uses it: admin commands on a fresh data folder,
//! serving on a real port, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fieldsync-binary-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fieldsync-server"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn admin_commands_set_up_a_bureau_and_refuse_bad_input_with_a_non_zero_exit() {
    let data = data_dir("admin");
    let init = run(&data, &["init"]);
    assert!(init.status.success(), "{}", text(&init));
    assert!(text(&init).contains("one-time password: "));
    let again = run(&data, &["init"]);
    assert!(!again.status.success(), "a second administrator by init is refused");

    let add = run(&data, &["officer", "add", "O0001", "杨超", "--unit", "柳城县大队"]);
    assert!(add.status.success(), "{}", text(&add));
    let issue = run(
        &data,
        &[
            "certificate",
            "issue",
            "GX20214502090001",
            "O0001",
            "--authority",
            "广西壮族自治区人民政府",
            "--valid-from",
            "2021-02-22",
            "--valid-to",
            "2026-12-31",
        ],
    );
    assert!(issue.status.success(), "{}", text(&issue));
    let suspend = run(&data, &["certificate", "suspend", "GX20214502090001", "--reason", "停职"]);
    assert!(suspend.status.success(), "{}", text(&suspend));
    let list = run(&data, &["certificate", "list"]);
    assert!(text(&list).contains("GX20214502090001\tO0001") && text(&list).contains("Suspended"), "{}", text(&list));
    assert!(!run(&data, &["certificate", "suspend", "NOPE"]).status.success(), "an unknown certificate");
    assert!(!run(&data, &["role", "grant", "O0001", "king"]).status.success(), "an unknown role");
    let bad_date = run(&data, &["certificate", "renew", "GX20214502090001", "--valid-to", "2031-13-01"]);
    assert!(!bad_date.status.success());

    let entities = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/entities.csv");
    let import = run(&data, &["entities", "import", entities]);
    assert!(text(&import).contains("imported 3000 entities"), "{}", text(&import));
    let broken = data.join("broken.csv");
    let csv = std::fs::read_to_string(entities).unwrap();
    let mut lines: Vec<&str> = csv.lines().take(3).collect();
    lines[2] = "E99999,没有信用代码的公司,,450223,鹿寨县,x,key,某,地址,24.3,109.6,";
    std::fs::write(&broken, lines.join("\n")).unwrap();
    let refused = run(&data, &["entities", "import", broken.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("line 3"), "{}", text(&refused));

    let backup = data.join("copy.sqlite3");
    assert!(run(&data, &["backup", "--to", backup.to_str().unwrap()]).status.success());
    let check = run(&data, &["check"]);
    assert!(check.status.success() && text(&check).contains("database: ok"), "{}", text(&check));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn serve_answers_on_its_port_and_exits_zero_on_sigterm() {
    let data = data_dir("serve");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldsync-server"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The server logs the address it listens on; read until that line.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-request-id"), "{answer}");
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(data.join("fieldsync.sqlite3").exists());
    let _ = std::fs::remove_dir_all(&data);
}
