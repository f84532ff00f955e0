//! What a route's chain records about each of its plugins: per phase, how
//! long each call took (a histogram over `wasmgate_metrics::FAST`, 1 µs to
//! 50 ms) and how it ended. The gateway makes one `PluginCalls` per (route,
//! plugin) when it builds a state, hands them to the route's `Chain` with
//! [`Chain::with_metrics`](crate::Chain::with_metrics), and reads them when
//! `/metrics` is scraped. A chain without them records nothing.

use wasmgate_metrics::{Cells, Histogram, HistogramSnapshot, FAST};

use crate::error::Failure;

/// The plugin entry point a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Response,
    ResponseBody,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Request, Phase::Response, Phase::ResponseBody];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Response => "response",
            Phase::ResponseBody => "response_body",
        }
    }

    /// The WIT function's name, for log lines.
    pub(crate) fn export(self) -> &'static str {
        match self {
            Phase::Request => "on-request",
            Phase::Response => "on-response",
            Phase::ResponseBody => "on-response-body",
        }
    }
}

/// How a call into a plugin ended (or why it was not made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The plugin let the request (or response) go on, changed or not.
    Continue,
    /// The plugin answered the request itself, or replaced the response.
    Answered,
    /// The guest trapped (a panic, `unreachable`, a host function that failed).
    Trap,
    /// The call ran past its deadline.
    Deadline,
    /// The guest hit its memory cap.
    Memory,
    /// The plugin returned something the host refuses (a bad header, a body
    /// over the limit, a body too large to hand it).
    InvalidOutput,
    /// No instance could be started for the call (`init` failed or no slot).
    StartFailed,
    /// Not called: the plugin failed earlier in this request and fails open,
    /// so the rest of the request skips it.
    FailOpenSkipped,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Continue,
        Outcome::Answered,
        Outcome::Trap,
        Outcome::Deadline,
        Outcome::Memory,
        Outcome::InvalidOutput,
        Outcome::StartFailed,
        Outcome::FailOpenSkipped,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Continue => "continue",
            Outcome::Answered => "answered",
            Outcome::Trap => "trap",
            Outcome::Deadline => "deadline",
            Outcome::Memory => "memory",
            Outcome::InvalidOutput => "invalid_output",
            Outcome::StartFailed => "start_failed",
            Outcome::FailOpenSkipped => "fail_open_skipped",
        }
    }

    pub(crate) fn of(failure: &Failure) -> Outcome {
        match failure {
            Failure::Trap(_) => Outcome::Trap,
            Failure::Deadline => Outcome::Deadline,
            Failure::MemoryCap => Outcome::Memory,
            Failure::Start(_) => Outcome::StartFailed,
            Failure::Invalid(_) => Outcome::InvalidOutput,
            // The host made the call trap (see `Failure::StateUnavailable`).
            Failure::StateUnavailable => Outcome::Trap,
        }
    }
}

/// Cells of one phase: the call-duration histogram, then one per outcome.
const PER_PHASE: usize = Histogram::cells(&FAST) + Outcome::ALL.len();

/// One plugin's calls on one route.
#[derive(Debug)]
pub struct PluginCalls {
    cells: Cells,
}

impl PluginCalls {
    /// Counters for a gateway with `workers` worker threads.
    pub fn new(workers: usize) -> PluginCalls {
        PluginCalls {
            cells: Cells::new(PER_PHASE * Phase::ALL.len(), workers),
        }
    }

    fn histogram(phase: Phase) -> Histogram {
        Histogram::at(phase as usize * PER_PHASE, &FAST)
    }

    /// A call of `phase` took `ns` nanoseconds.
    #[inline]
    pub(crate) fn took(&self, phase: Phase, ns: u64) {
        PluginCalls::histogram(phase).observe(&self.cells.row(), ns);
    }

    #[inline]
    pub(crate) fn ended(&self, phase: Phase, outcome: Outcome) {
        self.cells
            .add(PluginCalls::histogram(phase).end() + outcome as usize, 1);
    }

    /// Calls of `phase` that ended with `outcome`.
    pub fn calls(&self, phase: Phase, outcome: Outcome) -> u64 {
        self.cells
            .sum(PluginCalls::histogram(phase).end() + outcome as usize)
    }

    /// How long the calls of `phase` took.
    pub fn durations(&self, phase: Phase) -> HistogramSnapshot {
        PluginCalls::histogram(phase).snapshot(&self.cells)
    }
}
