//! Photos as images: what a photo's file claims about itself (its EXIF), and a small thumbnail.
//!
//! A photo arrives as bytes a device sent: the server has verified their SHA-256 and nothing
//! else. Its EXIF says when (local time and offset), where (GPS) and with what (make and model)
//! it was taken, but the device wrote it and anyone can edit it, so everything read here is
//! *claimed*: kept beside the blob for a reviewer to weigh, never trusted by a rule.
//!
//! The bytes may be corrupt or hostile. [`claimed_metadata`] never fails: what does not read is
//! absent, and the reason is kept in [`ClaimedMetadata::exif_error`]. [`thumbnail`] returns a
//! [`MediaError`] for anything it cannot decode, and refuses a decompression bomb before
//! allocating for it ([`MAX_IMAGE_SIDE`], [`MAX_IMAGE_PIXELS`], [`MAX_DECODE_BYTES`]). Both
//! catch a panic of the decoders as a last guard; the property tests check that the guard is
//! never what answers.
//!
//! These are plain functions over bytes (no IO, no store): the server calls [`examine`] on its
//! blocking pool when an upload finishes ([`crate::service::blobs::examine_blob`]), at most
//! [`MAX_CONCURRENT_DECODES`] at once, so that decoding bounds memory too.

pub use crate::store::{ClaimedMetadata, Examination, MediaError};
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, PoisonError};

use exif::{In, Tag, Value};
use image::codecs::jpeg::JpegEncoder;
use image::error::{ImageError, LimitErrorKind};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// A thumbnail fits in a square of this many pixels a side.
pub const THUMBNAIL_SIDE: u32 = 320;

/// JPEG quality of thumbnails.
pub const THUMBNAIL_QUALITY: u8 = 80;

/// Widest and tallest image decoded, in pixels: a 200-megapixel phone photo is 16 320 wide.
pub const MAX_IMAGE_SIDE: u32 = 20_000;

/// Most pixels one image may have to be decoded: a 48-megapixel phone photo, with room. The
/// byte budget alone is not enough: a one-bit PNG of 16 000 x 16 000 pixels is 31 KB on disk
/// and 244 MiB decoded (a byte a pixel), so the count is checked from the header first.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// Most bytes one image may take once decoded (a 48-megapixel RGB photo takes 144 MiB).
pub const MAX_DECODE_BYTES: u64 = 160 << 20;

/// Most images decoded at once in this process: with [`MAX_DECODE_BYTES`], bounds the memory
/// that finishing many uploads together can take.
pub const MAX_CONCURRENT_DECODES: usize = 2;

/// Longest text kept from a claimed field, in characters.
const MAX_CLAIMED_TEXT: usize = 128;

impl From<ImageError> for MediaError {
    fn from(error: ImageError) -> Self {
        match error {
            ImageError::Limits(limit) => MediaError::TooLarge(match limit.kind() {
                LimitErrorKind::DimensionError => format!("more than {MAX_IMAGE_SIDE} pixels a side"),
                LimitErrorKind::InsufficientMemory => format!("more than {} MiB once decoded", MAX_DECODE_BYTES >> 20),
                _ => limit.to_string(),
            }),
            ImageError::Unsupported(unsupported) => MediaError::Unsupported(unsupported.to_string()),
            other => MediaError::Corrupt(other.to_string()),
        }
    }
}

/// Reads an image's claims and makes its thumbnail, decoding it once. Waits for a decode slot
/// ([`MAX_CONCURRENT_DECODES`]); never panics.
pub fn examine(bytes: &[u8]) -> Examination {
    let _slot = DecodeSlot::acquire();
    let claimed = claimed_metadata(bytes);
    let decoded = guarded(|| decode(bytes));
    let (dimensions, thumbnail) = match decoded {
        Ok((image, orientation)) => {
            (Some((image.width(), image.height())), guarded(|| thumbnail_of(&image, orientation)))
        }
        Err(error) => (header_dimensions(bytes), Err(error)),
    };
    Examination { claimed, dimensions, thumbnail }
}

/// What a photo's EXIF claims. Never fails: a field that is absent, blank, malformed or out of
/// range is `None`; a file without EXIF claims nothing.
pub fn claimed_metadata(bytes: &[u8]) -> ClaimedMetadata {
    catch_unwind(AssertUnwindSafe(|| read_claims(bytes))).unwrap_or_else(|_| ClaimedMetadata {
        exif_error: Some("the EXIF reader failed".into()),
        ..ClaimedMetadata::default()
    })
}

/// A JPEG thumbnail of the image, at most [`THUMBNAIL_SIDE`] pixels a side (never enlarged),
/// turned upright by its EXIF orientation.
pub fn thumbnail(bytes: &[u8]) -> Result<Vec<u8>, MediaError> {
    guarded(|| {
        let (image, orientation) = decode(bytes)?;
        thumbnail_of(&image, orientation)
    })
}

/// Runs a decoder's work, turning a panic into [`MediaError::Panicked`].
fn guarded<T>(work: impl FnOnce() -> Result<T, MediaError>) -> Result<T, MediaError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
        tracing::error!("an image decoder panicked; the image is recorded as undecodable");
        Err(MediaError::Panicked)
    })
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// A reader of the bytes with its format guessed from their content (never from a name).
fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, MediaError> {
    let reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| MediaError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(MediaError::Unsupported("an unknown format".into()));
    }
    Ok(reader)
}

/// Decodes the image within [`limits`]: the header's dimensions and pixel count
/// ([`MAX_IMAGE_PIXELS`]) are checked before anything is decoded, and the decoded size is
/// reserved against [`MAX_DECODE_BYTES`] before the pixels
/// are allocated (`ImageReader::into_decoder` does not reserve it by itself).
fn decode(bytes: &[u8]) -> Result<(DynamicImage, Orientation), MediaError> {
    let mut reader = reader(bytes)?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(MediaError::Corrupt("the JPEG ends before its image does".into()));
    }
    reader.limits(limits());
    let mut decoder = reader.into_decoder()?;
    // The decoder has read the header only: the pixel count is known before anything is decoded.
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(MediaError::TooLarge(format!(
            "{width} x {height} pixels, more than {} megapixels",
            MAX_IMAGE_PIXELS / 1_000_000
        )));
    }
    limits().reserve(decoder.total_bytes())?;
    // A broken orientation tag is no reason to refuse the image.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok((DynamicImage::from_decoder(decoder)?, orientation))
}

/// The dimensions the image's header states, even past [`MAX_IMAGE_SIDE`]: reading a header
/// allocates nothing for the pixels.
fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    guarded(|| {
        let mut reader = reader(bytes)?;
        let mut header_only = Limits::default();
        header_only.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(header_only);
        Ok(reader.into_dimensions()?)
    })
    .ok()
}

/// Whether a JPEG's image runs to its end marker. A JPEG cut short still decodes (the decoder
/// fills the rows it lacks with grey), but it is not the photo that was taken: its segments are
/// walked by their lengths, and each scan's data to the marker that ends it.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    // After the start-of-image marker.
    let mut at = 2;
    loop {
        if bytes.get(at) != Some(&0xFF) {
            return false;
        }
        // Any number of fill bytes may come before a marker's code.
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&code) = bytes.get(at) else {
            return false;
        };
        at += 1;
        match code {
            // End of image.
            0xD9 => return true,
            // Markers without a segment.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(&[high, low]) = bytes.get(at..at + 2) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length < 2 {
            return false;
        }
        at += length;
        if code == 0xDA {
            // A scan's entropy-coded data: up to the first marker that is neither a stuffed
            // 0xFF00 nor a restart.
            loop {
                match bytes.get(at..at + 2) {
                    None => return false,
                    Some([0xFF, 0x00 | 0xD0..=0xD7]) => at += 2,
                    Some([0xFF, 0xFF]) => at += 1,
                    Some([0xFF, _]) => break,
                    Some(_) => at += 1,
                }
            }
        }
    }
}

fn thumbnail_of(image: &DynamicImage, orientation: Orientation) -> Result<Vec<u8>, MediaError> {
    let mut small = if image.width() > THUMBNAIL_SIDE || image.height() > THUMBNAIL_SIDE {
        // Each source pixel goes to one target pixel: fast, and good enough at this size.
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        image.clone()
    };
    small.apply_orientation(orientation);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY)
        .encode_image(&small.into_rgb8())
        .map_err(|e| MediaError::Encode(e.to_string()))?;
    Ok(jpeg)
}

fn read_claims(bytes: &[u8]) -> ClaimedMetadata {
    let mut reader = exif::Reader::new();
    // A field that does not parse should not hide the others.
    reader.continue_on_error(true);
    let mut exif_error = None;
    let exif = match reader
        .read_from_container(&mut Cursor::new(bytes))
        .or_else(|error| error.distill_partial_result(|errors| exif_error = errors.first().map(ToString::to_string)))
    {
        Ok(exif) => exif,
        // No EXIF, or not a container that carries it: nothing is claimed, nothing is wrong.
        Err(exif::Error::NotFound(_)) | Err(exif::Error::InvalidFormat("Unknown image format")) => {
            return ClaimedMetadata::default();
        }
        Err(error) => return ClaimedMetadata { exif_error: Some(error.to_string()), ..ClaimedMetadata::default() },
    };
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY).map(|field| &field.value);
    let (taken_at, offset) = match field(Tag::DateTimeOriginal).and_then(local_time) {
        Some(taken_at) => {
            (Some(taken_at), field(Tag::OffsetTimeOriginal).or(field(Tag::OffsetTime)).and_then(utc_offset))
        }
        None => (field(Tag::DateTime).and_then(local_time), field(Tag::OffsetTime).and_then(utc_offset)),
    };
    ClaimedMetadata {
        taken_at,
        offset,
        latitude: coordinate(field(Tag::GPSLatitude), field(Tag::GPSLatitudeRef), (b'N', b'S'), 90.0),
        longitude: coordinate(field(Tag::GPSLongitude), field(Tag::GPSLongitudeRef), (b'E', b'W'), 180.0),
        make: field(Tag::Make).and_then(text),
        model: field(Tag::Model).and_then(text),
        exif_error,
    }
}

/// The first string of an ASCII field.
fn ascii(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Ascii(strings) => strings.first().map(Vec::as_slice),
        _ => None,
    }
}

/// A text field as printable text: control characters dropped, trimmed, at most
/// [`MAX_CLAIMED_TEXT`] characters; `None` when nothing is left.
fn text(value: &Value) -> Option<String> {
    let raw = String::from_utf8_lossy(ascii(value)?);
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).take(MAX_CLAIMED_TEXT).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

/// An EXIF date and time (`2026:05:04 10:20:30`) as ISO 8601 local time; `None` when blank
/// (`0000:00:00 00:00:00` included) or out of range.
fn local_time(value: &Value) -> Option<String> {
    let time = exif::DateTime::from_ascii(ascii(value)?).ok()?;
    let valid = (1..=9999).contains(&time.year)
        && (1..=12).contains(&time.month)
        && (1..=31).contains(&time.day)
        && time.hour < 24
        && time.minute < 60
        && time.second <= 60;
    valid.then(|| {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            time.year, time.month, time.day, time.hour, time.minute, time.second
        )
    })
}

/// An EXIF offset from UTC (`+08:00`), checked: a sign, hours up to 14, minutes below 60.
fn utc_offset(value: &Value) -> Option<String> {
    let &[sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] = ascii(value)? else {
        return None;
    };
    let digits = [h1, h2, m1, m2];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let [h1, h2, m1, m2] = digits.map(|d| d - b'0');
    let (hours, minutes) = (h1 * 10 + h2, m1 * 10 + m2);
    (hours <= 14 && minutes < 60).then(|| format!("{}{hours:02}:{minutes:02}", sign as char))
}

/// Degrees, minutes and seconds (one to three rationals) with their hemisphere as signed
/// decimal degrees; `None` when a part is missing, a denominator is zero, the reference is not
/// one of the two letters, or the result is past `bound`.
fn coordinate(
    value: Option<&Value>,
    reference: Option<&Value>,
    (positive, negative): (u8, u8),
    bound: f64,
) -> Option<f64> {
    let Some(Value::Rational(parts)) = value else {
        return None;
    };
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|part| part.denom == 0) {
        return None;
    }
    let magnitude: f64 = parts.iter().zip([1.0, 60.0, 3600.0]).map(|(part, unit)| part.to_f64() / unit).sum();
    let sign = match ascii(reference?)?.first()?.to_ascii_uppercase() {
        letter if letter == positive => 1.0,
        letter if letter == negative => -1.0,
        _ => return None,
    };
    (magnitude.is_finite() && magnitude <= bound).then_some(sign * magnitude)
}

/// One of [`MAX_CONCURRENT_DECODES`] permits to decode, held until dropped.
struct DecodeSlot;

static DECODES: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl DecodeSlot {
    fn acquire() -> Self {
        let (running, freed) = &DECODES;
        let mut running = running.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= MAX_CONCURRENT_DECODES {
            running = freed.wait(running).unwrap_or_else(PoisonError::into_inner);
        }
        *running += 1;
        DecodeSlot
    }
}

impl Drop for DecodeSlot {
    fn drop(&mut self) {
        let (running, freed) = &DECODES;
        *running.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use exif::experimental::Writer;
    use exif::{Field, Rational};
    use image::{ImageFormat, RgbImage};
    use proptest::prelude::*;

    use super::*;

    fn ascii_field(tag: Tag, text: &str) -> Field {
        Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.as_bytes().to_vec()]) }
    }

    fn rationals(tag: Tag, parts: &[(u32, u32)]) -> Field {
        let parts = parts.iter().map(|&(num, denom)| Rational { num, denom }).collect();
        Field { tag, ifd_num: In::PRIMARY, value: Value::Rational(parts) }
    }

    /// An EXIF block (a TIFF structure) with these fields.
    fn exif_block(fields: &[Field]) -> Vec<u8> {
        let mut writer = Writer::new();
        for field in fields {
            writer.push_field(field);
        }
        let mut tiff = Cursor::new(Vec::new());
        writer.write(&mut tiff, false).unwrap();
        tiff.into_inner()
    }

    /// A real image: a gradient, so that orientation shows.
    fn picture(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128]))
    }

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        picture(width, height).write_to(&mut Cursor::new(&mut bytes), format).unwrap();
        bytes
    }

    /// A JPEG with an APP1 EXIF segment right after its start marker, as cameras write it.
    fn jpeg_with_exif(width: u32, height: u32, fields: &[Field]) -> Vec<u8> {
        let jpeg = encoded(width, height, ImageFormat::Jpeg);
        let tiff = exif_block(fields);
        let length = u16::try_from(2 + 6 + tiff.len()).unwrap();
        let mut bytes = jpeg[..2].to_vec();
        bytes.extend_from_slice(&[0xFF, 0xE1]);
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(b"Exif\0\0");
        bytes.extend_from_slice(&tiff);
        bytes.extend_from_slice(&jpeg[2..]);
        bytes
    }

    /// What a phone writes: Beijing, at 10:20:30 local time, eight hours ahead of UTC.
    fn phone_fields() -> Vec<Field> {
        vec![
            ascii_field(Tag::Make, "HUAWEI"),
            ascii_field(Tag::Model, "Mate 60 Pro"),
            ascii_field(Tag::DateTime, "2026:05:04 10:21:00"),
            ascii_field(Tag::DateTimeOriginal, "2026:05:04 10:20:30"),
            ascii_field(Tag::OffsetTimeOriginal, "+08:00"),
            ascii_field(Tag::GPSLatitudeRef, "N"),
            rationals(Tag::GPSLatitude, &[(39, 1), (54, 1), (2730, 100)]),
            ascii_field(Tag::GPSLongitudeRef, "E"),
            rationals(Tag::GPSLongitude, &[(116, 1), (23, 1), (1740, 100)]),
        ]
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A PNG whose header claims `width` x `height` RGB pixels, with almost no data.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let chunk = |kind: &[u8; 4], data: &[u8]| {
            let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
            chunk.extend_from_slice(kind);
            chunk.extend_from_slice(data);
            chunk.extend_from_slice(&crc32(&chunk[4..]).to_be_bytes());
            chunk
        };
        let mut header = width.to_be_bytes().to_vec();
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend(chunk(b"IHDR", &header));
        // The zlib stream of nothing: a bomb's data would follow.
        bytes.extend(chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
        bytes.extend(chunk(b"IEND", &[]));
        bytes
    }

    /// A JPEG whose frame header claims `width` x `height`, with the scan of a small image.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut bytes = encoded(16, 16, ImageFormat::Jpeg);
        let frame = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
        bytes[frame + 5..frame + 7].copy_from_slice(&height.to_be_bytes());
        bytes[frame + 7..frame + 9].copy_from_slice(&width.to_be_bytes());
        bytes
    }

    fn dimensions_of_jpeg(jpeg: &[u8]) -> (u32, u32) {
        let image = image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).expect("the thumbnail is a JPEG");
        (image.width(), image.height())
    }

    /// What an image should give: its claims, and the thumbnail's size or the error's code.
    struct Case {
        what: &'static str,
        bytes: Vec<u8>,
        claimed: ClaimedMetadata,
        thumbnail: Result<(u32, u32), &'static str>,
    }

    fn check(case: &Case) {
        let Case { what, bytes, claimed, thumbnail: expected } = case;
        assert_eq!(&claimed_metadata(bytes), claimed, "{what}: claims");
        let made = thumbnail(bytes);
        match (&made, expected) {
            (Ok(jpeg), Ok(size)) => assert_eq!(dimensions_of_jpeg(jpeg), *size, "{what}: thumbnail size"),
            (Err(error), Err(code)) => assert_eq!(error.code(), *code, "{what}: {error}"),
            _ => panic!("{what}: {made:?}, expected {expected:?}"),
        }
        let examined = examine(bytes);
        assert_eq!(&examined.claimed, claimed, "{what}: examined claims");
        assert_eq!(examined.thumbnail, made, "{what}: examined thumbnail");
    }

    #[test]
    fn images_give_their_claims_and_a_thumbnail_and_bad_bytes_an_error() {
        let phone = ClaimedMetadata {
            taken_at: Some("2026-05-04T10:20:30".into()),
            offset: Some("+08:00".into()),
            latitude: Some(39.0 + 54.0 / 60.0 + 27.30 / 3600.0),
            longitude: Some(116.0 + 23.0 / 60.0 + 17.40 / 3600.0),
            make: Some("HUAWEI".into()),
            model: Some("Mate 60 Pro".into()),
            exif_error: None,
        };
        let png = encoded(64, 48, ImageFormat::Png);
        let phone_jpeg = jpeg_with_exif(640, 480, &phone_fields());
        let cases = [
            Case {
                what: "a phone's JPEG with EXIF",
                bytes: phone_jpeg.clone(),
                claimed: phone.clone(),
                thumbnail: Ok((320, 240)),
            },
            Case {
                what: "a PNG without EXIF: nothing claimed, not enlarged",
                bytes: png.clone(),
                claimed: ClaimedMetadata::default(),
                thumbnail: Ok((64, 48)),
            },
            Case {
                what: "a tall JPEG without EXIF",
                bytes: encoded(200, 1000, ImageFormat::Jpeg),
                claimed: ClaimedMetadata::default(),
                thumbnail: Ok((64, 320)),
            },
            Case {
                what: "a JPEG cut in half",
                bytes: phone_jpeg[..phone_jpeg.len() / 2].to_vec(),
                claimed: phone.clone(),
                thumbnail: Err("corrupt_image"),
            },
            Case {
                what: "a JPEG cut inside its EXIF",
                bytes: phone_jpeg[..40].to_vec(),
                claimed: ClaimedMetadata { exif_error: Some("Broken JPEG file".into()), ..ClaimedMetadata::default() },
                thumbnail: Err("corrupt_image"),
            },
            Case {
                what: "a PNG cut in half",
                bytes: png[..png.len() / 2].to_vec(),
                claimed: ClaimedMetadata { exif_error: Some("Broken PNG file".into()), ..ClaimedMetadata::default() },
                thumbnail: Err("corrupt_image"),
            },
            Case {
                what: "random bytes",
                bytes: (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(),
                claimed: ClaimedMetadata::default(),
                thumbnail: Err("unsupported_image"),
            },
            Case {
                what: "nothing",
                bytes: Vec::new(),
                claimed: ClaimedMetadata::default(),
                thumbnail: Err("unsupported_image"),
            },
            Case {
                what: "a PNG header claiming 100000 x 100000 pixels",
                bytes: png_header(100_000, 100_000),
                claimed: ClaimedMetadata::default(),
                thumbnail: Err("image_too_large"),
            },
            Case {
                what: "a PNG header claiming 15000 x 15000 pixels: within the sides, not the memory",
                bytes: png_header(15_000, 15_000),
                claimed: ClaimedMetadata::default(),
                thumbnail: Err("image_too_large"),
            },
            Case {
                what: "a JPEG header claiming 65000 x 65000 pixels",
                bytes: jpeg_claiming(65_000, 65_000),
                claimed: ClaimedMetadata::default(),
                thumbnail: Err("image_too_large"),
            },
            Case {
                what: "a GIF, which this server does not decode",
                bytes: b"GIF89a\x01\0\x01\0\0\0\0;".to_vec(),
                claimed: ClaimedMetadata::default(),
                thumbnail: Err("unsupported_image"),
            },
        ];
        for case in &cases {
            check(case);
        }
    }

    #[test]
    fn claims_that_are_blank_malformed_or_out_of_range_are_absent() {
        let claims = |fields: &[Field]| claimed_metadata(&jpeg_with_exif(8, 8, fields));
        let only = |field: Field| claims(&[ascii_field(Tag::Software, "camera"), field]);
        // Each row: the fields, then what is claimed.
        let cases: Vec<(&str, Vec<Field>, ClaimedMetadata)> = vec![
            (
                "DateTime and OffsetTime when there is no DateTimeOriginal",
                vec![ascii_field(Tag::DateTime, "2026:01:02 03:04:05"), ascii_field(Tag::OffsetTime, "-05:30")],
                ClaimedMetadata {
                    taken_at: Some("2026-01-02T03:04:05".into()),
                    offset: Some("-05:30".into()),
                    ..ClaimedMetadata::default()
                },
            ),
            (
                "OffsetTime for DateTimeOriginal when there is no OffsetTimeOriginal",
                vec![ascii_field(Tag::DateTimeOriginal, "2026:01:02 03:04:05"), ascii_field(Tag::OffsetTime, "+09:00")],
                ClaimedMetadata {
                    taken_at: Some("2026-01-02T03:04:05".into()),
                    offset: Some("+09:00".into()),
                    ..ClaimedMetadata::default()
                },
            ),
            (
                "south and west are negative",
                vec![
                    ascii_field(Tag::GPSLatitudeRef, "S"),
                    rationals(Tag::GPSLatitude, &[(33, 1), (30, 1), (0, 1)]),
                    ascii_field(Tag::GPSLongitudeRef, "W"),
                    rationals(Tag::GPSLongitude, &[(7071, 100)]),
                ],
                ClaimedMetadata { latitude: Some(-33.5), longitude: Some(-70.71), ..ClaimedMetadata::default() },
            ),
            (
                "a coordinate without its hemisphere, or with a zero denominator",
                vec![
                    rationals(Tag::GPSLatitude, &[(33, 1), (30, 1), (0, 1)]),
                    ascii_field(Tag::GPSLongitudeRef, "E"),
                    rationals(Tag::GPSLongitude, &[(116, 1), (0, 0), (0, 1)]),
                ],
                ClaimedMetadata::default(),
            ),
            (
                "a latitude past the pole, a hemisphere that is not one",
                vec![
                    ascii_field(Tag::GPSLatitudeRef, "N"),
                    rationals(Tag::GPSLatitude, &[(91, 1), (0, 1), (0, 1)]),
                    ascii_field(Tag::GPSLongitudeRef, "X"),
                    rationals(Tag::GPSLongitude, &[(10, 1), (0, 1), (0, 1)]),
                ],
                ClaimedMetadata::default(),
            ),
            (
                "a blank time, an unknown time, an impossible month, a malformed offset",
                vec![
                    ascii_field(Tag::DateTimeOriginal, "    :  :     :  :  "),
                    ascii_field(Tag::DateTime, "0000:00:00 00:00:00"),
                    ascii_field(Tag::DateTimeDigitized, "2026:13:01 00:00:00"),
                    ascii_field(Tag::OffsetTime, "+8:00"),
                ],
                ClaimedMetadata::default(),
            ),
            (
                "control characters, blanks and overlong names",
                vec![ascii_field(Tag::Make, "  Evil\u{1b}[31mCorp\n "), ascii_field(Tag::Model, &"M".repeat(1000))],
                ClaimedMetadata {
                    make: Some("Evil[31mCorp".into()),
                    model: Some("M".repeat(MAX_CLAIMED_TEXT)),
                    ..ClaimedMetadata::default()
                },
            ),
        ];
        for (what, fields, expected) in cases {
            assert_eq!(claims(&fields), expected, "{what}");
        }
        assert_eq!(only(ascii_field(Tag::OffsetTimeOriginal, "+15:00")), ClaimedMetadata::default(), "no time");
        assert!(only(ascii_field(Tag::Artist, "someone")).is_empty(), "fields that are not claims are ignored");
    }

    #[test]
    fn a_thumbnail_is_turned_upright_by_the_exif_orientation() {
        // Orientation 6: the stored pixels must turn 90° clockwise to stand upright.
        let orientation = Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![6]) };
        let jpeg = jpeg_with_exif(640, 320, &[orientation]);
        assert_eq!(dimensions_of_jpeg(&thumbnail(&jpeg).unwrap()), (160, 320));
        let examined = examine(&jpeg);
        assert_eq!(examined.dimensions, Some((640, 320)), "the stored pixels, not turned");
        assert_eq!(examined.thumbnail.map(|jpeg| dimensions_of_jpeg(&jpeg)), Ok((160, 320)));
    }

    #[test]
    fn an_image_too_large_to_decode_still_tells_its_dimensions() {
        let examined = examine(&png_header(100_000, 100_000));
        assert_eq!(examined.dimensions, Some((100_000, 100_000)));
        assert_eq!(examined.thumbnail.unwrap_err().code(), "image_too_large");
        let blob = Examination::not_an_image("video/mp4");
        assert_eq!(blob.thumbnail.unwrap_err().code(), "unsupported_image");
    }

    /// A one-bit grey PNG of `side` x `side` pixels, all black: a few tens of kilobytes that a
    /// decoder expands to a byte a pixel.
    fn one_bit_png(side: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header().unwrap();
        let row = vec![0u8; side.div_ceil(8) as usize];
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..side {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
        writer.finish().unwrap();
        bytes
    }

    #[test]
    fn a_small_file_of_too_many_pixels_is_refused_before_it_is_decoded() {
        // 31 KB that decode to 256 million bytes: under the byte budget of the past, over the pixel budget.
        let bomb = one_bit_png(16_000);
        assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
        let examined = examine(&bomb);
        assert_eq!(examined.dimensions, Some((16_000, 16_000)), "its size is still told");
        let error = examined.thumbnail.unwrap_err();
        assert_eq!(error.code(), "image_too_large", "{error}");
        assert!(error.to_string().contains("megapixels"), "refused by its pixel count: {error}");
        // A phone's 48-megapixel photo stays within the budget.
        const { assert!(8_000 * 6_000 <= MAX_IMAGE_PIXELS) };
    }

    #[test]
    fn a_panicking_decoder_is_an_error() {
        let caught = guarded::<()>(|| panic!("a decoder bug"));
        assert_eq!(caught, Err(MediaError::Panicked));
    }

    /// Bytes that a real image becomes after these edits: each (position, byte) overwrites a
    /// byte, then the bytes are cut at `keep` (a fraction of their length).
    fn mutated(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: f64) -> Vec<u8> {
        let length = bytes.len();
        for &(position, byte) in edits {
            bytes[position % length] = byte;
        }
        bytes.truncate(((length as f64) * keep).ceil() as usize);
        bytes
    }

    /// Neither function panics, and neither needs its last guard: a decoder that panicked would
    /// be caught, but it is a bug to report upstream.
    fn never_panics(bytes: &[u8]) {
        let claimed = claimed_metadata(bytes);
        assert_ne!(claimed.exif_error.as_deref(), Some("the EXIF reader failed"), "{bytes:?}");
        if let Err(error) = thumbnail(bytes) {
            assert_ne!(error, MediaError::Panicked, "{bytes:?}");
        }
    }

    fn samples() -> [Vec<u8>; 3] {
        [jpeg_with_exif(48, 32, &phone_fields()), encoded(40, 30, ImageFormat::Png), exif_block(&phone_fields())]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("FIELDSYNC_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            never_panics(&bytes);
        }

        #[test]
        fn arbitrary_bytes_behind_an_image_signature_never_panic(
            signature in prop::sample::select(vec![
                b"\xFF\xD8\xFF\xE1".to_vec(),
                b"\xFF\xD8\xFF\xE0".to_vec(),
                b"\x89PNG\r\n\x1a\n".to_vec(),
                b"MM\0*\0\0\0\x08".to_vec(),
                b"II*\0\x08\0\0\0".to_vec(),
            ]),
            rest in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            never_panics(&[signature, rest].concat());
        }

        #[test]
        fn mutated_real_images_never_panic(
            sample in 0..3usize,
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..16),
            keep in 0.0..=1.0f64,
        ) {
            let bytes = mutated(samples()[sample].clone(), &edits, keep);
            never_panics(&bytes);
        }
    }
}
