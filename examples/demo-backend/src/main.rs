//! A tiny backend for the examples, like the "real servers" of the design this
//! gateway comes from: it answers every request with its name, its address, and
//! what it received, so you can watch the gateway route and balance.
//!
//! Usage: demo-backend --listen 127.0.0.1:2003 [--name real-server-1]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

struct Args {
    listen: SocketAddr,
    name: String,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut name = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|_| format!("--listen: `{value}` is not ip:port"))?),
            "--name" => name = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let listen: SocketAddr = listen.ok_or("--listen ip:port is required")?;
    Ok(Args { name: name.unwrap_or_else(|| format!("backend-{}", listen.port())), listen })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("demo-backend: {e}\nusage: demo-backend --listen 127.0.0.1:2003 [--name real-server-1]");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("demo-backend: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    println!("demo-backend {} listening on {}", args.name, args.listen);
    let banner: &'static str = Box::leak(format!("{} at {}", args.name, args.listen).into_boxed_str());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(banner, req));
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(banner: &str, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut text = format!("{banner} got {} {}\n", req.method(), req.uri());
    for name in ["host", "x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host"] {
        if let Some(value) = req.headers().get(name) {
            text += &format!("  {name}: {}\n", value.to_str().unwrap_or("<binary>"));
        }
    }
    Ok(Response::new(Full::new(Bytes::from(text))))
}
