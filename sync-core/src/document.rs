//! The inspection record as one Automerge document.
//!
//! # Layout
//!
//! Every replica starts from the same *genesis* change: made with an actor id
//! and a time derived from the record id alone, so two devices that create
//! the same record make byte-identical genesis changes and never duplicate
//! the document's objects. The genesis creates every container:
//!
//! ```text
//! ROOT
//! ├── schema            uint   RECORD_SCHEMA_VERSION
//! ├── record_id         str
//! ├── header            map    task_id, started_at_ms, ended_at_ms, address, latitude, longitude, conclusion,
//! │                             inspection_refused (JSON: the party's refusal, P2)
//! ├── entity            map    entity_id, name, credit_code, legal_representative, discharge_permit, tier
//! ├── recusal           map    asked, answer
//! ├── checklist_results map    item code -> result
//! ├── checklist_notes   map    item code -> note
//! ├── observations      text   merged character by character
//! ├── photos            map    sha256 -> caption
//! ├── officers_present  map    officer id -> JSON entry
//! ├── people_present    map    person id -> JSON entry
//! ├── samples           map    sample id -> JSON entry
//! ├── measures          map    measure kind -> note
//! ├── signatures        map    officer id -> JSON entry
//! ├── resolutions       map    field path -> JSON entry
//! └── locked            bool
//! ```
//!
//! Below the genesis, every value is a scalar. A compound entry (an officer
//! present, a signature) is one JSON string written whole: nested objects
//! created concurrently under one key would shadow each other, while two
//! scalars under one key are a visible conflict. That is the point: concurrent
//! writes to one field are never resolved silently; [`RecordDocument::read`]
//! reports them, and [`RecordDocument::resolve`] settles one explicitly.
//!
//! # Files
//!
//! - `genesis.rs`: the genesis change, the containers it makes, and their bounds ([`MAX_ENTRIES`]).
//! - `edit.rs`: [`RecordDocument`] and every write to a record ([`Edit`], signing, locking, resolving).
//! - `read.rs`: reading a record ([`read_record`], [`read_status`]) and the schema each value is checked against.
//!
//! # Status and conflicts
//!
//! Status is derived: `Draft` has no signature; `Signing` has one (content frozen, only
//! signatures may be added); `Locked` has every present officer's signature, the last signature
//! setting `locked` in the same change. When the last two signatures are made concurrently on two
//! devices, neither locks; [`RecordDocument::lock`] does it once both are merged.
//!
//! The legally significant fields are the entity, the start and end times, the conclusion, the
//! task, the measures and the officers present: an open conflict there blocks signing. Conflicts
//! whose values are all equal are not reported. Times are Unix milliseconds everywhere, Automerge
//! change times included.

mod edit;
mod genesis;
mod read;

pub use edit::{Edit, EditError, RecordDocument, SignOutcome};
pub(crate) use genesis::CONTAINERS;
pub use genesis::{
    MAX_ENTRIES, entries_over_limit, genesis, genesis_actor, genesis_change_hash, is_genesis_change, max_entries,
    new_record_id,
};
pub(crate) use read::check_field;
pub use read::{SchemaError, enum_name, read_record, read_status, read_task_id, signature_entries};
