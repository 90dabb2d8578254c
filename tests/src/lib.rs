//! The end-to-end harness of fieldsync, shared by the `end_to_end` test binary and the `load`
//! benchmark: a real server on a real port, seeded like a bureau, and phones that enroll with
//! real Ed25519 keys and sync over CBOR with `sync-core`'s session.

pub mod browser;
pub mod console;
pub mod proxy;

pub mod harness {

    use std::sync::Arc;

    use automerge::ActorId;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use ed25519_dalek::{Signer, SigningKey};
    use schemas::{Certificate, SyncResponse};
    use server::store::prelude::*;
    use server::store::sqlite::SqliteStore;
    use server::store::{Account, Store};
    use sync_core::session::{DeviceRecords, DeviceSession, SessionConfig};

    pub const DAY: i64 = 86_400_000;

    /// A server on a real port with a temporary data folder.
    pub struct TestServer {
        pub base: String,
        pub store: Arc<SqliteStore>,
        pub client: reqwest::Client,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
        pub dir: tempfile::TempDir,
    }

    impl TestServer {
        pub async fn start() -> Self {
            Self::start_with(|_| {}).await
        }

        pub async fn start_with(configure: impl FnOnce(&mut server::Config)) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let mut config = server::Config::new(dir.path().to_path_buf());
            configure(&mut config);
            let store = SqliteStore::open_in(&config.data_dir).unwrap();
            store.add_signing_key(server::service::admin::new_signing_key(server::now_ms())).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let state = server::AppState::new(config, store.clone() as Arc<dyn Store>);
            let serving = tokio::spawn(server::run(listener, state, async {
                let _ = stopped.await;
            }));
            Self { base, store, client: reqwest::Client::new(), stop: Some(stop), serving: Some(serving), dir }
        }

        /// A server started elsewhere (the real binary, by a load run) on the database in `dir`.
        pub fn external(base: String, store: Arc<SqliteStore>, dir: tempfile::TempDir) -> Self {
            Self { base, store, client: reqwest::Client::new(), stop: None, serving: None, dir }
        }

        pub async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(serving) = self.serving.take() {
                serving.await.unwrap().unwrap();
            }
        }

        pub fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }

        /// Adds an account directly in the store, as `fieldsync-server officer add` does.
        pub fn account(&self, officer_id: &str, password: &str, roles: &[&str]) {
            self.store
                .create_account(
                    Account {
                        officer_id: officer_id.into(),
                        name: officer_id.into(),
                        unit: "支队".into(),
                        password_hash: Some(server::service::auth::hash_password(password)),
                        must_change_password: false,
                        roles: roles.iter().map(|r| r.to_string()).collect(),
                    },
                    server::now_ms(),
                )
                .unwrap();
        }

        /// Issues a certificate valid for a year around now.
        pub fn certificate(&self, officer_id: &str) -> Certificate {
            let now = server::now_ms();
            let certificate = Certificate {
                number: format!("GX-{officer_id}"),
                officer_id: officer_id.into(),
                issuing_authority: "广西壮族自治区人民政府".into(),
                valid_from_ms: now - 365 * DAY,
                valid_until_ms: now + 365 * DAY,
                status_history: vec![],
                periods: vec![],
                reviews: vec![],
            };
            self.store.issue_certificate(&certificate, "test", now).unwrap();
            certificate
        }

        /// Imports the first `n` entities of the synthetic city.
        pub fn entities(&self, n: usize) {
            let csv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/entities.csv"))
                .expect("../shared/data beside the project");
            let text: String = csv.lines().take(n + 1).collect::<Vec<_>>().join("\n");
            let entities = server::service::admin::parse_entities_csv(&text).unwrap();
            self.store.import_entities(&entities, server::now_ms()).unwrap();
        }

        pub async fn login(&self, officer_id: &str, password: &str, device_id: Option<&str>) -> reqwest::Response {
            self.client
                .post(self.url("/v1/auth/login"))
                .json(&serde_json::json!({ "officer_id": officer_id, "password": password, "device_id": device_id }))
                .send()
                .await
                .unwrap()
        }

        pub async fn token(&self, officer_id: &str, password: &str) -> String {
            let response = self.login(officer_id, password, None).await;
            assert_eq!(response.status(), 200, "login of {officer_id}");
            let body: serde_json::Value = response.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_string()
        }

        pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
            self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap()
        }

        pub async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
            self.client.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
        }

        /// A task for `team` on `entity_id` from a day ago to a day ahead, written straight into
        /// the store as a seeded bureau would have it.
        pub fn seed_task(&self, task_id: &str, entity_id: &str, team: &[&str]) {
            let now = server::now_ms();
            self.store
                .create_task(&server::store::Task {
                    task_id: task_id.into(),
                    entity_id: entity_id.into(),
                    matter: "M01".into(),
                    window_start_ms: now - DAY,
                    window_end_ms: now + DAY,
                    team: team.iter().map(|o| o.to_string()).collect(),
                    created_by: "SUP".into(),
                    created_at_ms: now,
                })
                .unwrap();
        }

        /// A task for `team` on entity E00001 over the next day.
        pub async fn task(&self, supervisor_token: &str, task_id: &str, team: &[&str]) -> reqwest::Response {
            let now = server::now_ms();
            self.post(
                "/v1/tasks",
                supervisor_token,
                serde_json::json!({
                    "task_id": task_id, "entity_id": "E00001", "matter": "M01 排污许可证执行情况检查",
                    "team": team, "window_start_ms": now - DAY, "window_end_ms": now + DAY,
                }),
            )
            .await
        }

        /// `POST /v1/sync` with a token, a content type and a body, as a device sends it.
        pub async fn post_sync(
            &self,
            token: &str,
            content_type: &str,
            body: impl Into<reqwest::Body>,
        ) -> reqwest::Response {
            self.client
                .post(self.url("/v1/sync"))
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }

        /// The rows of a query on the server's database through a read-only connection of its
        /// own, each value as text.
        pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
            let conn = rusqlite::Connection::open_with_flags(
                self.dir.path().join("fieldsync.sqlite3"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            let mut statement = conn.prepare(sql).unwrap();
            let columns = statement.column_count();
            let mut rows = statement.query([]).unwrap();
            let mut found = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                found.push(
                    (0..columns)
                        .map(|i| match row.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                            other => format!("{other:?}"),
                        })
                        .collect(),
                );
            }
            found
        }

        /// Every row of every table but the server's own keys, refresh tokens (which a refused
        /// refresh may rightly revoke) and record summaries (a cache of the records), read
        /// through a separate connection: for checking that a refused request changed nothing.
        /// The tables are read from the schema, so a table a migration adds is covered without
        /// naming it here.
        pub fn snapshot(&self) -> Vec<String> {
            let conn = rusqlite::Connection::open_with_flags(
                self.dir.path().join("fieldsync.sqlite3"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            let tables: Vec<String> = conn
                .prepare(
                    // `record_summaries` is read from the records again whenever it is stale: a
                    // cache that lists and the server's start bring up to date, not data.
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                       AND name NOT IN ('server_keys', 'refresh_tokens', 'record_summaries') ORDER BY name",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let mut rows = Vec::new();
            for table in tables {
                let mut statement = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1")).unwrap();
                let columns = statement.column_count();
                let mut query = statement.query([]).unwrap();
                while let Some(row) = query.next().unwrap() {
                    let values: Vec<String> = (0..columns).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
                    rows.push(format!("{table}: {}", values.join(" | ")));
                }
            }
            rows
        }
    }

    /// Writes a PNG of `side` x `side` pixels of noise (xorshift from `seed`) to `path`: a photo
    /// that does not compress, so its size is about three bytes a pixel.
    pub fn noise_png(path: &std::path::Path, side: u32, seed: u32) {
        let mut state = seed.max(1);
        image::RgbImage::from_fn(side, side, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
        })
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
    }

    /// The synthetic city of `../shared/data/`: entity rows and checklist item codes, for making
    /// realistic records.
    pub struct City {
        /// `entities.csv` without its header, split on commas.
        pub rows: Vec<Vec<String>>,
        /// The codes of `checklist.json`'s items.
        pub checklist: Vec<String>,
    }

    impl City {
        pub fn load() -> Self {
            let read = |name: &str| {
                std::fs::read_to_string(format!("{}/../../shared/data/{name}", env!("CARGO_MANIFEST_DIR")))
                    .expect("../shared/data beside the project")
            };
            let rows =
                read("entities.csv").lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
            let checklist: serde_json::Value = serde_json::from_str(&read("checklist.json")).unwrap();
            let checklist = checklist["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["code"].as_str().unwrap().to_string())
                .collect();
            Self { rows, checklist }
        }

        /// The checklist item codes of matter `code` in `matters.json`: a record of a task of that
        /// matter takes no other once the matter list is imported.
        pub fn matter_checklist(code: &str) -> Vec<String> {
            let path = format!("{}/../../shared/data/matters.json", env!("CARGO_MANIFEST_DIR"));
            let matters: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let matter = matters["matters"].as_array().unwrap().iter().find(|m| m["code"] == code).unwrap();
            matter["checklist"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
        }

        /// A realistic record (`sync_core::sample::inspection_record`) of `entity_id` (the task's:
        /// the server holds a record to its task's entity), the `n`th of a run (its photos),
        /// made by `actor` for `task_id` an hour ago, with two officers present given as
        /// (officer id, name, certificate number).
        pub fn record(
            &self,
            n: usize,
            record_id: &str,
            task_id: &str,
            entity_id: &str,
            actor: ActorId,
            officers: [(&str, &str, &str); 2],
        ) -> sync_core::document::RecordDocument {
            let row = self.rows.iter().find(|row| row[0] == entity_id).expect("an entity of the registry");
            sync_core::sample::inspection_record(&sync_core::sample::SampleInspection {
                record_id,
                task_id,
                actor,
                started_at_ms: server::now_ms() - 3_600_000,
                entity: schemas::EntityRef {
                    entity_id: Some(row[0].clone()),
                    name: Some(row[1].clone()),
                    credit_code: Some(row[2].clone()),
                    legal_representative: Some(row[7].clone()),
                    discharge_permit: (!row[11].is_empty()).then(|| row[11].clone()),
                    tier: Some(row[6].clone()),
                },
                address: &row[8],
                latitude: row[9].parse().unwrap(),
                longitude: row[10].parse().unwrap(),
                officers,
                checklist: &self.checklist,
                photo_seed: n as u32,
            })
            .unwrap()
        }
    }

    /// Starts `fieldsync-server serve` (the program at `binary`) on the data folder `data` at
    /// `listen`, with `extra` arguments, and waits for the address it logs; `None` if it exits
    /// first (its address taken). Its later output is drained so that it never blocks.
    pub fn spawn_server(
        binary: &std::path::Path,
        data: &std::path::Path,
        listen: &str,
        extra: &[&str],
    ) -> Option<(std::process::Child, String)> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(binary)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", listen])
            .args(extra)
            // The server's own default filter, which logs the address it listens on.
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let address = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return None;
            };
            if let Some(rest) = line.split("address=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Some((child, address))
    }

    /// The status and the stable error code of an answer (empty when the body has none).
    pub async fn error_code(response: reqwest::Response) -> (u16, String) {
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        (status, body["code"].as_str().unwrap_or("").to_string())
    }

    /// What one sync moved.
    #[derive(Clone, Debug, Default)]
    pub struct SyncStats {
        pub requests: usize,
        pub bytes_up: usize,
        pub bytes_down: usize,
        pub rejections: Vec<schemas::ChangeRejection>,
    }

    /// An enrolled phone: its key, its actor, its records and its session.
    pub struct Phone {
        pub device_id: String,
        pub token: String,
        pub key: SigningKey,
        pub actor: ActorId,
        pub records: DeviceRecords,
        pub session: DeviceSession,
    }

    /// Enrolls a new phone for an officer (password login, challenge, signature).
    pub async fn enroll(server: &TestServer, officer_id: &str, password: &str) -> Phone {
        let token = server.token(officer_id, password).await;
        let challenge: serde_json::Value =
            server.post("/v1/devices/challenge", &token, serde_json::json!({})).await.json().await.unwrap();
        let challenge = STANDARD.decode(challenge["challenge"].as_str().unwrap()).unwrap();
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let actor_bytes: [u8; 16] = rand::random();
        let public = key.verifying_key().to_bytes();
        let signature = key.sign(&schemas::device::enrollment_message(&challenge, &public, &actor_bytes));
        let response = server
            .post(
                "/v1/devices",
                &token,
                serde_json::json!({
                    "challenge": STANDARD.encode(&challenge),
                    "public_key": STANDARD.encode(public),
                    "actor_id": hex::encode(actor_bytes),
                    "signature": STANDARD.encode(signature.to_bytes()),
                }),
            )
            .await;
        assert_eq!(response.status(), 200, "enrollment");
        let enrolled: serde_json::Value = response.json().await.unwrap();
        let actor = ActorId::from(actor_bytes);
        Phone {
            device_id: enrolled["device_id"].as_str().unwrap().into(),
            token: enrolled["tokens"]["access_token"].as_str().unwrap().into(),
            key,
            records: DeviceRecords::new(actor.clone()),
            actor,
            session: DeviceSession::new(SessionConfig::default()),
        }
    }

    impl Phone {
        /// Syncs until quiet over `POST /v1/sync` in CBOR; returns every rejection.
        pub async fn sync(&mut self, server: &TestServer) -> Vec<schemas::ChangeRejection> {
            self.sync_counted(server).await.rejections
        }

        /// [`Phone::sync`], counting requests and bytes.
        pub async fn sync_counted(&mut self, server: &TestServer) -> SyncStats {
            let mut stats = SyncStats::default();
            self.session.begin();
            while let Some(request) = self.session.poll(&mut self.records) {
                stats.requests += 1;
                assert!(stats.requests < 30, "a sync ends");
                let body = schemas::wire::to_cbor(&request);
                stats.bytes_up += body.len();
                let response = server.post_sync(&self.token, "application/cbor", body).await;
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
                let bytes = response.bytes().await.unwrap();
                stats.bytes_down += bytes.len();
                let response: SyncResponse = schemas::wire::from_cbor(&bytes).unwrap();
                let report = self.session.handle(response, &mut self.records).unwrap();
                assert!(report.errors.is_empty(), "{:?}", report.errors);
                stats.rejections.extend(report.rejections);
            }
            stats
        }
    }
}
