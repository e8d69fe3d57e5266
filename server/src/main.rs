use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use railyard_server::{config::Config, runtime, serve, telemetry, variables};

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
    /// Manage the master key ring.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// (Internal) Run an app under a monitor that masks and logs its output.
    #[command(hide = true)]
    Monitor {
        /// The app's working directory.
        #[arg(long)]
        dir: PathBuf,
        /// The deployment the app belongs to (tagged on each line).
        #[arg(long)]
        deployment: Option<uuid::Uuid>,
        /// The memory cgroup to run the app in (its limit).
        #[arg(long)]
        cgroup: Option<PathBuf>,
        /// The log file the output is appended to.
        log: PathBuf,
        /// The app's program and arguments.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
    /// (Internal) Run a build step or an app in its jail (see `sandbox::enter`).
    #[command(hide = true)]
    Sandbox {
        /// The jail, as JSON.
        #[arg(long)]
        jail: String,
        /// This is the jail's init (started by the outer helper).
        #[arg(long)]
        init: bool,
        /// Print how much of the Landlock ruleset the kernel enforces (the probe).
        #[arg(long)]
        report: bool,
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Add a new key to the key file and re-encrypt every stored secret under it (a run
    /// that stops mid-way is finished by `keys rotate --resume`).
    Rotate {
        /// Do not add a key: finish re-encrypting under the newest one.
        #[arg(long)]
        resume: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The monitor runs in the app's scrubbed environment: it reads no configuration.
    if let Command::Monitor {
        dir,
        deployment,
        cgroup,
        log,
        command,
    } = &cli.command
    {
        return runtime::monitor::main(
            runtime::monitor::Args {
                dir,
                deployment: *deployment,
                cgroup: cgroup.as_deref(),
                log,
            },
            command,
        );
    }
    if let Command::Sandbox {
        jail,
        init,
        report,
        command,
    } = &cli.command
    {
        return railyard_server::sandbox::enter::main(jail, *init, *report, command);
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("railyard-server: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);

    // The migration harness needs the multi-thread runtime (it uses block_in_place). The
    // router alone runs single-threaded runtimes, one per thread (`RAILYARD_ROUTER_THREADS`),
    // as nginx runs worker processes: a request and its upstream connection never hop
    // between threads.
    let builder = match cli.command {
        Command::Serve => tokio::runtime::Builder::new_multi_thread(),
        Command::Router | Command::Keys { .. } | Command::Monitor { .. } | Command::Sandbox { .. } => {
            tokio::runtime::Builder::new_current_thread()
        }
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
        Command::Keys {
            action: KeysAction::Rotate { resume },
        } => runtime.block_on(variables::rotate::command(config, resume)),
        Command::Monitor { .. } | Command::Sandbox { .. } => Ok(()),
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
