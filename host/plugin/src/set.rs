//! `PluginSet`: every `<name>.wasm` of a folder, loaded and checked as a
//! unit, so a reload can build a whole new state before swapping it in.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::PluginError;
use crate::plugin::Plugin;
use crate::runtime::{valid_plugin_name, PluginRuntime};

/// The plugins of one folder, by name.
#[derive(Debug, Clone, Default)]
pub struct PluginSet {
    dir: PathBuf,
    plugins: BTreeMap<String, Arc<Plugin>>,
    /// Plugin files of the folder that were not asked for, so not loaded
    /// (nor read): `(name, file)`, sorted.
    ignored: Vec<(String, PathBuf)>,
}

/// Why a folder could not be loaded: every file that failed, with why.
#[derive(Debug)]
pub struct PluginSetError {
    pub dir: PathBuf,
    /// The failing files and their errors (at least one).
    pub failures: Vec<(PathBuf, PluginError)>,
}

/// One line per failure: the file, then why and what to do (a folder that
/// cannot be read names itself).
impl fmt::Display for PluginSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (file, err)) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match err {
                PluginError::Folder { .. } => write!(f, "{err}")?,
                _ => write!(f, "{}: {err}", file.display())?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for PluginSetError {}

impl PluginSet {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// Plugin names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Plugin>)> {
        self.plugins.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Plugin files of the folder that were not asked for: `(name, file)`.
    pub fn ignored(&self) -> &[(String, PathBuf)] {
        &self.ignored
    }

    /// Every plugin name the folder offers, loaded or not, sorted.
    pub fn available(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.names().chain(self.ignored.iter().map(|(n, _)| n.as_str())).collect();
        names.sort_unstable();
        names
    }
}

/// `dir` made absolute (from the working directory) with what exists of it
/// resolved, for a message about a folder that is not there.
fn absolute(dir: &Path) -> PathBuf {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut existing = dir.as_path();
    let mut missing = Vec::new();
    while let Some(parent) = existing.parent() {
        if let Ok(real) = existing.canonicalize() {
            return missing.iter().rev().fold(real, |path, part| path.join(part));
        }
        if let Some(name) = existing.file_name() {
            missing.push(name);
        }
        existing = parent;
    }
    dir
}

/// Whether a folder entry is a plugin file: `<name>.wasm`, not hidden (an
/// editor's or a copier's temporary file starts with `.`).
fn plugin_name(path: &Path) -> Option<&str> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (!stem.starts_with('.')).then_some(stem)
}

impl PluginRuntime {
    /// Loads every `<name>.wasm` in `dir`. Files whose bytes are the same as
    /// in `previous` reuse its compiled plugin (no recompilation). Fails as
    /// a whole, listing each file that is unreadable, badly named or not a
    /// valid plugin.
    pub fn load_dir(
        &self,
        dir: &Path,
        previous: Option<&PluginSet>,
    ) -> Result<PluginSet, PluginSetError> {
        self.load_dir_for(dir, previous, &|_| true)
    }

    /// Like [`load_dir`](Self::load_dir), but loads only the plugins `wanted`
    /// says yes to: the other files are listed as ignored, never read, so
    /// they cannot fail the set.
    pub fn load_dir_for(
        &self,
        dir: &Path,
        previous: Option<&PluginSet>,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<PluginSet, PluginSetError> {
        let fail = |failures| PluginSetError {
            dir: dir.to_owned(),
            failures,
        };
        let entries = std::fs::read_dir(dir).map_err(|source| {
            fail(vec![(
                dir.to_owned(),
                PluginError::Folder {
                    path: absolute(dir),
                    source,
                },
            )])
        })?;
        let mut plugins = BTreeMap::new();
        let mut ignored = Vec::new();
        let mut failures = Vec::new();
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let Some(name) = plugin_name(&path) else {
                continue;
            };
            if !wanted(name) {
                ignored.push((name.to_owned(), path.clone()));
                continue;
            }
            if !valid_plugin_name(name) {
                failures.push((path.clone(), PluginError::BadName(name.to_owned())));
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(source) => {
                    failures.push((path.clone(), PluginError::Read { path, source }));
                    continue;
                }
            };
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            let reused = previous
                .and_then(|set| set.get(name))
                .filter(|p| *p.digest() == digest)
                .cloned();
            let loaded = match reused {
                Some(plugin) => Ok(plugin),
                None => self.load(name, &bytes),
            };
            match loaded {
                Ok(plugin) => {
                    plugins.insert(name.to_owned(), plugin);
                }
                Err(err) => failures.push((path, err)),
            }
        }
        if !failures.is_empty() {
            return Err(fail(failures));
        }
        Ok(PluginSet {
            dir: dir.to_owned(),
            plugins,
            ignored,
        })
    }
}
