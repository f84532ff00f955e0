//! Wasm middleware through the real gateway: what plugins change, answer and
//! break, the phase order, the sandbox, and hot reload under load.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use wasmgate_tests::plugins::{plugin_config, PluginDir};
use wasmgate_tests::{gateway, get, request, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_changes_what_the_backend_sees_and_what_the_client_gets() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("header-adder", "header-adder")]);
    let config = plugin_config(
        backend.addr,
        dir.path(),
        r#"{ name = "header-adder", config = { request = { "x-added" = "by-plugin" }, response = { "x-seen" = "yes" } } }"#,
    );
    let gw = gateway(&config);
    let reply = get(gw.local_addr("web").unwrap(), "/p").await;
    assert_eq!(reply.headers["x-seen"], "yes");
    assert_eq!(reply.seen().header("x-added"), Some("by-plugin"));
}

/// `Connection` names headers of the client's hop only: a header a plugin
/// adds reaches the upstream even when the client names it there, and the
/// plugin never sees the client's hop-by-hop headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_strip_a_header_a_plugin_adds() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("header-adder", "header-adder")]);
    let config = plugin_config(
        backend.addr,
        dir.path(),
        r#"{ name = "header-adder", config = { request = { "x-consumer" = "verified" } } }"#,
    );
    let gw = gateway(&config);
    let headers = [("host", "x"), ("connection", "x-consumer, x-hop"), ("x-hop", "client's"), ("x-consumer", "forged")];
    let reply = request(gw.local_addr("web").unwrap(), Method::GET, "/c", &headers, Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.seen().header("x-consumer"), Some("verified"));
    assert_eq!(reply.seen().header("x-hop"), None);
}

/// The gateway's own error answer (the upstream cannot be reached) goes back
/// through the plugins that ran, like any response: a CORS or request-id
/// plugin's headers are on the 502 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_error_answers_go_through_the_response_phase() {
    let dir = PluginDir::with(&[("header-adder", "header-adder")]);
    let config = plugin_config(
        wasmgate_tests::closed_port(),
        dir.path(),
        r#"{ name = "header-adder", config = { response = { "x-seen" = "yes" } } }"#,
    );
    let gw = gateway(&config);
    let reply = get(gw.local_addr("web").unwrap(), "/down").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["x-seen"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answering_plugin_short_circuits_the_upstream() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("recorder", "recorder"), ("responder", "responder")]);
    let config = plugin_config(
        backend.addr,
        dir.path(),
        r#"{ name = "recorder", config = { name = "outer" } }, { name = "responder", config = { status = 418, body = "teapot" } }"#,
    );
    let gw = gateway(&config);
    let reply = get(gw.local_addr("web").unwrap(), "/x").await;
    assert_eq!(reply.status, 418);
    assert_eq!(reply.text(), "teapot");
    // The plugin before the answering one gets its response phase; the upstream nothing.
    assert_eq!(reply.headers["x-phases"], "req:outer,resp:outer");
    assert_eq!(backend.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_phase_runs_in_order_and_response_phase_in_reverse() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("recorder", "recorder")]);
    let config = plugin_config(
        backend.addr,
        dir.path(),
        r#"{ name = "recorder", config = { name = "a" } }, { name = "recorder", config = { name = "b" } }, { name = "recorder", config = { name = "c" } }"#,
    );
    let gw = gateway(&config);
    let reply = get(gw.local_addr("web").unwrap(), "/order").await;
    assert_eq!(reply.headers["x-phases"], "req:a,req:b,req:c,resp:c,resp:b,resp:a");
    assert_eq!(reply.seen().header("x-phases"), Some("req:a,req:b,req:c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_allocating_or_panicking_plugin_costs_only_its_request() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("faulty", "faulty")]);
    for mode in ["loop", "alloc", "panic", "trap"] {
        for on_error in ["fail-closed", "fail-open"] {
            let config = plugin_config(
                backend.addr,
                dir.path(),
                &format!(r#"{{ name = "faulty", config = {{ mode = "{mode}", when_header = "x-boom" }}, on_error = "{on_error}" }}"#),
            );
            let gw = gateway(&config);
            let addr = gw.local_addr("web").unwrap();
            let boom = request(addr, Method::GET, "/boom", &[("host", "x"), ("x-boom", "1")], Bytes::new()).await;
            let expected = if on_error == "fail-closed" { 500 } else { 200 };
            assert_eq!(boom.status, expected, "{mode} {on_error}: {}", boom.text());
            for i in 0..3 {
                let next = get(addr, &format!("/after/{i}")).await;
                assert_eq!(next.status, 200, "{mode} {on_error}: the next request failed: {}", next.text());
            }
        }
    }
}

/// `examples/01-write-a-plugin` as its README runs it: its own config, with
/// the template plugin dropped in as `hello.wasm`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_a_plugin_example_does_what_its_readme_says() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("hello-plugin", "hello")]);
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/01-write-a-plugin/wasmgate.toml");
    let config = std::fs::read_to_string(&example)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:2003", &backend.addr.to_string())
        .replace(r#"dir = "plugins""#, &format!("dir = \"{}\"", dir.path().display()))
        + "\n[log]\naccess = false\n";
    let gw = gateway(&config);
    let addr = gw.local_addr("web").unwrap();

    let hello = get(addr, "/hello").await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.text(), "hello from a wasm plugin");
    assert_eq!(backend.hits(), 0);

    let other = get(addr, "/anything").await;
    assert_eq!(other.status, 200);
    assert_eq!(other.seen().header("x-greeting"), Some("hello from a wasm plugin"));
    assert_eq!(other.headers["x-greeted-by"], "hello-plugin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_get_no_files_sockets_or_environment() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("sandbox-probe", "probe")]);
    let gw = gateway(&plugin_config(backend.addr, dir.path(), r#"{ name = "probe" }"#));
    let reply = get(gw.local_addr("web").unwrap(), "/").await;
    let report: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let report = report.as_object().unwrap();
    assert!(report.len() >= 4, "{report:?}");
    for (what, outcome) in report {
        assert!(outcome.as_str().unwrap_or_default().starts_with("denied"), "{what}: {outcome}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_plugin_or_a_rejected_config_is_refused_and_the_old_state_keeps_serving() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("header-adder", "tag")]);
    let good = plugin_config(backend.addr, dir.path(), r#"{ name = "tag", config = { response = { "x-tag" = "v1" } } }"#)
        .replace("[plugins]\n", "[plugins]\nwatch = false\n");
    let gw = gateway(&good);
    let addr = gw.local_addr("web").unwrap();
    assert_eq!(get(addr, "/").await.headers["x-tag"], "v1");

    // A config the plugin's init rejects: refused at its file, line and key.
    let rejected = good.replace(r#"response = { "x-tag" = "v1" }"#, r#"bogus = 1"#);
    let config = wasmgate::Config::parse(&rejected, std::path::Path::new("t.toml")).unwrap();
    let err = gw.reload(Some(config)).unwrap_err().to_string();
    assert!(err.starts_with(r#"t.toml:10: route "main" plugins[0].config.bogus: unknown key `bogus`"#), "{err}");
    assert_eq!(get(addr, "/").await.headers["x-tag"], "v1");

    // What needs a restart is refused naming the file too.
    let config = wasmgate::Config::parse(&good.replace("workers = 2", "workers = 1"), std::path::Path::new("t.toml")).unwrap();
    let err = gw.reload(Some(config)).unwrap_err().to_string();
    assert_eq!(err, "t.toml: runtime.workers changed (restart the gateway to apply it)");

    // A broken .wasm: refused, naming the file.
    dir.write("tag", b"\0asm but not really");
    let config = wasmgate::Config::parse(&good.replace("v1", "v2"), std::path::Path::new("t.toml")).unwrap();
    let err = gw.reload(Some(config)).unwrap_err().to_string();
    assert!(err.contains("tag.wasm"), "{err}");
    assert_eq!(get(addr, "/").await.headers["x-tag"], "v1");

    // Fixed: the next reload applies.
    dir.install("header-adder", "tag");
    let config = wasmgate::Config::parse(&good.replace("v1", "v2"), std::path::Path::new("t.toml")).unwrap();
    gw.reload(Some(config)).unwrap();
    assert_eq!(get(addr, "/").await.headers["x-tag"], "v2");
}

#[test]
fn a_config_the_plugin_refuses_is_shown_at_its_line_in_the_authors_terms() {
    let dir = PluginDir::with(&[("strict-config", "strict")]);
    let backend = "127.0.0.1:9".parse().unwrap();
    let refused = |plugin: &str| {
        let text = plugin_config(backend, dir.path(), plugin);
        let config = wasmgate::Config::parse(&text, std::path::Path::new("wasmgate.toml")).unwrap_or_else(|e| panic!("{e}"));
        wasmgate::Gateway::start(&config).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert_eq!(
        refused(r#"{ name = "strict", config = { limit = "two minutes" } }"#),
        r#"wasmgate.toml:10: route "main" plugins[0].config.limit: expected an integer, found "two minutes""#
    );
    assert_eq!(
        refused(r#"{ name = "strict", config = { limit = 0 } }"#),
        "wasmgate.toml:10: route \"main\" plugins[0].config: plugin `strict` refused it: limit must be at least 1"
    );
    assert_eq!(
        refused(r#"{ name = "strikt" }"#),
        format!(
            "wasmgate.toml:10: route \"main\" plugins[0].name: no plugin `strikt` in {}; available: strict; did you mean `strict`?",
            dir.path().display()
        )
    );
}

/// Which of the two plugin versions answered: the responder answers with an
/// empty body, the header adder lets the backend answer with JSON.
fn version_of(body: &[u8]) -> &'static str {
    if body.is_empty() {
        "responder"
    } else {
        "header-adder"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replacing_the_plugin_file_under_load_drops_no_request() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("header-adder", "swap")]);
    let gw = gateway(&plugin_config(backend.addr, dir.path(), r#"{ name = "swap" }"#));
    let addr = gw.local_addr("web").unwrap();
    assert_eq!(version_of(&get(addr, "/").await.body), "header-adder");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut seen) = (0usize, Vec::new(), std::collections::BTreeMap::new());
            let started = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && ok + failed.len() < 20_000 && started.elapsed() < Duration::from_secs(60) {
                let reply = get(addr, "/load").await;
                if reply.status == 200 {
                    ok += 1;
                    *seen.entry(version_of(&reply.body)).or_insert(0usize) += 1;
                } else {
                    failed.push(reply.status);
                }
            }
            (ok, failed, seen)
        }));
    }

    // 20 replacements, alternating versions; after each, wait until new requests see it.
    let mut switch_times = Vec::new();
    for i in 0..20 {
        let (plugin, version) = if i % 2 == 0 { ("responder", "responder") } else { ("header-adder", "header-adder") };
        dir.install(plugin, "swap");
        let written = Instant::now();
        loop {
            if version_of(&get(addr, "/probe").await.body) == version {
                break;
            }
            assert!(written.elapsed() < Duration::from_secs(15), "replacement {i} not picked up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        switch_times.push(written.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut total, mut versions) = (0, std::collections::BTreeMap::new());
    for client in clients {
        let (ok, failed, seen) = client.await.unwrap();
        assert!(failed.is_empty(), "failed requests during reloads: {failed:?}");
        total += ok;
        for (version, n) in seen {
            *versions.entry(version).or_insert(0) += n;
        }
    }
    assert!(total >= 1000, "only {total} requests ran");
    assert!(versions.len() == 2, "{versions:?}");
    switch_times.sort();
    let (median, slowest) = (switch_times[switch_times.len() / 2], switch_times[switch_times.len() - 1]);
    println!("{total} requests, versions {versions:?}, switch median {median:?}, slowest {slowest:?}");
    // Within 1 s of the file settling (200 ms) as a rule; a first-time compile on
    // a loaded CI machine may take longer once, which the 15 s bound above allows.
    assert!(median < Duration::from_millis(1200), "reloads took {switch_times:?}");
}
