//! Command-line flags of `cargo xtask bench`.

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: cargo xtask bench [options]

Measures wasmgate against nginx as a reverse proxy, both in front of the same
nginx upstream, with wrk as the load generator. See docs/benchmark.md.

options:
  --connections N[,N]  concurrencies, each a section of the report with every row
                       (default 32,256,1024; h2 rows open a quarter as many connections)
  --duration D         length of each measured run, whole seconds: 10s, 1m (default 10s)
  --repeats N          interleaved rounds over all rows; medians are reported (default 3)
  --warmup D           unmeasured wrk run before each measurement, 0 to skip (default 2s)
  --only ROW[,ROW]     run only these rows (repeatable); rows: {ROWS}
  --quick              smoke test: 1 repeat, 3s, 1s warmup (explicit flags still win)
  --wasmgate-bin PATH  benchmark this binary instead of building target/release/wasmgate
  --soak N             afterwards, send N requests (e.g. 1000000) through each wasmgate row
                       at the first concurrency, and report its RSS after the first
                       100 000 and at the end
  --keep-temp          keep the temp dir (configs, logs) and print its path
  -h, --help           this text";

/// Resolved settings for one benchmark session.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrencies in the order given; every row runs at each.
    pub connections: Vec<u32>,
    pub duration: Duration,
    pub repeats: u32,
    pub warmup: Duration,
    /// Empty means every row.
    pub only: Vec<String>,
    pub wasmgate_bin: Option<PathBuf>,
    pub keep_temp: bool,
    /// Requests for the RSS soak (`--soak`), none by default.
    pub soak: Option<u64>,
}

/// What the command line asked for: settings, or just the help text.
pub enum Parsed {
    Run(Options),
    Help,
}

/// Flags as given; `None` means "not given", so `--quick` only fills the gaps.
#[derive(Default)]
struct Given {
    connections: Option<Vec<u32>>,
    duration: Option<Duration>,
    repeats: Option<u32>,
    warmup: Option<Duration>,
    only: Vec<String>,
    quick: bool,
    wasmgate_bin: Option<PathBuf>,
    keep_temp: bool,
    soak: Option<u64>,
}

pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut given = Given::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().cloned().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--connections" => given.connections = Some(concurrencies(flag, &value()?)?),
            "--duration" => given.duration = Some(whole_seconds(flag, &value()?, false)?),
            "--repeats" => given.repeats = Some(positive(flag, &value()?)?),
            "--warmup" => given.warmup = Some(whole_seconds(flag, &value()?, true)?),
            "--only" => given.only.extend(split_rows(&value()?)),
            "--quick" => given.quick = true,
            "--wasmgate-bin" => given.wasmgate_bin = Some(PathBuf::from(value()?)),
            "--keep-temp" => given.keep_temp = true,
            "--soak" => given.soak = Some(u64::from(positive(flag, &value()?)?)),
            other => return Err(format!("unknown option `{other}` (try --help)")),
        }
    }
    Ok(Parsed::Run(resolve(given)))
}

/// Few connections, many, and very many: where the proxies part ways.
pub const DEFAULT_CONNECTIONS: [u32; 3] = [32, 256, 1024];

fn resolve(g: Given) -> Options {
    let (repeats, duration, warmup) = if g.quick { (1, 3, 1) } else { (3, 10, 2) };
    Options {
        connections: g.connections.unwrap_or_else(|| DEFAULT_CONNECTIONS.to_vec()),
        duration: g.duration.unwrap_or(Duration::from_secs(duration)),
        repeats: g.repeats.unwrap_or(repeats),
        warmup: g.warmup.unwrap_or(Duration::from_secs(warmup)),
        only: g.only,
        wasmgate_bin: g.wasmgate_bin,
        keep_temp: g.keep_temp,
        soak: g.soak,
    }
}

fn split_rows(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// "32,256,1024" -> [32, 256, 1024]; repeats are dropped, order is kept.
fn concurrencies(flag: &str, value: &str) -> Result<Vec<u32>, String> {
    let mut list = Vec::new();
    for part in value.split(',').map(str::trim) {
        let n = positive(flag, part)?;
        if !list.contains(&n) {
            list.push(n);
        }
    }
    Ok(list)
}

fn positive(flag: &str, value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: expected a positive whole number, got `{value}`")),
    }
}

/// wrk takes whole seconds, minutes or hours; accept `10`, `10s`, `2m`, `1h`.
fn whole_seconds(flag: &str, value: &str, zero_ok: bool) -> Result<Duration, String> {
    let (digits, scale) = match value.strip_suffix('s') {
        Some(d) => (d, 1),
        None => match value.strip_suffix('m') {
            Some(d) => (d, 60),
            None => match value.strip_suffix('h') {
                Some(d) => (d, 3600),
                None => (value, 1),
            },
        },
    };
    let bad = || format!("{flag}: expected whole seconds such as 10s or 1m, got `{value}`");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    if n == 0 && !zero_ok {
        return Err(bad());
    }
    Ok(Duration::from_secs(n * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args) {
            Ok(Parsed::Run(o)) => o,
            Ok(Parsed::Help) => panic!("help"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_and_quick() {
        let d = run(&[]);
        assert_eq!((d.connections.as_slice(), d.repeats), (&[32, 256, 1024][..], 3));
        assert_eq!(d.duration, Duration::from_secs(10));
        let q = run(&["--quick", "--repeats=2"]);
        assert_eq!((q.repeats, q.duration), (2, Duration::from_secs(3)));
    }

    #[test]
    fn only_and_durations() {
        let o = run(&["--only", "nginx,wasmgate", "--only=direct", "--duration", "1m", "--warmup", "0"]);
        assert_eq!(o.only, ["nginx", "wasmgate", "direct"]);
        assert_eq!(o.duration, Duration::from_secs(60));
        assert_eq!(o.warmup, Duration::ZERO);
        assert!(parse(&["--duration".into(), "0s".into()]).is_err());
        assert!(parse(&["--duration".into(), "1.5s".into()]).is_err());
    }

    #[test]
    fn connection_lists() {
        assert_eq!(run(&["--connections", "64"]).connections, [64]);
        assert_eq!(run(&["--connections=256, 32,256"]).connections, [256, 32]);
        for bad in ["", "32,", "0", "32,x", "-1"] {
            assert!(parse(&["--connections".into(), bad.into()]).is_err(), "{bad:?}");
        }
    }
}
