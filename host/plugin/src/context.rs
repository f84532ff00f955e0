//! What the gateway tells plugins about the request being handled.

use std::net::IpAddr;
use std::sync::Arc;

use crate::convert::Edit;
use crate::metrics::{Outcome, Phase};

/// Most entries a plugin can put in the scratch map of one request.
const MAX_SCRATCH_ENTRIES: usize = 64;
/// Most bytes (key plus value) of one scratch entry.
const MAX_SCRATCH_ENTRY: usize = 8 << 10;

/// The request being handled, as plugins see it through the `context`
/// capability. The gateway fills it in before the request phase and passes
/// the same value to the response phase.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Address of the client (the TCP peer).
    pub client_ip: Option<IpAddr>,
    /// Name of the matched route.
    pub route: Arc<str>,
    /// Name of the listener the request came in on.
    pub listener: Arc<str>,
    /// Upstream the route sends to, when it has one.
    pub upstream: Option<Arc<str>>,
    /// Per-request map shared along the chain and with the gateway (an auth
    /// plugin leaves the consumer id here for later plugins).
    pub scratch: Scratch,
    /// What the plugin chain keeps between the phases of this request.
    /// Start it empty (`Default`).
    pub chain: ChainState,
    /// When set, the chain appends one record per plugin call (for a traced
    /// request); `None` (the default) records nothing.
    pub calls: Option<Vec<CallRecord>>,
}

/// One call into a plugin of the chain, as the chain timed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRecord {
    /// The plugin's position in the chain.
    pub plugin: usize,
    pub phase: Phase,
    /// `wasmgate_metrics::clock::now_ns` readings around the call.
    pub started_ns: u64,
    pub ended_ns: u64,
    pub outcome: Outcome,
}

impl RequestContext {
    /// Takes the buffer the chain packs heads into, with the context lines
    /// every plugin call of this request carries (built on first use). Give
    /// it back with `put_head_buffer` to reuse its allocation.
    pub(crate) fn take_head_buffer(&mut self) -> HeadBuffer {
        if self.chain.context_lines.is_empty() {
            self.chain.context_lines = crate::convert::context_lines(self);
        }
        HeadBuffer {
            head: std::mem::take(&mut self.chain.head),
            context: std::mem::take(&mut self.chain.context_lines),
        }
    }

    pub(crate) fn put_head_buffer(&mut self, buffer: HeadBuffer) {
        self.chain.head = buffer.head;
        self.chain.context_lines = buffer.context;
    }
}

/// A packed WIT head and the context lines that go into it, held by the
/// chain while it calls plugins.
pub(crate) struct HeadBuffer {
    pub(crate) head: Vec<u8>,
    pub(crate) context: Vec<u8>,
}

/// What the chain keeps between the phases of one request: response edits
/// handed over in the request phase (by chain position), the context lines
/// of the WIT heads and the buffer they are packed in. Opaque: the chain
/// fills and drains it.
#[derive(Debug, Clone, Default)]
pub struct ChainState {
    pub(crate) response_edits: Vec<(usize, Vec<Edit>)>,
    /// Positions of plugins skipped for this request (fail-open after their
    /// request phase failed): their response phase is skipped too.
    pub(crate) skipped: Vec<usize>,
    pub(crate) context_lines: Vec<u8>,
    pub(crate) head: Vec<u8>,
}

impl RequestContext {
    /// A context for `route` on `listener`; the other fields start empty.
    pub fn new(route: impl Into<Arc<str>>, listener: impl Into<Arc<str>>) -> Self {
        Self {
            route: route.into(),
            listener: listener.into(),
            ..Self::default()
        }
    }
}

/// A small string map, kept as a vector: a request carries a handful of
/// entries at most, and most carry none (no allocation then).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scratch {
    entries: Vec<(String, String)>,
}

impl Scratch {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`. Returns false (and stores nothing) when the
    /// entry is too big or the map is full.
    pub fn set(&mut self, key: String, value: String) -> bool {
        if key.len() + value.len() > MAX_SCRATCH_ENTRY {
            return false;
        }
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
            return true;
        }
        if self.entries.len() >= MAX_SCRATCH_ENTRIES {
            return false;
        }
        self.entries.push((key, value));
        true
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.swap_remove(at).1)
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
