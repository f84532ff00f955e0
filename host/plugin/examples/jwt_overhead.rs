//! Added per-request latency of the standard `jwt-auth` plugin (HS256),
//! in-process: the median of one `Chain::on_request` (request phase) with
//! `jwt-auth`, next to the same with the `pass` test plugin and with no
//! plugin at all, over 50 000 requests each (after a warm-up). Twice: as
//! configured by default (the token's signature is verified once per
//! instance, then found in jwt-auth's cache; claims are checked every time)
//! and with `cache_size = 0` (the signature verified on every call). The
//! bar is ≤ 20 µs median.
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo run --release -p wasmgate-plugin --example jwt_overhead
//! ```

use std::time::{Duration, Instant};

use wasmgate_plugin::test_support::test_plugin;
use wasmgate_plugin::{
    Chain, OnError, PluginRuntime, RequestContext, RequestOutcome, RuntimeSettings,
};

const CALLS: usize = 50_000;
const WARM_UP: usize = 5_000;
const SECRET: &str = "wasmgate-bench-secret-0123456789";
/// `{"sub":"bench","iss":"bench","exp":4102444800}` signed with `SECRET`.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJzdWIiOiJiZW5jaCIsImlzcyI6ImJlbmNoIiwiZXhwIjo0MTAyNDQ0ODAwfQ.\
dzapPiN_ijnP7FFWwNOXvm_5YgGwLpDoNqYudQqstRk";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The median request-phase time through `chain` (None: no plugin).
fn measure(chain: Option<&Chain>, request: &http::request::Parts) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(CALLS);
    for i in 0..WARM_UP + CALLS {
        let mut parts = request.clone();
        let mut ctx = RequestContext::new("bench", "main");
        let t0 = Instant::now();
        if let Some(chain) = chain {
            match std::hint::black_box(chain.on_request(&mut parts, &mut ctx)) {
                RequestOutcome::Continue { .. } => {}
                RequestOutcome::Respond { response, .. } => {
                    return Err(format!("the plugin answered {}", response.status()))
                }
            }
        }
        let took = t0.elapsed();
        if i >= WARM_UP {
            samples.push(took);
        }
    }
    Ok(median(samples))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = PluginRuntime::new(RuntimeSettings::default())?;
    let jwt_config =
        format!(r#"{{"keys": [{{"alg": "HS256", "secret": "{SECRET}"}}], "issuers": ["bench"]}}"#);
    let jwt_plugin = runtime.load_file(&test_plugin("jwt-auth"))?;
    let jwt = Chain::new(vec![jwt_plugin.configure(&jwt_config, OnError::FailClosed)?]);
    let uncached_config = jwt_config.replace(r#""issuers""#, r#""cache_size": 0, "issuers""#);
    let uncached = Chain::new(vec![jwt_plugin.configure(&uncached_config, OnError::FailClosed)?]);
    let noop = Chain::new(vec![runtime
        .load_file(&test_plugin("pass"))?
        .configure("{}", OnError::FailClosed)?]);
    let (request, ()) = http::Request::builder()
        .method("GET")
        .uri("/api/v1/items?id=7")
        .header("host", "example.com")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("user-agent", "bench")
        .body(())?
        .into_parts();

    let none = measure(None, &request)?;
    let noop = measure(Some(&noop), &request)?;
    let jwt = measure(Some(&jwt), &request)?;
    let uncached = measure(Some(&uncached), &request)?;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("request phase, median over {CALLS} requests:");
    println!("  no plugin: {:.2} µs", us(none));
    println!("  pass:      {:.2} µs", us(noop));
    println!(
        "  jwt-auth:  {:.2} µs (token from the cache, claims checked, consumer header + scratch set)",
        us(jwt)
    );
    println!(
        "  jwt-auth:  {:.2} µs (cache_size = 0: HS256 verified on every call)",
        us(uncached)
    );
    println!(
        "jwt-auth adds {:.2} µs per request, {:.2} µs without its cache (bar: ≤ 20 µs)",
        us(jwt) - us(none),
        us(uncached) - us(none)
    );
    Ok(())
}
