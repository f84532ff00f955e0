//! `application/x-www-form-urlencoded` query strings: just enough decoding
//! and encoding for reading and setting parameters.

/// Decodes `%XX` escapes and `+` (space). Invalid escapes stay as they are.
pub fn decode(s: &str) -> String {
    if !needs_decoding(s) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `s` holds an escape or a `+` (most names and many values do
/// not, and are then used as they are). `memchr` looks at several bytes at
/// a time: a byte-at-a-time loop is slow in Wasm, and tokens are long.
fn needs_decoding(s: &str) -> bool {
    memchr::memchr2(b'%', b'+', s.as_bytes()).is_some()
}

/// The decoded value of the first parameter named `name` in a raw query
/// (without decoding the others).
pub fn param(query: &str, name: &str) -> Option<String> {
    let bytes = query.as_bytes();
    let mut start = 0;
    for end in memchr::memchr_iter(b'&', bytes).chain([bytes.len()]) {
        // Both ends are at ASCII bytes (`&`) or the end: valid cuts.
        let pair = &query[start..end];
        start = end + 1;
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match memchr::memchr(b'=', pair.as_bytes()) {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, ""),
        };
        let matches = match needs_decoding(key) {
            true => decode(key) == name,
            false => key == name,
        };
        if matches {
            return Some(decode(value));
        }
    }
    None
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The decoded `(name, value)` pairs of a raw query.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Builds a raw query from pairs.
pub fn build<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_param() {
        let q = "a=1&b%61=x%26y&c&b=2";
        assert_eq!(param(q, "ba").as_deref(), Some("x&y"));
        assert_eq!(param(q, "b").as_deref(), Some("2"));
        assert_eq!(param(q, "c").as_deref(), Some(""));
        assert_eq!(param(q, "d"), None);
        assert_eq!(param("", ""), None);
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode("a%20b+c%2"), "a b c%2");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(
            pairs("a=1&b=x%26y&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x&y".into()),
                ("c".into(), String::new()),
            ]
        );
        assert_eq!(build([("k", "a b&c")]), "k=a%20b%26c");
    }
}
