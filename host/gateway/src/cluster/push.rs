//! `wasmgate config push` and `wasmgate config rollback`: the only writers of
//! `current`. A version is uploaded blob by blob; the version node and the new
//! `current` are then written in one ZooKeeper transaction, so a gateway never
//! sees `current` name a version that is not complete.

use std::path::Path;

use zookeeper_client as zk;

use super::version::{Files, Manifest, MAX_FILE};
use super::{parse_current, Paths};

/// What a push or rollback did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub id: String,
    /// `current` before (none on a first push).
    pub previous: Option<String>,
    /// Whether the version was new (a push of an unchanged config and plugins re-uses its id).
    pub created: bool,
    /// Plugin names the version carries.
    pub plugins: Vec<String>,
}

/// Uploads the config at `file` (already checked by the caller, as `check`
/// does: `plugins` are the files it loaded, `(name, sha256)`) and the plugin files
/// its routes use, then points `current` at the version.
pub async fn push(
    hosts: &[String],
    root: &str,
    file: &Path,
    config: &crate::Config,
    plugins: &[(String, String)],
) -> Result<Pushed, String> {
    let text = read_limited(file)?;
    let mut files = Files { config: text, plugins: Default::default() };
    if let Some(settings) = &config.plugins {
        for name in &settings.used {
            let path = settings.dir.join(format!("{name}.wasm"));
            let bytes = read_limited(&path)?;
            let checked = plugins.iter().find(|(n, _)| n == name).map(|(_, sha)| sha.as_str());
            if checked != Some(super::version::sha256_hex(&bytes).as_str()) {
                return Err(format!("{}: changed while pushing; push again", path.display()));
            }
            files.plugins.insert(name.clone(), bytes);
        }
    }
    let by = format!("{}@{}", std::env::var("USER").unwrap_or_else(|_| "?".into()), super::default_id());
    let (manifest, blobs) = Manifest::new(&files, by);
    let id = manifest.id();
    let manifest_json = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let paths = Paths::new(root);
    let client = super::tool_connect(hosts).await?;
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    for dir in [paths.versions(), paths.blobs(), paths.members()] {
        client.mkdir(&dir, &persistent).await.map_err(|e| format!("cannot create {dir}: {e}"))?;
    }
    for (hash, chunk) in &blobs {
        upload_blob(&client, &paths, hash, chunk).await?;
    }
    let plugins = files.plugins.keys().cloned().collect();
    let (previous, created) = switch(&client, &paths, &id, Some(&manifest_json)).await?;
    Ok(Pushed { id, previous, created, plugins })
}

/// Points `current` at an existing version, after checking that its manifest
/// and every blob it names are there. `to` may be a unique prefix of the id.
pub async fn rollback(hosts: &[String], root: &str, to: &str) -> Result<Pushed, String> {
    let paths = Paths::new(root);
    let client = super::tool_connect(hosts).await?;
    let versions = client.list_children(&paths.versions()).await.map_err(|e| format!("{}: {e}", paths.versions()))?;
    let matching: Vec<&String> = versions.iter().filter(|v| !to.is_empty() && v.starts_with(to)).collect();
    let id = match matching.as_slice() {
        [one] => (*one).clone(),
        [] => return Err(format!("no version {to} under {}", paths.versions())),
        _ => return Err(format!("{to} names {} versions; give more digits", matching.len())),
    };
    let (data, _) = client.get_data(&paths.version(&id)).await.map_err(|e| format!("{}: {e}", paths.version(&id)))?;
    let manifest = Manifest::parse(&id, &data)?;
    for (what, entry) in manifest.entries() {
        for hash in &entry.chunks {
            match client.check_stat(&paths.blob(hash)).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("version {id}: {what}: blob {hash} is missing")),
                Err(e) => return Err(format!("{}: {e}", paths.blob(hash))),
            }
        }
    }
    let (previous, _) = switch(&client, &paths, &id, None).await?;
    Ok(Pushed { id, previous, created: false, plugins: manifest.plugins.keys().cloned().collect() })
}

/// One transaction: create the version node (when `manifest` is given and it
/// does not exist) or check it exists, and set `current` to `id` (compare-and-set
/// against the `current` read just before, so concurrent pushes cannot interleave).
async fn switch(client: &zk::Client, paths: &Paths, id: &str, manifest: Option<&[u8]>) -> Result<(Option<String>, bool), String> {
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let current = match client.get_data(&paths.current()).await {
            Ok((data, stat)) => Some((parse_current(&data), stat.version)),
            Err(zk::Error::NoNode) => None,
            Err(e) => return Err(format!("{}: {e}", paths.current())),
        };
        let version = client.check_stat(&paths.version(id)).await.map_err(|e| format!("{}: {e}", paths.version(id)))?;
        let mut writer = client.new_multi_writer();
        let op = |e: zk::Error| format!("cannot prepare the transaction: {e}");
        let created = match (version, manifest) {
            (Some(stat), _) => {
                writer.add_check_version(&paths.version(id), stat.version).map_err(op)?;
                false
            }
            (None, Some(manifest)) => {
                writer.add_create(&paths.version(id), manifest, &persistent).map_err(op)?;
                true
            }
            (None, None) => return Err(format!("no version {id}")),
        };
        match &current {
            Some((_, stat_version)) => writer.add_set_data(&paths.current(), id.as_bytes(), Some(*stat_version)).map_err(op)?,
            None => writer.add_create(&paths.current(), id.as_bytes(), &persistent).map_err(op)?,
        }
        match writer.commit().await {
            Ok(_) => return Ok((current.and_then(|(id, _)| id), created)),
            Err(zk::MultiWriteError::OperationFailed { source: zk::Error::BadVersion | zk::Error::NodeExists | zk::Error::NoNode, .. })
                if attempts < 5 =>
            {
                continue
            }
            Err(e) => return Err(format!("cannot switch {} to {id}: {e}", paths.current())),
        }
    }
}

/// Creates `blobs/<hash>`; an existing one is checked, and replaced if damaged.
async fn upload_blob(client: &zk::Client, paths: &Paths, hash: &str, chunk: &[u8]) -> Result<(), String> {
    let path = paths.blob(hash);
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    match client.create(&path, chunk, &persistent).await {
        Ok(_) => Ok(()),
        Err(zk::Error::NodeExists) => {
            let (data, stat) = client.get_data(&path).await.map_err(|e| format!("{path}: {e}"))?;
            if super::version::sha256_hex(&data) == hash {
                return Ok(());
            }
            client.set_data(&path, chunk, Some(stat.version)).await.map(|_| ()).map_err(|e| format!("{path}: {e}"))
        }
        Err(e) => Err(format!("cannot upload {path}: {e}")),
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    if size > MAX_FILE {
        return Err(format!("{}: larger than {MAX_FILE} bytes", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
