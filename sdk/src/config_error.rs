//! A config that does not fit the plugin's `Config` type, told in the terms of
//! the TOML the operator wrote: the key path inside the plugin's `config`, and
//! `expected an integer, found "two minutes"` rather than serde's Rust types and
//! a position in the JSON the gateway generated.
//!
//! The gateway reads the message back (`invalid config at `<path>`: <reason>`)
//! to point at the file and line of that key, so keep the shape.

/// `invalid config at `<path>`: <reason>`, or `invalid config: <reason>` when
/// the problem is the config as a whole.
pub(crate) fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> String {
    // An unknown key's path ends with the key itself.
    let path = err.path().to_string();
    let inner = err.into_inner();
    let mut reason = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    if let Some(cut) = reason.strip_suffix(&position) {
        reason = cut.to_owned();
    }
    let reason = in_toml_terms(&reason);
    match path.as_str() {
        "." => format!("invalid config: {reason}"),
        path => format!("invalid config at `{path}`: {reason}"),
    }
}

/// serde's `invalid type: <found>, expected <expected>` (and `invalid value`)
/// as `expected <expected>, found <found>`, with TOML's words for both; other
/// messages with `field` said `key`.
fn in_toml_terms(reason: &str) -> String {
    for (prefix, range) in [("invalid type: ", false), ("invalid value: ", true)] {
        let Some(rest) = reason.strip_prefix(prefix) else { continue };
        let Some((found, expected)) = rest.rsplit_once(", expected ") else { continue };
        return format!("expected {}, found {}", expected_in_toml(expected, range), found_in_toml(found));
    }
    reason
        .replacen("unknown field `", "unknown key `", 1)
        .replacen("missing field `", "missing key `", 1)
        .replacen("duplicate field `", "duplicate key `", 1)
}

/// What serde expected (a Rust type, or a type's own words) in TOML's words.
/// `range`: the value had the right type but not the right size.
fn expected_in_toml(expected: &str, range: bool) -> String {
    let bounds = match expected {
        "u8" => Some("0 to 255"),
        "u16" => Some("0 to 65535"),
        "u32" => Some("0 to 4294967295"),
        "u64" | "usize" | "u128" => Some("0 or more"),
        "i8" => Some("-128 to 127"),
        "i16" => Some("-32768 to 32767"),
        "i32" => Some("-2147483648 to 2147483647"),
        "i64" | "isize" | "i128" => Some("within 64 bits"),
        _ => None,
    };
    if let Some(bounds) = bounds {
        return match range {
            true => format!("an integer from {bounds}"),
            false => "an integer".to_owned(),
        };
    }
    match expected {
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" | "a tuple" => "an array".to_owned(),
        "a map" => "a table".to_owned(),
        "a borrowed string" | "a string" | "a char" | "a character" => "a string".to_owned(),
        other if other.starts_with("struct ") => "a table".to_owned(),
        other if other.starts_with("a sequence of ") || other.starts_with("an array of ") => {
            other.replacen("a sequence of", "an array of", 1)
        }
        other => other.to_owned(),
    }
}

/// What serde found (`string "x"`, `integer `5``, `map`...) as TOML shows it.
fn found_in_toml(found: &str) -> String {
    if let Some(text) = found.strip_prefix("string ") {
        return text.to_owned();
    }
    for kind in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(value) = found.strip_prefix(kind) {
            return value.trim_matches('`').to_owned();
        }
    }
    match found {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        "unit value" | "null" => "nothing".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::guest::parse_config;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        retry_after_s: u32,
        #[serde(default)]
        limits: Vec<Limit>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        ratio: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limit {
        rate: u8,
    }

    fn error(json: &str) -> String {
        parse_config::<Config>(json).err().unwrap_or_else(|| panic!("{json} was accepted"))
    }

    #[test]
    fn a_wrong_type_names_the_key_and_both_types_in_toml_terms_without_a_json_position() {
        // Padded so that serde_json's position is far into the line.
        let json = format!(r#"{{"name": "{}", "retry_after_s": "two minutes"}}"#, "x".repeat(80));
        assert_eq!(error(&json), r#"invalid config at `retry_after_s`: expected an integer, found "two minutes""#);
        assert_eq!(
            error(r#"{"retry_after_s": 1, "limits": [{"rate": 300}]}"#),
            "invalid config at `limits[0].rate`: expected an integer from 0 to 255, found 300"
        );
        assert_eq!(
            error(r#"{"retry_after_s": 1, "limits": {"rate": 3}}"#),
            "invalid config at `limits`: expected an array, found a table"
        );
        assert_eq!(
            error(r#"{"retry_after_s": 1, "ratio": "half"}"#),
            r#"invalid config at `ratio`: expected a number, found "half""#
        );
        assert_eq!(
            error(r#"{"retry_after_s": 1, "name": true}"#),
            "invalid config at `name`: expected a string, found true"
        );
        assert_eq!(
            error(r#"{"retry_after_s": 1.5}"#),
            "invalid config at `retry_after_s`: expected an integer, found 1.5"
        );
    }

    #[test]
    fn an_unknown_key_is_named_by_its_path_and_a_missing_one_at_its_table() {
        assert_eq!(
            error(r#"{"retry_after_s": 1, "limits": [{"rate": 1, "burst": 2}]}"#),
            "invalid config at `limits[0].burst`: unknown key `burst`, expected `rate`"
        );
        assert_eq!(
            error(r#"{"retry_after": 1}"#),
            "invalid config at `retry_after`: unknown key `retry_after`, expected one of `retry_after_s`, `limits`, `name`, `ratio`"
        );
        assert_eq!(error("{}"), "invalid config: missing key `retry_after_s`");
        assert_eq!(error(r#""retry""#), r#"invalid config: expected a table, found "retry""#);
    }
}
