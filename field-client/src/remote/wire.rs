//! What the device's requests and answers are on the wire: an answer's body decoded from the
//! content coding the server chose (and its length as it crossed the wire), a request body
//! compressed when it gains, and a refusal read as the device's error.

use schemas::ErrorBody;

use crate::error::{ClientError, ClientResult};
use crate::transport::network;

/// The body of a non-2xx answer as the device's error.
pub(super) async fn refused(response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    match answer_body(response).await.map(|answer| answer.body) {
        Ok(bytes) => match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => ClientError::Server { status, code: body.code, message: body.message },
            Err(_) => ClientError::Server {
                status,
                code: String::new(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            },
        },
        Err(error) => error,
    }
}

/// An answer's body as the server meant it, and how many bytes it took on the wire.
pub(crate) struct Answer {
    pub body: Vec<u8>,
    pub wire: usize,
    /// 304: the body is the one the device holds for the validator it sent.
    pub not_modified: bool,
    /// The answer's `ETag`, if it has one.
    pub etag: Option<String>,
}

impl std::ops::Deref for Answer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.body
    }
}

/// The codings the device takes answers in (`Accept-Encoding`).
pub(super) const ANSWER_CODINGS: &str = "zstd";

/// Request bodies from this size on are sent zstd-compressed (smaller ones gain nothing).
const COMPRESS_FROM_BYTES: usize = 1024;

/// Reads an answer's body, undoing the content coding the server chose.
pub(super) async fn answer_body(response: reqwest::Response) -> ClientResult<Answer> {
    let not_modified = response.status() == reqwest::StatusCode::NOT_MODIFIED;
    let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
    let coding = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let bytes = response.bytes().await.map_err(network)?;
    let body = match coding.as_deref() {
        None | Some("identity") => bytes.to_vec(),
        Some("zstd") => zstd::decode_all(&bytes[..])
            .map_err(|e| ClientError::Protocol { detail: format!("a zstd answer does not decode: {e}") })?,
        Some(other) => {
            return Err(ClientError::Protocol {
                detail: format!("an answer in {other}, which the device did not ask for"),
            });
        }
    };
    Ok(Answer { body, wire: bytes.len(), not_modified, etag })
}

/// `body` as the device sends it: zstd-compressed (level 3) when `compress` and it is large
/// enough to gain, with the `Content-Encoding` to name it.
pub(super) fn request_body(body: Vec<u8>, compress: bool) -> (Vec<u8>, Option<&'static str>) {
    if compress
        && body.len() >= COMPRESS_FROM_BYTES
        && let Ok(compressed) = zstd::encode_all(&body[..], 3)
    {
        return (compressed, Some("zstd"));
    }
    (body, None)
}
