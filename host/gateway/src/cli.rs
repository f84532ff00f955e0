//! `wasmgate run -c FILE`, `wasmgate check -c FILE`, `wasmgate plugin ...`,
//! `wasmgate register ...`, and for fleets `wasmgate config push|rollback` and
//! `wasmgate fleet status`.

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
    /// A fleet's config in ZooKeeper: `push` a new version, `rollback` to an earlier one.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// A fleet's gateways: `status` lists what each runs.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
}

/// Where a fleet lives in ZooKeeper.
#[derive(clap::Args)]
struct FleetArgs {
    /// ZooKeeper servers, comma-separated: `127.0.0.1:2181,10.0.0.2:2181`.
    #[arg(long, value_name = "HOSTS", value_delimiter = ',', required = true)]
    zookeeper: Vec<String>,
    /// The fleet's root path (`[cluster] zookeeper.path` of its gateways).
    #[arg(long, value_name = "PATH", default_value = "/wasmgate")]
    path: String,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config as `check` does, upload it with the plugins its routes use
    /// as one version, and make it the fleet's current version.
    Push {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Make an earlier version current again (the id `fleet status` shows, or a unique prefix).
    Rollback {
        #[arg(long, value_name = "VERSION")]
        to: String,
        #[command(flatten)]
        fleet: FleetArgs,
    },
}

#[derive(Subcommand)]
enum FleetCommand {
    /// The current version and, per gateway, what it runs and what it refused.
    Status {
        #[command(flatten)]
        fleet: FleetArgs,
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
        Command::Config { command: ConfigCommand::Push { config, fleet } } => config_push(&config, &fleet),
        Command::Config { command: ConfigCommand::Rollback { to, fleet } } => {
            fleet_tool(&fleet, |hosts, path| async move { crate::cluster::rollback(&hosts, &path, &to).await }, |pushed| {
                let from = pushed.previous.as_deref().unwrap_or("none");
                println!("{}: current is {} (was {from})", fleet.path, pushed.id);
            })
        }
        Command::Fleet { command: FleetCommand::Status { fleet } } => {
            fleet_tool(&fleet, |hosts, path| async move { crate::cluster::status(&hosts, &path).await }, |status| {
                print!("{}", status.table());
            })
        }
    }
}

/// A config `check` accepts: what `check` prints and what `config push` uploads.
pub struct Checked {
    pub config: Config,
    /// `(name, sha256)` of every plugin file loaded.
    pub plugins: Vec<(String, String)>,
    /// The line `check` prints on success.
    pub summary: String,
    pub warnings: Vec<String>,
}

/// `check -c FILE` without the printing: the config, and every plugin its
/// routes name loaded and initialised with each route's config, as `run` would.
pub fn check_config(path: &std::path::Path) -> Result<Checked, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let mut plugins = config
        .plugins
        .as_ref()
        .map(crate::plugins::Plugins::load)
        .transpose()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Its errors name the config file, line and key.
    crate::state::State::build(&config, plugins.as_mut(), None).map_err(|e| e.to_string())?;
    let warnings = plugins
        .as_ref()
        .map(crate::plugins::Plugins::ignored)
        .unwrap_or_default()
        .into_iter()
        .map(|ignored| format!("{}: ignored: {}", ignored.file.display(), ignored.reason))
        .collect();
    let loaded = plugins.as_ref().map(|p| p.versions().join(", ")).unwrap_or_default();
    let summary = format!(
        "{}: ok ({} listeners, {} routes, {} upstreams{})",
        path.display(),
        config.listeners.len(),
        config.routes.len(),
        config.upstreams.len(),
        if loaded.is_empty() { String::new() } else { format!("; plugins: {loaded}") }
    );
    let plugins = plugins.as_ref().map(crate::plugins::Plugins::loaded).unwrap_or_default();
    Ok(Checked { config, plugins: plugins.into_iter().map(|p| (p.name, p.sha256)).collect(), summary, warnings })
}

/// `config push`: nothing reaches ZooKeeper unless `check` passes.
fn config_push(file: &std::path::Path, fleet: &FleetArgs) -> ExitCode {
    let checked = match check_config(file) {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("nothing was pushed");
            return ExitCode::FAILURE;
        }
    };
    for warning in &checked.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{}", checked.summary);
    let file = file.to_owned();
    fleet_tool(
        fleet,
        |hosts, path| async move { crate::cluster::push(&hosts, &path, &file, &checked.config, &checked.plugins).await },
        |pushed| {
            let plugins = if pushed.plugins.is_empty() { "no plugins".to_owned() } else { pushed.plugins.join(", ") };
            let new = if pushed.created { "new version" } else { "version already uploaded" };
            let from = pushed.previous.as_deref().unwrap_or("none");
            println!("{}: current is {} ({new}, {plugins}; was {from})", fleet.path, pushed.id);
        },
    )
}

/// Runs one fleet command against ZooKeeper and prints its result.
fn fleet_tool<T, F>(
    fleet: &FleetArgs,
    run: impl FnOnce(Vec<String>, String) -> F,
    print: impl FnOnce(T),
) -> ExitCode
where
    F: std::future::Future<Output = Result<T, String>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start an event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(fleet.zookeeper.clone(), fleet.path.clone())) {
        Ok(result) => {
            print(result);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Validates the config and, when it names plugins, loads every plugin and
/// initialises it with each route's config, exactly as `run` would.
fn check(path: &std::path::Path) -> ExitCode {
    match check_config(path) {
        Ok(checked) => {
            for warning in &checked.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}", checked.summary);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
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
    crate::service::ready();
    let signals = tokio::runtime::Builder::new_current_thread().enable_all().build();
    match signals {
        Ok(rt) => rt.block_on(crate::service::serve_until_stopped(&gateway)),
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
