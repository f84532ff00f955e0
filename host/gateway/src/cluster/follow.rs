//! A gateway of a fleet: watch `current`, fetch and check the version it names,
//! merge it with this gateway's file and apply it with the hot-reload path
//! (`Reloader::reload`: same validation, same atomic swap, same "needs a
//! restart" rules). A version that fails anywhere is refused: the gateway keeps
//! serving what it served and says why in its member node.
//!
//! ZooKeeper unreachable: the running version keeps serving; the client
//! reconnects with backoff and reads `current` again on return. A lost session
//! (expiry) means a new session and the member node created again.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use zookeeper_client as zk;

use super::cache::Cache;
use super::members::{Member, Refused};
use super::merge::merge;
use super::version::{assemble, Files, Manifest};
use super::{parse_current, Paths};
use crate::backoff::Backoff;
use crate::config::{ClusterConfig, Config};
use crate::discovery::zookeeper_connect as connect;
use crate::reload::{ReloadError, Reloader};
use crate::server::BindError;

/// The config a gateway of a fleet starts on: ZooKeeper's current version when
/// it answers at once; else a version fetched earlier that needed a restart, or
/// the one last applied, from the cache; else the local file alone. Each
/// candidate must pass what `check` asks (plugins loaded and initialised), so a
/// start does not fail on a version this gateway cannot run.
#[derive(Default)]
pub struct Startup {
    /// The cached version merged with the local file; `None`: start on the local file.
    pub config: Option<Config>,
    version: Option<String>,
    /// Whether `version` came from ZooKeeper just now (else from the cache).
    fetched: bool,
}

impl Startup {
    pub fn new(local: &Config) -> Startup {
        let Some(cluster) = &local.cluster else {
            return Startup::default();
        };
        let cache = Cache::new(&cluster.cache_dir);
        // ZooKeeper's current, when it answers at once: a start serves what the fleet runs.
        match fetch_current(cluster, &cache) {
            Ok(Some(id)) => match cached(local, &cache, &id).and_then(|config| buildable(&config).map(|()| config)) {
                Ok(config) => {
                    let _ = cache.set_pending(None);
                    if let Err(error) = cache.set_current(&id) {
                        tracing::warn!(%error, "cannot record the applied version");
                    }
                    tracing::info!(target: "state", change = "fleet_fetched", version = %id, "starting on the fleet's current version");
                    return Startup { config: Some(config), version: Some(id), fetched: true };
                }
                // The follower refuses it again, visibly; start on what worked before.
                Err(error) => tracing::warn!(version = %id, %error, "the fleet's current version cannot start here"),
            },
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read the fleet's current version at start: starting on the cached one, if any"),
        }
        // A version refused only because it needed a restart: this is the restart.
        if let Some(id) = cache.pending() {
            let _ = cache.set_pending(None);
            match cached(local, &cache, &id).and_then(|config| buildable(&config).map(|()| config)) {
                Ok(config) => {
                    tracing::info!(target: "state", change = "fleet_cached", version = %id, "starting on the fleet version that needed a restart");
                    if let Err(error) = cache.set_current(&id) {
                        tracing::warn!(%error, "cannot record the applied version");
                    }
                    return Startup { config: Some(config), version: Some(id), fetched: false };
                }
                Err(error) => tracing::warn!(version = %id, %error, "fleet version that needed a restart cannot start either"),
            }
        }
        let Some(id) = cache.current() else {
            tracing::info!(cache = %cluster.cache_dir.display(), "no cached fleet version: starting on the local file until ZooKeeper's is fetched");
            return Startup::default();
        };
        match cached(local, &cache, &id).and_then(|config| buildable(&config).map(|()| config)) {
            Ok(config) => {
                tracing::info!(target: "state", change = "fleet_cached", version = %id, cache = %cluster.cache_dir.display(), "starting on the cached fleet version (ZooKeeper's current is read once it answers)");
                Startup { config: Some(config), version: Some(id), fetched: false }
            }
            Err(error) => {
                tracing::warn!(version = %id, %error, "cached fleet version unusable: starting on the local file");
                Startup::default()
            }
        }
    }
}

/// How long a start waits for ZooKeeper's current version before it goes on
/// with its cache (a ZooKeeper that is down refuses at once).
const START_FETCH: Duration = Duration::from_secs(3);

/// Fetches (into the cache) the version ZooKeeper's `current` names, on a
/// thread of its own (the caller may be inside an event loop).
fn fetch_current(cluster: &ClusterConfig, cache: &Cache) -> Result<Option<String>, String> {
    let wait = cluster.session_timeout.min(START_FETCH);
    let paths = Paths::new(&cluster.path);
    let hosts = cluster.hosts.join(",");
    let attempt = async {
        let client = connect(&hosts, wait).await?;
        let id = match client.get_data(&paths.current()).await {
            Ok((data, _)) => parse_current(&data),
            Err(zk::Error::NoNode) => None,
            Err(e) => return Err(format!("{}: {e}", paths.current())),
        };
        let Some(id) = id else { return Ok(None) };
        match fetch(&client, &paths, cache, &id).await {
            Ok(_) => Ok(Some(id)),
            Err(FetchError::Transient(e) | FetchError::Bad(e)) => Err(e),
        }
    };
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async { tokio::time::timeout(wait, attempt).await.map_err(|_| format!("no answer within {wait:?}"))? })
        });
        thread.join().unwrap_or_else(|_| Err("the fetch panicked".into()))
    })
}

/// Cached version `id` merged with the local file.
fn cached(local: &Config, cache: &Cache, id: &str) -> Result<Config, String> {
    let (_, files) = cache.load(id)?;
    merge(local, &files.config, &cache.plugins_dir(id), &merged_name(local, id)).map_err(|e| e.to_string())
}

/// Whether a start on `config` would get past its plugins, as `check` asks.
fn buildable(config: &Config) -> Result<(), String> {
    let mut plugins = config.plugins.as_ref().map(crate::plugins::Plugins::load).transpose().map_err(|e| e.to_string())?;
    crate::state::State::build(config, plugins.as_mut(), None).map(|_| ()).map_err(|e| e.to_string())
}

/// How a merged config is named in messages: `gw1.toml@<version>`.
fn merged_name(local: &Config, id: &str) -> PathBuf {
    let file = local.source.as_deref().unwrap_or(local.as_written.file());
    PathBuf::from(format!("{}@{id}", file.display()))
}

/// The thread following the fleet's `current`.
pub struct Follower {
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Starts following when `local` has `[cluster]`; stops when `shutdown` turns true.
    pub fn spawn(
        local: &Config,
        startup: &Startup,
        reloader: &Arc<Reloader>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Option<Follower>, BindError> {
        let Some(cluster) = local.cluster.clone() else {
            return Ok(None);
        };
        let id = cluster.id.clone().unwrap_or_else(super::default_id);
        let member = Member {
            id: id.clone(),
            version: startup.version.clone(),
            applied_at: startup.version.as_ref().map(|_| now()),
            source: match (&startup.version, startup.fetched) {
                (Some(_), true) => "zookeeper",
                (Some(_), false) => "cache",
                (None, _) => "local",
            }
            .into(),
            refused: None,
            pid: std::process::id(),
        };
        let follow = Follow {
            paths: Paths::new(&cluster.path),
            cache: Cache::new(&cluster.cache_dir),
            local: local.clone(),
            cluster,
            reloader: reloader.clone(),
            member,
            id,
            connected: None,
        };
        let thread = std::thread::Builder::new()
            .name("wasmgate-fleet".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the fleet event loop: not following ZooKeeper");
                        return;
                    }
                };
                runtime.block_on(follow.run(shutdown));
            })
            .map_err(|e| BindError::Worker(e.to_string()))?;
        Ok(Some(Follower { thread: Some(thread) }))
    }

    /// Waits for the thread to stop (after shutdown).
    pub fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

enum Ended {
    Shutdown,
    /// The session is gone (expired or closed); a new one is needed.
    Lost(String),
}

/// Why a version could not be fetched.
enum FetchError {
    /// ZooKeeper did not answer: try again.
    Transient(String),
    /// The version is missing, damaged or too large: refuse it.
    Bad(String),
}

struct Follow {
    local: Config,
    cluster: ClusterConfig,
    paths: Paths,
    cache: Cache,
    reloader: Arc<Reloader>,
    /// What our member node says (and what we serve).
    member: Member,
    id: String,
    /// Last reported link state, so each transition is logged once.
    connected: Option<bool>,
}

impl Follow {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let hosts = self.cluster.hosts.join(",");
        let mut backoff = Backoff::new();
        loop {
            let connected = tokio::select! {
                _ = crate::control::stopped(&mut shutdown) => return,
                connected = connect(&hosts, self.cluster.session_timeout) => connected,
            };
            match connected {
                Ok(client) => {
                    self.link(true, None);
                    match self.serve(&client, &mut shutdown, &mut backoff).await {
                        Ended::Shutdown => {
                            let member = self.paths.member(&self.id);
                            let _ = tokio::time::timeout(Duration::from_secs(2), client.delete(&member, None)).await;
                            return;
                        }
                        Ended::Lost(reason) => self.link(false, Some(reason)),
                    }
                }
                Err(reason) => self.link(false, Some(reason)),
            }
            tokio::select! {
                _ = crate::control::stopped(&mut shutdown) => return,
                _ = tokio::time::sleep(backoff.next()) => {}
            }
        }
    }

    fn link(&mut self, connected: bool, error: Option<String>) {
        if self.connected == Some(connected) {
            return;
        }
        self.connected = Some(connected);
        let version = self.member.version.as_deref().unwrap_or("none (local file only)");
        if connected {
            tracing::info!(target: "state", change = "fleet_up", path = %self.cluster.path, member = %self.id, "zookeeper connected: following the fleet's current version");
        } else {
            tracing::warn!(
                target: "state", change = "fleet_down", path = %self.cluster.path, member = %self.id,
                error = error.as_deref().unwrap_or("disconnected"), source = %self.member.source, version,
                "zookeeper unreachable: keeping the running version, reconnecting"
            );
        }
    }

    async fn serve(&mut self, client: &zk::Client, shutdown: &mut watch::Receiver<bool>, backoff: &mut Backoff) -> Ended {
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        if let Err(e) = client.mkdir(&self.paths.members(), &persistent).await {
            return Ended::Lost(format!("cannot create {}: {e}", self.paths.members()));
        }
        if let Err(e) = self.publish(client).await {
            return Ended::Lost(e);
        }
        // A watch on a node that does not exist yet misses its creation here:
        // make sure `current` exists (empty: no version) before watching it.
        match client.create(&self.paths.current(), b"", &persistent).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Ended::Lost(format!("cannot create {}: {e}", self.paths.current())),
        }
        let mut events = match client.watch(&self.paths.current(), zk::AddWatchMode::Persistent).await {
            Ok(events) => events,
            Err(e) => return Ended::Lost(format!("cannot watch {}: {e}", self.paths.current())),
        };
        let mut dirty = true;
        loop {
            if dirty {
                let synced = tokio::select! {
                    _ = crate::control::stopped(shutdown) => return Ended::Shutdown,
                    synced = self.sync(client) => synced,
                };
                match synced {
                    Ok(()) => {
                        dirty = false;
                        backoff.reset();
                    }
                    Err(e) => tracing::debug!(error = %e, "zookeeper read failed; retrying"),
                }
            }
            let event = tokio::select! {
                _ = crate::control::stopped(shutdown) => return Ended::Shutdown,
                event = events.changed() => event,
                _ = tokio::time::sleep(Duration::from_millis(500)), if dirty => continue,
            };
            match (event.event_type, event.session_state) {
                (zk::EventType::Session, state) if state.is_terminated() => return Ended::Lost(format!("session {state}")),
                (zk::EventType::Session, zk::SessionState::Disconnected) => self.link(false, None),
                (zk::EventType::Session, _) => {
                    self.link(true, None);
                    dirty = true;
                }
                _ => dirty = true,
            }
        }
    }

    /// Reads `current`; fetches and applies it when it is new to us; publishes
    /// our member node.
    async fn sync(&mut self, client: &zk::Client) -> Result<(), String> {
        let current = match client.get_data(&self.paths.current()).await {
            Ok((data, _)) => parse_current(&data),
            Err(zk::Error::NoNode) => None,
            Err(e) => return Err(format!("{}: {e}", self.paths.current())),
        };
        if let Some(id) = current {
            let refused = self.member.refused.as_ref().is_some_and(|r| r.version == id);
            if self.member.version.as_deref() != Some(id.as_str()) && !refused {
                match fetch(client, &self.paths, &self.cache, &id).await {
                    Ok(files) => self.apply(&id, files).await,
                    Err(FetchError::Transient(e)) => return Err(e),
                    Err(FetchError::Bad(reason)) => self.refuse(&id, reason),
                }
            }
        }
        self.publish(client).await
    }

    /// Merges and applies a fetched version with the hot-reload path.
    async fn apply(&mut self, id: &str, files: Files) {
        let name = merged_name(&self.local, id);
        let merged = merge(&self.local, &files.config, &self.cache.plugins_dir(id), &name);
        let result = match merged {
            Err(e) => Err((false, e.to_string())),
            Ok(config) => {
                let reloader = self.reloader.clone();
                // Compiling plugins takes a while: off this event loop, which keeps the session alive.
                let reload = tokio::task::spawn_blocking(move || {
                    reloader.reload(Some(config)).map_err(|e| (matches!(e, ReloadError::NeedsRestart(_)), e.to_string()))
                });
                reload.await.unwrap_or_else(|e| Err((false, format!("reload failed: {e}"))))
            }
        };
        let result = result.map_err(|(needs_restart, reason)| {
            // Applied at the next start, as a change to the local file would be.
            let pending = self.cache.set_pending(needs_restart.then_some(id));
            if let Err(error) = pending {
                tracing::warn!(%error, "cannot record the version for the next start");
            }
            reason
        });
        match result {
            Ok(()) => {
                let _ = self.cache.set_pending(None);
                tracing::info!(target: "state", change = "fleet_applied", version = %id, member = %self.id, "applied fleet version");
                self.member.version = Some(id.to_owned());
                self.member.applied_at = Some(now());
                self.member.source = "zookeeper".into();
                self.member.refused = None;
                if let Err(error) = self.cache.set_current(id) {
                    tracing::warn!(%error, "cannot record the applied version: a start without ZooKeeper will not find it");
                }
            }
            Err(reason) => self.refuse(id, reason),
        }
    }

    fn refuse(&mut self, id: &str, reason: String) {
        tracing::error!(
            target: "state", change = "fleet_refused", version = %id, member = %self.id, %reason,
            serving = self.member.version.as_deref().unwrap_or("the local file"),
            "fleet version refused; still serving the previous one"
        );
        self.member.refused = Some(Refused { version: id.to_owned(), reason, at: now() });
    }

    /// Writes our member node, creating it when this session has none.
    async fn publish(&self, client: &zk::Client) -> Result<(), String> {
        let node = self.paths.member(&self.id);
        let data = serde_json::to_vec(&self.member).map_err(|e| e.to_string())?;
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        for _ in 0..3 {
            match client.check_stat(&node).await {
                Ok(Some(stat)) if stat.ephemeral_owner == client.session_id().0 => {
                    return client.set_data(&node, &data, None).await.map(|_| ()).map_err(|e| format!("{node}: {e}"));
                }
                Ok(Some(stat)) => {
                    // Left by an earlier run with the same id whose session has not expired yet.
                    tracing::info!(%node, "member node held by an earlier session: replacing it");
                    let _ = client.delete(&node, Some(stat.version)).await;
                }
                Ok(None) => match client.create(&node, &data, &ephemeral).await {
                    Ok(_) => return Ok(()),
                    Err(zk::Error::NodeExists) => continue,
                    Err(e) => return Err(format!("cannot create {node}: {e}")),
                },
                Err(e) => return Err(format!("{node}: {e}")),
            }
        }
        Err(format!("{node}: keeps changing under us"))
    }
}

/// Version `id`'s files: from the cache when intact there, else from
/// ZooKeeper (every chunk and file checked), then cached.
async fn fetch(client: &zk::Client, paths: &Paths, cache: &Cache, id: &str) -> Result<Files, FetchError> {
    if let Ok((_, files)) = cache.load(id) {
        return Ok(files);
    }
    let node = paths.version(id);
    let manifest_bytes = match client.get_data(&node).await {
        Ok((data, _)) => data,
        Err(zk::Error::NoNode) => return Err(FetchError::Bad(format!("`current` names version {id}, which does not exist"))),
        Err(e) => return Err(FetchError::Transient(format!("{node}: {e}"))),
    };
    let manifest = Manifest::parse(id, &manifest_bytes).map_err(FetchError::Bad)?;
    let read = |what: &str, entry: &super::version::FileEntry| {
        let what = what.to_owned();
        // Requests go out as the futures are made: all chunks of a file at once.
        let reads: Vec<_> = entry.chunks.iter().map(|hash| (hash.clone(), client.get_data(&paths.blob(hash)))).collect();
        let entry = entry.clone();
        async move {
            let mut chunks = Vec::with_capacity(reads.len());
            for (hash, read) in reads {
                match read.await {
                    Ok((data, _)) => chunks.push(data),
                    Err(zk::Error::NoNode) => return Err(FetchError::Bad(format!("version {id}: {what}: blob {hash} is missing"))),
                    Err(e) => return Err(FetchError::Transient(format!("blob {hash}: {e}"))),
                }
            }
            assemble(&format!("version {id}: {what}"), &entry, chunks).map_err(FetchError::Bad)
        }
    };
    let config = read("config", &manifest.config).await?;
    let mut plugins = std::collections::BTreeMap::new();
    for (name, entry) in &manifest.plugins {
        plugins.insert(name.clone(), read(name, entry).await?);
    }
    let files = Files { config, plugins };
    cache.store(id, &manifest_bytes, &files).map_err(FetchError::Bad)?;
    Ok(files)
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
