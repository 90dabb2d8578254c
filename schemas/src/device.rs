//! What a device and the server agree on to bind a device to an officer.
//!
//! Enrollment: the server issues a one-time challenge; the device signs
//! [`enrollment_message`] with its new Ed25519 key; the server verifies it
//! strictly and binds the key and the device's Automerge actor id to the
//! officer. The domain prefix keeps an enrollment signature from ever meaning
//! anything else.

/// Domain separation for enrollment signatures.
pub const ENROLLMENT_DOMAIN: &[u8] = b"fieldsync/device-enrollment/v1\0";

/// The bytes a device signs to enroll: domain, challenge, public key, actor id.
pub fn enrollment_message(challenge: &[u8], public_key: &[u8], actor_id: &[u8]) -> Vec<u8> {
    [ENROLLMENT_DOMAIN, challenge, public_key, actor_id].concat()
}
