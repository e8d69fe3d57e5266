//! Authorization that every route shares: load what a request names and check the
//! caller's role in its workspace (viewers read, members change, admins delete). Unknown
//! ids and other workspaces' ids answer the same 404. Route modules import these from here
//! and from nowhere else. An invitation token is such a scope too: accepting one checks
//! the invited address and works once.

use diesel_async::AsyncPgConnection;
use railyard_shared::{
    ErrorCode,
    auth::{Invitation, Role},
    projects::Service,
};
use uuid::Uuid;

use crate::{
    audit,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    models::{
        database::{AppDatabase, BackupRow, Backups, Databases},
        deployment::{DeploymentRow, Deployments},
        invitation::Invitations,
        member::Members,
        project::Projects,
        user::User,
    },
};

/// The caller's access to `project`: its workspace and the caller's role there (404 for
/// unknown projects and projects of other workspaces alike). `resource` names what the
/// request is about (`project`, or something inside it) in that 404.
pub async fn authorize_project(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    project: Uuid,
    needed: Role,
    resource: &str,
) -> Result<Uuid, AppError> {
    let workspace = Projects::workspace_of(conn, project)
        .await?
        .ok_or_else(|| AppError::not_found(format!("{resource} not found")))?;
    caller.require_for(conn, workspace, needed, resource).await?;
    Ok(workspace)
}

/// The service and the caller's workspace, or 404 (unknown and foreign look the same).
pub async fn authorize_service(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    needed: Role,
) -> Result<(Service, Uuid), AppError> {
    let service = Projects::service(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("service not found"))?;
    let workspace = authorize_project(conn, caller, service.project_id.uuid(), needed, "service").await?;
    Ok((service, workspace))
}

/// 403 unless the caller's role in `workspace` reaches the workspace's `log_read_role`
/// (members by default): logs may show what masking cannot hide.
pub async fn require_log_reader(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    workspace: Uuid,
) -> Result<(), AppError> {
    let readers = crate::models::workspace::Workspaces::log_read_role(conn, workspace).await?;
    let role = caller.role_in(conn, workspace).await?;
    if role.at_least(readers) {
        Ok(())
    } else {
        Err(AppError::new(
            railyard_shared::ErrorCode::Forbidden,
            format!(
                "logs in this workspace are for the {} role and higher; you are {}",
                readers.as_str(),
                role.as_str()
            ),
        ))
    }
}

/// 409 when `workspace` is at its storage quota: nothing that keeps more (an upload, a
/// build) starts. The bytes it may still keep.
pub async fn require_storage(
    conn: &mut AsyncPgConnection,
    config: &crate::config::Config,
    workspace: Uuid,
) -> Result<u64, AppError> {
    let used = crate::models::storage::used_by(conn, workspace).await?;
    let limit = config.pipeline.workspace_storage_limit;
    match crate::models::storage::over_quota(used, limit) {
        Some(message) => Err(AppError::conflict(message)),
        None => Ok(limit - used),
    }
}

/// The environment a request names, which must belong to the service's project; by
/// default the project's `production`.
pub async fn environment_of(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    requested: Option<Uuid>,
) -> Result<Uuid, AppError> {
    Projects::environment_of(conn, project, requested)
        .await?
        .ok_or_else(|| match requested {
            Some(_) => AppError::not_found("environment not found in this project"),
            None => {
                AppError::unprocessable("the project has no `production` environment: name `environment_id`")
            }
        })
}

/// A backup, its database and the caller's workspace, or 404 (unknown and foreign look
/// the same: a backup of another workspace is not found).
pub async fn authorize_backup(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    needed: Role,
) -> Result<(BackupRow, AppDatabase, Uuid), AppError> {
    let backup = Backups::find(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("backup not found"))?;
    let database = Databases::find(conn, backup.database_id)
        .await?
        .ok_or_else(|| AppError::not_found("backup not found"))?;
    let workspace = Databases::workspace_of(conn, database.id)
        .await?
        .ok_or_else(|| AppError::not_found("backup not found"))?;
    caller.require_for(conn, workspace, needed, "backup").await?;
    Ok((backup, database, workspace))
}

/// The deployment and the caller's workspace, or 404 (unknown and foreign look the same).
pub async fn authorize_deployment(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    needed: Role,
) -> Result<(DeploymentRow, Uuid), AppError> {
    let row = Deployments::find(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("deployment not found"))?;
    let (_, workspace) = authorize_service(conn, caller, row.service_id, needed)
        .await
        .map_err(|err| match err.code {
            railyard_shared::ErrorCode::NotFound => AppError::not_found("deployment not found"),
            _ => err,
        })?;
    Ok((row, workspace))
}

/// The one answer for any token that is not a pending invitation (unknown, used, revoked,
/// expired): nothing about which.
pub fn invalid_invitation() -> AppError {
    AppError::not_found("this invitation is invalid, expired, revoked or already used")
}

/// Accepts the invitation behind `token` for `user` inside the caller's transaction:
/// the user's email must be the invited one; the invitation works once.
pub async fn accept_invitation(
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    token: &str,
    user: &User,
) -> AppResult<Invitation> {
    let invitation = Invitations::find_pending(conn, token)
        .await?
        .ok_or_else(invalid_invitation)?;
    if invitation.email != user.email {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "this invitation was sent to another email address",
        ));
    }
    if Members::find(conn, invitation.workspace_id.uuid(), user.id)
        .await?
        .is_some()
    {
        return Err(AppError::conflict("you are already a member of this workspace"));
    }
    if !Invitations::mark_accepted(conn, invitation.id, user.id).await? {
        return Err(invalid_invitation());
    }
    Members::add(conn, invitation.workspace_id.uuid(), user.id, invitation.role).await?;
    audit::record(
        conn,
        meta,
        audit::Entry::new("invitation.accept")
            .workspace(invitation.workspace_id.uuid())
            .actor(user.id)
            .target("invitation", invitation.id)
            .detail(serde_json::json!({ "role": invitation.role })),
    )
    .await?;
    Ok(invitation)
}
