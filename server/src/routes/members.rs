//! Members of a workspace: list, change role, remove, leave, transfer ownership.
//!
//! Rules: viewers read; admins manage members who are not owners and grant at most admin;
//! owners do everything; a workspace always keeps at least one owner.

use axum::{extract::State, http::StatusCode};
use diesel_async::AsyncConnection as _;
use railyard_shared::{
    ErrorCode,
    auth::{MemberResponse, MembersResponse, Role, TransferOwnershipRequest, UpdateMemberRequest},
};
use uuid::Uuid;

use crate::{
    app::AppState,
    audit,
    auth::{Caller, RequestMeta, api_token},
    error::{AppError, AppResult},
    extract::{Json, Path, Query},
    models::member::Members,
    pagination::{self, PageParams},
};

fn forbidden(message: &'static str) -> AppError {
    AppError::new(ErrorCode::Forbidden, message)
}

fn member_not_found() -> AppError {
    AppError::not_found("no such member in this workspace")
}

/// The members of a workspace.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}/members",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id"), PageParams),
    responses(
        (status = 200, description = "Members", body = MembersResponse),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> AppResult<axum::Json<MembersResponse>> {
    let page = params.page()?;
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, id, Role::Viewer).await?;
    let members = Members::list(&mut conn, id, page).await?;
    let next_cursor = pagination::next(&members, page.limit, |m| (m.joined_at, m.user_id.uuid()));
    Ok(axum::Json(MembersResponse { members, next_cursor }))
}

/// Change a member's role.
#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{id}/members/{user_id}",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id"), ("user_id" = Uuid, Path, description = "Member")),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, description = "Updated", body = MemberResponse),
        (status = 403, description = "Not allowed for your role", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such workspace or member", body = railyard_shared::ErrorBody),
        (status = 409, description = "Would leave the workspace without an owner", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn update_member(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<UpdateMemberRequest>,
) -> AppResult<axum::Json<MemberResponse>> {
    let mut conn = state.db.get().await?;
    let mine = caller.require(&mut conn, id, Role::Admin).await?;
    let meta = &meta;
    let member = conn
        .transaction::<_, AppError, _>(async |conn| {
            let owners = Members::lock_owners(conn, id).await?;
            let target = Members::find(conn, id, user_id)
                .await?
                .ok_or_else(member_not_found)?;
            if mine != Role::Owner && (target.role == Role::Owner || req.role == Role::Owner) {
                return Err(forbidden(
                    "only owners can change owners or make someone an owner",
                ));
            }
            if target.role == Role::Owner && req.role != Role::Owner && owners.len() <= 1 {
                return Err(AppError::conflict(
                    "a workspace needs at least one owner; make someone else owner first",
                ));
            }
            Members::set_role(conn, id, user_id, req.role).await?;
            audit::record(
                conn,
                meta,
                audit::Entry::new("member.update_role")
                    .workspace(id)
                    .actor(caller.user_id)
                    .target("user", user_id)
                    .detail(serde_json::json!({ "from": target.role, "to": req.role })),
            )
            .await?;
            Ok(railyard_shared::auth::Member {
                role: req.role,
                ..target
            })
        })
        .await?;
    Ok(axum::Json(MemberResponse { member }))
}

/// Remove a member (admins remove non-owners; owners anyone but the last owner). Removing
/// yourself is leaving, which every member may do unless they are the last owner.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{id}/members/{user_id}",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id"), ("user_id" = Uuid, Path, description = "Member")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not allowed for your role", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such workspace or member", body = railyard_shared::ErrorBody),
        (status = 409, description = "The last owner cannot leave", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn delete_member(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> AppResult<StatusCode> {
    let mut conn = state.db.get().await?;
    let leaving = user_id == caller.user_id;
    let mine = if leaving {
        caller.role_in(&mut conn, id).await?
    } else {
        caller.require(&mut conn, id, Role::Admin).await?
    };
    let meta = &meta;
    conn.transaction::<_, AppError, _>(async |conn| {
        let owners = Members::lock_owners(conn, id).await?;
        let target = Members::find(conn, id, user_id)
            .await?
            .ok_or_else(member_not_found)?;
        if !leaving && target.role == Role::Owner && mine != Role::Owner {
            return Err(forbidden("only owners can remove owners"));
        }
        if target.role == Role::Owner && owners.len() <= 1 {
            return Err(AppError::conflict(
                "the last owner cannot leave; transfer ownership or delete the workspace",
            ));
        }
        Members::remove(conn, id, user_id).await?;
        // Their tokens for this workspace end with the membership: being invited back
        // later does not bring them back.
        api_token::revoke_for_workspace(conn, user_id, id).await?;
        audit::record(
            conn,
            meta,
            audit::Entry::new(if leaving { "member.leave" } else { "member.remove" })
                .workspace(id)
                .actor(caller.user_id)
                .target("user", user_id),
        )
        .await?;
        Ok(())
    })
    .await?;
    state.bus.access_changed(Some(user_id));
    Ok(StatusCode::NO_CONTENT)
}

/// Make another member an owner and step down to admin.
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{id}/transfer",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id")),
    request_body = TransferOwnershipRequest,
    responses(
        (status = 200, description = "The new owner", body = MemberResponse),
        (status = 403, description = "Only owners transfer ownership", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such workspace or member", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn transfer_ownership(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(req): Json<TransferOwnershipRequest>,
) -> AppResult<axum::Json<MemberResponse>> {
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, id, Role::Owner).await?;
    if req.user_id == caller.user_id.into() {
        return Err(AppError::unprocessable("you are already an owner"));
    }
    let meta = &meta;
    let member = conn
        .transaction::<_, AppError, _>(async |conn| {
            Members::lock_owners(conn, id).await?;
            let target = Members::find(conn, id, req.user_id.uuid())
                .await?
                .ok_or_else(member_not_found)?;
            Members::set_role(conn, id, req.user_id.uuid(), Role::Owner).await?;
            Members::set_role(conn, id, caller.user_id, Role::Admin).await?;
            audit::record(
                conn,
                meta,
                audit::Entry::new("workspace.transfer_ownership")
                    .workspace(id)
                    .actor(caller.user_id)
                    .target("user", req.user_id),
            )
            .await?;
            Ok(railyard_shared::auth::Member {
                role: Role::Owner,
                ..target
            })
        })
        .await?;
    Ok(axum::Json(MemberResponse { member }))
}
