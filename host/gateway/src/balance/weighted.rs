use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{Balancer, PickContext};

/// Smooth weighted round robin, nginx's algorithm: every pick adds each target's
/// weight to its current value, takes the largest, and subtracts the total from it.
///
/// The sequence this produces repeats every `sum(weights) / gcd(weights)` picks, so
/// for schedules up to `MAX_SCHEDULE` long it is computed once and replayed with an
/// atomic cursor (lock-free, and exactly nginx's order). Longer schedules, which only
/// odd weight sets reach, run the algorithm live under a mutex.
pub struct SmoothWeighted {
    inner: Inner,
}

enum Inner {
    Empty,
    Schedule { order: Vec<u32>, cursor: AtomicUsize },
    Live { weights: Vec<i64>, total: i64, current: Mutex<Vec<i64>> },
}

const MAX_SCHEDULE: u64 = 1 << 16;

impl SmoothWeighted {
    pub fn new(weights: &[u32]) -> SmoothWeighted {
        if weights.is_empty() {
            return SmoothWeighted { inner: Inner::Empty };
        }
        let divisor = weights.iter().fold(0u64, |g, &w| gcd(g, u64::from(w))).max(1);
        let weights: Vec<i64> = weights.iter().map(|&w| (u64::from(w) / divisor) as i64).collect();
        let total: i64 = weights.iter().sum();
        let inner = if (total as u64) <= MAX_SCHEDULE {
            let mut current = vec![0; weights.len()];
            let order = (0..total).map(|_| step(&weights, total, &mut current) as u32).collect();
            Inner::Schedule { order, cursor: AtomicUsize::new(0) }
        } else {
            Inner::Live { current: Mutex::new(vec![0; weights.len()]), weights, total }
        };
        SmoothWeighted { inner }
    }
}

/// One round of the algorithm; returns the chosen index.
fn step(weights: &[i64], total: i64, current: &mut [i64]) -> usize {
    let mut best = 0;
    for (i, w) in weights.iter().enumerate() {
        current[i] += w;
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    best
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Balancer for SmoothWeighted {
    fn pick(&self, _: &PickContext<'_>) -> Option<usize> {
        match &self.inner {
            Inner::Empty => None,
            Inner::Schedule { order, cursor } => {
                let at = cursor.fetch_add(1, Ordering::Relaxed) % order.len();
                Some(order[at] as usize)
            }
            Inner::Live { weights, total, current } => {
                let mut current = current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                Some(step(weights, *total, &mut current))
            }
        }
    }
}
