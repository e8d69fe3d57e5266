//! The deployment state machine, in the database (the states and their allowed moves are
//! [`railyard_shared::DeploymentState`]).
//!
//! A transition is one conditional `UPDATE … WHERE state = <from>`: of two racing
//! transitions from the same state exactly one applies, so a deployment is built and
//! activated at most once. Going `active` supersedes the previous active deployment of the
//! service and environment in the same transaction, and a unique index refuses a second
//! active one whatever happens. Every transition is recorded with its time and reason.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::{
    jobs::kinds::{self, GithubStatus},
    schema::{deployment_events, deployments, github_deployments},
};

pub use railyard_shared::DeploymentState as State;

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("a deployment cannot go from {from} to {to}")]
    NotAllowed { from: &'static str, to: &'static str },
    /// Another transition from `from` won the race (or the deployment is gone).
    #[error("the deployment is no longer {0}")]
    Lost(&'static str),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Creates a queued deployment (record its first event too).
pub async fn create(
    conn: &mut AsyncPgConnection,
    service: Uuid,
    environment: Uuid,
    branch: Option<&str>,
    commit: Option<&str>,
    triggered_by: Option<Uuid>,
) -> diesel::QueryResult<Uuid> {
    let id = Uuid::new_v4();
    diesel::insert_into(deployments::table)
        .values((
            deployments::id.eq(id),
            deployments::service_id.eq(service),
            deployments::environment_id.eq(environment),
            deployments::branch.eq(branch),
            deployments::commit_sha.eq(commit),
            deployments::triggered_by.eq(triggered_by),
        ))
        .execute(conn)
        .await?;
    record(conn, id, None, State::Queued, "requested").await?;
    Ok(id)
}

async fn record(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    from: Option<State>,
    to: State,
    reason: &str,
) -> diesel::QueryResult<()> {
    diesel::insert_into(deployment_events::table)
        .values((
            deployment_events::deployment_id.eq(id),
            deployment_events::from_state.eq(from.map(State::as_str)),
            deployment_events::to_state.eq(to.as_str()),
            deployment_events::reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    // Every state change is audited too, in the same transaction, under the deployment's
    // workspace, by Railyard itself (the API's own entries name the people who asked, so
    // the creation is theirs to record).
    if from.is_none() {
        return Ok(());
    }
    report_to_github(conn, id, to).await?;
    diesel::sql_query(
        "INSERT INTO audit_log (workspace_id, actor_label, action, target_type, target_id, ip, request_id, detail) \
         SELECT p.workspace_id, 'railyard', 'deployment.' || $2, 'deployment', d.id::text, '', '', \
                jsonb_build_object('from', $3::text, 'reason', $4::text, 'service_id', d.service_id) \
         FROM deployments d JOIN services s ON s.id = d.service_id JOIN projects p ON p.id = s.project_id \
         WHERE d.id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<diesel::sql_types::Text, _>(to.as_str())
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(from.map(State::as_str))
    .bind::<diesel::sql_types::Text, _>(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// A deployment of a GitHub repository reports each state to GitHub (a job, so GitHub being
/// slow or down never holds a transition up).
pub async fn report_to_github(conn: &mut AsyncPgConnection, id: Uuid, to: State) -> diesel::QueryResult<()> {
    let tracked: Option<Uuid> = github_deployments::table
        .find(id)
        .select(github_deployments::deployment_id)
        .first(conn)
        .await
        .optional()?;
    if tracked.is_some() {
        let job = GithubStatus {
            deployment_id: id,
            state: to.as_str().to_owned(),
            inactive: None,
        };
        kinds::enqueue(conn, &job).await?;
    }
    Ok(())
}

/// Moves deployment `id` from `from` to `to`, in one transaction with its event (and, for
/// `active`, the superseding of the previous active deployment).
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    from: State,
    to: State,
    reason: &str,
) -> Result<(), TransitionError> {
    if !from.can_become(to) {
        return Err(TransitionError::NotAllowed {
            from: from.as_str(),
            to: to.as_str(),
        });
    }
    conn.transaction::<_, TransitionError, _>(async |conn| {
        let now = Utc::now();
        if to == State::Active {
            // Supersede the current active deployment first: the unique index allows one.
            // Should the transition below lose its race, the transaction undoes this too.
            let (service, environment): (Uuid, Uuid) = deployments::table
                .find(id)
                .select((deployments::service_id, deployments::environment_id))
                .first(conn)
                .await
                .optional()?
                .ok_or(TransitionError::Lost(from.as_str()))?;
            // A rollback's predecessor was rolled back; anyone else's was superseded.
            let kind: String = deployments::table
                .find(id)
                .select(deployments::source_kind)
                .first(conn)
                .await?;
            let replaced = if kind == "rollback" {
                State::RolledBack
            } else {
                State::Superseded
            };
            let previous: Vec<Uuid> = diesel::update(
                deployments::table
                    .filter(deployments::service_id.eq(service))
                    .filter(deployments::environment_id.eq(environment))
                    .filter(deployments::state.eq(State::Active.as_str()))
                    .filter(deployments::id.ne(id)),
            )
            .set((
                deployments::state.eq(replaced.as_str()),
                deployments::updated_at.eq(now),
            ))
            .returning(deployments::id)
            .get_results(conn)
            .await?;
            for old in previous {
                let reason = match replaced {
                    State::RolledBack => format!("rolled back by {id}"),
                    _ => format!("superseded by {id}"),
                };
                record(conn, old, Some(State::Active), replaced, &reason).await?;
            }
        }
        let finished = (to.is_final() || to == State::Active).then_some(now);
        let updated = diesel::update(
            deployments::table
                .filter(deployments::id.eq(id))
                .filter(deployments::state.eq(from.as_str())),
        )
        .set((
            deployments::state.eq(to.as_str()),
            deployments::updated_at.eq(now),
            deployments::finished_at.eq(finished),
            deployments::reason.eq(matches!(to, State::Failed | State::Cancelled).then_some(reason)),
        ))
        .execute(conn)
        .await?;
        if updated == 0 {
            return Err(TransitionError::Lost(from.as_str()));
        }
        record(conn, id, Some(from), to, reason).await?;
        Ok(())
    })
    .await
}

/// The state history of a deployment: `(from, to, reason, at)`, oldest first.
pub async fn history(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> diesel::QueryResult<Vec<(Option<String>, String, String, DateTime<Utc>)>> {
    deployment_events::table
        .filter(deployment_events::deployment_id.eq(id))
        .order(deployment_events::id.asc())
        .select((
            deployment_events::from_state,
            deployment_events::to_state,
            deployment_events::reason,
            deployment_events::at,
        ))
        .load(conn)
        .await
}
