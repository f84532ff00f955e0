//! Where a key is in the config file, and how messages name a route: for
//! problems found once the file has been parsed (a plugin refusing its config,
//! a route naming a plugin the folder does not have), so that they too say
//! `wasmgate.toml:14: route "api" plugins[0].config.retry_after_s: ...`.

use toml_edit::{ImDocument, Item};

use super::{Config, ConfigError};

/// How messages name route `index`: `route "api"` when it has a name, else
/// `route[0]` (its place among the file's `[[route]]` tables).
pub fn route_label(name: Option<&str>, index: usize) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("route {name:?}"),
        None => format!("route[{index}]"),
    }
}

/// `key` of the route `label` names: `route "api" plugins[0]`, `route[0].plugins[0]`.
pub fn route_key(label: &str, key: &str) -> String {
    match label.ends_with(']') {
        true => format!("{label}.{key}"),
        false => format!("{label} {key}"),
    }
}

/// A key path as serde and messages write it (`route[0].plugins[1].config.a`),
/// with a route's `route[i]` turned into its label when the route has a name.
pub fn with_route_label(text: &str, key: &str) -> String {
    let Some((index, rest)) = route_index(key) else {
        return key.to_owned();
    };
    let name = ImDocument::parse(text)
        .ok()
        .and_then(|doc| doc.as_item().get("route")?.get(index)?.get("name")?.as_str().map(str::to_owned));
    match name.filter(|n| !n.is_empty()) {
        Some(name) => match rest.strip_prefix('.') {
            Some(rest) => route_key(&route_label(Some(&name), index), rest),
            None => format!("{}{rest}", route_label(Some(&name), index)),
        },
        None => key.to_owned(),
    }
}

/// `route[3].x` → `(3, ".x")`.
fn route_index(key: &str) -> Option<(usize, &str)> {
    let rest = key.strip_prefix("route[")?;
    let (index, rest) = rest.split_once(']')?;
    Some((index.parse().ok()?, rest))
}

/// One step of a key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `plugins[0].config.limits[2]` → `plugins`, `0`, `config`, `limits`, `2`.
/// (A key with a `.` or `[` in it cannot be told apart; the line found is then
/// that of the deepest part that matched.)
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut indexes) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some(rest) = indexes.strip_prefix('[') {
            let Some((index, after)) = rest.split_once(']') else { break };
            match index.parse() {
                Ok(index) => steps.push(Step::Index(index)),
                Err(_) => steps.push(Step::Key(index)),
            }
            indexes = after;
        }
    }
    steps
}

/// The 1-based line of `path` in `text`, or of its deepest part that exists
/// (a missing key is reported at its table). `None` if the text does not parse.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let doc = ImDocument::parse(text).ok()?;
    let mut item: &Item = doc.as_item();
    let mut offset = None;
    for step in steps(path) {
        let (next, at) = match step {
            Step::Key(key) => {
                let Some(next) = item.get(key) else { break };
                // A key's own line: a table or array value may start later.
                let key_span = item.as_table_like().and_then(|t| t.key(key)).and_then(|k| k.span());
                (next, key_span.or_else(|| next.span()))
            }
            Step::Index(index) => {
                let Some(next) = item.get(index) else { break };
                (next, next.span())
            }
        };
        item = next;
        offset = at.map(|span| span.start).or(offset);
    }
    offset.map(|offset| text[..offset.min(text.len())].matches('\n').count() + 1)
}

impl Config {
    /// A problem with `key` (`plugins[0].config.retry_after_s`) of route `route`
    /// (an index into `routes`), located in the config file.
    pub fn route_error(&self, route: usize, key: &str, reason: impl Into<String>) -> ConfigError {
        let label = self.routes.get(route).map_or_else(|| route_label(None, route), |r| r.label.clone());
        let written = &self.as_written;
        ConfigError {
            file: written.file().to_owned(),
            line: line_of(written.text(), &format!("route[{route}].{key}")),
            key: route_key(&label, key),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[[route]]
listener = "web"
upstream = "up"
plugins = [{ name = "a" }]

[[route]]
name = "api"
listener = "web"
upstream = "up"

[[route.plugins]]
name = "rate-limit"

[[route.plugins]]
name = "retry"
config.mode = "fixed"
config.retry_after_s = "two minutes"
config.limits = [
  { rate = 1 },
  { rate = "many" },
]
"#;

    #[test]
    fn a_key_is_found_on_its_line_and_a_missing_one_at_its_table() {
        assert_eq!(line_of(TEXT, "route[1].plugins[1].config.retry_after_s"), Some(18));
        assert_eq!(line_of(TEXT, "route[1].plugins[1].config.limits[1].rate"), Some(21));
        assert_eq!(line_of(TEXT, "route[1].plugins[1].config.nowhere"), Some(17));
        assert_eq!(line_of(TEXT, "route[1].plugins[0].name"), Some(13));
        assert_eq!(line_of(TEXT, "route[0].plugins[0].config"), Some(5));
        assert_eq!(line_of("not = [toml", "route[0]"), None);
    }

    #[test]
    fn a_route_is_named_by_its_name_or_else_by_its_place() {
        assert_eq!(route_label(Some("api"), 1), r#"route "api""#);
        assert_eq!(route_label(None, 0), "route[0]");
        assert_eq!(route_label(Some(""), 2), "route[2]");
        assert_eq!(route_key(r#"route "api""#, "plugins[0].name"), r#"route "api" plugins[0].name"#);
        assert_eq!(route_key("route[0]", "plugins[0].name"), "route[0].plugins[0].name");
        assert_eq!(with_route_label(TEXT, "route[1].prefix"), r#"route "api" prefix"#);
        assert_eq!(with_route_label(TEXT, "route[1]"), r#"route "api""#);
        assert_eq!(with_route_label(TEXT, "route[0].prefix"), "route[0].prefix");
        assert_eq!(with_route_label(TEXT, "upstream[0].name"), "upstream[0].name");
    }
}
