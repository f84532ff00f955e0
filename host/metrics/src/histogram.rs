//! Histograms over fixed buckets, kept in `Cells`: one cell per bucket (not
//! cumulative: an observation adds 1 to exactly one cell) and one for the sum
//! of the observed values in nanoseconds. The count is the buckets' total.
//!
//! Two bucket sets, 16 buckets each with `+Inf`:
//! - `SLOW`, for requests, upstream responses and connects: 100 µs to 5 s.
//! - `FAST`, for the gateway's own time and plugin calls: 1 µs to 50 ms
//!   (a warm plugin call takes about a microsecond; its deadline is 20 ms by
//!   default, and a call stopped there lands in the 25 ms bucket).

use crate::shard::{Cells, Row};

/// Bucket upper bounds in nanoseconds, ascending; `+Inf` follows implicitly.
#[derive(Debug)]
pub struct Buckets {
    bounds: &'static [u64],
}

/// 1 µs … 50 ms.
pub static FAST: Buckets = Buckets {
    bounds: &[
        1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
        10_000_000, 25_000_000, 50_000_000,
    ],
};

/// 100 µs … 5 s.
pub static SLOW: Buckets = Buckets {
    bounds: &[
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
        2_500_000_000,
        5_000_000_000,
    ],
};

impl Buckets {
    /// The finite upper bounds, in seconds.
    pub fn bounds_seconds(&self) -> impl Iterator<Item = f64> + '_ {
        self.bounds.iter().map(|&ns| ns as f64 / 1e9)
    }

    /// Buckets including `+Inf`.
    pub const fn len(&self) -> usize {
        self.bounds.len() + 1
    }

    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The bucket a value falls in: the first whose bound is at least `ns`.
    #[inline]
    fn bucket(&self, ns: u64) -> usize {
        self.bounds.iter().take_while(|&&bound| bound < ns).count()
    }
}

/// Where a histogram lives in a block of cells.
#[derive(Debug, Clone, Copy)]
pub struct Histogram {
    first: usize,
    buckets: &'static Buckets,
}

/// A histogram summed over the rows, ready to expose.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations in this bucket only), `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    /// Sum of the observations, in seconds.
    pub sum: f64,
}

impl Histogram {
    /// A histogram over `buckets` in cells `first..first + Histogram::cells(buckets)`.
    pub const fn at(first: usize, buckets: &'static Buckets) -> Histogram {
        Histogram { first, buckets }
    }

    /// Cells one histogram over `buckets` takes.
    pub const fn cells(buckets: &Buckets) -> usize {
        buckets.len() + 1
    }

    /// The first cell after this histogram.
    pub const fn end(&self) -> usize {
        self.first + Histogram::cells(self.buckets)
    }

    /// Records one observation of `ns` nanoseconds in the calling thread's row.
    #[inline]
    pub fn observe(&self, row: &Row<'_>, ns: u64) {
        row.add(self.first + self.buckets.bucket(ns), 1);
        row.add(self.first + self.buckets.len(), ns);
    }

    /// Records a duration.
    #[inline]
    pub fn observe_duration(&self, cells: &Cells, took: std::time::Duration) {
        self.observe(&cells.row(), u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn snapshot(&self, cells: &Cells) -> HistogramSnapshot {
        let bounds = self.buckets.bounds_seconds().chain(std::iter::once(f64::INFINITY));
        let buckets: Vec<(f64, u64)> = bounds.enumerate().map(|(i, le)| (le, cells.sum(self.first + i))).collect();
        let count = buckets.iter().fold(0u64, |sum, (_, n)| sum.wrapping_add(*n));
        let sum = cells.sum(self.first + self.buckets.len()) as f64 / 1e9;
        HistogramSnapshot { buckets, count, sum }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_sixteen_buckets() {
        assert_eq!(FAST.len(), 16);
        assert_eq!(SLOW.len(), 16);
        for b in [&FAST, &SLOW] {
            assert!(b.bounds.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn a_value_on_a_bound_counts_in_that_bucket() {
        assert_eq!(SLOW.bucket(0), 0);
        assert_eq!(SLOW.bucket(100_000), 0);
        assert_eq!(SLOW.bucket(100_001), 1);
        assert_eq!(SLOW.bucket(5_000_000_000), 14);
        assert_eq!(SLOW.bucket(u64::MAX), 15);
    }

    #[test]
    fn snapshot_counts_and_sums() {
        let h = Histogram::at(1, &FAST);
        let cells = Cells::new(h.end(), 1);
        h.observe(&cells.row(), 800);
        h.observe(&cells.row(), 3_000);
        h.observe_duration(&cells, std::time::Duration::from_secs(1));
        let s = h.snapshot(&cells);
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets.len(), 16);
        assert_eq!(s.buckets[0], (1e-6, 1));
        assert_eq!(s.buckets[2], (5e-6, 1));
        assert_eq!(s.buckets[15], (f64::INFINITY, 1));
        assert!((s.sum - 1.0000038).abs() < 1e-12);
        assert_eq!(cells.sum(0), 0);
    }
}
