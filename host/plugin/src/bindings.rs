//! The one place that runs `bindgen!`: Rust types and traits for the
//! `wasmgate:plugin/http-middleware` world. Nothing outside this crate sees
//! them; the rest of the crate converts to and from `http` types.

wasmtime::component::bindgen!({
    world: "http-middleware",
    path: "../../wit",
    // `take` fails the call when a fail-closed plugin entry's global state
    // (Redis) is unreachable; every other import always answers.
    imports: {
        "wasmgate:plugin/counters.take": trappable,
    },
});

// `RequestAction` and `ResponseAction` are at the root already (the world
// `use`s them).
pub(crate) use self::wasmgate::plugin::types::Response;
pub(crate) use self::wasmgate::plugin::{clock, context, counters, kv, log};
