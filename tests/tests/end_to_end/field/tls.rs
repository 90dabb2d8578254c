//! The device over TLS to the real server program terminating it itself (`--tls-cert`,
//! `--tls-key`), with certificates made here by a bureau CA of the test's own (rcgen): the good
//! one works end to end, through the `fieldsync` program's `--ca-cert`; a certificate for
//! another host, an expired one and one from a CA the device does not trust are each refused
//! with their own code before anything is sent; and plain `http://` beyond the loopback address
//! is refused unless asked for.

use std::path::{Path, PathBuf};
use std::process::Child;

use field_client::Device;
use field_client::transport::Transport;
use fieldsync_tests::harness::{TestServer, spawn_server};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};

use super::processes::bureau_folder;
use super::{PASSWORD, options};

/// A CA: its certificate (PEM) and what signs with it.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn authority(name: &str) -> Authority {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Authority { pem, issuer: Issuer::new(params, key) }
}

/// A server certificate for `names` signed by `by`, valid over `years` (or the default, long
/// around now); written as `<label>.crt` and `<label>.key` into `dir`.
fn server_certificate(
    dir: &Path,
    label: &str,
    by: &Authority,
    names: &[&str],
    years: Option<(i32, i32)>,
) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    if let Some((from, until)) = years {
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(until, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, &by.issuer).unwrap();
    let (certificate_path, key_path) = (dir.join(format!("{label}.crt")), dir.join(format!("{label}.key")));
    std::fs::write(&certificate_path, certificate.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (certificate_path, key_path)
}

/// The server program on `folder`'s data, serving HTTPS with this certificate and key; killed
/// when dropped.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(folder: &TestServer, (certificate, key): &(PathBuf, PathBuf)) -> Self {
        let program = Path::new(env!("CARGO_BIN_EXE_e2e-fieldsync-server"));
        let arguments = ["--tls-cert", certificate.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
        let (child, address) = spawn_server(program, folder.dir.path(), "127.0.0.1:0", &arguments).expect("serves");
        let port = address.rsplit(':').next().unwrap().parse().unwrap();
        Self { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many logins the server has ever answered: each issues a refresh token.
fn logins(folder: &TestServer) -> usize {
    folder.query("SELECT COUNT(*) FROM refresh_tokens")[0][0].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_syncs_over_tls_with_the_bureau_ca_and_refuses_every_other_certificate() {
    let folder = bureau_folder();
    let certificates = tempfile::tempdir().unwrap();
    let bureau = authority("fieldsync test bureau CA");
    let ca_path = certificates.path().join("bureau-ca.pem");
    std::fs::write(&ca_path, &bureau.pem).unwrap();
    let good = server_certificate(certificates.path(), "good", &bureau, &["localhost", "127.0.0.1"], None);
    let server = TlsServer::start(&folder, &good);
    let base = format!("https://localhost:{}", server.port);

    // Enrolled through the program with the bureau's CA, then synced through the library.
    let device_dir = tempfile::tempdir().unwrap();
    let enrolled = tokio::task::spawn_blocking({
        let (device, base, ca) = (device_dir.path().to_path_buf(), base.clone(), ca_path.clone());
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync"))
                .arg("--device")
                .arg(&device)
                .args(["--json", "enroll", "--server", &base, "--officer", "O1", "--ca-cert"])
                .arg(&ca)
                .env("FIELDSYNC_PASSWORD", PASSWORD)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(enrolled.status.success(), "{}", String::from_utf8_lossy(&enrolled.stderr));
    let mut device = Device::open(device_dir.path()).unwrap();
    let first = device.sync(&options(), |_| {}).await.unwrap();
    assert_eq!(first.tasks, 1, "the tasks came over TLS");
    let record_id = device.new_record("T1").unwrap();
    device.add_officer_present(&record_id, "O1", true).unwrap();
    let summary = device.sync(&options(), |_| {}).await.unwrap();
    assert!(summary.uploaded.contains(&record_id), "{summary:?}");
    assert!(device.status().unwrap().missing_on_server.is_empty());
    assert_eq!(folder.query(&format!("SELECT COUNT(*) FROM records WHERE record_id = '{record_id}'")), [["1"]]);
    drop(server);

    // Each bad certificate on its own server; the device trusts the bureau's CA.
    let stranger = authority("someone else's CA");
    let trusting = Transport { ca_certificate: Some(bureau.pem.clone()), insecure_http: false };
    let cases = [
        (
            "a certificate for another host",
            "other-host",
            &bureau,
            ["fieldsync.example", "www.fieldsync.example"],
            None,
            "tls_wrong_host",
        ),
        (
            "an expired certificate",
            "expired",
            &bureau,
            ["localhost", "127.0.0.1"],
            Some((2020, 2021)),
            "tls_certificate_expired",
        ),
        ("a certificate from an unknown CA", "stranger", &stranger, ["localhost", "127.0.0.1"], None, "tls_unknown_ca"),
    ];
    for (what, label, by, names, years, code) in cases {
        let files = server_certificate(certificates.path(), label, by, &names, years);
        let server = TlsServer::start(&folder, &files);
        let before = (logins(&folder), folder.snapshot());
        let dir = tempfile::tempdir().unwrap();
        let base = format!("https://localhost:{}", server.port);
        let clock = field_client::device::system_clock();
        let refused = field_client::remote::enroll_with(dir.path(), &base, "O2", PASSWORD, &trusting, clock).await;
        let error = refused.err().unwrap_or_else(|| panic!("{what}: enrolled"));
        assert_eq!(error.code(), code, "{what}: {error}");
        assert_eq!((logins(&folder), folder.snapshot()), before, "{what}: nothing was sent");
        assert!(Device::open(dir.path()).is_err(), "{what}: not enrolled");
    }
    // Without the bureau's CA, the good certificate is a stranger's too.
    let server = TlsServer::start(&folder, &good);
    let dir = tempfile::tempdir().unwrap();
    let base = format!("https://localhost:{}", server.port);
    let refused = field_client::remote::enroll(dir.path(), &base, "O2", PASSWORD).await;
    assert_eq!(refused.err().map(|e| e.code().to_string()).as_deref(), Some("tls_unknown_ca"));
}

#[tokio::test]
async fn plain_http_beyond_the_loopback_address_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = field_client::device::system_clock;
    // `.invalid` never resolves (RFC 6761): were the check to let it through, nothing could answer.
    for server in ["http://fieldsync.invalid", "http://fieldsync.invalid:8080/"] {
        let refused =
            field_client::remote::enroll_with(dir.path(), server, "O1", PASSWORD, &Transport::default(), clock()).await;
        assert_eq!(refused.err().map(|e| e.code().to_string()).as_deref(), Some("insecure_http"), "{server}");
    }
    let transport = Transport::default();
    for allowed in ["https://fieldsync.invalid", "http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1"] {
        assert!(field_client::transport::check_server_url(allowed, &transport).is_ok(), "{allowed}");
    }
    let insecure = Transport { ca_certificate: None, insecure_http: true };
    assert!(field_client::transport::check_server_url("http://fieldsync.invalid", &insecure).is_ok());
    // The program refuses it before asking for the password.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_e2e-fieldsync"))
        .arg("--device")
        .arg(dir.path())
        .args(["--json", "enroll", "--server", "http://fieldsync.invalid", "--officer", "O1"])
        .env_remove("FIELDSYNC_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(error["code"], "insecure_http", "{error}");
}
