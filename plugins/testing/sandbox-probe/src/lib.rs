//! Tries what the sandbox must forbid and answers with what happened, as
//! JSON: `{"file": "denied: ...", "dir": ..., "write": ..., "socket": ...,
//! "env": ..., "args": ...}`. Every value should start with `denied`.

use std::collections::BTreeMap;
use std::io::Read;

use wasmgate_sdk::prelude::*;

struct Probe;

fn outcome<T, E: std::fmt::Display>(
    result: Result<T, E>,
    show: impl FnOnce(T) -> String,
) -> String {
    match result {
        Ok(value) => format!("allowed: {}", show(value)),
        Err(err) => format!("denied: {err}"),
    }
}

impl Plugin for Probe {
    type Config = NoConfig;

    fn new(_config: NoConfig, _cx: &Context) -> Result<Self, String> {
        Ok(Probe)
    }

    fn on_request(&self, _request: &mut Request, _cx: &Context) -> RequestFlow {
        let mut report = BTreeMap::new();
        report.insert(
            "file",
            outcome(
                std::fs::File::open("/etc/passwd").and_then(|mut f| {
                    let mut s = String::new();
                    f.read_to_string(&mut s).map(|_| s)
                }),
                |s| format!("{} bytes", s.len()),
            ),
        );
        report.insert(
            "dir",
            outcome(std::fs::read_dir("."), |d| format!("{} entries", d.count())),
        );
        report.insert(
            "write",
            outcome(std::fs::write("/tmp/wasmgate-probe", b"x"), |()| {
                "written".into()
            }),
        );
        report.insert(
            "socket",
            outcome(std::net::TcpStream::connect("127.0.0.1:80"), |_| {
                "connected".into()
            }),
        );
        report.insert(
            "listen",
            outcome(std::net::TcpListener::bind("127.0.0.1:0"), |_| {
                "bound".into()
            }),
        );
        let vars: Vec<(String, String)> = std::env::vars().collect();
        report.insert(
            "env",
            if vars.is_empty() && std::env::var("PATH").is_err() {
                "denied: empty".into()
            } else {
                format!("allowed: {} variables", vars.len())
            },
        );
        let args = std::env::args().count();
        report.insert(
            "args",
            if args == 0 {
                "denied: empty".into()
            } else {
                format!("allowed: {args} arguments")
            },
        );
        RequestFlow::Respond(Response::json(200, &report))
    }
}

export_plugin!(Probe);
