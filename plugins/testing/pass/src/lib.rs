//! Implements both phases and changes nothing: every request costs one real
//! `on-request` and one `on-response` call. Used to measure what a plugin call
//! costs (`noop`, which keeps the default hooks, is not called at all once the
//! gateway has learnt it has no phases).

use wasmgate_sdk::prelude::*;

struct Pass;

impl Plugin for Pass {
    type Config = NoConfig;

    fn new(_config: NoConfig, _cx: &Context) -> Result<Self, String> {
        Ok(Pass)
    }

    fn on_request(&self, _request: &mut Request, _cx: &Context) -> RequestFlow {
        RequestFlow::Continue
    }

    fn on_response(&self, _response: &mut ResponseHead, _cx: &Context) -> ResponseFlow {
        ResponseFlow::Continue
    }
}

export_plugin!(Pass);
