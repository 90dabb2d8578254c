//! Operations shared by the admin subcommands of the binary and the admin API.
//!
//! - [`check`] (the program's `check` and `GET /v1/admin/check`) runs the backend's integrity
//!   check, hashes every stored blob's file against its row, loads every stored record's document,
//!   and checks the transparency log.
//! - The entity registry is read from CSV with the `csv` crate; the text is UTF-8 (a byte-order
//!   mark dropped) or else GB18030, as Chinese spreadsheet software exports it, and each problem
//!   names its line, counted from the record's byte offset.
//! - A backup is written under the data folder's `backups/`.

use std::collections::BTreeSet;

use schemas::{Certificate, CertificateStatus};

use crate::service::auth::{Caller, hash_password, one_time_password};
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{Account, Entity, RecordFilter, SigningKey, Store, StoreError, StoreResult};

/// What `init` made.
#[derive(Debug)]
pub struct Initialized {
    /// The first administrator's officer id.
    pub admin_id: String,
    /// Their one-time password, shown once; they must change it.
    pub one_time_password: String,
}

/// Creates the server's signing key and the first administrator, unless the database already has an
/// administrator.
pub fn init(store: &dyn Store, admin_id: &str, admin_name: &str, now_ms: i64) -> StoreResult<Initialized> {
    if store.accounts()?.iter().any(|a| a.roles.iter().any(|r| r == "admin")) {
        return Err(StoreError::Conflict("the database already has an administrator".into()));
    }
    if store.signing_keys()?.is_empty() {
        store.add_signing_key(new_signing_key(now_ms))?;
    }
    let password = super::auth::one_time_password();
    store.create_account(
        Account {
            officer_id: admin_id.to_string(),
            name: admin_name.to_string(),
            unit: String::new(),
            password_hash: Some(super::auth::hash_password(&password)),
            must_change_password: true,
            roles: vec!["admin".into()],
        },
        now_ms,
    )?;
    Ok(Initialized { admin_id: admin_id.to_string(), one_time_password: password })
}

/// A fresh access-token key.
pub fn new_signing_key(now_ms: i64) -> SigningKey {
    SigningKey {
        kid: hex::encode(super::auth::random_bytes::<8>()),
        secret: super::auth::random_bytes::<32>().to_vec(),
        created_at_ms: now_ms,
        retired_at_ms: None,
    }
}

/// A stored record whose document does not load.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordProblem {
    pub record_id: String,
    pub problem: String,
}

/// A stored blob whose file is not what its row says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobProblem {
    pub sha256: String,
    /// `missing`, `wrong_size` or `wrong_hash`, and what was found.
    pub problem: String,
}

/// What `check` found: the database, every blob's file, and the transparency log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckReport {
    /// True when nothing below reports a problem.
    pub ok: bool,
    /// What SQLite's integrity check reports.
    pub database: Vec<String>,
    pub blobs_checked: usize,
    pub blobs: Vec<BlobProblem>,
    pub records_checked: usize,
    /// Stored records whose document does not load from its bytes, with Automerge's reason.
    pub records: Vec<RecordProblem>,
    /// Leaves, subtrees and checkpoints of the transparency log that do not hold.
    pub transparency_log: Vec<String>,
    /// P3: certificates whose officer's merged work falls after their suspension, revocation or
    /// surrender (entered with a past time), with the records it reaches. A finding for a
    /// reviewer, not a fault of the database: it leaves `ok` as it is.
    #[serde(default)]
    pub work_while_suspended: Vec<crate::service::certificates::CertificateAffected>,
}

/// Checks the database (SQLite's integrity check), every stored blob's file against its row
/// (present, its size, its SHA-256, read in full), and the transparency log against itself.
pub fn check(
    store: &dyn Store,
    blob_path: impl Fn(&str) -> std::path::PathBuf,
    max_clock_skew_ms: i64,
) -> StoreResult<CheckReport> {
    use sha2::Digest;
    use std::io::Read;

    let database = store.integrity_check()?;
    let stored = store.blobs()?;
    let mut blobs = Vec::new();
    for blob in &stored {
        let path = blob_path(&blob.sha256);
        let problem = match std::fs::File::open(&path) {
            Err(error) => Some(format!("missing: {}: {error}", path.display())),
            Ok(mut file) => {
                let (mut hasher, mut buffer, mut size) = (sha2::Sha256::new(), vec![0u8; 1 << 16], 0u64);
                loop {
                    match file.read(&mut buffer) {
                        Ok(0) => break None,
                        Ok(n) => {
                            hasher.update(&buffer[..n]);
                            size += n as u64;
                        }
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(error) => break Some(format!("unreadable: {error}")),
                    }
                }
                .or_else(|| {
                    let actual = hex::encode(hasher.finalize());
                    if size != blob.size {
                        Some(format!("wrong_size: {size} bytes, not {}", blob.size))
                    } else if actual != blob.sha256 {
                        Some(format!("wrong_hash: the file hashes to {actual}"))
                    } else {
                        None
                    }
                })
            }
        };
        if let Some(problem) = problem {
            blobs.push(BlobProblem { sha256: blob.sha256.clone(), problem });
        }
    }
    let (records_checked, records) = check_records(store)?;
    let transparency_log = crate::service::transparency::log_check(store)?;
    let work_while_suspended = crate::service::certificates::all_affected(store, max_clock_skew_ms)?;
    let ok = database.is_empty() && blobs.is_empty() && records.is_empty() && transparency_log.is_empty();
    Ok(CheckReport {
        ok,
        database,
        blobs_checked: stored.len(),
        blobs,
        records_checked,
        records,
        transparency_log,
        work_while_suspended,
    })
}

/// Loads every stored record's document from its bytes, a page at a time.
fn check_records(store: &dyn Store) -> StoreResult<(usize, Vec<RecordProblem>)> {
    let (mut checked, mut problems, mut after) = (0, Vec::new(), None);
    loop {
        let page = store.records(&RecordFilter { after: after.clone(), limit: 256, ..RecordFilter::default() })?;
        let Some(last) = page.last() else { break };
        after = Some(last.record_id.clone());
        for record in &page {
            checked += 1;
            let loaded = std::panic::catch_unwind(|| automerge::Automerge::load(&record.document));
            let problem = match loaded {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(_) => "Automerge panicked loading it".to_string(),
            };
            problems.push(RecordProblem { record_id: record.record_id.clone(), problem });
        }
    }
    Ok((checked, problems))
}

/// The roles there are.
pub const ROLES: [&str; 4] = ["officer", "supervisor", "reviewer", "admin"];

/// One bad line of an imported CSV file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CsvProblem {
    /// 1-based line number, the header being line 1 (a quoted field with line breaks makes a
    /// record span several lines: this is the line it starts on).
    pub line: usize,
    /// 1-based column of the field at fault, when one field is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The header's name of that column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub problem: String,
}

impl CsvProblem {
    fn line(line: usize, problem: String) -> Self {
        Self { line, column: None, field: None, problem }
    }
}

/// The text of a CSV file as bureaus have it: UTF-8, with or without a byte-order mark, or
/// GB18030, which Chinese spreadsheet software exports by default. Bytes that are valid UTF-8
/// are read as UTF-8 (GB18030 text of Chinese characters practically never is); anything else
/// must be valid GB18030. The error names the line of the first byte that is neither.
pub fn decode_csv_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, CsvProblem> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(std::borrow::Cow::Borrowed(text)),
        Err(utf8) => encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes).ok_or_else(|| {
            let line = 1 + bytes[..utf8.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
            CsvProblem::line(line, "the file is neither UTF-8 nor GB18030".into())
        }),
    }
}

/// Where a text's lines start, to name the 1-based line a CSV record starts on from its byte
/// offset: the `csv` crate's own line count does not count line breaks inside quoted fields, and
/// after a CRLF its offset is that of the LF, so line ends at the offset are skipped first.
struct LineBreaks<'a> {
    bytes: &'a [u8],
    /// The byte offset of every `\n`, in order.
    breaks: Vec<usize>,
}

impl<'a> LineBreaks<'a> {
    fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        LineBreaks { bytes, breaks: bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect() }
    }

    /// The line (from 1) a reader's position is on, found by binary search: a registry of
    /// thousands of rows is not counted from its start once per row.
    fn line_at(&self, position: &csv::Position) -> usize {
        let mut end = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(self.bytes.len());
        while matches!(self.bytes.get(end), Some(b'\r' | b'\n')) {
            end += 1;
        }
        1 + self.breaks.partition_point(|&at| at < end)
    }
}

/// Parses an entity registry CSV (the columns of `../shared/data/entities.csv`: id, name, credit_code,
/// ..., tier, ..., address, latitude, longitude, ...; found by header name) with the `csv` crate, so
/// that quoted fields (commas, doubled quotes, line breaks) and CRLF line ends read as a spreadsheet
/// wrote them; fields are trimmed. Every line is checked; any problem refuses the whole file, listing
/// every bad line with the column at fault.
pub fn parse_entities_csv(text: &str) -> Result<Vec<Entity>, Vec<CsvProblem>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(str::to_string).collect(),
        Err(error) => return Err(vec![CsvProblem::line(1, format!("the header does not read: {error}"))]),
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let required = ["id", "name", "credit_code", "tier", "address", "latitude", "longitude"];
    let missing: Vec<&str> = required.iter().copied().filter(|c| column(c).is_none()).collect();
    if !missing.is_empty() {
        return Err(vec![CsvProblem::line(1, format!("missing columns {missing:?}"))]);
    }
    let index = |name: &str| column(name).expect("checked above");
    let mut entities = Vec::new();
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let mut codes = BTreeSet::new();
    let lines = LineBreaks::new(text);
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| lines.line_at(p));
                problems.push(CsvProblem::line(line, error.to_string()));
                continue;
            }
        };
        let number = record.position().map_or(0, |p| lines.line_at(p));
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != header.len() {
            problems
                .push(CsvProblem::line(number, format!("{} fields, the header has {}", record.len(), header.len())));
            continue;
        }
        let get = |name: &str| &record[index(name)];
        let mut problem = |name: &str, text: String| {
            problems.push(CsvProblem {
                line: number,
                column: Some(index(name) + 1),
                field: Some(name.into()),
                problem: text,
            })
        };
        let checks = [
            ("id", sync_core::input::identifier("id", get("id"))),
            ("name", sync_core::input::short_text("name", get("name"))),
            ("credit_code", sync_core::input::credit_code("credit_code", get("credit_code"))),
            ("tier", sync_core::input::identifier("tier", get("tier"))),
            ("address", sync_core::input::short_text("address", get("address"))),
        ];
        let mut bad = false;
        for (name, check) in checks {
            if let Err(error) = check {
                problem(name, error.to_string());
                bad = true;
            }
        }
        let coordinate = |name: &str, limit: f64| -> Result<f64, String> {
            let value: f64 = get(name).parse().map_err(|_| format!("{name} {:?} is not a number", get(name)))?;
            sync_core::input::coordinate(name, value, -limit, limit).map_err(|e| e.to_string())?;
            Ok(value)
        };
        let (latitude, longitude) = match (coordinate("latitude", 90.0), coordinate("longitude", 180.0)) {
            (Ok(lat), Ok(lon)) => (lat, lon),
            (lat, lon) => {
                for (name, error) in [("latitude", lat.err()), ("longitude", lon.err())] {
                    if let Some(error) = error {
                        problem(name, error);
                    }
                }
                continue;
            }
        };
        if !ids.insert(get("id").to_string()) {
            problem("id", format!("entity id {} appears twice", get("id")));
            bad = true;
        }
        if !codes.insert(get("credit_code").to_string()) {
            problem("credit_code", format!("credit code {} appears twice", get("credit_code")));
            bad = true;
        }
        if !bad {
            entities.push(Entity {
                entity_id: get("id").into(),
                name: get("name").into(),
                credit_code: get("credit_code").into(),
                address: get("address").into(),
                tier: get("tier").into(),
                latitude,
                longitude,
                division_code: column("division_code").map(|i| record[i].to_string()).unwrap_or_default(),
            });
        }
    }
    if problems.is_empty() { Ok(entities) } else { Err(problems) }
}

// The admin API's use cases: officers, roles, certificates, the entity registry, recusals, the
// check and backups. Every one is for admins (listings also for supervisors, and reviewers for
// certificates).

/// A new officer's account, as an admin asks for it.
pub struct NewOfficer {
    pub officer_id: String,
    pub name: String,
    pub unit: String,
    /// `officer` when empty.
    pub roles: Vec<String>,
}

fn check_roles(roles: &[String]) -> ApiResult<()> {
    match roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        Some(role) => Err(ApiError::unprocessable("unknown_role", format!("{role} is not one of {ROLES:?}"))),
        None => Ok(()),
    }
}

/// Creates an officer's account with a one-time password, which it returns.
pub async fn create_officer(context: &Context, caller: &Caller, officer: NewOfficer) -> ApiResult<String> {
    caller.require(&["admin"])?;
    sync_core::input::identifier("officer_id", &officer.officer_id)
        .and_then(|()| sync_core::input::short_text("name", &officer.name))
        .map_err(|e| ApiError::unprocessable("invalid_officer", e.to_string()))?;
    let mut roles = officer.roles.clone();
    if roles.is_empty() {
        roles.push("officer".into());
    }
    roles.sort();
    roles.dedup();
    check_roles(&roles)?;
    let password = one_time_password();
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    };
    let account = Account {
        officer_id: officer.officer_id.clone(),
        name: officer.name,
        unit: officer.unit,
        password_hash: Some(hash),
        must_change_password: true,
        roles,
    };
    let now = now_ms();
    context.blocking(move |store| store.create_account(account, now)).await?;
    Ok(password)
}

/// Every account: for admins and supervisors.
pub async fn list_officers(context: &Context, caller: &Caller) -> ApiResult<Vec<Account>> {
    caller.require(&["admin", "supervisor"])?;
    context.blocking(|store| store.accounts()).await
}

/// A role to grant or revoke.
pub struct RoleChange {
    pub officer_id: String,
    pub role: String,
}

/// Grants a role; granting a role held already is not an error.
pub async fn grant_role(context: &Context, caller: &Caller, change: RoleChange) -> ApiResult<()> {
    caller.require(&["admin"])?;
    check_roles(std::slice::from_ref(&change.role))?;
    let officer = change.officer_id.clone();
    if context.blocking(move |store| store.account(&officer)).await?.is_none() {
        return Err(ApiError::NotFound { what: "officer" });
    }
    context.blocking(move |store| store.grant_role(&change.officer_id, &change.role)).await?;
    Ok(())
}

/// Revokes a role; revoking a role not held, or of an unknown officer, is not an error.
pub async fn revoke_role(context: &Context, caller: &Caller, change: RoleChange) -> ApiResult<()> {
    caller.require(&["admin"])?;
    check_roles(std::slice::from_ref(&change.role))?;
    sync_core::input::identifier("officer_id", &change.officer_id)
        .map_err(|e| ApiError::unprocessable("invalid_officer", e.to_string()))?;
    context.blocking(move |store| store.revoke_role(&change.officer_id, &change.role)).await?;
    Ok(())
}

/// Records an enforcement certificate issued to an officer.
pub async fn issue_certificate(context: &Context, caller: &Caller, certificate: Certificate) -> ApiResult<Certificate> {
    caller.require(&["admin"])?;
    sync_core::input::identifier("number", &certificate.number)
        .map_err(|e| ApiError::unprocessable("invalid_certificate", e.to_string()))?;
    if certificate.valid_until_ms <= certificate.valid_from_ms {
        return Err(ApiError::unprocessable("invalid_certificate", "valid_until_ms must be after valid_from_ms"));
    }
    if !certificate.periods.is_empty() || !certificate.reviews.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "invalid_certificate",
            message: "periods and reviews are recorded by renewals and reviews, not with the issue".into(),
            details: Some(
                serde_json::json!({ "field": if certificate.periods.is_empty() { "reviews" } else { "periods" } }),
            ),
        });
    }
    check_validity_instant("valid_from_ms", certificate.valid_from_ms)?;
    check_validity_instant("valid_until_ms", certificate.valid_until_ms)?;
    let officer = certificate.officer_id.clone();
    if context.blocking(move |store| store.account(&officer)).await?.is_none() {
        return Err(ApiError::NotFound { what: "officer" });
    }
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let stored = context
        .blocking(move |store| {
            store.issue_certificate(&certificate, &by, now)?;
            store.certificate(&certificate.number)
        })
        .await?;
    stored.ok_or(ApiError::NotFound { what: "certificate" })
}

/// Every certificate: for admins, supervisors and reviewers.
pub async fn list_certificates(context: &Context, caller: &Caller) -> ApiResult<Vec<Certificate>> {
    caller.require(&["admin", "supervisor", "reviewer"])?;
    context.blocking(|store| store.certificates(None)).await
}

/// The first instant a certificate's validity may name: 1970-01-01.
pub const EARLIEST_VALIDITY_MS: i64 = 0;

/// The instant a certificate's validity must end before: 2100-01-01T00:00:00Z. A validity from
/// the smallest to the largest i64 is a mistake, and overflows arithmetic on it.
pub const LATEST_VALIDITY_MS: i64 = 4_102_444_800_000;

/// Refuses a validity instant outside [`EARLIEST_VALIDITY_MS`]`..=`[`LATEST_VALIDITY_MS`].
fn check_validity_instant(field: &'static str, ms: i64) -> ApiResult<()> {
    if (EARLIEST_VALIDITY_MS..=LATEST_VALIDITY_MS).contains(&ms) {
        return Ok(());
    }
    Err(ApiError::Unprocessable {
        code: "invalid_certificate",
        message: format!("{field} {ms} is outside 1970-01-01 to 2100-01-01"),
        details: Some(serde_json::json!({ "field": field })),
    })
}

/// Renews a certificate with a new validity period to `valid_until_ms` (P3, see
/// [`crate::service::certificates::renew`]).
pub async fn renew_certificate(
    context: &Context,
    caller: &Caller,
    number: String,
    valid_until_ms: i64,
) -> ApiResult<Certificate> {
    crate::service::certificates::renew(context, caller, number, None, valid_until_ms).await
}

/// Records a change of a certificate's status (suspension, revocation, surrender,
/// reinstatement), taking effect at `at_ms` (now when `None`); none after a surrender.
pub async fn change_certificate_status(
    context: &Context,
    caller: &Caller,
    number: String,
    status: CertificateStatus,
    at_ms: Option<i64>,
    reason: Option<String>,
) -> ApiResult<Certificate> {
    crate::service::certificates::change_status(context, caller, number, status, at_ms, reason).await
}

/// Imports the entity registry from a CSV file; any bad line refuses the whole file. How many
/// entities were added or updated.
pub async fn import_entities(context: &Context, caller: &Caller, body: &[u8]) -> ApiResult<usize> {
    caller.require(&["admin"])?;
    let body = decode_csv_text(body).map_err(|problem| ApiError::BadRequest {
        code: "invalid_csv_encoding",
        message: problem.problem.clone(),
        details: Some(serde_json::json!({ "line": problem.line })),
    })?;
    let entities = parse_entities_csv(&body).map_err(|problems| ApiError::Unprocessable {
        code: "invalid_csv",
        message: format!("{} bad line(s); nothing was imported", problems.len()),
        details: Some(serde_json::json!({ "problems": problems })),
    })?;
    let (by, now) = (caller.officer_id.clone(), now_ms());
    let count = context.blocking(move |store| store.import_entities_by(&entities, &by, now)).await?;
    Ok(count)
}

/// An officer to keep from inspecting an entity (P4), and why.
pub struct Recusal {
    pub officer_id: String,
    pub entity_id: String,
    pub ground: String,
}

/// Records that an officer is recused from an entity; recording it again replaces the ground.
pub async fn add_recusal(context: &Context, caller: &Caller, recusal: Recusal) -> ApiResult<()> {
    caller.require(&["admin", "supervisor"])?;
    // A recusal of someone or something the bureau does not know would never be consulted, and
    // would hide a typo in the id that was meant.
    let (officer, entity) = (recusal.officer_id.clone(), recusal.entity_id.clone());
    let (account, entity) =
        context.blocking(move |store| Ok((store.account(&officer)?, store.entity(&entity)?))).await?;
    if account.is_none() {
        return Err(ApiError::Unprocessable {
            code: "unknown_officer",
            message: format!("no officer {}", recusal.officer_id),
            details: Some(serde_json::json!({ "officer_id": recusal.officer_id })),
        });
    }
    if entity.is_none() {
        return Err(ApiError::Unprocessable {
            code: "unknown_entity",
            message: format!("no entity {} in the registry", recusal.entity_id),
            details: Some(serde_json::json!({ "entity_id": recusal.entity_id })),
        });
    }
    context.blocking(move |store| store.add_recusal(&recusal.officer_id, &recusal.entity_id, &recusal.ground)).await?;
    Ok(())
}

/// Checks the database, every stored blob's file and the transparency log.
pub async fn check_all(context: &Context, caller: &Caller) -> ApiResult<CheckReport> {
    caller.require(&["admin"])?;
    let config = context.config.clone();
    let report = context
        .blocking(move |store| {
            check(store, |sha256| crate::service::blobs::blob_path(&config, sha256), config.max_clock_skew_ms)
        })
        .await?;
    Ok(report)
}

/// Copies the database, consistently, while serving, into a new file under the data folder's
/// `backups/`; the file and its size.
pub async fn backup(context: &Context, caller: &Caller) -> ApiResult<(std::path::PathBuf, u64)> {
    caller.require(&["admin"])?;
    let folder = context.config.data_dir.join("backups");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(format!("fieldsync-{}.sqlite3", now_ms()));
    let target = path.clone();
    context.blocking(move |store| store.backup(&target)).await?;
    let bytes = std::fs::metadata(&path)?.len();
    Ok((path, bytes))
}

/// Every entity of the registry, by id: for admins.
pub async fn entities(context: &Context, caller: &Caller) -> ApiResult<Vec<Entity>> {
    caller.require(&["admin"])?;
    let mut entities = context.blocking(|store| store.entities()).await?;
    entities.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
    Ok(entities)
}

/// One certificate with its status history: for admins, supervisors and reviewers.
pub async fn certificate(context: &Context, caller: &Caller, number: String) -> ApiResult<Certificate> {
    caller.require(&["admin", "supervisor", "reviewer"])?;
    let certificate = context.blocking(move |store| store.certificate(&number)).await?;
    certificate.ok_or(ApiError::NotFound { what: "certificate" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_city_imports_whole() {
        let csv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/entities.csv"))
            .expect("../shared/data beside the project");
        assert_eq!(parse_entities_csv(&csv).unwrap().len(), 3000);
    }

    #[test]
    fn bad_lines_are_each_named_and_refuse_the_file() {
        let csv =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/entities.csv")).unwrap();
        let mut lines: Vec<String> = csv.lines().take(6).map(str::to_string).collect();
        // Line 2: wrong check character. Line 3: duplicate id of line 4. Line 5: latitude 91. Line 6: a field missing.
        lines[1] = lines[1].replacen("91450223416G3QBX69", "91450223416G3QBX60", 1);
        let id_of_4 = lines[3].split(',').next().unwrap().to_string();
        let id_of_3 = lines[2].split(',').next().unwrap().to_string();
        lines[2] = lines[2].replacen(&id_of_3, &id_of_4, 1);
        let mut fields: Vec<String> = lines[4].split(',').map(str::to_string).collect();
        fields[9] = "91".into();
        lines[4] = fields.join(",");
        let mut fields: Vec<String> = lines[5].split(',').map(str::to_string).collect();
        fields.remove(1);
        lines[5] = fields.join(",");
        let problems = parse_entities_csv(&lines.join("\n")).unwrap_err();
        let numbered: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(numbered, vec![2, 4, 5, 6], "{problems:?}");
        assert!(problems[0].problem.contains("GB 32100-2015"));
        assert!(problems[1].problem.contains("appears twice"));
        assert!(problems[2].problem.contains("latitude"));
        assert!(problems[3].problem.contains("fields"));
    }
}
