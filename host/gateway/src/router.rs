//! Which route a request takes: host (exact, then wildcard, then any) and the
//! longest matching path prefix. Prefixes match whole segments: `/api` matches
//! `/api`, `/api/users` and `/api;v=1`, not `/apiary`.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use wasmgate_plugin::Chain;

use crate::config::{FallbackConfig, HostPattern, RouteConfig};
use crate::upstream::Upstream;

pub struct Route {
    pub name: Arc<str>,
    pub host: Option<HostPattern>,
    pub path_prefix: String,
    pub strip_prefix: bool,
    pub upstream: Arc<Upstream>,
    /// Answered instead of `503` when the upstream has no target to offer.
    pub fallback: Option<Arc<FallbackConfig>>,
    /// The route's Wasm middleware, in order (empty: none).
    pub chain: Chain,
    /// Protocols a client may upgrade to here (lower case).
    pub upgrades: Vec<String>,
    /// Headers removed from clients' requests (what auth plugins set).
    pub identity_headers: Vec<http::HeaderName>,
    /// Where this route's requests are counted (none: metrics are off).
    pub metrics: Option<Arc<crate::metrics::RouteMetrics>>,
}

/// The routes of one listener, most specific first.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new(mut routes: Vec<Route>) -> Router {
        routes.sort_by_key(|r| {
            let host_rank = match &r.host {
                Some(HostPattern::Exact(_)) => 0,
                Some(HostPattern::Suffix(s)) => 1 + usize::MAX / 4 - s.len(),
                None => usize::MAX,
            };
            (usize::MAX - r.path_prefix.len(), host_rank)
        });
        Router { routes }
    }

    /// `host` without its port.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            prefix_matches(&r.path_prefix, path)
                && match (&r.host, host) {
                    (None, _) => true,
                    (Some(pattern), Some(host)) => pattern.matches(host),
                    (Some(_), None) => false,
                }
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

/// `;` ends a segment too: a backend that takes path parameters (Tomcat,
/// Jetty) serves `/admin;x/secret` as `/admin/secret`, so it must take the
/// `/admin` route here; and so does `%3B` (normalised paths spell it so),
/// which nginx decodes to `;`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => {
            prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', ';']) || rest.starts_with("%3B")
        }
        None => false,
    }
}

/// The path the upstream sees when the route strips its prefix: never empty.
pub fn strip(prefix: &str, path: &str) -> String {
    let rest = path.strip_prefix(prefix.trim_end_matches('/')).unwrap_or(path);
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

pub fn route_from_config(config: &RouteConfig, upstream: Arc<Upstream>, chain: Chain) -> Route {
    Route {
        name: config.name.as_str().into(),
        host: config.host.clone(),
        path_prefix: config.path_prefix.clone(),
        strip_prefix: config.strip_prefix,
        upstream,
        fallback: config.fallback.clone(),
        chain,
        upgrades: config.upgrades.clone(),
        identity_headers: config.identity_headers.clone(),
        metrics: None,
    }
}
