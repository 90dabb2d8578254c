//! The `fieldsync` device program, built in this crate so that the end-to-end tests can run it
//! as a process of its own (and kill it).

fn main() {
    field_client::cli::main()
}
