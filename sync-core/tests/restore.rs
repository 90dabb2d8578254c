//! Property: after the server is restored from a backup, the devices' re-uploads, in any order,
//! bring every record back to what it was before the restore. A device re-uploads its
//! teammates' changes too; those are refused to it alone (it is not their device), so that the
//! rightful device can still deliver them, and its own changes built on them wait for them.
//! Each device's cursor carries the change feed's epoch; a backup has another, so a device's
//! first sync with the restored server reconciles every record instead of trusting its cursor.

mod common;

use std::collections::BTreeMap;

use automerge::ChangeHash;
use common::sim::{Phone, Server};
use common::*;
use proptest::prelude::*;
use sync_core::document::Edit;
use sync_core::session::SessionConfig;

fn heads(server: &Server, record_id: &str) -> Vec<ChangeHash> {
    let mut heads = server.docs[record_id].get_heads();
    heads.sort();
    heads
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("FIELDSYNC_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
    ))]

    #[test]
    fn a_restore_from_backup_then_reuploads_in_any_order_converge_to_the_record_before_it(
        edits in proptest::collection::vec((0usize..2, 0usize..2, any::<u8>()), 1..10),
        restore_at in 0usize..10,
        order in proptest::collection::vec(0usize..2, 1..5),
    ) {
        let officers = valid_officers();
        let (da, db) = (device(1, &officers[0]), device(2, &officers[1]));
        let team = [&da.officer, &db.officer];
        let contexts = BTreeMap::from([
            (da.id.clone(), context(&da, &[&da, &db], &team)),
            (db.id.clone(), context(&db, &[&da, &db], &team)),
        ]);
        let mut server = Server::new(contexts);
        server.keeps_saved_documents = true;
        let mut phones = [Phone::new(da.clone(), SessionConfig::default()), Phone::new(db, SessionConfig::default())];
        let mut ids = Vec::new();
        for n in 0..2u8 {
            let record = new_record(n + 1, &da);
            ids.push(record.record_id().to_string());
            phones[0].session.record_changed(record.record_id());
            phones[0].records.insert(record);
        }
        phones[0].sync(&mut server, 20);
        phones[1].sync(&mut server, 20);
        let mut backup = server.backup();
        for (step, (phone, record, byte)) in edits.iter().enumerate() {
            let id = &ids[*record];
            let text = format!("{}{byte}", ["甲", "乙"][*phone]);
            phones[*phone].records.get_mut(id).unwrap().apply(Edit::AppendObservations(text), T0 + 1000 + step as i64).unwrap();
            phones[*phone].session.record_changed(id);
            // Each edit reaches the server, and the teammate's phone takes it.
            prop_assert!(phones[*phone].sync(&mut server, 20).rejections.is_empty());
            prop_assert!(phones[1 - *phone].sync(&mut server, 20).rejections.is_empty());
            if step == restore_at {
                backup = server.backup();
            }
        }
        let before: Vec<Vec<ChangeHash>> = ids.iter().map(|id| heads(&server, id)).collect();

        // Each device delivers its own changes; a teammate's change it holds waits for that
        // teammate, and so does its own work built on it: a chain of alternating authors comes
        // back in as many rounds as it alternates, however the first syncs are ordered.
        let mut server = backup;
        for phone in &order {
            phones[*phone].sync(&mut server, 40);
        }
        for _ in 0..=edits.len() {
            phones[0].sync(&mut server, 40);
            phones[1].sync(&mut server, 40);
        }
        for (id, before) in ids.iter().zip(&before) {
            prop_assert_eq!(&heads(&server, id), before, "record {} as before the restore", id);
        }
        prop_assert!(
            server.contexts.values().all(|c| c.refused.is_empty()),
            "no change is refused for good: {:?}",
            server.contexts.values().map(|c| &c.refused).collect::<Vec<_>>()
        );
    }
}
