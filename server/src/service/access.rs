//! Who may read what: the one place every read path asks.
//!
//! A random-inspection campaign's drawn list is confidential until its draw is public (DOMAIN.md,
//! random inspection item 5): before then only supervisors and, task by task, the task's team
//! may see a drawn task or anything that reveals it (its records, their history, log, evidence,
//! photos, thumbnails, metadata, quarantined changes, the transparency log's leaves about them).
//! Deciding that separately in each handler let reviewers read a confidential task's records
//! while its task was hidden (issue 14), so every read path calls the functions here instead,
//! and the end-to-end test `a_reviewer_gets_no_confidential_task_data_from_any_route` asks every
//! route of the router as a reviewer and fails for a route it does not know.
//!
//! The rules, from the widest reader down:
//!
//! - supervisors read every task, record and blob;
//! - a task's team reads the task and its records;
//! - reviewers read every task and record but a campaign's drawn tasks before the draw is public,
//!   and records with no task;
//! - a blob is read by whoever may read a record referencing it;
//! - a device (its enrolment leaf, its log entries' leaves) is read by administrators,
//!   supervisors, reviewers and its own officer.
//!
//! The functions take the store and run inside a store job ([`crate::service::Context::blocking`]); a
//! thing the caller may not read is answered `not_found`, like one that does not exist, so that
//! ids cannot be probed.

use std::collections::BTreeSet;

use sync_core::calendar::Date;
use sync_core::transparency::{Leaf, LeafItem};

use crate::service::auth::Caller;
use crate::store::{Device, RecordFilter, Store, StoreError, StoredRecord, Task};

type StoreResult<T> = Result<T, StoreError>;

/// The bureau's date now (UTC+8), the day confidentiality is judged on.
pub fn today() -> StoreResult<Date> {
    sync_core::campaigns::date_of_ms(crate::service::now_ms())
        .ok_or_else(|| StoreError::Other("the clock is out of range".into()))
}

/// What one caller may read, judged on one day.
pub struct Access<'a> {
    store: &'a dyn Store,
    caller: &'a Caller,
    today: Date,
    /// The confidential tasks the caller is not on, read once when first needed.
    hidden: std::cell::OnceCell<BTreeSet<String>>,
}

impl<'a> Access<'a> {
    pub fn new(store: &'a dyn Store, caller: &'a Caller, today: Date) -> Self {
        Self { store, caller, today, hidden: std::cell::OnceCell::new() }
    }

    fn supervisor(&self) -> bool {
        self.caller.has_role("supervisor")
    }

    fn reviewer(&self) -> bool {
        self.caller.has_role("reviewer")
    }

    /// Whether the caller reads every record except confidential ones (supervisors, reviewers);
    /// others read only their teams' records.
    pub fn reads_all_but_confidential(&self) -> bool {
        self.supervisor() || self.reviewer()
    }

    /// The campaign tasks whose draw is not public and whose team the caller is not on: none
    /// for a supervisor.
    pub fn hidden_tasks(&self) -> StoreResult<&BTreeSet<String>> {
        if let Some(hidden) = self.hidden.get() {
            return Ok(hidden);
        }
        let mut hidden = BTreeSet::new();
        if !self.supervisor() {
            for task_id in crate::service::campaigns::confidential_tasks(self.store, self.today)? {
                let on_team = self.store.task(&task_id)?.is_some_and(|t| t.team.contains(&self.caller.officer_id));
                if !on_team {
                    hidden.insert(task_id);
                }
            }
        }
        Ok(self.hidden.get_or_init(|| hidden))
    }

    /// Whether the caller may read `task`.
    pub fn task(&self, task: &Task) -> StoreResult<bool> {
        if self.supervisor() || task.team.contains(&self.caller.officer_id) {
            return Ok(true);
        }
        if !self.reviewer() {
            return Ok(false);
        }
        Ok(!crate::service::campaigns::confidential(self.store, &task.task_id, self.today)?)
    }

    /// Whether the caller may read the records of the task `task_id` (`None`: a record with no task).
    pub fn task_id(&self, task_id: Option<&str>) -> StoreResult<bool> {
        match task_id {
            None => Ok(self.reads_all_but_confidential()),
            Some(task_id) => match self.store.task(task_id)? {
                Some(task) => self.task(&task),
                // A record naming a task that does not exist: only those who read every record.
                None => Ok(self.reads_all_but_confidential()),
            },
        }
    }

    /// Whether the caller may read `record`.
    pub fn record(&self, record: &StoredRecord) -> StoreResult<bool> {
        self.task_id(record.task_id.as_deref())
    }

    /// Whether the caller may read what is known of the record `record_id`, which may not be
    /// stored (a record whose first changes were all refused has quarantined changes only).
    pub fn record_id(&self, record_id: &str) -> StoreResult<bool> {
        match self.store.record_task(record_id)? {
            Some(task_id) => self.task_id(Some(&task_id)),
            None => Ok(self.reads_all_but_confidential()),
        }
    }

    /// Whether the caller may read the blob `sha256`: a record it may read references it.
    pub fn blob(&self, sha256: &str) -> StoreResult<bool> {
        // A reviewer who may read every record (no confidential task is hidden from them) may
        // read every blob, without reading the records to find one that references it.
        if self.supervisor() || (self.reviewer() && self.hidden_tasks()?.is_empty()) {
            return Ok(true);
        }
        if !self.reviewer() && self.store.blob_linked_for_officer(sha256, &self.caller.officer_id)? {
            return Ok(true);
        }
        // Not linked (yet) to a record the caller reads: any readable record referencing it
        // will do. Read them a page at a time.
        let visible_to = (!self.reviewer()).then(|| self.caller.officer_id.clone());
        let mut after = None;
        loop {
            let filter = RecordFilter {
                visible_to: visible_to.clone(),
                after: after.take(),
                limit: 100,
                ..RecordFilter::default()
            };
            let page = self.store.records(&filter)?;
            for record in &page {
                if record_photos(record).is_ok_and(|photos| photos.iter().any(|p| p == sha256))
                    && self.record(record)?
                {
                    return Ok(true);
                }
            }
            if page.len() < filter.limit {
                return Ok(false);
            }
            after = page.last().map(|record| record.record_id.clone());
        }
    }

    /// Whether the caller may know of `device`: its officer, administrators, supervisors and
    /// reviewers (who read the devices of every record's history).
    pub fn device(&self, device: &Device) -> bool {
        device.officer_id == self.caller.officer_id
            || self.supervisor()
            || self.reviewer()
            || self.caller.has_role("admin")
    }

    /// Whether the caller may read the data of a transparency-log leaf: whoever may read its subject.
    pub fn leaf(&self, data: &[u8]) -> StoreResult<bool> {
        let Ok(leaf) = Leaf::from_bytes(data) else { return Ok(self.supervisor()) };
        match leaf.item {
            LeafItem::DeviceEnrolled { device_id, .. } | LeafItem::LogEntry { device_id, .. } => {
                Ok(self.store.device(&device_id)?.is_some_and(|device| self.device(&device)))
            }
            LeafItem::RecordSigned { record_id, .. }
            | LeafItem::RecordLocked { record_id, .. }
            | LeafItem::RecordState { record_id, .. } => self.record_id(&record_id),
            LeafItem::Blob { sha256, .. } => self.blob(&hex::encode(sha256)),
        }
    }
}

/// The photo hashes a stored record references, read as `GET /v1/records/{record_id}` reads it.
pub fn record_photos(stored: &StoredRecord) -> StoreResult<Vec<String>> {
    let doc = automerge::Automerge::load(&stored.document).map_err(|e| StoreError::Other(e.to_string()))?;
    let record =
        sync_core::document::read_record(&stored.record_id, &doc).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(record.photos.into_iter().map(|photo| photo.sha256).collect())
}
