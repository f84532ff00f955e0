//! Does nothing: every hook keeps its default, so after its first request the
//! gateway calls it in neither phase (see `pass` for a plugin that is called).

use wasmgate_sdk::prelude::*;

struct Noop;

impl Plugin for Noop {
    type Config = NoConfig;

    fn new(_config: NoConfig, _cx: &Context) -> Result<Self, String> {
        Ok(Noop)
    }
}

export_plugin!(Noop);
