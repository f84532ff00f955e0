//! Call times of one phase, and their median and 99th percentile.

use std::time::Duration;

/// Nanoseconds of each timed call, in the order they were made.
#[derive(Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn with_capacity(n: usize) -> Samples {
        Samples(Vec::with_capacity(n))
    }

    pub fn push(&mut self, took: Duration) {
        self.0.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (median, p99) in µs, by nearest rank; zeros when empty.
    pub fn median_p99(&self) -> (f64, f64) {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = |p: usize| match sorted.len() {
            0 => 0.0,
            n => sorted[(n * p).div_ceil(100).clamp(1, n) - 1] as f64 / 1e3,
        };
        (rank(50), rank(99))
    }
}
