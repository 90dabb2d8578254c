//! Processes killed with SIGKILL: the server in the middle of a device's sync, and the device
//! program while it writes its store. Both run as the real programs (`e2e-fieldsync-server`,
//! `e2e-fieldsync`, the same code as `fieldsync-server` and `fieldsync`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use field_client::Device;
use field_client::remote::SyncOptions;
use fieldsync_tests::harness::{TestServer, spawn_server};
use server::store::prelude::*;
use server::store::sqlite::SqliteStore;
use sync_core::document::Edit;

use super::{PASSWORD, options, phone, server_matches};

/// The server program on a data folder, as its own process.
struct ServerProcess {
    child: Child,
    address: String,
}

impl ServerProcess {
    /// Starts `fieldsync-server serve` on `data` at `listen` and waits for its address.
    fn start(data: &Path, listen: &str) -> Self {
        Self::try_start(data, listen).expect("the server starts")
    }

    /// [`ServerProcess::start`], or `None` if the server exits first (its address is taken).
    fn try_start(data: &Path, listen: &str) -> Option<Self> {
        let (child, address) = spawn_server(Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server")), data, listen, &[])?;
        Some(Self { child, address })
    }

    fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data folder with the bureau of `super::bureau`, made through the store as
/// `fieldsync-server init` and the admin commands would.
pub(super) fn bureau_folder() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&server::store::sqlite::database_path(dir.path())).unwrap();
    store.add_signing_key(server::service::admin::new_signing_key(server::now_ms())).unwrap();
    let seeding = TestServer::external(String::new(), store, dir);
    seeding.entities(5);
    for officer in ["O1", "O2"] {
        seeding.account(officer, PASSWORD, &["officer"]);
        seeding.certificate(officer);
    }
    seeding.account("REV", PASSWORD, &["reviewer"]);
    seeding.seed_task("T1", "E00001", &["O1", "O2"]);
    seeding
}

/// `n` records made offline on `device`, each with a line of observations.
fn records(device: &mut Device, n: usize) {
    for i in 0..n {
        let record_id = device.new_record("T1").unwrap();
        device.add_officer_present(&record_id, "O1", true).unwrap();
        device.edit(&record_id, Edit::AppendObservations(format!("第{i}份。"))).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_mid_sync_loses_nothing_it_acknowledged() {
    let folder = bureau_folder();
    let data: PathBuf = folder.dir.path().to_path_buf();
    let mut running = ServerProcess::start(&data, "127.0.0.1:0");
    let address = running.address.clone();
    let (mut a, _a_dir) = phone(&running.base(), "O1").await;
    let (mut b, _b_dir) = phone(&running.base(), "O2").await;
    a.sync(&options(), |_| {}).await.unwrap();
    records(&mut a, 40);

    // The server dies after the second answered round; the sync gives up with a network error.
    let few = SyncOptions {
        max_attempts: 2,
        session: sync_core::session::SessionConfig { max_documents_per_request: 4, max_request_bytes: 1 << 20 },
        ..options()
    };
    let killed = a
        .sync(&few, |progress| {
            if progress.requests == 2 {
                running.kill();
            }
        })
        .await;
    assert_eq!(killed.err().unwrap().code(), "network");
    let status = a.status().unwrap();
    let acknowledged: Vec<String> = a
        .records()
        .unwrap()
        .into_iter()
        .map(|r| r.record_id)
        .filter(|id| !status.missing_on_server.contains(id))
        .collect();
    assert!(!acknowledged.is_empty() && !status.missing_on_server.is_empty(), "the kill came mid-sync");

    // Restarted on the same data and address: what the device saw acknowledged is there as the
    // device has it; then everything converges.
    let restarted = restart(&data, &address);
    let server = TestServer::external(restarted.base(), folder.store.clone(), tempfile::tempdir().unwrap());
    let reviewer = super::reviewer(&server).await;
    for record_id in &acknowledged {
        assert_eq!(super::server_record(&server, &reviewer, record_id).await, a.record(record_id).unwrap());
    }
    let resumed = a.sync(&options(), |_| {}).await.unwrap();
    assert!(resumed.uploaded.iter().all(|id| !acknowledged.contains(id)), "nothing the server had is sent again");
    assert_eq!(resumed.uploaded.len(), 40 - acknowledged.len(), "and everything else is");
    assert!(a.status().unwrap().missing_on_server.is_empty());
    server_matches(&server, &reviewer, &a).await;
    b.sync(&options(), |_| {}).await.unwrap();
    assert_eq!(b.records().unwrap(), a.records().unwrap());
    assert_eq!(folder.store.integrity_check().unwrap(), Vec::<String>::new(), "the database is sound");
}

/// The server on `address` again; the port may take a moment to be free.
fn restart(data: &Path, address: &str) -> ServerProcess {
    for _ in 0..50 {
        if let Some(server) = ServerProcess::try_start(data, address) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{address} stays taken");
}

fn fieldsync(device: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync"))
        .arg("--device")
        .arg(device)
        .arg("--json")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_program_killed_while_writing_reopens_with_everything_committed() {
    let server = super::bureau().await;
    let (mut a, a_dir) = phone(&server.base, "O1").await;
    a.sync(&options(), |_| {}).await.unwrap();
    let record_id = a.new_record("T1").unwrap();
    drop(a);

    // `fieldsync record observe` started again and again and killed after a growing delay
    // (a debug build runs one in a few milliseconds): some finish, some die before, during or
    // after their write.
    let mut finished = Vec::new();
    for n in 0..60u64 {
        let line = format!("[{n}]");
        let dir = a_dir.path().to_path_buf();
        let record = record_id.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut child = fieldsync(&dir, &["record", "--record", &record, "observe", &line]);
            std::thread::sleep(Duration::from_micros(n * 120));
            let _ = child.kill();
            child.wait().unwrap().success()
        })
        .await
        .unwrap();
        if done {
            finished.push(n);
        }
    }
    let device = Device::open(a_dir.path()).unwrap();
    device.store().check().unwrap();
    let observations = device.record(&record_id).unwrap().observations;
    for n in &finished {
        assert!(observations.contains(&format!("[{n}]")), "[{n}] finished but is missing: {observations}");
    }
    // Whatever else is there is whole: only complete appends, each once.
    let appended: Vec<&str> = observations.split_inclusive(']').collect();
    assert!(appended.iter().all(|a| a.starts_with('[') && a.ends_with(']')), "{observations}");
    let unique: std::collections::BTreeSet<_> = appended.iter().collect();
    assert_eq!(unique.len(), appended.len(), "{observations}");
    drop(device);

    // A sync of many records killed after a growing delay, then one that runs through.
    let mut device = Device::open(a_dir.path()).unwrap();
    records(&mut device, 30);
    drop(device);
    for delay_ms in [5u64, 20, 60, 150] {
        let dir = a_dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut child = fieldsync(&dir, &["sync"]);
            std::thread::sleep(Duration::from_millis(delay_ms));
            let _ = child.kill();
            child.wait().unwrap();
        })
        .await
        .unwrap();
        Device::open(a_dir.path()).unwrap().store().check().unwrap();
    }
    let mut device = Device::open(a_dir.path()).unwrap();
    device.sync(&options(), |_| {}).await.unwrap();
    assert!(device.status().unwrap().missing_on_server.is_empty());
    server_matches(&server, &super::reviewer(&server).await, &device).await;
}
