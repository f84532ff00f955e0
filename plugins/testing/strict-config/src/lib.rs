//! Takes `{"limit": <u32 >= 1>}` and nothing else: anything else is refused
//! with a message naming the problem.

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    limit: u32,
}

struct Strict;

impl Plugin for Strict {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        if config.limit == 0 {
            return Err("limit must be at least 1".into());
        }
        Ok(Strict)
    }
}

export_plugin!(Strict);
