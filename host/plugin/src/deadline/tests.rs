use std::time::Duration;

use wasmtime::UpdateDeadline;

use super::{thread_cpu_time, Budget, CallClock};
use crate::settings::RuntimeSettings;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The defaults: 20 ms of CPU, a 5 ms tick, a 200 ms wall-clock cap.
fn budget() -> Budget {
    Budget::new(&RuntimeSettings::default())
}

fn ticks(update: UpdateDeadline) -> Option<u64> {
    match update {
        UpdateDeadline::Continue(ticks) => Some(ticks),
        _ => None,
    }
}

#[test]
fn a_call_that_uses_the_cpu_is_stopped_after_its_budget() {
    let budget = budget();
    let mut clock = CallClock::default();
    assert_eq!(clock.start(), 1, "the first look comes at the next tick");
    // First tick: the CPU clock is read; 15 ms are left, 3 ticks at best.
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(100)))), Some(3));
    // It ran all the time: 15 ms used.
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(115)))), None);
}

#[test]
fn a_call_that_waits_for_the_cpu_is_given_more_ticks() {
    let budget = budget();
    let mut clock = CallClock::default();
    clock.start();
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(100)))), Some(3));
    // A busy machine gave it 2 ms in those 15: 13 ms left, 3 ticks.
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(102)))), Some(3));
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(112)))), Some(1));
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(115)))), None);
}

#[test]
fn the_wall_clock_cap_stops_a_call_that_uses_no_cpu() {
    let budget = budget();
    let mut clock = CallClock::default();
    let mut wall = clock.start();
    loop {
        match clock.on_deadline(&budget, Some(ms(100))) {
            UpdateDeadline::Continue(more) => wall += more,
            _ => break,
        }
        assert!(wall <= 40, "past the cap: {wall} ticks");
    }
    assert_eq!(wall, 40, "200 ms at 5 ms a tick");
}

#[test]
fn a_new_call_starts_afresh() {
    let budget = budget();
    let mut clock = CallClock::default();
    clock.start();
    clock.on_deadline(&budget, Some(ms(100)));
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(114)))), Some(1));
    clock.start();
    assert_eq!(ticks(clock.on_deadline(&budget, Some(ms(200)))), Some(3));
}

#[test]
fn without_a_cpu_clock_the_wall_clock_counts() {
    let budget = budget();
    let mut clock = CallClock::default();
    let mut wall = clock.start();
    while let UpdateDeadline::Continue(more) = clock.on_deadline(&budget, None) {
        wall += more;
    }
    assert_eq!(wall, 4, "20 ms at 5 ms a tick, as a wall-clock deadline");
}

#[test]
fn a_deadline_of_one_tick_stops_at_the_first_tick() {
    let settings = RuntimeSettings {
        call_deadline: ms(5),
        ..RuntimeSettings::default()
    };
    let mut clock = CallClock::default();
    clock.start();
    assert_eq!(
        ticks(clock.on_deadline(&Budget::new(&settings), Some(ms(1)))),
        None
    );
}

#[cfg(unix)]
#[test]
fn the_thread_cpu_clock_moves_with_work_only() {
    let cpu = || thread_cpu_time().unwrap_or_else(|| panic!("no thread CPU clock"));
    let before = cpu();
    std::thread::sleep(ms(20));
    assert!(cpu() - before < ms(10), "sleeping is not CPU time");
    let started = std::time::Instant::now();
    let mut n = 0u64;
    while cpu() < before + ms(2) {
        n = std::hint::black_box(n + 1);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the CPU clock stands still"
        );
    }
}
