//! `fieldsync-server`: see [`server::cli`].

/// jemalloc, not glibc's malloc: a first sync of 200 devices spent about a sixth of the server's
/// CPU in glibc's malloc and free, and held twice the memory (see BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    server::cli::main()
}
