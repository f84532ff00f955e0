//! `cargo xtask quickstart`: two demo backends and the gateway in front of them.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CONFIG: &str = "examples/00-quickstart/wasmgate.toml";
const GATEWAY: &str = "127.0.0.1:8080";
/// The quickstart config's `[admin] address`: the dashboard, `/metrics`, the JSON API.
const ADMIN: &str = "127.0.0.1:9901";
const BACKENDS: [(&str, &str); 2] = [("real-server-1", "127.0.0.1:2003"), ("real-server-2", "127.0.0.1:2004")];

/// Children are killed when this is dropped, whatever path we leave by.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The standard plugins the quickstart config's `/api` route runs.
const PLUGINS: [&str; 3] = ["request-id", "rate-limit", "headers"];

pub fn run() -> Result<(), String> {
    crate::cargo(&["build", "--release", "-p", "wasmgate", "-p", "demo-backend"])?;
    let bin = crate::target_dir().join("release");
    let root = crate::workspace_root();
    install_plugins(&root)?;
    for address in BACKENDS.iter().map(|(_, a)| *a).chain([GATEWAY, ADMIN]) {
        if TcpStream::connect(address).is_ok() {
            return Err(format!("{address} is already in use; stop whatever listens there first"));
        }
    }

    let mut children = Children(Vec::new());
    for (name, address) in BACKENDS {
        let child = Command::new(bin.join("demo-backend"))
            .args(["--listen", address, "--name", name])
            .spawn()
            .map_err(|e| format!("cannot start demo-backend: {e}"))?;
        children.0.push(child);
    }
    let gateway = Command::new(bin.join("wasmgate"))
        .args(["run", "-c", CONFIG])
        .current_dir(&root)
        .spawn()
        .map_err(|e| format!("cannot start wasmgate: {e}"))?;
    children.0.push(gateway);

    for address in BACKENDS.iter().map(|(_, a)| *a).chain([GATEWAY, ADMIN]) {
        wait_for(address, &mut children)?;
    }
    println!(
        "\nwasmgate is serving {GATEWAY} in front of {} and {} (weights 2:1). Try, in another terminal:\n\n  \
         for i in 1 2 3 4 5 6; do curl -s localhost:8080/hello; done\n  \
         curl -si 'localhost:8080/api/users?id=7'   # through request-id, rate-limit and headers (Wasm)\n  \
         curl -s --http2-prior-knowledge localhost:8080/h2\n\n\
         Live dashboard: http://{ADMIN}/ (metrics: http://{ADMIN}/metrics).\n\
         Config: {CONFIG}. Ctrl-C stops everything.\n",
        BACKENDS[0].1, BACKENDS[1].1
    );
    let gateway = children.0.last_mut().ok_or("no gateway process")?;
    let status = gateway.wait().map_err(|e| format!("waiting for wasmgate: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("wasmgate exited with {status}"))
    }
}

/// Builds the quickstart's plugins for wasm32-wasip2 and puts them into the
/// config's plugin folder (`examples/00-quickstart/plugins/<name>.wasm`).
fn install_plugins(root: &std::path::Path) -> Result<(), String> {
    crate::prerequisites::wasm_target()?;
    let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
    for plugin in PLUGINS {
        args.extend(["-p", plugin]);
    }
    crate::cargo(&args)?;
    let built = crate::target_dir().join("wasm32-wasip2").join("release");
    let dir = root.join("examples/00-quickstart/plugins");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for plugin in PLUGINS {
        let from = built.join(format!("{}.wasm", plugin.replace('-', "_")));
        let to = dir.join(format!("{plugin}.wasm"));
        std::fs::copy(&from, &to).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Waits (up to 10 s) until `address` accepts connections, or a child has died.
fn wait_for(address: &str, children: &mut Children) -> Result<(), String> {
    let addr: SocketAddr = address.parse().map_err(|_| format!("bad address {address}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        for child in &mut children.0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("a process exited early ({status}); see its output above"));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{address} did not start listening within 10 s"))
}
