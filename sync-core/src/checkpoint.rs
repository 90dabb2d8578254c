//! Signed checkpoints of the transparency log: the C2SP tlog-checkpoint body
//! (<https://c2sp.org/tlog-checkpoint>) inside a C2SP signed note
//! (<https://c2sp.org/signed-note>) signed with Ed25519.
//!
//! A checkpoint names the log (its origin), the number of leaves and the root of the
//! [`merkle`](crate::merkle) tree over them. The server signs its body as a note; a reviewer
//! who holds the server's verifier key opens the note offline ([`open_note`]), then reads the
//! body ([`Checkpoint::parse_body`]) and checks proofs against its root. Keys come in as
//! parameters: this module draws no randomness and does no IO.
//!
//! Written here rather than taken from a crate for the same reason as `merkle`: the formats
//! are short, and a verifier is only as strict as its parser. Where the specifications leave
//! a choice, this module takes the strict one:
//!
//! - Every signature by a known key (name and key ID both match) is verified with
//!   [`verify_strict`](crate::signature::verify_strict), repeated ones included, and one that
//!   fails rejects the whole note (the spec's SHOULD). `golang.org/x/mod/sumdb/note` skips
//!   repeats of a verified key unchecked; this module does not, so no byte of a line naming a
//!   known key goes unchecked.
//! - Signatures by unknown keys, even sharing a name or a key ID (not both) with a known one,
//!   are ignored (the spec's MUST), but their lines must still be well formed.
//! - Base64 is the standard alphabet with canonical padding and zero trailing bits, so each
//!   byte string has exactly one accepted encoding.
//! - At most [`MAX_SIGNATURES`] signature lines (the spec requires accepting at least 16;
//!   100 is the Go reference's limit), counted before any signature is checked.
//! - A checkpoint's extension lines are accepted and ignored, as the spec defines them
//!   (optional, opaque, non-empty): [`Checkpoint`] holds origin, size and root only. An empty
//!   extension line is refused.
//!
//! The Go reference's example key, note and signatures are this module's known answers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type byte of Ed25519 in the signed-note spec, hashed into the key ID and
/// written before the public key in a verifier key.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// The most signature lines [`open_note`] reads; a note with more is refused before any
/// signature is checked, so a hostile note cannot make a reviewer verify without end.
pub const MAX_SIGNATURES: usize = 100;

/// The start of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A transparency log checkpoint: the log's tree head at one size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// Which log issued the checkpoint, so that a checkpoint of one log cannot pass for another's.
    pub origin: String,
    /// How many leaves the tree holds.
    pub size: u64,
    /// The RFC 6962 root of the tree over those leaves.
    pub root: [u8; 32],
}

/// Why a text is not a checkpoint body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("byte {offset} is an ASCII control character other than newline")]
    ControlCharacter { offset: usize },
    #[error("the body does not end in a newline")]
    MissingFinalNewline,
    #[error("the body has {found} lines, a checkpoint needs at least 3")]
    TooFewLines { found: usize },
    #[error("the origin line is empty")]
    EmptyOrigin,
    #[error("tree size {size:?} is not a decimal number without leading zeros that fits in 64 bits")]
    InvalidSize { size: String },
    #[error("root hash {root:?} is not standard padded base64 of 32 bytes")]
    InvalidRoot { root: String },
    #[error("extension line {line} is empty")]
    EmptyExtensionLine { line: usize },
}

impl Checkpoint {
    /// The note text of the checkpoint: origin, size and base64 root, each ending in a newline.
    ///
    /// The origin is written as it is: one that is empty or holds a newline or a control
    /// character gives a body that [`Checkpoint::parse_body`] refuses and [`sign_note`]
    /// refuses to sign (or, for an embedded newline, a different checkpoint).
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root))
    }

    /// Reads a checkpoint body strictly; extension lines after the root are accepted and
    /// ignored, as the spec defines them, but must not be empty.
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        if let Some(offset) = control_character(body) {
            return Err(CheckpointError::ControlCharacter { offset });
        }
        let Some(lines) = body.strip_suffix('\n') else {
            return Err(CheckpointError::MissingFinalNewline);
        };
        let lines: Vec<&str> = lines.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { found: lines.len() });
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_size(size).ok_or_else(|| CheckpointError::InvalidSize { size: (*size).to_owned() })?;
        let root = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| CheckpointError::InvalidRoot { root: (*root).to_owned() })?;
        if let Some(index) = extensions.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::EmptyExtensionLine { line: 4 + index });
        }
        Ok(Checkpoint { origin: (*origin).to_owned(), size, root })
    }
}

/// A tree size: ASCII digits only (`u64::from_str` would also take a `+`), no leading zero
/// unless the size is zero, within 64 bits.
fn parse_size(size: &str) -> Option<u64> {
    let digits_only = !size.is_empty() && size.bytes().all(|byte| byte.is_ascii_digit());
    if !digits_only || (size.len() > 1 && size.starts_with('0')) {
        return None;
    }
    size.parse().ok()
}

/// The offset of the first ASCII control character other than newline. Bytes of multi-byte
/// UTF-8 sequences are all 0x80 or above, so scanning bytes finds only real characters.
fn control_character(text: &str) -> Option<usize> {
    text.bytes().position(|byte| byte < 0x20 && byte != b'\n')
}

/// Why a key name or a verifier key is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key name {name:?} is empty or holds a space, a plus sign or a control character")]
    InvalidName { name: String },
    #[error("verifier key {vkey:?} is not <name>+<key id>+<base64 key>")]
    MalformedVerifierKey { vkey: String },
    #[error("key ID {key_id:?} is not 8 lowercase hexadecimal digits")]
    KeyIdFormat { key_id: String },
    #[error("key {key:?} is not standard padded base64")]
    KeyEncoding { key: String },
    #[error("signature type 0x{signature_type:02x} is not Ed25519 (0x01)")]
    UnsupportedSignatureType { signature_type: u8 },
    #[error("the Ed25519 public key is {length} bytes, not 32")]
    KeyLength { length: usize },
    #[error("the public key is not a usable Ed25519 key (not a point, or of small order)")]
    UnusableKey,
    #[error("key ID {stated:08x} is not the key's ID {computed:08x}")]
    KeyIdMismatch { stated: u32, computed: u32 },
}

/// What is wrong with one signature line of a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("it does not start with an em dash and a space")]
    MissingPrefix,
    #[error("no space separates the key name from the signature")]
    MissingSignature,
    #[error("the key name is empty or holds a space or a plus sign")]
    InvalidKeyName,
    #[error("the signature is not standard padded base64")]
    SignatureEncoding,
    #[error("the signature decodes to fewer than 5 bytes (a key ID and at least one byte)")]
    SignatureTooShort,
}

/// Why a note cannot be signed or opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the text to sign does not end in a newline")]
    TextWithoutFinalNewline,
    #[error("key name {name:?} is empty or holds a space, a plus sign or a control character")]
    InvalidKeyName { name: String },
    #[error("byte {offset} is an ASCII control character other than newline")]
    ControlCharacter { offset: usize },
    #[error("no blank line separates the text from the signatures")]
    MissingBlankLine,
    #[error("no signature line follows the blank line")]
    NoSignatureLines,
    #[error("the last signature line does not end in a newline")]
    MissingFinalNewline,
    #[error("the note has more than {limit} signature lines")]
    TooManySignatures { limit: usize },
    #[error("line {line} is not a signature line: {problem}")]
    MalformedSignatureLine { line: usize, problem: LineProblem },
    #[error("the signature by known key {name}+{key_id:08x} does not verify")]
    InvalidSignature { name: String, key_id: u32 },
    #[error("two different verifier keys are named {name}+{key_id:08x}")]
    AmbiguousVerifier { name: String, key_id: u32 },
    #[error("no signature by a known key")]
    NoVerifiedSignature,
}

/// A key name as the signed-note spec allows it: non-empty, no Unicode space, no plus sign;
/// control characters are refused too, as no note may hold them.
fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_ascii_control())
}

/// The key ID of an Ed25519 key named `name`:
/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, read big-endian.
pub fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_SIGNATURE_TYPE]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The verifier key a reviewer is given: `<name>+<key id in hex>+<base64(0x01 || public key)>`.
pub fn verifier_key(name: &str, key: &VerifyingKey) -> Result<String, KeyError> {
    if !valid_key_name(name) {
        return Err(KeyError::InvalidName { name: name.to_owned() });
    }
    let mut encoded = Vec::with_capacity(33);
    encoded.push(ED25519_SIGNATURE_TYPE);
    encoded.extend_from_slice(key.as_bytes());
    Ok(format!("{name}+{:08x}+{}", key_id(name, key), STANDARD.encode(encoded)))
}

/// Reads a verifier key made by [`verifier_key`] (or by `golang.org/x/mod/sumdb/note`) into its
/// name and Ed25519 key. The key ID must be the key's own, in lowercase hex as both write it.
pub fn parse_verifier_key(vkey: &str) -> Result<(String, VerifyingKey), KeyError> {
    // The key name holds no plus sign, but base64 may: only the first two separate fields.
    let mut fields = vkey.splitn(3, '+');
    let (Some(name), Some(stated), Some(encoded)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(KeyError::MalformedVerifierKey { vkey: vkey.to_owned() });
    };
    if !valid_key_name(name) {
        return Err(KeyError::InvalidName { name: name.to_owned() });
    }
    let lowercase_hex = stated.len() == 8 && stated.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    let stated = lowercase_hex
        .then(|| u32::from_str_radix(stated, 16).ok())
        .flatten()
        .ok_or_else(|| KeyError::KeyIdFormat { key_id: stated.to_owned() })?;
    let decoded = STANDARD.decode(encoded).map_err(|_| KeyError::KeyEncoding { key: encoded.to_owned() })?;
    let Some((&signature_type, key)) = decoded.split_first() else {
        return Err(KeyError::MalformedVerifierKey { vkey: vkey.to_owned() });
    };
    if signature_type != ED25519_SIGNATURE_TYPE {
        return Err(KeyError::UnsupportedSignatureType { signature_type });
    }
    let key = <[u8; 32]>::try_from(key).map_err(|_| KeyError::KeyLength { length: key.len() })?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| KeyError::UnusableKey)?;
    if key.is_weak() {
        return Err(KeyError::UnusableKey);
    }
    let computed = key_id(name, &key);
    if computed != stated {
        return Err(KeyError::KeyIdMismatch { stated, computed });
    }
    Ok((name.to_owned(), key))
}

/// Signs `text` as a note with one signature by the key `name`: the text, a blank line, and
/// `— <name> <base64(key ID || Ed25519 signature of the text)>`.
///
/// Refuses what no verifier could open: a text that does not end in a newline or holds a
/// control character, or a key name the spec does not allow.
pub fn sign_note(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    if !valid_key_name(name) {
        return Err(NoteError::InvalidKeyName { name: name.to_owned() });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextWithoutFinalNewline);
    }
    if let Some(offset) = control_character(text) {
        return Err(NoteError::ControlCharacter { offset });
    }
    let mut signature = Vec::with_capacity(4 + 64);
    signature.extend_from_slice(&key_id(name, &key.verifying_key()).to_be_bytes());
    signature.extend_from_slice(&key.sign(text.as_bytes()).to_bytes());
    Ok(format!("{text}\n{SIGNATURE_PREFIX}{name} {}\n", STANDARD.encode(signature)))
}

/// One signature line read: the key name, the key ID and the signature bytes after it.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), LineProblem> {
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(LineProblem::MissingPrefix)?;
    let (name, encoded) = rest.split_once(' ').ok_or(LineProblem::MissingSignature)?;
    if !valid_key_name(name) {
        return Err(LineProblem::InvalidKeyName);
    }
    let mut signature = STANDARD.decode(encoded).map_err(|_| LineProblem::SignatureEncoding)?;
    if signature.len() < 5 {
        return Err(LineProblem::SignatureTooShort);
    }
    let key_id = u32::from_be_bytes([signature[0], signature[1], signature[2], signature[3]]);
    signature.drain(..4);
    Ok((name, key_id, signature))
}

/// Opens a signed note: checks its form, verifies every signature by a known key, and returns
/// the text (with its final newline) and the names of the keys that signed it, each once, in
/// the order their first signature appears.
///
/// A known key is an entry of `verifiers`, matched on both its name and its key ID.
/// Signatures by other keys are ignored; the note is refused if none by a known key is there,
/// or if one by a known key does not verify.
pub fn open_note<S: AsRef<str>>(
    note: &str,
    verifiers: &[(S, VerifyingKey)],
) -> Result<(String, Vec<String>), NoteError> {
    let known: Vec<(&str, u32, &VerifyingKey)> =
        verifiers.iter().map(|(name, key)| (name.as_ref(), key_id(name.as_ref(), key), key)).collect();
    for (index, (name, id, key)) in known.iter().enumerate() {
        if known[..index]
            .iter()
            .any(|(other_name, other_id, other_key)| other_name == name && other_id == id && other_key != key)
        {
            return Err(NoteError::AmbiguousVerifier { name: (*name).to_owned(), key_id: *id });
        }
    }

    if let Some(offset) = control_character(note) {
        return Err(NoteError::ControlCharacter { offset });
    }
    // The text may hold empty lines: the last one in the note separates it from the signatures.
    let Some(split) = note.rfind("\n\n") else {
        return Err(NoteError::MissingBlankLine);
    };
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(NoteError::NoSignatureLines);
    }
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(NoteError::MissingFinalNewline);
    };
    let lines: Vec<&str> = signatures.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures { limit: MAX_SIGNATURES });
    }

    // Line numbers in errors count from the note's first line: the text, the blank line, then these.
    let first_line = text.matches('\n').count() + 2;
    let mut verified_by: Vec<String> = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        let (name, id, signature) = parse_signature_line(line)
            .map_err(|problem| NoteError::MalformedSignatureLine { line: first_line + index, problem })?;
        let Some((_, _, key)) = known.iter().find(|(known_name, known_id, _)| *known_name == name && *known_id == id)
        else {
            continue;
        };
        if !crate::signature::verify_strict(key.as_bytes(), text.as_bytes(), &signature) {
            return Err(NoteError::InvalidSignature { name: name.to_owned(), key_id: id });
        }
        if !verified_by.iter().any(|verified| verified == name) {
            verified_by.push(name.to_owned());
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoVerifiedSignature);
    }
    Ok((text.to_owned(), verified_by))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle;

    // The example of golang.org/x/mod/sumdb/note (its package documentation and note_test.go):
    // Peter Neumann's signer key (0x01 || Ed25519 seed), his verifier key, the note text and
    // his signature line; and EnochRoot's verifier key and signature line over the same text.
    const PETER_SIGNER_KEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VERIFIER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIGNATURE_LINE: &str =
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_VERIFIER_KEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const ENOCH_SIGNATURE_LINE: &str =
        "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    const LOG_NAME: &str = "fieldsync.example/log";
    const WITNESS_NAME: &str = "witness.example/w1";

    fn peter_note() -> String {
        format!("{PETER_TEXT}\n{PETER_SIGNATURE_LINE}")
    }

    fn peter_signing_key() -> SigningKey {
        // PRIVATE+KEY+<name>+<key id>+<base64>, and base64 may itself hold a plus sign.
        let encoded = PETER_SIGNER_KEY.splitn(5, '+').nth(4).unwrap();
        let decoded = STANDARD.decode(encoded).unwrap();
        assert_eq!(decoded[0], ED25519_SIGNATURE_TYPE);
        SigningKey::from_bytes(&decoded[1..].try_into().unwrap())
    }

    fn verifier(vkey: &str) -> (String, VerifyingKey) {
        parse_verifier_key(vkey).unwrap()
    }

    fn log_key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn witness_key() -> SigningKey {
        SigningKey::from_bytes(&[2; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint { origin: LOG_NAME.into(), size: 1234, root: merkle::leaf_hash(b"entry") }
    }

    /// The signature line alone of `text` signed by `key` as `name`.
    fn signature_line(text: &str, name: &str, key: &SigningKey) -> String {
        sign_note(text, name, key).unwrap()[text.len() + 1..].to_owned()
    }

    #[test]
    fn key_id_and_verifier_key_match_the_go_reference_example() {
        let signing_key = peter_signing_key();
        let (name, key) = verifier(PETER_VERIFIER_KEY);
        assert_eq!(name, "PeterNeumann");
        assert_eq!(key, signing_key.verifying_key());
        assert_eq!(key_id("PeterNeumann", &key), 0xc74f20a3);
        assert_eq!(verifier_key("PeterNeumann", &key).unwrap(), PETER_VERIFIER_KEY);
        let (name, key) = verifier(ENOCH_VERIFIER_KEY);
        assert_eq!(key_id(&name, &key), 0xaf0cfe78);
        assert_eq!(verifier_key(&name, &key).unwrap(), ENOCH_VERIFIER_KEY);
    }

    #[test]
    fn signing_reproduces_the_go_reference_note_byte_for_byte() {
        assert_eq!(sign_note(PETER_TEXT, "PeterNeumann", &peter_signing_key()).unwrap(), peter_note());
    }

    #[test]
    fn go_reference_notes_open_with_known_keys_and_ignore_unknown_ones() {
        let peter = verifier(PETER_VERIFIER_KEY);
        let enoch = verifier(ENOCH_VERIFIER_KEY);
        let both_signed = format!("{PETER_TEXT}\n{PETER_SIGNATURE_LINE}{ENOCH_SIGNATURE_LINE}");
        let check = |verifiers: &[(String, VerifyingKey)], expected: Result<Vec<&str>, NoteError>| {
            let opened = open_note(&both_signed, verifiers);
            let expected = expected.map(|names| (PETER_TEXT.to_owned(), names.into_iter().map(String::from).collect()));
            assert_eq!(opened, expected);
        };
        check(std::slice::from_ref(&peter), Ok(vec!["PeterNeumann"]));
        check(std::slice::from_ref(&enoch), Ok(vec!["EnochRoot"]));
        check(&[enoch.clone(), peter.clone()], Ok(vec!["PeterNeumann", "EnochRoot"]));
        check(&[], Err(NoteError::NoVerifiedSignature));
        assert_eq!(open_note(&peter_note(), &[peter]), Ok((PETER_TEXT.to_owned(), vec!["PeterNeumann".to_owned()])));
    }

    #[test]
    fn spec_examples_parse_but_open_only_with_a_known_key() {
        // The examples of c2sp.org/signed-note (with an empty line inside the text) and
        // c2sp.org/tlog-checkpoint: their keys are not published, so they open to "no known key".
        let poem = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n\
                    — quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
        let checkpoint = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\
                          — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let peter = [verifier(PETER_VERIFIER_KEY)];
        assert_eq!(open_note(poem, &peter), Err(NoteError::NoVerifiedSignature));
        assert_eq!(open_note(checkpoint, &peter), Err(NoteError::NoVerifiedSignature));
    }

    #[test]
    fn signed_checkpoint_round_trips_through_sign_and_open() {
        let log = log_key();
        let body = checkpoint().body();
        let note = sign_note(&body, LOG_NAME, &log).unwrap();
        let vkey = verifier_key(LOG_NAME, &log.verifying_key()).unwrap();
        let (text, signers) = open_note(&note, &[verifier(&vkey)]).unwrap();
        assert_eq!(text, body);
        assert_eq!(signers, [LOG_NAME]);
        assert_eq!(Checkpoint::parse_body(&text), Ok(checkpoint()));
        // A witness's cosignature added after the log's is ignored until the reviewer knows the witness.
        let cosigned = format!("{note}{}", signature_line(&body, WITNESS_NAME, &witness_key()));
        let witness = (WITNESS_NAME.to_owned(), witness_key().verifying_key());
        assert_eq!(open_note(&cosigned, &[verifier(&vkey)]).unwrap().1, [LOG_NAME]);
        assert_eq!(open_note(&cosigned, std::slice::from_ref(&witness)).unwrap().1, [WITNESS_NAME]);
        assert_eq!(open_note(&cosigned, &[witness, verifier(&vkey)]).unwrap().1, [LOG_NAME, WITNESS_NAME]);
    }

    /// Opens `note` with `verifiers` and compares with the expected signer names or error.
    fn check_open(note: &str, verifiers: &[(String, VerifyingKey)], expected: Result<&[&str], NoteError>) {
        let opened = open_note(note, verifiers).map(|(_, names)| names);
        let expected = expected.map(|names| names.iter().map(|name| name.to_string()).collect::<Vec<_>>());
        assert_eq!(opened, expected, "note {note:?}");
    }

    #[test]
    fn malformed_notes_are_refused() {
        use LineProblem::*;
        let (text, sig) = (PETER_TEXT, PETER_SIGNATURE_LINE);
        let peter = [verifier(PETER_VERIFIER_KEY)];
        let blob = sig.split(' ').nth(2).unwrap().trim_end();
        // The text has two lines and the blank line is the third, so signature lines start at 4.
        let line = |line, problem| Err(NoteError::MalformedSignatureLine { line, problem });
        let invalid = Err(NoteError::InvalidSignature { name: "PeterNeumann".into(), key_id: 0xc74f20a3 });
        let accepted: Result<&[&str], NoteError> = Ok(&["PeterNeumann"]);
        let cases: Vec<(String, Result<&[&str], NoteError>)> = vec![
            // The malformed messages of the Go reference's TestOpen ("\xff" + text is not a &str).
            (text.into(), Err(NoteError::MissingBlankLine)),
            (format!("{text}\n"), Err(NoteError::NoSignatureLines)),
            (format!("{text}\n{}", &sig[..sig.len() - 1]), Err(NoteError::MissingFinalNewline)),
            (format!("\x01{text}\n{sig}"), Err(NoteError::ControlCharacter { offset: 0 })),
            // The name ends at the first space: "Bad", then "Name <base64>" is not base64.
            (format!("{text}\n— Bad Name {blob}\n"), line(4, SignatureEncoding)),
            (format!("{text}\n{sig}Unexpected line.\n"), line(5, MissingPrefix)),
            (format!("{text}\n{}ABCD{}", &sig[..60], &sig[60..]), invalid.clone()),
            (format!("{text}\n{}", sig.repeat(MAX_SIGNATURES + 1)), Err(NoteError::TooManySignatures { limit: 100 })),
            // The limit is 100 lines; the spec requires accepting at least 16.
            (format!("{text}\n{}", sig.repeat(MAX_SIGNATURES)), accepted.clone()),
            // Layout.
            (format!("{}\n{sig}", text.trim_end()), Err(NoteError::MissingBlankLine)),
            (format!("{text}{sig}"), Err(NoteError::MissingBlankLine)),
            // The last empty line separates: one more belongs to the text, which is then not the signed one.
            (format!("{text}\n\n{sig}"), invalid.clone()),
            (format!("{text}\n{sig}\n"), Err(NoteError::NoSignatureLines)),
            (
                format!("{text}\n{}\r\n", sig.trim_end()),
                Err(NoteError::ControlCharacter { offset: text.len() + sig.len() }),
            ),
            (format!("{text}\t\n{sig}"), Err(NoteError::ControlCharacter { offset: text.len() })),
            // Signature lines.
            (format!("{text}\n- PeterNeumann {blob}\n"), line(4, MissingPrefix)),
            (format!("{text}\n—PeterNeumann {blob}\n"), line(4, MissingPrefix)),
            (format!("{text}\n {sig}"), line(4, MissingPrefix)),
            (format!("{text}\n— PeterNeumann\n"), line(4, MissingSignature)),
            (format!("{text}\n—  {blob}\n"), line(4, InvalidKeyName)),
            (format!("{text}\n— Peter+Neumann {blob}\n"), line(4, InvalidKeyName)),
            (format!("{text}\n— Peter\u{a0}Neumann {blob}\n"), line(4, InvalidKeyName)),
            (format!("{text}\n— PeterNeumann  {blob}\n"), line(4, SignatureEncoding)),
            (format!("{text}\n— PeterNeumann {blob} \n"), line(4, SignatureEncoding)),
            (format!("{text}\n— PeterNeumann {}\n", blob.trim_end_matches('=')), line(4, SignatureEncoding)),
            (format!("{text}\n— PeterNeumann {}\n", blob.replace('/', "_")), line(4, SignatureEncoding)),
            // Five zero bytes, written canonically and with nonzero trailing bits; four bytes.
            (format!("{text}\n{sig}— Other AAAAAAA=\n"), accepted.clone()),
            (format!("{text}\n{sig}— Other AAAAAAB=\n"), line(5, SignatureEncoding)),
            (format!("{text}\n{sig}— Other AAAAAA==\n"), line(5, SignatureTooShort)),
            // A malformed line is refused even after the known key's good signature.
            (format!("{text}\n{sig}{sig}Trailer\n"), line(6, MissingPrefix)),
            // A known key's signature of the wrong length, or of another text.
            (format!("{text}\n— PeterNeumann {}\n", &blob[..blob.len() - 4]), invalid.clone()),
            (format!("{}\n{sig}", text.replace("cryptography", "cryptographY")), invalid.clone()),
        ];
        for (note, expected) in cases {
            check_open(&note, &peter, expected);
        }
    }

    #[test]
    fn every_signature_by_a_known_key_must_verify_even_a_repeated_one() {
        let peter = [verifier(PETER_VERIFIER_KEY)];
        let sig = PETER_SIGNATURE_LINE;
        // The Go reference drops a repeat of a verified key's signature unchecked; this module checks it.
        let corrupted = format!("{}ABCD{}", &sig[..60], &sig[60..]);
        let invalid = Err(NoteError::InvalidSignature { name: "PeterNeumann".into(), key_id: 0xc74f20a3 });
        check_open(&format!("{PETER_TEXT}\n{sig}{corrupted}"), &peter, invalid.clone());
        check_open(&format!("{PETER_TEXT}\n{corrupted}{sig}"), &peter, invalid);
        check_open(&format!("{PETER_TEXT}\n{sig}{sig}"), &peter, Ok(&["PeterNeumann"]));
        // An unknown key's repeated or corrupted signatures are ignored, as in the Go reference.
        let enoch = ENOCH_SIGNATURE_LINE;
        let enoch_corrupted = format!("{}ABCD{}", &enoch[..60], &enoch[60..]);
        let note = format!("{PETER_TEXT}\n{sig}{sig}{enoch}{enoch}{enoch_corrupted}");
        check_open(&note, &peter, Ok(&["PeterNeumann"]));
    }

    #[test]
    fn signatures_sharing_only_a_name_or_only_a_key_id_with_a_known_key_are_ignored() {
        let log = log_key();
        let body = checkpoint().body();
        let known = [(LOG_NAME.to_owned(), log.verifying_key())];
        // Another key under the log's name (a rotated key, say): same name, another key ID.
        let same_name = signature_line(&body, LOG_NAME, &witness_key());
        check_open(&format!("{body}\n{same_name}"), &known, Err(NoteError::NoVerifiedSignature));
        // The log's key ID under another name: a garbage signature that no one may check.
        let log_id = key_id(LOG_NAME, &log.verifying_key()).to_be_bytes();
        let same_id = format!("— other.example/log {}\n", STANDARD.encode([&log_id[..], &[0; 64]].concat()));
        check_open(&format!("{body}\n{same_id}"), &known, Err(NoteError::NoVerifiedSignature));
        let signed = sign_note(&body, LOG_NAME, &log).unwrap();
        check_open(&format!("{signed}{same_name}{same_id}"), &known, Ok(&[LOG_NAME]));
    }

    #[test]
    fn ambiguous_verifier_lists_are_refused() {
        let log = log_key().verifying_key();
        let note = sign_note(&checkpoint().body(), LOG_NAME, &log_key()).unwrap();
        let twice = [(LOG_NAME.to_owned(), log), (LOG_NAME.to_owned(), log)];
        check_open(&note, &twice, Ok(&[LOG_NAME]));
        // Two keys whose name and key ID collide cannot be told apart: the list is refused. The
        // seeds were found by a birthday search over SHA-256("collision" || n) and are checked here.
        let colliding = |n: u32| {
            let seed: [u8; 32] = Sha256::digest([&b"collision"[..], &n.to_be_bytes()].concat()).into();
            (LOG_NAME.to_owned(), SigningKey::from_bytes(&seed).verifying_key())
        };
        let (first, second) = (colliding(21679), colliding(45677));
        assert_ne!(first.1, second.1);
        assert_eq!(key_id(LOG_NAME, &first.1), 0x6dfbe44b);
        assert_eq!(key_id(LOG_NAME, &second.1), 0x6dfbe44b);
        let ambiguous = Err(NoteError::AmbiguousVerifier { name: LOG_NAME.into(), key_id: 0x6dfbe44b });
        check_open(&note, &[(LOG_NAME.to_owned(), log), first, second], ambiguous);
    }

    #[test]
    fn checkpoint_body_round_trips() {
        // The body of c2sp.org/tlog-checkpoint's example.
        let example = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let parsed = Checkpoint::parse_body(example).unwrap();
        assert_eq!((parsed.origin.as_str(), parsed.size), ("example.com/behind-the-sofa", 20852163));
        assert_eq!(parsed.body(), example);
        let empty = Checkpoint { origin: "日志.example/🌲".into(), size: 0, root: merkle::empty_root() };
        let full = Checkpoint { origin: "o".into(), size: u64::MAX, root: [0xff; 32] };
        for checkpoint in [checkpoint(), empty, full] {
            assert_eq!(Checkpoint::parse_body(&checkpoint.body()), Ok(checkpoint));
        }
        let root = STANDARD.encode(merkle::leaf_hash(b"entry"));
        assert_eq!(checkpoint().body(), format!("{LOG_NAME}\n1234\n{root}\n"));
    }

    #[test]
    fn checkpoint_body_accepts_and_ignores_extension_lines() {
        let body = checkpoint().body();
        assert_eq!(Checkpoint::parse_body(&format!("{body}extension\n")), Ok(checkpoint()));
        assert_eq!(Checkpoint::parse_body(&format!("{body}one\ntwo words\n")), Ok(checkpoint()));
    }

    #[test]
    fn checkpoint_body_parse_refuses_malformed_bodies() {
        use CheckpointError::*;
        let root = STANDARD.encode([7; 32]);
        assert_eq!(root, "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=");
        let size = |size: &str| InvalidSize { size: size.into() };
        let bad_root = |root: &str| InvalidRoot { root: root.into() };
        let unpadded = root.trim_end_matches('=');
        let short = STANDARD.encode([7; 31]);
        let long = STANDARD.encode([7; 33]);
        // The URL-safe alphabet, and nonzero trailing bits ('d' where the canonical form has 'c').
        let url_safe = "_____________________________________________w=";
        let trailing_bits = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd=";
        let cases: Vec<(String, CheckpointError)> = vec![
            (String::new(), MissingFinalNewline),
            (format!("o\n1\n{root}"), MissingFinalNewline),
            ("\n".into(), TooFewLines { found: 1 }),
            ("o\n1\n".into(), TooFewLines { found: 2 }),
            (format!("\n1\n{root}\n"), EmptyOrigin),
            (format!("o\r\n1\r\n{root}\r\n"), ControlCharacter { offset: 1 }),
            (format!("o\t\n1\n{root}\n"), ControlCharacter { offset: 1 }),
            (format!("o\n\n{root}\n"), size("")),
            (format!("o\n01\n{root}\n"), size("01")),
            (format!("o\n00\n{root}\n"), size("00")),
            (format!("o\n+1\n{root}\n"), size("+1")),
            (format!("o\n-1\n{root}\n"), size("-1")),
            (format!("o\n 1\n{root}\n"), size(" 1")),
            (format!("o\n1 \n{root}\n"), size("1 ")),
            (format!("o\n0x10\n{root}\n"), size("0x10")),
            (format!("o\n١\n{root}\n"), size("١")),
            (format!("o\n18446744073709551616\n{root}\n"), size("18446744073709551616")),
            ("o\n1\n\n".into(), bad_root("")),
            ("o\n1\nnot base64\n".into(), bad_root("not base64")),
            (format!("o\n1\n{unpadded}\n"), bad_root(unpadded)),
            (format!("o\n1\n{root} \n"), bad_root(&format!("{root} "))),
            (format!("o\n1\n{short}\n"), bad_root(&short)),
            (format!("o\n1\n{long}\n"), bad_root(&long)),
            (format!("o\n1\n{url_safe}\n"), bad_root(url_safe)),
            (format!("o\n1\n{trailing_bits}\n"), bad_root(trailing_bits)),
            (format!("o\n1\n{root}\n\n"), EmptyExtensionLine { line: 4 }),
            (format!("o\n1\n{root}\nextension\n\n"), EmptyExtensionLine { line: 5 }),
        ];
        for (body, expected) in cases {
            assert_eq!(Checkpoint::parse_body(&body), Err(expected), "body {body:?}");
        }
    }

    #[test]
    fn verifier_keys_parse_strictly() {
        use KeyError::*;
        // As the Go reference's TestNewVerifier: every proper part of the key, and the key with any
        // one byte incremented, is refused; so are its two crafted keys with adjusted key IDs.
        let bytes = PETER_VERIFIER_KEY.as_bytes();
        for start in 0..bytes.len() {
            for end in start + 1..=bytes.len() {
                if (start, end) != (0, bytes.len()) {
                    assert!(parse_verifier_key(&PETER_VERIFIER_KEY[start..end]).is_err(), "{start}..{end}");
                }
            }
        }
        for index in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[index] += 1;
            assert!(parse_verifier_key(std::str::from_utf8(&changed).unwrap()).is_err(), "byte {index}");
        }
        let wrong_length = "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==";
        let unknown_type = "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let encoded = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let url_safe = encoded.replace('/', "_");
        let peter_key = verifier(PETER_VERIFIER_KEY).1;
        let cases: Vec<(String, KeyError)> = vec![
            // Go's decoder takes "BADKEY==" despite its nonzero trailing bits; this one does not.
            (wrong_length.into(), KeyEncoding { key: wrong_length[22..].into() }),
            (format!("PeterNeumann+c74f20a3+{encoded}AAAA"), KeyLength { length: 35 }),
            (unknown_type.into(), UnsupportedSignatureType { signature_type: 0x65 }),
            ("PeterNeumann+c74f20a3".into(), MalformedVerifierKey { vkey: "PeterNeumann+c74f20a3".into() }),
            ("PeterNeumann+c74f20a3+".into(), MalformedVerifierKey { vkey: "PeterNeumann+c74f20a3+".into() }),
            (format!("+c74f20a3+{encoded}"), InvalidName { name: String::new() }),
            (format!("Peter Neumann+c74f20a3+{encoded}"), InvalidName { name: "Peter Neumann".into() }),
            (format!("PeterNeumann+C74F20A3+{encoded}"), KeyIdFormat { key_id: "C74F20A3".into() }),
            (format!("PeterNeumann+c74f20a+{encoded}"), KeyIdFormat { key_id: "c74f20a".into() }),
            (format!("PeterNeumann+c74f20a3+{url_safe}"), KeyEncoding { key: url_safe.clone() }),
            (format!("PeterNeumann+00000000+{encoded}"), KeyIdMismatch { stated: 0, computed: 0xc74f20a3 }),
            (
                format!("PeterNeuman+c74f20a3+{encoded}"),
                KeyIdMismatch { stated: 0xc74f20a3, computed: key_id("PeterNeuman", &peter_key) },
            ),
        ];
        for (vkey, expected) in cases {
            assert_eq!(parse_verifier_key(&vkey), Err(expected), "vkey {vkey:?}");
        }
        // A small-order point (the identity, y = 1) is refused: no strict signature verifies under it.
        let mut identity = [0u8; 33];
        identity[0] = ED25519_SIGNATURE_TYPE;
        identity[1] = 1;
        let weak = format!("PeterNeumann+00000000+{}", STANDARD.encode(identity));
        assert_eq!(parse_verifier_key(&weak), Err(UnusableKey));
    }

    #[test]
    fn sign_note_refuses_texts_and_names_that_cannot_be_opened() {
        let key = log_key();
        let name = |name: &str| Err(NoteError::InvalidKeyName { name: name.into() });
        let cases: Vec<(&str, &str, Result<(), NoteError>)> = vec![
            ("text\n", "", name("")),
            ("text\n", "a b", name("a b")),
            ("text\n", "a+b", name("a+b")),
            ("text\n", "a\u{2003}b", name("a\u{2003}b")),
            ("text\n", "a\x01b", name("a\x01b")),
            ("", LOG_NAME, Err(NoteError::TextWithoutFinalNewline)),
            ("text", LOG_NAME, Err(NoteError::TextWithoutFinalNewline)),
            ("te\rxt\n", LOG_NAME, Err(NoteError::ControlCharacter { offset: 2 })),
            // Empty lines, even at the end, and a lone newline are texts like any other.
            ("\n", LOG_NAME, Ok(())),
            ("a\n\nb\n\n", LOG_NAME, Ok(())),
        ];
        let verifiers = [(LOG_NAME.to_owned(), key.verifying_key())];
        for (text, signer, expected) in cases {
            let signed = sign_note(text, signer, &key);
            assert_eq!(signed.as_ref().map(|_| ()).map_err(Clone::clone), expected, "{text:?} {signer:?}");
            if let Ok(note) = signed {
                assert_eq!(open_note(&note, &verifiers), Ok((text.to_owned(), vec![LOG_NAME.to_owned()])));
            }
        }
        assert_eq!(verifier_key("a+b", &key.verifying_key()), Err(KeyError::InvalidName { name: "a+b".into() }));
    }

    /// Changes every byte of `note` to every other value and opens the result with `verifiers`.
    /// Each change must be refused, unless it falls in `ignored` (the bytes of signatures by
    /// unknown keys) and the note still opens to the same text and signers. Returns how many
    /// changes were accepted.
    fn check_every_byte_change(
        note: &str,
        verifiers: &[(String, VerifyingKey)],
        ignored: std::ops::Range<usize>,
    ) -> usize {
        let original = open_note(note, verifiers).unwrap();
        let mut accepted = 0;
        for index in 0..note.len() {
            for value in 0..=u8::MAX {
                let mut bytes = note.as_bytes().to_vec();
                if bytes[index] == value {
                    continue;
                }
                bytes[index] = value;
                // Bytes that are not UTF-8 are refused before open_note, which takes a &str.
                let Ok(changed) = std::str::from_utf8(&bytes) else { continue };
                if let Ok(opened) = open_note(changed, verifiers) {
                    assert!(ignored.contains(&index), "byte {index} changed to {value:#04x} is accepted");
                    assert_eq!(opened, original, "byte {index} changed to {value:#04x}");
                    accepted += 1;
                }
            }
        }
        accepted
    }

    #[test]
    fn every_single_byte_change_is_refused_unless_it_falls_in_an_ignored_signature() {
        let body = checkpoint().body();
        let log = log_key();
        let verifiers = [(LOG_NAME.to_owned(), log.verifying_key())];
        let signed = sign_note(&body, LOG_NAME, &log).unwrap();
        assert_eq!(check_every_byte_change(&signed, &verifiers, 0..0), 0);
        // With a cosignature by a witness the reviewer does not know, after or before the log's.
        let witness = signature_line(&body, WITNESS_NAME, &witness_key());
        let after = format!("{signed}{witness}");
        assert!(check_every_byte_change(&after, &verifiers, signed.len()..after.len()) > 0);
        let log_line = &signed[body.len() + 1..];
        let before = format!("{body}\n{witness}{log_line}");
        let witness_bytes = body.len() + 1..body.len() + 1 + witness.len();
        assert!(check_every_byte_change(&before, &verifiers, witness_bytes) > 0);
    }
}
