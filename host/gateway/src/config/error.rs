use std::fmt;
use std::path::{Path, PathBuf};

/// A config that cannot be used: which file, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the problem was found while parsing.
    pub line: Option<usize>,
    /// Dotted key path such as `upstream[0].targets[1].weight`; empty for the whole file.
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: &Path, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError { file: file.to_owned(), line: None, key: key.to_owned(), reason: reason.into() }
    }

    pub(super) fn from_parse(
        file: &Path,
        text: &str,
        err: serde_path_to_error::Error<toml::de::Error>,
    ) -> ConfigError {
        let key = err.path().to_string();
        let inner = err.into_inner();
        let line = inner.span().map(|span| line_of(text, span.start));
        let key = if key == "." { String::new() } else { super::locate::with_route_label(text, &key) };
        ConfigError { file: file.to_owned(), line, key, reason: inner.message().trim().replace('\n', " ") }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}
