//! Warm instance pools: reuse, recycling after N uses, bounded size.

use std::sync::Arc;

use wasmgate_plugin::{Chain, OnError, PluginRuntime, RequestOutcome, ResponseOutcome, RuntimeSettings};

use super::support::{ctx, load, request, settings};

fn runtime(pool_size: usize, max_uses: u64) -> PluginRuntime {
    PluginRuntime::new(RuntimeSettings {
        pool_size,
        max_uses,
        ..settings()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn instances_are_reused_then_recycled_after_max_uses() {
    let runtime = runtime(1, 3);
    let plugin = load(&runtime, "pass")
        .configure("{}", OnError::FailClosed)
        .unwrap_or_else(|e| panic!("{e}"));
    let chain = Chain::new(vec![plugin.clone()]);
    for _ in 0..7 {
        assert!(matches!(
            chain.on_request(&mut request("GET", "/"), &mut ctx()),
            RequestOutcome::Continue { ran: 1 }
        ));
    }
    // Uses 1-3 on the first instance, 4-6 on the second, 7 on the third.
    assert_eq!(plugin.stats().started, 3);
    assert_eq!(plugin.stats().warm, 1);
}

#[test]
fn a_phase_the_plugin_keeps_as_default_is_called_once_then_never() {
    // `noop` keeps both default hooks; `pass` implements both.
    let runtime = runtime(1, 3);
    let noop = load(&runtime, "noop")
        .configure("{}", OnError::FailClosed)
        .unwrap_or_else(|e| panic!("{e}"));
    let pass = load(&runtime, "pass")
        .configure("{}", OnError::FailClosed)
        .unwrap_or_else(|e| panic!("{e}"));
    let chain = Chain::new(vec![noop.clone(), pass.clone()]);
    for _ in 0..7 {
        let mut ctx = ctx();
        let outcome = chain.on_request(&mut request("GET", "/"), &mut ctx);
        assert!(matches!(outcome, RequestOutcome::Continue { ran: 2 }));
        let (mut head, ()) = http::Response::new(()).into_parts();
        assert!(matches!(chain.on_response(2, &mut head, &mut ctx), ResponseOutcome::Continue));
    }
    // noop answered `no-phase` once per phase: two calls, one instance (max 3 uses).
    assert!(!noop.phases().request() && !noop.phases().response());
    assert_eq!(noop.stats().started, 1);
    // pass served all 14 calls: instances recycled every 3 uses.
    assert!(pass.phases().request() && pass.phases().response());
    assert_eq!(pass.stats().started, 5);
}

#[test]
fn the_pool_stays_bounded_under_concurrency() {
    let runtime = runtime(2, 1_000_000);
    let plugin = load(&runtime, "recorder")
        .configure(r#"{"name": "x"}"#, OnError::FailClosed)
        .unwrap_or_else(|e| panic!("{e}"));
    let chain = Arc::new(Chain::new(vec![plugin.clone()]));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let chain = chain.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let outcome = chain.on_request(&mut request("GET", "/"), &mut ctx());
                    assert!(matches!(outcome, RequestOutcome::Continue { ran: 1 }));
                }
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().is_ok());
    }
    let stats = plugin.stats();
    assert!(stats.warm <= 2, "{stats:?}");
    assert!(stats.started <= 5, "{stats:?}");
}
