//! `[admin]`: raw → validated. The bearer token is read here (from its file or
//! environment variable), so a config that validates can authenticate, and a
//! reload reads it again.

use std::net::SocketAddr;
use std::path::Path;

use super::super::raw::RawAdmin;
use super::super::{AdminConfig, AdminLimits, AdminToken};
use super::{invalid, positive, Invalid};

pub fn admin(raw: &RawAdmin, base: &Path) -> Result<AdminConfig, Invalid> {
    let address: SocketAddr = raw
        .address
        .parse()
        .map_err(|_| invalid("admin.address", format!("`{}` is not an ip:port address", raw.address)))?;
    let d = AdminLimits::default();
    let limits = AdminLimits {
        header_timeout: positive(raw.limits.header_timeout, d.header_timeout, "admin.limits.header_timeout")?,
        idle_timeout: positive(raw.limits.idle_timeout, d.idle_timeout, "admin.limits.idle_timeout")?,
        max_connections: match raw.limits.max_connections {
            Some(0) => return Err(invalid("admin.limits.max_connections", "must be at least 1")),
            other => other.unwrap_or(d.max_connections),
        },
    };
    let token = token(raw, base)?;
    if token.is_none() && !address.ip().is_loopback() {
        return Err(invalid(
            "admin.address",
            format!(
                "{address} is not a loopback address: the admin API can reload and drain, so off loopback \
                 it needs a bearer token (`token_file` or `token_env`)"
            ),
        ));
    }
    Ok(AdminConfig { address, limits, token, show_plugin_config: raw.show_plugin_config.unwrap_or(false) })
}

/// The token from `token_file` or `token_env`. Errors never quote the token.
fn token(raw: &RawAdmin, base: &Path) -> Result<Option<AdminToken>, Invalid> {
    match (&raw.token_file, &raw.token_env) {
        (Some(_), Some(_)) => Err(invalid("admin.token_env", "set either `token_file` or `token_env`, not both")),
        (Some(file), None) => {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid("admin.token_file", format!("cannot read `{}`: {e}", path.display())))?;
            let token = AdminToken::new(&text)
                .map_err(|reason| invalid("admin.token_file", format!("the token in `{}` {reason}", path.display())))?;
            Ok(Some(token))
        }
        (None, Some(name)) => {
            let text = std::env::var(name).map_err(|e| {
                let why = match e {
                    std::env::VarError::NotPresent => "is not set",
                    std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
                };
                invalid("admin.token_env", format!("the environment variable `{name}` {why}"))
            })?;
            let token = AdminToken::new(&text)
                .map_err(|reason| invalid("admin.token_env", format!("the token in `{name}` {reason}")))?;
            Ok(Some(token))
        }
        (None, None) => Ok(None),
    }
}
