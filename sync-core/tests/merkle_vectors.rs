//! Every case of the transparency-dev Merkle test vectors (`../shared/vectors/merkle/`): the
//! happy paths verify, and every mutated proof, index, size or root is refused.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sync_core::merkle::{verify_consistency, verify_inclusion};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/merkle/testdata");

fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
}

fn cases(kind: &str) -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    json_files(&Path::new(VECTORS).join(kind), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| (path.clone(), serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()))
        .collect()
}

fn bytes(value: &Value) -> Vec<u8> {
    STANDARD.decode(value.as_str().unwrap_or("")).expect("base64 in the vectors")
}

fn proof(value: &Value) -> Vec<Vec<u8>> {
    value.as_array().map(|items| items.iter().map(bytes).collect()).unwrap_or_default()
}

/// Checks one family of cases; returns (accepted, refused) counts.
fn check(kind: &str, verify: impl Fn(&Value) -> bool) -> (usize, usize) {
    let cases = cases(kind);
    assert!(cases.len() > 50, "the {kind} vectors are there ({} found)", cases.len());
    let mut failures = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for (path, case) in &cases {
        let want_error = case["wantErr"].as_bool().unwrap();
        let ok = verify(case);
        if ok == want_error {
            failures.push(format!("{}: {}", path.display(), case["desc"]));
        }
        if ok { accepted += 1 } else { refused += 1 }
    }
    assert!(failures.is_empty(), "{} of {} {kind} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
    (accepted, refused)
}

#[test]
fn every_inclusion_vector_is_decided_right() {
    let (accepted, refused) = check("inclusion", |case| {
        verify_inclusion(
            case["leafIdx"].as_u64().unwrap(),
            case["treeSize"].as_u64().unwrap(),
            &bytes(&case["leafHash"]),
            &proof(&case["proof"]),
            &bytes(&case["root"]),
        )
        .is_ok()
    });
    assert!(accepted > 0 && refused > accepted, "{accepted} accepted, {refused} refused");
}

#[test]
fn every_consistency_vector_is_decided_right() {
    let (accepted, refused) = check("consistency", |case| {
        verify_consistency(
            case["size1"].as_u64().unwrap(),
            case["size2"].as_u64().unwrap(),
            &proof(&case["proof"]),
            &bytes(&case["root1"]),
            &bytes(&case["root2"]),
        )
        .is_ok()
    });
    assert!(accepted > 0 && refused > accepted, "{accepted} accepted, {refused} refused");
}

/// The vectors' tree is RFC 6962's eight reference leaves; the proofs built here for it are the
/// vectors' happy-path proofs, byte for byte.
#[test]
fn proofs_built_here_equal_the_vectors_happy_paths() {
    use sync_core::merkle::{Hash, consistency_proof, inclusion_proof, leaf_hash, root};
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let leaves: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
    let mut compared = 0;
    for (path, case) in cases("inclusion") {
        if case["wantErr"].as_bool().unwrap() || !path.ends_with("happy-path.json") {
            continue;
        }
        let size = case["treeSize"].as_u64().unwrap() as usize;
        let index = case["leafIdx"].as_u64().unwrap() as usize;
        assert_eq!(root(&leaves[..size]).to_vec(), bytes(&case["root"]), "{}", path.display());
        let built: Vec<Vec<u8>> = inclusion_proof(&leaves[..size], index).unwrap().iter().map(|h| h.to_vec()).collect();
        assert_eq!(built, proof(&case["proof"]), "{}", path.display());
        compared += 1;
    }
    for (path, case) in cases("consistency") {
        if case["wantErr"].as_bool().unwrap() || !path.ends_with("happy-path.json") {
            continue;
        }
        let (size1, size2) = (case["size1"].as_u64().unwrap() as usize, case["size2"].as_u64().unwrap() as usize);
        assert_eq!(root(&leaves[..size2]).to_vec(), bytes(&case["root2"]), "{}", path.display());
        let built: Vec<Vec<u8>> =
            consistency_proof(&leaves[..size2], size1).unwrap().iter().map(|h| h.to_vec()).collect();
        assert_eq!(built, proof(&case["proof"]), "{}", path.display());
        compared += 1;
    }
    assert!(compared >= 8, "{compared} happy paths compared");
}
