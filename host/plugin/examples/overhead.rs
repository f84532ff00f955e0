//! Per-call overhead of a pass-through plugin, in-process: the median time of one
//! `Chain::on_request` and one `Chain::on_response` through the `pass` test
//! plugin, over 100 000 calls each (after a warm-up).
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo run --release -p wasmgate-plugin --example overhead
//! ```

use std::time::{Duration, Instant};

use wasmgate_plugin::test_support::test_plugin;
use wasmgate_plugin::{Chain, OnError, PluginRuntime, RequestContext, RuntimeSettings};

const CALLS: usize = 100_000;
const WARM_UP: usize = 10_000;

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = ((sorted.len() as f64 - 1.0) * p) as usize;
    sorted[at]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = PluginRuntime::new(RuntimeSettings::default())?;
    let started = Instant::now();
    let plugin = runtime.load_file(&test_plugin("pass"))?;
    println!("compile pass.wasm: {:?}", started.elapsed());
    let started = Instant::now();
    let configured = plugin.configure("{}", OnError::FailClosed)?;
    println!("configure (instantiate + init): {:?}", started.elapsed());
    let chain = Chain::new(vec![configured]);

    let (request, ()) = http::Request::builder()
        .method("GET")
        .uri("/api/v1/items?id=7")
        .header("host", "example.com")
        .body(())?
        .into_parts();
    let (response, ()) = http::Response::builder()
        .status(200)
        .header("content-length", "2")
        .body(())?
        .into_parts();
    let mut ctx = RequestContext::new("bench", "main");

    for _ in 0..WARM_UP {
        let mut parts = request.clone();
        std::hint::black_box(chain.on_request(&mut parts, &mut ctx));
    }
    let mut on_request = Vec::with_capacity(CALLS);
    let mut on_response = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let mut req = request.clone();
        let mut resp = response.clone();
        let t0 = Instant::now();
        std::hint::black_box(chain.on_request(&mut req, &mut ctx));
        let t1 = Instant::now();
        std::hint::black_box(chain.on_response(1, &mut resp, &mut ctx));
        let t2 = Instant::now();
        on_request.push(t1 - t0);
        on_response.push(t2 - t1);
    }
    for (name, samples) in [("on_request", on_request), ("on_response", on_response)] {
        println!(
            "{name}: median {:.2} µs, p99 {:.2} µs over {CALLS} calls (one header, pass-through plugin)",
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
        );
    }
    Ok(())
}
