//! Config distribution through ZooKeeper: `config push` reaches every gateway of
//! a fleet, a gateway that cannot apply a version refuses it and says why,
//! `push` uploads nothing for a config `check` refuses, a chunk damaged in
//! ZooKeeper is refused, `rollback` re-points the fleet, a version that adds
//! health checks applies live, a plugin larger than a ZooKeeper node
//! travels in chunks, and ZooKeeper going away changes nothing a gateway serves —
//! not even for a gateway that restarts meanwhile (it starts on its cached version).
//!
//! One real ZooKeeper per test; gateways run in this process (their fleet
//! followers share nothing process-wide), each with its own config file and cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmgate::{Config, Gateway};
use wasmgate_tests::plugins::PluginDir;
use wasmgate_tests::zookeeper::ZooKeeper;
use wasmgate_tests::{get, Backend};

/// Bound on every test, ZooKeeper's JVM start included.
const TEST_DEADLINE: Duration = Duration::from_secs(180);
/// What "served by all within 1 s" means.
const CONVERGE: Duration = Duration::from_secs(1);

struct Fleet {
    zk: ZooKeeper,
    root: String,
    dir: tempfile::TempDir,
}

impl Fleet {
    async fn start(root: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        Fleet { zk: ZooKeeper::start().await, root: root.into(), dir }
    }

    fn hosts(&self) -> Vec<String> {
        vec![self.zk.hosts()]
    }

    /// A gateway's own file: listener `web`, `[cluster]`, and `extra`.
    fn local_config(&self, id: &str, extra: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{id}.toml"));
        let text = format!(
            r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[runtime]
workers = 1

[log]
access = false

[cluster]
id = "{id}"
zookeeper = {{ hosts = ["{}"], path = "{}", session_timeout = "2s" }}
{extra}
"#,
            self.zk.hosts(),
            self.root
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    fn gateway(&self, local: &Path) -> Gateway {
        let config = Config::load(local).unwrap_or_else(|e| panic!("{e}"));
        Gateway::start(&config).unwrap_or_else(|e| panic!("gateway start: {e}"))
    }

    /// A fleet config routing `/` to `backend`, with `plugins` (TOML array items) from `plugin_dir`.
    fn fleet_config(&self, name: &str, backend: std::net::SocketAddr, plugin_dir: Option<&Path>, plugins: &str) -> PathBuf {
        self.fleet_config_with(name, backend, plugin_dir, plugins, "")
    }

    /// `fleet_config` with `upstream_extra` (TOML keys) added to the upstream.
    fn fleet_config_with(&self, name: &str, backend: std::net::SocketAddr, plugin_dir: Option<&Path>, plugins: &str, upstream_extra: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        let plugins_table = plugin_dir.map(|d| format!("[plugins]\ndir = \"{}\"\n", d.display())).unwrap_or_default();
        let text = format!(
            r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
name = "main"
listener = "web"
upstream = "up"
plugins = [ {plugins} ]

[[upstream]]
name = "up"
targets = [ {{ address = "{backend}" }} ]
{upstream_extra}

{plugins_table}
"#
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// `wasmgate config push`: `check`, then upload.
    async fn push(&self, file: &Path) -> Result<String, String> {
        let checked = wasmgate::cli::check_config(file)?;
        let pushed = wasmgate::cluster::push(&self.hosts(), &self.root, file, &checked.config, &checked.plugins).await?;
        Ok(pushed.id)
    }

    async fn status(&self) -> wasmgate::cluster::FleetStatus {
        wasmgate::cluster::status(&self.hosts(), &self.root).await.unwrap_or_else(|e| panic!("fleet status: {e}"))
    }

    /// The version nodes under `<root>/versions`.
    async fn versions(&self) -> Vec<String> {
        let client = zookeeper_client::Client::connect(&self.zk.hosts()).await.unwrap_or_else(|e| panic!("zk: {e}"));
        match client.list_children(&format!("{}/versions", self.root)).await {
            Ok(mut children) => {
                children.sort();
                children
            }
            Err(zookeeper_client::Error::NoNode) => Vec::new(),
            Err(e) => panic!("list versions: {e}"),
        }
    }
}

/// The Wasm file at `path` with a custom section of `extra` bytes appended
/// (custom sections may come anywhere; the component is unchanged).
fn padded(path: &Path, extra: usize) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = b"fleet-test-padding";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.resize(payload.len() + extra, 0x5a);
    bytes.push(0);
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}

/// Which backend answers `/` on the gateway, or the status when none does.
async fn served_by(gateway: &Gateway) -> String {
    let addr = gateway.local_addr("web").unwrap_or_else(|| panic!("no listener web"));
    let reply = get(addr, "/").await;
    match reply.status.as_u16() {
        200 => reply.seen().backend,
        status => format!("status {status}"),
    }
}

/// Polls until every gateway is served by `backend`; returns how long that took.
async fn converge(gateways: &[&Gateway], backend: &str, deadline: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let mut all = true;
        let mut seen = Vec::new();
        for gateway in gateways {
            let by = served_by(gateway).await;
            all &= by == backend;
            seen.push(by);
        }
        if all {
            return Ok(started.elapsed());
        }
        if started.elapsed() > deadline {
            return Err(format!("not all on `{backend}` after {deadline:?}: {seen:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn member(fleet: &Fleet, id: &str, until: impl Fn(&wasmgate::cluster::Member) -> bool) -> wasmgate::cluster::Member {
    let started = Instant::now();
    loop {
        // A ZooKeeper just started again may turn the first sessions away.
        let status = wasmgate::cluster::status(&fleet.hosts(), &fleet.root).await;
        let table = match &status {
            Ok(status) => {
                if let Some(m) = status.members.iter().find(|m| m.id == id && until(m)) {
                    return m.clone();
                }
                status.table()
            }
            Err(e) => e.clone(),
        };
        assert!(started.elapsed() < Duration::from_secs(15), "member {id} never got there:\n{table}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_reaches_every_gateway_and_one_that_cannot_apply_it_says_why() {
    tokio::time::timeout(TEST_DEADLINE, async {
        let fleet = Fleet::start("/fleet-push").await;
        let one = Backend::start("one").await;
        let two = Backend::start("two").await;
        let three = Backend::start("three").await;
        let plugins = PluginDir::with(&[("header-adder", "header-adder")]);
        let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        // Gateway c caps plugin memory below what any Rust component starts with.
        let small = format!("[plugins]\ndir = \"{}\"\nmemory_limit_mb = 1\n", empty.path().display());
        let locals = [fleet.local_config("a", ""), fleet.local_config("b", ""), fleet.local_config("c", &small)];
        let gateways: Vec<Gateway> = locals.iter().map(|l| fleet.gateway(l)).collect();
        let all: Vec<&Gateway> = gateways.iter().collect();
        // No version yet: the local files have no routes. Every gateway is
        // following (its member node is up) before the first push.
        assert_eq!(served_by(&gateways[0]).await, "status 404");
        for id in ["a", "b", "c"] {
            let m = member(&fleet, id, |_| true).await;
            assert_eq!((m.version, m.source.as_str()), (None, "local"));
        }

        // A first version, no plugins: every gateway serves it within a second.
        let v1 = fleet.push(&fleet.fleet_config("v1", one.addr, None, "")).await.unwrap_or_else(|e| panic!("{e}"));
        let took = converge(&all, "one", CONVERGE).await.unwrap_or_else(|e| panic!("{e}"));
        eprintln!("v1 ({v1}) served by 3 gateways after {took:?}");

        // A second version moves the route: again within a second.
        let v2 = fleet.push(&fleet.fleet_config("v2", two.addr, None, "")).await.unwrap_or_else(|e| panic!("{e}"));
        let took = converge(&all, "two", CONVERGE).await.unwrap_or_else(|e| panic!("{e}"));
        eprintln!("v2 ({v2}) served by 3 gateways after {took:?}");
        for id in ["a", "b", "c"] {
            let m = member(&fleet, id, |m| m.version.as_deref() == Some(v2.as_str())).await;
            assert_eq!(m.source, "zookeeper");
            assert!(m.refused.is_none(), "{m:?}");
        }

        // A version with a plugin: c's own limits refuse it; a and b apply it.
        let with_plugin = r#"{ name = "header-adder", config = { response = { "x-fleet" = "v3" } } }"#;
        let v3 = fleet.push(&fleet.fleet_config("v3", three.addr, Some(plugins.path()), with_plugin)).await.unwrap_or_else(|e| panic!("{e}"));
        let took = converge(&all[..2], "three", Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{e}"));
        eprintln!("v3 ({v3}, with a plugin to compile) served by a and b after {took:?}");
        let a = get(gateways[0].local_addr("web").unwrap_or_else(|| panic!("web")), "/").await;
        assert_eq!(a.headers.get("x-fleet").map(|v| v.as_bytes()), Some(&b"v3"[..]));
        let c = member(&fleet, "c", |m| m.refused.is_some()).await;
        let refused = c.refused.clone().unwrap_or_else(|| panic!("refused"));
        assert_eq!(refused.version, v3);
        assert_eq!(c.version.as_deref(), Some(v2.as_str()), "c keeps the version it ran");
        assert!(refused.reason.contains("header-adder"), "reason: {}", refused.reason);
        assert_eq!(served_by(&gateways[2]).await, "two", "c still serves v2");
        let status = fleet.status().await;
        let table = status.table();
        eprintln!("{table}");
        assert_eq!(status.current.as_deref(), Some(v3.as_str()));
        assert!(table.contains(&v3) && table.contains("c "), "{table}");

        // Rollback to v1: every gateway (c too) serves it within a second.
        let back = wasmgate::cluster::rollback(&fleet.hosts(), &fleet.root, &v1).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.previous.as_deref(), Some(v3.as_str()));
        let took = converge(&all, "one", CONVERGE).await.unwrap_or_else(|e| panic!("{e}"));
        for gateway in &gateways {
            let reply = get(gateway.local_addr("web").unwrap_or_else(|| panic!("web")), "/").await;
            assert!(reply.headers.get("x-fleet").is_none(), "v1 has no plugin");
        }
        let c = member(&fleet, "c", |m| m.version.as_deref() == Some(v1.as_str())).await;
        assert!(c.refused.is_none(), "applying a version clears the refusal: {c:?}");
        eprintln!("rollback to v1 served by 3 gateways after {took:?}");
        // A version that does not exist is not pointed at.
        let missing = wasmgate::cluster::rollback(&fleet.hosts(), &fleet.root, "0123456789abcdef").await;
        assert!(missing.is_err());
        assert_eq!(fleet.status().await.current.as_deref(), Some(v1.as_str()));

        for gateway in gateways {
            gateway.stop().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("test took longer than {TEST_DEADLINE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_uploads_nothing_for_a_config_check_refuses_and_a_damaged_chunk_is_refused() {
    tokio::time::timeout(TEST_DEADLINE, async {
        let fleet = Fleet::start("/fleet-broken").await;
        let one = Backend::start("one").await;
        let good = fleet.push(&fleet.fleet_config("good", one.addr, None, "")).await.unwrap_or_else(|e| panic!("{e}"));
        let before = fleet.versions().await;
        assert_eq!(before, vec![good.clone()]);

        // Parses, but names an upstream that does not exist.
        let broken = fleet.dir.path().join("broken.toml");
        let text = std::fs::read_to_string(fleet.dir.path().join("good.toml")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&broken, text.replace("upstream = \"up\"", "upstream = \"nowhere\"")).unwrap_or_else(|e| panic!("{e}"));
        let refused = fleet.push(&broken).await.expect_err("a broken config is refused");
        assert!(refused.contains("unknown upstream `nowhere`"), "{refused}");
        // A route naming a plugin the folder does not have: refused by the plugin check.
        let no_plugin = fleet.fleet_config("no-plugin", one.addr, Some(fleet.dir.path()), r#"{ name = "absent" }"#);
        assert!(fleet.push(&no_plugin).await.is_err());

        assert_eq!(fleet.versions().await, before, "no version node was added");
        assert_eq!(fleet.status().await.current.as_deref(), Some(good.as_str()));

        // A chunk damaged in ZooKeeper: a gateway fetching the version refuses it.
        let client = zookeeper_client::Client::connect(&fleet.zk.hosts()).await.unwrap_or_else(|e| panic!("zk: {e}"));
        let (manifest, _) = client.get_data(&format!("{}/versions/{good}", fleet.root)).await.unwrap_or_else(|e| panic!("{e}"));
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap_or_else(|e| panic!("{e}"));
        let chunk = manifest["config"]["chunks"][0].as_str().unwrap_or_else(|| panic!("no chunk: {manifest}"));
        client.set_data(&format!("{}/blobs/{chunk}", fleet.root), b"[[listener]]", None).await.unwrap_or_else(|e| panic!("{e}"));
        let gateway = fleet.gateway(&fleet.local_config("x", ""));
        let m = member(&fleet, "x", |m| m.refused.is_some()).await;
        let reason = m.refused.map(|r| r.reason).unwrap_or_default();
        assert!(reason.contains("does not match its digest"), "{reason}");
        assert_eq!(m.version, None);
        assert_eq!(served_by(&gateway).await, "status 404");
        gateway.stop().await;
    })
    .await
    .unwrap_or_else(|_| panic!("test took longer than {TEST_DEADLINE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_zookeeper_gateways_keep_serving_and_a_restart_serves_the_cached_version() {
    tokio::time::timeout(TEST_DEADLINE, async {
        let mut fleet = Fleet::start("/fleet-outage").await;
        let one = Backend::start("one").await;
        // A plugin of 1.2 MB (a custom section of padding): more than ZooKeeper's
        // node limit, so it travels and is checked as three chunks.
        let plugins = PluginDir::with(&[]);
        plugins.write("header-adder", &padded(&wasmgate_plugin::test_support::test_plugin("header-adder"), 1_200_000));
        let with_plugin = r#"{ name = "header-adder", config = { response = { "x-fleet" = "cached" } } }"#;
        let locals = [fleet.local_config("a", ""), fleet.local_config("b", "")];
        let mut gateways: Vec<Gateway> = locals.iter().map(|l| fleet.gateway(l)).collect();
        let v1 = fleet.push(&fleet.fleet_config("v1", one.addr, Some(plugins.path()), with_plugin)).await.unwrap_or_else(|e| panic!("{e}"));
        let all: Vec<&Gateway> = gateways.iter().collect();
        converge(&all, "one", Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{e}"));
        member(&fleet, "b", |m| m.version.as_deref() == Some(v1.as_str())).await;
        let manifest = fleet.dir.path().join(format!("b.fleet/versions/{v1}/manifest.json"));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display())))
                .unwrap_or_else(|e| panic!("manifest: {e}"));
        assert_eq!(manifest["plugins"]["header-adder"]["chunks"].as_array().map(Vec::len), Some(3));

        fleet.zk.stop();
        // Past the session timeout (2 s): sessions expire client-side, requests go on.
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            for gateway in &gateways {
                assert_eq!(served_by(gateway).await, "one");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Gateway b restarts while ZooKeeper is down: it serves its cached version, plugin included.
        let b = gateways.remove(1);
        b.stop().await;
        let b = fleet.gateway(&locals[1]);
        assert_eq!(served_by(&b).await, "one");
        let reply = get(b.local_addr("web").unwrap_or_else(|| panic!("web")), "/").await;
        assert_eq!(reply.headers.get("x-fleet").map(|v| v.as_bytes()), Some(&b"cached"[..]));

        // ZooKeeper back: b's member node is there again, on v1 (from the cache).
        fleet.zk.start_again().await;
        // (The node of b's first run, whose session ZooKeeper still keeps for a
        // moment after its restart, may show first: wait for the new one.)
        member(&fleet, "b", |m| m.version.as_deref() == Some(v1.as_str()) && m.source == "cache").await;
        member(&fleet, "a", |m| m.version.as_deref() == Some(v1.as_str())).await;

        b.stop().await;
        for gateway in gateways {
            gateway.stop().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("test took longer than {TEST_DEADLINE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_adding_health_checks_applies_live_and_a_restart_serves_it_from_the_cache() {
    tokio::time::timeout(TEST_DEADLINE, async {
        let fleet = Fleet::start("/fleet-restart").await;
        let one = Backend::start("one").await;
        let two = Backend::start("two").await;
        let local = fleet.local_config("a", "");
        let gateway = fleet.gateway(&local);
        member(&fleet, "a", |_| true).await;
        let v1 = fleet.push(&fleet.fleet_config("v1", one.addr, None, "")).await.unwrap_or_else(|e| panic!("{e}"));
        converge(&[&gateway], "one", CONVERGE).await.unwrap_or_else(|e| panic!("{e}"));
        let m = member(&fleet, "a", |m| m.version.as_deref() == Some(v1.as_str())).await;
        assert!(m.refused.is_none(), "{m:?}");

        // Health checks added to an upstream: applied live like any reload
        // (the control plane starts the new checker).
        let checked = r#"health_check = { kind = "tcp", interval = "1s" }"#;
        let v2 = fleet.push(&fleet.fleet_config_with("v2", two.addr, None, "", checked)).await.unwrap_or_else(|e| panic!("{e}"));
        converge(&[&gateway], "two", CONVERGE).await.unwrap_or_else(|e| panic!("{e}"));
        let m = member(&fleet, "a", |m| m.version.as_deref() == Some(v2.as_str())).await;
        assert!(m.refused.is_none(), "{m:?}");

        // A gateway that starts now reads current at start: it serves v2 at once.
        let fresh = fleet.gateway(&fleet.local_config("b", ""));
        assert_eq!(served_by(&fresh).await, "two");
        let m = member(&fleet, "b", |m| m.version.as_deref() == Some(v2.as_str())).await;
        assert_eq!(m.source, "zookeeper");

        // Restarted with ZooKeeper down, a starts on v2 from its cache.
        let mut fleet = fleet;
        fleet.zk.stop();
        gateway.stop().await;
        let gateway = fleet.gateway(&local);
        assert_eq!(served_by(&gateway).await, "two");
        fleet.zk.start_again().await;
        let m = member(&fleet, "a", |m| m.version.as_deref() == Some(v2.as_str()) && m.source == "cache").await;
        assert!(m.refused.is_none(), "{m:?}");
        gateway.stop().await;
        fresh.stop().await;
    })
    .await
    .unwrap_or_else(|_| panic!("test took longer than {TEST_DEADLINE:?}"));
}
