//! Fixtures shared by sync-core's integration tests: the synthetic city's officers and
//! certificates, device actors, and contexts for validation.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use automerge::ActorId;
use schemas::{Certificate, CertificateStatus, CertificateStatusChange, OfficerPresent};
use sync_core::document::{RecordDocument, new_record_id};
use sync_core::validate::{ActorBinding, ValidationContext};

pub const DAY: i64 = 86_400_000;
/// 2026-06-01T00:00:00Z, the day of the inspections in these tests.
pub const T0: i64 = 1_780_272_000_000;
/// The task every test record belongs to.
pub const TASK: &str = "T0001";

/// Unix milliseconds of midnight UTC+8 (the bureau's zone) starting `date` (YYYY-MM-DD).
pub fn date_ms(date: &str) -> i64 {
    let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (y, m, d) = (parts[0], parts[1], parts[2]);
    // Days from civil, H. Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * DAY - 8 * 3_600_000
}

/// An officer of `../shared/data/officers.csv`.
#[derive(Clone, Debug)]
pub struct Officer {
    pub id: String,
    pub name: String,
    pub certificate_number: String,
    pub status: String,
    pub certificate: Certificate,
}

impl Officer {
    pub fn present(&self, shown: bool) -> OfficerPresent {
        OfficerPresent {
            officer_id: self.id.clone(),
            name: self.name.clone(),
            certificate_number: self.certificate_number.clone(),
            certificate_shown: shown,
        }
    }
}

/// The synthetic city's 150 officers. The CSV gives no date for a suspension: these fixtures
/// suspend such certificates 30 days before [`T0`].
pub fn officers() -> Vec<Officer> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/officers.csv");
    let csv = std::fs::read_to_string(path).expect("../shared/data/officers.csv beside the project");
    csv.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let status_history = match f[6] {
                "active" => vec![],
                "suspended" => vec![CertificateStatusChange {
                    at_ms: T0 - 30 * DAY,
                    status: CertificateStatus::Suspended,
                    reason: None,
                }],
                other => panic!("unknown status {other}"),
            };
            Officer {
                id: f[0].into(),
                name: f[1].into(),
                certificate_number: f[3].into(),
                status: f[6].into(),
                certificate: Certificate {
                    number: f[3].into(),
                    officer_id: f[0].into(),
                    issuing_authority: "广西壮族自治区人民政府".into(),
                    valid_from_ms: date_ms(f[4]),
                    valid_until_ms: date_ms(f[5]) + DAY,
                    status_history,
                    periods: vec![],
                    reviews: vec![],
                },
            }
        })
        .collect()
}

/// Officers whose certificates are valid throughout the tests.
pub fn valid_officers() -> Vec<Officer> {
    officers().into_iter().filter(|o| o.status == "active" && o.certificate.valid_until_ms > T0 + 365 * DAY).collect()
}

pub fn officer_with(status: &str, expired: bool) -> Officer {
    officers()
        .into_iter()
        .find(|o| o.status == status && (o.certificate.valid_until_ms <= T0) == expired)
        .expect("the synthetic city has such an officer")
}

pub fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

pub fn record_id(n: u8) -> String {
    new_record_id(T0 as u64, [n; 10])
}

/// A device: its id, its actor and its officer.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: String,
    pub actor: ActorId,
    pub officer: Officer,
}

pub fn device(n: u8, officer: &Officer) -> Device {
    Device { id: format!("D{n:03}"), actor: actor(n), officer: officer.clone() }
}

/// The server's context for changes sent by `sender`, with every device enrolled and one task
/// whose team is `team`.
pub fn context(sender: &Device, devices: &[&Device], team: &[&Officer]) -> ValidationContext {
    let actors: BTreeMap<ActorId, ActorBinding> = devices
        .iter()
        .map(|d| (d.actor.clone(), ActorBinding { device_id: d.id.clone(), officer_id: d.officer.id.clone() }))
        .collect();
    let mut certificates: Vec<Certificate> = devices.iter().map(|d| d.officer.certificate.clone()).collect();
    certificates.extend(team.iter().map(|o| o.certificate.clone()));
    ValidationContext {
        sending_device_id: sender.id.clone(),
        actors,
        certificates,
        teams: BTreeMap::from([(TASK.to_string(), team.iter().map(|o| o.id.clone()).collect::<BTreeSet<_>>())]),
        now_ms: T0 + DAY,
        max_clock_skew_ms: 5 * 60_000,
        refused: BTreeMap::new(),
        reviewed: Default::default(),
        task_entities: Default::default(),
        recusals: Default::default(),
        checklists: Default::default(),
        completeness: Default::default(),
    }
}

/// A record created on `device` for [`TASK`] at [`T0`].
pub fn new_record(n: u8, device: &Device) -> RecordDocument {
    RecordDocument::create(&record_id(n), device.actor.clone(), TASK, T0).unwrap()
}

/// A record with the same document, edited as another device.
pub fn replica(record: &RecordDocument, device: &Device) -> RecordDocument {
    RecordDocument::from_automerge(record.record_id(), record.automerge().clone(), device.actor.clone())
}

/// Merges `from` into `into` (what a sync does, without the protocol).
pub fn merge(into: &mut RecordDocument, from: &RecordDocument) {
    into.automerge_mut().merge(&mut from.automerge().clone()).unwrap();
}

pub mod sim;

/// Fills what a record needs before it is signed and locked (the recusal question, a conclusion,
/// the end time `at_ms`), as edits made at `at_ms`.
pub fn complete(record: &mut RecordDocument, at_ms: i64) {
    for edit in sync_core::sample::completing_edits(at_ms) {
        record.apply(edit, at_ms).unwrap();
    }
}
