//! Upper-cases response bodies (ASCII) and marks the response with
//! `x-rewritten: yes`.

use wasmgate_sdk::prelude::*;

struct BodyRewriter;

impl Plugin for BodyRewriter {
    type Config = NoConfig;

    fn new(_config: NoConfig, _cx: &Context) -> Result<Self, String> {
        Ok(BodyRewriter)
    }

    fn on_response(&self, response: &mut ResponseHead, _cx: &Context) -> ResponseFlow {
        response.set_header("x-rewritten", "yes");
        ResponseFlow::RewriteBody
    }

    fn on_response_body(&self, mut body: Vec<u8>, _cx: &Context) -> Vec<u8> {
        body.make_ascii_uppercase();
        body
    }
}

export_plugin!(BodyRewriter);
