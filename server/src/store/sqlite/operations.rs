//! The SQL of backup and checks.

use rusqlite::Connection;

use super::*;

impl Operations for SqliteStore {
    fn close(&self) {
        SqliteStore::close(self);
    }
    fn backup(&self, path: &Path) -> StoreResult<()> {
        let target = path.to_path_buf();
        self.read(|conn| {
            let mut destination = Connection::open(&target)?;
            let backup = rusqlite::backup::Backup::new(conn, &mut destination)?;
            backup.run_to_completion(256, std::time::Duration::from_millis(0), None)?;
            drop(backup);
            // The copy gets an epoch of its own: restored, it tells every device that its cursor
            // and the sync states kept with it are stale, however far the sequence has come.
            let live = i64::from(self.epoch);
            let mut fresh = live;
            while fresh == live {
                fresh = i64::from(rand::random::<u16>() & 0x7fff).max(1);
            }
            destination.execute("UPDATE counters SET value = ?1 WHERE name = 'sync_epoch'", [fresh])?;
            Ok(())
        })
    }
    fn integrity_check(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut statement = conn.prepare("PRAGMA integrity_check")?;
            let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
            let problems: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
            Ok(problems.into_iter().filter(|p| p != "ok").collect())
        })
    }
    fn ready(&self) -> bool {
        let writer_alive =
            self.writer_thread.lock().map(|thread| thread.as_ref().is_some_and(|t| !t.is_finished())).unwrap_or(false);
        writer_alive && self.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).is_ok()
    }
}
