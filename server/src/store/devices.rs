//! Enrolled devices.

use super::*;

/// An enrolled device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub officer_id: String,
    pub public_key: Vec<u8>,
    pub actor_id: Vec<u8>,
    pub enrolled_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// Enrolled devices.
pub trait Devices {
    /// Enrolls a device and appends its enrollment to the transparency log; refused with
    /// [`StoreError::LimitReached`] when its officer has `max_active` devices not revoked.
    fn enroll_device(&self, device: &Device, max_active: usize) -> StoreResult<()>;
    fn device(&self, device_id: &str) -> StoreResult<Option<Device>>;
    fn devices(&self) -> StoreResult<Vec<Device>>;
    fn revoke_device(&self, device_id: &str, now_ms: i64) -> StoreResult<()>;
}
