//! Whatever a plugin returns — any edit lines, header names and values,
//! status and body — the host's checks accept it whole or refuse it whole,
//! and never panic.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Output {
    /// `edits` (`=name:value\n`, `+…`, `-name\n`, `=:path:…`) or any bytes.
    edits: Vec<u8>,
    /// A `header-block` (`name:value\n` lines), or any bytes at all.
    headers: Vec<u8>,
    status: u16,
    body: Vec<u8>,
}

fuzz_target!(|out: Output| {
    let _ = wasmgate_plugin::fuzzing::request_edits(&out.edits);
    let _ = wasmgate_plugin::fuzzing::response(out.status, out.edits, out.body);
    let _ = wasmgate_plugin::fuzzing::response(out.status, out.headers, Vec::new());
});
