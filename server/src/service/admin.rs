//! Operations shared by the admin subcommands of the binary and the admin API.

use std::collections::BTreeSet;

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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RecordProblem {
    pub record_id: String,
    pub problem: String,
}

/// A stored blob whose file is not what its row says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BlobProblem {
    pub sha256: String,
    /// `missing`, `wrong_size` or `wrong_hash`, and what was found.
    pub problem: String,
}

/// What `check` found: the database, every blob's file, and the transparency log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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
}

/// Checks the database (SQLite's integrity check), every stored blob's file against its row
/// (present, its size, its SHA-256, read in full), and the transparency log against itself.
pub fn check(store: &dyn Store, blob_path: impl Fn(&str) -> std::path::PathBuf) -> StoreResult<CheckReport> {
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
    let ok = database.is_empty() && blobs.is_empty() && records.is_empty() && transparency_log.is_empty();
    Ok(CheckReport { ok, database, blobs_checked: stored.len(), blobs, records_checked, records, transparency_log })
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

/// The 1-based line of `text` a CSV record starts on, counted from its byte offset: the `csv`
/// crate's own line count does not count line breaks inside quoted fields, and after a CRLF its
/// offset is that of the LF, so line ends at the offset are skipped first.
fn line_at(text: &str, position: &csv::Position) -> usize {
    let bytes = text.as_bytes();
    let mut end = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(bytes.len());
    while matches!(bytes.get(end), Some(b'\r' | b'\n')) {
        end += 1;
    }
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
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
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| line_at(text, p));
                problems.push(CsvProblem::line(line, error.to_string()));
                continue;
            }
        };
        let number = record.position().map_or(0, |p| line_at(text, p));
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
