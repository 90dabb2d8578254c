//! `fieldsync-server`: see [`server::cli`].

fn main() -> anyhow::Result<()> {
    server::cli::main()
}
