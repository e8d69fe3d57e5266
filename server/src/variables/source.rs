//! A deployment's variables: resolved once, when it is built (or re-released), stored with
//! it (encrypted), and from then on its build log is masked with its secrets. Reading sealed
//! values for a deployment is audited.

use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::logs::BuildLog;
use crate::{
    audit,
    auth::RequestMeta,
    crypto::KeyRing,
    models::deployment::DeploymentRow,
    variables::{PublicUrls, Snapshot, store},
};

/// What deployments need to resolve variables.
#[derive(Debug, Clone)]
pub struct VariableSource {
    pub keys: Arc<KeyRing>,
    pub urls: PublicUrls,
}

impl VariableSource {
    /// Resolves the current variables for `row` (built from `commit`), stores them with it
    /// and masks its log from now on; `Ok(Err)` says why they do not resolve.
    pub async fn prepare(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        commit: Option<&str>,
        log: &BuildLog,
    ) -> anyhow::Result<Result<Snapshot, String>> {
        let resolved = store::resolve_for(
            conn,
            &self.keys,
            &self.urls,
            (row.id, row.service_id, row.environment_id),
            commit,
        )
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
        let (snapshot, revisions) = match resolved {
            Ok(found) => found,
            Err(reason) => return Ok(Err(reason)),
        };
        store::save_snapshot(conn, &self.keys, row.id, &snapshot, &revisions).await?;
        log.set_masker(snapshot.masker());
        self.audit_read(conn, row, &snapshot).await?;
        let count = snapshot.values.len();
        log.event(format!(
            "Variables: {count} set ({} sealed value(s) masked in this log).",
            snapshot.secrets.len()
        ));
        Ok(Ok(snapshot))
    }

    /// A rollback runs with what the deployment it rolls back to ran with.
    pub async fn copy(
        &self,
        conn: &mut AsyncPgConnection,
        from: Uuid,
        row: &DeploymentRow,
        log: &BuildLog,
    ) -> anyhow::Result<bool> {
        use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
        use diesel_async::RunQueryDsl as _;

        use crate::schema::deployment_variables;
        let revisions: Option<serde_json::Value> = deployment_variables::table
            .filter(deployment_variables::deployment_id.eq(from))
            .select(deployment_variables::revisions)
            .first(conn)
            .await
            .optional()?;
        let Some(revisions) = revisions else {
            return Ok(false);
        };
        let snapshot = store::snapshot_of(conn, &self.keys, from).await?;
        let revisions = serde_json::from_value(revisions).unwrap_or_default();
        store::save_snapshot(conn, &self.keys, row.id, &snapshot, &revisions).await?;
        log.set_masker(snapshot.masker());
        self.audit_read(conn, row, &snapshot).await?;
        log.event(format!(
            "Variables: the {} of the release rolled back to.",
            snapshot.values.len()
        ));
        Ok(true)
    }

    async fn audit_read(
        &self,
        conn: &mut AsyncPgConnection,
        row: &DeploymentRow,
        snapshot: &Snapshot,
    ) -> anyhow::Result<()> {
        if snapshot.secrets.is_empty() {
            return Ok(());
        }
        let workspace = crate::variables::store::EnvContext::load(conn, row.environment_id)
            .await?
            .workspace;
        let entry = audit::Entry::new("variable.sealed_read")
            .workspace(workspace)
            .actor_opt(row.triggered_by)
            .label("deployment")
            .target("deployment", row.id)
            .detail(serde_json::json!({
                "service_id": row.service_id,
                "environment_id": row.environment_id,
                "sealed_values": snapshot.secrets.len(),
            }));
        audit::record(conn, &RequestMeta::default(), entry).await?;
        Ok(())
    }
}
