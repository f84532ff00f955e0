//! `wasmgate run -c FILE`, `wasmgate check -c FILE`, `wasmgate plugin ...` and
//! `wasmgate register ...`.

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
    /// Tools for plugin authors: `new`, `check`, `bench`.
    Plugin {
        #[command(subcommand)]
        command: crate::plugin_tool::PluginCommand,
    },
    /// Register a backend in ZooKeeper: hold an ephemeral node naming ADDRESS
    /// under PATH until SIGTERM or SIGINT (then delete it), re-creating it if the
    /// session is lost. Gateways with `discovery = { zookeeper = ... }` on PATH
    /// route to the backend while the node exists.
    Register {
        /// ZooKeeper servers, comma-separated: `127.0.0.1:2181,10.0.0.2:2181`.
        #[arg(long, value_name = "HOSTS", value_delimiter = ',', required = true)]
        zookeeper: Vec<String>,
        /// The path gateways watch.
        #[arg(long, value_name = "PATH", default_value = "/real_server")]
        path: String,
        /// `host:port` that gateways should send this backend's requests to.
        #[arg(long, value_name = "HOST:PORT")]
        address: String,
        /// Balancing weight (1-10000) announced with the address.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        weight: Option<u32>,
        /// ZooKeeper session timeout: how long after a crash the node lingers.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
        session_timeout: std::time::Duration,
    },
}

pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => check(&config),
        Command::Run { config } => run(config),
        Command::Plugin { command } => crate::plugin_tool::run(command),
        Command::Register { zookeeper, path, address, weight, session_timeout } => {
            let registration = crate::register::Registration { hosts: zookeeper, path, address, weight, session_timeout };
            register(registration)
        }
    }
}

/// Validates the config and, when it names plugins, loads every plugin and
/// initialises it with each route's config, exactly as `run` would.
fn check(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut plugins = match config.plugins.as_ref().map(crate::plugins::Plugins::load).transpose() {
        Ok(plugins) => plugins,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    // Its errors name the config file, line and key.
    if let Err(e) = crate::state::State::build(&config, plugins.as_mut(), None) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    for ignored in plugins.as_ref().map(crate::plugins::Plugins::ignored).unwrap_or_default() {
        eprintln!("warning: {}: ignored: {}", ignored.file.display(), ignored.reason);
    }
    let loaded = plugins.as_ref().map(|p| p.versions().join(", ")).unwrap_or_default();
    println!(
        "{}: ok ({} listeners, {} routes, {} upstreams{})",
        path.display(),
        config.listeners.len(),
        config.routes.len(),
        config.upstreams.len(),
        if loaded.is_empty() { String::new() } else { format!("; plugins: {loaded}") }
    );
    ExitCode::SUCCESS
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

fn register(registration: crate::register::Registration) -> ExitCode {
    if !registration.path.starts_with('/') || registration.address.rsplit_once(':').is_none() {
        eprintln!("error: --path must be absolute and --address must be host:port");
        return ExitCode::FAILURE;
    }
    let _log = crate::logging::init(&crate::config::LogConfig { access: false, level: "info".into(), format: crate::config::LogFormat::Text });
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start an event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(registration.hold(wait_for_signal()));
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
