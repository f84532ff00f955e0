//! A call's deadline is kept on the CPU time the call used: a healthy plugin
//! on a machine whose every core is busy with other processes is slowed, not
//! failed; an endless loop is still stopped after its CPU time, and a call is
//! stopped at the wall-clock cap whatever CPU time it has left.

#![cfg(target_os = "linux")]

use std::num::NonZeroUsize;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmgate_plugin::metrics::{Outcome, Phase, PluginCalls};
use wasmgate_plugin::{Chain, OnError, PluginRuntime, RequestOutcome, RuntimeSettings};

use super::support::{ctx, load, request, settings};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The CPU time this thread has used (a call into a plugin runs on the
/// calling thread).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "no thread CPU clock");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Busy-looping processes, two per core, killed (by PID) when dropped.
struct Saturation(Vec<Child>);

impl Saturation {
    fn start() -> Saturation {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let mut busy = Saturation(Vec::new());
        for _ in 0..2 * cores {
            let child = Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start a busy loop: {e}"));
            busy.0.push(child);
        }
        busy
    }
}

impl Drop for Saturation {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The test settings with these deadline settings.
fn deadlines(deadline: Duration, tick: Duration, wall: Duration) -> RuntimeSettings {
    RuntimeSettings {
        call_deadline: deadline,
        epoch_tick: tick,
        max_call_wall: Some(wall),
        ..settings()
    }
}

fn runtime(settings: RuntimeSettings) -> PluginRuntime {
    PluginRuntime::new(settings).unwrap_or_else(|e| panic!("{e}"))
}

/// A chain of the one plugin `name` configured with `config`, and its
/// call counters.
fn chain(runtime: &PluginRuntime, name: &str, config: &str) -> (Chain, Arc<PluginCalls>) {
    let plugin = load(runtime, name)
        .configure(config, OnError::FailClosed)
        .unwrap_or_else(|e| panic!("{e}"));
    let calls = Arc::new(PluginCalls::new(1));
    (
        Chain::new(vec![plugin]).with_metrics(vec![calls.clone()]),
        calls,
    )
}

fn burn(rounds: u64) -> http::request::Parts {
    let mut req = request("GET", "/");
    req.headers
        .insert("x-burn", http::HeaderValue::from(rounds));
    req
}

/// The `x-burn` rounds that cost the burner `target` of CPU time, measured
/// on this thread's CPU clock (so a busy machine does not skew it).
fn rounds_for(chain: &Chain, target: Duration) -> u64 {
    let mut rounds: u64 = 100_000;
    for _ in 0..3 {
        let before = thread_cpu();
        for _ in 0..5 {
            chain.on_request(&mut burn(rounds), &mut ctx());
        }
        let per_call = (thread_cpu() - before) / 5;
        let scale = target.as_secs_f64() / per_call.as_secs_f64().max(1e-6);
        rounds = ((rounds as f64 * scale) as u64).clamp(1_000, 1 << 34);
    }
    rounds
}

#[test]
fn a_healthy_plugin_is_slowed_not_failed_on_a_saturated_machine() {
    // A tight deadline, so that waiting for a core often takes a call past
    // it on the wall clock; the wall-clock cap is out of the way.
    let deadline = ms(4);
    let runtime = runtime(RuntimeSettings {
        // Fresh instances' first calls, instantiation before them, too.
        max_uses: 10,
        ..deadlines(deadline, ms(1), Duration::from_secs(10))
    });
    let (chain, calls) = chain(&runtime, "cpu-burner", "{}");
    let rounds = rounds_for(&chain, ms(1));

    let busy = Saturation::start();
    let started = Instant::now();
    let (mut late, mut cpu) = (0, Duration::ZERO);
    const CALLS: usize = 300;
    for i in 0..CALLS {
        let (wall, before) = (Instant::now(), thread_cpu());
        let outcome = chain.on_request(&mut burn(rounds), &mut ctx());
        cpu += thread_cpu() - before;
        late += usize::from(wall.elapsed() > deadline);
        assert!(
            matches!(outcome, RequestOutcome::Continue { ran: 1 }),
            "call {i} failed: {outcome:?}"
        );
    }
    let took = started.elapsed();
    drop(busy);
    assert_eq!(calls.calls(Phase::Request, Outcome::Deadline), 0);
    assert_eq!(
        calls.calls(Phase::Request, Outcome::Continue),
        CALLS as u64 + 15
    );
    eprintln!(
        "{CALLS} calls of {:?} CPU each with every core busy: {late} took longer than the \
         {deadline:?} deadline on the wall clock, none failed ({took:?} in all)",
        cpu / CALLS as u32
    );
}

#[test]
fn an_endless_loop_is_stopped_after_its_cpu_time_on_a_saturated_machine() {
    let (deadline, tick) = (ms(20), ms(5));
    let runtime = runtime(deadlines(deadline, tick, Duration::from_secs(10)));
    let (chain, calls) = chain(&runtime, "faulty", r#"{"mode": "loop"}"#);
    let _busy = Saturation::start();
    let (wall, before) = (Instant::now(), thread_cpu());
    let outcome = chain.on_request(&mut request("GET", "/"), &mut ctx());
    let (wall, cpu) = (wall.elapsed(), thread_cpu() - before);
    match outcome {
        RequestOutcome::Respond { response, .. } => assert_eq!(response.status(), 500),
        other => panic!("expected a 500, got {other:?}"),
    }
    assert_eq!(calls.calls(Phase::Request, Outcome::Deadline), 1);
    eprintln!("a loop with every core busy: stopped after {cpu:?} of CPU time, {wall:?} on the wall clock");
    // Documented: between deadline - tick and deadline + tick of CPU time;
    // a little more for the host's side of the call.
    assert!(
        cpu >= deadline - tick && cpu <= deadline + tick + ms(5),
        "stopped after {cpu:?} of CPU time ({wall:?} on the wall clock)"
    );
}

#[test]
fn a_call_is_stopped_at_the_wall_clock_cap_whatever_cpu_time_it_has_left() {
    let runtime = runtime(deadlines(Duration::from_secs(10), ms(5), ms(50)));
    let (chain, calls) = chain(&runtime, "faulty", r#"{"mode": "loop"}"#);
    let started = Instant::now();
    let outcome = chain.on_request(&mut request("GET", "/"), &mut ctx());
    let took = started.elapsed();
    assert!(
        matches!(outcome, RequestOutcome::Respond { .. }),
        "{outcome:?}"
    );
    assert_eq!(calls.calls(Phase::Request, Outcome::Deadline), 1);
    // The cap, kept to one tick late (more on a busy machine).
    assert!(
        took >= ms(45) && took < Duration::from_secs(2),
        "stopped after {took:?}"
    );
}
