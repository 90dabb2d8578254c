//! The handlers, one module per resource, each exposing `router()`.

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod campaigns;
pub mod certificates;
pub mod devices;
pub mod enforcement_log;
pub mod ops;
pub mod records;
pub mod recusals;
pub mod review;
pub mod sync;
pub mod tasks;
pub mod transparency;
