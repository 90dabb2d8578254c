//! Checks on every value written into a record.
//!
//! Each check returns an [`InvalidValue`] that names the field, carries the
//! offending value and says what was wrong, so that a device can show the
//! officer exactly which input to fix. The same checks run when a document is
//! read, so a document edited by a buggy or hostile peer is caught too.

use std::fmt;

/// Longest single-line text (names, addresses, ids of people), in characters.
pub const MAX_SHORT_TEXT: usize = 200;
/// Longest multi-line text of one field (conclusion, notes), in characters.
pub const MAX_LONG_TEXT: usize = 4_000;
/// Longest observations text, in characters.
pub const MAX_OBSERVATIONS: usize = 100_000;
/// Longest identifier (officer, entity, sample, checklist code), in characters.
pub const MAX_ID: usize = 64;
/// Latest instant accepted in a time field: 2100-01-01T00:00:00Z.
pub const MAX_TIME_MS: i64 = 4_102_444_800_000;
/// Earliest instant accepted in a time field: 2000-01-01T00:00:00Z.
pub const MIN_TIME_MS: i64 = 946_684_800_000;

/// A value that may not be written into a record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid value for {field}: {problem} (value: {value:?})")]
pub struct InvalidValue {
    /// Path of the field, as in conflicts: `header/conclusion`, `photos`, ...
    pub field: String,
    /// The value as given, truncated to 200 characters.
    pub value: String,
    pub problem: Problem,
}

/// What is wrong with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Empty,
    TooLong { max: usize, found: usize },
    ControlCharacter,
    NotAnIdentifier,
    NotSha256,
    NotCreditCode,
    OutOfRange { min: String, max: String },
    WrongType { expected: &'static str },
    UnknownEnumeration { expected: &'static [&'static str] },
    TooMany { max: usize, found: usize },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("must not be empty"),
            Problem::TooLong { max, found } => write!(f, "{found} characters, at most {max} allowed"),
            Problem::ControlCharacter => f.write_str("contains a control character"),
            Problem::NotAnIdentifier => f.write_str("an identifier uses only A-Z a-z 0-9 . _ -"),
            Problem::NotSha256 => f.write_str("not 64 lowercase hexadecimal digits"),
            Problem::NotCreditCode => {
                f.write_str("not a unified social credit code with a valid check character (GB 32100-2015)")
            }
            Problem::OutOfRange { min, max } => write!(f, "outside {min}..={max}"),
            Problem::WrongType { expected } => write!(f, "expected {expected}"),
            Problem::UnknownEnumeration { expected } => write!(f, "expected one of {expected:?}"),
            Problem::TooMany { max, found } => write!(f, "{found} entries, at most {max} allowed"),
        }
    }
}

pub(crate) fn invalid(field: &str, value: impl fmt::Display, problem: Problem) -> InvalidValue {
    let value: String = value.to_string().chars().take(200).collect();
    InvalidValue { field: field.to_string(), value, problem }
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), InvalidValue> {
    let found = value.chars().count();
    if found > max {
        return Err(invalid(field, value, Problem::TooLong { max, found }));
    }
    Ok(())
}

/// A non-empty single line of at most [`MAX_SHORT_TEXT`] characters.
pub fn short_text(field: &str, value: &str) -> Result<(), InvalidValue> {
    if value.trim().is_empty() {
        return Err(invalid(field, value, Problem::Empty));
    }
    check_length(field, value, MAX_SHORT_TEXT)?;
    if value.chars().any(char::is_control) {
        return Err(invalid(field, value, Problem::ControlCharacter));
    }
    Ok(())
}

/// Text of at most `max` characters; line breaks and tabs allowed, other control characters not.
pub fn long_text(field: &str, value: &str, max: usize) -> Result<(), InvalidValue> {
    check_length(field, value, max)?;
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(invalid(field, value, Problem::ControlCharacter));
    }
    Ok(())
}

/// An identifier: 1 to [`MAX_ID`] characters of `A-Z a-z 0-9 . _ -`.
pub fn identifier(field: &str, value: &str) -> Result<(), InvalidValue> {
    if value.is_empty() {
        return Err(invalid(field, value, Problem::Empty));
    }
    check_length(field, value, MAX_ID)?;
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(invalid(field, value, Problem::NotAnIdentifier));
    }
    Ok(())
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(field: &str, value: &str) -> Result<(), InvalidValue> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(invalid(field, value, Problem::NotSha256));
    }
    Ok(())
}

/// An instant between [`MIN_TIME_MS`] and [`MAX_TIME_MS`].
pub fn time_ms(field: &str, value: i64) -> Result<(), InvalidValue> {
    if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&value) {
        return Err(invalid(
            field,
            value,
            Problem::OutOfRange { min: MIN_TIME_MS.to_string(), max: MAX_TIME_MS.to_string() },
        ));
    }
    Ok(())
}

/// A finite number in `min..=max`.
pub fn coordinate(field: &str, value: f64, min: f64, max: f64) -> Result<(), InvalidValue> {
    if !value.is_finite() || value < min || value > max {
        return Err(invalid(field, value, Problem::OutOfRange { min: min.to_string(), max: max.to_string() }));
    }
    Ok(())
}

const CREDIT_CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_CODE_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// A unified social credit code: 18 characters of GB 32100-2015's alphabet whose last is the check character.
pub fn credit_code(field: &str, value: &str) -> Result<(), InvalidValue> {
    let bad = || invalid(field, value, Problem::NotCreditCode);
    let bytes = value.as_bytes();
    if bytes.len() != 18 {
        return Err(bad());
    }
    let position = |b: u8| CREDIT_CODE_ALPHABET.iter().position(|&c| c == b).map(|p| p as u32);
    let mut sum = 0;
    for (index, weight) in CREDIT_CODE_WEIGHTS.iter().enumerate() {
        sum += position(bytes[index]).ok_or_else(bad)? * weight;
    }
    let check = (31 - sum % 31) % 31;
    if position(bytes[17]) != Some(check) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes_of_the_synthetic_city_are_valid_and_a_changed_character_is_not() {
        let csv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/entities.csv"))
            .expect("../shared/data/entities.csv beside the project");
        let mut count = 0;
        for line in csv.lines().skip(1) {
            let code = line.split(',').nth(2).unwrap();
            credit_code("entity/credit_code", code).unwrap();
            let mut changed = code.as_bytes().to_vec();
            changed[17] = if changed[17] == b'0' { b'1' } else { b'0' };
            assert!(credit_code("entity/credit_code", std::str::from_utf8(&changed).unwrap()).is_err());
            count += 1;
        }
        assert_eq!(count, 3000);
    }

    #[test]
    fn values_are_checked() {
        let cases: Vec<(Result<(), InvalidValue>, Option<Problem>)> = vec![
            (short_text("f", "ok"), None),
            (short_text("f", "  "), Some(Problem::Empty)),
            (short_text("f", "a\u{0}b"), Some(Problem::ControlCharacter)),
            (short_text("f", &"长".repeat(201)), Some(Problem::TooLong { max: 200, found: 201 })),
            (long_text("f", "line\nline", 10), None),
            (long_text("f", "bell\u{7}", 10), Some(Problem::ControlCharacter)),
            (identifier("f", "FACILITY-RUNNING"), None),
            (identifier("f", "a b"), Some(Problem::NotAnIdentifier)),
            (identifier("f", ""), Some(Problem::Empty)),
            (sha256_hex("f", &"a".repeat(64)), None),
            (sha256_hex("f", &"A".repeat(64)), Some(Problem::NotSha256)),
            (sha256_hex("f", &"a".repeat(63)), Some(Problem::NotSha256)),
            (time_ms("f", 1_780_000_000_000), None),
            (coordinate("f", 91.0, -90.0, 90.0), Some(Problem::OutOfRange { min: "-90".into(), max: "90".into() })),
            (coordinate("f", f64::NAN, -90.0, 90.0), Some(Problem::OutOfRange { min: "-90".into(), max: "90".into() })),
            (credit_code("f", "91450223416G3QBX69"), None),
            (credit_code("f", "91450223416G3QBX6"), Some(Problem::NotCreditCode)),
            (credit_code("f", "91450223416G3QBXI9"), Some(Problem::NotCreditCode)),
        ];
        for (index, (result, expected)) in cases.into_iter().enumerate() {
            assert_eq!(result.err().map(|e| e.problem), expected, "case {index}");
        }
    }
}
