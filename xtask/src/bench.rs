//! `cargo xtask bench`: wasmgate against nginx, as reverse proxies in front of
//! the same upstream, under the same load.
//!
//! # Setup
//! - **Upstream**: an nginx (1 worker, access log off, keepalive without a
//!   request limit) answering `GET /` with a fixed 20-byte body, so the upstream
//!   costs as little as possible and the same for every row.
//! - **Rows** (`scenarios.rs`): `direct` (wrk straight at the upstream: the
//!   ceiling), `nginx` (nginx as a keepalive reverse proxy: the reference) and
//!   `wasmgate` (1 worker, no plugins, no access log). Each proxy is started
//!   once, from its own config in a temp dir, and is ready when a real request
//!   through it returns the upstream's body (polled, not slept).
//! - **Load**: `wrk -t1 -c64 --latency`; requests/s, p50 and p99 and wrk's
//!   error counters are read from its report.
//!
//! # Why it is done this way
//! - **Pinning**: with two CPUs, wrk and the upstream share CPU 0 and the
//!   proxy under test has CPU 1 to itself (`taskset -c`). The proxy is then
//!   the only thing its core does, so "requests/s per proxy core" is what the
//!   number means, and the proxy neither steals cycles from the load generator
//!   nor competes with it for the scheduler. With one CPU nothing is pinned
//!   and the numbers only compare rows against each other.
//! - **Interleaving**: every repeat runs every row (direct, nginx, wasmgate,
//!   then again), each after a short unmeasured warm-up. Slow drift on a shared
//!   machine (other jobs, thermal or frequency changes) then hits all rows
//!   alike instead of biasing whichever row ran last.
//! - **Medians**: each column is the median over the repeats, which ignores
//!   one disturbed run where a mean would not; the raw per-repeat numbers are
//!   printed too, so a spread is visible.
//!
//! Every child is held by a guard that stops it (SIGTERM, then SIGKILL) when
//! dropped, on error paths too; the temp dir is removed the same way.

mod binary;
mod h2load;
mod host;
mod options;
mod process;
mod report;
mod scenarios;
mod soak;
mod wrk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use host::{Pinning, Tools};
use options::{Options, Parsed};
use process::{free_port, Proc, TempDir};
use report::RowResult;
use scenarios::{Env, Running, Scenario};
use h2load::H2loadRun;
use wrk::WrkRun;

/// A started row and its results so far.
struct Row {
    scenario: &'static Scenario,
    running: Running,
    result: RowResult,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = match options::parse(args)? {
        Parsed::Help => {
            println!("{}", options::USAGE.replace("{ROWS}", &scenarios::names().join(", ")));
            return Ok(());
        }
        Parsed::Run(opts) => opts,
    };
    let selected = scenarios::select(&opts.only)?;
    let tools = host::find_tools()?;
    if selected.iter().any(|s| s.load == scenarios::Load::H2load) && tools.h2load.is_none() {
        return Err("h2load is needed for the h2 rows: apt-get install nghttp2-client (or leave them out with --only)".into());
    }
    // Before our own build, so the load average shows what else is running.
    let machine = host::describe_machine();
    let wasmgate = wasmgate_binary(&opts, &selected)?;
    let pinning = host::pinning(&tools);

    // Declared first so it is dropped last, after every process using it.
    let temp = TempDir::new("wasmgate-bench", opts.keep_temp)?;
    let upstream_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let env = Env {
        temp: &temp,
        pinning: &pinning,
        nginx: &tools.nginx,
        wasmgate: &wasmgate,
        h2load: tools.h2load.as_deref(),
        upstream: upstream_addr,
    };
    let mut upstream = scenarios::start_upstream(&env)?;
    let mut rows = start_rows(&env, &selected)?;

    measure_all(&opts, &tools, &pinning, &mut upstream, &mut rows)?;
    let mut soaks = Vec::new();
    if let Some(requests) = opts.soak {
        let wrk = WrkRun { wrk: &tools.wrk, pinning: &pinning, connections: opts.connections };
        for row in rows.iter_mut().filter(|r| r.scenario.name.starts_with("wasmgate")) {
            if let Some(process) = row.running.process.as_mut() {
                soaks.push(soak::run(&wrk, row.scenario.name, &row.running.url, process, requests)?);
            }
        }
    }
    let notes = stop_all(&mut rows);
    upstream.stop();

    let results: Vec<RowResult> = rows.into_iter().map(|r| r.result).collect();
    print_report(&opts, &tools, &pinning, &machine, &results, &notes);
    if !soaks.is_empty() {
        println!();
        print!("{}", soak::table(&soaks));
    }
    Ok(())
}

/// Build wasmgate only when its row runs (or take `--wasmgate-bin`).
fn wasmgate_binary(opts: &Options, selected: &[&Scenario]) -> Result<PathBuf, String> {
    match &opts.wasmgate_bin {
        Some(path) => binary::given(path),
        None if selected.iter().any(|s| s.name.starts_with("wasmgate")) => binary::build_release(),
        None => Ok(PathBuf::new()),
    }
}

fn start_rows(env: &Env, selected: &[&'static Scenario]) -> Result<Vec<Row>, String> {
    let mut rows = Vec::with_capacity(selected.len());
    for &scenario in selected {
        eprintln!("bench: starting {} ({})", scenario.name, scenario.about);
        let running = (scenario.start)(env)?;
        let h2load = scenario.load == scenarios::Load::H2load;
        let result = RowResult { name: scenario.name, vs: scenario.vs, h2load, samples: Vec::new() };
        rows.push(Row { scenario, running, result });
    }
    Ok(rows)
}

/// The interleaved loop: for each repeat, every row once, warm-up then measure.
fn measure_all(
    opts: &Options,
    tools: &Tools,
    pinning: &Pinning,
    upstream: &mut Proc,
    rows: &mut [Row],
) -> Result<(), String> {
    let wrk = WrkRun { wrk: &tools.wrk, pinning, connections: opts.connections };
    // h2load: a quarter of the connections, 10 streams each.
    let h2load = tools.h2load.as_deref().map(|h2load| H2loadRun {
        h2load,
        pinning,
        connections: (opts.connections / 4).max(1),
        streams: 10,
    });
    for repeat in 1..=opts.repeats {
        for row in rows.iter_mut() {
            measure_row(&wrk, h2load.as_ref(), opts, row, repeat)?;
            upstream.check_alive()?;
        }
    }
    Ok(())
}

fn measure_row(wrk: &WrkRun, h2load: Option<&H2loadRun>, opts: &Options, row: &mut Row, repeat: u32) -> Result<(), String> {
    let url = &row.running.url;
    let sample = match row.scenario.load {
        scenarios::Load::Wrk => {
            wrk.warm(url, opts.warmup)?;
            wrk.measure(url, opts.duration)?
        }
        scenarios::Load::H2load => {
            let h2load = h2load.ok_or("h2load not found: apt-get install nghttp2-client")?;
            h2load.warm(url, opts.warmup)?;
            h2load.measure(url, opts.duration)?
        }
    };
    if let Some(process) = row.running.process.as_mut() {
        process.check_alive()?;
    }
    eprintln!(
        "bench: [{repeat}/{}] {:<12} {:>9} req/s  p50 {:>9}  p99 {:>9}  errors {}",
        opts.repeats,
        row.scenario.name,
        report::rate(sample.requests_per_sec),
        report::latency(sample.p50_us),
        report::latency(sample.p99_us),
        sample.errors.describe()
    );
    row.result.samples.push(sample);
    Ok(())
}

/// Stop each row's process and note start-up time, shutdown time and
/// anything it logged (warn level and above for wasmgate).
fn stop_all(rows: &mut [Row]) -> Vec<String> {
    let mut notes = Vec::new();
    for row in rows.iter_mut() {
        let name = row.scenario.name;
        if let Some(ready) = row.running.ready_in {
            notes.push(format!("{name}: first good answer {} after spawn", ms(ready)));
        }
        let Some(process) = row.running.process.as_mut() else { continue };
        let log = process.log_tail(20);
        match process.stop() {
            Some(took) => notes.push(format!("{name}: exited {} after SIGTERM", ms(took))),
            None => notes.push(format!("{name}: did not exit within 5 s of SIGTERM; killed")),
        }
        if log.trim() != "(empty)" {
            notes.push(format!("{name} wrote to stdout/stderr (last 20 lines):\n{log}"));
        }
    }
    notes
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn print_report(
    opts: &Options,
    tools: &Tools,
    pinning: &Pinning,
    machine: &str,
    results: &[RowResult],
    notes: &[String],
) {
    println!();
    println!("## wasmgate benchmark");
    println!();
    println!("- machine: {machine}");
    println!("- pinning: {}", pinning.describe());
    println!(
        "- load: wrk -t1 -c{} -d{}s --latency, {} s warm-up before each run, {} interleaved repeat(s), medians shown",
        opts.connections,
        opts.duration.as_secs(),
        opts.warmup.as_secs(),
        opts.repeats
    );
    println!(
        "- h2 rows: h2load -t1 -c{} -m10 -D{}s over TLS (ALPN h2), same warm-up and repeats",
        (opts.connections / 4).max(1),
        opts.duration.as_secs()
    );
    println!("- upstream and reference proxy: {}", host::nginx_version(&tools.nginx));
    println!();
    print!("{}", report::summary_table(results));
    if let Some(share) = report::share_of_direct(results) {
        println!();
        println!("{share}");
    }
    if let Some(cost) = report::plugin_cost(results) {
        println!();
        println!("{cost}");
    }
    println!();
    println!("Per repeat:");
    println!();
    print!("{}", report::raw_table(results));
    if !notes.is_empty() {
        println!();
        println!("Notes:");
        notes.iter().for_each(|n| println!("- {n}"));
    }
}
