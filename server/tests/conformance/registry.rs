//! Accounts, devices, the registry and tasks.

use schemas::{Certificate, CertificatePeriod, CertificatePeriodKind, CertificateReview};
use server::service::transparency;
use server::store::{Entity, RefreshUse, StoreError, Task};

use super::{Backend, device, officer};

pub fn accounts_roles_and_sessions(backend: Backend) {
    let (_guard, store) = backend();
    store.create_account(officer("O1"), 1).unwrap();
    assert!(matches!(store.create_account(officer("O1"), 2), Err(StoreError::Conflict(_))), "one account per id");
    store.grant_role("O1", "reviewer").unwrap();
    assert_eq!(store.account("O1").unwrap().unwrap().roles, ["officer", "reviewer"]);
    store.revoke_role("O1", "officer").unwrap();
    assert_eq!(store.account("O1").unwrap().unwrap().roles, ["reviewer"]);
    assert_eq!(store.account("O2").unwrap(), None);
    // A refresh token is used once; its session ends with its family.
    store.store_refresh_token(b"t1", "F1", "O1", None, 10, 1_000_000).unwrap();
    assert!(matches!(store.use_refresh_token(b"t1", 20).unwrap(), RefreshUse::Valid { .. }));
    assert!(matches!(store.use_refresh_token(b"t1", 200_000).unwrap(), RefreshUse::Reused { .. }), "used already");
    store.end_session("F1", "logout", 300).unwrap();
    assert!(store.revoked_sessions(0).unwrap().iter().any(|(family, _)| family == "F1"));
}

pub fn devices_enrol_with_their_leaf_up_to_the_cap(backend: Backend) {
    let (_guard, store) = backend();
    store.create_account(officer("O1"), 1).unwrap();
    store.enroll_device(&device("D1", "O1", 1), 2).unwrap();
    store.enroll_device(&device("D2", "O1", 2), 2).unwrap();
    assert!(
        matches!(store.enroll_device(&device("D3", "O1", 3), 2), Err(StoreError::LimitReached { .. })),
        "a third device past the cap of two"
    );
    assert_eq!(transparency::log_size(store.as_ref()).unwrap(), 2, "each enrolment is a leaf of the log");
    assert_eq!(transparency::log_unlogged_enrolments(store.as_ref(), 99).unwrap(), 0, "none without its leaf");
    store.revoke_device("D1", 50).unwrap();
    assert_eq!(store.device("D1").unwrap().unwrap().revoked_at_ms, Some(50));
    store.enroll_device(&device("D3", "O1", 3), 2).unwrap();
    assert_eq!(store.devices().unwrap().len(), 3);
}

pub fn entity(id: &str, name: &str) -> Entity {
    Entity {
        entity_id: id.into(),
        name: name.into(),
        credit_code: format!("91{id:0>16}"),
        address: "某路 1 号".into(),
        tier: "key".into(),
        latitude: 31.2,
        longitude: 121.5,
        division_code: "310101".into(),
    }
}

pub fn entities_keep_their_history_and_tasks_their_teams(backend: Backend) {
    let (_guard, store) = backend();
    store.import_entities_by(&[entity("E1", "甲厂"), entity("E2", "乙厂")], "cli", 1).unwrap();
    store.import_entities_by(&[entity("E1", "甲厂（新）")], "cli", 2).unwrap();
    assert_eq!(store.entity("E1").unwrap().unwrap().name, "甲厂（新）");
    let history = store.entity_history("E1").unwrap();
    assert_eq!(history.iter().map(|c| c.change.as_str()).collect::<Vec<_>>(), ["added", "changed"]);
    store.add_recusal("O2", "E1", "relative_is_party").unwrap();
    assert_eq!(store.recused_officers("E1").unwrap(), ["O2"]);
    for id in ["O1", "O2", "O3"] {
        store.create_account(officer(id), 1).unwrap();
    }
    let task = Task {
        task_id: "T1".into(),
        entity_id: "E1".into(),
        matter: "M01".into(),
        window_start_ms: 0,
        window_end_ms: 10,
        team: vec!["O1".into(), "O3".into()],
        created_by: "SUP".into(),
        created_at_ms: 1,
    };
    store.create_task(&task).unwrap();
    assert_eq!(store.task("T1").unwrap(), Some(task.clone()));
    assert_eq!(store.tasks(Some("O3")).unwrap(), std::slice::from_ref(&task));
    assert!(store.tasks(Some("O2")).unwrap().is_empty(), "only the team's tasks");
}

/// P3: a certificate keeps each validity period as its own, in time order: issued, then renewed;
/// a period starting inside another is refused whatever the caller checked, and reviews are kept.
pub fn certificates_keep_each_period_and_review(backend: Backend) {
    let (_guard, store) = backend();
    store.create_account(officer("O1"), 1).unwrap();
    let certificate = Certificate {
        number: "C1".into(),
        officer_id: "O1".into(),
        issuing_authority: "局".into(),
        valid_from_ms: 100,
        valid_until_ms: 1_000,
        status_history: vec![],
        periods: vec![],
        reviews: vec![],
    };
    store.issue_certificate(&certificate, "ADM", 50).unwrap();
    let period = |kind, from, until| CertificatePeriod { kind, valid_from_ms: from, valid_until_ms: until };
    let renewed = period(CertificatePeriodKind::Renewed, 1_500, 3_000);
    store.renew_certificate("C1", &renewed, "ADM", 1_500).unwrap();
    let overlapping = period(CertificatePeriodKind::Renewed, 2_000, 4_000);
    assert!(matches!(store.renew_certificate("C1", &overlapping, "ADM", 2_000), Err(StoreError::Conflict(_))));
    assert!(matches!(store.renew_certificate("C9", &renewed, "ADM", 2_000), Err(StoreError::NotFound(_))));
    store
        .review_certificate("C1", &CertificateReview { reviewed_at_ms: 1_600, note: Some("合格".into()) }, "ADM", 1_600)
        .unwrap();
    let stored = store.certificate("C1").unwrap().unwrap();
    assert_eq!(stored.periods, [period(CertificatePeriodKind::Issued, 100, 1_000), renewed]);
    assert_eq!((stored.valid_from_ms, stored.valid_until_ms), (100, 3_000), "the first start and the latest end");
    assert_eq!(stored.reviews, [CertificateReview { reviewed_at_ms: 1_600, note: Some("合格".into()) }]);
}
