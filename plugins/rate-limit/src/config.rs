//! The route's config, checked at load time.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `{ rate = 100, per = "second", burst = 10, key = "client-ip" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Tokens added per `per`.
    rate: f64,
    #[serde(default)]
    per: Per,
    /// Bucket size: requests allowed at once. Default: `rate` rounded up.
    burst: Option<u32>,
    #[serde(default)]
    key: KeyKind,
    /// The header to key on, with `key = "header"`.
    header: Option<String>,
    /// The scratch entry to key on, with `key = "scratch"`.
    scratch: Option<String>,
    /// Other limits for some key values: `{ "app-a" = { rate = 5, burst = 5 } }`.
    #[serde(default)]
    overrides: BTreeMap<String, Override>,
    /// Whether to send `X-RateLimit-*` headers (on every response).
    #[serde(default = "yes")]
    pub headers: bool,
    /// The refusal status.
    #[serde(default = "too_many")]
    pub status: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Override {
    rate: f64,
    per: Option<Per>,
    burst: Option<u32>,
}

fn yes() -> bool {
    true
}

fn too_many() -> u16 {
    429
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Per {
    #[default]
    Second,
    Minute,
    Hour,
    /// A quota: `rate` requests per UTC calendar day, not a refilling bucket.
    Day,
}

impl Per {
    fn seconds(self) -> f64 {
        match self {
            Per::Second => 1.0,
            Per::Minute => 60.0,
            Per::Hour => 3600.0,
            Per::Day => 86_400.0,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum KeyKind {
    #[default]
    ClientIp,
    Route,
    Header,
    Consumer,
    Scratch,
}

/// What a bucket is keyed by.
pub enum KeyBy {
    ClientIp,
    Route,
    /// A request header (lower-case name).
    Header(String),
    /// The consumer id an auth plugin left in the scratch map.
    Consumer,
    /// Any scratch-map entry, e.g. `jwt.iss` set by jwt-auth.
    Scratch(String),
}

/// A validated limit.
pub struct Limit {
    pub per_second: f64,
    pub burst: u32,
    /// `per = "day"`: `burst` requests per UTC day, counted in a bucket
    /// that never refills and is keyed by the day.
    pub daily: bool,
}

fn limit(at: &str, rate: f64, per: Per, burst: Option<u32>) -> Result<Limit, String> {
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!(
            "invalid config at `{at}rate`: must be a positive number"
        ));
    }
    if let Per::Day = per {
        if burst.is_some() {
            return Err(format!(
                "invalid config at `{at}burst`: not used with per = \"day\" (a quota of `rate` requests per UTC day)"
            ));
        }
        if rate.fract() != 0.0 || rate > f64::from(u32::MAX) {
            return Err(format!(
                "invalid config at `{at}rate`: with per = \"day\", a whole number of requests up to 4294967295"
            ));
        }
        return Ok(Limit {
            per_second: 0.0,
            burst: rate as u32,
            daily: true,
        });
    }
    let burst = burst.unwrap_or(rate.ceil().min(f64::from(u32::MAX)) as u32);
    if burst == 0 {
        return Err(format!("invalid config at `{at}burst`: must be at least 1"));
    }
    Ok(Limit {
        per_second: rate / per.seconds(),
        burst,
        daily: false,
    })
}

/// What a valid config gives: the key, the main limit, the overrides.
pub type Validated = (KeyBy, Limit, Vec<(String, Limit)>);

impl Config {
    pub fn validate(&self) -> Result<Validated, String> {
        let main = limit("", self.rate, self.per, self.burst)?;
        if !(200..=599).contains(&self.status) {
            return Err("invalid config at `status`: must be 200..=599".into());
        }
        let key = match self.key {
            KeyKind::ClientIp => KeyBy::ClientIp,
            KeyKind::Route => KeyBy::Route,
            KeyKind::Consumer => KeyBy::Consumer,
            KeyKind::Header => match &self.header {
                Some(h) if !h.is_empty() => KeyBy::Header(h.to_ascii_lowercase()),
                _ => {
                    return Err("invalid config at `header`: required with key = \"header\"".into())
                }
            },
            KeyKind::Scratch => match &self.scratch {
                Some(s) if !s.is_empty() => KeyBy::Scratch(s.clone()),
                _ => {
                    return Err(
                        "invalid config at `scratch`: required with key = \"scratch\"".into(),
                    )
                }
            },
        };
        if self.header.is_some() && !matches!(key, KeyBy::Header(_)) {
            return Err("invalid config at `header`: only used with key = \"header\"".into());
        }
        if self.scratch.is_some() && !matches!(key, KeyBy::Scratch(_)) {
            return Err("invalid config at `scratch`: only used with key = \"scratch\"".into());
        }
        let mut overrides = Vec::new();
        for (value, o) in &self.overrides {
            let at = format!("overrides.{value}.");
            overrides.push((
                value.clone(),
                limit(&at, o.rate, o.per.unwrap_or(self.per), o.burst)?,
            ));
        }
        Ok((key, main, overrides))
    }
}
