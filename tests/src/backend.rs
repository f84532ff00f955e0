//! In-process HTTP backends. The default one answers every request with a JSON
//! description of what it saw (its id, method, path, query, headers, body size);
//! a few paths change its behaviour:
//!
//! - `POST /echo`: the request body streams back as the response body.
//! - `/stream`: one chunk, then waits for `Backend::release()`, then a second chunk.
//! - `/hold`: waits for `Backend::release()` before answering.
//! - `/status/<code>`: answers with that status.
//! - `/big-header/<bytes>`: answers with an `x-big` header that long.
//!
//! `Backend::fail_with(Some(500))` makes every request answer that status until
//! `fail_with(None)`, for breakers and health checks.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

type Body = BoxBody<Bytes, hyper::Error>;

/// What a backend saw of one request, as it reports it in JSON.
#[derive(Debug, Clone)]
pub struct Seen {
    pub backend: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body_len: usize,
}

impl Seen {
    pub fn parse(body: &[u8]) -> Seen {
        let v: serde_json::Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("backend reply is not JSON ({e}): {}", String::from_utf8_lossy(body)));
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        Seen {
            backend: text("backend").unwrap_or_default(),
            method: text("method").unwrap_or_default(),
            path: text("path").unwrap_or_default(),
            query: text("query"),
            headers: v["headers"]
                .as_object()
                .map(|h| h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default(),
            body_len: v["body_len"].as_u64().unwrap_or_default() as usize,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct Shared {
    id: String,
    /// Requests seen so far; a watch so tests can wait for a count.
    hits: watch::Sender<usize>,
    /// Permits for `/hold` and `/stream` requests to go on.
    release: Semaphore,
    /// A status every request gets (0: behave normally).
    forced: AtomicU16,
}

/// A running backend; stops (closing its listener and connections) when dropped.
pub struct Backend {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Backend {
    /// Starts a backend with this id on a free port, on the current tokio runtime.
    pub async fn start(id: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        Backend::serve(id, listener)
    }

    /// Starts a backend on an address (to bring one back on the port it had).
    pub async fn start_on(id: &str, addr: SocketAddr) -> Backend {
        let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        Backend::serve(id, listener)
    }

    fn serve(id: &str, listener: TcpListener) -> Backend {
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
        let shared = Arc::new(Shared {
            id: id.to_owned(),
            hits: watch::channel(0).0,
            release: Semaphore::new(0),
            forced: AtomicU16::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept(listener, shared.clone(), stopped));
        Backend { addr, shared, stop }
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        *self.shared.hits.borrow()
    }

    /// Waits until at least `n` requests have reached this backend.
    pub async fn wait_hits(&self, n: usize) {
        let mut hits = self.shared.hits.subscribe();
        let _ = hits.wait_for(|&h| h >= n).await;
    }

    /// From now on answer every request with `status` (`None`: behave normally).
    pub fn fail_with(&self, status: Option<u16>) {
        self.shared.forced.store(status.unwrap_or(0), Ordering::Release);
    }

    /// Lets one waiting `/hold` or `/stream` request go on.
    pub fn release(&self) {
        self.shared.release.add_permits(1);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        let mut conn_stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = conn_stopped.changed() => {}
            }
        });
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    shared.hits.send_modify(|h| *h += 1);
    let path = req.uri().path().to_owned();
    if req.method() == hyper::Method::POST && path == "/echo" {
        return Ok(Response::new(req.into_body().boxed()));
    }
    if path == "/stream" {
        let shared = shared.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(2);
        tokio::spawn(async move {
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"first\n")))).await;
            if let Ok(permit) = shared.release.acquire().await {
                permit.forget();
            }
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"second\n")))).await;
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        return Ok(Response::new(BodyExt::boxed(StreamBody::new(stream))));
    }
    if path == "/hold" {
        if let Ok(permit) = shared.release.acquire().await {
            permit.forget();
        }
    }
    let forced = shared.forced.load(Ordering::Acquire);
    let code = match forced {
        0 => path.strip_prefix("/status/").and_then(|code| code.parse::<u16>().ok()),
        forced => Some(forced),
    };
    let status = code.and_then(|code| StatusCode::from_u16(code).ok()).unwrap_or(StatusCode::OK);

    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<&str> =
            req.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("<binary>")).collect();
        headers.insert(name.as_str().to_owned(), values.join(" | ").into());
    }
    let method = req.method().to_string();
    let query = req.uri().query().map(str::to_owned);
    let body_len = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len(),
        Err(_) => 0,
    };
    let reply = serde_json::json!({
        "backend": shared.id,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body_len": body_len,
    });
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())).map_err(|e| match e {}).boxed());
    *response.status_mut() = status;
    if let Some(size) = path.strip_prefix("/big-header/").and_then(|n| n.parse::<usize>().ok()) {
        if let Ok(value) = http::HeaderValue::from_str(&"x".repeat(size)) {
            response.headers_mut().insert("x-big", value);
        }
    }
    response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
    Ok(response)
}
