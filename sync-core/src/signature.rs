//! Ed25519 signatures of devices, checked strictly: enrollment and the enforcement log use this
//! one function, held to every case of Wycheproof's Ed25519 vectors (`../shared/vectors/`).

/// Whether `signature` is a valid Ed25519 signature of `message` by `public_key`, checked strictly:
/// a 32-byte key that decodes to a point, a 64-byte signature with a canonical scalar, and
/// `verify_strict` (no small-order keys, no malleable signatures). Any malformed input is `false`.
pub fn verify_strict(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(public_key) = <[u8; 32]>::try_from(public_key) else { return false };
    let Ok(signature) = <[u8; 64]>::try_from(signature) else { return false };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&public_key) else { return false };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case of Wycheproof's Ed25519 verification vectors, from `../shared/vectors/`.
    #[test]
    fn strict_verification_passes_every_wycheproof_ed25519_case() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/wycheproof/ed25519_test.json");
        let text = std::fs::read_to_string(path).expect("../shared/vectors beside the project");
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut checked = 0;
        let mut wrong = Vec::new();
        for group in vectors["testGroups"].as_array().unwrap() {
            let key = hex::decode(group["publicKey"]["pk"].as_str().unwrap()).unwrap();
            for case in group["tests"].as_array().unwrap() {
                let message = hex::decode(case["msg"].as_str().unwrap()).unwrap();
                let signature = hex::decode(case["sig"].as_str().unwrap()).unwrap();
                let expected = case["result"] == "valid";
                if verify_strict(&key, &message, &signature) != expected {
                    wrong.push(case["tcId"].as_u64().unwrap());
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 151);
        assert!(wrong.is_empty(), "cases decided wrongly: {wrong:?}");
    }
}
