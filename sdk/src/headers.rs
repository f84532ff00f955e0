//! Header lists with case-insensitive lookup.

/// Header lines in order. Names are stored lower-case; values are bytes
/// (use [`Headers::get`] for the common text case).
///
/// Kept in the gateway's wire form, the WIT `header-block` (`name:value\n`
/// per line): what the gateway sends becomes a `Headers` without parsing or
/// allocating, and a plugin that only reads one header scans a few hundred
/// bytes. Changes are also logged as WIT `edits`, which is all that goes back
/// to the gateway: a plugin that changes nothing sends nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// The block is `buf[start..]`. What comes before it is the rest of the
    /// head the gateway packed the headers with (method, path, ... of a
    /// request), kept in place so that nothing is copied; it never changes.
    buf: Vec<u8>,
    start: usize,
    edits: Edits,
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

/// Whether `name` can be a header name (an RFC 9110 token: letters, digits
/// and ``!#$%&'*+-.^_`|~``): for checking names from a plugin's config at
/// `init`, so that a typo is a load error and not a failed request.
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `name` is a header the gateway keeps for itself (the framing
/// headers `content-length` and `transfer-encoding`): edits of it are
/// ignored, so a plugin's config naming it should be refused at `init`.
pub fn gateway_managed_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
}

/// One line of a block: (name, value), split at the first `:`.
fn split_line(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(colon) => (&line[..colon], &line[colon + 1..]),
        None => (line, &[]),
    }
}

/// The `(name, value)` of each non-empty `name:value` line of `block` (the
/// wire form of header blocks and context lines). `memchr` finds the line
/// ends several bytes a step (with Wasm SIMD, sixteen): a byte-at-a-time
/// split is slow in Wasm.
pub(crate) fn lines(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    let ends = memchr::memchr_iter(b'\n', block).chain([block.len()]);
    let mut start = 0;
    ends.filter_map(move |end| {
        let line = block.get(start..end)?;
        start = end + 1;
        (!line.is_empty()).then(|| split_line(line))
    })
}

/// Writes a header name as the gateway takes it: lower-case, and a `:` or
/// newline (which would start another field or line) as a space, so the
/// gateway refuses the name instead of reading something else. The name is
/// copied whole and mended afterwards in the rare case it needs it; the
/// check has no early exit, so that it runs sixteen bytes a step with Wasm
/// SIMD (a byte-at-a-time loop is slow in Wasm).
fn push_name(out: &mut Vec<u8>, name: &str) {
    let at = out.len();
    out.extend_from_slice(name.as_bytes());
    let unusual = name.bytes().fold(false, |seen, b| {
        seen | (b == b':') | (b == b'\n') | b.is_ascii_uppercase()
    });
    if unusual {
        for b in &mut out[at..] {
            *b = match *b {
                b':' | b'\n' => b' ',
                b => b.to_ascii_lowercase(),
            };
        }
    }
}

/// Writes a value; a newline becomes a CR, which the gateway refuses.
fn push_value(out: &mut Vec<u8>, value: &[u8]) {
    let at = out.len();
    out.extend_from_slice(value);
    if memchr::memchr(b'\n', value).is_some() {
        for b in &mut out[at..] {
            if *b == b'\n' {
                *b = b'\r';
            }
        }
    }
}

/// A log of changes in the WIT `edits` form: `=name:value`, `+name:value`
/// and `-name` lines, replayed by the gateway in order.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub(crate) struct Edits(Vec<u8>);

impl Edits {
    fn push(&mut self, op: u8, name: &str, value: Option<&[u8]>) {
        // One allocation for the usual few lines, not one per doubling.
        self.0
            .reserve(name.len() + value.map_or(0, <[u8]>::len) + 64);
        self.0.push(op);
        push_name(&mut self.0, name);
        if let Some(value) = value {
            self.0.push(b':');
            push_value(&mut self.0, value);
        }
        self.0.push(b'\n');
    }

    pub(crate) fn set(&mut self, name: &str, value: &[u8]) {
        self.push(b'=', name, Some(value));
    }

    pub(crate) fn append(&mut self, name: &str, value: &[u8]) {
        self.push(b'+', name, Some(value));
    }

    pub(crate) fn remove(&mut self, name: &str) {
        self.push(b'-', name, None);
    }

    /// Sets a pseudo-header (`:path`, `:method`, `:status`).
    pub(crate) fn set_pseudo(&mut self, name: &str, value: &[u8]) {
        self.0.extend_from_slice(b"=:");
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b':');
        push_value(&mut self.0, value);
        self.0.push(b'\n');
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn extend(&mut self, other: Edits) {
        self.0.extend_from_slice(&other.0);
    }
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Headers from a head the gateway packed: the block is `head[start..]`.
    pub(crate) fn from_head(head: Vec<u8>, start: usize) -> Self {
        let start = start.min(head.len());
        Self {
            buf: head,
            start,
            edits: Edits::default(),
        }
    }

    /// What comes before the block in the head the headers came in.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.buf[..self.start]
    }

    fn block(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The `header-block` of a response the plugin made.
    pub(crate) fn into_block(mut self) -> Vec<u8> {
        match self.start {
            0 => self.buf,
            start => self.buf.split_off(start),
        }
    }

    /// The changes made since the gateway sent these headers.
    pub(crate) fn take_edits(&mut self) -> Edits {
        std::mem::take(&mut self.edits)
    }

    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        lines(self.block())
    }

    /// The first value of `name` as text (`None` if absent or not UTF-8).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `name` as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.lines()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.lines()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        let value = value.as_ref();
        self.drop_lines(name);
        self.push_line(name, value);
        self.edits.set(name, value);
    }

    /// Adds a line, keeping the existing values of `name`. A line cannot
    /// smuggle another one in (a plugin may copy client input into a
    /// header): a `:` or newline in the name becomes a space, a newline in
    /// the value a CR — both make the gateway refuse the change and log why.
    pub fn append(&mut self, name: &str, value: impl AsRef<[u8]>) {
        let value = value.as_ref();
        self.push_line(name, value);
        self.edits.append(name, value);
    }

    /// Removes every value of `name`; true if there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        if !self.drop_lines(name) {
            return false;
        }
        self.edits.remove(name);
        true
    }

    fn push_line(&mut self, name: &str, value: &[u8]) {
        self.buf.reserve(name.len() + value.len() + 2);
        push_name(&mut self.buf, name);
        self.buf.push(b':');
        push_value(&mut self.buf, value);
        self.buf.push(b'\n');
    }

    /// Removes the lines of `name` from the block; true if there were any.
    fn drop_lines(&mut self, name: &str) -> bool {
        if !self.contains(name) {
            return false;
        }
        let mut kept = Vec::with_capacity(self.buf.len());
        kept.extend_from_slice(self.prefix());
        for line in self.block().split_inclusive(|&b| b == b'\n') {
            let (n, _) = split_line(line);
            if !n.eq_ignore_ascii_case(name.as_bytes()) {
                kept.extend_from_slice(line);
            }
        }
        self.buf = kept;
        true
    }

    /// All lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.lines()
            .map(|(n, v)| (std::str::from_utf8(n).unwrap_or_default(), v))
    }

    pub fn len(&self) -> usize {
        self.lines().count()
    }

    pub fn is_empty(&self) -> bool {
        self.block().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive() {
        let mut h = Headers::new();
        h.append("X-A", "1");
        h.append("x-a", "2");
        assert_eq!(h.get("x-A"), Some("1"));
        assert_eq!(h.get_all("X-A").count(), 2);
        h.set("x-a", "3");
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![("x-a", &b"3"[..])]);
        assert!(h.remove("X-a"));
        assert!(h.is_empty());
        assert_eq!(
            h.take_edits().into_bytes(),
            b"+x-a:1\n+x-a:2\n=x-a:3\n-x-a\n"
        );
    }

    #[test]
    fn a_block_after_a_prefix_reads_and_changes_in_place() {
        let mut h = Headers::from_head(b"PREFIXa:1\n\nB:2\nc\nd:4".to_vec(), 6);
        assert_eq!(h.prefix(), b"PREFIX");
        assert_eq!(h.get("a"), Some("1"));
        assert_eq!(h.get("b"), Some("2"));
        assert_eq!(h.get_bytes("c"), Some(&b""[..]));
        assert_eq!(h.get("d"), Some("4"), "the last line needs no newline");
        assert_eq!(h.get("prefixa"), None);
        assert_eq!(h.len(), 4);
        assert!(h.remove("a"));
        assert_eq!(h.prefix(), b"PREFIX", "the prefix never changes");
        assert_eq!(h.get("a"), None);
    }

    #[test]
    fn values_may_hold_colons_but_never_a_new_line() {
        let mut h = Headers::new();
        h.append("X-Time", "12:30:00");
        h.append("x-user", "bob\nx-admin:yes");
        h.append("x-a:b", "1");
        assert_eq!(h.get("x-time"), Some("12:30:00"));
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(
            h.take_edits().into_bytes(),
            b"+x-time:12:30:00\n+x-user:bob\rx-admin:yes\n+x-a b:1\n"
        );
        assert_eq!(
            h.into_block(),
            b"x-time:12:30:00\nx-user:bob\rx-admin:yes\nx-a b:1\n"
        );
    }
}
