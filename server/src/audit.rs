//! The audit log: who did what to which target, from where, in which request. The table
//! is append-only (a trigger refuses UPDATE, DELETE and TRUNCATE).

use diesel::ExpressionMethods as _;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::{auth::RequestMeta, schema::audit_log};

#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub workspace_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    /// What identifies the actor when there is no account (e.g. the email of a failed sign-in).
    pub actor_label: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: String,
    pub detail: serde_json::Value,
}

impl<'a> Entry<'a> {
    pub fn new(action: &'a str) -> Self {
        Self {
            action,
            ..Default::default()
        }
    }

    pub fn workspace(self, id: Uuid) -> Self {
        Self {
            workspace_id: Some(id),
            ..self
        }
    }

    pub fn actor(self, id: Uuid) -> Self {
        Self {
            actor_id: Some(id),
            ..self
        }
    }

    pub fn actor_opt(self, id: Option<Uuid>) -> Self {
        Self { actor_id: id, ..self }
    }

    /// Names the actor when there is no account (the email of a failed sign-in).
    pub fn label(self, label: &'a str) -> Self {
        Self {
            actor_label: label,
            ..self
        }
    }

    pub fn target(self, kind: &'a str, id: impl ToString) -> Self {
        Self {
            target_type: kind,
            target_id: id.to_string(),
            ..self
        }
    }

    pub fn detail(self, detail: serde_json::Value) -> Self {
        Self { detail, ..self }
    }
}

/// Appends one entry; call it inside the transaction of the change it records.
pub async fn record(
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    entry: Entry<'_>,
) -> diesel::QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::workspace_id.eq(entry.workspace_id),
            audit_log::actor_id.eq(entry.actor_id),
            audit_log::actor_label.eq(entry.actor_label),
            audit_log::action.eq(entry.action),
            audit_log::target_type.eq(entry.target_type),
            audit_log::target_id.eq(entry.target_id),
            audit_log::ip.eq(&meta.ip),
            audit_log::request_id.eq(&meta.request_id),
            audit_log::detail.eq(if entry.detail.is_null() {
                serde_json::json!({})
            } else {
                entry.detail
            }),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
