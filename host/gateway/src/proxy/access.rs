//! What the access log line says beyond the request itself: the W3C trace id
//! the client sent (so a line can be found from a trace), the path cut to
//! a bounded length (a log line must not grow with what a client sends), and
//! the plugin that answered, when one did.

use http::HeaderMap;

use super::error::ProxyError;

/// Which plugin answered a request itself (or failed closed with a 500), in
/// the answer's extensions for the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredBy(pub String);

/// The plugin that answered, when `e` is a plugin's answer.
pub fn answered_by(e: &ProxyError) -> Option<String> {
    match e {
        ProxyError::Answered(answer) => answer.0.extensions().get::<AnsweredBy>().map(|by| by.0.clone()),
        _ => None,
    }
}

/// The longest path an access line carries; longer ones end in `...`.
const MAX_PATH: usize = 1024;

/// The trace id of a valid `traceparent`, lower case; `None` without one or
/// for an invalid one (`crate::telemetry::parse_traceparent`).
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    let parent = crate::telemetry::parse_traceparent(headers.get("traceparent")?.as_bytes())?;
    Some(crate::telemetry::to_hex(&parent.trace_id))
}

/// `path`, or its first `MAX_PATH` bytes and `...`.
pub fn bounded(path: &str) -> std::borrow::Cow<'_, str> {
    if path.len() <= MAX_PATH {
        return path.into();
    }
    let mut end = MAX_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", value.parse().unwrap());
        trace_id(&headers)
    }

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        // Which values are valid is `telemetry::context`'s to test.
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(id(good).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(id("garbage"), None);
        assert_eq!(trace_id(&HeaderMap::new()), None);
    }

    #[test]
    fn a_plugins_answer_names_the_plugin_and_nothing_else_does() {
        let mut answer = http::Response::new(crate::proxy::body::ResponseBody::full("slow down"));
        answer.extensions_mut().insert(AnsweredBy("rate-limit".into()));
        let answered = ProxyError::Answered(crate::proxy::error::Answer(Box::new(answer)));
        assert_eq!(answered_by(&answered).as_deref(), Some("rate-limit"));
        assert_eq!(answered_by(&ProxyError::NoRoute), None);
    }

    #[test]
    fn long_paths_are_cut() {
        assert_eq!(bounded("/a?b"), "/a?b");
        let long = "/".to_owned() + &"é".repeat(MAX_PATH);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_PATH + 3 && cut.ends_with("..."));
    }
}
