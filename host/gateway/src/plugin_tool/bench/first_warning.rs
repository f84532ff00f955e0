//! The first warning the plugin runtime logs during a bench (why a plugin
//! failed: its trap, panic message or deadline), kept for the report instead
//! of a log line per failed call.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
pub struct FirstWarning(Arc<Mutex<Vec<u8>>>);

impl FirstWarning {
    /// Runs `f` with warnings going here.
    pub fn capture<R>(&self, f: impl FnOnce() -> R) -> R {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f)
    }

    /// The first line logged, if any.
    pub fn line(&self) -> Option<String> {
        let logged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let line = String::from_utf8_lossy(logged.split(|&b| b == b'\n').next().unwrap_or_default()).trim().to_owned();
        (!line.is_empty()).then_some(line)
    }
}

impl Write for FirstWarning {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut logged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !logged.contains(&b'\n') {
            logged.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for FirstWarning {
    type Writer = FirstWarning;

    fn make_writer(&'a self) -> FirstWarning {
        self.clone()
    }
}
