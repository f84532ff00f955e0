//! A first wasmgate plugin: greets.
//!
//! - `GET /hello` is answered by the plugin itself: `200 <greeting>`.
//! - Every other request goes upstream with an `x-greeting` header, and the
//!   response comes back with `x-greeted-by: hello-plugin`.
//!
//! Config (in the gateway's route): `{ greeting = "hi" }`.

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to say. Must not be empty.
    greeting: String,
}

pub struct Hello {
    greeting: String,
}

impl Plugin for Hello {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        if config.greeting.is_empty() {
            return Err("greeting must not be empty".into());
        }
        Ok(Hello {
            greeting: config.greeting,
        })
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        if request.path() == "/hello" {
            cx.debug("answering /hello myself");
            return RequestFlow::Respond(Response::text(200, &self.greeting));
        }
        request.set_header("x-greeting", self.greeting.as_str());
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, _cx: &Context) -> ResponseFlow {
        response.set_header("x-greeted-by", "hello-plugin");
        ResponseFlow::Continue
    }
}

export_plugin!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_sdk::testing::Harness;

    #[test]
    fn answers_hello_itself() {
        let plugin = Harness::<Hello>::new(r#"{"greeting": "hi"}"#).unwrap();
        // `run` takes a request through both phases, with the upstream's answer.
        let upstream = Response::text(200, "upstream");
        let exchange = plugin.run(Request::new("GET", "/hello"), upstream);
        assert!(exchange.answered(), "the upstream is not asked");
        assert_eq!(exchange.response().status(), 200);
        assert_eq!(exchange.response().body_text(), Some("hi"));
    }

    #[test]
    fn greets_other_requests_on_the_way() {
        let plugin = Harness::<Hello>::new(r#"{"greeting": "hi"}"#).unwrap();
        let upstream = Response::text(200, "upstream");
        let exchange = plugin.run(Request::new("GET", "/api?x=1"), upstream);
        assert!(!exchange.answered());
        assert_eq!(exchange.request().header("x-greeting"), Some("hi"));
        let greeted_by = exchange.response().header("x-greeted-by");
        assert_eq!(greeted_by, Some("hello-plugin"));
        assert_eq!(exchange.response().body_text(), Some("upstream"));
    }

    #[test]
    fn bad_config_is_refused_with_a_reason() {
        let err = Harness::<Hello>::new(r#"{"greeting": ""}"#).err();
        assert_eq!(err.as_deref(), Some("greeting must not be empty"));
        let err = Harness::<Hello>::new(r#"{"greting": "hi"}"#)
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown key `greting`"), "{err}");
    }
}
