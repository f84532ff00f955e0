//! What a route's plugin entry gets wrong, in the author's terms: a plugin the
//! folder does not have (with those it has and the closest name), or a config
//! the plugin's `init` refuses, at the key the SDK names.

use std::path::Path;

use wasmgate_plugin::PluginError;

/// Why route entry `name` has no plugin, and what is there instead.
pub fn missing(name: &str, dir: &Path, available: &[&str]) -> String {
    let mut reason = format!("no plugin `{name}` in {}", dir.display());
    if available.is_empty() {
        reason.push_str(" (the folder has no .wasm files)");
        return reason;
    }
    reason.push_str(&format!("; available: {}", available.join(", ")));
    if let Some(close) = closest(name, available) {
        reason.push_str(&format!("; did you mean `{close}`?"));
    }
    reason
}

/// The available name fewest edits away from `name`, if that is a slip of the
/// keyboard (a third of its length at most, between 1 and 3 edits).
fn closest<'a>(name: &str, available: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    available
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance: insertions, deletions and substitutions of characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Where under the route (`plugins[0].config.retry_after_s`) and why plugin
/// entry `at` could not be configured. The SDK says `invalid config at
/// `<path>`: <reason>`; other refusals are the plugin's own words.
pub fn configure(at: usize, error: &PluginError) -> (String, String) {
    let entry = format!("plugins[{at}]");
    let PluginError::InitRejected { plugin, message, .. } = error else {
        return (entry, error.to_string());
    };
    if let Some((path, reason)) = message.strip_prefix("invalid config at `").and_then(|m| m.split_once("`: ")) {
        return (format!("{entry}.config.{path}"), without_json_position(reason).to_owned());
    }
    if let Some(reason) = message.strip_prefix("invalid config: ") {
        return (format!("{entry}.config"), without_json_position(reason).to_owned());
    }
    (format!("{entry}.config"), format!("plugin `{plugin}` refused it: {message}"))
}

/// `reason` without serde_json's ` at line 1 column 108` (SDKs before 0.3 sent
/// it): a place in JSON the gateway wrote, not in the operator's file.
fn without_json_position(reason: &str) -> &str {
    let Some((before, position)) = reason.rsplit_once(" at line ") else { return reason };
    let numbers = position.split_once(" column ");
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match numbers {
        Some((line, column)) if digits(line) && digits(column) => before,
        _ => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_plugin_lists_the_folder_and_suggests_the_closest_name() {
        let dir = Path::new("/srv/gw/plugins");
        assert_eq!(
            missing("rate-limt", dir, &["headers", "rate-limit"]),
            "no plugin `rate-limt` in /srv/gw/plugins; available: headers, rate-limit; did you mean `rate-limit`?"
        );
        assert_eq!(
            missing("auth", dir, &["headers", "rate-limit"]),
            "no plugin `auth` in /srv/gw/plugins; available: headers, rate-limit"
        );
        assert_eq!(missing("auth", dir, &[]), "no plugin `auth` in /srv/gw/plugins (the folder has no .wasm files)");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(closest("jwt", &["jwt-auth", "jwk"]), Some("jwk"));
    }

    fn rejected(message: &str) -> (String, String) {
        let error = PluginError::InitRejected {
            plugin: "retry".into(),
            version: "0a1b2c3d4e5f".into(),
            message: message.into(),
        };
        configure(1, &error)
    }

    #[test]
    fn a_refused_config_is_placed_at_the_key_the_sdk_names() {
        assert_eq!(
            rejected(r#"invalid config at `retry_after_s`: expected an integer, found "two minutes""#),
            ("plugins[1].config.retry_after_s".into(), r#"expected an integer, found "two minutes""#.into())
        );
        // An SDK before 0.3: serde's words and a position in the generated JSON.
        assert_eq!(
            rejected(
                r#"invalid config at `limits[0].rate`: invalid type: string "x", expected u32 at line 1 column 108"#
            ),
            ("plugins[1].config.limits[0].rate".into(), r#"invalid type: string "x", expected u32"#.into())
        );
        assert_eq!(
            rejected("invalid config: missing key `limit`"),
            ("plugins[1].config".into(), "missing key `limit`".into())
        );
        assert_eq!(
            rejected("limit must be at least 1"),
            ("plugins[1].config".into(), "plugin `retry` refused it: limit must be at least 1".into())
        );
        let start = PluginError::Start { plugin: "retry".into(), version: "0a1b".into(), reason: "trapped".into() };
        assert_eq!(
            configure(0, &start),
            ("plugins[0]".into(), "plugin `retry` (0a1b) failed to start: trapped".into())
        );
    }
}
