//! A service's runtime log (what its processes printed, as shipped from the monitors' files):
//! cursor pages, a stream filter, substring search and a time range, as JSON or as a
//! plain-text download.

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, PgTextExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::{
    auth::Role,
    deployments::{LogLine, LogsResponse},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{deployments::environment_of, services::authorize_service};
use crate::{
    app::AppState,
    auth::Caller,
    error::{AppError, AppResult},
    extract::{Path, Query},
    schema::service_logs,
};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ServiceLogParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
    /// Lines after this cursor (default: the oldest kept).
    pub cursor: Option<i64>,
    /// At most this many lines, 1 to 5000 (default 1000).
    pub limit: Option<i64>,
    /// Only lines containing this text (case-insensitive), at most 256 characters.
    pub q: Option<String>,
    /// Only `stdout`, `stderr` or `event` lines.
    pub stream: Option<String>,
    /// Only lines at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only lines before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `text` for a plain-text download (`<time> <stream> <text>` per line).
    pub format: Option<String>,
}

/// What a query asks for, checked.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub cursor: i64,
    pub limit: i64,
    pub q: Option<String>,
    pub stream: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl LogQuery {
    fn from(params: &ServiceLogParams) -> AppResult<Self> {
        let limit = params.limit.unwrap_or(1000);
        if !(1..=5000).contains(&limit) {
            return Err(AppError::bad_request("`limit` must be from 1 to 5000"));
        }
        let cursor = params.cursor.unwrap_or(0);
        if cursor < 0 {
            return Err(AppError::bad_request("`cursor` must not be negative"));
        }
        if let Some(stream) = &params.stream
            && !["stdout", "stderr", "event"].contains(&stream.as_str())
        {
            return Err(AppError::bad_request("`stream` must be stdout, stderr or event"));
        }
        if params.q.as_ref().is_some_and(|q| q.chars().count() > 256) {
            return Err(AppError::bad_request("`q` is longer than 256 characters"));
        }
        if let (Some(since), Some(until)) = (params.since, params.until)
            && since > until
        {
            return Err(AppError::bad_request("`since` is after `until`"));
        }
        Ok(Self {
            cursor,
            limit,
            q: params.q.clone().filter(|q| !q.is_empty()),
            stream: params.stream.clone(),
            since: params.since,
            until: params.until,
        })
    }
}

/// The stored lines of a service in an environment that match `query`, oldest first.
pub async fn service_lines(
    conn: &mut AsyncPgConnection,
    service: Uuid,
    environment: Uuid,
    query: &LogQuery,
) -> diesel::QueryResult<Vec<LogLine>> {
    let mut rows = service_logs::table
        .filter(service_logs::service_id.eq(service))
        .filter(service_logs::environment_id.eq(environment))
        .filter(service_logs::id.gt(query.cursor))
        .order(service_logs::id.asc())
        .limit(query.limit)
        .select((
            service_logs::id,
            service_logs::ts,
            service_logs::stream,
            service_logs::text,
        ))
        .into_boxed();
    if let Some(q) = &query.q {
        // A substring: LIKE's own wildcards in it are literal.
        let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        rows = rows.filter(service_logs::text.ilike(format!("%{escaped}%")));
    }
    if let Some(stream) = &query.stream {
        rows = rows.filter(service_logs::stream.eq(stream.clone()));
    }
    if let Some(since) = query.since {
        rows = rows.filter(service_logs::ts.ge(since));
    }
    if let Some(until) = query.until {
        rows = rows.filter(service_logs::ts.lt(until));
    }
    let rows: Vec<(i64, DateTime<Utc>, String, String)> = rows.load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(cursor, ts, stream, text)| LogLine {
            cursor,
            ts,
            stream,
            text,
        })
        .collect())
}

/// A service's runtime log: what its processes printed (secrets masked), in order.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/logs",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), ServiceLogParams),
    responses(
        (status = 200, description = "Lines (or text with `format=text`)", body = LogsResponse),
        (status = 400, description = "A bad filter", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_service_logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<ServiceLogParams>,
) -> AppResult<Response> {
    let query = LogQuery::from(&params)?;
    let text = match params.format.as_deref() {
        None => false,
        Some("text") => true,
        Some(_) => return Err(AppError::bad_request("`format` must be `text` or left out")),
    };
    let mut conn = state.db.get().await?;
    let (service, _) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    let environment = environment_of(&mut conn, service.project_id, params.environment).await?;
    let lines = service_lines(&mut conn, id, environment, &query).await?;
    if text {
        let mut body = String::new();
        for line in &lines {
            body.push_str(&format!(
                "{} {} {}\n",
                line.ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                line.stream,
                line.text
            ));
        }
        let disposition = format!("attachment; filename=\"{}-{environment}.log\"", service.name);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            body,
        )
            .into_response());
    }
    let next_cursor = lines.last().map(|l| l.cursor).or(Some(query.cursor));
    Ok(axum::Json(LogsResponse { lines, next_cursor }).into_response())
}
