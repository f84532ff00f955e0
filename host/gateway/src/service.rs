//! Running under a service manager: readiness and state changes told to
//! systemd (`sd_notify`: `READY=1`, `RELOADING=1`, `STOPPING=1`, with a
//! `STATUS=` line), and the signals `wasmgate run` answers — SIGHUP reloads
//! the config file (what `ExecReload=` sends), SIGTERM and SIGINT drain and
//! stop. Without `NOTIFY_SOCKET` in the environment the notifications are
//! nothing. A unit file is in `docs/systemd/wasmgate.service`.

use sd_notify::NotifyState;
use tokio::signal::unix::{signal, SignalKind};

use crate::Gateway;

/// Tells the service manager (when there is one) what the gateway is doing.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Every listener is bound and serving.
pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// Serves until SIGTERM or SIGINT, reloading on each SIGHUP; tells the
/// service manager about each reload and, at the end, that it is stopping.
pub async fn serve_until_stopped(gateway: &Gateway) {
    let (mut term, mut hangup) = match (signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
        (Ok(term), Ok(hangup)) => (term, hangup),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot watch SIGTERM/SIGHUP; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            notify(&[NotifyState::Stopping]);
            return;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hangup.recv() => reload(gateway),
        }
    }
    notify(&[NotifyState::Stopping, NotifyState::Status("draining in-flight requests")]);
}

/// SIGHUP: reads the config file again and applies it like a file change
/// (the outcome is logged by the reloader and kept for the admin API).
fn reload(gateway: &Gateway) {
    let mut reloading = vec![NotifyState::Reloading];
    // systemd's `Type=notify-reload` matches RELOADING=1 with this timestamp.
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        reloading.push(now);
    }
    notify(&reloading);
    tracing::info!("SIGHUP: reloading the config file");
    match gateway.reload(None) {
        Ok(()) => notify(&[NotifyState::Ready, NotifyState::Status("serving (reloaded)")]),
        Err(e) => {
            let status = format!("serving the previous config (reload refused: {e})");
            // A status line is one line, and a bounded one.
            let status: String = status.replace('\n', " ").chars().take(512).collect();
            notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
        }
    }
}
