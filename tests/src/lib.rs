//! End-to-end tests of fieldsync live in `tests/end_to_end.rs`: one binary that starts the real
//! server on port 0 and talks to it over real HTTP.
