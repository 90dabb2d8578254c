//! The target registry (entities and their history), recusals, the random-check matter list and the bureau's working-day calendar.

use super::*;

/// An entity of the target registry.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entity {
    pub entity_id: String,
    pub name: String,
    pub credit_code: String,
    pub address: String,
    pub tier: String,
    pub latitude: f64,
    pub longitude: f64,
    /// The administrative division's 6-digit code (empty when the import had none).
    pub division_code: String,
}

/// The target registry (entities and their history), recusals, the random-check matter list and the bureau's working-day calendar.
pub trait Registry {
    /// Imports entities as the system: [`Registry::import_entities_by`] by `import`.
    fn import_entities(&self, entities: &[Entity], now_ms: i64) -> StoreResult<usize> {
        self.import_entities_by(entities, "import", now_ms)
    }
    /// Adds or updates `entities` in one write; each entity added or changed gets a row of the
    /// registry's history (before, after, when, by whom). Returns how many entities were given.
    fn import_entities_by(&self, entities: &[Entity], by: &str, now_ms: i64) -> StoreResult<usize>;
    fn entity(&self, entity_id: &str) -> StoreResult<Option<Entity>>;
    fn add_recusal(&self, officer_id: &str, entity_id: &str, ground: &str) -> StoreResult<()>;
    fn recused_officers(&self, entity_id: &str) -> StoreResult<Vec<String>>;
    /// The history of an entity of the registry, oldest change first.
    fn entity_history(&self, entity_id: &str) -> StoreResult<Vec<EntityChange>>;
    /// Every entity of the registry, by entity id.
    fn entities(&self) -> StoreResult<Vec<Entity>>;
    /// Every recusal, as (officer id, entity id, ground), in that order.
    fn recusals(&self) -> StoreResult<Vec<(String, String, String)>>;
    /// Replaces the random-check matter list; returns how many matters it holds.
    fn import_matters(&self, list: &MatterList, by: &str, now_ms: i64) -> StoreResult<usize>;
    /// The random-check matter list, if one was imported.
    fn matters(&self) -> StoreResult<Option<MatterList>>;
    /// The bureau's calendar: every stored year together.
    fn calendar(&self) -> StoreResult<sync_core::calendar::WorkingCalendar>;
    /// The calendar of one year, if stored.
    fn calendar_year(&self, year: i16) -> StoreResult<Option<sync_core::calendar::WorkingCalendar>>;
    /// Replaces the calendar of one year (the caller checks that its days are of that year).
    fn put_calendar_year(
        &self,
        year: i16,
        calendar: &sync_core::calendar::WorkingCalendar,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
}
