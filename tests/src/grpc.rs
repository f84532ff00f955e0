//! A tonic echo service in all four gRPC modes, written without protoc: the
//! message is a prost struct derived by hand and the service routes by path the
//! way tonic's generated code does.
//!
//! - `Unary`: echoes the message; text `not-found` fails with `NOT_FOUND`. The
//!   request's `x-trace` metadata comes back as `x-trace-echo`.
//! - `ServerStream`: `seq` messages numbered 0..seq; text `fail-after` then ends
//!   with `NOT_FOUND` (in trailers, after the messages).
//! - `ClientStream`: one message: the texts joined, `seq` = how many came.
//! - `Bidi`: echoes each message as it arrives.

use std::net::SocketAddr;
use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use tonic::codec::ProstCodec;
use tonic::codegen::{empty_body, http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{ClientStreamingService, Grpc, NamedService, ServerStreamingService, StreamingService, UnaryService};
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(uint32, tag = "2")]
    pub seq: u32,
}

impl Msg {
    pub fn new(text: impl Into<String>, seq: u32) -> Msg {
        Msg { text: text.into(), seq }
    }
}

pub type MsgStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

#[derive(Clone, Default)]
pub struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = "test.Echo";
}

struct Unary;
impl UnaryService<Msg> for Unary {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;
    fn call(&mut self, request: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let trace = request.metadata().get("x-trace").cloned();
            let msg = request.into_inner();
            if msg.text == "not-found" {
                return Err(Status::not_found("no such thing: not-found"));
            }
            let mut response = Response::new(msg);
            if let Some(trace) = trace {
                response.metadata_mut().insert("x-trace-echo", trace);
            }
            Ok(response)
        })
    }
}

struct ServerStream;
impl ServerStreamingService<Msg> for ServerStream {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<Response<MsgStream>, Status>;
    // tonic's stream items are `Result<_, Status>`, however large `Status` is.
    #[allow(clippy::result_large_err)]
    fn call(&mut self, request: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let msg = request.into_inner();
            let fail = msg.text == "fail-after";
            let items = (0..msg.seq).map(move |i| Ok(Msg::new(format!("item {i}"), i)));
            let end = fail.then(|| Err(Status::not_found("gone after the items")));
            let stream: MsgStream = Box::pin(futures_util::stream::iter(items.chain(end)));
            Ok(Response::new(stream))
        })
    }
}

struct ClientStream;
impl ClientStreamingService<Msg> for ClientStream {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;
    fn call(&mut self, request: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let mut stream = request.into_inner();
            let (mut texts, mut count) = (Vec::new(), 0);
            while let Some(msg) = stream.message().await? {
                texts.push(msg.text);
                count += 1;
            }
            Ok(Response::new(Msg::new(texts.join(","), count)))
        })
    }
}

struct Bidi;
impl StreamingService<Msg> for Bidi {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<Response<MsgStream>, Status>;
    fn call(&mut self, request: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let stream: MsgStream = Box::pin(request.into_inner());
            Ok(Response::new(stream))
        })
    }
}

impl<B> Service<http::Request<B>> for EchoServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::BoxBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let codec = || ProstCodec::<Msg, Msg>::default();
        match req.uri().path() {
            "/test.Echo/Unary" => Box::pin(async move { Ok(Grpc::new(codec()).unary(Unary, req).await) }),
            "/test.Echo/ServerStream" => {
                Box::pin(async move { Ok(Grpc::new(codec()).server_streaming(ServerStream, req).await) })
            }
            "/test.Echo/ClientStream" => {
                Box::pin(async move { Ok(Grpc::new(codec()).client_streaming(ClientStream, req).await) })
            }
            "/test.Echo/Bidi" => Box::pin(async move { Ok(Grpc::new(codec()).streaming(Bidi, req).await) }),
            _ => Box::pin(async move {
                let mut response = http::Response::new(empty_body());
                response.headers_mut().insert("grpc-status", http::HeaderValue::from_static("12"));
                response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/grpc"));
                Ok(response)
            }),
        }
    }
}

/// A running echo server on 127.0.0.1 (h2c); stops when dropped.
pub struct EchoBackend {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl EchoBackend {
    pub async fn start() -> EchoBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
        let incoming = tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
            .unwrap_or_else(|e| panic!("incoming: {e}"));
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder().add_service(EchoServer).serve_with_incoming(incoming).await;
        });
        EchoBackend { addr, task }
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client of the echo service over any tonic channel (clones share it).
#[derive(Clone)]
pub struct EchoClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

fn path(method: &str) -> http::uri::PathAndQuery {
    http::uri::PathAndQuery::try_from(format!("/test.Echo/{method}")).unwrap_or_else(|e| panic!("path: {e}"))
}

impl EchoClient {
    pub fn new(channel: tonic::transport::Channel) -> EchoClient {
        EchoClient { grpc: tonic::client::Grpc::new(channel) }
    }

    /// h2c with prior knowledge to `addr`.
    pub async fn h2c(addr: SocketAddr) -> EchoClient {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|e| panic!("endpoint: {e}"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        EchoClient::new(channel)
    }

    async fn ready(&mut self) {
        self.grpc.ready().await.unwrap_or_else(|e| panic!("channel not ready: {e}"));
    }

    pub async fn unary(&mut self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        self.ready().await;
        self.grpc.unary(request, path("Unary"), ProstCodec::default()).await
    }

    pub async fn server_stream(&mut self, request: Msg) -> Result<Response<Streaming<Msg>>, Status> {
        self.ready().await;
        self.grpc.server_streaming(Request::new(request), path("ServerStream"), ProstCodec::default()).await
    }

    pub async fn client_stream(&mut self, messages: Vec<Msg>) -> Result<Response<Msg>, Status> {
        self.ready().await;
        let stream = futures_util::stream::iter(messages);
        self.grpc.client_streaming(Request::new(stream), path("ClientStream"), ProstCodec::default()).await
    }

    pub async fn bidi<S>(&mut self, messages: S) -> Result<Response<Streaming<Msg>>, Status>
    where
        S: Stream<Item = Msg> + Send + 'static,
    {
        self.ready().await;
        self.grpc.streaming(Request::new(messages.boxed()), path("Bidi"), ProstCodec::default()).await
    }
}
