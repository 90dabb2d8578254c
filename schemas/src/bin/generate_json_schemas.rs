//! Writes the JSON Schema of every public wire type into `schemas/json/`.
//!
//! Run `cargo run -p fieldsync-schemas --bin generate-json-schemas` after changing a type;
//! the `json_schemas_are_current` test fails until the files are regenerated.

fn main() -> std::io::Result<()> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    std::fs::create_dir_all(&folder)?;
    for (file, schema) in schemas::json_schemas() {
        let text = serde_json::to_string_pretty(&schema).expect("schemas serialize") + "\n";
        std::fs::write(folder.join(file), text)?;
        println!("wrote schemas/json/{file}");
    }
    Ok(())
}
