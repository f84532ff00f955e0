//! Running h2load (nghttp2) for the HTTP/2 rows and reading its report. h2load
//! prints no latency percentiles: the p50 column gets its mean time per request
//! and p99 its maximum, and the report marks those rows.

use std::path::Path;
use std::time::Duration;

use super::host::Pinning;
use super::wrk::{Errors, Sample};

/// How to drive h2load: one thread (it shares the load CPU with the upstream),
/// `connections` connections with `streams` concurrent streams each.
pub struct H2loadRun<'a> {
    pub h2load: &'a Path,
    pub pinning: &'a Pinning,
    pub connections: u32,
    pub streams: u32,
}

impl H2loadRun<'_> {
    pub fn warm(&self, url: &str, duration: Duration) -> Result<(), String> {
        if duration.is_zero() {
            return Ok(());
        }
        self.run(url, duration).map(drop)
    }

    pub fn measure(&self, url: &str, duration: Duration) -> Result<Sample, String> {
        let output = self.run(url, duration)?;
        parse(&output).map_err(|e| format!("cannot read h2load's report for {url}: {e}\n{output}"))
    }

    fn run(&self, url: &str, duration: Duration) -> Result<String, String> {
        let mut cmd = self.pinning.command(self.pinning.load_cpu, self.h2load);
        cmd.arg("-t1")
            .arg(format!("-c{}", self.connections))
            .arg(format!("-m{}", self.streams))
            .arg(format!("-D{}", duration.as_secs().max(1)))
            .arg(url);
        let out = cmd.output().map_err(|e| format!("cannot run h2load ({cmd:?}): {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("h2load failed on {url} ({}):\n{stdout}{stderr}", out.status));
        }
        Ok(stdout)
    }
}

/// `finished in 3.00s, 41234.33 req/s, ...`, the `requests:` and `status codes:`
/// counters, and the `time for request:` line (min max mean sd +/- sd).
pub fn parse(output: &str) -> Result<Sample, String> {
    let mut rps = None;
    let mut requests = None;
    let mut times = None;
    let mut errors = Errors::default();
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            let rate = rest.split(", ").nth(1).and_then(|r| r.strip_suffix(" req/s"));
            rps = Some(rate.ok_or("no req/s on the `finished in` line")?.parse::<f64>().map_err(|e| e.to_string())?);
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            let count = |label: &str| -> u64 {
                rest.split(", ").find_map(|p| p.strip_suffix(label)).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
            };
            requests = Some(count(" done"));
            // Failed requests include errored and timed-out ones.
            errors.read = count(" failed");
            errors.timeout = count(" timeout");
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            let count = |label: &str| -> u64 {
                rest.split(", ").find_map(|p| p.strip_suffix(label)).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
            };
            errors.non_2xx_3xx = count(" 4xx") + count(" 5xx");
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let (Some(max), Some(mean)) = (fields.get(1), fields.get(2)) else {
                return Err(format!("cannot read `time for request:{rest}`"));
            };
            times = Some((super::wrk::latency_us(mean)?, super::wrk::latency_us(max)?));
        }
    }
    let (mean, max) = times.ok_or("no `time for request:` line")?;
    Ok(Sample {
        requests_per_sec: rps.ok_or("no `finished in` line")?,
        p50_us: mean,
        p99_us: max,
        requests: requests.ok_or("no `requests:` line")?,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration for timing-based test
Application protocol: h2
finished in 3.00s, 41234.33 req/s, 2.01MB/s
requests: 123703 total, 123863 started, 123703 done, 123700 succeeded, 3 failed, 3 errored, 0 timeout
status codes: 123700 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 6.02MB (6312345) total, 1.01MB (1060000) headers (space savings 95.00%), 2.23MB (2340000) data
                     min         max         mean         sd        +/- sd
time for request:      112us     21.34ms      3.86ms      1.21ms    72.50%
time for connect:     1.02ms      4.21ms      2.11ms       812us    62.50%
time to 1st byte:     3.88ms      9.99ms      6.01ms      1.77ms    56.25%
req/s           :    2502.11     2649.32     2577.14       43.21    68.75%
";

    #[test]
    fn parses_h2load_report() {
        let s = parse(OUTPUT).expect("parse");
        assert_eq!(s.requests_per_sec, 41234.33);
        assert_eq!(s.requests, 123703);
        assert_eq!(s.p50_us, 3860.0);
        assert_eq!(s.p99_us, 21340.0);
        assert_eq!(s.errors.total(), 3);
    }
}
