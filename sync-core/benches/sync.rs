//! Sync benchmarks; see BENCHMARKS.md. Filled in with the session benchmarks.
fn main() {}
