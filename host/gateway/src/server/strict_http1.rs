//! A strict reading of HTTP/1.1 request framing, in front of hyper's parser.
//!
//! hyper (following RFC 9112's leniencies) accepts a request carrying both
//! `Content-Length` and `Transfer-Encoding` (it drops the length and closes the
//! connection afterwards), a bare LF as a line ending and chunk-size lines RFC 9112
//! does not allow (`5 \r\n`, any number of digits). A gateway passes requests on to
//! servers that may read such messages differently, so wasmgate refuses them
//! outright. This wrapper watches the bytes of every request on a connection as
//! they are read, follows the body framing to find the next head, and poisons
//! what it refuses before hyper sees it:
//!
//! - in a head, one byte of the head becomes NUL: hyper's parser fails on that
//!   head, answers 400 and closes, and the request never reaches our service;
//! - in a body (a chunk-size line, the CRLF after chunk data, a trailer), the
//!   offending byte becomes one hyper's chunk decoder fails on there: the body
//!   fails and the request gets 400.
//!
//! After a refusal every further byte read on the connection becomes NUL (once a
//! refused head has ended, so that hyper sees it whole and fails on it): nothing
//! that follows can ever be parsed as a request.
//!
//! An `Upgrade` or `CONNECT` request changes nothing by itself: the answer may be an
//! ordinary one, and then the next request is read as strictly as the first. Only
//! once the connection has switched protocols (`Activity::switched`) do the bytes
//! pass untouched. After an HTTP/2 preface this counts control frames instead.

mod chunk_line;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::connection::Activity;
use chunk_line::{ChunkLine, Step};

/// The longest header line whose content we inspect; longer `Content-Length` or
/// `Transfer-Encoding` lines are refused, other long lines are passed to hyper.
const LINE_CAP: usize = 256;

pub struct StrictHttp1<T> {
    inner: T,
    framing: Framing,
}

impl<T> StrictHttp1<T> {
    /// `activity` learns when each request head starts and ends (for the header
    /// timeout) and tells when the connection has switched protocols.
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
    /// Reading a chunk-size line (hex size, optional extensions, CRLF).
    ChunkSize(ChunkLine),
    /// Skipping chunk data.
    ChunkData(u64),
    /// Expecting the CRLF that ends chunk data (the CR was read).
    ChunkEnd { cr: bool },
    /// Reading trailer lines after the last chunk, until an empty line.
    Trailers,
    /// Skipping the rest of the HTTP/2 connection preface.
    H2Preface(u8),
    /// Reading an HTTP/2 frame header (9 bytes; this many so far).
    H2FrameHeader(u8),
    /// Skipping an HTTP/2 frame payload.
    H2Payload(u32),
    /// The connection switched protocols; hyper is no longer parsing HTTP/1 on it.
    Passthrough,
    /// A head was refused and one of its bytes poisoned; its remaining bytes pass
    /// (hyper needs its end to parse it, and fail) up to the empty line that ends
    /// it. The number says how much of that end was just read: 1 after a LF, 2
    /// after LF CR (hyper's own test for the end of a head: LF LF or LF CR LF).
    RefusedHead(u8),
    /// Something was refused: every further byte becomes NUL.
    Refused,
}

/// HTTP/2 frames that each make the server answer (SETTINGS, PING) allowed per
/// `H2_CONTROL_WINDOW_MS`; h2 answers every one, so a flood past this closes the
/// connection rather than keep us busy acknowledging.
const H2_CONTROL_FRAMES: u32 = 1000;
const H2_CONTROL_WINDOW_MS: u64 = 10_000;

/// Why and where a head (or trailer) line is refused.
struct Refusal {
    reason: &'static str,
    /// The LF that ended the refused line.
    at: usize,
    /// The refused line was empty: the head ended with it.
    ended: bool,
}

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
    /// Why the connection was refused (for tests and logs).
    pub refused: Option<&'static str>,
    /// Told when a head starts arriving and when we stop watching; tells when the
    /// connection switched protocols.
    activity: Option<Arc<Activity>>,
    /// Offset, in the bytes being scanned, of the first byte of the current head.
    head_began_at: Option<usize>,
    /// A head began in the bytes being scanned (not yet told to `activity`).
    start_pending: bool,
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
            refused: None,
            activity: None,
            head_began_at: None,
            start_pending: false,
            h2_header: [0; 9],
            h2_control: (0, 0),
        }
    }
}

impl Framing {
    /// Follows `bytes` (just read) and poisons what it refuses.
    pub fn scan(&mut self, bytes: &mut [u8]) -> Result<(), &'static str> {
        if self.reads_http1() && self.activity.as_ref().is_some_and(|a| a.switched()) {
            // The gateway has answered `101` (or 2xx to CONNECT) and hyper handed
            // the connection over: these bytes are the new protocol's. The flag is
            // set before that answer is written, and a client only speaks the new
            // protocol once it has read the answer (RFC 6455 §4.1, RFC 9110 §9.3.6),
            // so no HTTP/1 byte it sent comes this way after the switch.
            self.state = State::Passthrough;
            self.head_finished();
        }
        let result = self.scan_bytes(bytes);
        if std::mem::take(&mut self.start_pending) {
            if let Some(activity) = &self.activity {
                activity.head_started();
            }
        }
        result
    }

    /// Reading HTTP/1 requests (not an HTTP/2 connection, not done watching).
    fn reads_http1(&self) -> bool {
        !matches!(
            self.state,
            State::H2Preface(_) | State::H2FrameHeader(_) | State::H2Payload(_) | State::Passthrough | State::Refused
        )
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
                State::Refused => {
                    bytes[i..].fill(0);
                    return Ok(());
                }
                State::RefusedHead(seen) => i = self.pass_refused_head(bytes, i, seen),
                State::H2Preface(left) => {
                    let skip = (left as usize).min(bytes.len() - i);
                    i += skip;
                    self.state =
                        if skip == left as usize { State::H2FrameHeader(0) } else { State::H2Preface(left - skip as u8) };
                }
                State::H2Payload(left) => {
                    let skip = (left as usize).min(bytes.len() - i);
                    i += skip;
                    self.state = if skip == left as usize { State::H2FrameHeader(0) } else { State::H2Payload(left - skip as u32) };
                }
                State::H2FrameHeader(have) => {
                    self.h2_header[have as usize] = bytes[i];
                    i += 1;
                    self.state = if have == 8 { self.h2_frame()? } else { State::H2FrameHeader(have + 1) };
                }
                State::Body(remaining) => {
                    let skip = remaining.min((bytes.len() - i) as u64);
                    i += skip as usize;
                    self.state = if remaining == skip { State::Head } else { State::Body(remaining - skip) };
                }
                State::ChunkData(remaining) => {
                    let skip = remaining.min((bytes.len() - i) as u64);
                    i += skip as usize;
                    self.state = if remaining == skip { State::ChunkEnd { cr: false } } else { State::ChunkData(remaining - skip) };
                }
                State::ChunkSize(line) => match line.step(bytes[i]) {
                    Ok(step) => {
                        self.state = match step {
                            Step::More(line) => State::ChunkSize(line),
                            Step::Done(0) => State::Trailers,
                            Step::Done(size) => State::ChunkData(size),
                        };
                        i += 1;
                    }
                    Err(reason) => i = self.refuse_body(bytes, reason, i, line.poison()),
                },
                State::ChunkEnd { cr } => match (cr, bytes[i]) {
                    (false, b'\r') | (true, b'\n') => {
                        self.state = if cr { State::ChunkSize(ChunkLine::START) } else { State::ChunkEnd { cr: true } };
                        i += 1;
                    }
                    // hyper's decoder wants exactly CRLF here: NUL fails it.
                    _ => i = self.refuse_body(bytes, "chunk data not followed by CRLF", i, 0),
                },
                State::Head | State::Trailers => {
                    let trailers = self.state == State::Trailers;
                    match self.head_run(bytes, i) {
                        Ok(next) => i = next,
                        // hyper takes any byte but CR within a trailer line, and
                        // wants LF after a CR: a CR here, then NUL, fails it.
                        Err(refusal) if trailers => i = self.refuse_body(bytes, refusal.reason, refusal.at, b'\r'),
                        Err(refusal) => i = self.refuse_head(bytes, refusal),
                    }
                    if matches!(self.state, State::H2Preface(_)) {
                        self.head_finished();
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses the head being read: poisons one of its bytes, and lets the rest of
    /// it through (hyper parses a head only once it has its end) but nothing after.
    fn refuse_head(&mut self, bytes: &mut [u8], Refusal { reason, at, ended }: Refusal) -> usize {
        tracing::debug!(reason, "refusing an ambiguous request head");
        self.refused = Some(reason);
        let poisoned = self.poison_point(bytes, at);
        bytes[poisoned] = 0;
        if ended && poisoned == at {
            // hyper will not see this head's end, so it never answers: the header
            // timeout closes the connection. (An unfinished head's timer already runs.)
            self.start_pending = true;
        }
        self.state = if ended {
            State::Refused
        } else {
            State::RefusedHead(u8::from(bytes[at] == b'\n'))
        };
        at + 1
    }

    /// Refuses inside a body at `at`: that byte becomes `poison` (one hyper's chunk
    /// decoder fails on there) and every byte after it NUL.
    fn refuse_body(&mut self, bytes: &mut [u8], reason: &'static str, at: usize, poison: u8) -> usize {
        tracing::debug!(reason, "refusing an ambiguous request body");
        self.refused = Some(reason);
        bytes[at] = poison;
        self.state = State::Refused;
        at + 1
    }

    /// Passes the bytes of a refused head up to its end (see `State::RefusedHead`).
    fn pass_refused_head(&mut self, bytes: &[u8], mut i: usize, mut seen: u8) -> usize {
        while i < bytes.len() {
            seen = match (seen, bytes[i]) {
                (1 | 2, b'\n') => {
                    self.state = State::Refused;
                    return i + 1;
                }
                (_, b'\n') => 1,
                (1, b'\r') => 2,
                _ => 0,
            };
            i += 1;
        }
        self.state = State::RefusedHead(seen);
        i
    }

    /// Reads head bytes from `i` up to and including the next LF (or to the end of
    /// `bytes`), a line at a time; returns where to go on, or why and where to refuse.
    fn head_run(&mut self, bytes: &[u8], i: usize) -> Result<usize, Refusal> {
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
        let empty = self.line.is_empty()
            && !self.line_truncated
            && match nl {
                0 => true,
                1 => rest[0] == b'\r' && !self.after_cr,
                _ => false,
            };
        let cr_before = if nl == 0 { self.after_cr } else { rest[nl - 1] == b'\r' };
        if !cr_before {
            return Err(Refusal { reason: "bare LF line ending", at: i + nl, ended: empty });
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
        result.map(|()| i + nl + 1).map_err(|reason| Refusal { reason, at: i + nl, ended: empty })
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
        }
        Ok(())
    }

    fn end_of_head(&mut self) -> Result<(), &'static str> {
        let lengths = std::mem::take(&mut self.content_lengths);
        let transfer_encodings = std::mem::replace(&mut self.transfer_encodings, 0);
        let chunked = std::mem::replace(&mut self.chunked_last, false);
        self.seen_request_line = false;
        // Begun and ended in one read: the watchdog never needs its start time.
        self.start_pending = false;
        if transfer_encodings > 0 && !lengths.is_empty() {
            return Err("both Content-Length and Transfer-Encoding");
        }
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            return Err("conflicting Content-Length values");
        }
        if transfer_encodings > 0 && !chunked {
            // hyper refuses it too; refused here, nothing after it is read.
            return Err("Transfer-Encoding not ending in chunked");
        }
        // An `Upgrade` or `CONNECT` request is framed like any other: whether the
        // connection switches is known only from the answer (see `scan`).
        self.state = if transfer_encodings > 0 {
            State::ChunkSize(ChunkLine::START)
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
    /// (the same for every split; bytes change exactly when one is refused).
    fn scan(input: &[u8]) -> Option<&'static str> {
        scan_splits(input).0
    }

    /// Like `scan`, and also what hyper would read, for every split.
    fn scan_splits(input: &[u8]) -> (Option<&'static str>, Vec<Vec<u8>>) {
        let mut reasons = Vec::new();
        let mut outputs = Vec::new();
        for split in 0..=input.len() {
            let mut framing = Framing::default();
            let mut bytes = input.to_vec();
            let (a, b) = bytes.split_at_mut(split);
            let _ = framing.scan(a);
            let _ = framing.scan(b);
            assert_eq!(framing.refused.is_some(), bytes != input, "split {split}");
            reasons.push(framing.refused);
            outputs.push(bytes);
        }
        assert!(reasons.windows(2).all(|w| w[0] == w[1]), "{reasons:?}");
        (reasons[0], outputs)
    }

    /// A request after which `input` follows on the same connection.
    fn after(first: &[u8], input: &[u8]) -> Vec<u8> {
        [first, input].concat()
    }

    const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
    const CL_TE: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    const BARE_LF: &[u8] = b"GET / HTTP/1.1\nHost: a\n\n";
    const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

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
    fn http2_is_left_to_hyper() {
        assert_eq!(scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\nbinary"), None);
    }

    #[test]
    fn every_request_after_an_upgrade_or_connect_that_did_not_switch_is_read_strictly() {
        let connect = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n";
        for first in [UPGRADE, b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\n\r\n", connect] {
            assert_eq!(scan(&after(first, CL_TE)), Some("both Content-Length and Transfer-Encoding"));
            assert_eq!(scan(&after(first, BARE_LF)), Some("bare LF line ending"));
            assert_eq!(scan(&after(first, SMUGGLED)), None);
        }
    }

    #[test]
    fn after_a_protocol_switch_bytes_pass_untouched() {
        let activity = Activity::new();
        let mut framing = Framing { activity: Some(activity.clone()), ..Framing::default() };
        let mut head = UPGRADE.to_vec();
        assert_eq!(framing.scan(&mut head), Ok(()));
        activity.switch();
        let frames = b"\n\nframes\0\x81\x05hello POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut bytes = frames.to_vec();
        assert_eq!(framing.scan(&mut bytes), Ok(()));
        assert_eq!((bytes.as_slice(), framing.refused), (frames.as_slice(), None));
    }

    #[test]
    fn chunk_sizes_rfc_9112_allows_pass() {
        for line in [&b"5 ;ext=1\r\n"[..], b"5;ext\r\n", b"0000000000000005\r\n", b"5\t;\ta=\"q\\\"\"\r\n"] {
            let input = [b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", line, b"hello\r\n0\r\n\r\n", SMUGGLED].concat();
            assert_eq!(scan(&input), None, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn an_odd_chunk_is_refused_and_everything_after_it_poisoned() {
        let head: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        // (after the head, where it is refused, why, the byte put there)
        let cases: &[(&[u8], usize, &str, u8)] = &[
            (b"5 \r\nhello\r\n0\r\n\r\n", 2, "whitespace after a chunk size not followed by `;`", 0),
            (b"00000000000000005\r\nhello\r\n0\r\n\r\n", 16, "chunk size longer than 16 hex digits", 0),
            (b"5x\r\nhello\r\n0\r\n\r\n", 1, "invalid chunk size", 0),
            (b"\r\n5\r\nhello\r\n0\r\n\r\n", 0, "chunk size missing", 0),
            (b"5\r\nhello\r\n\r\n0\r\n\r\n", 10, "chunk size missing", 0),
            (b"5\r\nhelloXX0\r\n\r\n", 8, "chunk data not followed by CRLF", 0),
            (b"5\r\nhello\n0\r\n\r\n", 8, "chunk data not followed by CRLF", 0),
            (b"5;a b\r\nhello\r\n0\r\n\r\n", 4, "invalid chunk extension", b'\n'),
            (b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 19, "bare LF line ending", b'\r'),
        ];
        for &(body, at, reason, poison) in cases {
            let input = [head, body, SMUGGLED].concat();
            let (refused, outputs) = scan_splits(&input);
            assert_eq!(refused, Some(reason), "{}", String::from_utf8_lossy(body));
            let at = head.len() + at;
            let mut expected = input.clone();
            expected[at] = poison;
            expected[at + 1..].fill(0);
            assert!(outputs.iter().all(|o| *o == expected), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn nothing_after_a_refused_head_reaches_hyper_but_the_head_itself() {
        let refused = b"GET / HTTP/1.1\r\nContent-Length: +4\r\nHost: a\r\n\r\n";
        let (reason, outputs) = scan_splits(&after(refused, SMUGGLED));
        assert_eq!(reason, Some("invalid Content-Length"));
        for output in outputs {
            assert!(output[..refused.len()].ends_with(b"\r\n\r\n"), "hyper sees the head's end");
            assert!(output[refused.len()..].iter().all(|&b| b == 0), "{}", String::from_utf8_lossy(&output));
        }
        let (reason, outputs) = scan_splits(&after(CL_TE, SMUGGLED));
        assert_eq!(reason, Some("both Content-Length and Transfer-Encoding"));
        let head_len = CL_TE.len() - b"0\r\n\r\n".len();
        assert!(outputs.iter().all(|o| o[head_len..].iter().all(|&b| b == 0)));
    }

    #[test]
    fn a_transfer_coding_other_than_chunked_last_is_refused() {
        assert_eq!(
            scan(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            Some("Transfer-Encoding not ending in chunked")
        );
        assert_eq!(
            scan(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
            Some("Transfer-Encoding not ending in chunked")
        );
    }
}

