//! Realistic inspection records made the way a phone makes them, for benchmarks, load runs and
//! demonstrations: one Automerge change per officer action.

use automerge::sync::{State, SyncDoc};
use automerge::{ActorId, Automerge};
use schemas::{ChecklistResult, EntityRef, OfficerPresent};

use crate::document::{Edit, EditError, RecordDocument};

/// What a sample record is about.
#[derive(Clone, Debug)]
pub struct SampleInspection<'a> {
    pub record_id: &'a str,
    pub task_id: &'a str,
    /// The device's actor id.
    pub actor: ActorId,
    /// When the inspection starts; each action takes the next 7 seconds.
    pub started_at_ms: i64,
    pub entity: EntityRef,
    pub address: &'a str,
    pub latitude: f64,
    pub longitude: f64,
    /// The two officers present: officer id, name and certificate number.
    pub officers: [(&'a str, &'a str, &'a str); 2],
    /// The checklist item codes, every one of which gets a result.
    pub checklist: &'a [String],
    /// Makes the five photo hashes differ between records.
    pub photo_seed: u32,
}

/// A record of an inspection: entity, place, two officers with certificates shown, every checklist
/// item (every seventh non-compliant, with a note), a paragraph of observations typed in five goes,
/// five photos, the recusal question, a conclusion and the times. About 40 changes.
pub fn inspection_record(spec: &SampleInspection<'_>) -> Result<RecordDocument, EditError> {
    let mut record = RecordDocument::create(spec.record_id, spec.actor.clone(), spec.task_id, spec.started_at_ms)?;
    let mut at = spec.started_at_ms;
    let mut edit = |record: &mut RecordDocument, edit: Edit| -> Result<(), EditError> {
        at += 7_000;
        record.apply(edit, at).map(|_| ())
    };
    edit(&mut record, Edit::SetStartedAt(spec.started_at_ms))?;
    edit(&mut record, Edit::SetEntity(spec.entity.clone()))?;
    edit(&mut record, Edit::SetAddress(spec.address.into()))?;
    edit(&mut record, Edit::SetLocation { latitude: spec.latitude, longitude: spec.longitude })?;
    for (officer_id, name, certificate_number) in spec.officers {
        edit(
            &mut record,
            Edit::AddOfficerPresent(OfficerPresent {
                officer_id: officer_id.into(),
                name: name.into(),
                certificate_number: certificate_number.into(),
                certificate_shown: true,
            }),
        )?;
    }
    for (index, code) in spec.checklist.iter().enumerate() {
        let result = if index % 7 == 3 { ChecklistResult::NonCompliant } else { ChecklistResult::Compliant };
        let note = (result == ChecklistResult::NonCompliant).then(|| "现场发现问题，已拍照取证。".to_string());
        edit(&mut record, Edit::SetChecklistItem { code: code.clone(), result, note })?;
    }
    for sentence in [
        "执法人员出示执法证件，告知检查事由。",
        "现场检查时企业正常生产，废水处理设施运行。",
        "总排口水质清澈，未见异常排放。",
        "危险废物贮存间标识齐全，台账记录至上月。",
        "企业负责人陪同检查并对检查情况无异议。",
    ] {
        edit(&mut record, Edit::AppendObservations(sentence.into()))?;
    }
    for photo in 0..5u32 {
        let sha256 = format!("{:08x}{:08x}", spec.photo_seed, photo).repeat(4);
        edit(&mut record, Edit::AddPhoto { sha256, caption: format!("现场照片{photo}") })?;
    }
    for completing in completing_edits(spec.started_at_ms + 3_600_000) {
        edit(&mut record, completing)?;
    }
    Ok(record)
}

/// The edits that make a record of officers alone complete enough to sign and lock
/// ([`crate::rules::missing_for_lock`]): the recusal question put and answered, a conclusion, and
/// the end time `ended_at_ms` (not before the start). People present sign or refuse on their own.
pub fn completing_edits(ended_at_ms: i64) -> Vec<Edit> {
    vec![
        Edit::SetRecusal { asked: true, answer: Some("当事人不申请回避。".into()) },
        Edit::SetConclusion("未发现环境违法行为。".into()),
        Edit::SetEndedAt(ended_at_ms),
    ]
}

/// Plain Automerge sync of documents between two in-process peers, one document at a time, no
/// framing and no validation: the baseline the benchmarks compare fieldsync's sync with.
pub struct PlainPeers {
    device: Vec<Automerge>,
    server: Vec<Automerge>,
    device_states: Vec<State>,
    server_states: Vec<State>,
}

impl PlainPeers {
    /// A device holding `device` and a server holding nothing.
    pub fn new(device: Vec<Automerge>) -> Self {
        let n = device.len();
        Self {
            device,
            server: (0..n).map(|_| Automerge::new()).collect(),
            device_states: vec![State::new(); n],
            server_states: vec![State::new(); n],
        }
    }

    /// Starts a new connection: only the persistent part of each state is kept.
    pub fn reconnect(&mut self) {
        for state in self.device_states.iter_mut().chain(self.server_states.iter_mut()) {
            *state = State::decode(&state.encode()).unwrap();
        }
    }

    /// One sync of every document; returns (messages, bytes).
    pub fn sync(&mut self) -> (usize, usize) {
        let (mut messages, mut bytes) = (0, 0);
        for i in 0..self.device.len() {
            loop {
                let mut quiet = true;
                if let Some(m) = self.device[i].generate_sync_message(&mut self.device_states[i]) {
                    let encoded = m.encode();
                    bytes += encoded.len();
                    messages += 1;
                    let m = automerge::sync::Message::decode(&encoded).unwrap();
                    self.server[i].receive_sync_message(&mut self.server_states[i], m).unwrap();
                    quiet = false;
                }
                if let Some(m) = self.server[i].generate_sync_message(&mut self.server_states[i]) {
                    let encoded = m.encode();
                    bytes += encoded.len();
                    messages += 1;
                    let m = automerge::sync::Message::decode(&encoded).unwrap();
                    self.device[i].receive_sync_message(&mut self.device_states[i], m).unwrap();
                    quiet = false;
                }
                if quiet {
                    break;
                }
            }
        }
        (messages, bytes)
    }
}
