//! The store's conformance suite: what every backend must do, whatever keeps the data.
//!
//! Each case takes a fresh, empty store from a [`Backend`] and checks one area's behaviour
//! through the store's traits and the use cases written once over them (`service::transparency`,
//! `service::sync_commit`): concurrent writers on one record, a change feed that never skips a
//! record, a log that only grows, uploads that finish once, and so on.
//! [`conformance_suite!`] makes one test per case for a backend; SQLite runs it below, and a
//! new backend (PostgreSQL) adds one line and must pass it unchanged.

mod blobs;
mod log;
mod records;
mod registry;

use std::sync::Arc;

use server::store::{Account, Device, Store};

/// A fresh, empty store, with whatever must live as long as it (a folder, a database).
pub type Backend = fn() -> (Box<dyn std::any::Any>, Arc<dyn Store>);

/// One test per case of the suite, against `$backend`.
macro_rules! conformance_suite {
    ($module:ident, $backend:expr, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                #[allow(non_snake_case)]
                fn $case() {
                    super::$case($backend);
                }
            )*
        }
    };
}

/// The embedded default store, in a temporary folder.
fn sqlite() -> (Box<dyn std::any::Any>, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = server::store::sqlite::SqliteStore::open_in(dir.path()).unwrap();
    (Box::new(dir), store)
}

use blobs::*;
use log::*;
use records::*;
use registry::*;

conformance_suite!(
    sqlite_store,
    super::sqlite,
    [
        accounts_roles_and_sessions,
        devices_enrol_with_their_leaf_up_to_the_cap,
        entities_keep_their_history_and_tasks_their_teams,
        certificates_keep_each_period_and_review,
        a_prepared_exchange_whose_record_changed_meanwhile_is_not_committed,
        a_prepared_exchanges_leaves_are_appended_with_its_writes_and_only_then,
        an_exchange_prepared_before_a_refusal_of_its_record_runs_again_in_the_writer,
        a_device_keeps_a_bounded_number_of_refusals_per_record,
        concurrent_writers_on_one_record_lose_no_write,
        the_change_feed_never_skips_a_record,
        record_summaries_follow_their_records_and_page_in_the_store,
        uploads_start_resume_stop_at_the_limit_and_finish_once,
        a_blobs_metadata_is_kept_once_beside_it,
        proofs_from_stored_subtrees_equal_proofs_from_all_leaves,
        a_checkpoint_is_signed_when_the_tree_grew_and_opens_with_the_logs_key,
        a_log_whose_secret_left_the_database_signs_only_with_its_own_key_given,
        the_log_only_grows,
        entries_extend_wait_for_a_gap_and_join_once_it_is_filled,
        a_conflicting_entry_is_kept_as_a_fork_and_nothing_is_dropped,
        a_device_holds_a_bounded_number_of_entries,
        an_evidence_package_gathers_the_records_items_with_their_proofs,
        operations_answer,
    ]
);

/// An officer's account.
pub fn officer(officer_id: &str) -> Account {
    Account {
        officer_id: officer_id.into(),
        name: format!("{officer_id} 名"),
        unit: String::new(),
        password_hash: None,
        must_change_password: false,
        roles: vec!["officer".into()],
    }
}

/// A device of `officer_id` with a key and an actor of its own.
pub fn device(device_id: &str, officer_id: &str, n: u8) -> Device {
    Device {
        device_id: device_id.into(),
        officer_id: officer_id.into(),
        public_key: vec![n; 32],
        actor_id: vec![n; 16],
        enrolled_at_ms: 10 + i64::from(n),
        revoked_at_ms: None,
    }
}

/// Whatever a backend does for operations, it answers: ready, checked, backed up or refused.
fn operations_answer(backend: Backend) {
    let (_guard, store) = backend();
    assert!(store.ready());
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    match store.backup(&dir.path().join("copy")) {
        Ok(()) => assert!(dir.path().join("copy").exists(), "a backup that succeeded wrote its copy"),
        Err(server::store::StoreError::Unsupported(_)) => {}
        Err(other) => panic!("a backup fails only as unsupported: {other}"),
    }
}
