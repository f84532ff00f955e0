//! A plain HTTP/1.1 client for tests: one connection per request, so every call
//! is independent of the ones before it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Seen;

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The backend's description of the request, for replies from the default backend.
    pub fn seen(&self) -> Seen {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text());
        Seen::parse(&self.body)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` with `Host: localhost`.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::GET, path, &[("host", "localhost")], Bytes::new()).await
}

/// Sends one request on a new connection and reads the whole reply.
pub async fn request(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)], body: Bytes) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(body)).unwrap_or_else(|e| panic!("request: {e}"));
    let response = sender.send_request(req).await.unwrap_or_else(|e| panic!("send: {e}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap_or_else(|e| panic!("body: {e}")).to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}
