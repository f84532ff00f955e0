//! A watcher for plugin folders and config files that reports *settled*
//! changes: after a burst of file events, it waits until the paths have been
//! quiet for the settle time, then reports once. A copy in progress keeps
//! producing events and so is not reported half-written; a rename into
//! place is one event. Hidden files (temporary names) are ignored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

/// Watches paths until dropped.
pub struct Watcher {
    /// The OS watcher, dropped first so no more events come.
    watcher: Option<RecommendedWatcher>,
    /// Tells the settling thread to stop.
    stop: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

/// What the settling thread receives.
enum Message {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// What is watched: a folder, or one file (watched through its folder, so
/// that editors which replace the file by renaming are seen).
#[derive(Debug, Clone)]
struct Target {
    dir: PathBuf,
    file: Option<PathBuf>,
}

impl Target {
    fn matches(&self, path: &Path) -> bool {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            return false;
        }
        match &self.file {
            Some(file) => path == file,
            None => path.parent() == Some(self.dir.as_path()),
        }
    }
}

fn target(path: &Path) -> std::io::Result<Target> {
    let path = std::path::absolute(path)?;
    if path.is_dir() {
        return Ok(Target {
            dir: path,
            file: None,
        });
    }
    let dir = path
        .parent()
        .map(Path::to_owned)
        .ok_or_else(|| std::io::Error::other(format!("{} has no parent folder", path.display())))?;
    Ok(Target {
        dir,
        file: Some(path),
    })
}

impl Watcher {
    /// Starts watching `paths` (folders or files). `on_change` runs on the
    /// watcher's own thread with the changed paths, sorted, each time they
    /// have settled for `settle`.
    pub fn spawn(
        paths: &[PathBuf],
        settle: Duration,
        mut on_change: impl FnMut(Vec<PathBuf>) + Send + 'static,
    ) -> Result<Self, notify::Error> {
        let targets: Vec<Target> = paths
            .iter()
            .map(|p| target(p))
            .collect::<Result<_, _>>()
            .map_err(notify::Error::io)?;
        let (tx, rx) = mpsc::channel::<Message>();
        let events = tx.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(Message::Event(event));
        })?;
        let mut dirs: Vec<&Path> = targets.iter().map(|t| t.dir.as_path()).collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        let thread = std::thread::Builder::new()
            .name("wasmgate-watch".into())
            .spawn(move || {
                let mut pending = BTreeSet::new();
                let mut quiet_since = Instant::now();
                loop {
                    let wait = if pending.is_empty() {
                        Duration::from_secs(3600)
                    } else {
                        settle.saturating_sub(quiet_since.elapsed())
                    };
                    match rx.recv_timeout(wait) {
                        Ok(Message::Event(Ok(event))) => {
                            if matches!(event.kind, EventKind::Access(_)) {
                                continue;
                            }
                            for path in event.paths {
                                if targets.iter().any(|t| t.matches(&path)) {
                                    pending.insert(path);
                                    quiet_since = Instant::now();
                                }
                            }
                        }
                        Ok(Message::Event(Err(err))) => tracing::warn!("file watcher: {err}"),
                        Ok(Message::Stop) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            if !pending.is_empty() && quiet_since.elapsed() >= settle {
                                on_change(std::mem::take(&mut pending).into_iter().collect());
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(notify::Error::io)?;
        Ok(Self {
            watcher: Some(watcher),
            stop: tx,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.watcher.take());
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
