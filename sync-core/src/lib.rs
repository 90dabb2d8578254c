//! The sans-IO core of fieldsync.
//!
//! Inspection records as Automerge documents that two offline officers can
//! edit and merge ([`document`]), the rules of who may sign ([`rules`]), the
//! validation of incoming changes before they merge ([`validate`]), and the
//! batched sync session ([`session`]).
//!
//! This crate does no IO and reads no clock and no random source: times,
//! ids and randomness come in as parameters, and every state that must
//! survive a restart encodes to bytes for the caller to keep.
//!
//! # Layout
//!
//! - [`input`]: checks on every value written into a record.
//! - [`document`]: the record document, its edits, its typed read and its conflicts.
//! - [`rules`]: certificates and the signing rules (P1, P2, P3).
//! - [`certificates`]: a certificate's life cycle over time: renewal periods, surrender, review, work while suspended (P3).
//! - [`change_check`]: what one incoming change may be on its own: structure, lineage and operations.
//! - [`validate`]: which incoming changes a record accepts, and why others are refused.
//! - [`session`]: the batched, resumable sync exchange between a device and the server.
//! - [`calendar`]: working days by the bureau's calendar, and publication deadlines counted in them.
//! - [`draw`]: the random inspection draw (双随机), a pure function of published inputs.
//! - [`enforcement_log`]: each device's signed hash chain of what happened on site, and the rules it checks (R2, R3, P2).
//! - [`evidence`]: evidence packages: written from what the server holds, verified offline item by item.
//! - [`merkle`]: the transparency log's Merkle tree: RFC 6962 hashing, inclusion and consistency proofs.
//! - [`checkpoint`]: the transparency log's signed checkpoints: C2SP tlog-checkpoint bodies in Ed25519 signed notes.
//! - [`transparency`]: the transparency log's leaves (entries, signatures, locks, devices, blobs) and the time interval they prove.
//! - [`signature`]: strict Ed25519 verification of device signatures.
//! - [`sample`]: realistic records made the way a phone makes them, for benchmarks and demos.
//!
//! # Two peers
//!
//! A device creates a record offline and syncs it to the server:
//!
//! ```
//! use std::collections::BTreeMap;
//! use automerge::{ActorId, Automerge};
//! use sync_core::document::{Edit, RecordDocument};
//! use sync_core::session::{AcceptAll, ChangeFeed, DeviceRecords, DeviceSession, ServerSession};
//!
//! let record_id = "0190f2a4-7c1e-7000-8000-000000000001";
//! let mut device = DeviceRecords::new(ActorId::from([7u8; 16]));
//! let mut record = RecordDocument::create(record_id, device.actor().clone(), "T0001", 1_780_000_000_000).unwrap();
//! record.apply(Edit::AppendObservations("废水处理设施正常运行。".into()), 1_780_000_060_000).unwrap();
//! device.insert(record);
//!
//! let mut device_session = DeviceSession::new(Default::default());
//! device_session.record_changed(record_id);
//! let mut server_docs: BTreeMap<String, Automerge> = BTreeMap::new();
//! let mut server_session = ServerSession::new();
//! let mut feed = ChangeFeed::default();
//!
//! device_session.begin();
//! while let Some(request) = device_session.poll(&mut device) {
//!     let (response, _report) = server_session
//!         .handle(&request, &mut server_docs, &mut AcceptAll, |report| {
//!             for record_id in &report.updated {
//!                 feed.record_changed(record_id);
//!             }
//!             feed.changed_since(request.since, 512)
//!         })
//!         .unwrap();
//!     device_session.handle(response, &mut device).unwrap();
//! }
//! assert_eq!(server_docs[record_id].get_heads(), device.get(record_id).unwrap().automerge().get_heads());
//! ```

pub mod calendar;
pub mod campaigns;
pub mod certificates;
pub mod change_check;
pub mod checkpoint;
pub mod document;
pub mod draw;
pub mod enforcement_log;
pub mod evidence;
pub mod input;
pub mod merkle;
pub mod rebase;
pub mod rules;
pub mod sample;
pub mod session;
pub mod signature;
pub mod transparency;
pub mod validate;

pub use automerge;
