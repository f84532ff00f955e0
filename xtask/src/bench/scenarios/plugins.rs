//! Rows with Wasm plugins on the route: the standard plugins built for
//! wasm32-wasip2 into a plugins folder under the temp dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::super::process::wait_ready_at;
use super::{local_addr, wasmgate_config, Env, Proc, Running, READY_TIMEOUT, REWRITTEN_PATH, UPSTREAM_BODY};

/// The bench's HS256 secret and a token it signed: `{"sub":"bench",
/// "iss":"bench","exp":4102444800}` (expires in 2100).
const SECRET: &str = "wasmgate-bench-secret-0123456789";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJzdWIiOiJiZW5jaCIsImlzcyI6ImJlbmNoIiwiZXhwIjo0MTAyNDQ0ODAwfQ.\
dzapPiN_ijnP7FFWwNOXvm_5YgGwLpDoNqYudQqstRk";

/// Builds the named plugins (release, wasm32-wasip2, the target added first
/// on a machine that lacks it) and copies them into `<temp>/plugins` as
/// `<name>.wasm`.
pub(super) fn plugins_dir(env: &Env, names: &[&str]) -> Result<PathBuf, String> {
    crate::prerequisites::wasm_target()?;
    let mut args = vec!["build", "--release", "--target", "wasm32-wasip2", "--quiet"];
    for name in names {
        args.extend(["-p", name]);
    }
    eprintln!("bench: cargo {}", args.join(" "));
    crate::cargo(&args)?;
    let target = crate::target_dir();
    let target = if target.is_relative() {
        crate::workspace_root().join(target)
    } else {
        target
    };
    let built = target.join("wasm32-wasip2/release");
    let dir = env.temp.subdir("plugins")?;
    for name in names {
        let from = built.join(format!("{}.wasm", name.replace('-', "_")));
        let to = dir.join(format!("{name}.wasm"));
        std::fs::copy(&from, &to).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }
    Ok(dir)
}

/// The plain wasmgate config with `plugins` on its route and the folder.
pub(super) fn config_with_plugins(
    listen: SocketAddr,
    upstream: SocketAddr,
    plugins: &str,
    dir: &Path,
) -> String {
    wasmgate_config(listen, upstream).replace(
        "upstream = \"up\"\n\n[[upstream]]",
        &format!("upstream = \"up\"\nplugins = [ {plugins} ]\n\n[[upstream]]"),
    ) + &format!("\n[plugins]\ndir = \"{}\"\nwatch = false\n", dir.display())
}

/// jwt-auth (HS256, token in the query so wrk needs no header) then
/// rate-limit (per client ip, a limit wrk never reaches) on every request.
pub fn start_wasmgate_jwt_ratelimit(env: &Env) -> Result<Running, String> {
    let dir = plugins_dir(env, &["jwt-auth", "rate-limit"])?;
    let plugins = format!(
        r#"{{ name = "jwt-auth", config = {{ keys = [ {{ alg = "HS256", secret = "{SECRET}" }} ], query = "token", issuers = ["bench"] }} }}, {{ name = "rate-limit", config = {{ rate = 1000000000, burst = 1000000000 }} }}"#
    );
    let addr = local_addr()?;
    let config = config_with_plugins(addr, env.upstream, &plugins, &dir);
    if !config.contains("plugins = [") {
        return Err(
            "bench: could not put the plugins on the route (wasmgate_config changed?)".into(),
        );
    }
    let path = env.temp.write("wasmgate-jwt-ratelimit.toml", &config)?;
    let mut cmd = env.pinning.command(env.pinning.proxy_cpu, env.wasmgate);
    cmd.arg("run").arg("-c").arg(&path);
    let log = env.temp.path().join("wasmgate-jwt-ratelimit.log");
    let mut proc = Proc::spawn("wasmgate-jwt-ratelimit", cmd, log)?;
    let target = format!("/?token={TOKEN}");
    // Ready means the plugins let a good token through (and refuse none).
    let ready_in = wait_ready_at(&mut proc, addr, &target, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running {
        url: format!("http://{addr}{target}"),
        process: Some(proc),
        ready_in: Some(ready_in),
    })
}

/// Starts wasmgate with `plugins` (TOML array items) on its route, the named
/// plugin crates built into the folder, and waits until `target` is served.
fn start_with_plugins(env: &Env, row: &str, crates: &[&str], plugins: &str, target: &str) -> Result<Running, String> {
    let dir = plugins_dir(env, crates)?;
    let addr = local_addr()?;
    let config = config_with_plugins(addr, env.upstream, plugins, &dir);
    let path = env.temp.write(&format!("{row}.toml"), &config)?;
    let mut cmd = env.pinning.command(env.pinning.proxy_cpu, env.wasmgate);
    cmd.arg("run").arg("-c").arg(&path);
    let mut proc = Proc::spawn(row, cmd, env.temp.path().join(format!("{row}.log")))?;
    let ready_in = wait_ready_at(&mut proc, addr, target, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}{target}"), process: Some(proc), ready_in: Some(ready_in) })
}

/// One plugin that does nothing: the fixed cost of the Wasm chain.
pub fn start_wasmgate_noop(env: &Env) -> Result<Running, String> {
    start_with_plugins(env, "wasmgate-noop", &["test-pass"], r#"{ name = "test-pass" }"#, "/")
}

/// Three small plugins on every request: add a header, take from a token
/// bucket (a limit wrk never reaches), rewrite the path (`/bench/` becomes
/// `/`, which the upstream needs: it refuses `/bench/`). The `nginx-lua` row
/// runs the same steps in Lua.
pub fn start_wasmgate_chain3(env: &Env) -> Result<Running, String> {
    start_with_plugins(
        env,
        "wasmgate-chain3",
        &["test-header-adder", "rate-limit", "url-rewrite"],
        r#"{ name = "test-header-adder", config = { request = { "x-bench" = "1" } } }, { name = "rate-limit", config = { rate = 1000000000, burst = 1000000000 } }, { name = "url-rewrite", config = { rules = [ { match = "^/bench(.*)", replace = "$1" } ] } }"#,
        REWRITTEN_PATH,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugins_land_on_the_route() {
        let a = SocketAddr::from(([127, 0, 0, 1], 1));
        let config = config_with_plugins(a, a, r#"{ name = "x" }"#, Path::new("/p"));
        assert!(
            config.contains("upstream = \"up\"\nplugins = [ { name = \"x\" } ]"),
            "{config}"
        );
        assert!(config.contains("[plugins]\ndir = \"/p\""), "{config}");
    }
}
