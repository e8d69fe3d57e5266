//! Stored logs: a deployment's build log (`/api/v1/deployments/{id}/logs`) and a service's
//! runtime log (`/api/v1/services/{id}/logs`: what its processes printed, as shipped from
//! the monitors' files, and Railyard's own events). Both take the same query: cursor pages,
//! a stream filter, a substring or regular-expression search and a time range, as JSON or
//! as a plain-text download.

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use railyard_shared::{
    auth::Role,
    deployments::{LogLine, LogsResponse},
};
use serde::Deserialize;
use uuid::Uuid;

use super::scope::{authorize_deployment, authorize_service, environment_of, require_log_reader};
use crate::models::log_lines::{LogQuery, Search, deployment_lines, service_lines};
use crate::{
    app::AppState,
    auth::Caller,
    error::{AppError, AppResult},
    extract::{Path, Query},
};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct LogParams {
    /// Service logs only: the environment id (default: `production`).
    pub environment: Option<Uuid>,
    /// Lines after this cursor (default: the oldest kept).
    pub cursor: Option<i64>,
    /// At most this many lines, 1 to 5000 (default 1000).
    pub limit: Option<i64>,
    /// Only lines containing this text (case-insensitive), at most 256 characters.
    pub q: Option<String>,
    /// `true`: `q` is a regular expression (case-insensitive; no back-references).
    pub regex: Option<bool>,
    /// Only `stdout`, `stderr` or `event` lines.
    pub stream: Option<String>,
    /// Only lines at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only lines before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `text` for a plain-text download (`<time> <stream> <text>` per line).
    pub format: Option<String>,
}

/// The query `params` ask for, checked.
fn query_of(params: &LogParams) -> AppResult<LogQuery> {
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
    let search = match params.q.clone().filter(|q| !q.is_empty()) {
        None => None,
        Some(q) if params.regex == Some(true) => {
            // Checked here (a clear message, and no back-references: PostgreSQL runs it).
            regex_syntax::Parser::new().parse(&q).map_err(|err| {
                AppError::bad_request(format!("`q` is not a valid regular expression: {err}"))
            })?;
            Some(Search::Regex(q))
        }
        Some(q) => Some(Search::Substring(q)),
    };
    Ok(LogQuery {
        cursor,
        limit,
        search,
        stream: params.stream.clone(),
        since: params.since,
        until: params.until,
    })
}

/// A query error: a pattern `regex-syntax` accepts but PostgreSQL's engine does not (named
/// groups, `\p{…}`, repetition counts over 255) is the caller's mistake, not a 500.
fn search_error(err: diesel::result::Error) -> AppError {
    if let diesel::result::Error::DatabaseError(_, info) = &err
        && let Some(why) = info.message().strip_prefix("invalid regular expression: ")
    {
        return AppError::bad_request(format!("`q` is not a valid regular expression: {why}"));
    }
    err.into()
}

/// JSON, or with `format=text` a download named `filename`.
fn respond(format: Option<&str>, query: &LogQuery, lines: Vec<LogLine>, filename: &str) -> Response {
    if format == Some("text") {
        let mut body = String::new();
        for line in &lines {
            body.push_str(&format!(
                "{} {} {}\n",
                line.ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                line.stream,
                line.text
            ));
        }
        return (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ),
            ],
            body,
        )
            .into_response();
    }
    let next_cursor = lines.last().map(|l| l.cursor).or(Some(query.cursor));
    axum::Json(LogsResponse { lines, next_cursor }).into_response()
}

fn checked_format(params: &LogParams) -> AppResult<Option<&str>> {
    match params.format.as_deref() {
        None | Some("json") => Ok(None),
        Some("text") => Ok(Some("text")),
        Some(_) => Err(AppError::bad_request(
            "`format` must be `text`, `json` or left out",
        )),
    }
}

/// A service's runtime log: what its processes printed (secrets masked) and Railyard's
/// events (restarts, crashes, failed health checks, go-lives), in order.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/logs",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), LogParams),
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
    Query(params): Query<LogParams>,
) -> AppResult<Response> {
    let query = query_of(&params)?;
    let format = checked_format(&params)?;
    let mut conn = state.db.get().await?;
    let (service, workspace) = authorize_service(&mut conn, &caller, id, Role::Viewer).await?;
    require_log_reader(&mut conn, &caller, workspace).await?;
    let environment = environment_of(&mut conn, service.project_id.uuid(), params.environment).await?;
    let lines = service_lines(&mut conn, id, environment, &query)
        .await
        .map_err(search_error)?;
    let filename = format!("{}-{environment}.log", service.name);
    Ok(respond(format, &query, lines, &filename))
}

/// A deployment's build log (and its deploy steps), in order, from a cursor.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/{id}/logs",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Deployment id"), LogParams),
    responses(
        (status = 200, description = "Lines (or text with `format=text`)", body = LogsResponse),
        (status = 400, description = "A bad filter", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such deployment of yours", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn list_deployment_logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<LogParams>,
) -> AppResult<Response> {
    let query = query_of(&params)?;
    let format = checked_format(&params)?;
    if params.environment.is_some() {
        return Err(AppError::bad_request(
            "`environment` is for service logs: a deployment has one",
        ));
    }
    let mut conn = state.db.get().await?;
    let (_, workspace) = authorize_deployment(&mut conn, &caller, id, Role::Viewer).await?;
    require_log_reader(&mut conn, &caller, workspace).await?;
    let lines = deployment_lines(&mut conn, id, &query)
        .await
        .map_err(search_error)?;
    Ok(respond(format, &query, lines, &format!("deployment-{id}.log")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str, regex: bool) -> LogParams {
        LogParams {
            q: Some(q.to_owned()),
            regex: Some(regex),
            ..LogParams::default()
        }
    }

    #[test]
    fn searches_are_checked() {
        assert!(matches!(
            query_of(&params("GET /", false)).unwrap().search,
            Some(Search::Substring(q)) if q == "GET /"
        ));
        assert!(matches!(
            query_of(&params("^GET /(a|b)+$", true)).unwrap().search,
            Some(Search::Regex(_))
        ));
        let err = query_of(&params("(unclosed", true)).unwrap_err();
        assert!(
            err.message.contains("not a valid regular expression"),
            "{}",
            err.message
        );
        // Back-references would let one query run for ever: refused.
        assert!(query_of(&params(r"(a)\1", true)).is_err());
    }
}
