//! Stored log lines, queried: a deployment's build log and a service's runtime log, by
//! cursor, stream, substring or regular expression, and time range.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, IntoSql as _, PgTextExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::deployments::LogLine;
use uuid::Uuid;

use crate::schema::{deployment_logs, service_logs};

diesel::infix_operator!(MatchesCi, " ~* ", backend: diesel::pg::Pg);

/// What a search looks for.
#[derive(Debug, Clone)]
pub enum Search {
    Substring(String),
    Regex(String),
}

/// What a query asks for, checked.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub cursor: i64,
    pub limit: i64,
    pub search: Option<Search>,
    pub stream: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl LogQuery {
    /// Every line after `cursor`, at most `limit`.
    pub fn after(cursor: i64, limit: i64) -> Self {
        Self {
            cursor,
            limit,
            ..Self::default()
        }
    }
}

/// A LIKE pattern for a literal substring.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// The lines of one log table that match a [`LogQuery`], oldest first. Both log tables
/// have the same shape (a cursor, `ts`, `stream`, `text`); only the owner filter differs.
macro_rules! matching_lines {
    ($conn:expr, $query:expr, $rows:expr, $table:ident, $cursor:ident) => {{
        let query: &LogQuery = $query;
        let mut rows = $rows
            .filter($table::$cursor.gt(query.cursor))
            .order($table::$cursor.asc())
            .limit(query.limit)
            .select(($table::$cursor, $table::ts, $table::stream, $table::text))
            .into_boxed();
        match &query.search {
            Some(Search::Substring(q)) => rows = rows.filter($table::text.ilike(like_pattern(q))),
            Some(Search::Regex(q)) => {
                rows = rows.filter(MatchesCi::new(
                    $table::text,
                    q.clone().into_sql::<diesel::sql_types::Text>(),
                ))
            }
            None => {}
        }
        if let Some(stream) = &query.stream {
            rows = rows.filter($table::stream.eq(stream.clone()));
        }
        if let Some(since) = query.since {
            rows = rows.filter($table::ts.ge(since));
        }
        if let Some(until) = query.until {
            rows = rows.filter($table::ts.lt(until));
        }
        let rows: Vec<(i64, DateTime<Utc>, String, String)> = rows.load($conn).await?;
        Ok(rows
            .into_iter()
            .map(|(cursor, ts, stream, text)| LogLine {
                cursor,
                ts,
                stream,
                text,
            })
            .collect())
    }};
}

/// The stored lines of a service in an environment that match `query`, oldest first.
pub async fn service_lines(
    conn: &mut AsyncPgConnection,
    service: Uuid,
    environment: Uuid,
    query: &LogQuery,
) -> diesel::QueryResult<Vec<LogLine>> {
    matching_lines!(
        conn,
        query,
        service_logs::table
            .filter(service_logs::service_id.eq(service))
            .filter(service_logs::environment_id.eq(environment)),
        service_logs,
        id
    )
}

/// The build-log lines of a deployment that match `query`, oldest first.
pub async fn deployment_lines(
    conn: &mut AsyncPgConnection,
    deployment: Uuid,
    query: &LogQuery,
) -> diesel::QueryResult<Vec<LogLine>> {
    matching_lines!(
        conn,
        query,
        deployment_logs::table.filter(deployment_logs::deployment_id.eq(deployment)),
        deployment_logs,
        seq
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn substrings_are_literal_in_like() {
        assert_eq!(super::like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
