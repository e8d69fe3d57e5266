//! The audit log of a workspace.

use axum::extract::State;
use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods as _, NullableExpressionMethods as _, QueryDsl as _, TextExpressionMethods as _,
};
use diesel_async::RunQueryDsl as _;
use railyard_shared::auth::{AuditEntry, AuditResponse, Role};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::Caller,
    error::{AppError, AppResult},
    extract::{Path, Query},
    pagination::{DEFAULT_LIMIT, MAX_LIMIT},
    schema::{audit_log, users},
};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// Only this action, e.g. `member.remove`; a trailing `.*` matches a prefix (`member.*`).
    pub action: Option<String>,
    /// Only entries by this user.
    pub actor_id: Option<Uuid>,
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

#[derive(diesel::Queryable)]
struct Row {
    id: i64,
    workspace_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    actor_email: Option<String>,
    actor_label: String,
    action: String,
    target_type: String,
    target_id: String,
    ip: String,
    request_id: String,
    detail: serde_json::Value,
    created_at: DateTime<Utc>,
}

/// Who did what, newest first (admins and owners).
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{id}/audit",
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "Workspace id"), AuditParams),
    responses(
        (status = 200, description = "Entries, newest first", body = AuditResponse),
        (status = 403, description = "Not an admin", body = railyard_shared::ErrorBody),
        (status = 404, description = "Not a member of this workspace", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<AuditParams>,
) -> AppResult<axum::Json<AuditResponse>> {
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(AppError::bad_request(format!(
                "`limit` must be from 1 to {MAX_LIMIT}"
            )));
        }
    };
    let before: Option<i64> = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => Some(
            cursor
                .parse()
                .map_err(|_| AppError::bad_request("`cursor` is not a cursor this server issued"))?,
        ),
        None => None,
    };
    let mut conn = state.db.get().await?;
    caller.require(&mut conn, id, Role::Admin).await?;

    let mut query = audit_log::table
        .left_join(users::table)
        .filter(audit_log::workspace_id.eq(id))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(audit_log::id.lt(before));
    }
    if let Some(action) = params.action.as_deref().filter(|a| !a.is_empty()) {
        query = match action.strip_suffix(".*") {
            Some(prefix) => {
                query.filter(audit_log::action.like(format!("{}.%", prefix.replace(['%', '_', '\\'], ""))))
            }
            None => query.filter(audit_log::action.eq(action.to_owned())),
        };
    }
    if let Some(actor) = params.actor_id {
        query = query.filter(audit_log::actor_id.eq(actor));
    }
    if let Some(since) = params.since {
        query = query.filter(audit_log::created_at.ge(since));
    }
    if let Some(until) = params.until {
        query = query.filter(audit_log::created_at.lt(until));
    }
    let rows: Vec<Row> = query
        .order(audit_log::id.desc())
        .limit(limit)
        .select((
            audit_log::id,
            audit_log::workspace_id,
            audit_log::actor_id,
            users::email.nullable(),
            audit_log::actor_label,
            audit_log::action,
            audit_log::target_type,
            audit_log::target_id,
            audit_log::ip,
            audit_log::request_id,
            audit_log::detail,
            audit_log::created_at,
        ))
        .load(&mut conn)
        .await?;
    let entries: Vec<AuditEntry> = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            workspace_id: r.workspace_id.map(Into::into),
            actor_id: r.actor_id.map(Into::into),
            actor_email: r.actor_email,
            actor_label: r.actor_label,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            ip: r.ip,
            request_id: r.request_id,
            detail: r.detail,
            created_at: r.created_at,
        })
        .collect();
    let next_cursor = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(axum::Json(AuditResponse { entries, next_cursor }))
}
