//! Returns output the gateway must refuse: `{"mode": "..."}` with one of
//! `bad-header-name`, `crlf-value`, `nul-value`, `status-0`, `status-1000`,
//! `status-100`, `path-no-slash`, `path-space`, `bad-method`, `huge-body`,
//! `response-bad-header`, `response-status-1000`, `body-too-big`.

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
}

struct Misbehaver(Config);

impl Plugin for Misbehaver {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        Ok(Self(config))
    }

    fn on_request(&self, request: &mut Request, _cx: &Context) -> RequestFlow {
        match self.0.mode.as_str() {
            "bad-header-name" => request.set_header("bad name", "v"),
            "crlf-value" => request.set_header("x-injected", "a\r\nx-evil: 1"),
            "nul-value" => request.set_header("x-nul", "a\0b"),
            "status-0" => return RequestFlow::Respond(Response::new(0)),
            "status-1000" => return RequestFlow::Respond(Response::new(1000)),
            "status-100" => return RequestFlow::Respond(Response::new(100)),
            "path-no-slash" => request.set_path("no-slash"),
            "path-space" => request.set_path("/a b"),
            "bad-method" => request.set_method("G\nET"),
            "huge-body" => {
                return RequestFlow::Respond(Response::new(200).with_body(vec![b'x'; 4 << 20]))
            }
            _ => {}
        }
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, _cx: &Context) -> ResponseFlow {
        match self.0.mode.as_str() {
            "response-bad-header" => response.set_header("x-evil\r\n", "v"),
            "response-status-1000" => response.set_status(1000),
            "body-too-big" => return ResponseFlow::RewriteBody,
            // Visible proof that the response phase ran (for the request-side modes).
            _ => response.set_header("x-misbehaver-response", "ran"),
        }
        ResponseFlow::Continue
    }

    fn on_response_body(&self, _body: Vec<u8>, _cx: &Context) -> Vec<u8> {
        vec![b'x'; 4 << 20]
    }
}

export_plugin!(Misbehaver);
