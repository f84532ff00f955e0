//! `wasmgate run -c FILE` and `wasmgate check -c FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::server::Gateway;

#[derive(Parser)]
#[command(name = "wasmgate", version, about = "An API gateway with WebAssembly middleware")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with the given config until SIGTERM or SIGINT, then drain and exit.
    Run {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a config; exit non-zero naming the file, the key and the reason.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => match Config::load(&config) {
            Ok(c) => {
                println!(
                    "{}: ok ({} listeners, {} routes, {} upstreams)",
                    config.display(),
                    c.listeners.len(),
                    c.routes.len(),
                    c.upstreams.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => run(config),
    }
}

fn run(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _log = crate::logging::init(&config.log);
    let gateway = match Gateway::start(&config) {
        Ok(gateway) => gateway,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for listener in &config.listeners {
        if let Some(addr) = gateway.local_addr(&listener.name) {
            tracing::info!(listener = %listener.name, %addr, workers = config.runtime.workers, "listening");
        }
    }
    let signals = tokio::runtime::Builder::new_current_thread().enable_all().build();
    match signals {
        Ok(rt) => rt.block_on(wait_for_signal()),
        Err(e) => tracing::error!(error = %e, "cannot watch for signals; stop with SIGKILL"),
    }
    tracing::info!(drain = ?config.runtime.drain_timeout, "shutting down: draining in-flight requests");
    gateway.shutdown();
    gateway.join();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
