//! The officer's offline device: local store, sync loop and the `fieldsync` CLI.
//!
//! Not built yet: the record documents and the sync session it will drive
//! live in `sync-core`; see ARCHITECTURE.md.
