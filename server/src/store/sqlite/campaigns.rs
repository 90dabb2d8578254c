//! The SQLite side of random inspection: the registry's history, the matter list, campaigns,
//! their tasks' publication and the calendar (migration 5).

use rusqlite::{Connection, OptionalExtension, params};
use sync_core::calendar::{Date, WorkingCalendar};

use super::insert_task;
use crate::store::{
    CampaignTask, Entity, EntityChange, MatterList, StoreError, StoreResult, StoredCampaign, StoredDraw, Task,
};

pub(super) const ENTITY_COLUMNS: &str =
    "entity_id, name, credit_code, address, tier, latitude, longitude, division_code";

pub(super) fn entity_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entity> {
    Ok(Entity {
        entity_id: r.get(0)?,
        name: r.get(1)?,
        credit_code: r.get(2)?,
        address: r.get(3)?,
        tier: r.get(4)?,
        latitude: r.get(5)?,
        longitude: r.get(6)?,
        division_code: r.get(7)?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("encoding: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("stored {what} does not read: {e}")))
}

pub(super) fn import_entities(conn: &Connection, entities: &[Entity], by: &str, now_ms: i64) -> StoreResult<usize> {
    let mut existing = conn.prepare_cached(&format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE entity_id = ?1"))?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO entities (entity_id, name, credit_code, address, tier, latitude, longitude, division_code,
           imported_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (entity_id) DO UPDATE SET name = excluded.name, credit_code = excluded.credit_code,
           address = excluded.address, tier = excluded.tier, latitude = excluded.latitude,
           longitude = excluded.longitude, division_code = excluded.division_code,
           imported_at_ms = excluded.imported_at_ms",
    )?;
    let mut history = conn.prepare_cached(
        "INSERT INTO entity_history (entity_id, change, before, after, at_ms, by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for e in entities {
        let before = existing.query_row([&e.entity_id], entity_from).optional()?;
        if before.as_ref() == Some(e) {
            continue;
        }
        upsert.execute(params![
            e.entity_id,
            e.name,
            e.credit_code,
            e.address,
            e.tier,
            e.latitude,
            e.longitude,
            e.division_code,
            now_ms
        ])?;
        let change = if before.is_some() { "changed" } else { "added" };
        let before = before.as_ref().map(to_json).transpose()?;
        history.execute(params![e.entity_id, change, before, to_json(e)?, now_ms, by])?;
    }
    Ok(entities.len())
}

pub(super) fn entity_history(conn: &Connection, entity_id: &str) -> StoreResult<Vec<EntityChange>> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, entity_id, change, before, after, at_ms, by FROM entity_history WHERE entity_id = ?1 ORDER BY seq",
    )?;
    let rows = statement
        .query_map([entity_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(seq, entity_id, change, before, after, at_ms, by)| {
            Ok(EntityChange {
                seq,
                entity_id,
                change,
                before: before.map(|b| from_json(&b, "entity")).transpose()?,
                after: from_json(&after, "entity")?,
                at_ms,
                by,
            })
        })
        .collect()
}

pub(super) fn entities(conn: &Connection) -> StoreResult<Vec<Entity>> {
    let mut statement = conn.prepare_cached(&format!("SELECT {ENTITY_COLUMNS} FROM entities ORDER BY entity_id"))?;
    Ok(statement.query_map([], entity_from)?.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn recusals(conn: &Connection) -> StoreResult<Vec<(String, String, String)>> {
    let mut statement =
        conn.prepare_cached("SELECT officer_id, entity_id, ground FROM recusals ORDER BY officer_id, entity_id")?;
    Ok(statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn import_matters(conn: &Connection, list: &MatterList, by: &str, now_ms: i64) -> StoreResult<usize> {
    let head = MatterList { matters: Vec::new(), ..list.clone() };
    conn.execute(
        "INSERT INTO matter_list (id, list, imported_at_ms, imported_by) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET list = excluded.list, imported_at_ms = excluded.imported_at_ms,
           imported_by = excluded.imported_by",
        params![to_json(&head)?, now_ms, by],
    )?;
    conn.execute("DELETE FROM matters", [])?;
    for (position, matter) in list.matters.iter().enumerate() {
        conn.execute(
            "INSERT INTO matters (code, position, matter) VALUES (?1, ?2, ?3)",
            params![matter.code, position as i64, to_json(matter)?],
        )?;
    }
    Ok(list.matters.len())
}

pub(super) fn matters(conn: &Connection) -> StoreResult<Option<MatterList>> {
    let Some(head) =
        conn.query_row("SELECT list FROM matter_list WHERE id = 1", [], |r| r.get::<_, String>(0)).optional()?
    else {
        return Ok(None);
    };
    let mut list: MatterList = from_json(&head, "matter list")?;
    let mut statement = conn.prepare_cached("SELECT matter FROM matters ORDER BY position")?;
    let rows = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    list.matters = rows.iter().map(|m| from_json(m, "matter")).collect::<StoreResult<_>>()?;
    Ok(Some(list))
}

pub(super) fn create_campaign(conn: &Connection, c: &StoredCampaign) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO campaigns (campaign_id, spec, campaign, entities, officers, recusals, seed, published, created_by,
           created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            c.campaign_id,
            to_json(&c.spec)?,
            to_json(&c.campaign)?,
            to_json(&c.entities)?,
            to_json(&c.officers)?,
            to_json(&c.recusals)?,
            c.seed.as_slice(),
            to_json(&c.published)?,
            c.created_by,
            c.created_at_ms
        ],
    )?;
    Ok(())
}

const CAMPAIGN_COLUMNS: &str = "campaign_id, spec, campaign, entities, officers, recusals, seed, published, \
    created_by, created_at_ms, public_value, draw, drawn_by, drawn_at_ms";

type CampaignRow =
    (String, [String; 6], Vec<u8>, String, i64, (Option<String>, Option<String>, Option<String>, Option<i64>));

fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok((
        r.get(0)?,
        [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(7)?],
        r.get(6)?,
        r.get(8)?,
        r.get(9)?,
        (r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?),
    ))
}

fn campaign_from(row: CampaignRow) -> StoreResult<StoredCampaign> {
    let (
        campaign_id,
        [spec, campaign, entities, officers, recusals, published],
        seed,
        created_by,
        created_at_ms,
        drawn,
    ) = row;
    let seed: [u8; 32] = seed.try_into().map_err(|_| StoreError::Other("a campaign's seed is not 32 bytes".into()))?;
    let drawn = match drawn {
        (public_value, Some(draw), drawn_by, Some(drawn_at_ms)) => Some(StoredDraw {
            public_value: public_value.unwrap_or_default(),
            draw: from_json(&draw, "draw")?,
            drawn_by: drawn_by.unwrap_or_default(),
            drawn_at_ms,
        }),
        _ => None,
    };
    Ok(StoredCampaign {
        campaign_id,
        spec: from_json(&spec, "campaign spec")?,
        campaign: from_json(&campaign, "campaign")?,
        entities: from_json(&entities, "campaign entities")?,
        officers: from_json(&officers, "campaign officers")?,
        recusals: from_json(&recusals, "campaign recusals")?,
        seed,
        published: from_json(&published, "campaign commitment")?,
        created_by,
        created_at_ms,
        drawn,
    })
}

pub(super) fn campaign(conn: &Connection, campaign_id: &str) -> StoreResult<Option<StoredCampaign>> {
    let row = conn
        .prepare_cached(&format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE campaign_id = ?1"))?
        .query_row([campaign_id], campaign_row)
        .optional()?;
    row.map(campaign_from).transpose()
}

pub(super) fn campaigns(conn: &Connection) -> StoreResult<Vec<StoredCampaign>> {
    let rows = conn
        .prepare_cached(&format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY created_at_ms, campaign_id"))?
        .query_map([], campaign_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(campaign_from).collect()
}

pub(super) fn campaigns_after(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<StoredCampaign>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE ?1 IS NULL OR campaign_id > ?1 ORDER BY campaign_id LIMIT ?2"
        ))?
        .query_map(params![after, limit.min(i64::MAX as usize) as i64], campaign_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(campaign_from).collect()
}

pub(super) fn store_draw(conn: &Connection, campaign_id: &str, draw: &StoredDraw, tasks: &[Task]) -> StoreResult<bool> {
    let drawn = conn.execute(
        "UPDATE campaigns SET public_value = ?2, draw = ?3, drawn_by = ?4, drawn_at_ms = ?5
         WHERE campaign_id = ?1 AND draw IS NULL",
        params![campaign_id, draw.public_value, to_json(&draw.draw)?, draw.drawn_by, draw.drawn_at_ms],
    )?;
    if drawn == 0 {
        return Ok(false);
    }
    for (position, task) in tasks.iter().enumerate() {
        insert_task(conn, task)?;
        conn.execute(
            "INSERT INTO campaign_tasks (task_id, campaign_id, position) VALUES (?1, ?2, ?3)",
            params![task.task_id, campaign_id, position as i64],
        )?;
    }
    Ok(true)
}

pub(super) fn campaign_tasks(
    conn: &Connection,
    campaign_id: Option<&str>,
    task_id: Option<&str>,
) -> StoreResult<Vec<CampaignTask>> {
    let mut statement = conn.prepare_cached(
        "SELECT task_id, campaign_id, position, record_id, published_at_ms, published_by FROM campaign_tasks
         WHERE (?1 IS NULL OR campaign_id = ?1) AND (?2 IS NULL OR task_id = ?2) ORDER BY campaign_id, position",
    )?;
    let rows = statement.query_map(params![campaign_id, task_id], |r| {
        Ok(CampaignTask {
            task_id: r.get(0)?,
            campaign_id: r.get(1)?,
            position: r.get::<_, i64>(2)? as usize,
            record_id: r.get(3)?,
            published_at_ms: r.get(4)?,
            published_by: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn publish_result(
    conn: &Connection,
    task_id: &str,
    record_id: &str,
    by: &str,
    now_ms: i64,
) -> StoreResult<bool> {
    let changed = conn.execute(
        "UPDATE campaign_tasks SET record_id = ?2, published_at_ms = ?3, published_by = ?4
         WHERE task_id = ?1 AND published_at_ms IS NULL",
        params![task_id, record_id, now_ms, by],
    )?;
    Ok(changed == 1)
}

pub(super) fn calendar(conn: &Connection, year: Option<i16>) -> StoreResult<WorkingCalendar> {
    let mut statement = conn.prepare_cached(
        "SELECT holidays, working_weekends FROM calendar_years WHERE ?1 IS NULL OR year = ?1 ORDER BY year",
    )?;
    let rows = statement
        .query_map([year], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut calendar = WorkingCalendar::default();
    for (holidays, working) in rows {
        calendar.holidays.extend(from_json::<Vec<Date>>(&holidays, "holidays")?);
        calendar.working_weekends.extend(from_json::<Vec<Date>>(&working, "working weekend days")?);
    }
    Ok(calendar)
}

pub(super) fn put_calendar_year(
    conn: &Connection,
    year: i16,
    calendar: &WorkingCalendar,
    by: &str,
    now_ms: i64,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO calendar_years (year, holidays, working_weekends, updated_at_ms, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (year) DO UPDATE SET holidays = excluded.holidays, working_weekends = excluded.working_weekends,
           updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by",
        params![year, to_json(&calendar.holidays)?, to_json(&calendar.working_weekends)?, now_ms, by],
    )?;
    Ok(())
}
