//! The checked-in JSON Schemas must match the types.

#[test]
fn json_schemas_are_current() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let mut stale = Vec::new();
    for (file, schema) in schemas::json_schemas() {
        let expected = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        match std::fs::read_to_string(folder.join(file)) {
            Ok(found) if found == expected => {}
            _ => stale.push(file),
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON Schemas {stale:?}: run `cargo run -p fieldsync-schemas --bin generate-json-schemas`"
    );
}

#[test]
fn every_schema_file_belongs_to_a_type() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    let known: Vec<&str> = schemas::json_schemas().iter().map(|(f, _)| *f).collect();
    for entry in std::fs::read_dir(folder).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(known.contains(&name.as_str()), "schemas/json/{name} has no type");
    }
}
