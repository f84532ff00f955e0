use std::time::Duration;

use super::*;

fn config() -> BreakerConfig {
    BreakerConfig {
        error_percent: 50,
        request_volume: 4,
        window: Duration::from_secs(10),
        sleep_window: Duration::from_secs(5),
        half_open_requests: 2,
    }
}

#[test]
fn opens_only_past_volume_and_error_rate() {
    let b = Breaker::new(config());
    assert_eq!(b.record_at(true, 0), None, "1 request is below the volume");
    assert_eq!(b.record_at(false, 10), None);
    assert_eq!(b.record_at(false, 20), None);
    assert_eq!(b.record_at(true, 30), Some(Transition::Opened { requests: 4, failures: 2 }));
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.admit_at(4_000), (false, None), "still sleeping");
}

#[test]
fn old_failures_leave_the_window() {
    let b = Breaker::new(config());
    for t in 0..3 {
        b.record_at(true, t);
    }
    // 11 s later the three failures are out of the 10 s window.
    assert_eq!(b.record_at(true, 11_000), None);
    assert_eq!(b.counts_at(11_000), (1, 1));
}

#[test]
fn half_open_lets_probes_through_and_closes_after_enough_successes() {
    let b = Breaker::new(config());
    for t in 0..4 {
        b.record_at(true, t);
    }
    assert_eq!(b.admit_at(5_010), (true, Some(Transition::HalfOpened)));
    assert_eq!(b.admit_at(5_011), (true, None), "second probe");
    assert_eq!(b.admit_at(5_012), (false, None), "only two at once");
    assert_eq!(b.record_at(false, 5_020), None);
    assert_eq!(b.admit_at(5_021), (true, None), "a passed probe frees a slot");
    assert_eq!(b.record_at(false, 5_030), Some(Transition::Closed));
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.counts_at(5_030), (0, 0), "closing starts a fresh window");
}

#[test]
fn a_failed_probe_reopens() {
    let b = Breaker::new(config());
    for t in 0..4 {
        b.record_at(true, t);
    }
    assert!(b.admit_at(6_000).0);
    assert_eq!(b.record_at(true, 6_001), Some(Transition::Reopened));
    assert_eq!(b.admit_at(6_002), (false, None));
    assert_eq!(b.admit_at(11_002), (true, Some(Transition::HalfOpened)));
}

#[test]
fn probes_that_never_report_do_not_wedge_it_half_open() {
    let b = Breaker::new(BreakerConfig { half_open_requests: 1, ..config() });
    for t in 0..4 {
        b.record_at(true, t);
    }
    assert!(b.admit_at(5_010).0);
    assert!(!b.admit_at(6_000).0, "the one probe is out");
    assert!(b.admit_at(10_010).0, "after another sleep window a new probe goes");
    assert!(!b.admit_at(10_011).0);
}
