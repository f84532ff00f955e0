//! The hot-path half of global token buckets: per key, the tokens this
//! gateway leased from Redis and spends locally, with no I/O. The sync
//! thread (`sync.rs`) plans a batch from the table (`plan`), runs the lease
//! script, and hands the answers back (`apply`, or `restore` on failure).
//!
//! Tokens only move: Redis's bucket refills, a lease takes tokens out of it,
//! a request spends one here. So the fleet admits no more than the one
//! bucket would, except for (a) tokens held in leases while Redis's bucket
//! refills behind them (at most `cap` per gateway and key) and (b) requests
//! admitted on a key's first sight before its first lease (at most
//! `provisional`, charged to the bucket at the next sync). A lease that runs
//! dry between syncs while Redis's bucket had plenty left may borrow against
//! it (at most this gateway's share of what was left, charged at the next
//! sync): the fleet then spends at most what the bucket held, and a burst of
//! demand is not refused for want of a sync. See `docs/fleet.md`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::shared::buckets::TakeResult;

/// One key's lease on this gateway.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    /// Leased tokens not yet spent.
    tokens: f64,
    /// Tokens spent before the first lease came, to charge at the next sync.
    debt: f64,
    /// What may still be spent before the first lease comes.
    provisional: f64,
    /// Tokens asked for since the last plan, admitted or not: the demand.
    seen: f64,
    rate: f64,
    burst: u32,
    /// Whether a sync has answered for this key at least once.
    synced: bool,
    /// Tokens left in Redis's bucket at the last sync (for `remaining`).
    global_left: i64,
    /// Tokens borrowed against `global_left` since the last sync.
    borrowed: f64,
    last_used: Instant,
    /// A plan holds this key's debt and returned tokens (see `restore`).
    in_flight: bool,
}

/// How the table sizes leases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    pub(crate) fleet_size: u32,
    pub(crate) interval: Duration,
    /// A key unused this long gives its tokens back and is forgotten.
    pub(crate) idle: Duration,
}

impl Sizing {
    /// Most tokens one gateway holds for a key: its share of the burst, or
    /// one interval's refill if that is more (so that leases keep up with
    /// the rate).
    pub(crate) fn cap(&self, rate: f64, burst: u32) -> f64 {
        let share = (f64::from(burst) / f64::from(self.fleet_size.max(1))).ceil();
        let refill = (rate * self.interval.as_secs_f64()).ceil();
        share.max(refill).max(1.0)
    }

    /// What a new key may spend before its first lease: one interval's
    /// refill, at most its share of the burst, at least one request.
    pub(crate) fn provisional(&self, rate: f64, burst: u32) -> f64 {
        let share = (f64::from(burst) / f64::from(self.fleet_size.max(1))).ceil();
        let refill = (rate * self.interval.as_secs_f64()).ceil();
        share.min(refill).max(1.0)
    }
}

impl Lease {
    pub(crate) fn new(now: Instant, rate: f64, burst: u32, sizing: &Sizing) -> Self {
        Self {
            tokens: 0.0,
            debt: 0.0,
            provisional: sizing.provisional(rate, burst),
            seen: 0.0,
            rate,
            burst,
            synced: false,
            global_left: 0,
            borrowed: 0.0,
            last_used: now,
            in_flight: false,
        }
    }

    /// Spends `n` tokens from the lease (or, before the first lease, from the
    /// provisional allowance). Never waits.
    pub(crate) fn take(&mut self, now: Instant, n: u32, rate: f64, burst: u32, sizing: &Sizing) -> TakeResult {
        let want = f64::from(n);
        self.rate = rate;
        self.burst = burst;
        self.last_used = now;
        self.seen += want;
        let allowed = if self.tokens >= want {
            self.tokens -= want;
            true
        } else if !self.synced && self.provisional >= want {
            self.provisional -= want;
            self.debt += want;
            true
        } else if self.synced && self.borrowable(sizing) >= want {
            // The lease ran dry before the next sync, but the bucket had
            // plenty: spend this gateway's share of it now, pay at the sync.
            self.borrowed += want;
            self.debt += want;
            true
        } else {
            false
        };
        let remaining = (self.tokens + self.global_left.max(0) as f64).min(f64::from(u32::MAX)) as u32;
        if allowed {
            return TakeResult { allowed, remaining, retry_after_ms: 0 };
        }
        let retry_after_ms = if want > f64::from(burst) || !(rate.is_finite() && rate > 0.0) {
            u64::MAX
        } else {
            let missing = (want - self.tokens - self.global_left.max(0) as f64).max(0.0);
            let ms = (missing / rate * 1000.0).ceil() as u64;
            ms.max(sizing.interval.as_millis() as u64)
        };
        TakeResult { allowed, remaining, retry_after_ms }
    }
}

impl Lease {
    /// What may still be borrowed against Redis's bucket before the next
    /// sync: this gateway's share of what the bucket held at the last one.
    fn borrowable(&self, sizing: &Sizing) -> f64 {
        let share = (self.global_left.max(0) as f64 / f64::from(sizing.fleet_size.max(1))).floor();
        (share - self.borrowed).max(0.0)
    }
}

/// Longest an idle key whose bucket was empty is remembered (see `remembered`).
const EXHAUSTED_MEMORY: Duration = Duration::from_secs(3600);

impl Lease {
    /// How long an idle lease with nothing to give back is kept. A key seen
    /// for the first time may spend its provisional allowance; a client that
    /// spent its bucket (or its daily quota) and comes back after a pause
    /// would get that allowance on every return if its key were forgotten,
    /// so an empty bucket is remembered until it has a token again (a quota,
    /// which never refills, for an hour).
    fn remembered(&self, sizing: &Sizing) -> Duration {
        if !self.synced || self.global_left > 0 {
            return sizing.idle;
        }
        if self.rate > 0.0 {
            let refill = Duration::from_secs_f64(((1 - self.global_left) as f64 / self.rate).min(3600.0));
            return refill.clamp(sizing.idle, EXHAUSTED_MEMORY);
        }
        EXHAUSTED_MEMORY
    }
}

/// One key's part of a sync: what to ask the lease script.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ask {
    pub(crate) key: String,
    pub(crate) rate: f64,
    pub(crate) burst: u32,
    /// Tokens wanted.
    pub(crate) want: u64,
    /// Tokens spent before the first lease: taken out of the bucket
    /// without being granted.
    pub(crate) debt: f64,
    /// Leased tokens given back (the key went idle).
    pub(crate) returned: f64,
    /// The key is idle: forget it once the script has taken the tokens back.
    pub(crate) forget: bool,
}

/// What the script answered for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) granted: u64,
    /// Whole tokens left in Redis's bucket.
    pub(crate) left: i64,
}

/// The leases of one shard.
pub(crate) type Table = HashMap<String, Lease>;

/// Plans the sync of every key of `table`: marks them in flight and moves
/// their debt and idle tokens into the plan.
pub(crate) fn plan(table: &mut Table, now: Instant, sizing: &Sizing, out: &mut Vec<Ask>) {
    let mut gone = Vec::new();
    for (key, lease) in table.iter_mut() {
        if lease.in_flight {
            continue;
        }
        let idle_for = now.saturating_duration_since(lease.last_used);
        let idle = idle_for >= sizing.idle;
        if idle && lease.tokens < 1.0 && lease.debt == 0.0 {
            if idle_for >= lease.remembered(sizing) {
                gone.push(key.clone());
            }
            continue;
        }
        // Twice the last interval's demand: a lease that held only that
        // much would run dry before the next sync whenever demand grows.
        let target = if idle {
            0.0
        } else {
            (2.0 * lease.seen).max(1.0).min(sizing.cap(lease.rate, lease.burst))
        };
        let want = (target - lease.tokens).max(0.0).floor() as u64;
        let debt = std::mem::take(&mut lease.debt);
        let returned = if idle { lease.tokens.floor() } else { 0.0 };
        lease.tokens -= returned;
        lease.seen = 0.0;
        if want == 0 && debt == 0.0 && lease.synced && !idle {
            continue;
        }
        lease.in_flight = true;
        out.push(Ask { key: key.clone(), rate: lease.rate, burst: lease.burst, want, debt, returned, forget: idle });
    }
    for key in gone {
        table.remove(&key);
    }
}

/// Applies the script's answer for `ask`.
pub(crate) fn apply(table: &mut Table, ask: &Ask, answer: Answer) {
    if ask.forget {
        table.remove(&ask.key);
        return;
    }
    if let Some(lease) = table.get_mut(&ask.key) {
        lease.tokens += answer.granted as f64;
        lease.global_left = answer.left;
        lease.borrowed = 0.0;
        lease.synced = true;
        lease.in_flight = false;
    }
}

/// Puts back what a failed sync took out of `ask`'s lease.
pub(crate) fn restore(table: &mut Table, ask: &Ask) {
    if let Some(lease) = table.get_mut(&ask.key) {
        lease.in_flight = false;
        lease.debt += ask.debt;
        lease.tokens += ask.returned;
    }
}

#[cfg(test)]
mod tests;
