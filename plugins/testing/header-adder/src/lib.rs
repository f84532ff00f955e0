//! Adds headers: `{"request": {"x-a": "1"}, "response": {"x-b": "2"}}`.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    request: BTreeMap<String, String>,
    #[serde(default)]
    response: BTreeMap<String, String>,
}

struct HeaderAdder(Config);

impl Plugin for HeaderAdder {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        Ok(Self(config))
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        if self.0.request.is_empty() {
            cx.skip_phase();
        }
        for (name, value) in &self.0.request {
            request.set_header(name, value.as_str());
        }
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        if self.0.response.is_empty() {
            cx.skip_phase();
        }
        for (name, value) in &self.0.response {
            response.set_header(name, value.as_str());
        }
        ResponseFlow::Continue
    }
}

export_plugin!(HeaderAdder);
