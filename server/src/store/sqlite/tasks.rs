//! The SQL of tasks and their teams.

use rusqlite::{Connection, OptionalExtension, params};

use super::*;

pub(super) fn task_from(conn: &Connection, row: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    let task_id: String = row.get(0)?;
    let mut team = conn.prepare_cached("SELECT officer_id FROM task_team WHERE task_id = ?1 ORDER BY officer_id")?;
    let team = team.query_map([&task_id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(Task {
        task_id,
        entity_id: row.get(1)?,
        matter: row.get(2)?,
        window_start_ms: row.get(3)?,
        window_end_ms: row.get(4)?,
        created_by: row.get(5)?,
        created_at_ms: row.get(6)?,
        team,
    })
}

/// Inserts a task and its team: the one way a task is stored, whoever made it.
pub(super) fn insert_task(conn: &Connection, task: &Task) -> StoreResult<()> {
    conn.execute(
        &format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            task.task_id,
            task.entity_id,
            task.matter,
            task.window_start_ms,
            task.window_end_ms,
            task.created_by,
            task.created_at_ms
        ],
    )?;
    for officer in &task.team {
        conn.execute("INSERT INTO task_team (task_id, officer_id) VALUES (?1, ?2)", params![task.task_id, officer])?;
    }
    Ok(())
}

pub(super) const TASK_COLUMNS: &str =
    "task_id, entity_id, matter, window_start_ms, window_end_ms, created_by, created_at_ms";

impl Tasks for SqliteStore {
    fn create_task(&self, task: &Task) -> StoreResult<()> {
        let task = task.clone();
        self.write(move |tx| insert_task(tx, &task))
    }
    fn task(&self, task_id: &str) -> StoreResult<Option<Task>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ?1"))?
                .query_row([task_id], |row| task_from(conn, row))
                .optional()?)
        })
    }
    fn tasks(&self, officer_id: Option<&str>) -> StoreResult<Vec<Task>> {
        self.read(|conn| {
            let sql = match officer_id {
                Some(_) => format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE task_id IN
                     (SELECT task_id FROM task_team WHERE officer_id = ?1) ORDER BY task_id"
                ),
                None => format!("SELECT {TASK_COLUMNS} FROM tasks WHERE ?1 IS NULL ORDER BY task_id"),
            };
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map([officer_id], |row| task_from(conn, row))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
    fn reassign_task(&self, task_id: &str, team: &[String]) -> StoreResult<bool> {
        let (task_id, team) = (task_id.to_string(), team.to_vec());
        self.write(move |tx| {
            let known: Option<i64> =
                tx.query_row("SELECT 1 FROM tasks WHERE task_id = ?1", [&task_id], |r| r.get(0)).optional()?;
            if known.is_none() {
                return Err(StoreError::NotFound(format!("task {task_id}")));
            }
            let recorded: Option<i64> = tx
                .query_row("SELECT 1 FROM records WHERE task_id = ?1 LIMIT 1", [&task_id], |r| r.get(0))
                .optional()?;
            if recorded.is_some() {
                return Ok(false);
            }
            tx.execute("DELETE FROM task_team WHERE task_id = ?1", [&task_id])?;
            for officer in &team {
                tx.execute("INSERT INTO task_team (task_id, officer_id) VALUES (?1, ?2)", params![task_id, officer])?;
            }
            Ok(true)
        })
    }
}
