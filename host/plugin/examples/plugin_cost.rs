//! What one request costs in a chain of plugins, in-process: the median time
//! of `Chain::on_request` and `Chain::on_response` over 50 000 requests (after
//! a warm-up), for the chain given on the command line, next to the same
//! request with no plugin. Each plugin is `name` or `name=<config JSON>`,
//! where `name` is one of the workspace's plugins (`rate-limit`, the test
//! plugins) or the path of a `.wasm` file.
//!
//! ```text
//! cargo run --release -p wasmgate-plugin --example plugin_cost -- \
//!     'header-adder={"request":{"x-bench":"1"}}' \
//!     'rate-limit={"rate":1e9,"burst":1000000000}' \
//!     'url-rewrite={"rules":[{"match":"^/bench(.*)","replace":"$1"}]}'
//! ```
//!
//! The request looks like wrk's (a `host` header, one path, no query) plus a
//! `token` query parameter that jwt-auth can be pointed at (`"query":"token"`).

use std::time::{Duration, Instant};

use wasmgate_plugin::test_support::test_plugin;
use wasmgate_plugin::{
    Chain, OnError, PluginRuntime, RequestContext, RequestOutcome, RuntimeSettings,
};

const CALLS: usize = 50_000;
const WARM_UP: usize = 5_000;
/// `{"sub":"bench","iss":"bench","exp":4102444800}` signed (HS256) with
/// `wasmgate-bench-secret-0123456789`, as in the benchmark.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJzdWIiOiJiZW5jaCIsImlzcyI6ImJlbmNoIiwiZXhwIjo0MTAyNDQ0ODAwfQ.\
dzapPiN_ijnP7FFWwNOXvm_5YgGwLpDoNqYudQqstRk";

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

/// Median µs of the request and the response phase through `chain`.
fn measure(chain: &Chain) -> Result<(f64, f64), String> {
    let (request, ()) = http::Request::builder()
        .method("GET")
        .uri(format!("/?token={TOKEN}"))
        .header("host", "127.0.0.1:8080")
        .body(())
        .map_err(|e| e.to_string())?
        .into_parts();
    let (response, ()) = http::Response::builder()
        .status(200)
        .header("content-length", "19")
        .header("content-type", "text/plain")
        .body(())
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut on_request = Vec::with_capacity(CALLS);
    let mut on_response = Vec::with_capacity(CALLS);
    for i in 0..WARM_UP + CALLS {
        let mut req = request.clone();
        let mut resp = response.clone();
        let mut ctx = RequestContext {
            client_ip: "127.0.0.1".parse().ok(),
            upstream: Some("up".into()),
            ..RequestContext::new("bench", "main")
        };
        let t0 = Instant::now();
        let ran = match std::hint::black_box(chain.on_request(&mut req, &mut ctx)) {
            RequestOutcome::Continue { ran } => ran,
            RequestOutcome::Respond { response, .. } => {
                return Err(format!("the chain answered {}", response.status()))
            }
        };
        let t1 = Instant::now();
        std::hint::black_box(chain.on_response(ran, &mut resp, &mut ctx));
        let t2 = Instant::now();
        if i >= WARM_UP {
            on_request.push(t1 - t0);
            on_response.push(t2 - t1);
        }
    }
    Ok((median(on_request), median(on_response)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Under valgrind the pooling allocator cannot reserve its default
    // address space: `PLUGIN_COST_INSTANCES=8` keeps it small.
    let mut settings = RuntimeSettings::default();
    if let Some(n) = std::env::var("PLUGIN_COST_INSTANCES").ok().and_then(|n| n.parse().ok()) {
        settings.max_instances = n;
    }
    let runtime = PluginRuntime::new(settings)?;
    let mut plugins = Vec::new();
    for arg in std::env::args().skip(1) {
        let (name, config) = arg.split_once('=').unwrap_or((&arg, "{}"));
        let path = match name.ends_with(".wasm") {
            true => std::path::PathBuf::from(name),
            false => test_plugin(name),
        };
        let plugin = runtime.load_file(&path)?;
        plugins.push(plugin.configure(config, OnError::FailClosed)?);
    }
    let names: Vec<String> = plugins.iter().map(|p| p.name().to_owned()).collect();
    let none = match std::env::var_os("PLUGIN_COST_SKIP_BASELINE") {
        Some(_) => (0.0, 0.0),
        None => measure(&Chain::default())?,
    };
    let chain = measure(&Chain::new(plugins))?;
    println!("median over {CALLS} requests, µs   on_request  on_response  total");
    println!("no plugin                        {:>10.2}  {:>11.2}  {:>5.2}", none.0, none.1, none.0 + none.1);
    println!(
        "{:<32} {:>10.2}  {:>11.2}  {:>5.2}",
        names.join(" + "),
        chain.0,
        chain.1,
        chain.0 + chain.1
    );
    Ok(())
}
