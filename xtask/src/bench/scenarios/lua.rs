//! The `nginx-lua` row: the `nginx` row with, in Lua (OpenResty's module as
//! Debian ships it, `libnginx-mod-http-lua`), the three steps the
//! `wasmgate-chain3` row runs as Wasm plugins, so the two rows' cost over
//! their plain proxies compares plugin systems, not proxies.

use std::path::Path;

use super::{start_nginx_proxy_as, Env, NginxProxy, Running, REWRITTEN_PATH};

/// Where Debian puts the Lua module and the NDK it needs (loaded first).
pub const NDK_MODULE: &str = "/usr/lib/nginx/modules/ndk_http_module.so";
pub const LUA_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_lua_module.so";

/// One counter per client address: a few bytes each, 1 MiB is plenty.
const SHARED_DICT: &str = "lua_shared_dict bench_limit 1m;";

/// The access phase, step for step what chain3's plugins do:
/// test-header-adder sets `x-bench: 1`; rate-limit counts the request against
/// the client address's limit (here a fixed one-second window in a shared
/// dict, created on first use, whose limit the bench never reaches);
/// url-rewrite turns `^/bench(.*)` into `$1` (PCRE, compiled once: `jo`).
const ACCESS: &str = r#"access_by_lua_block {
                ngx.req.set_header("x-bench", "1")
                local count, err = ngx.shared.bench_limit:incr(ngx.var.remote_addr, 1, 0, 1)
                if not count then
                    ngx.log(ngx.ERR, "rate limit: ", err)
                    return ngx.exit(500)
                end
                if count > 1000000000 then
                    return ngx.exit(429)
                end
                local path, n = ngx.re.sub(ngx.var.uri, "^/bench(.*)", "$1", "jo")
                if n and n > 0 then
                    if path:sub(1, 1) ~= "/" then
                        path = "/" .. path
                    end
                    ngx.req.set_uri(path)
                end
            }"#;

pub fn start_nginx_lua(env: &Env) -> Result<Running, String> {
    for module in [NDK_MODULE, LUA_MODULE] {
        if !Path::new(module).exists() {
            return Err(format!("nginx's Lua module is not installed ({module}): apt-get install libnginx-mod-http-lua"));
        }
    }
    let main = format!("load_module {NDK_MODULE};\nload_module {LUA_MODULE};");
    // Ready only once the rewrite works: the upstream refuses the path unrewritten.
    start_nginx_proxy_as(
        env,
        &NginxProxy { name: "nginx-lua", main: &main, http: SHARED_DICT, location: ACCESS, target: REWRITTEN_PATH },
    )
}
