//! `fieldsync-server`: the server binary and its admin subcommands.
//!
//! The binary is [`main`]; it lives in the library so that the end-to-end tests
//! can build the very same program and kill it like any process.
//!
//! Admin subcommands open the same database as a running server (SQLite in WAL
//! mode lets them write beside it) and call the same operations as the admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, DEFAULT_LOG_ORIGIN};
use crate::service::{admin, auth as identity, now_ms};
use crate::store::sqlite::SqliteStore;
use crate::store::{Account, Store, read_log, write_log};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use schemas::{Certificate, CertificateStatus, CertificateStatusChange};

/// Caps glibc's malloc arenas: by default it makes up to eight per core, one per busy thread,
/// and under many concurrent syncs they held half again as much resident memory (measured in
/// BENCHMARKS.md). Four arenas keep the threads from contending much. The program allocates
/// through jemalloc (`main.rs`); glibc's malloc still serves SQLite and whoever embeds the library.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

#[derive(Parser)]
#[command(name = "fieldsync-server", version, about = "The fieldsync server and its admin commands")]
struct Cli {
    /// Folder of the database and blobs. [default: ./data, and ./demo-data for `demo`]
    #[arg(long, global = true, env = "FIELDSYNC_DATA")]
    data: Option<PathBuf>,
    /// The transparency log's origin (its checkpoints' first line and its key's name), kept with
    /// the log's key when the database first gets one and fixed from then on.
    /// [default: fieldsync.local/transparency-log]
    #[arg(long, global = true, env = "FIELDSYNC_LOG_ORIGIN")]
    log_origin: Option<String>,
    /// A file holding the transparency log's Ed25519 signing key (64 hex digits), kept outside
    /// the database so that whoever holds the database cannot sign the log's checkpoints; made
    /// by `log-key export`, or used for the log's key when the database has none yet.
    #[arg(long, global = true, env = "FIELDSYNC_LOG_KEY_FILE")]
    log_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The bounds of connections and request bodies (the bureau's settings; defaults in `Config::new`).
#[derive(clap::Args)]
struct ConnectionLimits {
    /// Seconds a request's head may take to arrive.
    #[arg(long, env = "FIELDSYNC_HEADER_READ_TIMEOUT_S", default_value_t = 30)]
    header_read_timeout_s: u64,
    /// Seconds a request's whole body may take to arrive after its head.
    #[arg(long, env = "FIELDSYNC_BODY_READ_TIMEOUT_S", default_value_t = 120)]
    body_read_timeout_s: u64,
    /// Seconds a connection with no request in progress may stay open without moving a byte.
    #[arg(long, env = "FIELDSYNC_IDLE_TIMEOUT_S", default_value_t = 60)]
    idle_timeout_s: u64,
    /// Most connections open at once from one client address.
    #[arg(long, env = "FIELDSYNC_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    max_connections_per_address: usize,
    /// Most MiB of request bodies held in memory at once, all connections together.
    #[arg(long, env = "FIELDSYNC_MAX_BODY_MEMORY_MIB", default_value_t = 128)]
    max_body_memory_mib: usize,
}

impl ConnectionLimits {
    fn apply(&self, config: &mut Config) {
        config.header_read_timeout = std::time::Duration::from_secs(self.header_read_timeout_s);
        config.body_read_timeout = std::time::Duration::from_secs(self.body_read_timeout_s);
        config.idle_timeout = std::time::Duration::from_secs(self.idle_timeout_s);
        config.max_connections_per_address = self.max_connections_per_address;
        config.max_body_memory_bytes = self.max_body_memory_mib << 20;
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (SQLite and a blob folder under --data).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "FIELDSYNC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Refresh attempts allowed per refresh token per minute (failed passwords back off per
        /// account instead: 5 free, then 1 s doubling up to 15 min).
        #[arg(long, env = "FIELDSYNC_AUTH_ATTEMPTS_PER_MINUTE", default_value_t = 10)]
        auth_attempts_per_minute: u32,
        /// Login and refresh attempts allowed per client address per minute.
        #[arg(long, env = "FIELDSYNC_AUTH_ATTEMPTS_PER_MINUTE_PER_ADDRESS", default_value_t = 300)]
        auth_attempts_per_minute_per_address: u32,
        #[command(flatten)]
        connections: ConnectionLimits,
        /// Serve HTTPS with this certificate chain (PEM: the server's certificate, then any
        /// intermediates), for a deployment with no TLS proxy in front. Needs --tls-key.
        #[arg(long, env = "FIELDSYNC_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM: PKCS #8, PKCS #1 or SEC1).
        #[arg(long, env = "FIELDSYNC_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve `/metrics` alone on this address (one the monitoring system reaches and the
        /// public does not) and not on the API's address, unless --metrics-token is given too.
        #[arg(long, env = "FIELDSYNC_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// Serve `/metrics` on the API's address only to requests bearing this token
        /// (`Authorization: Bearer`). With neither option, `/metrics` is not served at all.
        #[arg(long, env = "FIELDSYNC_METRICS_TOKEN")]
        metrics_token: Option<String>,
    },
    /// Create the database, the server's signing key and the first administrator.
    Init {
        #[arg(long, default_value = "admin")]
        admin_id: String,
        #[arg(long, default_value = "Administrator")]
        admin_name: String,
    },
    /// Officers.
    #[command(subcommand)]
    Officer(OfficerCommand),
    /// Enforcement certificates.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// The entity registry.
    #[command(subcommand)]
    Entities(EntitiesCommand),
    /// Devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Copy the database to FILE, consistently, while the server runs.
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Check the integrity of the database, of every stored blob's file (present, its size, its
    /// SHA-256) and of the transparency log (leaves, subtrees, signed checkpoints).
    Check,
    /// The transparency log's signing key.
    #[command(subcommand)]
    LogKey(LogKeyCommand),
    /// Evidence packages of records, for reviewers and courts (`fieldsync verify` checks them).
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// The random-check matter list.
    #[command(subcommand)]
    Matters(crate::service::campaigns::commands::MattersCommand),
    /// The bureau's working-day calendar.
    #[command(subcommand)]
    Calendar(crate::service::campaigns::commands::CalendarCommand),
    /// Random-inspection draws.
    #[command(subcommand)]
    Draw(crate::service::campaigns::commands::DrawCommand),
    /// Make a demonstration bureau in a fresh --data folder (default ./demo-data) from the
    /// synthetic city, with records made by simulated officers' devices through the real sync,
    /// print where to log in and with which passwords, and serve it until Ctrl-C.
    Demo {
        /// Address to listen on (`127.0.0.1:0` picks a free port; the address printed is the real one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Inspection records to make.
        #[arg(long, default_value_t = crate::demo::DEFAULT_RECORDS)]
        records: usize,
        /// The synthetic city's folder (entities.csv, officers.csv, recusals.csv, matters.json,
        /// checklist.json). [default: ../shared/data, else the one beside the sources]
        #[arg(long)]
        city: Option<PathBuf>,
        /// Make the data, print the summary and exit instead of serving.
        #[arg(long)]
        no_serve: bool,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write a record's evidence package to FILE (a tar file).
    Export {
        record: String,
        #[arg(long)]
        to: PathBuf,
        /// Only the blobs' hashes, not their bytes.
        #[arg(long)]
        hashes_only: bool,
    },
}

#[derive(Subcommand)]
enum OfficerCommand {
    /// Add an officer; prints a one-time password.
    Add {
        id: String,
        name: String,
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long = "role", default_values_t = vec!["officer".to_string()])]
        roles: Vec<String>,
    },
    List,
}

#[derive(Subcommand)]
enum CertificateCommand {
    /// Issue a certificate; dates are YYYY-MM-DD, valid to the end of --valid-to (UTC+8).
    Issue {
        number: String,
        officer: String,
        #[arg(long)]
        authority: String,
        #[arg(long)]
        valid_from: String,
        #[arg(long)]
        valid_to: String,
    },
    /// Renew with a new validity period to the end of --valid-to, from --valid-from (by default
    /// where the latest period ends, or today if it has lapsed: a lapse stays a lapse).
    Renew {
        number: String,
        #[arg(long)]
        valid_to: String,
        #[arg(long)]
        valid_from: Option<String>,
    },
    /// Suspend, from now or from --at-ms (a past time flags the work merged since: `affected`).
    Suspend {
        number: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        at_ms: Option<i64>,
    },
    Revoke {
        number: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        at_ms: Option<i64>,
    },
    Reinstate {
        number: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Record the certificate's surrender when its holder leaves; nothing changes it afterwards.
    Surrender {
        number: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        at_ms: Option<i64>,
    },
    /// Record a periodic review (年审) passed today, or on --on (YYYY-MM-DD).
    Review {
        number: String,
        #[arg(long)]
        on: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// The certificates whose periodic review falls due within --within-days, every
    /// --period-days (the bureau's rule; a year by default).
    Due {
        #[arg(long, default_value_t = 30)]
        within_days: i64,
        #[arg(long, default_value_t = 365)]
        period_days: i64,
    },
    /// The records with changes its officer made while it stood suspended, revoked or surrendered.
    Affected {
        number: String,
    },
    List,
}

#[derive(Subcommand)]
enum RoleCommand {
    Grant { officer: String, role: String },
    Revoke { officer: String, role: String },
}

#[derive(Subcommand)]
enum EntitiesCommand {
    /// Import a registry CSV (the columns of shared/data/entities.csv).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum DeviceCommand {
    List,
    Revoke { device_id: String },
}

/// Unix milliseconds of midnight at the start of `date` (YYYY-MM-DD) in UTC+8, the bureau's zone.
fn date_ms(date: &str) -> anyhow::Result<i64> {
    let parts: Vec<i64> =
        date.split('-').map(|p| p.parse()).collect::<Result<_, _>>().context("a date is YYYY-MM-DD")?;
    let [y, m, d] = parts[..] else { bail!("a date is YYYY-MM-DD") };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        bail!("{date} is not a date");
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400_000 - 8 * 3_600_000)
}

fn open_store(data: &std::path::Path, log_key_file: Option<&std::path::Path>) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let config = Config::new(data.to_path_buf());
    let log_key = log_key_file.map(read_log_key).transpose()?;
    let store = SqliteStore::open_in_with_log_key(&config.data_dir, log_key)
        .map_err(|e| anyhow::anyhow!("opening the database: {e}"))?;
    Ok(store)
}

/// The transparency log's identity in `store`, made with `origin` (or the default) if it has
/// none; refuses an origin given explicitly that differs from the one stored, since the log's
/// checkpoints name it.
fn log_identity(store: &dyn Store, origin: Option<&str>) -> anyhow::Result<crate::store::LogIdentity> {
    let identity = crate::service::ensure_log_identity(store, origin.unwrap_or(DEFAULT_LOG_ORIGIN))?;
    if let Some(origin) = origin
        && origin != identity.origin
    {
        bail!("the transparency log's origin is {:?} and cannot become {origin:?}", identity.origin);
    }
    Ok(identity)
}

/// The log filter when `RUST_LOG` is not set. Automerge instruments its document loading with
/// info-level spans whose fields are formatted on every load: a seventh of the server's CPU time
/// during a first sync, for nothing an operator reads.
const DEFAULT_LOG: &str = "info,automerge=warn";

/// The `fieldsync-server` program.
pub fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run_command())
}

async fn run_command() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_LOG.into()))
        .init();
    let cli = Cli::parse();
    if let Command::Demo { listen, records, city, no_serve } = cli.command {
        let data = cli.data.unwrap_or_else(|| PathBuf::from("./demo-data"));
        let options = crate::demo::DemoOptions { data, listen, records, city, serve: !no_serve };
        return crate::demo::run(options, cli.log_origin.as_deref()).await;
    }
    let data = cli.data.clone().unwrap_or_else(|| PathBuf::from("./data"));
    let store = open_store(&data, cli.log_key_file.as_deref())?;
    let now = now_ms();
    let by = "cli";
    match cli.command {
        Command::Serve {
            listen,
            auth_attempts_per_minute,
            auth_attempts_per_minute_per_address,
            connections,
            tls_cert,
            tls_key,
            metrics_listen,
            metrics_token,
        } => {
            let configure = move |config: &mut Config| -> anyhow::Result<()> {
                config.auth_attempts_per_minute = auth_attempts_per_minute;
                config.auth_attempts_per_minute_per_address = auth_attempts_per_minute_per_address;
                connections.apply(config);
                if let (Some(certificate_chain), Some(private_key)) = (tls_cert, tls_key) {
                    let files = crate::config::TlsFiles { certificate_chain, private_key };
                    // Checked before serving, so that a bad file stops the program with its reason.
                    crate::http::connections::tls_acceptor(&files)?;
                    config.tls = Some(files);
                }
                // The metrics are public on the API's address only when neither option says where
                // they go: least exposure is the default (issue 14).
                config.metrics_on_api = metrics_token.is_some();
                config.metrics_token = metrics_token;
                Ok(())
            };
            let listen = Listen { address: listen, metrics: metrics_listen };
            serve(store, &data, cli.log_origin.as_deref(), listen, configure, |_, _| shutdown_signal()).await?;
        }
        Command::Init { admin_id, admin_name } => {
            let log = log_identity(store.as_ref(), cli.log_origin.as_deref())?;
            let made = admin::init(store.as_ref(), &admin_id, &admin_name, now)?;
            let verifier_key = sync_core::checkpoint::verifier_key(&log.origin, &log.public_key)?;
            println!("transparency log: {verifier_key}");
            println!("administrator: {}", made.admin_id);
            println!("one-time password: {}", made.one_time_password);
            println!("log in with POST /v1/auth/login and change it with POST /v1/auth/password");
        }
        Command::Officer(OfficerCommand::Add { id, name, unit, roles }) => {
            if let Some(role) = roles.iter().find(|r| !admin::ROLES.contains(&r.as_str())) {
                bail!("{role} is not one of {:?}", admin::ROLES);
            }
            let password = identity::one_time_password();
            let account = Account {
                officer_id: id.clone(),
                name,
                unit,
                password_hash: Some(identity::hash_password(&password)),
                must_change_password: true,
                roles,
            };
            store.create_account(account, now)?;
            println!("officer: {id}\none-time password: {password}");
        }
        Command::Officer(OfficerCommand::List) => {
            for a in store.accounts()? {
                println!("{}\t{}\t{}\t{}", a.officer_id, a.name, a.unit, a.roles.join(","));
            }
        }
        Command::Certificate(command) => certificate(store.as_ref(), command, by, now)?,
        Command::Role(RoleCommand::Grant { officer, role }) => {
            if !admin::ROLES.contains(&role.as_str()) {
                bail!("{role} is not one of {:?}", admin::ROLES);
            }
            store.grant_role(&officer, &role)?;
        }
        Command::Role(RoleCommand::Revoke { officer, role }) => store.revoke_role(&officer, &role)?,
        Command::Entities(EntitiesCommand::Import { file }) => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let text = admin::decode_csv_text(&bytes).map_err(|p| anyhow::anyhow!("line {}: {}", p.line, p.problem))?;
            match admin::parse_entities_csv(&text) {
                Ok(entities) => println!("imported {} entities", store.import_entities_by(&entities, by, now)?),
                Err(problems) => {
                    for p in &problems {
                        match &p.field {
                            Some(field) => {
                                eprintln!("line {}, column {} ({field}): {}", p.line, p.column.unwrap_or(0), p.problem)
                            }
                            None => eprintln!("line {}: {}", p.line, p.problem),
                        }
                    }
                    bail!("{} bad line(s); nothing was imported", problems.len());
                }
            }
        }
        Command::Device(DeviceCommand::List) => {
            for d in store.devices()? {
                let state = d.revoked_at_ms.map_or("active".to_string(), |t| format!("revoked at {t}"));
                println!("{}\t{}\t{}\t{}", d.device_id, d.officer_id, hex::encode(&d.actor_id), state);
            }
        }
        Command::Device(DeviceCommand::Revoke { device_id }) => store.revoke_device(&device_id, now)?,
        Command::Evidence(EvidenceCommand::Export { record, to, hashes_only }) => {
            let mut config = Config::new(data.clone());
            config.log_origin = log_identity(store.as_ref(), cli.log_origin.as_deref())?.origin;
            let blobs = if hashes_only {
                crate::service::evidence::Blobs::HashesOnly
            } else {
                crate::service::evidence::Blobs::Include
            };
            let package = crate::service::evidence::export(store.as_ref(), &config, &record, blobs, now)?;
            std::fs::write(&to, &package).with_context(|| format!("writing {}", to.display()))?;
            println!("evidence package of record {record}: {} bytes in {}", package.len(), to.display());
        }
        Command::Matters(command) => crate::service::campaigns::commands::matters(store.as_ref(), command, by, now)?,
        Command::Calendar(command) => crate::service::campaigns::commands::calendar(store.as_ref(), command, by, now)?,
        Command::Draw(command) => crate::service::campaigns::commands::draw(store.as_ref(), command)?,
        Command::Demo { .. } => unreachable!("the demo is run above, before the data folder is opened"),
        Command::Backup { to } => {
            store.backup(&to)?;
            println!("backed up to {}", to.display());
        }
        Command::LogKey(LogKeyCommand::Export { to }) => {
            let identity = read_log(store.as_ref(), |tx| tx.log_identity())?
                .context("the database has no transparency log yet: nothing to export")?;
            let key = identity.key.context("the log's signing key is already outside the database")?;
            write_log_key(&to, &key)?;
            write_log(store.as_ref(), |tx| tx.forget_log_secret())?;
            println!("transparency log key written to {} and erased from the database", to.display());
            println!("public key: {}", hex::encode(identity.public_key.as_bytes()));
            println!("give the server --log-key-file {} from now on", to.display());
        }
        Command::LogKey(LogKeyCommand::Show) => {
            let identity = read_log(store.as_ref(), |tx| tx.log_identity())?
                .context("the database has no transparency log yet")?;
            println!("origin: {}", identity.origin);
            println!("public key: {}", hex::encode(identity.public_key.as_bytes()));
            println!("secret key: {}", if identity.key.is_some() { "in the database" } else { "outside the database" });
        }
        Command::Check => {
            let config = Config::new(data.clone());
            let report = admin::check(
                store.as_ref(),
                |sha256| crate::service::blobs::blob_path(&config, sha256),
                config.max_clock_skew_ms,
            )?;
            let say = |what: &str, problems: &[String]| {
                if problems.is_empty() {
                    println!("{what}: ok");
                }
                for problem in problems {
                    eprintln!("{what}: {problem}");
                }
            };
            say("database", &report.database);
            let blob_problems: Vec<String> =
                report.blobs.iter().map(|b| format!("{}: {}", b.sha256, b.problem)).collect();
            say(&format!("blobs ({} checked)", report.blobs_checked), &blob_problems);
            say("transparency log", &report.transparency_log);
            // P3: work merged before a suspension was entered with a past time is flagged, not a fault.
            for affected in &report.work_while_suspended {
                for record in &affected.records {
                    println!(
                        "while suspended: certificate {} ({}): record {}, {} change(s)",
                        affected.number,
                        affected.officer_id,
                        record.record_id,
                        record.changes.len()
                    );
                }
            }
            if !report.ok {
                bail!("{} problem(s)", report.database.len() + report.blobs.len() + report.transparency_log.len());
            }
        }
    }
    Ok(())
}

/// The transparency log's signing key.
#[derive(Subcommand)]
enum LogKeyCommand {
    /// Writes the log's signing key held in the database to a new file (mode 0600) and erases
    /// it from the database; from then on the server signs checkpoints only when given the file
    /// (`--log-key-file`).
    Export {
        /// The new key file (refused if it exists).
        #[arg(long)]
        to: PathBuf,
    },
    /// Prints the log's public key, and where its secret key is kept.
    Show,
}

/// Reads a log key file: 64 hex digits (the Ed25519 secret key), surrounding blanks ignored.
fn read_log_key(path: &std::path::Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the log key file {}", path.display()))?;
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .with_context(|| format!("{} does not hold 64 hex digits (an Ed25519 secret key)", path.display()))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
}

/// Writes `key` to a new file only its owner may read, and syncs it.
fn write_log_key(path: &std::path::Path, key: &ed25519_dalek::SigningKey) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating the log key file {}", path.display()))?;
    writeln!(file, "{}", hex::encode(key.to_bytes()))?;
    file.sync_all()?;
    Ok(())
}

/// Where `serve` listens: the API's address, and the metrics' own if they have one.
pub(crate) struct Listen {
    pub address: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

/// Serves the API over `store` (the data folder `data`) until the shutdown future completes:
/// the path of `serve`, which `demo` takes too. `configure` sets on the `Config` what the command
/// line says, after the log's origin; `started` hears the bound address and the state once the
/// listeners are bound, and returns the shutdown future.
pub(crate) async fn serve<Shutdown: std::future::Future<Output = ()> + Send + 'static>(
    store: Arc<dyn Store>,
    data: &std::path::Path,
    log_origin: Option<&str>,
    listen: Listen,
    configure: impl FnOnce(&mut Config) -> anyhow::Result<()>,
    started: impl FnOnce(SocketAddr, &crate::http::AppState) -> std::io::Result<Shutdown>,
) -> anyhow::Result<()> {
    let now = now_ms();
    if store.signing_keys()?.is_empty() {
        store.add_signing_key(admin::new_signing_key(now))?;
    }
    if !store.accounts()?.iter().any(|a| a.roles.iter().any(|r| r == "admin")) {
        tracing::warn!("no administrator yet: run `fieldsync-server init` to create one");
    }
    let log = log_identity(store.as_ref(), log_origin)?;
    // A server that could not sign its log's checkpoints does not start.
    crate::service::transparency::log_signer(&log, store.log_signing_key().as_ref()).map_err(|p| anyhow::anyhow!(p))?;
    let logged = crate::service::transparency::log_unlogged_enrolments(store.as_ref(), now)?;
    if logged > 0 {
        tracing::info!(devices = logged, "enrolments from before the transparency log are now in it");
    }
    // The lists' record summaries, brought up to date off the request path: after an upgrade
    // or a restore, the first page a reviewer opens need not read every record.
    let summarizing = store.clone();
    tokio::task::spawn_blocking(move || match crate::service::records::summarize(summarizing.as_ref()) {
        Ok(0) => {}
        Ok(read) => tracing::info!(records = read, "record summaries brought up to date"),
        Err(error) => tracing::warn!(%error, "record summaries not brought up to date; lists read them when asked"),
    });
    let address = listen.address;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding {address}"))?;
    let mut config = Config::new(data.to_path_buf());
    config.log_origin = log.origin;
    configure(&mut config)?;
    let state = crate::http::AppState::new(config, store.clone());
    let metrics = match listen.metrics {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("binding {address} for the metrics"))?;
            tracing::info!(metrics = %listener.local_addr()?, "serving metrics");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let serving = tokio::spawn(crate::http::routes::ops::serve_metrics(listener, state.clone(), async {
                let _ = stopped.await;
            }));
            Some((stop, serving))
        }
        None => None,
    };
    let shutdown = started(listener.local_addr()?, &state)?;
    crate::http::run(listener, state, shutdown).await?;
    if let Some((stop, serving)) = metrics {
        let _ = stop.send(());
        serving.await.context("the metrics listener")??;
    }
    store.close();
    tracing::info!("stopped");
    Ok(())
}

fn certificate(store: &dyn Store, command: CertificateCommand, by: &str, now: i64) -> anyhow::Result<()> {
    use crate::service::certificates;
    let status = |number: String, status, reason, at_ms: Option<i64>| -> anyhow::Result<()> {
        let change = CertificateStatusChange { at_ms: at_ms.unwrap_or(now), status, reason };
        certificates::change_status_in(store, &number, change, by, now)?;
        Ok(())
    };
    match command {
        CertificateCommand::Issue { number, officer, authority, valid_from, valid_to } => {
            let certificate = Certificate {
                number,
                officer_id: officer,
                issuing_authority: authority,
                valid_from_ms: date_ms(&valid_from)?,
                valid_until_ms: date_ms(&valid_to)? + 86_400_000,
                status_history: vec![],
                periods: vec![],
                reviews: vec![],
            };
            store.issue_certificate(&certificate, by, now)?;
        }
        CertificateCommand::Renew { number, valid_to, valid_from } => {
            let from = valid_from.as_deref().map(date_ms).transpose()?;
            certificates::renew_in(store, &number, from, date_ms(&valid_to)? + 86_400_000, by, now)?;
        }
        CertificateCommand::Suspend { number, reason, at_ms } => {
            status(number, CertificateStatus::Suspended, reason, at_ms)?
        }
        CertificateCommand::Revoke { number, reason, at_ms } => {
            status(number, CertificateStatus::Revoked, reason, at_ms)?
        }
        CertificateCommand::Reinstate { number, reason } => status(number, CertificateStatus::Active, reason, None)?,
        CertificateCommand::Surrender { number, reason, at_ms } => {
            status(number, CertificateStatus::Surrendered, reason, at_ms)?
        }
        CertificateCommand::Review { number, on, note } => {
            let reviewed_at_ms = on.as_deref().map(date_ms).transpose()?.unwrap_or(now);
            certificates::review_in(store, &number, schemas::CertificateReview { reviewed_at_ms, note }, by, now)?;
        }
        CertificateCommand::Due { within_days, period_days } => {
            for due in certificates::review_due_in(store, period_days * 86_400_000, within_days * 86_400_000, now)? {
                let overdue = if due.overdue { "overdue" } else { "due" };
                println!("{}\t{}\t{}\t{overdue}", due.number, due.officer_id, due.review_due_ms);
            }
        }
        CertificateCommand::Affected { number } => {
            let affected =
                certificates::affected_in(store, &number, Config::new(std::path::PathBuf::new()).max_clock_skew_ms)?;
            for record in &affected.records {
                for change in &record.changes {
                    println!(
                        "{}\t{}\t{}\t{}\t{} since {}",
                        record.record_id,
                        change.change_hash,
                        change.device_id,
                        change.timestamp_ms,
                        change.standing,
                        change.since_ms
                    );
                }
            }
        }
        CertificateCommand::List => {
            for c in store.certificates(None)? {
                let last = c.status_history.last().map_or("active".to_string(), |s| format!("{:?}", s.status));
                println!("{}\t{}\t{}\t{}\t{}", c.number, c.officer_id, c.valid_from_ms, c.valid_until_ms, last);
            }
        }
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed before this returns, so that a
/// signal arriving as soon as the server says it listens is never missed.
pub(crate) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
}
