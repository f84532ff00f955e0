//! A plugin gets no files, no network, no environment and no arguments.

use std::collections::BTreeMap;

use wasmgate_plugin::{OnError, RequestOutcome};

use super::support::{ctx, request, shared};

#[test]
fn files_sockets_env_and_args_are_denied() {
    let chain = shared().chain(&[("sandbox-probe", "{}", OnError::FailClosed)]);
    let mut cx = ctx();
    let RequestOutcome::Respond { response, .. } =
        chain.on_request(&mut request("GET", "/"), &mut cx)
    else {
        panic!("expected the probe's report");
    };
    assert_eq!(response.status(), 200);
    let report: BTreeMap<String, String> =
        serde_json::from_slice(response.body()).unwrap_or_else(|e| panic!("{e}"));
    for probe in ["file", "dir", "write", "socket", "listen", "env", "args"] {
        let outcome = report.get(probe).map(String::as_str).unwrap_or("missing");
        assert!(outcome.starts_with("denied"), "{probe}: {outcome}");
    }
}
