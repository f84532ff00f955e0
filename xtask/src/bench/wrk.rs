//! Running wrk and reading its report.

use std::path::Path;
use std::time::Duration;

use super::host::Pinning;

/// One measured run.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub requests_per_sec: f64,
    /// Latency percentiles in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    pub requests: u64,
    pub errors: Errors,
}

/// What wrk counted as failures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Errors {
    pub non_2xx_3xx: u64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.non_2xx_3xx + self.connect + self.read + self.write + self.timeout
    }

    pub fn add(&mut self, other: &Errors) {
        self.non_2xx_3xx += other.non_2xx_3xx;
        self.connect += other.connect;
        self.read += other.read;
        self.write += other.write;
        self.timeout += other.timeout;
    }

    /// "0", or the non-zero kinds: "12 (non-2xx 10, read 2)".
    pub fn describe(&self) -> String {
        let kinds = [
            ("non-2xx", self.non_2xx_3xx),
            ("connect", self.connect),
            ("read", self.read),
            ("write", self.write),
            ("timeout", self.timeout),
        ];
        let parts: Vec<String> =
            kinds.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k} {n}")).collect();
        if parts.is_empty() {
            "0".to_owned()
        } else {
            format!("{} ({})", self.total(), parts.join(", "))
        }
    }
}

/// How to drive wrk: one thread (it shares the load CPU with the upstream).
pub struct WrkRun<'a> {
    pub wrk: &'a Path,
    pub pinning: &'a Pinning,
    pub connections: u32,
}

impl WrkRun<'_> {
    /// An unmeasured run to warm caches, pools and the CPU frequency.
    pub fn warm(&self, url: &str, duration: Duration) -> Result<(), String> {
        if duration.is_zero() {
            return Ok(());
        }
        self.run(url, duration).map(drop)
    }

    pub fn measure(&self, url: &str, duration: Duration) -> Result<Sample, String> {
        let output = self.run(url, duration)?;
        parse(&output).map_err(|e| format!("cannot read wrk's report for {url}: {e}\n{output}"))
    }

    fn run(&self, url: &str, duration: Duration) -> Result<String, String> {
        let mut cmd = self.pinning.command(self.pinning.load_cpu, self.wrk);
        cmd.arg("-t1")
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .arg("--latency")
            .arg(url);
        let out = cmd.output().map_err(|e| format!("cannot run wrk ({cmd:?}): {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("wrk failed on {url} ({}):\n{stdout}{stderr}", out.status));
        }
        Ok(stdout)
    }
}

/// Read requests/sec, the 50% and 99% latency lines, and the error counters.
pub fn parse(output: &str) -> Result<Sample, String> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut errors = Errors::default();
    for line in output.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = Some(number(v.trim())?);
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = Some(latency_us(v.trim())?);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = Some(latency_us(v.trim())?);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors.non_2xx_3xx = count(v.trim())?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            socket_errors(v, &mut errors)?;
        } else if line.contains(" requests in ") {
            requests = line.split_whitespace().next().map(count).transpose()?;
        }
    }
    Ok(Sample {
        requests_per_sec: rps.ok_or("no `Requests/sec:` line")?,
        p50_us: p50.ok_or("no `50%` latency line (was --latency passed?)")?,
        p99_us: p99.ok_or("no `99%` latency line (was --latency passed?)")?,
        requests: requests.ok_or("no `N requests in T` line")?,
        errors,
    })
}

/// "connect 0, read 3, write 0, timeout 12"
fn socket_errors(text: &str, errors: &mut Errors) -> Result<(), String> {
    for part in text.split(',') {
        let mut words = part.split_whitespace();
        let (Some(kind), Some(n)) = (words.next(), words.next()) else {
            return Err(format!("cannot read socket errors `{text}`"));
        };
        let n = count(n)?;
        match kind {
            "connect" => errors.connect = n,
            "read" => errors.read = n,
            "write" => errors.write = n,
            "timeout" => errors.timeout = n,
            other => return Err(format!("unknown socket error kind `{other}`")),
        }
    }
    Ok(())
}

fn number(s: &str) -> Result<f64, String> {
    s.parse::<f64>().map_err(|_| format!("not a number: `{s}`"))
}

fn count(s: &str) -> Result<u64, String> {
    s.parse::<u64>().map_err(|_| format!("not a count: `{s}`"))
}

/// wrk prints times as "654.00us", "1.23ms", "2.00s", "1.00m", "1.00h".
pub fn latency_us(s: &str) -> Result<f64, String> {
    const UNITS: [(&str, f64); 5] =
        [("us", 1.0), ("ms", 1e3), ("s", 1e6), ("m", 60e6), ("h", 3600e6)];
    for (suffix, scale) in UNITS {
        if let Some(v) = s.strip_suffix(suffix) {
            return number(v).map(|n| n * scale);
        }
    }
    Err(format!("latency without a known unit: `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
Running 1s test @ http://127.0.0.1:18099/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   177.74us  611.96us   5.48ms   94.19%
    Req/Sec   137.28k    36.84k  161.80k    80.00%
  Latency Distribution
     50%   37.00us
     75%   39.00us
     90%   69.00us
     99%    3.67ms
  136927 requests in 1.01s, 21.94MB read
  Socket errors: connect 0, read 3, write 0, timeout 12
  Non-2xx or 3xx responses: 5
Requests/sec: 135443.35
Transfer/sec:     21.70MB
";

    #[test]
    fn parses_wrk_report() {
        let s = parse(OUTPUT).expect("parse");
        assert_eq!(s.requests_per_sec, 135443.35);
        assert_eq!(s.p50_us, 37.0);
        assert_eq!(s.p99_us, 3670.0);
        assert_eq!(s.requests, 136927);
        assert_eq!(s.errors.total(), 20);
        assert_eq!(s.errors.describe(), "20 (non-2xx 5, read 3, timeout 12)");
    }

    #[test]
    fn units() {
        assert_eq!(latency_us("1.50s"), Ok(1_500_000.0));
        assert_eq!(latency_us("2.00m"), Ok(120_000_000.0));
        assert!(latency_us("12").is_err());
    }

    #[test]
    fn missing_lines_are_errors() {
        assert!(parse("Requests/sec: 1.0\n").is_err());
    }
}
