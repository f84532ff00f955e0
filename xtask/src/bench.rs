//! `cargo xtask bench`: wasmgate against nginx, as reverse proxies in front of
//! the same upstream, under the same load.
//!
//! # Setup
//! - **Upstream**: an nginx (1 worker, access log off, keepalive without a
//!   request limit) answering `GET /` with a fixed 20-byte body and `GET /16k`
//!   with a 16 KiB file, so the upstream costs as little as possible and the
//!   same for every row.
//! - **Rows** (`scenarios.rs`): `direct` (wrk straight at the upstream: the
//!   ceiling), `nginx` (nginx as a keepalive reverse proxy: the reference),
//!   `wasmgate` (1 worker, no plugins, no access log), the same with plugins,
//!   nginx with the same steps in Lua, the 16 KiB rows and other protocols.
//!   Each proxy is started once, from its own config in a temp dir, and is
//!   ready when a real request through it returns the upstream's body
//!   (polled, not slept).
//! - **Load**: `wrk -t1 -cN --latency` at each concurrency N (32, 256 and
//!   1024 by default); requests/s, p50 and p99 and wrk's error counters are
//!   read from its report. Each concurrency is a section of the report.
//!
//! # Why it is done this way
//! - **Pinning**: with two CPUs, wrk and the upstream share CPU 0 and the
//!   proxy under test has CPU 1 to itself (`taskset -c`). The proxy is then
//!   the only thing its core does, so "requests/s per proxy core" is what the
//!   number means, and the proxy neither steals cycles from the load generator
//!   nor competes with it for the scheduler. With one CPU nothing is pinned
//!   and the numbers only compare rows against each other.
//! - **Interleaving**: every repeat runs every row at every concurrency
//!   (direct, nginx, wasmgate, … at 32, then at 256, …, then again), each
//!   after a short unmeasured warm-up. Slow drift on a shared
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
use crate::prerequisites::{self, Program};
use report::{RowResult, Section};
use scenarios::{Env, Running, Scenario};
use h2load::H2loadRun;
use wrk::WrkRun;

/// A started row and its results so far.
struct Row {
    scenario: &'static Scenario,
    running: Running,
    /// One per concurrency, in `Options::connections` order.
    results: Vec<RowResult>,
}

/// What every run needs, by the name it has in PATH. taskset only matters
/// with two CPUs or more (it is in util-linux, which Debian always has).
const TOOLS: &[(&str, Program)] = &[
    ("nginx", Program { path: "/usr/sbin/nginx", package: "nginx" }),
    ("wrk", Program { path: "/usr/bin/wrk", package: "wrk" }),
    ("taskset", Program { path: "/usr/bin/taskset", package: "util-linux" }),
];

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = match options::parse(args)? {
        Parsed::Help => {
            println!("{}", options::USAGE.replace("{ROWS}", &scenarios::names().join(", ")));
            return Ok(());
        }
        Parsed::Run(opts) => opts,
    };
    let selected = scenarios::select(&opts.only)?;
    install_prerequisites(&selected)?;
    let tools = host::find_tools()?;
    let most = opts.connections.iter().copied().max().unwrap_or(1);
    // wrk, and each proxy for its clients and as many upstream connections.
    host::raise_open_files(u64::from(most) * 2 + 256)?;
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
        keepalive: most,
    };
    let mut upstream = scenarios::start_upstream(&env)?;
    let mut rows = start_rows(&env, &selected, &opts.connections)?;

    measure_all(&opts, &tools, &pinning, &mut upstream, &mut rows)?;
    let mut soaks = Vec::new();
    if let Some(requests) = opts.soak {
        let connections = opts.connections.first().copied().unwrap_or(most);
        let wrk = WrkRun { wrk: &tools.wrk, pinning: &pinning, connections };
        for row in rows.iter_mut().filter(|r| r.scenario.name.starts_with("wasmgate")) {
            if let Some(process) = row.running.process.as_mut() {
                soaks.push(soak::run(&wrk, row.scenario.name, &row.running.url, process, requests)?);
            }
        }
    }
    let notes = stop_all(&mut rows);
    upstream.stop();

    let sections = sections(&opts.connections, rows);
    print_report(&opts, &tools, &pinning, &machine, &sections, &notes);
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

/// Installs (as root on Debian) or names what the selected rows need: nginx,
/// wrk and taskset unless found in PATH, each row's modules and tools, like
/// `cargo xtask test` does for the test suite. The wasm32-wasip2 target is
/// added where the plugin rows build their plugins.
fn install_prerequisites(selected: &[&Scenario]) -> Result<(), String> {
    let mut needed: Vec<Program> = Vec::new();
    for (name, program) in TOOLS {
        let wanted = *name != "taskset" || host::allowed_cpus().len() >= 2;
        if wanted && host::find_program(name, &[program.path]).is_none() {
            needed.push(*program);
        }
    }
    for program in selected.iter().flat_map(|s| s.needs) {
        if !needed.iter().any(|p| p.path == program.path) {
            needed.push(*program);
        }
    }
    prerequisites::programs(&needed).map_err(|e| format!("{e}\n       (or leave out the rows that need it with --only)"))
}

fn start_rows(env: &Env, selected: &[&'static Scenario], connections: &[u32]) -> Result<Vec<Row>, String> {
    let mut rows = Vec::with_capacity(selected.len());
    for &scenario in selected {
        eprintln!("bench: starting {} ({})", scenario.name, scenario.about);
        let running = (scenario.start)(env)?;
        let h2load = scenario.load == scenarios::Load::H2load;
        let results = connections
            .iter()
            .map(|_| RowResult { name: scenario.name, vs: scenario.vs, base: scenario.base, h2load, samples: Vec::new() })
            .collect();
        rows.push(Row { scenario, running, results });
    }
    Ok(rows)
}

/// The results regrouped by concurrency: one section of the report each.
fn sections(connections: &[u32], rows: Vec<Row>) -> Vec<Section> {
    let mut sections: Vec<Section> =
        connections.iter().map(|&connections| Section { connections, rows: Vec::new() }).collect();
    for row in rows {
        for (section, result) in sections.iter_mut().zip(row.results) {
            section.rows.push(result);
        }
    }
    sections
}

/// The interleaved loop: for each repeat, at each concurrency, every row
/// once, warm-up then measure.
fn measure_all(
    opts: &Options,
    tools: &Tools,
    pinning: &Pinning,
    upstream: &mut Proc,
    rows: &mut [Row],
) -> Result<(), String> {
    for repeat in 1..=opts.repeats {
        for (index, &connections) in opts.connections.iter().enumerate() {
            let wrk = WrkRun { wrk: &tools.wrk, pinning, connections };
            // h2load: a quarter of the connections, 10 streams each.
            let h2load = tools.h2load.as_deref().map(|h2load| H2loadRun {
                h2load,
                pinning,
                connections: h2_connections(connections),
                streams: 10,
            });
            for row in rows.iter_mut() {
                measure_row(&wrk, h2load.as_ref(), opts, row, index, repeat)?;
                upstream.check_alive()?;
            }
        }
    }
    Ok(())
}

/// The h2 rows' connections at a concurrency: a quarter, 10 streams on each.
fn h2_connections(connections: u32) -> u32 {
    (connections / 4).max(1)
}

fn measure_row(
    wrk: &WrkRun,
    h2load: Option<&H2loadRun>,
    opts: &Options,
    row: &mut Row,
    index: usize,
    repeat: u32,
) -> Result<(), String> {
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
        "bench: [{repeat}/{}] c{:<5} {:<22} {:>9} req/s  p50 {:>9}  p99 {:>9}  errors {}",
        opts.repeats,
        wrk.connections,
        row.scenario.name,
        report::rate(sample.requests_per_sec),
        report::latency(sample.p50_us),
        report::latency(sample.p99_us),
        sample.errors.describe()
    );
    let result = row.results.get_mut(index).ok_or("bench: no result slot for this concurrency")?;
    result.samples.push(sample);
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
    sections: &[Section],
    notes: &[String],
) {
    let list = |f: fn(u32) -> u32| opts.connections.iter().map(|&c| f(c).to_string()).collect::<Vec<_>>().join(",");
    println!();
    println!("## wasmgate benchmark");
    println!();
    println!("- machine: {machine}");
    println!("- pinning: {}", pinning.describe());
    println!(
        "- load: wrk -t1 -c{{{}}} -d{}s --latency, {} s warm-up before each run, {} interleaved repeat(s), medians shown",
        list(|c| c),
        opts.duration.as_secs(),
        opts.warmup.as_secs(),
        opts.repeats
    );
    println!(
        "- h2 rows: h2load -t1 -c{{{}}} -m10 -D{}s over TLS (ALPN h2), same warm-up and repeats",
        list(h2_connections),
        opts.duration.as_secs()
    );
    println!("- upstream and reference proxy: {}", host::nginx_version(&tools.nginx));
    println!("- krps per proxy core: thousands of requests/s; µs per request: 1/(req/s), the proxy's time per request when it is alone on its core and saturated");
    if sections.len() > 1 {
        println!();
        println!("### Every concurrency (× vs: requests/s against the row's `vs` row, see below)");
        println!();
        print!("{}", report::overview_table(sections));
    }
    for section in sections {
        println!();
        println!("### {} connections", section.connections);
        println!();
        print!("{}", report::summary_table(&section.rows));
        let lines = [
            report::share_of_direct(&section.rows),
            report::plugin_cost(&section.rows),
            report::same_steps(&section.rows, scenarios::SAME_STEPS),
        ];
        for line in lines.iter().flatten() {
            println!();
            println!("{line}");
        }
    }
    println!();
    println!("Per repeat:");
    println!();
    print!("{}", report::raw_table(sections));
    if !notes.is_empty() {
        println!();
        println!("Notes:");
        notes.iter().for_each(|n| println!("- {n}"));
    }
}
