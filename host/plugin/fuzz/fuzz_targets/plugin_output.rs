//! Whatever a plugin returns — any method, path, query, header names and
//! values, status and body — the host's checks accept it whole or refuse it
//! whole, and never panic.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Output {
    method: String,
    path: String,
    query: Option<String>,
    /// A `header-block` (`name:value\n` lines), or any bytes at all.
    headers: Vec<u8>,
    status: u16,
    body: Vec<u8>,
}

fuzz_target!(|out: Output| {
    let _ = wasmgate_plugin::fuzzing::request_head(out.method, out.path, out.query, out.headers.clone());
    let _ = wasmgate_plugin::fuzzing::response(out.status, out.headers, out.body);
});
