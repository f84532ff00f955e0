//! A fleet version: the config text and the plugin files its routes use, as one
//! immutable, content-addressed unit.
//!
//! In ZooKeeper a version is a manifest node, `<root>/versions/<id>`, naming each
//! file's SHA-256 and size and the SHA-256 of each of its chunks; the chunks are
//! nodes of their own, `<root>/blobs/<sha256>`, at most `CHUNK` bytes each (under
//! ZooKeeper's 1 MB node limit). The id is derived from the file digests, so the
//! same config and plugins always make the same id, and a reader can check that
//! a manifest is the one its name promises.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes per chunk node: half of ZooKeeper's default `jute.maxbuffer`.
pub const CHUNK: usize = 512 * 1024;
/// The largest file a version may carry (a config or one plugin).
pub const MAX_FILE: u64 = 256 << 20;
/// The most plugin files a version may carry.
pub const MAX_PLUGINS: usize = 256;
/// Manifest format this build writes and reads.
const FORMAT: u32 = 1;

/// What `<root>/versions/<id>` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// The config file's text.
    pub config: FileEntry,
    /// `<name>.wasm` files, by plugin name.
    pub plugins: BTreeMap<String, FileEntry>,
    /// When and from where it was pushed (not part of the id).
    pub pushed_at: String,
    pub pushed_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Hex SHA-256 of the whole file.
    pub sha256: String,
    pub size: u64,
    /// Hex SHA-256 of each chunk, in order; each names a blob node.
    pub chunks: Vec<String>,
}

/// A version's files, in memory.
#[derive(Debug, Clone)]
pub struct Files {
    pub config: Vec<u8>,
    pub plugins: BTreeMap<String, Vec<u8>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FileEntry {
    /// The entry for `bytes` and its chunks.
    pub fn of(bytes: &[u8]) -> (FileEntry, Vec<&[u8]>) {
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
        let entry = FileEntry {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            chunks: chunks.iter().map(|c| sha256_hex(c)).collect(),
        };
        (entry, chunks)
    }

    /// Whether `bytes` are this file.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.size && sha256_hex(bytes) == self.sha256
    }
}

impl Manifest {
    pub fn new(files: &Files, pushed_by: String) -> (Manifest, Vec<(String, Vec<u8>)>) {
        let mut blobs = Vec::new();
        let mut entry = |bytes: &[u8]| {
            let (entry, chunks) = FileEntry::of(bytes);
            for (hash, chunk) in entry.chunks.iter().zip(chunks) {
                blobs.push((hash.clone(), chunk.to_vec()));
            }
            entry
        };
        let config = entry(&files.config);
        let plugins = files.plugins.iter().map(|(name, bytes)| (name.clone(), entry(bytes))).collect();
        let pushed_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        (Manifest { format: FORMAT, config, plugins, pushed_at, pushed_by }, blobs)
    }

    /// The version's id: 16 hex digits of a SHA-256 over the file digests.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(format!("wasmgate-version {}\nconfig {}\n", self.format, self.config.sha256));
        for (name, file) in &self.plugins {
            hasher.update(format!("plugin {name} {}\n", file.sha256));
        }
        hex(&hasher.finalize()[..8])
    }

    /// Parses a manifest read from ZooKeeper or the cache and checks it is the
    /// version `id` names and that every bound holds.
    pub fn parse(id: &str, bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("version {id}: bad manifest: {e}"))?;
        if manifest.format != FORMAT {
            return Err(format!("version {id}: manifest format {} (this gateway reads {FORMAT})", manifest.format));
        }
        if manifest.plugins.len() > MAX_PLUGINS {
            return Err(format!("version {id}: more than {MAX_PLUGINS} plugins"));
        }
        for name in manifest.plugins.keys() {
            if !plugin_name_ok(name) {
                return Err(format!("version {id}: `{name}` is not a plugin name"));
            }
        }
        for (what, file) in std::iter::once(("config", &manifest.config)).chain(manifest.plugins.iter().map(|(n, f)| (n.as_str(), f))) {
            let chunks_needed = file.size.div_ceil(CHUNK as u64);
            let hashes_ok = file.chunks.iter().chain([&file.sha256]).all(|h| is_sha256_hex(h));
            if file.size > MAX_FILE || file.chunks.len() as u64 != chunks_needed || !hashes_ok {
                return Err(format!("version {id}: {what}: inconsistent size, chunks or digests"));
            }
        }
        if manifest.id() != id {
            return Err(format!("version {id}: its manifest describes version {}", manifest.id()));
        }
        Ok(manifest)
    }

    /// Every file: `("config", entry)` then `(plugin name, entry)`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &FileEntry)> {
        std::iter::once(("config", &self.config)).chain(self.plugins.iter().map(|(n, f)| (n.as_str(), f)))
    }
}

/// Reassembles a file from its chunks, checking each and the whole.
pub fn assemble(what: &str, entry: &FileEntry, chunks: Vec<Vec<u8>>) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(entry.size.min(MAX_FILE) as usize);
    for (hash, chunk) in entry.chunks.iter().zip(chunks) {
        if chunk.len() > CHUNK || sha256_hex(&chunk) != *hash {
            return Err(format!("{what}: chunk {hash} does not match its digest"));
        }
        bytes.extend_from_slice(&chunk);
    }
    if !entry.matches(&bytes) {
        return Err(format!("{what}: reassembled file does not match its digest"));
    }
    Ok(bytes)
}

pub fn plugin_name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A version id as `rollback --to` and the nodes name it: 16 lower-case hex digits.
pub fn is_version_id(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
