//! Listeners a reload adds, removes and moves, and the admin listener rebound,
//! under load: no request fails, and every connection the gateway accepted is
//! either served or closed between requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use wasmgate::{Config, Gateway};
use wasmgate_tests::{get, wait_until, Backend};

/// A gateway with listeners `web` (stays), `moving` (at `moving`), and
/// `extra` when asked (first: the others' indexes move when it comes and
/// goes), all routed to `backend`; `web_limits`: its limits line.
fn config(backend: SocketAddr, moving: &str, extra: bool, admin: &str, web_limits: &str) -> Config {
    let text = config_text(backend, moving, extra, admin, web_limits);
    Config::parse(&text, "t.toml".as_ref()).unwrap_or_else(|e| panic!("{e}"))
}

fn config_text(backend: SocketAddr, moving: &str, extra: bool, admin: &str, web_limits: &str) -> String {
    let extra = match extra {
        true => "[[listener]]\nname = \"extra\"\naddress = \"127.0.0.1:0\"\n[[route]]\nname = \"extra\"\nlistener = \"extra\"\nupstream = \"up\"\n",
        false => "",
    };
    format!(
        r#"
{extra}
[[listener]]
name = "web"
address = "127.0.0.1:0"
{web_limits}
[[listener]]
name = "moving"
address = "{moving}"
[[route]]
name = "web"
listener = "web"
upstream = "up"
[[route]]
name = "moving"
listener = "moving"
upstream = "up"
[[upstream]]
name = "up"
targets = [{{ address = "{backend}" }}]
[runtime]
workers = 2
drain_timeout = "5s"
[log]
access = false
[admin]
address = "{admin}"
"#
    )
}

/// What the load clients saw.
#[derive(Default)]
struct Tally {
    /// Requests answered 200 in full.
    ok: AtomicU64,
    /// Connections the server closed between two requests (nothing of an
    /// answer read): the client sends its request again on a new one.
    closed_between: AtomicU64,
    /// Connections refused (a listener not, or no longer, at that address).
    refused: AtomicU64,
    /// Anything else: a status other than 200, an answer cut short, a reset mid-answer.
    failed: Mutex<Vec<String>>,
}

enum Exchange {
    Ok,
    /// Closed before a byte of the answer.
    Closed,
    Failed(String),
}

/// Sends one GET on `stream` and reads the whole answer.
async fn exchange(stream: &mut BufReader<TcpStream>, close: bool) -> Exchange {
    let request = format!("GET /x HTTP/1.1\r\nhost: t\r\n{}\r\n", if close { "connection: close\r\n" } else { "" });
    if stream.get_mut().write_all(request.as_bytes()).await.is_err() {
        return Exchange::Closed;
    }
    let mut line = String::new();
    match stream.read_line(&mut line).await {
        Ok(0) => return Exchange::Closed,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Exchange::Closed,
        Err(e) => return Exchange::Failed(format!("status line: {e}")),
        Ok(_) => {}
    }
    if !line.starts_with("HTTP/1.1 200") {
        return Exchange::Failed(format!("status: {}", line.trim_end()));
    }
    let mut length = None;
    loop {
        let mut header = String::new();
        match stream.read_line(&mut header).await {
            Ok(0) | Err(_) => return Exchange::Failed("head cut short".into()),
            Ok(_) => {}
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let Some(length) = length else { return Exchange::Failed("no content-length".into()) };
    let mut body = vec![0; length];
    match stream.read_exact(&mut body).await {
        Ok(_) => Exchange::Ok,
        Err(e) => Exchange::Failed(format!("body cut short: {e}")),
    }
}

/// Sends GETs to wherever `target` says the listener is now, on keep-alive
/// connections or a new connection each, until `stop` (or `MAX_REQUESTS`).
async fn client(target: impl Fn() -> Option<SocketAddr>, keep_alive: bool, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    const MAX_REQUESTS: u64 = 1_000_000;
    let requests = MAX_REQUESTS;
    let mut done = 0;
    let mut attempts = 0;
    while done < requests && attempts < requests * 2 && !stop.load(Ordering::Relaxed) {
        attempts += 1;
        let Some(addr) = target() else { break };
        let Ok(stream) = TcpStream::connect(addr).await else {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let mut stream = BufReader::new(stream);
        loop {
            match exchange(&mut stream, !keep_alive).await {
                Exchange::Ok => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    done += 1;
                    if !keep_alive || done >= requests || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Exchange::Closed => {
                    tally.closed_between.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Exchange::Failed(why) => {
                    tally.failed.lock().unwrap().push(format!("{addr}: {why}"));
                    done += 1;
                    break;
                }
            }
        }
    }
}

fn reload(gw: &Gateway, config: Config) {
    tokio::task::block_in_place(|| gw.reload(Some(config))).unwrap_or_else(|e| panic!("reload: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listeners_added_removed_and_moved_under_load_fail_no_request() {
    let backend = Backend::start("b").await;
    let admin = "127.0.0.1:0";
    let gw = Arc::new(Gateway::start(&config(backend.addr, "127.0.0.1:0", false, admin, "")).unwrap());
    let tally = Arc::new(Tally::default());
    let address = |name: &'static str| {
        let gw = gw.clone();
        move || gw.local_addr(name)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for keep_alive in [true, true, false] {
        clients.push(tokio::spawn(client(address("web"), keep_alive, stop.clone(), tally.clone())));
    }
    for keep_alive in [true, false] {
        clients.push(tokio::spawn(client(address("moving"), keep_alive, stop.clone(), tally.clone())));
    }
    backend.wait_hits(50).await;

    // Added: it serves at once.
    reload(&gw, config(backend.addr, "127.0.0.1:0", true, admin, ""));
    let extra = gw.local_addr("extra").expect("the added listener is bound");
    assert_eq!(get(extra, "/x").await.status, 200);
    let extra_client = tokio::spawn(client(address("extra"), true, stop.clone(), tally.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Moved: the new address serves; the old one stops accepting.
    let old = gw.local_addr("moving").unwrap();
    reload(&gw, config(backend.addr, "127.0.0.2:0", true, admin, ""));
    let new = gw.local_addr("moving").unwrap();
    assert_ne!(old, new);
    assert_eq!(new.ip().to_string(), "127.0.0.2");
    assert_eq!(get(new, "/x").await.status, 200);
    let closed = wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(old).is_err()).await;
    assert!(closed.is_some(), "the old address still accepts");

    // Removed: it stops accepting, its keep-alive client's connection closes between requests.
    reload(&gw, config(backend.addr, "127.0.0.2:0", false, admin, ""));
    assert_eq!(gw.local_addr("extra"), None);
    let closed = wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(extra).is_err()).await;
    assert!(closed.is_some(), "the removed listener still accepts");
    // Its client ends once its listener is gone from the gateway's list.
    tokio::time::timeout(Duration::from_secs(10), extra_client).await.expect("the extra client ends").unwrap();

    // 20 reloads in all: the web listener's limits change back and forth.
    for i in 0..17 {
        let limits = if i % 2 == 0 { "limits = { max_connections = 500, idle_timeout = \"20s\" }" } else { "" };
        reload(&gw, config(backend.addr, "127.0.0.2:0", false, admin, limits));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client).await.expect("clients finish").unwrap();
    }
    let failed = tally.failed.lock().unwrap().clone();
    let ok = tally.ok.load(Ordering::Relaxed);
    eprintln!(
        "live listeners: {ok} requests served, {} failed, {} connections closed between requests, {} connects refused",
        failed.len(),
        tally.closed_between.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
    );
    assert!(failed.is_empty(), "{} failed: {:?}", failed.len(), &failed[..failed.len().min(10)]);
    assert!(ok >= 1000, "{ok} served");
    match Arc::try_unwrap(gw) {
        Ok(gw) => gw.stop().await,
        Err(_) => panic!("a client still holds the gateway"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_failure_refuses_the_reload_and_changes_nothing() {
    let backend = Backend::start("b").await;
    let gw = Gateway::start(&config(backend.addr, "127.0.0.1:0", false, "127.0.0.1:0", "")).unwrap();
    let (web, moving) = (gw.local_addr("web").unwrap(), gw.local_addr("moving").unwrap());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap();

    // A listener moved onto the taken port.
    let error = tokio::task::block_in_place(|| gw.reload(Some(config(backend.addr, &port.to_string(), false, "127.0.0.1:0", ""))))
        .expect_err("the port is taken");
    let message = error.to_string();
    assert!(message.starts_with("t.toml: "), "{message}");
    assert!(message.contains("listener `moving`") && message.contains(&port.to_string()), "{message}");
    // Added alongside: nothing of the reload is applied, not even what could be bound.
    let mut both = config(backend.addr, &port.to_string(), true, "127.0.0.1:0", "");
    both.log.level = "debug".into();
    assert!(tokio::task::block_in_place(|| gw.reload(Some(both))).is_err());
    assert_eq!(gw.local_addr("extra"), None);
    assert_eq!(gw.local_addr("moving"), Some(moving));
    assert_eq!(gw.local_addr("web"), Some(web));
    assert_eq!(get(moving, "/x").await.status, 200);
    assert_eq!(get(web, "/x").await.status, 200);
    // The admin API shows the refusal.
    let admin = gw.admin_addr().unwrap();
    let status = get(admin, "/status/config").await;
    assert!(status.text().contains("cannot listen on"), "{}", status.text());

    // Once the port is free, the same reload applies.
    drop(taken);
    tokio::task::block_in_place(|| gw.reload(Some(config(backend.addr, &port.to_string(), false, "127.0.0.1:0", ""))))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gw.local_addr("moving"), Some(port));
    assert_eq!(get(port, "/x").await.status, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_address_change_rebinds_it() {
    let backend = Backend::start("b").await;
    let gw = Gateway::start(&config(backend.addr, "127.0.0.1:0", false, "127.0.0.1:0", "")).unwrap();
    let old = gw.admin_addr().unwrap();
    assert_eq!(get(old, "/status/routes").await.status, 200);

    // Refused while the new address is taken; the old one serves on.
    let taken = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = taken.local_addr().unwrap();
    let error = tokio::task::block_in_place(|| gw.reload(Some(config(backend.addr, "127.0.0.1:0", false, &port.to_string(), ""))))
        .expect_err("the admin port is taken");
    assert!(error.to_string().contains("listener `admin`"), "{error}");
    assert_eq!(gw.admin_addr(), Some(old));
    assert_eq!(get(old, "/status/routes").await.status, 200);

    // Moved: the new address answers, the old one is closed.
    drop(taken);
    tokio::task::block_in_place(|| gw.reload(Some(config(backend.addr, "127.0.0.1:0", false, &port.to_string(), ""))))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gw.admin_addr(), Some(port));
    assert_eq!(get(port, "/status/routes").await.status, 200);
    let closed = wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(old).is_err()).await;
    assert!(closed.is_some(), "the old admin address still accepts");
    // And it lists the listeners where they are now.
    let routes = get(port, "/status/routes").await.text();
    assert!(routes.contains(&gw.local_addr("web").unwrap().to_string()), "{routes}");

    // New limits, same address: it serves on.
    let text = config_text(backend.addr, "127.0.0.1:0", false, &port.to_string(), "")
        .replace(&format!("address = \"{port}\"\n"), &format!("address = \"{port}\"\nlimits = {{ max_connections = 2 }}\n"));
    let limited = Config::parse(&text, "t.toml".as_ref()).unwrap();
    assert_eq!(limited.admin.as_ref().unwrap().limits.max_connections, 2);
    tokio::task::block_in_place(|| gw.reload(Some(limited))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gw.admin_addr(), Some(port));
    for _ in 0..5 {
        assert_eq!(get(port, "/status/routes").await.status, 200);
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_renamed_at_its_address_keeps_its_sockets() {
    let backend = Backend::start("b").await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let at = free.to_string();
    // One worker: its socket is bound without SO_REUSEPORT, so binding the
    // address again would fail.
    let text = config_text(backend.addr, &at, false, "127.0.0.1:0", "").replace("workers = 2", "workers = 1");
    let gw = Gateway::start(&Config::parse(&text, "t.toml".as_ref()).unwrap()).unwrap();
    assert_eq!(get(free, "/x").await.status, 200);
    // `moving` becomes `renamed` at the same address: the sockets are handed over.
    let renamed = Config::parse(&text.replace("\"moving\"", "\"renamed\""), "t.toml".as_ref()).unwrap();
    tokio::task::block_in_place(|| gw.reload(Some(renamed))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gw.local_addr("moving"), None);
    assert_eq!(gw.local_addr("renamed"), Some(free));
    for _ in 0..20 {
        assert_eq!(get(free, "/x").await.status, 200);
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_limits_apply_to_new_connections_and_open_ones_keep_theirs() {
    let backend = Backend::start("b").await;
    let gw = Gateway::start(&config(backend.addr, "127.0.0.1:0", false, "127.0.0.1:0", "")).unwrap();
    let web = gw.local_addr("web").unwrap();
    let post = |body: usize| format!("POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: {body}\r\n\r\n{}", "a".repeat(body));
    let mut before = BufReader::new(TcpStream::connect(web).await.unwrap());
    before.get_mut().write_all(post(2000).as_bytes()).await.unwrap();
    assert_eq!(status(&mut before).await, "200");

    reload(&gw, config(backend.addr, "127.0.0.1:0", false, "127.0.0.1:0", "limits = { max_body_bytes = 1000 }"));
    // A new connection gets the new limit.
    let mut after = BufReader::new(TcpStream::connect(web).await.unwrap());
    after.get_mut().write_all(post(2000).as_bytes()).await.unwrap();
    assert_eq!(status(&mut after).await, "413");
    // The one opened before keeps the limit it was accepted with.
    before.get_mut().write_all(post(2000).as_bytes()).await.unwrap();
    assert_eq!(status(&mut before).await, "200");
    gw.stop().await;
}

/// The status of the answer read from `stream` (its body read too).
async fn status(stream: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    let mut length = 0;
    loop {
        let mut header = String::new();
        stream.read_line(&mut header).await.unwrap();
        if header.trim_end().is_empty() {
            break;
        }
        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    line.split(' ').nth(1).unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_listener_stops_accepting_and_finishes_its_request_in_flight() {
    let backend = Backend::start("b").await;
    let gw = Gateway::start(&config(backend.addr, "127.0.0.1:0", true, "127.0.0.1:0", "")).unwrap();
    let extra = gw.local_addr("extra").unwrap();
    let in_flight = tokio::spawn(get(extra, "/hold"));
    backend.wait_hits(1).await;

    reload(&gw, config(backend.addr, "127.0.0.1:0", false, "127.0.0.1:0", ""));
    let closed = wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(extra).is_err()).await;
    assert!(closed.is_some(), "the removed listener still accepts");
    backend.release();
    let reply = tokio::time::timeout(Duration::from_secs(5), in_flight).await.expect("answered").unwrap();
    assert_eq!(reply.status, 200, "the request in flight was cut: {}", reply.text());
    gw.stop().await;
}
