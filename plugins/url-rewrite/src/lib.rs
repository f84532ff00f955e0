//! Rewrites the request target. Order: `strip_prefix`, the first matching
//! of `rules`, `add_prefix`, then query `set`/`remove`, then `host`.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    rules: Vec<Rule>,
    strip_prefix: Option<String>,
    add_prefix: Option<String>,
    #[serde(default)]
    query: QueryChanges,
    /// A new `Host` header for the upstream.
    host: Option<String>,
}

/// `{ match = "^/dir(.*)", replace = "$1" }`: the first match in the path
/// is replaced (`$1`, `${name}` refer to groups).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(rename = "match")]
    pattern: String,
    replace: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QueryChanges {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// A rule: the pattern, the literal every match starts with (when the
/// pattern says so), and the replacement.
struct Compiled {
    regex: Regex,
    /// Checked before the regex, which in Wasm costs far more than a
    /// prefix comparison: most paths fail at the first bytes.
    anchor: Option<String>,
    /// Set when the pattern is `^literal(.*)` (or `...(.*)$`): a match is
    /// then the whole path and group 1 what follows the literal, so the
    /// rule needs no regex run at all (the common "strip a prefix" rule).
    rest_after_anchor: bool,
    replace: String,
}

impl Compiled {
    /// The path after this rule, or `None` when the rule does not match.
    fn apply(&self, path: &str) -> Option<String> {
        if let Some(anchor) = &self.anchor {
            let rest = path.strip_prefix(anchor.as_str())?;
            // `.` matches anything but a newline, which a path never holds.
            if self.rest_after_anchor && !rest.contains('\n') {
                return Some(expand(&self.replace, path, rest));
            }
        }
        // One run: `replace` borrows when nothing matched.
        match self.regex.replace(path, self.replace.as_str()) {
            std::borrow::Cow::Owned(new) => Some(new),
            std::borrow::Cow::Borrowed(_) => None,
        }
    }
}

/// Whether `pattern` is `^` + `anchor` + `(.*)`, optionally ending in `$`,
/// with an anchor of plain path characters only.
fn rest_after_anchor(pattern: &str, anchor: Option<&str>) -> bool {
    let Some(anchor) = anchor else { return false };
    let plain = anchor
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_~%".contains(&b));
    let tail = pattern.strip_prefix('^').and_then(|p| p.strip_prefix(anchor));
    plain && matches!(tail, Some("(.*)" | "(.*)$"))
}

/// `replace` with the groups of a `rest_after_anchor` match: group 0 is the
/// whole path, group 1 `rest`. Read as the regex crate reads it (`$$`,
/// `${n}`, `$n`; `check_replacement` refused other groups at `init`).
fn expand(replace: &str, whole: &str, rest: &str) -> String {
    let mut out = String::with_capacity(replace.len() + whole.len());
    let mut tail = replace;
    while let Some(i) = tail.find('$') {
        out.push_str(&tail[..i]);
        tail = &tail[i + 1..];
        let (name, after) = if let Some(after) = tail.strip_prefix('$') {
            out.push('$');
            tail = after;
            continue;
        } else if let Some(braced) = tail.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => {
                    out.push('$');
                    continue;
                }
            }
        } else {
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if end == 0 {
                out.push('$');
                continue;
            }
            (&tail[..end], &tail[end..])
        };
        match name.parse::<usize>() {
            Ok(0) => out.push_str(whole),
            Ok(1) => out.push_str(rest),
            _ => {}
        }
        tail = after;
    }
    out.push_str(tail);
    out
}

pub struct UrlRewrite {
    rules: Vec<Compiled>,
    strip_prefix: Option<String>,
    add_prefix: Option<String>,
    query_set: Vec<(String, String)>,
    query_remove: Vec<String>,
    host: Option<String>,
}

fn prefix(at: &str, p: Option<String>) -> Result<Option<String>, String> {
    match p {
        Some(p) if !p.starts_with('/') || p.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#') => {
            Err(format!("invalid config at `{at}`: `{p}` must start with `/` and hold no spaces, controls, `?` or `#`"))
        }
        Some(p) => Ok(Some(p.trim_end_matches('/').to_owned())),
        None => Ok(None),
    }
}

/// The literal a match of `pattern` must start the path with: the plain
/// characters after a leading `^`, when the pattern has no alternation (a
/// `|` could make the `^` cover one branch only) and starts with neither a
/// flag group nor an escape.
fn anchor(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix('^')?;
    if pattern.contains('|') {
        return None;
    }
    const SPECIAL: &[char] = &['\\', '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '^', '$'];
    let end = rest.find(SPECIAL).unwrap_or(rest.len());
    let mut literal = &rest[..end];
    // `?`, `*` and `{0,..}` make the last character optional.
    if matches!(rest[end..].chars().next(), Some('?' | '*' | '{')) {
        let last = literal.chars().next_back().map_or(0, char::len_utf8);
        literal = &literal[..literal.len() - last];
    }
    (!literal.is_empty()).then(|| literal.to_owned())
}

/// The groups a replacement refers to, as the regex crate reads them: `$$`
/// is a `$`; `${name}` is a group; `$name` takes the longest run of letters,
/// digits and `_` (so `$1a` is a group named `1a`, not group 1 and an `a`).
fn references(replace: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = replace;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
        } else if let Some(braced) = rest.strip_prefix('{') {
            let Some(end) = braced.find('}') else { break };
            found.push(&braced[..end]);
            rest = &braced[end + 1..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 {
                found.push(&rest[..end]);
            }
            rest = &rest[end..];
        }
    }
    found
}

/// Refuses a replacement that names a group `regex` does not have (the
/// regex crate would put nothing there), or holds `?` or `#`.
fn check_replacement(regex: &Regex, replace: &str) -> Result<(), String> {
    if replace.contains(['?', '#']) {
        return Err("gives the path, which cannot hold `?` or `#` (change the query with `query`)".into());
    }
    for name in references(replace) {
        let known = match name.parse::<usize>() {
            Ok(n) => n < regex.captures_len(),
            Err(_) => regex.capture_names().flatten().any(|n| n == name),
        };
        if !known {
            let hint = match name.find(|c: char| !c.is_ascii_digit()) {
                Some(at) if at > 0 => format!(" (for group {} then `{}`, write `${{{}}}{}`)", &name[..at], &name[at..], &name[..at], &name[at..]),
                _ => String::new(),
            };
            return Err(format!("refers to group `{name}`, which the pattern does not have{hint}"));
        }
    }
    Ok(())
}

impl Plugin for UrlRewrite {
    type Config = Config;

    fn new(c: Config, _cx: &Context) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (i, rule) in c.rules.into_iter().enumerate() {
            let regex = Regex::new(&rule.pattern)
                .map_err(|e| format!("invalid config at `rules[{i}].match`: {e}"))?;
            check_replacement(&regex, &rule.replace)
                .map_err(|e| format!("invalid config at `rules[{i}].replace`: {e}"))?;
            let anchor = anchor(&rule.pattern);
            let rest_after_anchor = rest_after_anchor(&rule.pattern, anchor.as_deref());
            rules.push(Compiled { regex, anchor, rest_after_anchor, replace: rule.replace });
        }
        if let Some(host) = &c.host {
            if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'/') {
                return Err(format!("invalid config at `host`: `{host}` is not a host"));
            }
        }
        Ok(Self {
            rules,
            strip_prefix: prefix("strip_prefix", c.strip_prefix)?,
            add_prefix: prefix("add_prefix", c.add_prefix)?,
            query_set: c.query.set.into_iter().collect(),
            query_remove: c.query.remove,
            host: c.host,
        })
    }

    fn on_request(&self, request: &mut Request, _cx: &Context) -> RequestFlow {
        let mut path = request.path().to_owned();
        if let Some(strip) = &self.strip_prefix {
            if let Some(rest) = path.strip_prefix(strip.as_str()) {
                if rest.is_empty() || rest.starts_with('/') {
                    path = rest.to_owned();
                }
            }
        }
        if let Some(new) = self.rules.iter().find_map(|rule| rule.apply(&path)) {
            path = new;
        }
        if let Some(add) = &self.add_prefix {
            path = if path.starts_with('/') {
                format!("{add}{path}")
            } else {
                format!("{add}/{path}")
            };
        }
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if path != request.path() {
            request.set_path(&path);
        }
        for name in &self.query_remove {
            request.remove_query_param(name);
        }
        for (name, value) in &self.query_set {
            request.set_query_param(name, value);
        }
        if let Some(host) = &self.host {
            request.set_header("host", host.as_str());
        }
        RequestFlow::Continue
    }
}

export_plugin!(UrlRewrite);
