//! The monotonic clock as plain nanoseconds. `std::time::Instant` reads the
//! same clock (`CLOCK_MONOTONIC`), but turning two of them into a duration
//! (checked `timespec` arithmetic, then `Duration::as_nanos`) costs more than
//! the read itself; durations of `u64` nanoseconds are one subtraction.

/// Nanoseconds since an arbitrary point (the clock's, fixed while the machine runs).
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists
    // on Linux, and on failure `ts` stays zeroed (durations then read 0).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Nanoseconds since `start` (a `now_ns()` reading), 0 if the clock seems to have gone back.
#[inline]
pub fn since_ns(start: u64) -> u64 {
    now_ns().saturating_sub(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_moves_forward_like_instant() {
        let (a, instant) = (now_ns(), std::time::Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (ours, std) = (since_ns(a), instant.elapsed().as_nanos() as u64);
        assert!(ours >= 2_000_000, "{ours}");
        assert!(ours.abs_diff(std) < 1_000_000, "{ours} vs {std}");
    }
}
