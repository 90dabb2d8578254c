//! Arbitrary bytes as an uploaded photo: reading the EXIF it claims and making its thumbnail
//! must not panic. libFuzzer's panic hook aborts at the panic itself, before the functions' own
//! last guard (`catch_unwind`) could hide it, so a decoder's bug is reported here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::media::{claimed_metadata, thumbnail};

fuzz_target!(|bytes: &[u8]| {
    let claimed = claimed_metadata(bytes);
    if let (Some(latitude), Some(longitude)) = (claimed.latitude, claimed.longitude) {
        assert!(latitude.abs() <= 90.0 && longitude.abs() <= 180.0, "{claimed:?}");
    }
    if let Ok(jpeg) = thumbnail(bytes) {
        assert!(jpeg.starts_with(&[0xFF, 0xD8]), "a thumbnail is a JPEG");
    }
});
