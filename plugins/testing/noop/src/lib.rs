//! Does nothing: every hook keeps its default. Used to measure the cost of a
//! plugin call.

use wasmgate_sdk::prelude::*;

struct Noop;

impl Plugin for Noop {
    type Config = NoConfig;

    fn new(_config: NoConfig, _cx: &Context) -> Result<Self, String> {
        Ok(Noop)
    }
}

export_plugin!(Noop);
