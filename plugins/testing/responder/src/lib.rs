//! Answers every request: `{"status": 403, "body": "no", "headers": {...}}`.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

fn ok() -> u16 {
    200
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    body: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

struct Responder(Config);

impl Plugin for Responder {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        Ok(Self(config))
    }

    fn on_request(&self, _request: &mut Request, _cx: &Context) -> RequestFlow {
        let mut response = Response::new(self.0.status).with_body(self.0.body.as_str());
        for (name, value) in &self.0.headers {
            response = response.with_header(name, value.as_str());
        }
        RequestFlow::Respond(response)
    }
}

export_plugin!(Responder);
