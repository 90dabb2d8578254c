//! Every form the console answers is checked for its session's CSRF token: each handler a
//! console module routes a POST to takes `Posted<T>` (ARCHITECTURE.md, `server/src/http/console`).
//! The sign-in form is the one exception: it has no session yet, and checks its `Origin` itself.

use std::path::Path;

/// The handlers `source` routes POSTs to: `post(name)` and `.post(name)` in its routes.
fn posted_handlers(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices("post(") {
        let rest = &source[at + "post(".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let preceded = source[..at].chars().last().is_some_and(|c| c == '.' || c == ' ' || c == '(');
        if preceded && !name.is_empty() && rest[name.len()..].starts_with(')') {
            names.push(name);
        }
    }
    names
}

/// The parameter list of `async fn name(` in `source`.
fn parameters<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.find(&format!("async fn {name}("))?;
    let rest = &source[start..];
    let end = rest.find(") -> ")?;
    Some(&rest[..end])
}

#[test]
fn every_console_form_handler_takes_posted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/console");
    let mut checked = 0;
    let mut unchecked = Vec::new();
    // The console's files, its folders' included.
    let mut files = Vec::new();
    let mut folders = vec![dir];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|path| (path.file_name().unwrap().to_string_lossy().to_string(), std::fs::read_to_string(path).unwrap()))
        .collect();
    for (file, source) in &sources {
        for handler in posted_handlers(source) {
            // A module's router may name a handler another file of its folder defines.
            let Some(parameters) = sources.iter().find_map(|(_, other)| parameters(other, &handler)) else {
                unchecked.push(format!("{file}: {handler} (no `async fn {handler}(` found)"));
                continue;
            };
            let sign_in = file == "session.rs" && handler == "login";
            if parameters.contains("Posted") || sign_in {
                checked += 1;
            } else {
                unchecked.push(format!("{file}: {handler}"));
            }
        }
    }
    assert!(unchecked.is_empty(), "POST handlers without `Posted<T>`: {unchecked:?}");
    assert!(checked >= 8, "the console's forms were found ({checked})");
}

#[test]
fn the_scan_finds_a_form_without_its_token() {
    let source = "Router::new().route(\"/x\", get(page).post(save)).route(\"/y\", post(drop_it))\n\
                  async fn save(State(state): State<AppState>, Form(form): Form<X>) -> PageResult {}\n\
                  async fn drop_it(posted: Posted<Nothing>) -> PageResult {}";
    assert_eq!(posted_handlers(source), ["save", "drop_it"]);
    assert!(!parameters(source, "save").unwrap().contains("Posted"));
    assert!(parameters(source, "drop_it").unwrap().contains("Posted"));
}
