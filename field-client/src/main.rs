//! `fieldsync`: see [`field_client::cli`].

fn main() {
    field_client::cli::main()
}
