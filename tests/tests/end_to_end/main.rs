//! End-to-end tests: the real server on a real port, real HTTP clients, a real SQLite file,
//! real Ed25519 keys, and devices running `sync-core`'s session over CBOR.
//!
//! The harness (starting a server, seeding a city, enrolling devices, syncing) is `fieldsync_tests::harness`.
//!
//! Modules, one file each next to this one (`field` is the folder `field/`):
//!
//! - `access`: every route asked by a reviewer for a confidential campaign task's data, which
//!   none may give (`server::access`).
//! - `health`: the server starts on the embedded default, answers, and stops cleanly.
//! - `identity`: login, tokens, refresh rotation and reuse, rate limits, device enrollment and revocation.
//! - `sessions`: one-time passwords, a new password ending old sessions, a revoked role stopping
//!   sync at once, a flood of logins with huge ids refused by address first.
//! - `roles`: every endpoint, for the roles allowed and each role refused.
//! - `records`: tasks, syncing records, validation refusals kept in quarantine, reading records.
//! - `bad_input`: malformed bodies, wrong content types, oversized bodies: a precise error and no change.
//! - `durability`: a repeated sync request, a cursor beyond the head, many devices syncing at once.
//! - `concurrency`: two phones syncing one record at the same instant lose nothing.
//! - `blobs`: resumable photo uploads, their limits and codes, and who may read a blob.
//! - `operations`: the administrator's backup and check, through the admin API and the program.
//! - `transparency`: devices' enforcement-log uploads (accepted, held, forked, refused), the
//!   transparency log's leaves, checkpoints and proofs checked as a reviewer would, and a
//!   record's log with its intervals and findings.
//! - `campaigns`: random inspection over the synthetic city: the commitment before the draw, the
//!   draw's tasks on their teams, the public listing, the draw verified with `fieldsync
//!   verify-draw` and `fieldsync-server draw verify`, the registry's history.
//! - `hostile_changes`: hand-made changes Automerge decodes but never makes, a relayed change, a
//!   device enrolled as a genesis actor, a refused creation: refused with their codes, the stored
//!   record loading, unchanged and still proving itself.
//! - `caps`: devices per officer and unanswered enrollment challenges bounded by the bureau's
//!   settings, expired challenges purged.
//! - `connections`: slow heads and bodies cut off, idle connections closed, connections per
//!   address capped, body limits per route, and the memory budget of request bodies, measured on
//!   the real server program.
//! - `edges`: values out of bounds refused with their codes (certificate validity, recusals of
//!   unknown officers or entities), the `bearer` scheme in any case, and a non-UTF-8 path
//!   answered with the JSON error body.
//! - `certificates`: certificates over time (P3): a backdated suspension listing the record merged
//!   after it and flagging its changes, a renewal after a lapse leaving the lapse invalid, a
//!   final surrender, reviews and the report of those due, through the API, a device and the program.
//! - `registry`: the entity registry imported from a spreadsheet's CSV export (UTF-8 with or
//!   without BOM, GB18030, CRLF, quoted fields), bad lines named by line and column.
//! - `console`: the console's sessions and forms over HTTP: the cookie, each role's pages,
//!   CSRF tokens, forged and ended sessions, the one-time password, escaping, the supervisor's
//!   forms.
//! - `console_review`: the reviewer's pages over devices' real data: the queue's filters and
//!   pages, a record with its conflict's authors, photos, history, log and evidence verified,
//!   the quarantine, refusals and escaping, and a browser scene on the real server program.
//! - `console_admin`: the administrator's console pages: officers, roles, certificates and their
//!   status, devices, the registry and matter imports, the calendar, settings, backup and check;
//!   CSRF, roles and escaping; a suspension made in the browser refusing the officer's next change.
//! - `contract`: every operation answers only the statuses its OpenAPI document lists and refuses
//!   what its parameters' schemas forbid; `schemathesis` runs the property-based fuzzer over the
//!   served document.
//! - `exposure`: inclusion proofs without the leaf's data for those who may not read its subject,
//!   `/metrics` behind a token or on its own address, security headers on HTML pages.
//! - `lockout`: a password guesser from other addresses slows itself and the account's password
//!   logins, not the officer's enrolled device.
//! - `session_end`: logout, a password change, a reused refresh token and a device's revocation
//!   end their sessions' access tokens at once.
//! - `field`: officers' devices (`field-client`, each with its own SQLite store) offline, merged
//!   in every order, refused, on a failing network, killed with SIGKILL, and driven through the
//!   `fieldsync` program.

mod access;
mod bad_input;
mod blobs;
mod campaigns;
mod caps;
mod certificates;
mod concurrency;
mod connections;
mod console;
mod console_admin;
mod console_review;
mod contract;
mod demo;
mod durability;
mod edges;
mod exposure;
mod field;
mod health;
mod hostile_changes;
mod identity;
mod lockout;
mod log_key;
mod operations;
mod records;
mod registry;
mod roles;
mod schemathesis;
mod session_end;
mod sessions;
mod transparency;
mod wire;
