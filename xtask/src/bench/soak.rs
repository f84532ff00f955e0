//! `--soak N`: does a row's memory settle? N requests through one running
//! wasmgate, in short wrk runs, with its RSS read from /proc after the first
//! 100 000 requests and again at the end. Growth past a few percent means
//! something accumulates per request (a leak, an unbounded cache or pool).

use std::time::Duration;

use super::process::Proc;
use super::wrk::WrkRun;

/// Requests before the first RSS reading: warm pools and caches, not yet soaked.
const FIRST_MARK: u64 = 100_000;

pub struct Soak {
    pub row: &'static str,
    /// (requests so far, RSS in KiB) at the first mark and at the end.
    pub first: (u64, u64),
    pub last: (u64, u64),
    pub errors: u64,
}

pub fn run(wrk: &WrkRun, row: &'static str, url: &str, process: &mut Proc, requests: u64) -> Result<Soak, String> {
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut first = None;
    eprintln!("bench: soaking {row} with {requests} requests");
    while sent < requests {
        // Short runs near the first mark, longer ones after it.
        let chunk = if first.is_none() { Duration::from_secs(1) } else { Duration::from_secs(5) };
        let sample = wrk.measure(url, chunk)?;
        if sample.requests == 0 {
            return Err(format!("{row}: a soak run completed no requests"));
        }
        sent += sample.requests;
        errors += sample.errors.total();
        process.check_alive()?;
        if first.is_none() && sent >= FIRST_MARK {
            first = Some((sent, process.rss_kib().ok_or("cannot read the process's RSS")?));
        }
    }
    let last = (sent, process.rss_kib().ok_or("cannot read the process's RSS")?);
    let first = first.unwrap_or(last);
    eprintln!("bench: {row}: RSS {} KiB after {} requests, {} KiB after {}", first.1, first.0, last.1, last.0);
    Ok(Soak { row, first, last, errors })
}

pub fn table(soaks: &[Soak]) -> String {
    let mut out = String::from("RSS soak:\n\n| row | requests | RSS at first mark | RSS at end | growth | errors |\n|---|---:|---:|---:|---:|---:|\n");
    for s in soaks {
        let growth = (s.last.1 as f64 / s.first.1.max(1) as f64 - 1.0) * 100.0;
        out.push_str(&format!(
            "| {} | {} → {} | {} KiB | {} KiB | {:+.1}% | {} |\n",
            s.row, s.first.0, s.last.0, s.first.1, s.last.1, growth, s.errors
        ));
    }
    out
}
