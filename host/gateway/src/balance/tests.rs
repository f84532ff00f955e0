use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;

fn ctx<'a>(uri: &'a str, headers: &'a http::HeaderMap) -> PickContext<'a> {
    PickContext { uri, client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), headers }
}

fn targets(weights: &[u32]) -> Vec<TargetConfig> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &weight)| {
            let address = format!("10.0.0.{}:80", i + 1);
            TargetConfig { address: address.parse().unwrap(), authority: address, weight }
        })
        .collect()
}

fn picks(b: &dyn Balancer, n: usize) -> Vec<usize> {
    let headers = http::HeaderMap::new();
    (0..n).map(|_| b.pick(&ctx("/", &headers)).unwrap()).collect()
}

#[test]
fn smooth_weighted_matches_nginx_sequence() {
    let b = SmoothWeighted::new(&[4, 3, 2]);
    let names: String = picks(&b, 18).iter().map(|&i| (b'A' + i as u8) as char).collect();
    assert_eq!(names, "ABCABACBAABCABACBA");
}

#[test]
fn smooth_weighted_reduces_by_gcd_and_runs_live_for_huge_schedules() {
    let scaled = SmoothWeighted::new(&[400, 300, 200]);
    assert_eq!(picks(&scaled, 9), picks(&SmoothWeighted::new(&[4, 3, 2]), 9));
    // 9_999 + 9_998 + ... is far beyond the precomputed schedule: the live path.
    let weights: Vec<u32> = (0..20).map(|i| 9_999 - i).collect();
    let live = SmoothWeighted::new(&weights);
    let counts = picks(&live, 10_000).iter().fold(vec![0; 20], |mut c, &i| {
        c[i] += 1;
        c
    });
    assert!(counts.iter().all(|&c| (495..=505).contains(&c)), "{counts:?}");
}

#[test]
fn smooth_weighted_is_exact_under_concurrency() {
    let b = Arc::new(SmoothWeighted::new(&[4, 3, 2]));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || picks(&*b, 900))
        })
        .collect();
    let mut counts = [0usize; 3];
    for h in handles {
        for i in h.join().unwrap() {
            counts[i] += 1;
        }
    }
    assert_eq!(counts, [1600, 1200, 800]);
}

#[test]
fn round_robin_is_even() {
    let counts = picks(&RoundRobin::new(3), 300).iter().fold([0; 3], |mut c, &i| {
        c[i] += 1;
        c
    });
    assert_eq!(counts, [100, 100, 100]);
}

#[test]
fn random_is_roughly_uniform() {
    let counts = picks(&Random::new(4), 40_000).iter().fold([0; 4], |mut c, &i| {
        c[i] += 1;
        c
    });
    assert!(counts.iter().all(|&c| (9_000..=11_000).contains(&c)), "{counts:?}");
}

#[test]
fn consistent_hash_is_stable_and_moves_about_one_nth_on_removal() {
    let all = targets(&[1, 1, 1, 1, 1]);
    let full = ConsistentHash::new(HashKey::Uri, DEFAULT_REPLICAS_FOR_TEST, &all);
    let fewer = ConsistentHash::new(HashKey::Uri, DEFAULT_REPLICAS_FOR_TEST, &all[..4]);
    let headers = http::HeaderMap::new();
    let keys: Vec<String> = (0..10_000).map(|i| format!("/item/{i}")).collect();
    let mut moved = 0;
    let mut per_target = [0usize; 5];
    for key in &keys {
        let before = full.pick(&ctx(key, &headers)).unwrap();
        assert_eq!(full.pick(&ctx(key, &headers)), Some(before), "stable");
        per_target[before] += 1;
        let after = fewer.pick(&ctx(key, &headers)).unwrap();
        if before != 4 {
            assert_eq!(before, after, "a key not on the removed target moved");
        } else {
            moved += 1;
        }
    }
    // Only the removed target's keys move: about 1/5 of them.
    assert!((1_400..=2_600).contains(&moved), "moved {moved}");
    assert!(per_target.iter().all(|&c| (1_400..=2_600).contains(&c)), "{per_target:?}");
}

#[test]
fn consistent_hash_spreads_targets_that_share_a_host() {
    // The usual local setup: every target on 127.0.0.1, differing only in port.
    // Try many port sets; every target must get a fair share in each.
    let headers = http::HeaderMap::new();
    let keys: Vec<String> = (0..2_000).map(|i| format!("/item/{i}")).collect();
    for base in (20_000u16..60_000).step_by(997) {
        let all: Vec<TargetConfig> = (0..4)
            .map(|i| {
                let address = format!("127.0.0.1:{}", base + i * 13 + (base % 7));
                TargetConfig { address: address.parse().unwrap(), authority: address, weight: 1 }
            })
            .collect();
        let ring = ConsistentHash::new(HashKey::Uri, DEFAULT_REPLICAS_FOR_TEST, &all);
        let mut per_target = [0usize; 4];
        for key in &keys {
            per_target[ring.pick(&ctx(key, &headers)).unwrap()] += 1;
        }
        assert!(per_target.iter().all(|&c| (300..=700).contains(&c)), "ports from {base}: {per_target:?}");
    }
}

#[test]
fn consistent_hash_by_header_falls_back_to_client_ip() {
    let b = ConsistentHash::new(HashKey::Header(http::HeaderName::from_static("x-user")), 160, &targets(&[1, 1, 1]));
    let mut with = http::HeaderMap::new();
    with.insert("x-user", "alice".parse().unwrap());
    let without = http::HeaderMap::new();
    let by_header = b.pick(&ctx("/a", &with));
    assert_eq!(by_header, b.pick(&ctx("/b", &with)), "same header, same target");
    assert_eq!(b.pick(&ctx("/a", &without)), b.pick(&ctx("/b", &without)), "same ip, same target");
}

const DEFAULT_REPLICAS_FOR_TEST: u32 = crate::config::DEFAULT_REPLICAS;
