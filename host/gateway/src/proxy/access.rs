//! What the access log line says beyond the request itself: the W3C trace id
//! the client sent (so a line can be found from a trace), and the path cut to
//! a bounded length (a log line must not grow with what a client sends).

use http::HeaderMap;

/// The longest path an access line carries; longer ones end in `...`.
const MAX_PATH: usize = 1024;

/// The trace id of a valid `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, the
/// ids not all zeros), lower case; `None` without one or for an invalid one.
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    let mut parts = value.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; a later version may add some.
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = hex(version, 2)
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_owned())
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
    fn only_a_valid_traceparent_gives_a_trace_id() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(id(good).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(id("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future").as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(id(bad), None, "{bad}");
        }
        assert_eq!(trace_id(&HeaderMap::new()), None);
    }

    #[test]
    fn long_paths_are_cut() {
        assert_eq!(bounded("/a?b"), "/a?b");
        let long = "/".to_owned() + &"é".repeat(MAX_PATH);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_PATH + 3 && cut.ends_with("..."));
    }
}
