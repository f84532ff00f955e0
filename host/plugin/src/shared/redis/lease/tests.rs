use super::*;

fn sizing() -> Sizing {
    Sizing { fleet_size: 2, interval: Duration::from_millis(50), idle: Duration::from_secs(2) }
}

#[test]
fn leases_are_a_share_of_the_burst_or_one_interval_of_refill() {
    let s = sizing();
    assert_eq!(s.cap(100.0, 10), 5.0);
    assert_eq!(s.cap(1000.0, 10), 50.0);
    assert_eq!(s.cap(0.0, 100_000), 50_000.0);
    assert_eq!(s.provisional(100.0, 10), 5.0);
    assert_eq!(s.provisional(0.0, 100_000), 1.0, "a quota is not spent before its first lease");
}

#[test]
fn a_new_key_spends_its_provisional_allowance_as_debt_then_its_lease() {
    let s = sizing();
    let t0 = Instant::now();
    let mut table = Table::new();
    table.insert("k".into(), Lease::new(t0, 100.0, 10, &s));
    let lease = table.get_mut("k").unwrap();
    for _ in 0..5 {
        assert!(lease.take(t0, 1, 100.0, 10, &s).allowed);
    }
    let refused = lease.take(t0, 1, 100.0, 10, &s);
    assert!(!refused.allowed);
    assert!(refused.retry_after_ms >= 50);

    let mut asks = Vec::new();
    plan(&mut table, t0, &s, &mut asks);
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].debt, 5.0, "provisional spending is charged");
    assert_eq!(asks[0].want, 5, "demand above the cap asks for the cap");
    apply(&mut table, &asks[0], Answer { granted: 3, left: 0 });
    let lease = table.get_mut("k").unwrap();
    assert!((0..3).all(|_| lease.take(t0, 1, 100.0, 10, &s).allowed));
    assert!(!lease.take(t0, 1, 100.0, 10, &s).allowed, "no provisional spending once synced");
}

#[test]
fn a_failed_sync_puts_debt_and_returned_tokens_back() {
    let s = sizing();
    let t0 = Instant::now();
    let mut table = Table::new();
    table.insert("k".into(), Lease::new(t0, 100.0, 10, &s));
    table.get_mut("k").unwrap().take(t0, 2, 100.0, 10, &s);
    let mut asks = Vec::new();
    plan(&mut table, t0, &s, &mut asks);
    let again = { let mut more = Vec::new(); plan(&mut table, t0, &s, &mut more); more };
    assert!(again.is_empty(), "a key in flight is not planned twice");
    restore(&mut table, &asks[0]);
    asks.clear();
    plan(&mut table, t0, &s, &mut asks);
    assert_eq!(asks[0].debt, 2.0);
}

#[test]
fn an_idle_key_gives_its_tokens_back_and_is_forgotten() {
    let s = sizing();
    let t0 = Instant::now();
    let mut table = Table::new();
    table.insert("k".into(), Lease::new(t0, 100.0, 10, &s));
    let mut asks = Vec::new();
    plan(&mut table, t0, &s, &mut asks);
    apply(&mut table, &asks[0], Answer { granted: 4, left: 6 });
    asks.clear();
    plan(&mut table, t0 + Duration::from_secs(3), &s, &mut asks);
    assert_eq!((asks[0].want, asks[0].returned, asks[0].forget), (0, 4.0, true));
    apply(&mut table, &asks[0], Answer { granted: 0, left: 10 });
    assert!(table.is_empty());
}

#[test]
fn a_spent_quota_is_remembered_so_a_returning_client_gets_no_provisional_request() {
    let s = sizing();
    let t0 = Instant::now();
    let mut table = Table::new();
    table.insert("quota".into(), Lease::new(t0, 0.0, 100, &s));
    table.insert("bucket".into(), Lease::new(t0, 100.0, 10, &s));
    let mut asks = Vec::new();
    plan(&mut table, t0, &s, &mut asks);
    for ask in asks.clone() {
        apply(&mut table, &ask, Answer { granted: 0, left: 0 });
    }
    // Ten minutes of silence: the spent quota is still known, the bucket
    // (refilled long ago) is forgotten.
    asks.clear();
    plan(&mut table, t0 + Duration::from_secs(600), &s, &mut asks);
    assert!(asks.is_empty());
    assert!(table.contains_key("quota") && !table.contains_key("bucket"));
    let quota = table.get_mut("quota").unwrap();
    assert!(!quota.take(t0 + Duration::from_secs(600), 1, 0.0, 100, &s).allowed);
}

#[test]
fn a_lease_holds_twice_the_last_intervals_demand_up_to_the_cap() {
    let s = sizing();
    let t0 = Instant::now();
    let mut table = Table::new();
    table.insert("k".into(), Lease::new(t0, 1e9, 1_000_000_000, &s));
    let mut asks = Vec::new();
    plan(&mut table, t0, &s, &mut asks);
    apply(&mut table, &asks[0], Answer { granted: 0, left: 0 });
    let lease = table.get_mut("k").unwrap();
    for _ in 0..300 {
        lease.take(t0, 1, 1e9, 1_000_000_000, &s);
    }
    asks.clear();
    plan(&mut table, t0, &s, &mut asks);
    assert_eq!(asks[0].want, 600);
}

#[test]
fn a_dry_lease_borrows_its_share_of_what_the_bucket_held_and_pays_at_the_next_sync() {
    let s = sizing();
    let t0 = Instant::now();
    let mut table = Table::new();
    table.insert("k".into(), Lease::new(t0, 1000.0, 1000, &s));
    let mut asks = Vec::new();
    plan(&mut table, t0, &s, &mut asks);
    // Redis granted 2 tokens and has 100 left.
    apply(&mut table, &asks[0], Answer { granted: 2, left: 100 });
    let share = 100 / u64::from(s.fleet_size);
    let lease = table.get_mut("k").unwrap();
    let admitted = (0..200).filter(|_| lease.take(t0, 1, 1000.0, 1000, &s).allowed).count() as u64;
    assert_eq!(admitted, 2 + share, "the lease, then this gateway's share of the bucket");
    asks.clear();
    plan(&mut table, t0, &s, &mut asks);
    assert_eq!(asks[0].debt, share as f64, "what was borrowed is charged at the sync");
    apply(&mut table, &asks[0], Answer { granted: 0, left: 0 });
    let lease = table.get_mut("k").unwrap();
    assert!(!lease.take(t0, 1, 1000.0, 1000, &s).allowed, "an empty bucket lends nothing");
}
