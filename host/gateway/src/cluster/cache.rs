//! The local copy of fetched versions, so a gateway that starts while ZooKeeper
//! is down serves the version it last applied.
//!
//! `<cache_dir>/versions/<id>/` holds `manifest.json`, `config.toml` and
//! `plugins/<name>.wasm`; it is written under a temporary name and renamed into
//! place, so a version folder is complete or absent. `<cache_dir>/current` names
//! the version this gateway last applied, `<cache_dir>/pending` one it fetched
//! but could only apply with a restart. Everything read back is checked
//! against the manifest's digests, as a fetch from ZooKeeper is.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::version::{Files, Manifest, MAX_FILE};

pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: &Path) -> Cache {
        Cache { dir: dir.to_owned() }
    }

    pub fn version_dir(&self, id: &str) -> PathBuf {
        self.dir.join("versions").join(id)
    }

    /// Where the plugins of version `id` are once stored (the merged config's `[plugins] dir`).
    pub fn plugins_dir(&self, id: &str) -> PathBuf {
        self.version_dir(id).join("plugins")
    }

    /// The version this gateway last applied, if it recorded one.
    pub fn current(&self) -> Option<String> {
        self.pointer("current")
    }

    /// Records `id` as the version applied.
    pub fn set_current(&self, id: &str) -> Result<(), String> {
        self.set_pointer("current", Some(id))
    }

    /// A fetched version refused only because it needs a restart: the next
    /// start tries it first.
    pub fn pending(&self) -> Option<String> {
        self.pointer("pending")
    }

    pub fn set_pending(&self, id: Option<&str>) -> Result<(), String> {
        self.set_pointer("pending", id)
    }

    fn pointer(&self, name: &str) -> Option<String> {
        let text = read_bounded(&self.dir.join(name), 64).ok()?;
        let id = String::from_utf8(text).ok()?.trim().to_owned();
        super::version::is_version_id(&id).then_some(id)
    }

    /// Writes (aside, then renamed over) or removes the pointer file `name`.
    fn set_pointer(&self, name: &str, id: Option<&str>) -> Result<(), String> {
        let path = self.dir.join(name);
        let Some(id) = id else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: {e}", path.display())),
                _ => Ok(()),
            };
        };
        let aside = self.dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        std::fs::write(&aside, format!("{id}\n")).map_err(|e| format!("{}: {e}", aside.display()))?;
        std::fs::rename(&aside, &path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads version `id` back, checking every file against its manifest.
    pub fn load(&self, id: &str) -> Result<(Manifest, Files), String> {
        let dir = self.version_dir(id);
        let manifest_bytes = read_bounded(&dir.join("manifest.json"), 4 << 20)?;
        let manifest = Manifest::parse(id, &manifest_bytes)?;
        let read = |path: PathBuf, entry: &super::version::FileEntry| -> Result<Vec<u8>, String> {
            let bytes = read_bounded(&path, entry.size.min(MAX_FILE) + 1)?;
            match entry.matches(&bytes) {
                true => Ok(bytes),
                false => Err(format!("{}: does not match version {id}'s digest", path.display())),
            }
        };
        let config = read(dir.join("config.toml"), &manifest.config)?;
        let mut plugins = std::collections::BTreeMap::new();
        for (name, entry) in &manifest.plugins {
            plugins.insert(name.clone(), read(dir.join("plugins").join(format!("{name}.wasm")), entry)?);
        }
        Ok((manifest, Files { config, plugins }))
    }

    /// Stores a version already checked against `manifest` (nothing when it is
    /// stored already and intact).
    pub fn store(&self, id: &str, manifest: &[u8], files: &Files) -> Result<(), String> {
        if self.load(id).is_ok() {
            return Ok(());
        }
        let versions = self.dir.join("versions");
        let aside = versions.join(format!(".{id}.{}.{}", std::process::id(), fastrand::u32(..)));
        let fail = |e: std::io::Error| format!("cannot cache version {id} in {}: {e}", versions.display());
        std::fs::create_dir_all(aside.join("plugins")).map_err(fail)?;
        std::fs::write(aside.join("manifest.json"), manifest).map_err(fail)?;
        std::fs::write(aside.join("config.toml"), &files.config).map_err(fail)?;
        for (name, bytes) in &files.plugins {
            std::fs::write(aside.join("plugins").join(format!("{name}.wasm")), bytes).map_err(fail)?;
        }
        let target = self.version_dir(id);
        // A damaged copy (it failed `load`) is replaced.
        let _ = std::fs::remove_dir_all(&target);
        let renamed = std::fs::rename(&aside, &target);
        if renamed.is_err() {
            let _ = std::fs::remove_dir_all(&aside);
        }
        // Another process of this cache may have stored it first: fine if intact.
        match renamed {
            Ok(()) => Ok(()),
            Err(e) => self.load(id).map(|_| ()).map_err(|_| fail(e)),
        }
    }
}

/// Reads at most `limit` bytes; a longer file is an error.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{}: larger than {limit} bytes", path.display()));
    }
    Ok(bytes)
}
