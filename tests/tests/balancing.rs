//! Every balancer's distribution, through the real gateway.

use std::collections::HashMap;

use wasmgate::config::TargetConfig;
use wasmgate_tests::{gateway, get, simple_config, Backend};

async fn backends(ids: &[&str]) -> Vec<Backend> {
    let mut all = Vec::new();
    for id in ids {
        all.push(Backend::start(id).await);
    }
    all
}

async fn sequence(addr: std::net::SocketAddr, n: usize) -> Vec<String> {
    let mut order = Vec::with_capacity(n);
    for i in 0..n {
        order.push(get(addr, &format!("/r/{i}")).await.seen().backend);
    }
    order
}

fn counts(order: &[String]) -> HashMap<String, usize> {
    order.iter().fold(HashMap::new(), |mut c, id| {
        *c.entry(id.clone()).or_default() += 1;
        c
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smooth_weighted_round_robin_follows_nginx_exactly() {
    let b = backends(&["A", "B", "C"]).await;
    let gw = gateway(&simple_config("weighted_round_robin", &[(b[0].addr, 4), (b[1].addr, 3), (b[2].addr, 2)], ""));
    let order = sequence(gw.local_addr("web").unwrap(), 27).await.concat();
    assert_eq!(order, "ABCABACBA".repeat(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_is_even_within_one() {
    let b = backends(&["A", "B", "C"]).await;
    let gw = gateway(&simple_config("round_robin", &[(b[0].addr, 1), (b[1].addr, 1), (b[2].addr, 1)], ""));
    let c = counts(&sequence(gw.local_addr("web").unwrap(), 300).await);
    for id in ["A", "B", "C"] {
        assert!((99..=101).contains(&c[id]), "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_is_roughly_uniform() {
    let b = backends(&["A", "B"]).await;
    let gw = gateway(&simple_config("random", &[(b[0].addr, 1), (b[1].addr, 1)], ""));
    let c = counts(&sequence(gw.local_addr("web").unwrap(), 400).await);
    // Binomial(400, 0.5): ±60 is more than six standard deviations.
    for id in ["A", "B"] {
        assert!((140..=260).contains(&c[id]), "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_is_stable_and_remaps_about_one_nth_on_removal() {
    let b = backends(&["A", "B", "C", "D"]).await;
    let targets: Vec<_> = b.iter().map(|b| (b.addr, 1)).collect();
    let gw = gateway(&simple_config("consistent_hash", &targets, "hash_key = \"uri\""));
    let addr = gw.local_addr("web").unwrap();
    let uris: Vec<String> = (0..200).map(|i| format!("/item/{i}")).collect();
    let mut before = Vec::new();
    for uri in &uris {
        let first = get(addr, uri).await.seen().backend;
        assert_eq!(get(addr, uri).await.seen().backend, first, "same key, same target");
        before.push(first);
    }

    // Take D out the way discovery will: publish a new target set.
    let state = gw.state().load_full();
    let upstream = state.upstream("up").unwrap();
    let remaining: Vec<TargetConfig> = upstream.config.targets[..3].to_vec();
    upstream.publish(&remaining);

    let mut moved = 0;
    for (uri, was) in uris.iter().zip(&before) {
        let now = get(addr, uri).await.seen().backend;
        if was == "D" {
            assert_ne!(now, "D");
            moved += 1;
        } else {
            assert_eq!(&now, was, "{uri} moved although its target stayed");
        }
    }
    // About a quarter of the keys lived on D.
    assert!((20..=80).contains(&moved), "moved {moved} of 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_by_header_keeps_a_user_on_one_target() {
    let b = backends(&["A", "B", "C"]).await;
    let targets: Vec<_> = b.iter().map(|b| (b.addr, 1)).collect();
    let gw = gateway(&simple_config("consistent_hash", &targets, "hash_key = \"header:x-user\""));
    let addr = gw.local_addr("web").unwrap();
    for user in ["alice", "bob", "carol", "dave"] {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10 {
            let reply = wasmgate_tests::request(
                addr,
                http::Method::GET,
                &format!("/p/{i}"),
                &[("host", "x"), ("x-user", user)],
                bytes::Bytes::new(),
            )
            .await;
            seen.insert(reply.seen().backend);
        }
        assert_eq!(seen.len(), 1, "{user} went to {seen:?}");
    }
}
