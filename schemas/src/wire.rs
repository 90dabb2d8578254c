//! Byte fields and the binary codec.
//!
//! Automerge sync messages are bytes. In JSON they travel as standard base64
//! (so people and tools can read a batch); in CBOR they travel as raw byte
//! strings, which is what devices use on slow links. One serde helper does
//! both by asking the format whether it is human-readable.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

/// Serde helper for `Vec<u8>` fields: base64 in human-readable formats, raw bytes otherwise.
pub mod bytes {
    use super::*;

    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&STANDARD.encode(value))
        } else {
            serializer.serialize_bytes(value)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            STANDARD
                .decode(text.as_bytes())
                .map_err(|error| serde::de::Error::custom(format!("invalid base64: {error}")))
        } else {
            struct BytesVisitor;
            impl<'de> serde::de::Visitor<'de> for BytesVisitor {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a byte string")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                    Ok(v)
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                    while let Some(byte) = seq.next_element::<u8>()? {
                        out.push(byte);
                    }
                    Ok(out)
                }
            }
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

/// Serde helper for fixed-size byte arrays (hashes, keys, signatures): lowercase hex in every
/// format, so that they read the same in JSON, CBOR and a person's terminal.
pub mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(value: &[u8; N], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes.try_into().map_err(|_| serde::de::Error::custom(format!("expected {N} bytes in hex")))
    }
}

/// Why bytes could not be decoded into a wire type.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode CBOR: {detail}")]
pub struct DecodeError {
    /// What the decoder said, for the error body.
    pub detail: String,
}

/// Encodes a wire type as CBOR (RFC 8949).
pub fn to_cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing CBOR into a Vec cannot fail");
    out
}

/// Decodes a wire type from CBOR; any malformed, truncated or mistyped input is an error.
pub fn from_cbor<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    ciborium::from_reader(bytes).map_err(|error| DecodeError { detail: error.to_string() })
}
