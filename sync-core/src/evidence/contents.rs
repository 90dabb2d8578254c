//! What a package holds, as the verifier read it: for a reader who shows the record beside the
//! verdict (a report a court reads), so that nobody parses the package, or the verdict's text,
//! a second time.

use std::collections::BTreeMap;

use schemas::InspectionRecord;
use schemas::evidence::{PackageBlob, PackageDevice};
use schemas::log::LogEntry;

/// The package's contents as the checks read them. They are what the package claims: the
/// verdict says whether to believe them. Not serialized with the verdict.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// When the server exported the package, Unix ms.
    pub exported_at_ms: Option<i64>,
    /// Whether the manifest says the blobs' bytes are in the package.
    pub blobs_included: bool,
    /// The record as the package's document reads, when it reads as one.
    pub record: Option<InspectionRecord>,
    /// The devices, in the package's order (by device id).
    pub devices: Vec<PackageDevice>,
    /// The record's entries whose signatures hold, in the package's order (device, then seq).
    pub entries: Vec<LogEntry>,
    /// The note of each of those entries whose payload has its hash, by device and seq.
    pub notes: BTreeMap<(String, u64), String>,
    /// The blobs listed, by SHA-256.
    pub blobs: Vec<PackageBlob>,
    /// The bytes of each included blob that has its SHA-256 and size, by SHA-256.
    pub blob_bytes: BTreeMap<String, Vec<u8>>,
}
