//! The one normalised request path: what routes are matched against and what the
//! upstream receives, so that both read the same path. Percent-escapes are made
//! canonical (RFC 3986 §6.2.2), empty segments merged, dot segments resolved
//! (§5.2.4), and the shapes backends disagree on — encoded slashes, backslashes,
//! control bytes, double encoding, `..;` — refused. The rules, as a table, are in
//! `docs/security.md`.

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

/// How a listener treats the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathRules {
    pub encoded_slash: EncodedSlash,
}

/// What `%2F` in a path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodedSlash {
    /// `400`: backends disagree on whether it separates segments.
    #[default]
    Refuse,
    /// Kept as `%2F`, part of its segment; a `.` or `..` beside it is still refused.
    Keep,
}

/// Why a path is refused. `reason()` is short and stable: it is the `400` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Empty, or not starting with `/`.
    NotAbsolute,
    /// `%` not followed by two hex digits.
    InvalidEscape,
    /// 0x00–0x1F or 0x7F, raw or escaped.
    ControlByte,
    /// `\` raw or `%5C`: some backends read it as `/`.
    Backslash,
    /// `%2F` under `EncodedSlash::Refuse`.
    EncodedSlash,
    /// `%25` followed by two hex digits: a second decoding would change the path.
    DoubleEncoding,
    /// `..;x` or `.;x`: Tomcat drops the parameter and walks up.
    DotSegmentParameter,
    /// `..%2F` and the like under `EncodedSlash::Keep`: a decoding backend walks up.
    DotSegmentEncodedSlash,
}

impl PathError {
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path does not start with /",
            PathError::InvalidEscape => "invalid percent-encoding in path",
            PathError::ControlByte => "control character in path",
            PathError::Backslash => "backslash in path",
            PathError::EncodedSlash => "encoded slash in path",
            PathError::DoubleEncoding => "double percent-encoding in path",
            PathError::DotSegmentParameter => "dot segment with parameters in path",
            PathError::DotSegmentEncodedSlash => "dot segment beside encoded slash in path",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for PathError {}

/// The normalised form of `path` (the path part of a request target, no query).
/// `Cow::Borrowed` exactly when `path` is already normal. Normalising the result
/// again returns it unchanged.
pub fn normalize_path<'a>(path: &'a str, rules: &PathRules) -> Result<Cow<'a, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let keep = rules.encoded_slash == EncodedSlash::Keep;
    if is_normal(path.as_bytes(), keep) {
        Ok(Cow::Borrowed(path))
    } else {
        rewrite(path.as_bytes(), keep).map(Cow::Owned)
    }
}

/// `path` as a server that takes path parameters (Tomcat, Jetty) reads it:
/// each segment's `;...` dropped. `None` when there is no `;` (the usual case).
pub fn without_parameters(path: &str) -> Option<String> {
    memchr::memchr(b';', path.as_bytes())?;
    let segments: Vec<&str> = path.split('/').map(|segment| segment.split(';').next().unwrap_or_default()).collect();
    Some(segments.join("/"))
}

/// Why `prefix` cannot be a route's `path_prefix`, if it cannot. A prefix must be
/// a normal path of unreserved characters and `/`: every escape left in a normal
/// path decodes to some other byte, so a path a decoding backend serves from under
/// such a prefix is also routed under it (`/a%3Ab` would dodge a prefix `/a:b`).
pub fn route_prefix_problem(prefix: &str) -> Option<String> {
    match normalize_path(prefix, &PathRules::default()) {
        Err(e) => Some(format!("`{prefix}` must be a normalised path: {e}")),
        Ok(normal) if normal != prefix => Some(format!("`{prefix}` must be a normalised path: `{normal}`?")),
        Ok(_) if !prefix.bytes().all(|b| b == b'/' || is_unreserved(b)) => {
            Some(format!("`{prefix}` must be a normalised path of letters, digits, `-`, `.`, `_`, `~` and `/`"))
        }
        Ok(_) => None,
    }
}

/// What a byte is, outside an escape.
const PLAIN: u8 = 0;
const SLASH: u8 = 1;
const PERCENT: u8 = 2;
/// Control bytes and backslash: refused.
const REFUSED: u8 = 3;
/// Not allowed raw in a path (space, `"`, `<`, `#`, non-ASCII, ...): escaped.
const ESCAPED: u8 = 4;

static CLASS: [u8; 256] = {
    let mut class = [ESCAPED; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        class[b] = if c == b'/' {
            SLASH
        } else if c == b'%' {
            PERCENT
        } else if c < 0x20 || c == 0x7f || c == b'\\' {
            REFUSED
        } else if is_unreserved(c) || is_sub_delim(c) || c == b':' || c == b'@' {
            PLAIN
        } else {
            ESCAPED
        };
        b += 1;
    }
    class
};

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const fn is_sub_delim(b: u8) -> bool {
    matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A hex digit as a normal escape writes it: `0-9`, `A-F`.
fn upper_hex(b: u8) -> Option<u8> {
    match b {
        b'a'..=b'f' => None,
        _ => hex(b),
    }
}

/// `%25` followed by two hex digits at `at` (which points at the `%`).
fn double_encoded(seg: &[u8], at: usize) -> bool {
    seg[at..].starts_with(b"%25")
        && seg.get(at + 3).and_then(|&b| hex(b)).is_some()
        && seg.get(at + 4).and_then(|&b| hex(b)).is_some()
}

/// The fast path: true when `rewrite` would return `path` unchanged. One pass over
/// the bytes, no allocation; escapes must already be upper-case and needed.
fn is_normal(path: &[u8], keep: bool) -> bool {
    let mut start = 1;
    // Only a segment that starts with a dot or holds `%2F` can be, or hide, a dot segment.
    let mut dotty = path.get(start) == Some(&b'.');
    let mut i = start;
    while i < path.len() {
        // Most bytes are plain: skip them in a tight loop.
        i += path[i..].iter().take_while(|&&b| CLASS[usize::from(b)] == PLAIN).count();
        let Some(&b) = path.get(i) else { break };
        match CLASS[usize::from(b)] {
            SLASH => {
                if i == start || (dotty && classify(&path[start..i], keep) != Ok(Segment::Plain)) {
                    return false;
                }
                i += 1;
                start = i;
                dotty = path.get(start) == Some(&b'.');
            }
            PERCENT => {
                let digit = |at: usize| path.get(at).and_then(|&b| upper_hex(b));
                let (Some(h), Some(l)) = (digit(i + 1), digit(i + 2)) else { return false };
                let value = (h << 4) | l;
                match CLASS[usize::from(value)] {
                    SLASH if keep => dotty = true,
                    PERCENT if !double_encoded(path, i) => {}
                    ESCAPED => {}
                    PLAIN if !is_unreserved(value) => {}
                    _ => return false,
                }
                i += 3;
            }
            _ => return false,
        }
    }
    !dotty || classify(&path[start..], keep) == Ok(Segment::Plain)
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Empty,
    Dot,
    DotDot,
    Plain,
}

/// What a segment (already in normal form) does to the path.
fn classify(seg: &[u8], keep: bool) -> Result<Segment, PathError> {
    match seg {
        b"" => return Ok(Segment::Empty),
        b"." => return Ok(Segment::Dot),
        b".." => return Ok(Segment::DotDot),
        _ => {}
    }
    let mut rest = seg;
    loop {
        // With `Keep`, a decoding backend splits the segment at each `%2F`.
        let (piece, next) = match keep.then(|| find(rest, b"%2F")).flatten() {
            Some(at) => (&rest[..at], Some(&rest[at + 3..])),
            None => (rest, None),
        };
        match dot_name(piece) {
            Some(Parameters::Yes) => return Err(PathError::DotSegmentParameter),
            Some(Parameters::No) => return Err(PathError::DotSegmentEncodedSlash),
            None => {}
        }
        match next {
            Some(next) => rest = next,
            None => return Ok(Segment::Plain),
        }
    }
}

enum Parameters {
    Yes,
    No,
}

/// Whether `piece` is named `.` or `..`, and if so whether parameters follow: from
/// `;`, or from `%3B` for a backend that decodes before it looks for them.
fn dot_name(piece: &[u8]) -> Option<Parameters> {
    let dots = piece.iter().take(3).take_while(|&&b| b == b'.').count();
    let rest = &piece[dots..];
    match dots {
        1 | 2 if rest.is_empty() => Some(Parameters::No),
        1 | 2 if rest.starts_with(b";") || rest.starts_with(b"%3B") => Some(Parameters::Yes),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8; 3]) -> Option<usize> {
    haystack.windows(3).position(|w| w == needle)
}

/// The slow path: decode, re-encode, merge and resolve into a new string.
fn rewrite(path: &[u8], keep: bool) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len() + 8);
    let mut segments = path[1..].split(|&b| b == b'/').peekable();
    while let Some(raw) = segments.next() {
        let start = out.len();
        out.push('/');
        push_segment(&mut out, raw, keep)?;
        let seg = &out.as_bytes()[start + 1..];
        // Checked on the output: `%25%32e` becomes `%252e` only once `%32` is decoded.
        if seg.iter().enumerate().any(|(at, &b)| b == b'%' && double_encoded(seg, at)) {
            return Err(PathError::DoubleEncoding);
        }
        match classify(seg, keep)? {
            Segment::Plain => continue,
            Segment::Empty | Segment::Dot => out.truncate(start),
            Segment::DotDot => {
                out.truncate(start);
                // Above the root stays at the root.
                let parent = out.rfind('/').unwrap_or(0);
                out.truncate(parent);
            }
        }
        if segments.peek().is_none() {
            out.push('/');
        }
    }
    Ok(out)
}

/// Appends one segment in normal form: unreserved escapes decoded, other escapes
/// upper-cased, bytes that are not `pchar`s escaped.
fn push_segment(out: &mut String, raw: &[u8], keep: bool) -> Result<(), PathError> {
    let mut i = 0;
    while i < raw.len() {
        let mut byte = raw[i];
        let escaped = byte == b'%';
        if escaped {
            let digit = |at: usize| raw.get(at).and_then(|&b| hex(b));
            let (Some(h), Some(l)) = (digit(i + 1), digit(i + 2)) else {
                return Err(PathError::InvalidEscape);
            };
            byte = (h << 4) | l;
            i += 3;
        } else {
            i += 1;
        }
        match CLASS[usize::from(byte)] {
            REFUSED if byte == b'\\' => return Err(PathError::Backslash),
            REFUSED => return Err(PathError::ControlByte),
            SLASH if !keep => return Err(PathError::EncodedSlash),
            PLAIN if !escaped || is_unreserved(byte) => out.push(char::from(byte)),
            // Only an escape gets here with `/` or `%`, and any byte that must be escaped.
            _ => push_escape(out, byte),
        }
    }
    Ok(())
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xf)]));
}
