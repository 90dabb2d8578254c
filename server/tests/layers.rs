//! The server's layers, read from its sources: `http → service → store`, with the SQLite
//! backend named only by the composition root.
//!
//! Every `.rs` file under `server/src` belongs to a layer by its path; the code before its
//! `#[cfg(test)]` module (comments left out) is searched for the crates and the `crate::` modules
//! it names, in `use` lines and in paths written inline. A name its layer may not use fails the
//! test, with the file, the line and the rule. The layers themselves must form no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of a file, by its path under `server/src`.
fn layer(relative: &Path) -> &'static str {
    let path = relative.to_string_lossy().replace('\\', "/");
    match path.as_str() {
        p if p.starts_with("http/") => "http",
        p if p.starts_with("service/") => "service",
        p if p.starts_with("store/sqlite/") => "store::sqlite",
        p if p.starts_with("store/") => "store",
        "config.rs" => "config",
        // The demo stands beside the composition root: it runs the server and devices together.
        p if p.starts_with("demo/") => "cli",
        "cli.rs" | "main.rs" => "cli",
        "lib.rs" => "lib",
        other => panic!("{other} belongs to no layer: give it one here"),
    }
}

/// The crates that speak HTTP, TLS or OpenAPI: only `http/` (and the composition root) uses them.
const HTTP_CRATES: [&str; 10] =
    ["axum", "utoipa", "hyper", "hyper_util", "http_body", "tower", "tower_http", "governor", "rustls", "tokio_rustls"];

/// The higher layers' modules, as a lower layer might name them (`crate::AppState`, `crate::app`
/// and `crate::run` are the crate root's re-exports of `http`), and the device library, which
/// only the demo beside the composition root runs.
const ABOVE_SERVICE: [&str; 7] =
    ["crate::http", "crate::AppState", "crate::app", "crate::run", "crate::cli", "crate::demo", "field_client"];

/// What a layer may not name: external crates (`axum`) and modules of this crate (`crate::http`).
fn forbidden(layer: &str) -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    match layer {
        "store" => {
            names.extend(HTTP_CRATES);
            names.extend(ABOVE_SERVICE);
            names.extend([
                "rusqlite",
                "tokio",
                "crate::service",
                "crate::now_ms",
                "crate::config",
                "crate::store::sqlite",
            ]);
        }
        "store::sqlite" => {
            names.extend(HTTP_CRATES);
            names.extend(ABOVE_SERVICE);
            names.extend(["crate::service", "crate::now_ms"]);
        }
        "service" => {
            names.extend(HTTP_CRATES);
            names.extend(ABOVE_SERVICE);
            names.extend(["rusqlite", "crate::store::sqlite"]);
        }
        "http" => names.extend(["rusqlite", "crate::store::sqlite", "crate::cli", "crate::demo", "field_client"]),
        "config" => names.extend([
            "crate::http",
            "crate::service",
            "crate::store",
            "crate::cli",
            "crate::demo",
            "field_client",
            "axum",
            "rusqlite",
        ]),
        _ => {}
    }
    names
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of a file's code before its tests, each without its comment; a `use` statement
/// written over several lines is one line, and `crate::{a::X, b}` is written out as
/// `crate::a::X, crate::b` so that each layer it names shows.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    let mut lines = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in text[..end].lines().enumerate() {
        let code = line.split("//").next().unwrap_or("").to_string();
        if let Some((start, mut statement)) = open.take() {
            statement.push(' ');
            statement.push_str(code.trim());
            if code.contains(';') {
                lines.push((start, expand_groups(&statement)));
            } else {
                open = Some((start, statement));
            }
            continue;
        }
        let trimmed = code.trim_start();
        if (trimmed.starts_with("use ") || trimmed.starts_with("pub use ")) && !code.contains(';') {
            open = Some((n + 1, code));
        } else if !code.trim().is_empty() {
            lines.push((n + 1, expand_groups(&code)));
        }
    }
    lines
}

/// `crate::{a::X, b::{Y, Z}}` as `crate::a::X, crate::b::{Y, Z}`: the first level of a group
/// under `crate::` or `super::` written out.
fn expand_groups(line: &str) -> String {
    let mut out = line.to_string();
    for prefix in ["crate::{", "super::{"] {
        let Some(at) = out.find(prefix) else { continue };
        let inner_start = at + prefix.len();
        let (mut depth, mut close) = (1, None);
        for (i, c) in out[inner_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(inner_start + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        let (mut items, mut depth, mut item) = (Vec::new(), 0, String::new());
        for c in out[inner_start..close].chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        let base = &prefix[..prefix.len() - 1];
        let written: Vec<String> =
            items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()).map(|i| format!("{base}{i}")).collect();
        out = format!("{}{}{}", &out[..at], written.join(", "), &out[close + 1..]);
    }
    out
}

/// Whether `line` names `name` (a crate or a `crate::` module path) as a path.
fn names(line: &str, name: &str) -> bool {
    let mut from = 0;
    while let Some(at) = line[from..].find(name) {
        let start = from + at;
        let before = line[..start].chars().next_back();
        let after = &line[start + name.len()..];
        // `::axum::x` names the crate too; `my_axum` and `a::axum` do not.
        let leading_colons = line[..start].ends_with("::")
            && !line[..start - 2].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        let whole_before = leading_colons || !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let used_as_path = after.starts_with("::")
            || after.starts_with(';')
            || after.starts_with(" as ")
            || after.starts_with(',')
            || after.starts_with('}');
        let in_use = line.trim_start().starts_with("use ") || line.trim_start().starts_with("pub use ");
        if whole_before && (used_as_path || (in_use && after.trim().is_empty())) {
            return true;
        }
        from = start + name.len();
    }
    false
}

/// The layer a `crate::` path names, if any.
fn named_layer(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("crate::")?;
    Some(match rest.split("::").next()? {
        "http" => "http",
        "service" => "service",
        "store" if rest.starts_with("store::sqlite") => "store::sqlite",
        "store" => "store",
        "config" => "config",
        "cli" | "demo" => "cli",
        _ => return None,
    })
}

/// The crates the server depends on, by the name code uses (`tower-http` is `tower_http`).
fn dependencies() -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut names = BTreeSet::new();
    let mut in_dependencies = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line.ends_with("dependencies]");
        } else if in_dependencies && let Some((name, _)) = line.split_once('=') {
            // `axum.workspace = true` names `axum`.
            let name = name.trim().split('.').next().unwrap_or("");
            if !name.is_empty() && !name.starts_with('#') {
                names.insert(name.replace('-', "_"));
            }
        }
    }
    names
}

/// The only crates the store's traits and rows may use: the wire types, the rules, and the
/// encodings and value types those rows are made of.
const STORE_CRATES: [&str; 7] = ["schemas", "sync_core", "serde", "serde_json", "thiserror", "ed25519_dalek", "hex"];

#[test]
fn the_store_uses_the_wire_types_and_the_rules_and_no_other_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let crates = dependencies();
    assert!(crates.contains("rusqlite") && crates.contains("axum"), "the manifest was read: {crates:?}");
    let mut broken = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in code_lines(&text) {
            for name in &crates {
                if !STORE_CRATES.contains(&name.as_str()) && names(&line, name) {
                    broken.push(format!(
                        "store/{}:{number}: `{name}`: {}",
                        path.file_name().unwrap().to_string_lossy(),
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "the store names crates it may not:\n{}", broken.join("\n"));
}

#[test]
fn every_layer_names_only_what_it_may() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    assert!(files.len() > 20, "the sources were found");
    let mut broken = Vec::new();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        let own = layer(relative);
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in code_lines(&text) {
            for name in &forbidden(own) {
                if names(&line, name) {
                    broken.push(format!(
                        "{}:{number}: the {own} layer names `{name}`: {}",
                        relative.display(),
                        line.trim()
                    ));
                }
            }
            for (at, _) in line.match_indices("crate::") {
                if let Some(target) = named_layer(&line[at..])
                    && target != own
                {
                    edges.entry(own).or_default().insert(target);
                }
            }
        }
    }
    assert!(broken.is_empty(), "imports that break the layers:\n{}", broken.join("\n"));
    // The composition root and the crate root may name every layer; among the others, no circle.
    edges.remove("cli");
    edges.remove("lib");
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            panic!("the layers form a circle: {} → {node}", path[at..].join(" → "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done);
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_rule_reader_sees_a_forbidden_name_in_use_lines_and_inline_paths() {
    assert!(names("use axum::Router;", "axum"));
    assert!(names("    let x = crate::http::openapi::BEARER;", "crate::http"));
    assert!(names("use crate::store::sqlite::SqliteStore;", "crate::store::sqlite"));
    assert!(names("use utoipa;", "utoipa"));
    assert!(!names("use crate::store::Store;", "crate::store::sqlite"));
    assert!(!names("fn axum_like() {}", "axum"));
    assert!(!names("use my_axum::Router;", "axum"));
    assert_eq!(code_lines("use a; // use axum::x\n#[cfg(test)]\nuse axum::y;"), [(1, "use a; ".to_string())]);
    assert!(names("let r = ::axum::Router::new();", "axum"), "a path with leading colons");
    assert!(!names("let r = a::axum::Router::new();", "axum"), "another crate's module of that name");
    let grouped = code_lines("use crate::{\n    http::AppState,\n    store::Store,\n};\nfn f() {}");
    assert_eq!(grouped[0], (1, "use crate::http::AppState, crate::store::Store;".to_string()));
    assert!(names(&grouped[0].1, "crate::http"), "a grouped import over several lines");
    assert_eq!(expand_groups("use crate::{a::{B, C}, d};"), "use crate::a::{B, C}, crate::d;");
    assert_eq!(named_layer("crate::store::sqlite::SqliteStore"), Some("store::sqlite"));
    assert_eq!(named_layer("crate::service::auth::Caller"), Some("service"));
}
