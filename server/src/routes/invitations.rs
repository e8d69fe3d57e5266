//! Invitations: by email, with a role no higher than the inviter's, valid 7 days, single
//! use, bound to the invited address, revocable.

use axum::{extract::State, http::StatusCode};
use diesel::QueryDsl as _;
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use railyard_shared::{
    ErrorCode,
    auth::{
        AcceptInvitationRequest, CreateInvitationRequest, CreatedInvitation, InvitationPreview,
        InvitationPreviewResponse, InvitationsResponse, Role, WorkspaceResponse, normalize_email,
    },
};
use serde::Deserialize;
use uuid::Uuid;

use super::scope::{self, invalid_invitation};
use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta, secret},
    error::{AppError, AppResult, conflict_on_unique},
    extract::{Json, Path, Query},
    mail::Mail,
    models::{invitation::Invitations, member::Members, user::User},
    pagination::{self, PageParams},
    schema::{users, workspaces},
};

fn forbidden(message: &'static str) -> AppError {
    AppError::new(ErrorCode::Forbidden, message)
}

/// Invite someone by email.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{id}/invitations",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id")),
    request_body = CreateInvitationRequest,
    responses(
        (status = 201, description = "Invited; `accept_url` is shown this once", body = CreatedInvitation),
        (status = 403, description = "Not an admin, or a role above yours", body = railyard_shared::ErrorBody),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
        (status = 409, description = "Already a member, or already invited", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_invitation(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateInvitationRequest>,
) -> AppResult<(StatusCode, axum::Json<CreatedInvitation>)> {
    let email = normalize_email(&req.email)
        .ok_or_else(|| AppError::unprocessable("`email` is not a valid email address"))?;
    let mut conn = state.db.get().await?;
    let mine = caller.require(&mut conn, id, Role::Admin).await?;
    if !mine.at_least(req.role) {
        return Err(forbidden("you cannot invite someone with a role above your own"));
    }
    if let Some(user) = User::find_by_email(&mut conn, &email).await?
        && Members::find(&mut conn, id, user.id).await?.is_some()
    {
        return Err(AppError::conflict("this person is already a member"));
    }
    let token = secret::random_token().map_err(AppError::internal)?;
    let invitation = Invitations::create(&mut conn, id, &email, req.role, caller.user_id, &token)
        .await
        .map_err(|err| {
            conflict_on_unique(
                err,
                "this address already has a pending invitation; revoke it to send a new one",
            )
        })?;
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("invitation.create")
            .workspace(id)
            .actor(caller.user_id)
            .target("invitation", invitation.id)
            .detail(serde_json::json!({ "email": email, "role": req.role })),
    )
    .await?;
    let accept_url = format!("{}/invite?token={token}", state.config.http.public_url);
    let email_sent = match &state.mailer {
        Some(mailer) => {
            let inviter = User::find(&mut conn, caller.user_id).await?;
            let workspace: String = workspaces::table
                .find(id)
                .select(workspaces::name)
                .first(&mut conn)
                .await?;
            let mail = Mail {
                to: email.clone(),
                subject: format!("{} invited you to {workspace} on Railyard", inviter.name),
                text: format!(
                    "{} ({}) invited you to join the workspace \"{workspace}\" on Railyard as {}.\n\n\
                     Accept the invitation (valid for 7 days, for this address only):\n{accept_url}\n\n\
                     If you did not expect this, ignore this email.\n",
                    inviter.name,
                    inviter.email,
                    req.role.as_str(),
                ),
            };
            match mailer.send(mail).await {
                Ok(()) => true,
                Err(err) => {
                    // The invitation stands; the inviter sees the link to send it themselves.
                    tracing::warn!(error = %err, invitation = %invitation.id, "invitation email not sent");
                    false
                }
            }
        }
        None => false,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedInvitation {
            invitation,
            accept_url,
            email_sent,
        }),
    ))
}

/// Pending invitations of a workspace.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}/invitations",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id"), PageParams),
    responses(
        (status = 200, description = "Pending invitations", body = InvitationsResponse),
        (status = 403, description = "Not an admin", body = railyard_shared::ErrorBody),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> AppResult<axum::Json<InvitationsResponse>> {
    let page = params.page()?;
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, id, Role::Admin).await?;
    let invitations = Invitations::pending(&mut conn, id, page).await?;
    let next_cursor = pagination::next(&invitations, page.limit, |i| (i.created_at, i.id));
    Ok(axum::Json(InvitationsResponse {
        invitations,
        next_cursor,
    }))
}

/// Revoke a pending invitation.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{id}/invitations/{invitation_id}",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id"), ("invitation_id" = Uuid, Path, description = "Invitation")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an admin", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such pending invitation", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_invitation(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, invitation_id)): Path<(Uuid, Uuid)>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, id, Role::Admin).await?;
    if !Invitations::revoke(&mut conn, id, invitation_id).await? {
        return Err(AppError::not_found("no pending invitation with this id"));
    }
    audit::record(
        &mut conn,
        &meta,
        audit::Entry::new("invitation.revoke")
            .workspace(id)
            .actor(caller.user_id)
            .target("invitation", invitation_id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PreviewParams {
    /// The token from the invitation link.
    pub token: String,
}

/// What an invitation link is for, so the invitee sees it before signing in or up.
#[utoipa::path(
    get,
    path = "/api/v1/invitations/preview",
    tag = "workspaces",
    params(PreviewParams),
    responses(
        (status = 200, description = "The pending invitation", body = InvitationPreviewResponse),
        (status = 404, description = "Invalid, expired, revoked or used", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn find_invitation_preview(
    State(state): State<AppState>,
    Query(params): Query<PreviewParams>,
) -> AppResult<axum::Json<InvitationPreviewResponse>> {
    let mut conn = state.db.get().await?;
    let invitation = Invitations::find_pending(&mut conn, &params.token)
        .await?
        .ok_or_else(invalid_invitation)?;
    let workspace_name: String = workspaces::table
        .find(invitation.workspace_id.uuid())
        .select(workspaces::name)
        .first(&mut conn)
        .await?;
    let invited_by: String = users::table
        .find(invitation.invited_by.uuid())
        .select(users::name)
        .first(&mut conn)
        .await?;
    let account_exists = User::find_by_email(&mut conn, &invitation.email).await?.is_some();
    Ok(axum::Json(InvitationPreviewResponse {
        invitation: InvitationPreview {
            workspace_id: invitation.workspace_id,
            workspace_name,
            email: invitation.email,
            role: invitation.role,
            invited_by,
            expires_at: invitation.expires_at,
            account_exists,
        },
    }))
}

/// Accept an invitation as the signed-in user (whose email must be the invited one).
#[utoipa::path(
    post,
    path = "/api/v1/invitations/accept",
    tag = "workspaces",
    request_body = AcceptInvitationRequest,
    responses(
        (status = 200, description = "Joined", body = WorkspaceResponse),
        (status = 403, description = "Sent to another address", body = railyard_shared::ErrorBody),
        (status = 404, description = "Invalid, expired, revoked or used", body = railyard_shared::ErrorBody),
        (status = 409, description = "Already a member", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn accept_invitation(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Json(req): Json<AcceptInvitationRequest>,
) -> AppResult<axum::Json<WorkspaceResponse>> {
    caller.require_session()?;
    let mut conn = state.db.get().await?;
    let user = User::find(&mut conn, caller.user_id).await?;
    let meta = &meta;
    let invitation = conn
        .transaction::<_, AppError, _>(async |conn| {
            scope::accept_invitation(conn, meta, &req.token, &user).await
        })
        .await?;
    let workspace = crate::models::workspace::Workspaces::find(
        &mut conn,
        invitation.workspace_id.uuid(),
        invitation.role,
    )
    .await?;
    Ok(axum::Json(WorkspaceResponse { workspace }))
}
