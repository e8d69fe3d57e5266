//! Jobs wiring: every kind of job ([`crate::jobs::kinds::ALL`]) and the handler that runs
//! it. The pipeline (builds) and the runtime (apps) know nothing of each other; the deploy
//! job strings them together here.

pub mod databases;
pub mod deploy;
pub mod github;
pub mod service_action;
pub mod teardown;

use std::sync::Arc;

use crate::{
    app::App,
    jobs::{
        JobHandler,
        kinds::{
            self, BackupDatabase, Deploy, GithubComment, GithubStatus, ProvisionDatabase, RestoreBackup,
            ServiceAction, Teardown,
        },
    },
    layout::Layout,
    pipeline::deploy::Pipeline,
    runtime::{native::NativeRuntime, releaser::Releaser},
    variables::{PublicUrls, source::VariableSource},
};

/// The handler of every job kind. Without a `releaser` (a process that builds but runs no
/// apps) deployments stop at `deploying`, and service actions and teardowns are left to
/// a process that has one.
pub fn handlers(app: &App, releaser: Option<Arc<Releaser>>) -> Vec<Arc<dyn JobHandler>> {
    let config = &app.config;
    let variables = VariableSource {
        keys: app.keys.clone(),
        urls: PublicUrls::of(config),
    };
    let pipeline = Pipeline::new(
        app.db.clone(),
        Layout::new(&config.data_dir),
        config.pipeline.clone(),
        variables,
        app.bus.clone(),
        app.sandbox.clone(),
    );
    let reporter = github::GithubReporter {
        db: app.db.clone(),
        keys: app.keys.clone(),
        rest: app.github_rest.clone(),
        urls: PublicUrls::of(config),
        public_url: config.http.public_url.clone(),
    };
    let mut handlers = vec![
        kinds::handler::<Deploy, _>(deploy::DeployJob {
            pipeline,
            releaser: releaser.clone(),
        }),
        kinds::handler::<GithubStatus, _>(reporter.clone()),
        kinds::handler::<GithubComment, _>(reporter),
    ];
    let databases = databases::DatabaseJobs {
        db: app.db.clone(),
        keys: app.keys.clone(),
        urls: PublicUrls::of(config),
        host: app.databases.clone(),
        backups: app.backups(),
    };
    handlers.push(kinds::handler::<ProvisionDatabase, _>(databases.clone()));
    handlers.push(kinds::handler::<BackupDatabase, _>(databases.clone()));
    handlers.push(kinds::handler::<RestoreBackup, _>(databases));
    if let Some(releaser) = releaser {
        handlers.push(kinds::handler::<ServiceAction, _>(
            service_action::ServiceActionJob {
                releaser: releaser.clone(),
            },
        ));
        handlers.push(kinds::handler::<Teardown, _>(teardown::TeardownJob {
            releaser,
            databases: app.databases.clone(),
            store: app.backup_store.clone(),
        }));
    }
    handlers
}

/// The native runtime, after re-adopting what a previous server left running, and the
/// handlers of a process that builds and runs apps on it.
pub async fn with_runtime(app: &App) -> anyhow::Result<(Arc<NativeRuntime>, Vec<Arc<dyn JobHandler>>)> {
    let variables = VariableSource {
        keys: app.keys.clone(),
        urls: PublicUrls::of(&app.config),
    };
    let (runtime, releaser) = crate::runtime::start(
        &app.db,
        &app.config,
        variables,
        app.bus.clone(),
        app.sandbox.clone(),
    )
    .await?;
    Ok((runtime, handlers(app, Some(releaser))))
}
