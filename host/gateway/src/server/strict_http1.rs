//! A strict reading of HTTP/1.1 request framing, in front of hyper's parser.
//!
//! hyper (following RFC 9112's leniencies) accepts a request carrying both
//! `Content-Length` and `Transfer-Encoding` (it drops the length and closes the
//! connection afterwards) and a bare LF as a line ending. A gateway passes requests
//! on to servers that may read such messages differently, so wasmgate refuses them
//! outright. This wrapper watches the bytes of each request head as they are read,
//! follows the body framing to find the next head, and when a head is ambiguous it
//! overwrites the offending byte with NUL before hyper sees it: hyper's parser then
//! fails on that head and answers 400 and closes, and the request never reaches
//! our service or an upstream.
//!
//! It stops watching (passes bytes through) after an HTTP/2 preface, an `Upgrade`
//! or `CONNECT` request, or anything it cannot follow: hyper is still the parser.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::connection::Activity;

/// The longest header line whose content we inspect; longer `Content-Length` or
/// `Transfer-Encoding` lines are refused, other long lines are passed to hyper.
const LINE_CAP: usize = 256;

pub struct StrictHttp1<T> {
    inner: T,
    framing: Framing,
}

impl<T> StrictHttp1<T> {
    /// `activity` learns when each request head starts and ends (for the header timeout).
    pub fn new(inner: T, activity: Arc<Activity>) -> StrictHttp1<T> {
        StrictHttp1 { inner, framing: Framing { activity: Some(activity), ..Framing::default() } }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StrictHttp1<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let fresh = &mut buf.filled_mut()[before..];
            if let Err(flood) = this.framing.scan(fresh) {
                tracing::warn!(reason = flood, "closing an abusive HTTP/2 connection");
                return Poll::Ready(Err(io::Error::other(flood)));
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StrictHttp1<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where in the byte stream we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head, line by line.
    Head,
    /// Skipping a body of known length.
    Body(u64),
    /// Reading a chunk-size line (hex size, optional extension, CRLF).
    ChunkSize { size: u64, digits: u8, in_extension: bool },
    /// Skipping chunk data.
    ChunkData(u64),
    /// Expecting the CRLF that ends chunk data.
    ChunkEnd,
    /// Reading trailer lines after the last chunk, until an empty line.
    Trailers,
    /// Skipping the rest of the HTTP/2 connection preface.
    H2Preface(u8),
    /// Reading an HTTP/2 frame header (9 bytes; this many so far).
    H2FrameHeader(u8),
    /// Skipping an HTTP/2 frame payload.
    H2Payload(u32),
    /// Not watching any more; hyper alone parses from here.
    Passthrough,
}

/// HTTP/2 frames that each make the server answer (SETTINGS, PING) allowed per
/// `H2_CONTROL_WINDOW_MS`; h2 answers every one, so a flood past this closes the
/// connection rather than keep us busy acknowledging.
const H2_CONTROL_FRAMES: u32 = 1000;
const H2_CONTROL_WINDOW_MS: u64 = 10_000;

#[derive(Debug)]
pub struct Framing {
    state: State,
    /// The current line (up to `LINE_CAP` bytes) and whether it was longer.
    line: Vec<u8>,
    line_truncated: bool,
    /// The previous byte was CR.
    after_cr: bool,
    /// Facts about the head being read.
    seen_request_line: bool,
    content_lengths: Vec<u64>,
    transfer_encodings: u32,
    chunked_last: bool,
    upgrade: bool,
    /// Why the last head was refused (for tests and logs).
    pub refused: Option<&'static str>,
    /// Told when a head starts arriving and when we stop watching.
    activity: Option<Arc<Activity>>,
    /// Offset, in the bytes being scanned, of the first byte of the current head.
    head_began_at: Option<usize>,
    /// A head began in the bytes being scanned (not yet told to `activity`).
    start_pending: bool,
    /// Offset of the byte being scanned.
    at: usize,
    /// The HTTP/2 frame header being read.
    h2_header: [u8; 9],
    /// SETTINGS/PING frames in the current window, and when the window began.
    h2_control: (u32, u64),
}

impl Default for Framing {
    fn default() -> Framing {
        Framing {
            state: State::Head,
            line: Vec::with_capacity(64),
            line_truncated: false,
            after_cr: false,
            seen_request_line: false,
            content_lengths: Vec::new(),
            transfer_encodings: 0,
            chunked_last: false,
            upgrade: false,
            refused: None,
            activity: None,
            head_began_at: None,
            start_pending: false,
            at: 0,
            h2_header: [0; 9],
            h2_control: (0, 0),
        }
    }
}

impl Framing {
    /// Follows `bytes` (just read) and poisons the byte at which a head turns out
    /// to be ambiguous.
    pub fn scan(&mut self, bytes: &mut [u8]) -> Result<(), &'static str> {
        let result = self.scan_bytes(bytes);
        if std::mem::take(&mut self.start_pending) {
            if let Some(activity) = &self.activity {
                activity.head_started();
            }
        }
        result
    }

    fn head_finished(&mut self) {
        self.start_pending = false;
        if let Some(activity) = &self.activity {
            activity.head_finished();
        }
    }

    fn scan_bytes(&mut self, bytes: &mut [u8]) -> Result<(), &'static str> {
        self.head_began_at = None;
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Passthrough => return Ok(()),
                State::H2Preface(left) => {
                    let skip = (left as usize).min(bytes.len() - i);
                    i += skip;
                    self.state =
                        if skip == left as usize { State::H2FrameHeader(0) } else { State::H2Preface(left - skip as u8) };
                    continue;
                }
                State::H2Payload(left) => {
                    let skip = (left as usize).min(bytes.len() - i);
                    i += skip;
                    self.state = if skip == left as usize { State::H2FrameHeader(0) } else { State::H2Payload(left - skip as u32) };
                    continue;
                }
                State::H2FrameHeader(have) => {
                    self.h2_header[have as usize] = bytes[i];
                    i += 1;
                    self.state = if have == 8 { self.h2_frame()? } else { State::H2FrameHeader(have + 1) };
                    continue;
                }
                State::Body(remaining) => {
                    let skip = remaining.min((bytes.len() - i) as u64);
                    i += skip as usize;
                    self.state = if remaining == skip { State::Head } else { State::Body(remaining - skip) };
                    continue;
                }
                State::ChunkData(remaining) => {
                    let skip = remaining.min((bytes.len() - i) as u64);
                    i += skip as usize;
                    self.state = if remaining == skip { State::ChunkEnd } else { State::ChunkData(remaining - skip) };
                    continue;
                }
                State::Head | State::Trailers => {
                    match self.head_run(bytes, i) {
                        Ok(next) => i = next,
                        Err((reason, at)) => {
                            tracing::debug!(reason, "refusing an ambiguous request head");
                            self.refused = Some(reason);
                            let at = self.poison_point(bytes, at);
                            bytes[at] = 0;
                            self.state = State::Passthrough;
                            return Ok(());
                        }
                    }
                    if matches!(self.state, State::Passthrough | State::H2Preface(_)) {
                        self.head_finished();
                    }
                    continue;
                }
                _ => {}
            }
            self.at = i;
            if let Err(reason) = self.byte(bytes[i]) {
                tracing::debug!(reason, "refusing an ambiguous request head");
                self.refused = Some(reason);
                let at = self.poison_point(bytes, i);
                bytes[at] = 0;
                self.state = State::Passthrough;
                return Ok(());
            }
            i += 1;
            if matches!(self.state, State::Passthrough | State::H2Preface(_)) {
                self.head_finished();
            }
        }
        Ok(())
    }

    /// Reads head bytes from `i` up to and including the next LF (or to the end of
    /// `bytes`), a line at a time; returns where to go on, or why and where to refuse.
    fn head_run(&mut self, bytes: &[u8], i: usize) -> Result<usize, (&'static str, usize)> {
        let rest = &bytes[i..];
        if self.line.is_empty() && !self.after_cr && !self.seen_request_line && self.state == State::Head {
            if let Some(&first) = rest.first() {
                if first != b'\r' && first != b'\n' {
                    self.head_began_at = Some(i);
                    // Told at the end of `scan` if the head is still incomplete
                    // then: a head read whole (the usual case) costs no clock read.
                    self.start_pending = true;
                }
            }
        }
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            self.carry(rest);
            return Ok(bytes.len());
        };
        let cr_before = if nl == 0 { self.after_cr } else { rest[nl - 1] == b'\r' };
        if !cr_before {
            return Err(("bare LF line ending", i + nl));
        }
        let content = &rest[..nl.saturating_sub(1)];
        let result = if self.line.is_empty() && !self.after_cr {
            let truncated = content.len() > LINE_CAP;
            self.end_of_line(&content[..content.len().min(LINE_CAP)], truncated)
        } else {
            if nl > 0 {
                self.carry(&rest[..nl - 1]);
            }
            let line = std::mem::take(&mut self.line);
            let truncated = std::mem::replace(&mut self.line_truncated, false);
            let result = self.end_of_line(&line, truncated);
            self.line = line;
            self.line.clear();
            result
        };
        self.after_cr = false;
        result.map(|()| i + nl + 1).map_err(|reason| (reason, i + nl))
    }

    /// Keeps part of a line that continues in the next read (a CR at its end is
    /// remembered, not kept).
    fn carry(&mut self, part: &[u8]) {
        if self.after_cr {
            // The CR we held back was inside the line after all.
            self.push_line(b"\r");
        }
        let (part, cr) = match part.split_last() {
            Some((b'\r', head)) => (head, true),
            _ => (part, false),
        };
        self.push_line(part);
        self.after_cr = cr;
    }

    fn push_line(&mut self, part: &[u8]) {
        let room = LINE_CAP - self.line.len().min(LINE_CAP);
        self.line.extend_from_slice(&part[..part.len().min(room)]);
        if part.len() > room {
            self.line_truncated = true;
        }
    }

    /// A whole frame header has been read: count control frames, skip the payload.
    fn h2_frame(&mut self) -> Result<State, &'static str> {
        let h = &self.h2_header;
        let length = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        let (kind, flags) = (h[3], h[4]);
        let ack = flags & 0x1 != 0;
        if (kind == 0x4 || kind == 0x6) && !ack {
            let now = super::connection::now_ms();
            let (count, since) = &mut self.h2_control;
            if now.saturating_sub(*since) > H2_CONTROL_WINDOW_MS {
                *count = 0;
                *since = now;
            }
            *count += 1;
            if *count > H2_CONTROL_FRAMES {
                return Err("SETTINGS/PING flood");
            }
        }
        Ok(if length == 0 { State::H2FrameHeader(0) } else { State::H2Payload(length) })
    }

    /// Which byte to turn into NUL when refusing at `i`. hyper looks for the end
    /// of a head (CRLFCRLF) before parsing it again, so the terminator must stay
    /// intact: prefer the head's first byte, else a byte of header content read
    /// now. (If there is none, the head stays incomplete for hyper and the header
    /// timeout closes the connection: either way nothing is forwarded.)
    fn poison_point(&self, bytes: &[u8], i: usize) -> usize {
        self.head_began_at
            .or_else(|| bytes[..i.saturating_sub(3)].iter().position(|b| !matches!(b, b'\r' | b'\n')))
            .unwrap_or(i)
    }

    fn byte(&mut self, b: u8) -> Result<(), &'static str> {
        match self.state {
            State::ChunkSize { size, digits, in_extension } => {
                self.chunk_size_byte(b, size, digits, in_extension);
                Ok(())
            }
            State::ChunkEnd => {
                match (b, self.after_cr) {
                    (b'\r', false) => self.after_cr = true,
                    (b'\n', true) => {
                        self.after_cr = false;
                        self.state = State::ChunkSize { size: 0, digits: 0, in_extension: false };
                    }
                    // Malformed: hyper's chunk decoder reports it; stop following.
                    _ => self.state = State::Passthrough,
                }
                Ok(())
            }
            State::Head
            | State::Trailers
            | State::Body(_)
            | State::ChunkData(_)
            | State::Passthrough
            | State::H2Preface(_)
            | State::H2FrameHeader(_)
            | State::H2Payload(_) => Ok(()),
        }
    }

    fn chunk_size_byte(&mut self, b: u8, size: u64, digits: u8, in_extension: bool) {
        let hex = (b as char).to_digit(16);
        self.state = match (b, self.after_cr) {
            (b'\n', true) => {
                self.after_cr = false;
                if digits == 0 {
                    State::Passthrough
                } else if size == 0 {
                    State::Trailers
                } else {
                    State::ChunkData(size)
                }
            }
            (_, true) => State::Passthrough,
            (b'\r', false) => {
                self.after_cr = true;
                State::ChunkSize { size, digits, in_extension }
            }
            _ if in_extension => State::ChunkSize { size, digits, in_extension },
            (b';', false) => State::ChunkSize { size, digits, in_extension: true },
            _ => match hex {
                Some(d) if digits < 15 => State::ChunkSize { size: size * 16 + u64::from(d), digits: digits + 1, in_extension },
                _ => State::Passthrough,
            },
        };
    }

    fn end_of_line(&mut self, line: &[u8], truncated: bool) -> Result<(), &'static str> {
        if self.state == State::Trailers {
            if line.is_empty() {
                self.state = State::Head;
            }
            return Ok(());
        }
        if line.is_empty() {
            if !self.seen_request_line {
                // Empty lines before a request line are allowed (RFC 9112 §2.2).
                return Ok(());
            }
            return self.end_of_head();
        }
        if !self.seen_request_line {
            self.seen_request_line = true;
            if line == b"PRI * HTTP/2.0" {
                // The preface continues with "\r\nSM\r\n\r\n", then frames.
                self.state = State::H2Preface(8);
            } else if line.starts_with(b"CONNECT ") {
                self.state = State::Passthrough;
            }
            return Ok(());
        }
        self.header_line(line, truncated)
    }

    fn header_line(&mut self, line: &[u8], truncated: bool) -> Result<(), &'static str> {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Ok(()); // hyper refuses it
        };
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            if truncated {
                return Err("oversized Content-Length");
            }
            for part in value.split(|&b| b == b',') {
                let digits = trim(part);
                match std::str::from_utf8(digits).ok().and_then(|s| s.parse::<u64>().ok()) {
                    Some(n) if digits.iter().all(u8::is_ascii_digit) => self.content_lengths.push(n),
                    _ => return Err("invalid Content-Length"),
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if truncated {
                return Err("oversized Transfer-Encoding");
            }
            self.transfer_encodings += 1;
            let last = value.rsplit(|&b| b == b',').next().map(trim).unwrap_or_default();
            self.chunked_last = last.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade = true;
        }
        Ok(())
    }

    fn end_of_head(&mut self) -> Result<(), &'static str> {
        let lengths = std::mem::take(&mut self.content_lengths);
        let transfer_encodings = std::mem::replace(&mut self.transfer_encodings, 0);
        let chunked = std::mem::replace(&mut self.chunked_last, false);
        let upgrade = std::mem::replace(&mut self.upgrade, false);
        self.seen_request_line = false;
        // Begun and ended in one read: the watchdog never needs its start time.
        self.start_pending = false;
        if transfer_encodings > 0 && !lengths.is_empty() {
            return Err("both Content-Length and Transfer-Encoding");
        }
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            return Err("conflicting Content-Length values");
        }
        self.state = if upgrade {
            State::Passthrough
        } else if transfer_encodings > 0 {
            if chunked {
                State::ChunkSize { size: 0, digits: 0, in_extension: false }
            } else {
                State::Passthrough // hyper refuses a non-chunked coding
            }
        } else {
            match lengths.first() {
                Some(0) | None => State::Head,
                Some(&n) => State::Body(n),
            }
        };
        Ok(())
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `input` split at every possible point; returns the refusal reason
    /// (the same for every split) and whether a byte was poisoned.
    fn scan(input: &[u8]) -> Option<&'static str> {
        let mut reasons = Vec::new();
        for split in 0..=input.len() {
            let mut framing = Framing::default();
            let mut bytes = input.to_vec();
            let (a, b) = bytes.split_at_mut(split);
            let _ = framing.scan(a);
            let _ = framing.scan(b);
            assert_eq!(framing.refused.is_some(), bytes.contains(&0) && !input.contains(&0), "split {split}");
            reasons.push(framing.refused);
        }
        assert!(reasons.windows(2).all(|w| w[0] == w[1]), "{reasons:?}");
        reasons[0]
    }

    #[test]
    fn ordinary_pipelined_requests_pass() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloPOST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nGET /last HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(scan(input), None);
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        assert_eq!(
            scan(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some("both Content-Length and Transfer-Encoding")
        );
        assert_eq!(
            scan(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 4\r\n\r\n"),
            Some("both Content-Length and Transfer-Encoding")
        );
        assert_eq!(scan(b"POST / HTTP/1.1\r\nContent-Length: 4, 5\r\n\r\n"), Some("conflicting Content-Length values"));
        assert_eq!(scan(b"POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\n"), Some("invalid Content-Length"));
        assert_eq!(scan(b"GET / HTTP/1.1\nHost: a\n\n"), Some("bare LF line ending"));
        assert_eq!(
            scan(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
            Some("conflicting Content-Length values")
        );
    }

    #[test]
    fn a_smuggled_second_request_is_caught_after_a_body() {
        let input = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(scan(input), Some("both Content-Length and Transfer-Encoding"));
    }

    #[test]
    fn an_http2_control_frame_flood_is_cut() {
        let mut framing = Framing::default();
        let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let ping = [0u8, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let data = [0u8, 0, 3, 0, 0, 0, 0, 0, 1, b'a', b'b', b'c'];
        for _ in 0..H2_CONTROL_FRAMES {
            input.extend_from_slice(&ping);
            input.extend_from_slice(&data);
        }
        assert_eq!(framing.scan(&mut input), Ok(()));
        assert_eq!(framing.state, State::H2FrameHeader(0));
        assert_eq!(framing.scan(&mut ping.to_vec()), Err("SETTINGS/PING flood"));
    }

    #[test]
    fn http2_and_upgrades_are_left_to_hyper() {
        assert_eq!(scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\nbinary"), None);
        assert_eq!(scan(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\n\nframes"), None);
    }
}

