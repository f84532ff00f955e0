//! `Cells`: a block of counters with one row per worker thread.
//!
//! A worker thread (one event loop, one core) is the only writer of its row,
//! so it adds with a relaxed load and store: no locked instruction, and no
//! cache line another core writes. Every other thread (the control thread,
//! a test's own thread) writes the last row, with an atomic add since several
//! may. Rows start on 128-byte boundaries: two rows never share a cache line,
//! nor the pair of lines x86's adjacent-line prefetcher fetches together.
//!
//! A scrape sums a cell over the rows with wrapping arithmetic, so a gauge
//! raised on one row and lowered on another still sums right (read as `i64`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Cells in one 128-byte line.
const PER_LINE: usize = 16;

#[repr(align(128))]
struct Line([AtomicU64; PER_LINE]);

thread_local! {
    /// The row this thread writes; `usize::MAX`: not a worker (the shared row).
    static WORKER: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Makes the calling thread the writer of row `index` of every block: a
/// gateway worker calls this once, when it starts, with its worker number.
/// Two threads of one gateway must never share an index.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The row this thread writes, when it is a worker.
pub fn worker() -> Option<usize> {
    Some(WORKER.with(Cell::get)).filter(|&w| w != usize::MAX)
}

/// `len` counters, each kept as one row per worker plus a shared row.
pub struct Cells {
    lines: Box<[Line]>,
    /// Lines per row.
    stride: usize,
    /// The shared row's index (= the number of workers).
    shared: usize,
    len: usize,
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cells").field("len", &self.len).field("workers", &self.shared).finish_non_exhaustive()
    }
}

impl Cells {
    /// `len` cells for a gateway with `workers` worker threads.
    pub fn new(len: usize, workers: usize) -> Cells {
        let stride = len.div_ceil(PER_LINE).max(1);
        let lines = (0..stride * (workers + 1)).map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0)))).collect();
        Cells { lines, stride, shared: workers, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The workers this block has a row for.
    pub fn workers(&self) -> usize {
        self.shared
    }

    #[inline]
    fn at(&self, row: usize, cell: usize) -> &AtomicU64 {
        debug_assert!(cell < self.len, "cell {cell} of {}", self.len);
        &self.lines[row * self.stride + cell / PER_LINE].0[cell % PER_LINE]
    }

    /// The row the calling thread writes: for several adds to one block,
    /// find it once.
    #[inline]
    pub fn row(&self) -> Row<'_> {
        let worker = WORKER.with(Cell::get);
        let (row, owned) = if worker < self.shared { (worker, true) } else { (self.shared, false) };
        let start = row * self.stride;
        Row { lines: &self.lines[start..start + self.stride], owned }
    }

    /// The calling thread's row, to keep: for a value that lives on one
    /// worker (a pooled connection), found once instead of on every add.
    #[inline]
    pub fn row_index(&self) -> RowIndex {
        let worker = WORKER.with(Cell::get);
        match worker < self.shared {
            true => RowIndex { row: worker, owned: true },
            false => RowIndex { row: self.shared, owned: false },
        }
    }

    /// Adds `n` to `cell` in row `at` (from `row_index` on the same thread).
    #[inline]
    pub fn add_at(&self, at: RowIndex, cell: usize, n: u64) {
        let c = self.at(at.row, cell);
        if at.owned {
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds `n` to `cell` in the calling thread's row.
    #[inline]
    pub fn add(&self, cell: usize, n: u64) {
        self.row().add(cell, n);
    }

    /// Subtracts `n` (for a gauge; the sum wraps back).
    #[inline]
    pub fn sub(&self, cell: usize, n: u64) {
        self.add(cell, n.wrapping_neg());
    }

    /// The cell summed over every row.
    pub fn sum(&self, cell: usize) -> u64 {
        (0..=self.shared).fold(0u64, |sum, row| sum.wrapping_add(self.at(row, cell).load(Ordering::Relaxed)))
    }

    /// The cell summed over every row, as a gauge that went up and down.
    pub fn gauge(&self, cell: usize) -> i64 {
        self.sum(cell) as i64
    }
}

/// Where a thread writes in every block (see `Cells::row_index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowIndex {
    row: usize,
    /// A worker's own row (else the shared one).
    owned: bool,
}

/// One row of a block: the calling thread's.
pub struct Row<'a> {
    lines: &'a [Line],
    /// A worker's own row (else the shared one, which several threads write).
    owned: bool,
}

impl Row<'_> {
    /// Adds `n` to `cell`.
    #[inline]
    pub fn add(&self, cell: usize, n: u64) {
        let c = &self.lines[cell / PER_LINE].0[cell % PER_LINE];
        if self.owned {
            // This thread is the row's only writer: a plain read-modify-write.
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Subtracts `n` (for a gauge).
    #[inline]
    pub fn sub(&self, cell: usize, n: u64) {
        self.add(cell, n.wrapping_neg());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rows_do_not_share_lines() {
        assert_eq!(std::mem::align_of::<Line>(), 128);
        let cells = Cells::new(17, 2);
        assert_eq!(cells.stride, 2);
        assert_eq!(cells.lines.len(), 6);
    }

    #[test]
    fn workers_and_others_sum_up() {
        let cells = Arc::new(Cells::new(3, 2));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let cells = cells.clone();
                std::thread::spawn(move || {
                    // Two workers with rows of their own, two others on the shared row.
                    if i < 2 {
                        set_worker(i);
                    }
                    for _ in 0..10_000 {
                        cells.add(1, 1);
                    }
                    cells.add(2, 5);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cells.sum(0), 0);
        assert_eq!(cells.sum(1), 40_000);
        assert_eq!(cells.sum(2), 20);
    }

    #[test]
    fn a_gauge_may_go_down_on_another_row() {
        let cells = Arc::new(Cells::new(1, 1));
        let up = cells.clone();
        std::thread::spawn(move || {
            set_worker(0);
            up.add(0, 3);
        })
        .join()
        .unwrap();
        cells.sub(0, 1);
        assert_eq!(cells.gauge(0), 2);
        cells.sub(0, 5);
        assert_eq!(cells.gauge(0), -3);
    }
}
