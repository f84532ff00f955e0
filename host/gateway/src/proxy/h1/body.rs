//! The response body read straight off an upstream connection: by length,
//! chunk by chunk, or until the upstream closes. Data frames share the read
//! buffer's memory (no copy). When the body has ended cleanly the connection
//! goes back to the pool before the last frame is handed on; a body dropped
//! early (the client went away) closes it instead, its state being unknown.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Frame, SizeHint};

use super::conn::{Conn, Home};
use super::head::Framing;

/// Longest chunk-size line (size, extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("upstream closed the connection in the middle of the body")]
    Truncated,
    #[error("malformed chunked body from upstream: {0}")]
    Chunked(&'static str),
    #[error("reading the upstream body: {0}")]
    Io(#[from] std::io::Error),
}

enum State {
    Length(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Inside a chunk: this many data bytes left.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer lines until a blank one, and the
    /// fields (with their size) read so far.
    Trailers(HeaderMap, usize),
    UntilClose,
    Done,
}

pub struct H1Body {
    conn: Option<Conn>,
    state: State,
    /// Where the connection goes afterwards; `None`: it is closed.
    home: Option<Home>,
}

impl H1Body {
    pub fn new(conn: Conn, framing: Framing, home: Option<Home>) -> H1Body {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = H1Body { conn: Some(conn), state, home };
        if matches!(body.state, State::Done) {
            body.finish();
        }
        body
    }

    /// The body is complete: the connection goes home (if it has one).
    fn finish(&mut self) {
        self.state = State::Done;
        if let (Some(conn), Some(home)) = (self.conn.take(), self.home.take()) {
            home.give_back(conn);
        }
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }
}

/// Reads more bytes into the connection's buffer; `Ok(0)` at end of stream.
fn poll_fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    conn.reserve();
    tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf)
}

/// Takes one line (without its CRLF) off the front of `buf`, if it holds one.
fn take_line(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, BodyError> {
    match buf.iter().take(max + 2).position(|&b| b == b'\n') {
        Some(at) => {
            if at == 0 || buf[at - 1] != b'\r' {
                return Err(BodyError::Chunked("line not ended by CRLF"));
            }
            let mut line = buf.split_to(at + 1);
            line.truncate(at - 1);
            Ok(Some(line))
        }
        None if buf.len() > max => Err(BodyError::Chunked("line too long")),
        None => Ok(None),
    }
}

/// `1a;name=value` → 26. Hex digits, then optional extensions (ignored).
fn chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii_end();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(BodyError::Chunked("invalid chunk size"));
    }
    let text = std::str::from_utf8(digits).map_err(|_| BodyError::Chunked("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| BodyError::Chunked("invalid chunk size"))
}

impl http_body::Body for H1Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // Make progress with what is buffered; `None`: read more first.
            let frame: Option<Frame<Bytes>> = match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) | State::ChunkData(left) if !conn.buf.is_empty() => {
                    let n = (*left).min(conn.buf.len() as u64) as usize;
                    *left -= n as u64;
                    let data = conn.buf.split_to(n).freeze();
                    match this.state {
                        State::Length(0) => this.finish(),
                        State::ChunkData(0) => this.state = State::ChunkEnd,
                        _ => {}
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose if !conn.buf.is_empty() => Some(Frame::data(conn.buf.split().freeze())),
                State::ChunkSize => match take_line(&mut conn.buf, MAX_CHUNK_LINE) {
                    Err(e) => return this.fail(e),
                    Ok(Some(line)) => {
                        this.state = match chunk_size(&line) {
                            Ok(0) => State::Trailers(HeaderMap::new(), 0),
                            Ok(n) => State::ChunkData(n),
                            Err(e) => return this.fail(e),
                        };
                        continue;
                    }
                    Ok(None) => None,
                },
                State::ChunkEnd if conn.buf.len() >= 2 => {
                    if &conn.buf[..2] != b"\r\n" {
                        return this.fail(BodyError::Chunked("chunk data not followed by CRLF"));
                    }
                    let _ = conn.buf.split_to(2);
                    this.state = State::ChunkSize;
                    continue;
                }
                State::Trailers(trailers, trailer_bytes) => match take_line(&mut conn.buf, MAX_TRAILERS) {
                    Err(e) => return this.fail(e),
                    Ok(Some(line)) if line.is_empty() => {
                        let trailers = std::mem::take(trailers);
                        this.finish();
                        if trailers.is_empty() {
                            return Poll::Ready(None);
                        }
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    Ok(Some(line)) => {
                        *trailer_bytes += line.len();
                        if *trailer_bytes > MAX_TRAILERS {
                            return this.fail(BodyError::Chunked("trailers too large"));
                        }
                        let Some(colon) = line.iter().position(|&b| b == b':') else {
                            return this.fail(BodyError::Chunked("trailer line without a colon"));
                        };
                        let name = HeaderName::from_bytes(&line[..colon]);
                        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
                        match (name, value) {
                            (Ok(name), Ok(value)) => {
                                trailers.append(name, value);
                            }
                            _ => return this.fail(BodyError::Chunked("invalid trailer field")),
                        }
                        continue;
                    }
                    Ok(None) => None,
                },
                _ => None,
            };
            if let Some(frame) = frame {
                return Poll::Ready(Some(Ok(frame)));
            }
            match ready!(poll_fill(conn, cx)) {
                Ok(0) => {
                    if matches!(this.state, State::UntilClose) {
                        // The end of a close-delimited body; the connection is spent.
                        this.home = None;
                        this.finish();
                        return Poll::Ready(None);
                    }
                    return this.fail(BodyError::Truncated);
                }
                Ok(_) => {}
                Err(e) => return this.fail(BodyError::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::BytesMut;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::tls::MaybeTls;

    /// A connection whose upstream writes `pieces` one by one (each flushed
    /// separately, so the body sees them arrive split anywhere), then closes
    /// if `close`.
    async fn upstream(pieces: Vec<&'static [u8]>, close: bool) -> (Conn, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            for piece in pieces {
                socket.write_all(piece).await.unwrap();
                socket.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            if !close {
                // Hold the connection open until the test is done with it.
                std::future::pending::<()>().await;
            }
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        (Conn { io: MaybeTls::Plain(stream), buf: BytesMut::new(), gauge: crate::proxy::idle::PoolGauge::opened(None) }, addr)
    }

    async fn read_all(body: H1Body) -> Result<(Vec<u8>, Option<HeaderMap>), BodyError> {
        let collected = body.collect().await?;
        let trailers = collected.trailers().cloned();
        Ok((collected.to_bytes().to_vec(), trailers))
    }

    #[tokio::test]
    async fn a_chunked_body_split_anywhere_is_decoded_with_its_trailers() {
        let pieces: Vec<&'static [u8]> =
            vec![b"5\r\nhel", b"lo\r", b"\n6;ext=1\r\n wor", b"ld\r\n0\r\nx-checksum: ab", b"c\r\n", b"\r\n"];
        let (conn, addr) = upstream(pieces, false).await;
        let home = Home { target: addr, keepalive: 4 };
        let (data, trailers) = read_all(H1Body::new(conn, Framing::Chunked, Some(home))).await.unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(trailers.unwrap()["x-checksum"], "abc");
        assert!(super::super::conn::take(addr, std::time::Duration::from_secs(5)).is_some(), "clean end: pooled");
    }

    #[tokio::test]
    async fn a_length_body_ends_exactly_and_close_delimited_reads_to_eof() {
        let (conn, addr) = upstream(vec![b"0123", b"456789"], false).await;
        let body = H1Body::new(conn, Framing::Length(10), Some(Home { target: addr, keepalive: 4 }));
        assert_eq!(read_all(body).await.unwrap().0, b"0123456789");
        assert!(super::super::conn::take(addr, std::time::Duration::from_secs(5)).is_some());

        let (conn, addr) = upstream(vec![b"until ", b"the end"], true).await;
        let body = H1Body::new(conn, Framing::UntilClose, Some(Home { target: addr, keepalive: 4 }));
        assert_eq!(read_all(body).await.unwrap().0, b"until the end");
        assert!(super::super::conn::take(addr, std::time::Duration::from_secs(5)).is_none(), "spent: not pooled");
    }

    #[tokio::test]
    async fn broken_bodies_are_errors_and_never_pooled() {
        for (pieces, framing) in [
            (vec![b"01234".as_slice()], Framing::Length(10)),
            (vec![b"5\r\nhello\r\n".as_slice()], Framing::Chunked),
            (vec![b"zz\r\nhello\r\n0\r\n\r\n".as_slice()], Framing::Chunked),
            (vec![b"5\r\nhelloXX0\r\n\r\n".as_slice()], Framing::Chunked),
            (vec![b"5\nhello\r\n0\r\n\r\n".as_slice()], Framing::Chunked),
        ] {
            let (conn, addr) = upstream(pieces.clone(), true).await;
            let body = H1Body::new(conn, framing, Some(Home { target: addr, keepalive: 4 }));
            assert!(read_all(body).await.is_err(), "{pieces:?} {framing:?}");
            assert!(super::super::conn::take(addr, std::time::Duration::from_secs(5)).is_none());
        }
    }

    #[tokio::test]
    async fn bytes_past_the_end_of_a_response_keep_the_connection_out_of_the_pool() {
        let (conn, addr) = upstream(vec![b"abcEXTRA"], false).await;
        let body = H1Body::new(conn, Framing::Length(3), Some(Home { target: addr, keepalive: 4 }));
        assert_eq!(read_all(body).await.unwrap().0, b"abc");
        assert!(super::super::conn::take(addr, std::time::Duration::from_secs(5)).is_none());
    }
}
