//! The SQL of entities and their history, recusals, matters and the calendar.

use rusqlite::{OptionalExtension, params};

use super::*;

impl Registry for SqliteStore {
    fn import_entities_by(&self, entities: &[Entity], by: &str, now_ms: i64) -> StoreResult<usize> {
        let (entities, by) = (entities.to_vec(), by.to_string());
        self.write(move |tx| campaigns::import_entities(tx, &entities, &by, now_ms))
    }
    fn entity(&self, entity_id: &str) -> StoreResult<Option<Entity>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {} FROM entities WHERE entity_id = ?1", campaigns::ENTITY_COLUMNS),
                    [entity_id],
                    campaigns::entity_from,
                )
                .optional()?)
        })
    }
    fn add_recusal(&self, officer_id: &str, entity_id: &str, ground: &str) -> StoreResult<()> {
        let (o, e, g) = (officer_id.to_string(), entity_id.to_string(), ground.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO recusals (officer_id, entity_id, ground) VALUES (?1, ?2, ?3)",
                params![o, e, g],
            )?;
            Ok(())
        })
    }
    fn recused_officers(&self, entity_id: &str) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached("SELECT officer_id FROM recusals WHERE entity_id = ?1")?;
            let rows = statement.query_map([entity_id], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
    fn entity_history(&self, entity_id: &str) -> StoreResult<Vec<EntityChange>> {
        self.read(|conn| campaigns::entity_history(conn, entity_id))
    }
    fn entities(&self) -> StoreResult<Vec<Entity>> {
        self.read(campaigns::entities)
    }
    fn recusals(&self) -> StoreResult<Vec<(String, String, String)>> {
        self.read(campaigns::recusals)
    }
    fn import_matters(&self, list: &MatterList, by: &str, now_ms: i64) -> StoreResult<usize> {
        let (list, by) = (list.clone(), by.to_string());
        self.write(move |tx| campaigns::import_matters(tx, &list, &by, now_ms))
    }
    fn matters(&self) -> StoreResult<Option<MatterList>> {
        self.read(campaigns::matters)
    }
    fn calendar(&self) -> StoreResult<sync_core::calendar::WorkingCalendar> {
        self.read(|conn| campaigns::calendar(conn, None))
    }
    fn calendar_year(&self, year: i16) -> StoreResult<Option<sync_core::calendar::WorkingCalendar>> {
        self.read(|conn| {
            let stored: i64 =
                conn.query_row("SELECT COUNT(*) FROM calendar_years WHERE year = ?1", [year], |r| r.get(0))?;
            if stored == 0 { Ok(None) } else { campaigns::calendar(conn, Some(year)).map(Some) }
        })
    }
    fn put_calendar_year(
        &self,
        year: i16,
        calendar: &sync_core::calendar::WorkingCalendar,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (calendar, by) = (calendar.clone(), by.to_string());
        self.write(move |tx| campaigns::put_calendar_year(tx, year, &calendar, &by, now_ms))
    }
}
