//! A tiny backend for the examples, like the "real servers" of the design this
//! gateway comes from: it answers every request with its name, its address, and
//! what it received, so you can watch the gateway route and balance.
//!
//! Usage: demo-backend --listen 127.0.0.1:2003 [--name real-server-1]
//!        [--register 127.0.0.1:2181 [--path /real_server] [--weight 2]]
//!
//! With `--register` it also registers itself in ZooKeeper (an ephemeral node under
//! `--path`, default `/real_server`) for as long as it runs, and deletes the node
//! on Ctrl-C: gateways that discover that path start and stop routing to it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use wasmgate::register::Registration;

struct Args {
    listen: SocketAddr,
    name: String,
    /// ZooKeeper registration, when `--register` is given.
    register: Option<Registration>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut name = None;
    let mut zookeeper: Option<String> = None;
    let mut path = "/real_server".to_owned();
    let mut weight = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|_| format!("--listen: `{value}` is not ip:port"))?),
            "--name" => name = Some(value),
            "--register" => zookeeper = Some(value),
            "--path" => path = value,
            "--weight" => weight = Some(value.parse().map_err(|_| format!("--weight: `{value}` is not a number"))?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let listen: SocketAddr = listen.ok_or("--listen ip:port is required")?;
    let register = zookeeper.map(|hosts| Registration {
        hosts: hosts.split(',').map(str::to_owned).collect(),
        path,
        address: listen.to_string(),
        weight,
        session_timeout: Duration::from_secs(10),
    });
    Ok(Args { name: name.unwrap_or_else(|| format!("backend-{}", listen.port())), listen, register })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("demo-backend: {e}\nusage: demo-backend --listen 127.0.0.1:2003 [--name real-server-1] \
                 [--register 127.0.0.1:2181 [--path /real_server] [--weight 2]]");
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
    let Some(registration) = args.register else {
        return serve(listener, banner).await;
    };
    let _log = wasmgate::logging::init(&wasmgate::config::LogConfig { access: false, level: "info".into(), format: wasmgate::config::LogFormat::Text });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let registered = tokio::spawn(async move {
        registration
            .hold(async {
                let _ = stopped.await;
            })
            .await
    });
    tokio::select! {
        _ = serve(listener, banner) => {}
        _ = tokio::signal::ctrl_c() => println!("demo-backend {}: deregistering and stopping", args.name),
    }
    let _ = stop.send(());
    let _ = registered.await;
}

async fn serve(listener: TcpListener, banner: &'static str) {
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
    // Every header, so that what the gateway and its plugins added shows.
    for (name, value) in req.headers() {
        text += &format!("  {name}: {}\n", value.to_str().unwrap_or("<binary>"));
    }
    // No content for HEAD: over HTTP/2, hyper would send it as DATA frames.
    if req.method() == hyper::Method::HEAD {
        text.clear();
    }
    Ok(Response::new(Full::new(Bytes::from(text))))
}
