//! Uploads and blobs.

use server::service::transparency;
use server::store::{Blob, BlobMetadata, ClaimedMetadata, Examination, Upload, UploadStart};

use super::Backend;

fn upload(upload_id: &str, device_id: &str, sha256: &str) -> Upload {
    Upload {
        upload_id: upload_id.into(),
        sha256: sha256.into(),
        size: 10,
        record_id: "R".into(),
        device_id: device_id.into(),
        officer_id: "O1".into(),
        received: 0,
        created_at_ms: 1,
        updated_at_ms: 1,
        finished_at_ms: None,
    }
}

pub fn uploads_start_resume_stop_at_the_limit_and_finish_once(backend: Backend) {
    let (_guard, store) = backend();
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let first = upload("U1", "D1", &a);
    assert_eq!(store.begin_upload(&first, 2).unwrap(), UploadStart::Started(first.clone()));
    assert_eq!(
        store.begin_upload(&upload("U9", "D1", &a), 2).unwrap(),
        UploadStart::Resumed(first.clone()),
        "the same blob and size again goes on with the first upload"
    );
    assert!(matches!(store.begin_upload(&upload("U2", "D1", &b), 2).unwrap(), UploadStart::Started(_)));
    assert_eq!(store.begin_upload(&upload("U3", "D1", &c), 2).unwrap(), UploadStart::TooMany { unfinished: 2 });
    assert_eq!(store.upload("U3").unwrap(), None, "a refused upload leaves nothing");
    assert!(matches!(store.begin_upload(&upload("U4", "D2", &c), 2).unwrap(), UploadStart::Started(_)));
    // The offset only moves from where it is.
    assert!(store.set_upload_received("U1", 0, 10, 2).unwrap());
    assert!(!store.set_upload_received("U1", 0, 5, 3).unwrap());
    assert_eq!(store.upload("U1").unwrap().unwrap().received, 10);
    let blob = Blob {
        sha256: a.clone(),
        size: 10,
        media_type: "image/png".into(),
        uploaded_by: "D1".into(),
        uploaded_at_ms: 4,
    };
    assert!(store.finish_upload("U1", &blob, 4).unwrap(), "stored by this call");
    assert!(!store.finish_upload("U1", &Blob { uploaded_at_ms: 5, ..blob.clone() }, 5).unwrap());
    assert_eq!(transparency::log_size(store.as_ref()).unwrap(), 1, "one leaf for the one blob stored");
    assert_eq!(store.blob(&a).unwrap(), Some(blob.clone()), "stored once, as first finished");
    assert_eq!(store.upload("U1").unwrap().unwrap().finished_at_ms, Some(4));
    assert!(matches!(store.begin_upload(&upload("U5", "D1", &c), 2).unwrap(), UploadStart::Started(_)), "a slot freed");
    assert_eq!(store.begin_upload(&upload("U6", "D2", &a), 2).unwrap(), UploadStart::Stored(blob));
    assert_eq!(store.stored_blobs(&[a.clone(), b.clone()]).unwrap(), [a]);
    store.discard_upload("U2").unwrap();
    assert_eq!(store.upload("U2").unwrap(), None);
}

pub fn a_blobs_metadata_is_kept_once_beside_it(backend: Backend) {
    let (_guard, store) = backend();
    let sha256 = "a".repeat(64);
    store.begin_upload(&upload("U1", "D1", &sha256), 4).unwrap();
    let blob = Blob {
        sha256: sha256.clone(),
        size: 10,
        media_type: "image/jpeg".into(),
        uploaded_by: "D1".into(),
        uploaded_at_ms: 1,
    };
    store.finish_upload("U1", &blob, 1).unwrap();
    assert_eq!(store.blob_metadata(&sha256).unwrap(), None, "not examined yet");
    let examined = BlobMetadata {
        sha256: sha256.clone(),
        claimed: ClaimedMetadata {
            taken_at: Some("2026-05-04T10:20:30".into()),
            offset: Some("+08:00".into()),
            latitude: Some(39.9076),
            longitude: Some(-116.3882),
            make: Some("HUAWEI".into()),
            model: Some("Mate 60 Pro".into()),
            exif_error: None,
        },
        dimensions: Some((4096, 3072)),
        thumbnail: Some(vec![0xFF, 0xD8, 0xFF, 0xD9]),
        error: None,
        examined_at_ms: 2,
    };
    store.put_blob_metadata(&examined).unwrap();
    assert_eq!(store.blob_metadata(&sha256).unwrap().as_ref(), Some(&examined));
    let again = BlobMetadata {
        claimed: ClaimedMetadata::default(),
        dimensions: None,
        thumbnail: None,
        error: Some(("corrupt_image".into(), "cut short".into())),
        examined_at_ms: 3,
        ..examined.clone()
    };
    store.put_blob_metadata(&again).unwrap();
    assert_eq!(store.blob_metadata(&sha256).unwrap(), Some(examined.clone()), "the first examination stays");
    // A blob that is not an image: no claims, no thumbnail, the reason.
    let other = "b".repeat(64);
    store.begin_upload(&upload("U2", "D1", &other), 4).unwrap();
    store.finish_upload("U2", &Blob { sha256: other.clone(), ..blob }, 4).unwrap();
    let no_image = BlobMetadata { sha256: other.clone(), examined_at_ms: 5, ..again };
    store.put_blob_metadata(&no_image).unwrap();
    assert_eq!(store.blob_metadata(&other).unwrap(), Some(no_image));
    let unknown = BlobMetadata::of(&"c".repeat(64), Examination::not_an_image("video/mp4"), 1);
    assert!(store.put_blob_metadata(&unknown).is_err(), "only a stored blob has metadata");
}
