//! Misbehaves on purpose: `{"mode": "loop" | "alloc" | "panic" | "trap",
//! "phase": "request" | "response" | "body" | "init", "when_header": "x-boom"}`.
//! With `when_header`, it misbehaves only for heads carrying that header
//! (so a test can show the next request is served); otherwise always.

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    Loop,
    Alloc,
    Panic,
    Trap,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    #[default]
    Request,
    Response,
    Body,
    Init,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: Mode,
    #[serde(default)]
    phase: Phase,
    when_header: Option<String>,
}

struct Faulty(Config);

#[allow(clippy::empty_loop)]
fn misbehave(mode: Mode) {
    match mode {
        Mode::Loop => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Mode::Alloc => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Mode::Panic => panic!("faulty plugin panics on purpose"),
        Mode::Trap => std::process::abort(),
    }
}

impl Faulty {
    fn triggered(&self, phase: Phase, headers: &Headers) -> bool {
        self.0.phase == phase
            && self
                .0
                .when_header
                .as_deref()
                .is_none_or(|name| headers.contains(name))
    }
}

impl Plugin for Faulty {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        if config.phase == Phase::Init {
            misbehave(config.mode);
        }
        Ok(Self(config))
    }

    fn on_request(&self, request: &mut Request, _cx: &Context) -> RequestFlow {
        if self.triggered(Phase::Request, request.headers()) {
            misbehave(self.0.mode);
        }
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, _cx: &Context) -> ResponseFlow {
        if self.triggered(Phase::Response, response.headers()) {
            misbehave(self.0.mode);
        }
        if self.0.phase == Phase::Body {
            return ResponseFlow::RewriteBody;
        }
        ResponseFlow::Continue
    }

    fn on_response_body(&self, body: Vec<u8>, _cx: &Context) -> Vec<u8> {
        if self.0.phase == Phase::Body {
            misbehave(self.0.mode);
        }
        body
    }
}

export_plugin!(Faulty);
