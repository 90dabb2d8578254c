//! Time: the interval the log proves for each item of a package, beside what was claimed.
//!
//! The log proves an upper bound for every item, its leaf's receipt time, and a lower bound
//! only for what a device wrote after it had seen a checkpoint: an entry naming a checkpoint is
//! no older than that checkpoint's last leaf. So a photo is bounded below by the entry that took
//! it and above by the earlier of that entry's and the blob's receipt; a signature, the lock and
//! an enrolment only above. An entry that names no proven checkpoint has no lower bound, and is
//! flagged as such. A photo's EXIF time (a claim the server read from the file) outside the
//! interval of the entry that took it is a finding: the photo may be older than the inspection.

use jiff::civil::DateTime;
use jiff::tz::Offset;
use schemas::evidence::PackageBlob;
use schemas::log::LogFinding;
use serde::Serialize;

/// What the log proves about when an item came to be, beside what was claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemInterval {
    /// What the item is, in words (`photo 3f…`, `signature of O001`, `entry 4 of device-1`).
    pub item: String,
    /// What the item is, for a reader who words it itself (a report); not serialized.
    #[serde(skip)]
    pub subject: IntervalSubject,
    /// Made no earlier than this, Unix ms; `None` when the log proves no lower bound.
    pub not_before_ms: Option<i64>,
    /// Received by the server by this, Unix ms.
    pub not_after_ms: i64,
    /// The time claimed for it (a device's clock, a signature's time, a photo's EXIF).
    pub claimed_ms: Option<i64>,
}

/// The item an interval is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntervalSubject {
    /// A device's enrolment.
    Enrolment { device_id: String },
    /// An entry of the record.
    Entry { device_id: String, seq: u64 },
    /// A photo, and the entry that took it.
    Photo { sha256: String, device_id: String, seq: u64 },
    /// An officer's signature of the record.
    Signature { officer_id: String },
    /// The record's lock.
    Lock,
}

/// The bureau's time zone (UTC+8), assumed for an EXIF time that states no offset.
const BUREAU_OFFSET_SECONDS: i32 = 8 * 3600;

/// An EXIF time as the server reads it (`2026-05-04T10:20:30`, with `+08:00` or without), in
/// Unix ms; `None` when it does not read as one.
pub fn exif_time_ms(taken_at: &str) -> Option<i64> {
    let (local, offset) = match taken_at.get(19..) {
        Some("") | None => (taken_at, None),
        Some(rest) => (&taken_at[..19], Some(rest)),
    };
    // Exactly `YYYY-MM-DDTHH:MM:SS`, as the server writes it: nothing looser is a claim.
    if local.len() != 19 || local.as_bytes()[10] != b'T' {
        return None;
    }
    let local: DateTime = local.parse().ok()?;
    let seconds = match offset {
        None => BUREAU_OFFSET_SECONDS,
        Some(text) => {
            let sign = match text.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (hours, minutes) = text.get(1..)?.split_once(':')?;
            sign * (hours.parse::<i32>().ok()? * 3600 + minutes.parse::<i32>().ok()? * 60)
        }
    };
    let offset = Offset::from_seconds(seconds).ok()?;
    Some(offset.to_timestamp(local).ok()?.as_millisecond())
}

/// A Unix ms time in UTC to the second, for people (`2026-05-04 02:20:30 UTC`).
pub fn utc_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| format!("{ms} ms"), |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// The photo findings: each photo taken under an entry whose EXIF time lies outside that
/// entry's proven interval by more than `max_skew_ms`.
pub fn photo_findings(
    photos: &[(String, String, u64, Option<i64>, i64)],
    blobs: &[PackageBlob],
    max_skew_ms: i64,
) -> Vec<LogFinding> {
    let mut findings = Vec::new();
    for (sha256, device_id, seq, not_before, not_after) in photos {
        let Some(exif_ms) =
            blobs.iter().find(|b| b.sha256 == *sha256).and_then(|b| b.exif_taken_at.as_deref()).and_then(exif_time_ms)
        else {
            continue;
        };
        let early = not_before.is_some_and(|nb| exif_ms < nb.saturating_sub(max_skew_ms));
        let late = exif_ms > not_after.saturating_add(max_skew_ms);
        if early || late {
            findings.push(LogFinding::PhotoTimeOutsideInterval {
                sha256: sha256.clone(),
                device_id: device_id.clone(),
                seq: *seq,
                exif_ms,
            });
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exif_times_read_with_their_offset_or_the_bureaus() {
        let cases = [
            ("2026-05-04T10:20:30+08:00", Some(1_777_861_230_000)),
            ("2026-05-04T10:20:30", Some(1_777_861_230_000)),
            ("2026-05-04T02:20:30+00:00", Some(1_777_861_230_000)),
            ("2026-05-04T10:20:30-01:30", Some(1_777_861_230_000 + 34_200_000)),
            ("2026-05-04 10:20", None),
            ("2026-05-04T10:20:30Z", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(exif_time_ms(text), expected, "{text}");
        }
    }
}
