use crate::config::{HashKey, TargetConfig};

use super::{hash_input, Balancer, PickContext};

/// A crc32 hash ring with virtual nodes. Each target owns `replicas × weight`
/// points, placed by hashing its address, so the ring of a target set minus one
/// target is the same ring with that target's points gone: only the keys that
/// mapped to it move (about 1/N of them).
pub struct ConsistentHash {
    key: HashKey,
    /// (point on the ring, target index), sorted by point.
    ring: Vec<(u32, u32)>,
}

impl ConsistentHash {
    pub fn new(key: HashKey, replicas: u32, targets: &[TargetConfig]) -> ConsistentHash {
        let mut ring = Vec::new();
        for (index, target) in targets.iter().enumerate() {
            let address = target.address.to_string();
            for replica in 0..replicas.saturating_mul(target.weight) {
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(address.as_bytes());
                hasher.update(b"#");
                hasher.update(replica.to_string().as_bytes());
                ring.push((spread(hasher.finalize()), index as u32));
            }
        }
        ring.sort_unstable();
        ring.dedup_by_key(|point| point.0);
        ConsistentHash { key, ring }
    }

    /// The target owning the first point at or after `hash`, wrapping around.
    pub fn lookup(&self, hash: u32) -> Option<usize> {
        if self.ring.is_empty() {
            return None;
        }
        let at = self.ring.partition_point(|point| point.0 < hash);
        let (_, index) = self.ring[if at == self.ring.len() { 0 } else { at }];
        Some(index as usize)
    }
}

impl Balancer for ConsistentHash {
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize> {
        let mut ip_buf = [0u8; 16];
        self.lookup(spread(crc32fast::hash(hash_input(&self.key, ctx, &mut ip_buf))))
    }
}

/// crc32 is linear: addresses that differ only in their port (all targets on
/// one host) get ring points that are XOR-shifted copies of each other, and
/// keys like `/item/1`, `/item/2` land in the same few arcs, so one target can
/// end up with a tenth of the keys instead of a quarter. A bijective
/// avalanche step (murmur3's finaliser) after the crc spreads both the points
/// and the keys evenly without changing which target owns a given key twice.
fn spread(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}
