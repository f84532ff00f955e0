//! Adds, sets, removes and renames request and response headers. Order in
//! each direction: rename, remove, set, add.

mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Deserialize;
use template::Template;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    request: Changes,
    #[serde(default)]
    response: Changes,
}

/// `{ set = { "x-a" = "1" }, add = {...}, remove = ["x-b"], rename = { "x-old" = "x-new" } }`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Changes {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    add: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    rename: BTreeMap<String, String>,
}

/// Validated changes for one direction.
#[derive(Default)]
struct Plan {
    rename: Vec<(String, String)>,
    remove: Vec<String>,
    set: Vec<(String, Template)>,
    add: Vec<(String, Template)>,
}

/// Header names must be tokens; the framing headers stay the gateway's.
fn header_name(at: &str, name: &str) -> Result<String, String> {
    if !valid_header_name(name) {
        return Err(format!(
            "invalid config at `{at}`: `{name}` is not a header name"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if gateway_managed_header(&lower) {
        return Err(format!(
            "invalid config at `{at}`: `{name}` is managed by the gateway"
        ));
    }
    Ok(lower)
}

impl Plan {
    fn new(at: &str, c: Changes) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for (from, to) in c.rename {
            let key = format!("{at}.rename.{from}");
            plan.rename
                .push((header_name(&key, &from)?, header_name(&key, &to)?));
        }
        for (i, name) in c.remove.iter().enumerate() {
            plan.remove
                .push(header_name(&format!("{at}.remove[{i}]"), name)?);
        }
        for (kind, list, into) in [("set", c.set, &mut plan.set), ("add", c.add, &mut plan.add)] {
            for (name, value) in list {
                let key = format!("{at}.{kind}.{name}");
                into.push((header_name(&key, &name)?, Template::parse(&key, &value)?));
            }
        }
        Ok(plan)
    }

    fn uses_request_id(&self) -> bool {
        self.set.iter().chain(&self.add).any(|(_, t)| t.uses_request_id())
    }

    fn is_empty(&self) -> bool {
        self.rename.is_empty()
            && self.remove.is_empty()
            && self.set.is_empty()
            && self.add.is_empty()
    }

    /// Applies to `headers`; `request` feeds the variables.
    fn apply(&self, headers: &mut Headers, request: Option<&Request>, cx: &Context) {
        for (from, to) in &self.rename {
            let values: Vec<Vec<u8>> = headers.get_all(from).map(<[u8]>::to_vec).collect();
            if headers.remove(from) {
                headers.remove(to);
                for v in values {
                    headers.append(to, v);
                }
            }
        }
        for name in &self.remove {
            headers.remove(name);
        }
        let rendered: Vec<(bool, &str, String)> = self
            .set
            .iter()
            .map(|(n, t)| (true, n.as_str(), t.render(request, cx)))
            .chain(
                self.add
                    .iter()
                    .map(|(n, t)| (false, n.as_str(), t.render(request, cx))),
            )
            .collect();
        for (set, name, value) in rendered {
            if set {
                headers.set(name, value);
            } else {
                headers.append(name, value);
            }
        }
    }
}

pub struct HeadersPlugin {
    request: Plan,
    response: Plan,
}

impl Plugin for HeadersPlugin {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        Ok(Self {
            request: Plan::new("request", config.request)?,
            response: Plan::new("response", config.response)?,
        })
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        // The response has no request to read `x-request-id` from: keep the
        // client's for it (unless the request-id plugin already left one).
        if self.response.uses_request_id() && cx.scratch_get("request_id").is_none() {
            if let Some(id) = request.header("x-request-id") {
                cx.scratch_set("request_id", id);
            }
        }
        if !self.request.is_empty() {
            let snapshot = request.clone();
            self.request
                .apply(request.headers_mut(), Some(&snapshot), cx);
        }
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        if !self.response.is_empty() {
            self.response.apply(response.headers_mut(), None, cx);
        }
        ResponseFlow::Continue
    }
}

export_plugin!(HeadersPlugin);
