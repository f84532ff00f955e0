//! `wasmgate plugin bench FILE.wasm [...]`: what a plugin, or a chain of
//! them, costs per request, in-process. The chain is built and called as a
//! route's chain in the gateway (same settings, call metrics on, this thread
//! a worker), on a request and an upstream response described by the flags;
//! each phase's calls are timed over many requests after a warm-up.

mod first_warning;
pub(super) mod samples;
mod scenario;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use wasmgate_plugin::metrics::{Outcome, Phase, PluginCalls};
use wasmgate_plugin::{Chain, RequestContext, RequestOutcome, ResponseOutcome};

use self::first_warning::FirstWarning;
use self::samples::Samples;
use self::scenario::Scenario;
use super::{load, say};

#[derive(Args)]
pub struct BenchArgs {
    /// The plugin to time, e.g. target/wasm32-wasip2/release/my_plugin.wasm.
    #[arg(value_name = "FILE.wasm")]
    file: PathBuf,
    /// Its config: JSON, TOML (`{ key = "value" }` or `key = "value"`
    /// lines), or `@FILE`. Default: `{}`.
    #[arg(long, value_name = "JSON|TOML")]
    config: Option<String>,
    /// Plugins that run after FILE on the route, in order: `a.wasm,b.wasm`,
    /// or one `--chain b.wasm=CONFIG` per plugin that needs a config.
    #[arg(long, value_name = "A.wasm,B.wasm")]
    chain: Vec<String>,
    /// The request's method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The request's path, with a query if you like (`/api?page=2`).
    #[arg(long, default_value = "/")]
    pub path: String,
    /// A request header, `name: value` (repeat for more; `host: localhost`
    /// unless you give one).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// The request's body, `TEXT` or `@FILE`. Plugins see the request's head
    /// only: the body shows as its `content-length`.
    #[arg(long, value_name = "TEXT|@FILE")]
    pub body: Option<String>,
    /// The status the upstream answers with (when no plugin answers).
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// A header of the upstream's response, `name: value` (repeat for more).
    #[arg(long = "response-header", value_name = "NAME:VALUE")]
    pub response_headers: Vec<String>,
    /// The upstream's body, `TEXT` or `@FILE`: what a plugin that asks to
    /// rewrite the body gets.
    #[arg(long, value_name = "TEXT|@FILE")]
    pub response_body: Option<String>,
    /// Requests timed.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    requests: u32,
    /// Requests run first, untimed, so instances, caches and branch
    /// predictors are warm.
    #[arg(long, default_value_t = 2_000)]
    warm_up: u32,
    /// Take the runtime settings (deadline, memory cap, instance reuse...)
    /// from this gateway config's [plugins] table instead of the defaults.
    #[arg(long, value_name = "FILE")]
    gateway: Option<PathBuf>,
}

/// How a request's plugin phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    /// The plugin at this position answered with this status.
    Answered(usize, u16),
    /// It went on to the upstream.
    Upstream,
}

/// The timed calls of one bench.
struct Timings {
    request: Samples,
    response: Samples,
    response_body: Samples,
    total: Samples,
    endings: BTreeMap<Ending, u64>,
}

pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<bool, String> {
    let scenario = Scenario::from_args(args)?;
    let runtime = load::runtime(&load::plugins_config(args.gateway.as_deref())?)?;
    let mut plugins = Vec::new();
    for (path, config) in std::iter::once((args.file.clone(), args.config.clone())).chain(chain_entries(&args.chain)) {
        let flag = match plugins.is_empty() {
            true => "--config".to_owned(),
            false => format!("--chain {}", path.display()),
        };
        let config = load::config_json(config.as_deref(), &flag)?;
        let plugin = load::configure(&runtime, &path, &config).map_err(|e| format!("{}: {e}", path.display()))?;
        plugins.push(plugin);
    }
    let names: Vec<String> = plugins.iter().map(|p| p.name().to_owned()).collect();
    say!(
        out,
        "chain:    {}",
        plugins.iter().map(|p| format!("{} ({})", p.name(), p.version())).collect::<Vec<_>>().join(" -> ")
    );
    say!(out, "request:  {}", scenario.describe());

    // Recorded as a gateway worker records them: this thread is worker 0.
    wasmgate_metrics::set_worker(0);
    let calls: Vec<Arc<PluginCalls>> = plugins.iter().map(|_| Arc::new(PluginCalls::new(1))).collect();
    let chain = Chain::new(plugins).with_metrics(calls.clone());
    let warning = FirstWarning::default();
    let timings = warning.capture(|| measure(&chain, &scenario, args.warm_up as usize, args.requests as usize));

    for (ending, count) in &timings.endings {
        let what = match *ending {
            // Answered only by failing (fail-closed): say so.
            Ending::Answered(at, status)
                if calls[at].calls(Phase::Request, Outcome::Answered) == 0 && failures(&calls[at]) > 0 =>
            {
                format!("failed in {}, answered {status} (fail-closed)", names[at])
            }
            Ending::Answered(at, status) => format!("answered {status} by {}", names[at]),
            Ending::Upstream => "went upstream".to_owned(),
        };
        say!(out, "outcome:  {what}: {count} of {} requests", args.requests);
    }
    say!(out);
    say!(out, "µs per request, {} requests after {} to warm up", args.requests, args.warm_up);
    say!(out, "{:<14} {:>9} {:>9}", "phase", "median", "p99");
    let mut rows = vec![("request", &timings.request), ("response", &timings.response)];
    if !timings.response_body.is_empty() {
        rows.push(("response body", &timings.response_body));
    }
    rows.push(("total", &timings.total));
    for (phase, samples) in rows {
        let (median, p99) = samples.median_p99();
        say!(out, "{phase:<14} {median:>9.2} {p99:>9.2}");
    }
    say!(out);
    say!(out, "calls per plugin, warm-up included");
    let mut failed = Vec::new();
    for (name, calls) in names.iter().zip(&calls) {
        let phases: Vec<String> = Phase::ALL
            .into_iter()
            .filter_map(|phase| {
                let counts: Vec<String> = Outcome::ALL
                    .into_iter()
                    .filter_map(|outcome| {
                        let n = calls.calls(phase, outcome);
                        (n > 0).then(|| format!("{} {n}", outcome.as_str().replace('_', " ")))
                    })
                    .collect();
                (!counts.is_empty()).then(|| format!("{}: {}", phase.as_str().replace('_', " "), counts.join(", ")))
            })
            .collect();
        let phases = match phases.is_empty() {
            true => "not called".to_owned(),
            false => phases.join("; "),
        };
        say!(out, "  {name:<20} {phases}");
        let failures = failures(calls);
        if failures > 0 {
            failed.push(format!("{name} failed {failures} calls"));
        }
    }
    if !failed.is_empty() {
        let first = warning.line().map(|line| format!(" (the first: {line})")).unwrap_or_default();
        return Err(format!("{}{first}: the figures above time failures", failed.join(", ")));
    }
    Ok(true)
}

/// The outcomes that are a plugin's failure.
const FAILURES: [Outcome; 5] =
    [Outcome::Trap, Outcome::Deadline, Outcome::Memory, Outcome::InvalidOutput, Outcome::StartFailed];

/// How many of a plugin's calls failed, in any phase.
fn failures(calls: &PluginCalls) -> u64 {
    Phase::ALL.into_iter().flat_map(|phase| FAILURES.into_iter().map(move |outcome| calls.calls(phase, outcome))).sum()
}

/// `--chain` values as (file, config): `a.wasm,b.wasm`, or `b.wasm=CONFIG`
/// (then the whole value is one plugin, as a config may hold commas).
pub(super) fn chain_entries(values: &[String]) -> Vec<(PathBuf, Option<String>)> {
    values
        .iter()
        .flat_map(|value| match value.split_once('=') {
            Some((path, config)) => vec![(PathBuf::from(path), Some(config.to_owned()))],
            None => value.split(',').filter(|p| !p.is_empty()).map(|p| (PathBuf::from(p), None)).collect(),
        })
        .collect()
}

/// Runs `warm_up + requests` requests through `chain` the way the proxy
/// does (request phase; the upstream's response, or the plugin's answer,
/// through the response phase; a body rewrite when one is asked for) and
/// times each phase of the last `requests`.
fn measure(chain: &Chain, scenario: &Scenario, warm_up: usize, requests: usize) -> Timings {
    let mut timings = Timings {
        request: Samples::with_capacity(requests),
        response: Samples::with_capacity(requests),
        response_body: Samples::default(),
        total: Samples::with_capacity(requests),
        endings: BTreeMap::new(),
    };
    for i in 0..warm_up + requests {
        let mut request = scenario.request.clone();
        let mut ctx = RequestContext::new("bench", "bench");
        ctx.client_ip = Some(std::net::Ipv4Addr::LOCALHOST.into());
        ctx.upstream = Some("bench".into());

        let started = Instant::now();
        let outcome = std::hint::black_box(chain.on_request(&mut request, &mut ctx));
        let request_took = started.elapsed();
        let (ran, mut head, body, ending) = match outcome {
            RequestOutcome::Continue { ran } => {
                (ran, scenario.response.clone(), scenario.response_body.clone(), Ending::Upstream)
            }
            RequestOutcome::Respond { ran, response } => {
                let (head, body) = response.into_parts();
                let status = head.status.as_u16();
                (ran, head, body, Ending::Answered(ran, status))
            }
        };
        let started = Instant::now();
        let outcome = std::hint::black_box(chain.on_response(ran, &mut head, &mut ctx));
        let response_took = started.elapsed();
        let body_took = match outcome {
            ResponseOutcome::RewriteBody(plan) => {
                let started = Instant::now();
                match ending == Ending::Upstream && body.len() > chain.max_body() {
                    true => drop(std::hint::black_box(chain.body_over_limit(&plan, &mut head, &mut ctx))),
                    false => drop(std::hint::black_box(chain.rewrite_body(&plan, &mut head, body, &mut ctx))),
                }
                Some(started.elapsed())
            }
            ResponseOutcome::Continue | ResponseOutcome::Replace(_) => None,
        };
        if i < warm_up {
            continue;
        }
        timings.request.push(request_took);
        timings.response.push(response_took);
        if let Some(took) = body_took {
            timings.response_body.push(took);
        }
        timings.total.push(request_took + response_took + body_took.unwrap_or_default());
        *timings.endings.entry(ending).or_default() += 1;
    }
    timings
}
