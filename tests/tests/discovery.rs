//! ZooKeeper discovery against a real ZooKeeper: backends register themselves
//! with ephemeral nodes (the way `wasmgate register` does) and the gateway
//! follows them, through churn under load and through a ZooKeeper outage.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmgate::register::Registration;
use wasmgate_tests::zookeeper::ZooKeeper;
use wasmgate_tests::{gateway, get, rotation, wait_until, Backend};
use zookeeper_client as zk;

const PATH: &str = "/real_server";
const SESSION: Duration = Duration::from_secs(2);

fn config(zk: &ZooKeeper, discovery_extra: &str, upstream_extra: &str) -> String {
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
listener = "web"
upstream = "up"

[[upstream]]
name = "up"
balance = "round_robin"
discovery = {{ zookeeper = {{ hosts = ["{}"], path = "{PATH}", session_timeout = "2s"{discovery_extra} }} }}
{upstream_extra}

[admin]
address = "127.0.0.1:0"

[runtime]
workers = 2

[log]
access = false
"#,
        zk.hosts()
    )
}

/// A backend's registration, held by a task until `deregister` (or drop).
struct Registered {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Registered {
    fn start(zk: &ZooKeeper, address: SocketAddr) -> Registered {
        Registered::start_at(zk, PATH, address)
    }

    fn start_at(zk: &ZooKeeper, path: &str, address: SocketAddr) -> Registered {
        let registration = Registration {
            hosts: vec![zk.hosts()],
            path: path.into(),
            address: address.to_string(),
            weight: None,
            session_timeout: SESSION,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            registration
                .hold(async {
                    let _ = stopped.await;
                })
                .await
        });
        Registered { stop: Some(stop), task }
    }

    /// Deletes the node and closes the session, as a backend shutting down cleanly.
    async fn deregister(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Registers `address` the way a backend that then crashes would: the session
/// is detached and never closed, so its node lives until the session expires.
async fn register_then_crash(zk: &ZooKeeper, address: SocketAddr) {
    let client = zk::Client::connector()
        .with_session_timeout(SESSION)
        .with_detached()
        .connect(&zk.hosts())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.mkdir(PATH, &persistent).await.unwrap_or_else(|e| panic!("mkdir: {e}"));
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let node = format!("{PATH}/{address}");
    client.create(&node, address.to_string().as_bytes(), &ephemeral).await.unwrap_or_else(|e| panic!("create: {e}"));
}

async fn status(gw: &wasmgate::Gateway) -> serde_json::Value {
    let reply = get(gw.admin_addr().unwrap(), "/status/upstreams").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

/// Polls the gateway until `backend` answers a request; returns how long it took.
async fn routable(web: SocketAddr, backend: &str, deadline: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        let reply = get(web, "/").await;
        if reply.status == 200 && reply.seen().backend == backend {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_backends_come_and_go_with_their_sessions() {
    let zk = ZooKeeper::start().await;
    let a = Backend::start("A").await;
    let gw = gateway(&config(&zk, r#", on_empty = "unavailable""#, ""));
    let web = gw.local_addr("web").unwrap();
    wait_until(Duration::from_secs(10), || rotation(&gw, "up").is_empty()).await.unwrap();
    assert_eq!(get(web, "/").await.status, 503, "nothing registered yet");

    let registered = Registered::start(&zk, a.addr);
    let took = routable(web, "A", Duration::from_secs(2)).await;
    assert!(took.is_some(), "a registered backend must be routable within 2 s");
    let up = &status(&gw).await["upstreams"][0];
    assert_eq!(up["discovery"]["connected"], true, "{up}");
    assert_eq!(up["targets"][0]["address"], a.addr.to_string(), "{up}");

    // A clean shutdown deletes the node: the target leaves at once.
    registered.deregister().await;
    let gone = wait_until(SESSION + Duration::from_secs(2), || rotation(&gw, "up").is_empty()).await;
    assert!(gone.is_some(), "a deregistered backend must leave the rotation");
    assert_eq!(get(web, "/").await.status, 503);

    // A crash leaves the node until the session expires.
    let b = Backend::start("B").await;
    register_then_crash(&zk, b.addr).await;
    assert!(routable(web, "B", Duration::from_secs(2)).await.is_some());
    let crashed = Instant::now();
    let gone = wait_until(SESSION + Duration::from_secs(3), || rotation(&gw, "up").is_empty()).await;
    assert!(gone.is_some(), "the node of an expired session must vanish within session timeout + 2 s");
    assert!(crashed.elapsed() <= SESSION * 2 + Duration::from_secs(2), "took {:?}", crashed.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_under_a_steady_request_loop_fails_nothing() {
    let zk = ZooKeeper::start().await;
    let a = Backend::start("A").await;
    let b = Backend::start("B").await;
    let gw = gateway(&config(&zk, "", ""));
    let web = gw.local_addr("web").unwrap();
    let _ra = Registered::start(&zk, a.addr);
    let _rb = Registered::start(&zk, b.addr);
    wait_until(Duration::from_secs(5), || rotation(&gw, "up").len() == 2).await.unwrap();

    // Two clients, each one request after another, for as long as the churn lasts.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) && outcomes.len() < 200_000 {
                    let reply = get(web, "/").await;
                    outcomes.push((reply.status.as_u16(), reply.text()));
                }
                outcomes
            })
        })
        .collect();

    // Backends join and leave cleanly, one after another.
    for round in 0..3 {
        let c = Backend::start(&format!("C{round}")).await;
        let registered = Registered::start(&zk, c.addr);
        wait_until(Duration::from_secs(2), || rotation(&gw, "up").contains(&c.addr)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), c.wait_hits(5)).await.expect("the new backend gets traffic");
        registered.deregister().await;
        wait_until(Duration::from_secs(2), || !rotation(&gw, "up").contains(&c.addr)).await.unwrap();
        drop(c);
    }
    // One is killed without deregistering: its node stays, connects to it are
    // refused and those requests are retried on another target.
    let d = Backend::start("D").await;
    let dead = d.addr;
    let registered_d = Registered::start(&zk, dead);
    wait_until(Duration::from_secs(2), || rotation(&gw, "up").contains(&dead)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), d.wait_hits(5)).await.expect("D gets traffic");
    drop(d);
    let served_while_dead = a.hits() + b.hits();
    tokio::time::timeout(Duration::from_secs(5), a.wait_hits(served_while_dead / 2 + 20)).await.expect("traffic goes on");
    assert!(rotation(&gw, "up").contains(&dead), "the dead backend is still registered");
    registered_d.deregister().await;

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut failures = Vec::new();
    for client in clients {
        for (status, body) in client.await.unwrap() {
            total += 1;
            if status != 200 {
                failures.push((status, body));
            }
        }
    }
    assert!(total > 100, "the loop ran: {total} requests");
    // Only a request that was inside D at the moment it died may fail (one per client).
    assert!(failures.len() <= 2, "{} of {total} failed: {failures:?}", failures.len());
    for (status, body) in &failures {
        assert!(*status == 502 && body.contains(&dead.to_string()), "unexpected failure {status}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_outage_keeps_the_last_set_and_a_change_made_meanwhile_is_picked_up() {
    let mut zk = ZooKeeper::start().await;
    let a = Backend::start("A").await;
    let b = Backend::start("B").await;
    let c = Backend::start("C").await;
    let gw = gateway(&config(&zk, "", ""));
    let web = gw.local_addr("web").unwrap();
    let ra = Registered::start(&zk, a.addr);
    let _rb = Registered::start(&zk, b.addr);
    wait_until(Duration::from_secs(5), || rotation(&gw, "up").len() == 2).await.unwrap();

    zk.stop();
    let admin = gw.admin_addr().unwrap();
    let mut noticed = false;
    for _ in 0..500 {
        let reply = get(admin, "/status/upstreams").await;
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        if v["upstreams"][0]["discovery"]["connected"] == false {
            noticed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(noticed, "the status page shows ZooKeeper down");

    // While ZooKeeper is down: A goes away (its node will expire once ZooKeeper
    // is back) and C wants to join. Traffic keeps going to A and B meanwhile.
    drop(ra);
    let rc = Registered::start(&zk, c.addr);
    let (hits_a, hits_b) = (a.hits(), b.hits());
    let until = Instant::now() + SESSION * 2;
    let mut served = 0;
    while Instant::now() < until {
        assert_eq!(get(web, "/").await.status, 200, "the last known set keeps serving");
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served > 10);
    assert!(a.hits() > hits_a && b.hits() > hits_b, "both known targets served");
    assert_eq!(rotation(&gw, "up"), sorted(vec![a.addr, b.addr]));

    zk.start_again().await;
    let expected = sorted(vec![b.addr, c.addr]);
    let resynced = wait_until(Duration::from_secs(20), || rotation(&gw, "up") == expected).await;
    assert!(resynced.is_some(), "after ZooKeeper returns: {:?}, expected {expected:?}", rotation(&gw, "up"));
    assert_eq!(status(&gw).await["upstreams"][0]["discovery"]["connected"], true);
    assert!(routable(web, "C", Duration::from_secs(2)).await.is_some());
    drop(rc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_health_checks_a_discovered_target_joins_after_its_first_pass() {
    let zk = ZooKeeper::start().await;
    let a = Backend::start("A").await;
    // A long interval: only the immediate probe of a new target can let it in.
    let gw = gateway(&config(&zk, "", r#"health_check = { kind = "http", path = "/healthz", interval = "30s", timeout = "1s" }"#));
    let web = gw.local_addr("web").unwrap();
    let hits_before = a.hits();
    let _ra = Registered::start(&zk, a.addr);
    assert!(routable(web, "A", Duration::from_secs(2)).await.is_some());
    assert!(a.hits() >= hits_before + 2, "a health probe reached A before the first request");
    let target = &status(&gw).await["upstreams"][0]["targets"][0];
    assert_eq!(target["health"], "healthy", "{target}");
}

fn sorted(mut v: Vec<SocketAddr>) -> Vec<SocketAddr> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rebuilding_a_discovered_upstream_keeps_its_targets_then_follows_a_new_source() {
    let zk = ZooKeeper::start().await;
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let _ra = Registered::start(&zk, a.addr);
    let _rb = Registered::start_at(&zk, "/other_server", b.addr);
    let gw = Arc::new(gateway(&config(&zk, "", "")));
    let web = gw.local_addr("web").unwrap();
    assert!(routable(web, "A", Duration::from_secs(5)).await.is_some());

    // Requests all along, on new connections; every one must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut sent, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) && sent < 20_000 {
                let reply = tokio::time::timeout(Duration::from_secs(5), get(web, "/")).await;
                match reply {
                    Ok(reply) if reply.status == 200 => {}
                    Ok(reply) => failed.push(reply.status.as_u16()),
                    Err(_) => failed.push(0),
                }
                sent += 1;
            }
            (sent, failed)
        })
    };
    let reconfigure = |path: &str, upstream_extra: &str| {
        let text = config(&zk, "", upstream_extra).replace(&format!("path = \"{PATH}\""), &format!("path = \"{path}\""));
        gw.reload(Some(wasmgate::Config::parse(&text, std::path::Path::new("live.toml")).unwrap()))
    };

    // A change that rebuilds the upstream (its timeouts) keeps the targets
    // discovered so far, and discovery goes on feeding the new upstream.
    reconfigure(PATH, r#"timeouts = { response = "7s" }"#).unwrap();
    assert_eq!(rotation(&gw, "up"), vec![a.addr], "no empty rotation after the reload");
    let c = Backend::start("C").await;
    let _rc = Registered::start(&zk, c.addr);
    let joined = wait_until(Duration::from_secs(5), || rotation(&gw, "up").len() == 2).await;
    assert!(joined.is_some(), "discovery feeds the rebuilt upstream: {:?}", rotation(&gw, "up"));

    // A new source: its targets replace the old ones once it answers.
    reconfigure("/other_server", r#"timeouts = { response = "7s" }"#).unwrap();
    let switched = wait_until(Duration::from_secs(5), || rotation(&gw, "up") == vec![b.addr]).await;
    assert!(switched.is_some(), "the new source's targets: {:?}", rotation(&gw, "up"));
    assert!(routable(web, "B", Duration::from_secs(2)).await.is_some());

    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = load.await.unwrap();
    assert!(sent > 10, "the load ran: {sent}");
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
}
