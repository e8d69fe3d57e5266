//! `railyard-server serve`: API, dashboard, job workers (builds, the runtime) and, unless
//! `RAILYARD_ROUTER=external`, the app router in one process. `railyard-server router`
//! ([`router_only`]): the app router alone, so apps stay reachable while `serve` restarts.

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::watch};

use std::net::SocketAddr;

use crate::{
    app::{App, AppState},
    auth::setup::{self, SetupState},
    config::{Config, redact_url},
    db, edge,
    jobs::{self, WorkerConfig, WorkerPool},
    listener,
    postgres::EmbeddedPostgres,
    redis::RedisBus,
    router,
};

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let budget = listener::raise_file_limit();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create RAILYARD_DATA_DIR {}", config.data_dir.display()))?;
    // Absolute from here on: builds run in other working directories, and processes are
    // recognised by their (absolute) working directory.
    config.data_dir = std::fs::canonicalize(&config.data_dir)
        .with_context(|| format!("cannot resolve RAILYARD_DATA_DIR {}", config.data_dir.display()))?;
    // The embedded clusters' (Railyard's own, apps' databases') owner passes through.
    let passage = match (&config.database.url, &config.databases.admin_url) {
        (None, _) => crate::postgres::cluster_owner()?.map(|(_, gid)| gid.as_raw()),
        // Apps' databases' cluster, if it is ever used (it says why it cannot start then).
        (Some(_), None) => crate::postgres::cluster_owner()
            .ok()
            .flatten()
            .map(|(_, gid)| gid.as_raw()),
        (Some(_), Some(_)) => None,
    };
    crate::layout::close(&config.data_dir, passage).with_context(|| {
        format!(
            "cannot close RAILYARD_DATA_DIR {} to other users",
            config.data_dir.display()
        )
    })?;
    if let Some(url) = &config.database.url
        && let Some(why) = crate::config::reachable_without_password(url)
    {
        tracing::warn!(
            "DATABASE_URL {why}: any process on this host can connect to the control plane's database \
             (apps included, whatever their isolation). Give the database a password, or let Railyard \
             run its embedded PostgreSQL."
        );
    }

    // The embedded cluster lives as long as this function; dropping it stops PostgreSQL,
    // on the error paths below too.
    let mut embedded = None;
    let database_url = match &config.database.url {
        Some(url) => {
            tracing::info!(url = %redact_url(url), "using the configured PostgreSQL");
            url.clone()
        }
        None => {
            let cluster =
                EmbeddedPostgres::start(&config.data_dir, config.database.pg_bin_dir.as_deref()).await?;
            let url = cluster.url();
            embedded = Some(cluster);
            url
        }
    };

    db::run_migrations(&database_url).await?;
    let pool = db::connect_pool(&config.database, &database_url).await?;
    let redis = match &config.redis.url {
        Some(url) => Some(RedisBus::connect(url).await?),
        None => {
            tracing::info!("no REDIS_URL: the log bus stays in-process");
            None
        }
    };

    let api_listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on RAILYARD_LISTEN={}", config.http.listen))?;
    let edge_listener = if config.http.embedded_edge {
        Some(bind_router(config.http.edge_listen).await?)
    } else {
        None
    };

    let public_url = config.http.public_url.clone();
    let router_addr = match &edge_listener {
        Some(listener) => listener.local_addr()?,
        None => config.http.edge_listen,
    };
    let setup_token = config.auth.setup_token.clone();
    let state = AppState::new(App::build(config, pool, redis.clone()).await?);
    crate::status::spawn_listener(database_url.clone(), state.bus.clone());
    let setup = {
        let mut conn = state.db.get().await?;
        setup::prepare(&mut conn, setup_token.as_deref()).await?
    };
    let workers = start_workers(&state, &database_url).await?;
    let state_for_tasks = state.clone();
    let app = router::build(state, axum::Router::new());
    let (api_limits, router_limits) = limits(&state_for_tasks.config, budget);
    tracing::info!(
        open_files = budget.files,
        api_connections = api_limits.total,
        router_connections = router_limits.total,
        per_client = api_limits.per_client,
        "connection limits"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let api = listener::serve(
        api_listener,
        api_limits,
        move |peer| listener::axum_service(app.clone(), peer),
        wait_for(shutdown_rx.clone()),
    );
    let (apps, routes) = match edge_listener {
        Some(listener) => {
            let edge = edge::Edge::new(
                &state_for_tasks.config.runtime.base_domain,
                state_for_tasks.config.data_dir.clone(),
            )
            .with_timeouts(state_for_tasks.config.http.edge_timeouts);
            let routes = edge.spawn_refresh(state_for_tasks.db.clone(), database_url.clone());
            let apps = edge::listen::serve(listener, edge, router_limits, wait_for(shutdown_rx));
            (Some(apps), Some(routes))
        }
        None => (None, None),
    };
    let apps = async move {
        if let Some(apps) = apps {
            apps.await;
        }
        Ok::<(), std::io::Error>(())
    };

    tracing::info!(dashboard = %public_url, router = %router_addr, "railyard is up");
    #[allow(clippy::print_stdout)]
    {
        println!("Railyard is running.");
        println!("  Dashboard:  {public_url}");
        println!("  API docs:   {public_url}/api/docs");
        if routes.is_some() {
            println!("  App router: http://{router_addr}");
        } else {
            println!(
                "  App router: http://{router_addr} (RAILYARD_ROUTER=external: run `railyard-server router`)"
            );
        }
        match &setup {
            SetupState::Generated(token) => {
                println!();
                println!("This instance has no accounts yet. Create the first (admin) account here:");
                println!("  {public_url}/setup?token={token}");
                println!("The link works once. Restarting the server prints a new one until it is used.");
            }
            SetupState::Configured => {
                println!();
                println!("This instance has no accounts yet. Create the first (admin) account at");
                println!("  {public_url}/setup?token=<RAILYARD_SETUP_TOKEN>");
            }
            SetupState::Done => {}
        }
    }

    // Signing keys rotate on schedule even when the server runs for months.
    let rotation = {
        let state = state_for_tasks.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            every.tick().await;
            loop {
                every.tick().await;
                let result = match state.db.get().await {
                    Ok(mut conn) => state.signer.rotate_and_load(&mut conn, &state.keys).await,
                    Err(err) => Err(err.into()),
                };
                if let Err(err) = result {
                    tracing::error!(error = %format!("{err:#}"), "signing key rotation failed; retrying in an hour");
                }
            }
        })
    };
    // Pull-request previews past their project's TTL are removed (every 10 minutes).
    let previews = {
        let state = state_for_tasks.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                every.tick().await;
                match crate::webhooks::previews::expire(&state, chrono::Utc::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "expired previews removed"),
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "removing expired previews failed")
                    }
                }
            }
        })
    };
    // Apps' databases: their cluster is up with the apps (it was set up before), and each
    // database's backup schedule is checked every minute.
    let backups = {
        let state = state_for_tasks.clone();
        tokio::spawn(async move {
            if let Err(err) = state.databases.start_if_set_up().await {
                tracing::error!(error = %format!("{err:#}"), "the server of apps' databases is not available");
            }
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                match crate::databases::schedule::enqueue_due(
                    &state.db,
                    &*state.backup_store,
                    chrono::Utc::now(),
                )
                .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(queued = n, "scheduled backups queued"),
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "queueing scheduled backups failed")
                    }
                }
            }
        })
    };
    let signals = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        let _ = shutdown_tx.send(true);
    });
    let ((), apps_result) = tokio::join!(api, apps);
    signals.abort();
    rotation.abort();
    previews.abort();
    backups.abort();
    if let Some(routes) = routes {
        routes.abort();
    }
    if let Some(workers) = workers {
        workers.shutdown().await;
    }
    apps_result.context("app router failed")?;

    if let Some(redis) = redis {
        redis.close().await;
    }
    if let Some(mut cluster) = embedded {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    tracing::info!("railyard stopped");
    Ok(())
}

/// The API's and the app router's connection limits: as configured, or their share of the
/// open-file limit.
fn limits(config: &Config, budget: listener::Budget) -> (listener::Limits, listener::Limits) {
    let http = &config.http;
    let api = listener::Limits {
        envelope_long_lines: true,
        idle: http.idle_timeout,
        per_client: http.max_connections_per_client,
        total: http.max_connections.unwrap_or_else(|| budget.share(25)),
    };
    let router = listener::Limits {
        envelope_long_lines: false,
        idle: http.edge_timeouts.idle,
        per_client: http.max_connections_per_client,
        total: http.router_max_connections.unwrap_or_else(|| budget.share(50)),
    };
    (api, router)
}

async fn bind_router(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on RAILYARD_ROUTER_LISTEN={addr}"))
}

/// `railyard-server router`: only the app router. Its database is `DATABASE_URL`, or the
/// embedded cluster a `serve` process runs in `RAILYARD_DATA_DIR`. It loads the route table,
/// follows changes, and keeps the last table it has while the database is unreachable, so
/// traffic flows while `serve` restarts (or is killed).
pub async fn router_only(mut config: Config) -> anyhow::Result<()> {
    let budget = listener::raise_file_limit();
    config.data_dir = std::fs::canonicalize(&config.data_dir)
        .with_context(|| format!("cannot resolve RAILYARD_DATA_DIR {}", config.data_dir.display()))?;
    let database_url = crate::postgres::running_database(&config)?;
    let pool = db::connect_pool(&config.database, &database_url).await?;
    let addr = config.http.edge_listen;
    let threads = config.http.edge_threads;
    let listeners = edge::listen::bind(addr, threads)
        .with_context(|| format!("cannot listen on RAILYARD_ROUTER_LISTEN={addr}"))?;
    let addr = listeners
        .first()
        .map_or(Ok(addr), std::net::TcpListener::local_addr)?;
    let edge = edge::Edge::new(&config.runtime.base_domain, config.data_dir.clone())
        .with_timeouts(config.http.edge_timeouts);
    let routes = edge.reload(&mut *pool.get().await?).await?;
    let refresh = edge.spawn_refresh(pool, database_url);
    tracing::info!(%addr, routes, threads, "app router is up");
    #[allow(clippy::print_stdout)]
    {
        println!("Railyard app router is running on http://{addr}");
    }
    let (_, limits) = limits(&config, budget);
    let served = edge::listen::serve_on_threads(listeners, edge, limits, shutdown_signal()).await;
    refresh.abort();
    served.context("app router failed")
}

/// The job workers (builds and deploys), unless `RAILYARD_WORKERS=0`.
async fn start_workers(state: &AppState, database_url: &str) -> anyhow::Result<Option<WorkerPool>> {
    let pipeline = &state.config.pipeline;
    if pipeline.workers == 0 {
        tracing::info!("RAILYARD_WORKERS=0: this process runs no jobs");
        return Ok(None);
    }
    // A predecessor on this host that was killed mid-job: take its jobs over now.
    let expired = jobs::expire_dead_local_leases(&mut *state.db.get().await?).await?;
    if expired > 0 {
        tracing::warn!(jobs = expired, "taking over jobs of a Railyard process that died");
    }
    let (_, handlers) = crate::worker::with_runtime(state).await?;
    let config = WorkerConfig {
        workers: pipeline.workers,
        lease: pipeline.job_lease,
        shutdown_grace: std::time::Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    tracing::info!(workers = config.workers, "job workers started");
    Ok(Some(WorkerPool::start(
        state.db.clone(),
        database_url.to_owned(),
        handlers,
        config,
    )))
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
