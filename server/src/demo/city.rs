//! The synthetic city the demo is made from (`../shared/data/`), and the registries it seeds
//! through the store's own operations, as the admin subcommands do.

use super::*;

/// One entity of `entities.csv`, with what a record says of it.
#[derive(Clone, Debug)]
pub(super) struct EntityRow {
    pub(super) entity_id: String,
    pub(super) name: String,
    pub(super) credit_code: String,
    pub(super) tier: String,
    pub(super) legal_representative: String,
    pub(super) address: String,
    pub(super) latitude: f64,
    pub(super) longitude: f64,
    pub(super) discharge_permit: String,
}

/// One officer of `officers.csv`.
#[derive(Clone, Debug)]
pub(super) struct OfficerRow {
    pub(super) officer_id: String,
    pub(super) name: String,
    pub(super) unit: String,
    pub(super) certificate_number: String,
    pub(super) issued: Date,
    pub(super) valid_to: Date,
    pub(super) status: String,
}

/// The synthetic city's files, read once.
pub(super) struct City {
    /// `entities.csv` as it is, for the registry's import.
    pub(super) entities_csv: String,
    pub(super) entities: Vec<EntityRow>,
    pub(super) officers: Vec<OfficerRow>,
    /// (officer, entity, ground).
    pub(super) recusals: Vec<(String, String, String)>,
    pub(super) matters_json: Vec<u8>,
    /// Each matter's checklist item codes.
    pub(super) checklists: BTreeMap<String, Vec<String>>,
}

impl City {
    pub(super) fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()))
        };
        let rows = |text: &str| -> Vec<Vec<String>> {
            text.lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.split(',').map(str::to_string).collect())
                .collect()
        };
        let entities_csv = read("entities.csv")?;
        let mut entities = Vec::new();
        for row in rows(&entities_csv) {
            let [
                entity_id,
                name,
                credit_code,
                _,
                _,
                _,
                tier,
                legal_representative,
                address,
                latitude,
                longitude,
                permit,
            ] = &row[..]
            else {
                bail!("entities.csv: a line has {} columns, not 12", row.len());
            };
            entities.push(EntityRow {
                entity_id: entity_id.clone(),
                name: name.clone(),
                credit_code: credit_code.clone(),
                tier: tier.clone(),
                legal_representative: legal_representative.clone(),
                address: address.clone(),
                latitude: latitude.parse().with_context(|| format!("entities.csv: {entity_id}'s latitude"))?,
                longitude: longitude.parse().with_context(|| format!("entities.csv: {entity_id}'s longitude"))?,
                discharge_permit: permit.clone(),
            });
        }
        let mut officers = Vec::new();
        for row in rows(&read("officers.csv")?) {
            let [officer_id, name, unit, certificate_number, issued, valid_to, status, _] = &row[..] else {
                bail!("officers.csv: a line has {} columns, not 8", row.len());
            };
            let date = |text: &str| text.parse::<Date>().with_context(|| format!("officers.csv: {officer_id}: {text}"));
            officers.push(OfficerRow {
                officer_id: officer_id.clone(),
                name: name.clone(),
                unit: unit.clone(),
                certificate_number: certificate_number.clone(),
                issued: date(issued)?,
                valid_to: date(valid_to)?,
                status: status.clone(),
            });
        }
        let mut recusals = Vec::new();
        for row in rows(&read("recusals.csv")?) {
            let [officer, entity, ground] = &row[..] else {
                bail!("recusals.csv: a line has {} columns, not 3", row.len());
            };
            recusals.push((officer.clone(), entity.clone(), ground.clone()));
        }
        let matters_json = read("matters.json")?.into_bytes();
        let list = campaigns::parse_matters(&matters_json).map_err(|e| anyhow!("matters.json: {e}"))?;
        let checklists = list.matters.iter().map(|m| (m.code.clone(), m.checklist.clone())).collect();
        Ok(Self { entities_csv, entities, officers, recusals, matters_json, checklists })
    }

    pub(super) fn entity(&self, entity_id: &str) -> anyhow::Result<&EntityRow> {
        self.entities.iter().find(|e| e.entity_id == entity_id).ok_or_else(|| anyhow!("no entity {entity_id}"))
    }

    pub(super) fn officer_name(&self, officer_id: &str) -> &str {
        self.officers.iter().find(|o| o.officer_id == officer_id).map_or("", |o| o.name.as_str())
    }
}

/// What went into the registries.
pub(super) struct Registry {
    pub(super) entities: usize,
    pub(super) officers: usize,
    pub(super) suspended: Vec<String>,
    pub(super) expired: usize,
    pub(super) recusals: usize,
    pub(super) matters: usize,
}

/// Unix ms of 00:00 of `day` in the bureau's time zone.
pub(super) fn start_of(day: Date) -> i64 {
    sync_core::campaigns::period_ms(day, day).0
}

/// Fills the registries and accounts through the store operations the admin subcommands use
/// (`officer add`, `certificate issue|suspend|revoke`, `entities import`, `matters import`).
pub(super) fn seed(store: &dyn Store, city: &City, now: i64) -> anyhow::Result<Registry> {
    // One hash per role: every account of a role has the role's printed password.
    let account = |officer_id: &str, name: &str, unit: &str, hash: &str, role: &str| {
        store.create_account(
            Account {
                officer_id: officer_id.to_string(),
                name: name.to_string(),
                unit: unit.to_string(),
                password_hash: Some(hash.to_string()),
                must_change_password: false,
                roles: vec![role.to_string()],
            },
            now,
        )
    };
    account(ADMIN, "系统管理员", "", &hash_password(ADMIN_PASSWORD), "admin")?;
    account(SUPERVISOR, "执法监督科科长", "市生态环境局", &hash_password(SUPERVISOR_PASSWORD), "supervisor")?;
    account(REVIEWER, "法制审核员", "市生态环境局", &hash_password(REVIEWER_PASSWORD), "reviewer")?;
    let officer_hash = hash_password(OFFICER_PASSWORD);
    let (mut suspended, mut expired) = (Vec::new(), 0);
    for officer in &city.officers {
        account(&officer.officer_id, &officer.name, &officer.unit, &officer_hash, "officer")?;
        let certificate = Certificate {
            number: officer.certificate_number.clone(),
            officer_id: officer.officer_id.clone(),
            issuing_authority: "广西壮族自治区人民政府".into(),
            valid_from_ms: start_of(officer.issued),
            valid_until_ms: sync_core::campaigns::period_ms(officer.valid_to, officer.valid_to).1,
            status_history: vec![],
            periods: vec![],
            reviews: vec![],
        };
        store.issue_certificate(&certificate, BY, now)?;
        if certificate.valid_until_ms <= now {
            expired += 1;
        }
        let status = match officer.status.as_str() {
            "active" => None,
            "suspended" => Some((CertificateStatus::Suspended, "停职接受调查")),
            "revoked" => Some((CertificateStatus::Revoked, "执法证件被注销")),
            other => bail!("officers.csv: {}: status {other:?}", officer.officer_id),
        };
        if let Some((status, reason)) = status {
            let at_ms = (now - 30 * DAY).max(certificate.valid_from_ms);
            let change = CertificateStatusChange { at_ms, status, reason: Some(reason.into()) };
            store.change_certificate_status(&certificate.number, &change, BY, now)?;
            if status == CertificateStatus::Suspended {
                suspended.push(certificate.number.clone());
            }
        }
    }
    // Parsed a hundred lines at a time, each with the header: the parser counts a line's number
    // from the start of its text, which over the whole registry at once took 14 s in a debug
    // build. The city's file has no line breaks inside quoted fields, so its lines are its rows.
    let mut lines = city.entities_csv.lines();
    let header = lines.next().unwrap_or_default();
    let rows: Vec<&str> = lines.collect();
    let mut entities = Vec::new();
    for (chunk_number, chunk) in rows.chunks(100).enumerate() {
        let text = format!("{header}\n{}\n", chunk.join("\n"));
        let parsed = admin::parse_entities_csv(&text).map_err(|problems| {
            let first = problems.first().map_or(0, |p| chunk_number * 100 + p.line);
            anyhow!("entities.csv: {} bad line(s), the first on line {first}", problems.len())
        })?;
        entities.extend(parsed);
    }
    let imported = store.import_entities_by(&entities, BY, now)?;
    for (officer, entity, ground) in &city.recusals {
        store.add_recusal(officer, entity, ground)?;
    }
    let list = campaigns::parse_matters(&city.matters_json).map_err(|e| anyhow!("matters.json: {e}"))?;
    let matters = store.import_matters(&list, BY, now)?;
    Ok(Registry {
        entities: imported,
        officers: city.officers.len(),
        suspended,
        expired,
        recusals: city.recusals.len(),
        matters,
    })
}
