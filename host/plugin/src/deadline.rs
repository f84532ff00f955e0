//! A call's deadline, judged on the CPU time the call used rather than on
//! the wall clock, so that a healthy plugin on a saturated machine is slowed,
//! not failed; a hard wall-clock cap still stops a call that idles forever.
//!
//! The epoch ticker drives it: a call starts with a deadline one tick away,
//! and each time its deadline passes, the store's epoch callback
//! ([`CallClock::on_deadline`]) reads the thread's CPU time and either extends
//! the deadline by the ticks the call may still use or stops it. The CPU clock
//! is first read at that first tick, not when the call starts: reading it is a
//! system call, dear next to a warm call, and most calls end before any tick
//! (see docs/benchmark.md).

use std::time::Duration;

use wasmtime::UpdateDeadline;

use crate::settings::RuntimeSettings;

/// The numbers a call is held to, from the runtime's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// One epoch tick.
    tick: Duration,
    /// CPU time a call may use after its first tick: the deadline less the
    /// one tick before it, which is not measured (and is charged in full).
    cpu_after_first_tick: Duration,
    /// Ticks of wall-clock time after which a call is stopped whatever it used.
    wall_ticks: u64,
}

impl Budget {
    pub(crate) fn new(settings: &RuntimeSettings) -> Self {
        let tick = settings.effective_epoch_tick();
        let wall = settings.wall_cap();
        let wall_ticks = u64::try_from(wall.as_nanos().div_ceil(tick.as_nanos().max(1)))
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            tick,
            cpu_after_first_tick: settings.call_deadline.saturating_sub(tick),
            wall_ticks,
        }
    }
}

/// The deadline state of the call an instance is running: reset when the
/// call starts ([`CallClock::start`]), read and updated by the epoch callback.
#[derive(Debug, Default)]
pub(crate) struct CallClock {
    /// Ticks granted to the call so far: a lower bound of its wall-clock
    /// time in ticks (the callback runs once the granted ticks have passed).
    ticks: u64,
    /// The thread's CPU time at the call's first tick.
    cpu_at_first_tick: Option<Duration>,
}

impl CallClock {
    /// A call starts: its deadline comes at the next tick. Returns the ticks
    /// to pass to `Store::set_epoch_deadline`.
    pub(crate) fn start(&mut self) -> u64 {
        *self = Self {
            ticks: 1,
            cpu_at_first_tick: None,
        };
        1
    }

    /// The call's deadline has come; `cpu_now` is the thread's CPU time
    /// (`None` where it cannot be read: then wall-clock ticks count instead).
    /// Stops the call once it used its CPU time or its wall-clock cap; else
    /// extends it by the ticks the rest of its CPU time would take at best.
    pub(crate) fn on_deadline(
        &mut self,
        budget: &Budget,
        cpu_now: Option<Duration>,
    ) -> UpdateDeadline {
        if self.ticks >= budget.wall_ticks {
            return UpdateDeadline::Interrupt;
        }
        let cpu_now = cpu_now.unwrap_or_else(|| budget.tick.saturating_mul(clamp_u32(self.ticks)));
        let since = *self.cpu_at_first_tick.get_or_insert(cpu_now);
        let used = cpu_now.saturating_sub(since);
        let Some(left) = budget
            .cpu_after_first_tick
            .checked_sub(used)
            .filter(|left| !left.is_zero())
        else {
            return UpdateDeadline::Interrupt;
        };
        let ticks = u64::try_from(left.as_nanos().div_ceil(budget.tick.as_nanos().max(1)))
            .unwrap_or(u64::MAX)
            .clamp(1, budget.wall_ticks - self.ticks);
        self.ticks += ticks;
        UpdateDeadline::Continue(ticks)
    }
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The CPU time the calling thread has used, if the platform tells.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec for the call to fill.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        if rc != 0 {
            return None;
        }
        let secs = u64::try_from(now.tv_sec).ok()?;
        let nanos = u32::try_from(now.tv_nsec).ok()?;
        Some(Duration::new(secs, nanos))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests;
