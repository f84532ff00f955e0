//! The machine: which tools exist, which CPUs we may use, and how to pin.

use std::path::{Path, PathBuf};
use std::process::Command;

/// External programs the benchmark drives.
pub struct Tools {
    pub nginx: PathBuf,
    pub wrk: PathBuf,
    /// Only the HTTP/2 rows need it (Debian: nghttp2-client).
    pub h2load: Option<PathBuf>,
    /// `None` when there is nothing to pin (one CPU).
    pub taskset: Option<PathBuf>,
}

/// Which CPU each side runs on. Load generator and upstream share one core so
/// the proxy under test has a core to itself and cannot steal from (or be
/// starved by) wrk.
#[derive(Clone)]
pub struct Pinning {
    taskset: Option<PathBuf>,
    pub load_cpu: Option<usize>,
    pub proxy_cpu: Option<usize>,
}

impl Pinning {
    /// A command for `program`, prefixed with `taskset -c CPU` when pinning.
    pub fn command(&self, cpu: Option<usize>, program: &Path) -> Command {
        match (&self.taskset, cpu) {
            (Some(taskset), Some(cpu)) => {
                let mut cmd = Command::new(taskset);
                cmd.arg("-c").arg(cpu.to_string()).arg(program);
                cmd
            }
            _ => Command::new(program),
        }
    }

    pub fn describe(&self) -> String {
        match (self.load_cpu, self.proxy_cpu) {
            (Some(load), Some(proxy)) => format!(
                "wrk + upstream nginx on CPU {load}, the proxy under test alone on CPU {proxy} (taskset -c)"
            ),
            _ => "none (only one CPU available; everything shares it)".to_owned(),
        }
    }
}

/// CPUs this process may run on (cgroup/affinity aware), from /proc/self/status.
pub fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .unwrap_or("");
    let cpus = parse_cpu_list(list);
    if cpus.is_empty() {
        // Unknown: fall back to 0..nproc.
        (0..nproc()).collect()
    } else {
        cpus
    }
}

/// "0-2,5" -> [0, 1, 2, 5]; malformed parts are skipped.
pub fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<usize>().ok()),
        }
    }
    cpus
}

pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Decide pinning: with two or more CPUs, load on the first, proxy on the second.
pub fn pinning(tools: &Tools) -> Pinning {
    let cpus = allowed_cpus();
    match (&tools.taskset, cpus.as_slice()) {
        (Some(_), [load, proxy, ..]) => Pinning {
            taskset: tools.taskset.clone(),
            load_cpu: Some(*load),
            proxy_cpu: Some(*proxy),
        },
        _ => Pinning { taskset: None, load_cpu: None, proxy_cpu: None },
    }
}

/// Find every tool or fail naming the Debian packages to install.
pub fn find_tools() -> Result<Tools, String> {
    let nginx = find_program("nginx", &["/usr/sbin/nginx"]);
    let wrk = find_program("wrk", &[]);
    let taskset = find_program("taskset", &["/usr/bin/taskset"]);
    let mut missing = Vec::new();
    if nginx.is_none() {
        missing.push("nginx (Debian package `nginx`)");
    }
    if wrk.is_none() {
        missing.push("wrk (Debian package `wrk`)");
    }
    let need_taskset = allowed_cpus().len() >= 2;
    if taskset.is_none() && need_taskset {
        missing.push("taskset (Debian package `util-linux`)");
    }
    match (nginx, wrk) {
        (Some(nginx), Some(wrk)) if missing.is_empty() => {
            Ok(Tools { nginx, wrk, h2load: find_program("h2load", &[]), taskset })
        }
        _ => Err(format!(
            "missing tools: {}\n       install with: apt-get install nginx wrk util-linux",
            missing.join(", ")
        )),
    }
}

/// Look in PATH, then in the given well-known places (sbin is often not in PATH).
pub fn find_program(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `struct rlimit` on 64-bit Linux.
#[repr(C)]
struct Rlimit {
    current: u64,
    max: u64,
}

/// RLIMIT_NOFILE on x86, arm and riscv Linux.
const RLIMIT_NOFILE: i32 = 7;

extern "C" {
    fn getrlimit(resource: i32, limit: *mut Rlimit) -> i32;
    fn setrlimit(resource: i32, limit: *const Rlimit) -> i32;
}

/// Raises this process's open-files limit to its hard limit, so that wrk and
/// the proxies (children inherit it) can hold `wanted` descriptors; a fresh
/// machine's soft limit of 1024 is less than `-c1024` needs. Fails, naming
/// the fix, when even the hard limit is too low.
pub fn raise_open_files(wanted: u64) -> Result<(), String> {
    let mut limit = Rlimit { current: 0, max: 0 };
    // SAFETY: getrlimit writes one `struct rlimit` (laid out as `Rlimit`) to a valid pointer.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(format!("cannot read the open-files limit: {}", std::io::Error::last_os_error()));
    }
    if limit.current >= wanted {
        return Ok(());
    }
    if limit.max < wanted {
        return Err(format!(
            "the open-files limit ({}, hard {}) is below the {wanted} the largest --connections needs; \
             raise it (ulimit -n {wanted}) or pass smaller --connections",
            limit.current, limit.max
        ));
    }
    let raised = Rlimit { current: limit.max, max: limit.max };
    // SAFETY: setrlimit reads one `struct rlimit` from a valid pointer.
    if unsafe { setrlimit(RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!("cannot raise the open-files limit: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// One line describing the machine, for the report.
pub fn describe_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let busy = match first_load() {
        Some(load) if load >= 0.5 => " — the machine is busy, expect noisy numbers",
        _ => "",
    };
    format!("nproc {} ({model}), load average at start: {}{busy}", nproc(), load_average())
}

/// The 1-minute load average, if readable.
fn first_load() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The 1/5/15-minute load averages, as the kernel prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `nginx -v` prints its version on stderr.
pub fn nginx_version(nginx: &Path) -> String {
    Command::new(nginx)
        .arg("-v")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .and_then(|s| s.strip_prefix("nginx version: ").map(str::to_owned))
        .unwrap_or_else(|| "nginx (unknown version)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), [0, 1]);
        assert_eq!(parse_cpu_list("0-2,5, 7"), [0, 1, 2, 5, 7]);
        assert!(parse_cpu_list("").is_empty());
    }
}
