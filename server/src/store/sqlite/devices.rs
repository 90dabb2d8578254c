//! The SQL of devices.

use rusqlite::{OptionalExtension, params};

use super::*;

pub(super) fn device_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: row.get(0)?,
        officer_id: row.get(1)?,
        public_key: row.get(2)?,
        actor_id: row.get(3)?,
        enrolled_at_ms: row.get(4)?,
        revoked_at_ms: row.get(5)?,
    })
}

pub(super) const DEVICE_COLUMNS: &str = "device_id, officer_id, public_key, actor_id, enrolled_at_ms, revoked_at_ms";

impl Devices for SqliteStore {
    fn enroll_device(&self, device: &Device, max_active: usize) -> StoreResult<()> {
        let device = device.clone();
        self.write(move |tx| {
            let active: i64 = tx.query_row(
                "SELECT COUNT(*) FROM devices WHERE officer_id = ?1 AND revoked_at_ms IS NULL",
                [&device.officer_id],
                |r| r.get(0),
            )?;
            if active as usize >= max_active {
                return Err(StoreError::LimitReached { what: "devices of the officer", limit: max_active });
            }
            tx.execute(
                &format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    device.device_id,
                    device.officer_id,
                    device.public_key,
                    device.actor_id,
                    device.enrolled_at_ms,
                    device.revoked_at_ms
                ],
            )?;
            let leaf = enrolment_leaf(&device, device.enrolled_at_ms)?;
            append_leaf(&**tx, &leaf)?;
            Ok(())
        })
    }
    fn device(&self, device_id: &str) -> StoreResult<Option<Device>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?1"))?
                .query_row([device_id], device_from)
                .optional()?)
        })
    }
    fn devices(&self) -> StoreResult<Vec<Device>> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id"))?;
            let rows = statement.query_map([], device_from)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
    fn revoke_device(&self, device_id: &str, now_ms: i64) -> StoreResult<()> {
        let device_id = device_id.to_string();
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE devices SET revoked_at_ms = COALESCE(revoked_at_ms, ?2) WHERE device_id = ?1",
                params![device_id, now_ms],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(device_id));
            }
            end_sessions(tx, "device_id = ?1", &device_id, "device_revoked", now_ms)
        })
    }
}
