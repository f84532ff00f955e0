//! The route's config, checked at load time.

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A new status for every response.
    status: Option<u16>,
    #[serde(default)]
    headers: HeaderChanges,
    body: Option<BodyConfig>,
    /// Largest (decoded) body rewritten.
    #[serde(default = "default_cap")]
    max_body_bytes: usize,
    /// Past the cap: `"fail"` answers 502, `"pass"` leaves the body alone.
    #[serde(default)]
    too_large: TooLarge,
    /// Also rewrite responses that may be streams (no `content-length`,
    /// or `text/event-stream`); they are buffered whole first.
    #[serde(default)]
    rewrite_streaming: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HeaderChanges {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    add: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyConfig {
    #[serde(default)]
    regex: Vec<RegexRule>,
    /// The new body, `${body}` standing for the (regex-rewritten) old one.
    template: Option<String>,
    /// Only bodies whose content-type starts with one of these (any if empty).
    #[serde(default)]
    content_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegexRule {
    #[serde(rename = "match")]
    pattern: String,
    replace: String,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum TooLarge {
    #[default]
    Fail,
    Pass,
}

fn default_cap() -> usize {
    1 << 20
}

/// The validated plan.
pub struct Plan {
    pub status: Option<u16>,
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
    /// Regex rules applied in order to every match.
    pub regex: Vec<(Regex, String)>,
    /// The template cut at each `${body}` (at least two pieces).
    pub template: Option<Vec<String>>,
    pub content_types: Vec<String>,
    pub rewrites_body: bool,
    pub cap: usize,
    pub too_large: TooLarge,
    pub rewrite_streaming: bool,
}

fn header_name(at: &str, name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    if !wasmgate_sdk::valid_header_name(name) || wasmgate_sdk::gateway_managed_header(&lower) {
        return Err(format!(
            "invalid config at `{at}`: `{name}` is not a header this plugin may change"
        ));
    }
    Ok(lower)
}

fn value(at: &str, v: &str) -> Result<String, String> {
    if v.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(format!(
            "invalid config at `{at}`: values may not hold CR, LF or NUL"
        ));
    }
    Ok(v.to_owned())
}

impl Config {
    pub fn validate(self) -> Result<Plan, String> {
        if self.status.is_some_and(|s| !(200..=599).contains(&s)) {
            return Err("invalid config at `status`: must be 200..=599".into());
        }
        let mut plan = Plan {
            status: self.status,
            set: Vec::new(),
            add: Vec::new(),
            remove: Vec::new(),
            regex: Vec::new(),
            template: None,
            content_types: Vec::new(),
            rewrites_body: false,
            cap: self.max_body_bytes,
            too_large: self.too_large,
            rewrite_streaming: self.rewrite_streaming,
        };
        for (name, v) in &self.headers.set {
            let at = format!("headers.set.{name}");
            plan.set.push((header_name(&at, name)?, value(&at, v)?));
        }
        for (name, v) in &self.headers.add {
            let at = format!("headers.add.{name}");
            plan.add.push((header_name(&at, name)?, value(&at, v)?));
        }
        for (i, name) in self.headers.remove.iter().enumerate() {
            plan.remove
                .push(header_name(&format!("headers.remove[{i}]"), name)?);
        }
        if let Some(body) = self.body {
            for (i, rule) in body.regex.into_iter().enumerate() {
                let re = Regex::new(&rule.pattern)
                    .map_err(|e| format!("invalid config at `body.regex[{i}].match`: {e}"))?;
                plan.regex.push((re, rule.replace));
            }
            if let Some(t) = body.template {
                let pieces: Vec<String> = t.split("${body}").map(str::to_owned).collect();
                if pieces.len() < 2 {
                    return Err("invalid config at `body.template`: must contain `${body}`".into());
                }
                plan.template = Some(pieces);
            }
            plan.content_types = body
                .content_types
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect();
            plan.rewrites_body = !plan.regex.is_empty() || plan.template.is_some();
            if !plan.rewrites_body {
                return Err("invalid config at `body`: give `regex` rules or a `template`".into());
            }
        }
        if plan.cap == 0 {
            return Err("invalid config at `max_body_bytes`: must be at least 1".into());
        }
        Ok(plan)
    }
}
