//! The report's photos: a thumbnail of each photo whose bytes the package holds and the
//! verifier found to have their hash, decoded within limits (a package is hostile input);
//! otherwise the reason it is not shown.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use sync_core::evidence::Verification;

use super::{Photo, beijing};

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// The largest photo decoded for a thumbnail, in pixels and in decoded bytes.
const MAX_PIXELS: u64 = 100_000_000;
const MAX_DECODE_BYTES: u64 = 512 << 20;

/// A downscaled photo, as RGBA pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Thumbnail {
    /// The thumbnail as a PNG file.
    pub fn png(&self) -> Vec<u8> {
        let image = image::RgbaImage::from_raw(self.width, self.height, self.rgba.clone())
            .expect("a thumbnail's pixels fill its size");
        let mut png = Vec::new();
        image.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("a PNG encodes in memory");
        png
    }
}

/// The thumbnail of an image file, or why there is none.
pub fn thumbnail(bytes: &[u8]) -> Result<Thumbnail, String> {
    let decode = || -> Result<DynamicImage, String> {
        let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
        if reader.format().is_none() {
            return Err("not an image format this program reads".into());
        }
        let mut limits = Limits::default();
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits.clone());
        let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
        let (width, height) = decoder.dimensions();
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(format!("{width} x {height} pixels, too large to show"));
        }
        limits.reserve(decoder.total_bytes()).map_err(|e| e.to_string())?;
        let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
        image.apply_orientation(orientation);
        Ok(image)
    };
    let image = catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|_| Err("the image decoder failed".into()))?;
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgba8();
    Ok(Thumbnail { width: small.width(), height: small.height(), rgba: small.into_raw() })
}

/// Every photo the package lists or the record names, with its thumbnail or why it has none.
pub fn photos(verification: &Verification) -> Vec<Photo> {
    let contents = &verification.contents;
    let caption = |sha256: &str| -> String {
        contents
            .record
            .as_ref()
            .and_then(|r| r.photos.iter().find(|p| p.sha256 == sha256))
            .map(|p| p.caption.clone())
            .unwrap_or_default()
    };
    let mut hashes: Vec<String> = contents.blobs.iter().map(|b| b.sha256.clone()).collect();
    if let Some(record) = &contents.record {
        for photo in &record.photos {
            if !hashes.contains(&photo.sha256) {
                hashes.push(photo.sha256.clone());
            }
        }
    }
    hashes
        .into_iter()
        .map(|sha256| {
            let blob = contents.blobs.iter().find(|b| b.sha256 == sha256);
            let claimed = blob
                .and_then(|b| b.exif_taken_at.as_deref())
                .and_then(sync_core::evidence::exif_time_ms)
                .map(|ms| format!("EXIF 拍摄时间（声称）{}", beijing(ms)));
            let (thumbnail, why) = match contents.blob_bytes.get(&sha256) {
                Some(bytes) => match thumbnail(bytes) {
                    Ok(thumbnail) => (Some(thumbnail), None),
                    Err(e) => (None, Some(format!("照片与其哈希相符，但无法显示为图像（{e}）"))),
                },
                None if verification.not_included.contains(&sha256) => {
                    (None, Some("本证据包只含此照片的哈希，未含照片本身".to_string()))
                }
                None if blob.is_none() => (None, Some("记录引用此照片，但证据包未列出它".to_string())),
                None if blob.is_some_and(|b| b.leaf_index.is_none()) => {
                    (None, Some("服务器未收到此照片，其内容未经证明".to_string()))
                }
                None => (None, Some("证据包中的照片缺失或与其哈希不符，不予显示".to_string())),
            };
            let note = [claimed, why].into_iter().flatten().collect::<Vec<_>>().join("；");
            Photo { caption: caption(&sha256), sha256, thumbnail, note }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_is_downscaled_and_garbage_is_not_an_image() {
        let image = image::RgbImage::from_fn(1000, 500, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let mut png = Vec::new();
        image.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let small = thumbnail(&png).unwrap();
        assert_eq!((small.width, small.height), (THUMBNAIL_SIDE, THUMBNAIL_SIDE / 2));
        assert_eq!(small.rgba.len(), (small.width * small.height * 4) as usize);
        assert!(small.png().starts_with(b"\x89PNG"));
        assert!(thumbnail(b"<script>alert(1)</script>").is_err());
        assert!(thumbnail(&png[..png.len() / 3]).is_err(), "a cut PNG is refused, not shown half grey");
    }
}
