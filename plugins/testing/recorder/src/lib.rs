//! Records phase order: `{"name": "a"}` appends `req:a` to the request's
//! `x-phases` header and `resp:a` to the response's; the whole history
//! travels in the scratch map under `phases`, so the final response header
//! shows every phase of the chain in order.

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    name: String,
}

struct Recorder(Config);

fn push(cx: &Context, entry: &str) -> String {
    let phases = match cx.scratch_get("phases") {
        Some(before) if !before.is_empty() => format!("{before},{entry}"),
        _ => entry.to_owned(),
    };
    cx.scratch_set("phases", &phases);
    phases
}

impl Plugin for Recorder {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        Ok(Self(config))
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let phases = push(cx, &format!("req:{}", self.0.name));
        request.set_header("x-phases", phases);
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        let phases = push(cx, &format!("resp:{}", self.0.name));
        response.set_header("x-phases", phases);
        ResponseFlow::Continue
    }
}

export_plugin!(Recorder);
