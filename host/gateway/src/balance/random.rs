use super::{Balancer, PickContext};

/// Uniformly random, from a per-thread generator.
pub struct Random {
    len: usize,
}

impl Random {
    pub fn new(len: usize) -> Random {
        Random { len }
    }
}

impl Balancer for Random {
    fn pick(&self, _: &PickContext<'_>) -> Option<usize> {
        (self.len > 0).then(|| fastrand::usize(..self.len))
    }
}
