//! WebSocket through the gateway: the handshake takes the ordinary request path
//! (route, prefix stripping, forwarded headers), then frames pass both ways
//! untouched — 1,000 text and 100 binary messages in order, the close code
//! preserved — until close or the listener's idle timeout.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wasmgate_tests::plugins::PluginDir;
use wasmgate_tests::{closed_port, gateway};

/// What the WebSocket server saw: the handshake's path and headers, then the
/// close code the client sent.
#[derive(Debug)]
enum Seen {
    Handshake { path: String, forwarded_for: Option<String> },
    Closed(Option<u16>),
}

/// An echo WebSocket server; reports what it saw on the returned channel.
async fn ws_echo_server() -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let seen = tx.clone();
                // tungstenite's handshake callback returns its (large) error response type.
                #[allow(clippy::result_large_err)]
                let callback = move |req: &Request, response: Response| {
                    let forwarded_for = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let _ = seen.send(Seen::Handshake { path: req.uri().path().to_owned(), forwarded_for });
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    match message {
                        Message::Text(_) | Message::Binary(_) => {
                            let Ok(()) = ws.send(message).await else { return };
                        }
                        Message::Close(frame) => {
                            let _ = tx.send(Seen::Closed(frame.map(|f| u16::from(f.code))));
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn config(target: SocketAddr, idle: &str) -> String {
    config_with_plugins(target, idle, "", "")
}

/// `plugins`: the route's `plugins = [...]` items; `dir`: the plugin folder.
fn config_with_plugins(target: SocketAddr, idle: &str, plugins: &str, dir: &str) -> String {
    let plugin_lines =
        if plugins.is_empty() { String::new() } else { format!("plugins = [ {plugins} ]\n") };
    let plugin_table = if dir.is_empty() { String::new() } else { format!("[plugins]\ndir = \"{dir}\"\n") };
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"
limits = {{ idle_timeout = "{idle}" }}

[[route]]
listener = "web"
path_prefix = "/ws"
strip_prefix = true
upstream = "chat"
{plugin_lines}
[[upstream]]
name = "chat"
targets = [{{ address = "{target}" }}]

{plugin_table}
[runtime]
workers = 2

[log]
access = false
"#
    )
}

async fn connect(
    gateway: SocketAddr,
    path: &str,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, WsError> {
    let tcp = TcpStream::connect(gateway).await.unwrap();
    tokio_tungstenite::client_async(format!("ws://chat.test{path}"), tcp).await.map(|(ws, _)| ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_in_order_and_the_close_code_is_preserved() {
    let (server, mut seen) = ws_echo_server().await;
    let gw = gateway(&config(server, "60s"));
    let ws = connect(gw.local_addr("web").unwrap(), "/ws/room/1").await.expect("handshake through the gateway");

    match seen.recv().await {
        Some(Seen::Handshake { path, forwarded_for }) => {
            assert_eq!(path, "/room/1", "the upgrade request was routed and its prefix stripped");
            assert_eq!(forwarded_for.as_deref(), Some("127.0.0.1"), "forwarded headers were added");
        }
        other => panic!("expected the handshake, got {other:?}"),
    }

    let (mut sink, mut stream) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..1000 {
            sink.send(Message::Text(format!("text {i}"))).await.unwrap();
        }
        for i in 0..100u32 {
            let payload: Vec<u8> = (0..(i * 97 % 4096)).map(|b| (b ^ i) as u8).chain(i.to_be_bytes()).collect();
            sink.send(Message::Binary(payload)).await.unwrap();
        }
        sink
    });
    for i in 0..1000 {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("echo stalled");
        assert_eq!(message.unwrap().unwrap(), Message::Text(format!("text {i}")));
    }
    for i in 0..100u32 {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("echo stalled");
        let expected: Vec<u8> = (0..(i * 97 % 4096)).map(|b| (b ^ i) as u8).chain(i.to_be_bytes()).collect();
        assert_eq!(message.unwrap().unwrap(), Message::Binary(expected));
    }
    let mut sink = sender.await.unwrap();
    let close = CloseFrame { code: CloseCode::from(4321), reason: "done here".into() };
    sink.send(Message::Close(Some(close))).await.unwrap();
    // The server's echo of our close frame comes back with the same code.
    let reply = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("no close reply");
    match reply {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4321);
            assert_eq!(frame.reason, "done here");
        }
        other => panic!("expected the close frame back, got {other:?}"),
    }
    match tokio::time::timeout(Duration::from_secs(10), seen.recv()).await.expect("server saw no close") {
        Some(Seen::Closed(code)) => assert_eq!(code, Some(4321), "the server got the client's close code"),
        other => panic!("expected the close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handshake_gets_the_gateway_status() {
    // No target can be reached: the handshake gets the gateway's 502, as any request would.
    let gw = gateway(&config(closed_port(), "60s"));
    match connect(gw.local_addr("web").unwrap(), "/ws/x").await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 502),
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| "a websocket")),
    }
    // No route: 404, never upgraded.
    match connect(gw.local_addr("web").unwrap(), "/elsewhere").await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| "a websocket")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_websocket_is_closed() {
    let (server, _seen) = ws_echo_server().await;
    let gw = gateway(&config(server, "400ms"));
    let mut ws = connect(gw.local_addr("web").unwrap(), "/ws/idle").await.unwrap();
    ws.send(Message::Text("hi".into())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::Text("hi".into()));
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("idle websocket kept open");
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "unexpected message: {end:?}");
    assert!(started.elapsed() >= Duration::from_millis(300), "closed too early: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_goes_through_the_routes_auth_plugin() {
    let (server, mut seen) = ws_echo_server().await;
    let dir = PluginDir::with(&[("key-auth", "key-auth")]);
    let auth = r#"{ name = "key-auth", config = { query = "apikey", keys = [ { consumer = "chat-app", key = "let-me-in" } ] } }"#;
    let gw = gateway(&config_with_plugins(server, "60s", auth, &dir.path().display().to_string()));
    let addr = gw.local_addr("web").unwrap();

    // No key, then a wrong key: the plugin answers 401 and nothing is upgraded.
    for path in ["/ws/room/1", "/ws/room/1?apikey=wrong"] {
        match connect(addr, path).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 401, "{path}");
                assert!(response.headers().contains_key("www-authenticate"), "{path}: {:?}", response.headers());
            }
            other => panic!("{path}: expected a 401, got {:?}", other.map(|_| "a websocket")),
        }
    }
    assert!(seen.try_recv().is_err(), "a refused handshake reached the server");

    // The right key: upgraded, and the key itself does not go upstream.
    let mut ws = connect(addr, "/ws/room/1?apikey=let-me-in").await.expect("handshake with a valid key");
    match seen.recv().await {
        Some(Seen::Handshake { path, .. }) => assert_eq!(path, "/room/1", "the key was stripped from the query"),
        other => panic!("expected the handshake, got {other:?}"),
    }
    ws.send(Message::Text("hello".into())).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("echo stalled");
    assert_eq!(echo.unwrap().unwrap(), Message::Text("hello".into()));
}
