//! The config as written: the parsed file (comments and layout gone) as JSON, and
//! the config hash, a digest of its canonical text. The admin API shows it
//! (with plugin configs redacted); logs and metrics name a config by its hash.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Config;

#[derive(Clone, Default)]
pub struct Written {
    value: Arc<Value>,
    hash: Arc<str>,
    /// The text, to find the line of a key that turns out wrong later (a
    /// plugin's config); it holds plugin configs, so it is never shown.
    text: Arc<str>,
    /// The file the text came from, as given (`Config::parse`'s `path`).
    file: Arc<PathBuf>,
}

impl Written {
    /// Parses config text already known to be valid TOML, read from `file`.
    pub(super) fn parse(text: &str, file: &Path) -> Result<Written, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_owned())?;
        let value = serde_json::to_value(table).map_err(|e| e.to_string())?;
        let mut canonical = String::with_capacity(text.len());
        write_canonical(&value, &mut canonical);
        let digest = Sha256::digest(canonical.as_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Written { value: Arc::new(value), hash: hash.into(), text: text.into(), file: Arc::new(file.to_owned()) })
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// The config file, as given.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Every table and key of the file; plugin configs included, so handle with care.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// A digest of the config as written (16 hex digits of the SHA-256 of its canonical
/// JSON: keys sorted, no whitespace), so comments, layout and key order do not
/// change it but any value does, plugin configs included. Secrets read from
/// files or the environment (the admin token) are not part of it.
pub fn config_hash(config: &Config) -> String {
    config.as_written.hash.to_string()
}

/// JSON with object keys sorted, whatever order the map keeps.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

impl fmt::Debug for Written {
    /// The hash only: the text holds plugin configs, which may be secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Written({})", self.hash)
    }
}
