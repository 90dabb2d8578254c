//! The server's layers point down only: `service/` knows nothing of HTTP (no axum, utoipa,
//! hyper or tower, nothing of `crate::http`), and `http/` never names the SQLite backend, which
//! only the composition root (`cli.rs`) chooses. The test reads every `use` line of the two
//! folders.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `folder`.
fn sources(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The `use` lines of the files under `src/<layer>` that name one of `forbidden`.
fn uses_naming(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let mut found = Vec::new();
    for file in sources(&folder) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_start();
            let Some(path) = line.strip_prefix("pub use ").or_else(|| line.strip_prefix("use ")) else { continue };
            if forbidden.iter().any(|name| path.starts_with(name)) {
                found.push(format!("{}:{}: {line}", file.display(), number + 1));
            }
        }
    }
    found
}

#[test]
fn the_service_layer_knows_nothing_of_http() {
    let found = uses_naming("service", &["axum", "utoipa", "hyper", "tower", "crate::http", "super::http"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_http_layer_does_not_name_the_sqlite_backend() {
    let found = uses_naming("http", &["crate::store::sqlite", "rusqlite"]);
    assert!(found.is_empty(), "{found:#?}");
}
