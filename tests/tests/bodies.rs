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
