use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, PickContext};

/// Each target in turn, shared by all workers through one atomic counter.
pub struct RoundRobin {
    len: usize,
    next: AtomicUsize,
}

impl RoundRobin {
    pub fn new(len: usize) -> RoundRobin {
        RoundRobin { len, next: AtomicUsize::new(0) }
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, _: &PickContext<'_>) -> Option<usize> {
        (self.len > 0).then(|| self.next.fetch_add(1, Ordering::Relaxed) % self.len)
    }
}
