//! Bodies stream through the gateway in both directions.

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use wasmgate_tests::{gateway, request, simple_config, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mebibyte_post_round_trips_intact() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let body: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let reply = request(gw.local_addr("web").unwrap(), Method::POST, "/echo", &[("host", "x")], Bytes::from(body.clone())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), body.len());
    assert!(reply.body == body, "body changed on the way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_response_arrives_chunk_by_chunk() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let stream = tokio::net::TcpStream::connect(gw.local_addr("web").unwrap()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/stream").header("host", "x").body(Empty::<Bytes>::new()).unwrap();
    let mut body = sender.send_request(req).await.unwrap().into_body();

    // The backend sends its second chunk only once released, so the first chunk
    // reaching us now proves the gateway did not wait for the whole body.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first\n");
    backend.release();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second\n");
}

/// An upstream that speaks HTTP/1.0: reads a request head, answers with a
/// body delimited by closing the connection, and closes.
async fn http10_upstream() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfrom an old server").await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_upstream_is_answered_to_the_client_in_the_gateways_own_http11() {
    let upstream = http10_upstream().await;
    let gw = gateway(&simple_config("round_robin", &[(upstream, 1)], ""));
    let stream = tokio::net::TcpStream::connect(gw.local_addr("web").unwrap()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    // Two requests on one client connection: the upstream's version and its
    // closing the connection are the gateway's business, not the client's.
    for i in 0..2 {
        sender.ready().await.unwrap_or_else(|e| panic!("request {i}: the client connection did not stay open: {e}"));
        let req = http::Request::get(format!("/old/{i}")).header("host", "x").body(Empty::<Bytes>::new()).unwrap();
        let reply = sender.send_request(req).await.unwrap();
        assert_eq!(reply.version(), http::Version::HTTP_11, "request {i}");
        assert_eq!(reply.status(), StatusCode::OK);
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"from an old server");
    }
}
