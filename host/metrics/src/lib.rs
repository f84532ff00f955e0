//! The counters behind wasmgate's `/metrics`, shaped for a thread-per-core
//! gateway: every metric block holds one row of cells per worker thread (plus
//! one for every other thread), each row on its own cache lines, so a request
//! adds to memory only its own worker writes — plain relaxed loads and stores,
//! no lock, no contended cache line. A scrape sums the rows.
//!
//! Blocks are made off the hot path (when a gateway state is built) and handed
//! to whatever records into them as an `Arc`; what a cell means is the owner's
//! business (`wasmgate::metrics`, `wasmgate_plugin::metrics`). This crate only
//! knows cells, histograms over fixed buckets, and which row a thread writes.
//! Both the gateway and the plugin runtime use it, and it depends on neither.

pub mod clock;
mod histogram;
mod shard;

pub use histogram::{Buckets, Histogram, HistogramSnapshot, FAST, SLOW};
pub use shard::{set_worker, worker, Cells, Row, RowIndex};
