//! `railyard`: the command-line client for a Railyard server.

mod deploy;
mod environments;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use railyard_shared::{ComponentStatus, EnvironmentId, ErrorBody, HealthResponse, ProjectId, ServiceId};

#[derive(Debug, Parser)]
#[command(
    name = "railyard",
    version,
    about = "Deploy and run apps on a Railyard server"
)]
struct Cli {
    /// Base URL of the Railyard server.
    #[arg(
        long,
        global = true,
        env = "RAILYARD_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    url: String,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// An API token (create one on your account page).
    #[arg(long, global = true, env = "RAILYARD_TOKEN", hide_env_values = true)]
    token: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show whether the server and its database are healthy.
    Status,
    /// Upload a directory (default: the current one) and deploy it, following the build.
    Up {
        /// Service id.
        #[arg(long, env = "RAILYARD_SERVICE")]
        service: ServiceId,
        /// Environment id (default: production).
        #[arg(long)]
        environment: Option<EnvironmentId>,
        /// The directory to upload.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Deploy a service from its own source (its branch head, or a commit), following the build.
    Deploy {
        /// Service id.
        #[arg(long, env = "RAILYARD_SERVICE")]
        service: ServiceId,
        /// Environment id (default: production).
        #[arg(long)]
        environment: Option<EnvironmentId>,
        /// A commit on the service's branch (default: its head).
        #[arg(long)]
        commit: Option<String>,
    },
    /// List a project's environments in pipeline order.
    Environments {
        /// Project id.
        #[arg(long, env = "RAILYARD_PROJECT")]
        project: ProjectId,
    },
    /// Create an environment (empty, or a copy of another's settings and variables).
    #[command(name = "environment-create")]
    EnvironmentCreate {
        /// Project id.
        #[arg(long, env = "RAILYARD_PROJECT")]
        project: ProjectId,
        /// Its name (part of each service's address).
        #[arg(long)]
        name: String,
        /// development, staging or preview (default: from the name).
        #[arg(long)]
        kind: Option<String>,
        /// Copy the settings and variables of this environment (id).
        #[arg(long)]
        clone_from: Option<EnvironmentId>,
    },
    /// Rename an environment (its services' addresses change with it).
    #[command(name = "environment-rename")]
    EnvironmentRename {
        /// Environment id.
        #[arg(long)]
        environment: EnvironmentId,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Delete an environment: its apps are stopped first (production cannot be deleted).
    #[command(name = "environment-delete")]
    EnvironmentDelete {
        /// Environment id.
        #[arg(long)]
        environment: EnvironmentId,
        /// Confirm it (nothing is deleted without it).
        #[arg(long)]
        yes: bool,
    },
    /// The environment matrix: every service in every environment, with its drift.
    Matrix {
        /// Project id.
        #[arg(long, env = "RAILYARD_PROJECT")]
        project: ProjectId,
    },
    /// Promote the build a service runs in one environment to another: prints the plan;
    /// with --yes applies it and follows the deployment until it is live.
    Promote {
        /// Service id.
        #[arg(long, env = "RAILYARD_SERVICE")]
        service: ServiceId,
        /// The environment whose build is promoted (id).
        #[arg(long)]
        from: EnvironmentId,
        /// The environment it goes live in (id).
        #[arg(long)]
        to: EnvironmentId,
        /// Apply the plan (without it, only show it).
        #[arg(long)]
        yes: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Status => status(&cli.url, cli.json).await,
        Command::Up {
            service,
            environment,
            path,
        } => match deploy::Api::new(&cli.url, cli.token.clone()) {
            Ok(api) => deploy::up(&api, *service, *environment, path, cli.json).await,
            Err(err) => Err(err),
        },
        Command::Deploy {
            service,
            environment,
            commit,
        } => match deploy::Api::new(&cli.url, cli.token.clone()) {
            Ok(api) => deploy::deploy(&api, *service, *environment, commit.as_deref(), cli.json).await,
            Err(err) => Err(err),
        },
        command => match deploy::Api::new(&cli.url, cli.token.clone()) {
            Ok(api) => pipeline(&api, command, cli.json).await,
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The environment commands.
async fn pipeline(api: &deploy::Api, command: &Command, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        Command::Environments { project } => environments::list(api, *project, json).await,
        Command::EnvironmentCreate {
            project,
            name,
            kind,
            clone_from,
        } => environments::create(api, *project, name, kind.as_deref(), *clone_from, json).await,
        Command::EnvironmentRename { environment, name } => {
            environments::rename(api, *environment, name, json).await
        }
        Command::EnvironmentDelete { environment, yes } => {
            environments::delete(api, *environment, *yes).await
        }
        Command::Matrix { project } => environments::matrix(api, *project, json).await,
        Command::Promote {
            service,
            from,
            to,
            yes,
        } => environments::promote(api, *service, (*from, *to), *yes, json).await,
        Command::Status | Command::Up { .. } | Command::Deploy { .. } => {
            anyhow::bail!("not an environment command")
        }
    }
}

/// Exit code 0 when healthy, 1 when the server answers but is unhealthy, 2 when it
/// cannot be reached.
#[allow(clippy::print_stdout)]
async fn status(base: &str, json: bool) -> anyhow::Result<ExitCode> {
    let url = format!("{}/api/v1/health", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let health: HealthResponse = match serde_json::from_slice(&bytes) {
        Ok(health) => health,
        Err(_) => {
            if let Ok(err) = serde_json::from_slice::<ErrorBody>(&bytes) {
                anyhow::bail!(
                    "{} answered {status}: {} (request {})",
                    base,
                    err.error.message,
                    err.error.request_id
                );
            }
            anyhow::bail!("{base} answered {status} with something that is not a Railyard health report");
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&health)?);
    } else {
        let word = |c: ComponentStatus| match c {
            ComponentStatus::Ok => "ok",
            ComponentStatus::Unavailable => "unavailable",
            ComponentStatus::Disabled => "disabled",
        };
        println!("Server:    {base}");
        println!("Status:    {}", if health.is_ok() { "ok" } else { "unavailable" });
        println!("Version:   {}", health.version);
        println!("Database:  {}", word(health.database));
        println!("Redis:     {}", word(health.redis));
    }
    Ok(if health.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
