//! The transparency log's signing key outside the database (issue 16 item 3, first part): moved
//! out by `log-key export`, needed to serve, and a key swapped in the database (or a file of
//! another log) refused by `serve` and named by `check`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fieldsync_tests::harness::spawn_server;

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"))
}

/// Runs `fieldsync-server --data DATA ARGS`.
fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(program()).arg("--data").arg(data).args(args).env_remove("FIELDSYNC_LOG_KEY_FILE").output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// One value of the log's identity row, through a connection of the test's own.
fn identity_row(data: &Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(data.join("fieldsync.sqlite3")).unwrap();
    conn.query_row(&format!("SELECT {sql} FROM log_identity"), [], |row| row.get::<_, rusqlite::types::Value>(0))
        .map(|value| format!("{value:?}"))
        .unwrap()
}

#[tokio::test]
async fn a_log_key_moved_out_of_the_database_is_needed_to_serve_and_a_swapped_one_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key: PathBuf = keys.path().join("log.key");
    let key_arg = key.to_str().unwrap();
    assert!(run(data.path(), &["init"]).status.success());
    let shown = text(&run(data.path(), &["log-key", "show"]));
    assert!(shown.contains("secret key: in the database"), "{shown}");

    let exported = run(data.path(), &["log-key", "export", "--to", key_arg]);
    assert!(exported.status.success(), "{}", text(&exported));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "the owner's alone");
    }
    assert_eq!(identity_row(data.path(), "secret IS NULL"), "Integer(1)", "the database holds no secret");
    assert_eq!(identity_row(data.path(), "length(public_key)"), "Integer(32)");
    let again = run(data.path(), &["log-key", "export", "--to", keys.path().join("again.key").to_str().unwrap()]);
    assert!(!again.status.success() && text(&again).contains("already outside"), "{}", text(&again));

    // Without the key the server does not start; with it, it signs checkpoints that open with
    // the key it publishes.
    assert!(spawn_server(program(), data.path(), "127.0.0.1:0", &[]).is_none(), "no key, no server");
    let (mut child, address) =
        spawn_server(program(), data.path(), "127.0.0.1:0", &["--log-key-file", key_arg]).expect("serves with its key");
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{address}{path}")).send();
    let note = get("/v1/log/checkpoint").await.unwrap().text().await.unwrap();
    let published = get("/v1/log/key").await.unwrap().text().await.unwrap();
    let (origin, public) = sync_core::checkpoint::parse_verifier_key(published.trim()).unwrap();
    sync_core::checkpoint::open_note(&note, &[(origin.as_str(), public)]).expect("signed with the log's key");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(run(data.path(), &["--log-key-file", key_arg, "check"]).status.success());

    // A key file of another log is refused, by `serve` and by `check`.
    let other = keys.path().join("other.key");
    std::fs::write(&other, format!("{}\n", hex::encode([9u8; 32]))).unwrap();
    let other_arg = other.to_str().unwrap();
    assert!(spawn_server(program(), data.path(), "127.0.0.1:0", &["--log-key-file", other_arg]).is_none());
    let checked = run(data.path(), &["--log-key-file", other_arg, "check"]);
    assert!(!checked.status.success() && text(&checked).contains("is not this log's key"), "{}", text(&checked));

    // An insider with the database swaps the log's key for one of their own (and could re-sign
    // every checkpoint with it): the operator's key file no longer matches, and both refuse.
    let insider = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let conn = rusqlite::Connection::open(data.path().join("fieldsync.sqlite3")).unwrap();
    conn.execute(
        "UPDATE log_identity SET public_key = ?1, secret = ?2",
        rusqlite::params![insider.verifying_key().as_bytes().as_slice(), insider.to_bytes().as_slice()],
    )
    .unwrap();
    drop(conn);
    assert!(spawn_server(program(), data.path(), "127.0.0.1:0", &["--log-key-file", key_arg]).is_none());
    let checked = run(data.path(), &["--log-key-file", key_arg, "check"]);
    assert!(!checked.status.success() && text(&checked).contains("is not this log's key"), "{}", text(&checked));

    let unreadable = keys.path().join("short.key");
    std::fs::write(&unreadable, "abc").unwrap();
    let refused = run(data.path(), &["--log-key-file", unreadable.to_str().unwrap(), "check"]);
    assert!(!refused.status.success() && text(&refused).contains("64 hex digits"), "{}", text(&refused));
}
