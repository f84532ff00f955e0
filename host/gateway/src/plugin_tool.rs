//! `wasmgate plugin new | check | bench`: the plugin author's tools. They
//! live in the gateway binary so that `check` and `bench` load a plugin with
//! the very code and settings a gateway uses, and need no build of their own.

mod bench;
mod check;
mod load;
mod new;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `writeln!` to a tool's output; an output that cannot be written ends the
/// command with an error.
macro_rules! say {
    ($out:expr) => {
        writeln!($out).map_err(|e| format!("cannot write the output: {e}"))?
    };
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(|e| format!("cannot write the output: {e}"))?
    };
}
pub(crate) use say;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Write a ready plugin crate: typed config, both phases, tests with the
    /// SDK's harness, a README. It builds and tests green as written.
    New(new::NewArgs),
    /// Load a plugin as the gateway does and run its `init` with a config:
    /// prints the plugin contract it was built against and what `init` said.
    Check(check::CheckArgs),
    /// Time what a plugin (or a chain) costs per request, in-process: the
    /// median and p99 of each phase for a request you describe.
    Bench(bench::BenchArgs),
}

/// `wasmgate plugin ...` on the process's stdout and stderr.
pub fn run(command: PluginCommand) -> ExitCode {
    match execute(command, &mut std::io::stdout().lock()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `wasmgate plugin ARGS...` in-process, everything it prints going to `out`
/// (an error as the line `error: ...`). Whether it succeeded.
pub fn run_args<I, T>(args: I, out: &mut dyn Write) -> bool
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    #[derive(Parser)]
    #[command(name = "wasmgate plugin")]
    struct Cli {
        #[command(subcommand)]
        command: PluginCommand,
    }
    let args = std::iter::once(OsString::from("wasmgate plugin")).chain(args.into_iter().map(Into::into));
    let result = match Cli::try_parse_from(args) {
        Ok(cli) => execute(cli.command, out),
        Err(e) => Err(e.to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned()),
    };
    match result {
        Ok(ok) => ok,
        Err(message) => {
            let _ = writeln!(out, "error: {message}");
            false
        }
    }
}

/// Runs `command`: `Ok(false)` when it ran and reported a failure on `out`.
fn execute(command: PluginCommand, out: &mut dyn Write) -> Result<bool, String> {
    match command {
        PluginCommand::New(args) => new::run(&args, out),
        PluginCommand::Check(args) => check::run(&args, out),
        PluginCommand::Bench(args) => bench::run(&args, out),
    }
}
