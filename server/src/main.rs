use std::process::ExitCode;

use clap::{Parser, Subcommand};
use railyard_server::{config::Config, serve, telemetry};

/// Railyard control plane.
#[derive(Debug, Parser)]
#[command(name = "railyard-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, dashboard and app router in one process (configuration from the
    /// environment; see .env.example).
    Serve,
    /// Run only the app router (with `RAILYARD_ROUTER=external` on `serve`): apps stay
    /// reachable while the control plane restarts.
    Router,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("railyard-server: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);

    // The migration harness needs the multi-thread runtime (it uses block_in_place). The
    // router alone runs on one thread, as an nginx worker does: a request and its upstream
    // connection never hop between threads, which keeps tail latency down.
    let builder = match cli.command {
        Command::Serve => tokio::runtime::Builder::new_multi_thread(),
        Command::Router => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match { builder }.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("railyard-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve => runtime.block_on(serve::run(config)),
        Command::Router => runtime.block_on(serve::router_only(config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "railyard-server stopped with an error");
            eprintln!("railyard-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}
