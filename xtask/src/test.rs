//! `cargo xtask test`: the whole test suite, on any machine.

use crate::prerequisites::{self, Program};

/// Programs that end-to-end tests start as real peers.
const NEEDED: &[Program] = &[
    // tests/src/zookeeper.rs starts a real ZooKeeper server from this jar.
    Program { path: "/usr/share/java/zookeeper.jar", package: "zookeeper" },
    // tests/src/redis.rs starts a real Redis; tests/tests/tcp.rs also runs redis-benchmark (same package).
    Program { path: "/usr/bin/redis-server", package: "redis-server" },
    // tests/src/nginx.rs starts a real nginx as the backend of tests/tests/request_confusion.rs.
    Program { path: "/usr/sbin/nginx", package: "nginx" },
    // tests/tests/metrics.rs checks the scrape with promtool and has a real Prometheus
    // (/usr/bin/prometheus, same package) scrape the gateway.
    Program { path: "/usr/bin/promtool", package: "prometheus" },
    // tests/tests/dashboard.rs drives a real headless Chromium through chromedriver.
    Program { path: "/usr/bin/chromium", package: "chromium" },
    Program { path: "/usr/bin/chromedriver", package: "chromium-driver" },
];

pub fn run(extra: &[String]) -> Result<(), String> {
    prerequisites::wasm_target()?;
    prerequisites::programs(NEEDED)?;
    // --no-fail-fast: one red test binary must not hide the others from CI.
    let mut args = vec!["test", "--workspace", "--no-fail-fast"];
    args.extend(extra.iter().map(String::as_str));
    crate::cargo(&args)
}
