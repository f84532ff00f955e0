//! Burns CPU in `on_request`: `x-burn: N` rounds of arithmetic (none without
//! the header), then lets the request go on with `x-burned: <checksum>`. The
//! same N costs the same CPU time on every call, however busy the machine.

use wasmgate_sdk::prelude::*;

struct CpuBurner;

/// `rounds` steps of xorshift: work the compiler cannot skip or shorten.
fn burn(rounds: u64) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x);
    }
    x
}

impl Plugin for CpuBurner {
    type Config = NoConfig;

    fn new(_config: NoConfig, _cx: &Context) -> Result<Self, String> {
        Ok(CpuBurner)
    }

    fn on_request(&self, request: &mut Request, _cx: &Context) -> RequestFlow {
        let rounds = request
            .header("x-burn")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let checksum = burn(rounds);
        request.set_header("x-burned", checksum.to_string());
        RequestFlow::Continue
    }
}

export_plugin!(CpuBurner);
