//! One chunk-size line of a chunked body, exactly as RFC 9112 §7.1 allows:
//!
//! ```text
//! chunk-size [ chunk-ext ] CRLF
//! chunk-ext  = *( BWS ";" BWS name [ BWS "=" BWS value ] )
//! value      = token / quoted-string
//! ```
//!
//! hyper is more lenient (it takes `5 \r\n`, any bytes in an extension, a size of
//! any number of digits), and a server behind us may be more lenient still in
//! other ways; a line this refuses is refused before hyper reads it.

/// The most hex digits a chunk size may have: 16 always fit in a `u64`.
const MAX_DIGITS: u8 = 16;

/// Where in a chunk-size line the next byte falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkLine {
    /// In the size (`digits` read so far, worth `size`).
    Size { size: u64, digits: u8 },
    /// Whitespace after the size: only more of it or `;` may follow.
    SizeBws { size: u64 },
    /// After a `;`: whitespace, then an extension name.
    NameStart { size: u64 },
    Name { size: u64 },
    /// Whitespace after a name: `=` or `;` must follow.
    NameBws { size: u64 },
    /// After `=`: whitespace, then a token or a quoted string.
    ValueStart { size: u64 },
    Token { size: u64 },
    Quoted { size: u64 },
    /// After a backslash in a quoted string.
    QuotedPair { size: u64 },
    /// After a token or the closing quote: `;`, whitespace or the line end.
    ValueEnd { size: u64 },
    /// Whitespace after a value: only `;` may follow.
    ValueBws { size: u64 },
    /// After the CR: the LF must follow.
    Cr { size: u64 },
}

/// What a byte of a chunk-size line led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    More(ChunkLine),
    /// The line ended (CRLF); the chunk has this many data bytes (0: the last chunk).
    Done(u64),
}

impl ChunkLine {
    pub const START: ChunkLine = ChunkLine::Size { size: 0, digits: 0 };

    pub fn step(self, b: u8) -> Result<Step, &'static str> {
        use ChunkLine::*;
        let bws = matches!(b, b' ' | b'\t');
        let next = match self {
            Size { size, digits } => match hex(b) {
                Some(_) if digits == MAX_DIGITS => return Err("chunk size longer than 16 hex digits"),
                Some(d) => Size { size: size << 4 | u64::from(d), digits: digits + 1 },
                None if digits == 0 => return Err("chunk size missing"),
                None if bws => SizeBws { size },
                None if b == b';' => NameStart { size },
                None if b == b'\r' => Cr { size },
                None => return Err("invalid chunk size"),
            },
            SizeBws { size } => match b {
                _ if bws => SizeBws { size },
                b';' => NameStart { size },
                _ => return Err("whitespace after a chunk size not followed by `;`"),
            },
            NameStart { size } => match b {
                _ if bws => NameStart { size },
                _ if is_tchar(b) => Name { size },
                _ => return Err("invalid chunk extension name"),
            },
            Name { size } => match b {
                _ if is_tchar(b) => Name { size },
                _ if bws => NameBws { size },
                b'=' => ValueStart { size },
                b';' => NameStart { size },
                b'\r' => Cr { size },
                _ => return Err("invalid chunk extension name"),
            },
            NameBws { size } => match b {
                _ if bws => NameBws { size },
                b'=' => ValueStart { size },
                b';' => NameStart { size },
                _ => return Err("invalid chunk extension"),
            },
            ValueStart { size } => match b {
                _ if bws => ValueStart { size },
                b'"' => Quoted { size },
                _ if is_tchar(b) => Token { size },
                _ => return Err("invalid chunk extension value"),
            },
            Token { size } => match b {
                _ if is_tchar(b) => Token { size },
                _ => return ValueEnd { size }.step(b),
            },
            Quoted { size } => match b {
                b'"' => ValueEnd { size },
                b'\\' => QuotedPair { size },
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => Quoted { size },
                _ => return Err("invalid quoted chunk extension value"),
            },
            QuotedPair { size } => match b {
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => Quoted { size },
                _ => return Err("invalid quoted chunk extension value"),
            },
            ValueEnd { size } => match b {
                _ if bws => ValueBws { size },
                b';' => NameStart { size },
                b'\r' => Cr { size },
                _ => return Err("invalid chunk extension value"),
            },
            ValueBws { size } => match b {
                _ if bws => ValueBws { size },
                b';' => NameStart { size },
                _ => return Err("whitespace after a chunk extension not followed by `;`"),
            },
            Cr { size } => match b {
                b'\n' => return Ok(Step::Done(size)),
                _ => return Err("chunk size line not ending in CRLF"),
            },
        };
        Ok(Step::More(next))
    }

    /// The byte that makes hyper's chunk decoder fail when it reads it where this
    /// line was refused. hyper takes any byte but CR and LF inside an extension, so
    /// there a LF (an error to hyper: "chunk extension contains newline"); NUL
    /// everywhere else.
    pub fn poison(self) -> u8 {
        match self {
            ChunkLine::Size { .. } | ChunkLine::SizeBws { .. } | ChunkLine::Cr { .. } => 0,
            _ => b'\n',
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &[u8]) -> Result<u64, &'static str> {
        let mut state = ChunkLine::START;
        for (i, &b) in text.iter().enumerate() {
            match state.step(b)? {
                Step::More(next) => state = next,
                Step::Done(size) if i + 1 == text.len() => return Ok(size),
                Step::Done(_) => return Err("bytes after the line"),
            }
        }
        Err("unfinished")
    }

    #[test]
    fn what_rfc_9112_allows_passes() {
        for (text, size) in [
            (&b"5\r\n"[..], 5),
            (b"0\r\n", 0),
            (b"00ff\r\n", 255),
            (b"ffffffffffffffff\r\n", u64::MAX),
            (b"0000000000000005\r\n", 5),
            (b"5;ext\r\n", 5),
            (b"5 ;ext=1\r\n", 5),
            (b"5\t; a = b ;c\r\n", 5),
            (b"a;name=\"quoted \\\" ; value\"\r\n", 10),
            (b"a;n=\"x\" ;m\r\n", 10),
        ] {
            assert_eq!(line(text), Ok(size), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            &b"\r\n"[..],
            b"5 \r\n",
            b"5\t\r\n",
            b"5x\r\n",
            b"5 5\r\n",
            b" 5\r\n",
            b"x\r\n",
            b"-1\r\n",
            b"10000000000000000\r\n",
            b"00000000000000005\r\n",
            b"5\n",
            b"5\r\r\n",
            b"5;\r\n",
            b"5;;a\r\n",
            b"5;a \r\n",
            b"5;a=\r\n",
            b"5;a=b \r\n",
            b"5;a=\"b\r\n",
            b"5;a=\"b\"c\r\n",
            b"5;a\nb\r\n",
            b"5;a=b\0\r\n",
        ] {
            assert!(line(text).is_err(), "{} passed", String::from_utf8_lossy(text));
        }
    }
}
