//! Live status: what a project's canvas shows (each service's running state, its active and
//! newest deployment), and how changes reach the dashboards watching it. The database
//! notifies `railyard_status` with `<project>:<environment>` on every committed change to a
//! service, deployment or instance (triggers, migration 000010); each server process
//! listens and publishes [`Live::Status`] to its own WebSocket clients (not through Redis:
//! every replica hears the database itself).

use std::time::Duration;

use chrono::Utc;
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use futures_util::StreamExt as _;
use railyard_shared::{
    InstanceState, ServiceState,
    deployments::{ProjectOverview, ServiceOverview, ServiceStatus},
    projects::Service,
};
use uuid::Uuid;

use crate::{
    config::Config,
    logbus::{Live, LogBus},
    models::{
        deployment::{DeploymentRow, Deployments},
        project::Projects,
    },
    schema::{deployments, environments, instances, projects},
};

/// Where the router serves `service` in an environment.
pub fn public_url(config: &Config, service: &str, environment: &str, project: &str) -> String {
    format!(
        "http://{service}-{environment}-{project}.{}:{}",
        config.runtime.base_domain,
        config.http.edge_listen.port()
    )
}

/// A service's running state in an environment: its newest instance that is not a stopped
/// leftover of an older release.
pub async fn service_status(
    conn: &mut AsyncPgConnection,
    service: Uuid,
    environment: Uuid,
    url: String,
) -> diesel::QueryResult<ServiceStatus> {
    type Row = (
        String,
        Option<i32>,
        Option<i64>,
        Option<i32>,
        i32,
        Option<i32>,
        Uuid,
        chrono::DateTime<Utc>,
    );
    let row: Option<Row> = instances::table
        .filter(instances::service_id.eq(service))
        .filter(instances::environment_id.eq(environment))
        .order((
            diesel::dsl::sql::<diesel::sql_types::Bool>("state IN ('running', 'crashed')").desc(),
            instances::started_at.desc(),
        ))
        .select((
            instances::state,
            instances::pid,
            instances::start_ticks,
            instances::port,
            instances::restarts,
            instances::last_exit_code,
            instances::deployment_id,
            instances::started_at,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        None => ServiceStatus {
            state: ServiceState::NotDeployed,
            pid: None,
            port: None,
            url,
            restarts: 0,
            uptime_s: None,
            memory_bytes: None,
            last_exit_code: None,
            deployment_id: None,
        },
        Some((state, pid, ticks, port, restarts, last_exit_code, deployment, started_at)) => {
            // A state this build does not know reads as stopped (nothing is promised to run).
            let state = InstanceState::parse(&state).map_or(ServiceState::Stopped, ServiceState::from);
            ServiceStatus {
                uptime_s: (state == ServiceState::Running)
                    .then(|| (Utc::now() - started_at).num_seconds().max(0)),
                memory_bytes: match (state, pid, ticks) {
                    // A look through /proc: off the async threads.
                    (ServiceState::Running, Some(pid), Some(ticks)) => {
                        tokio::task::spawn_blocking(move || crate::runtime::app_memory_bytes(pid, ticks))
                            .await
                            .ok()
                            .flatten()
                    }
                    _ => None,
                },
                // A stopped or crashed process has no pid (nor port) worth showing.
                pid: pid.filter(|_| has_process(state)),
                port: port.filter(|_| has_process(state)),
                state,
                url,
                restarts,
                last_exit_code,
                deployment_id: Some(deployment.into()),
            }
        }
    })
}

/// Whether a process of this state exists (a stopped or crashed one's pid is history).
fn has_process(state: ServiceState) -> bool {
    matches!(
        state,
        ServiceState::Starting | ServiceState::Running | ServiceState::Stopping
    )
}

/// Every service of `project` in `environment` (which must be the project's).
pub async fn project_overview(
    conn: &mut AsyncPgConnection,
    config: &Config,
    project: Uuid,
    environment: Uuid,
) -> diesel::QueryResult<ProjectOverview> {
    let (env_name, project_name): (String, String) = environments::table
        .inner_join(projects::table)
        .filter(environments::id.eq(environment))
        .filter(environments::project_id.eq(project))
        .select((environments::name, projects::name))
        .first(conn)
        .await?;
    let services: Vec<Service> = Projects::services(conn, project).await?;
    let mut overview = Vec::with_capacity(services.len());
    for service in services {
        let url = public_url(config, &service.name, &env_name, &project_name);
        let status = service_status(conn, service.id.uuid(), environment, url).await?;
        let active = Deployments::active(conn, service.id.uuid(), environment).await?;
        let latest: Option<DeploymentRow> = deployments::table
            .filter(deployments::service_id.eq(service.id.uuid()))
            .filter(deployments::environment_id.eq(environment))
            .order((deployments::created_at.desc(), deployments::id.desc()))
            .select(DeploymentRow::as_select())
            .first(conn)
            .await
            .optional()?;
        overview.push(ServiceOverview {
            service,
            status,
            active: active.as_ref().map(DeploymentRow::to_api),
            latest: latest.as_ref().map(DeploymentRow::to_api),
        });
    }
    Ok(ProjectOverview {
        project_id: project.into(),
        environment_id: environment.into(),
        services: overview,
    })
}

/// Reads `<project>:<environment or *>`.
fn parse(payload: &str) -> Option<Live> {
    let (project, environment) = payload.split_once(':')?;
    Some(Live::Status {
        project: project.parse().ok()?,
        environment: match environment {
            "*" => None,
            id => Some(id.parse().ok()?),
        },
    })
}

/// Listens for status changes (on a connection of its own, outside the pool) and tells
/// this process's live clients; reconnects after a lost connection.
pub fn spawn_listener(database_url: String, bus: LogBus) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let session = async {
                let mut conn = AsyncPgConnection::establish(&database_url).await?;
                conn.batch_execute("LISTEN railyard_status").await?;
                let mut notifications = std::pin::pin!(conn.notifications_stream());
                while let Some(notification) = notifications.next().await {
                    if let Some(live) = parse(&notification?.payload) {
                        bus.publish_local(live);
                    }
                }
                anyhow::Ok(())
            };
            if let Err(err) = session.await {
                tracing::warn!(error = %format!("{err:#}"), "status listener lost its connection; retrying");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_read() {
        let project = Uuid::new_v4();
        let environment = Uuid::new_v4();
        assert_eq!(
            parse(&format!("{project}:{environment}")),
            Some(Live::Status {
                project,
                environment: Some(environment)
            })
        );
        assert_eq!(
            parse(&format!("{project}:*")),
            Some(Live::Status {
                project,
                environment: None
            })
        );
        assert_eq!(parse("nonsense"), None);
        assert_eq!(parse(&format!("{project}:x")), None);
    }
}
