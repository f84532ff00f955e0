//! Everything a request reads, built from one validated config. A reload builds a
//! new `State` off the hot path and swaps it in whole; requests in flight keep the
//! one they started with.

use std::sync::Arc;

use crate::config::Config;
use crate::router::{route_from_config, Router};
use crate::upstream::Upstream;

pub struct State {
    /// One router per listener, in config order.
    routers: Vec<Router>,
    pub upstreams: Vec<Arc<Upstream>>,
    /// Whether each request writes an access log line.
    pub access_log: bool,
}

impl State {
    pub fn new(config: &Config) -> State {
        let upstreams: Vec<Arc<Upstream>> =
            config.upstreams.iter().map(|u| Arc::new(Upstream::new(u.clone()))).collect();
        let routers = (0..config.listeners.len())
            .map(|listener| {
                Router::new(
                    config
                        .routes
                        .iter()
                        .filter(|r| r.listener == listener)
                        .map(|r| route_from_config(r, upstreams[r.upstream].clone()))
                        .collect(),
                )
            })
            .collect();
        State { routers, upstreams, access_log: config.log.access }
    }

    pub fn router(&self, listener: usize) -> &Router {
        static EMPTY: std::sync::OnceLock<Router> = std::sync::OnceLock::new();
        self.routers.get(listener).unwrap_or_else(|| EMPTY.get_or_init(Router::default))
    }

    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name() == name)
    }
}
