//! The `fieldsync-server` program, built in this crate so that the end-to-end tests can run it
//! as a process of its own (and kill it).

fn main() {
    if let Err(error) = server::cli::main() {
        eprintln!("fieldsync-server: {error:#}");
        std::process::exit(1);
    }
}
