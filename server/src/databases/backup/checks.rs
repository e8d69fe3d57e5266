//! What verification compares: every table's row count and a checksum of its rows (the
//! sum of a 60-bit hash of each row's text, so the order rows come back in does not matter).

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::databases::TableCheck;

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
    /// Quoted by the server (`format('%I.%I')`), so safe in a query.
    #[diesel(sql_type = Text)]
    ident: String,
}

#[derive(diesel::QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Text)]
    checksum: String,
}

/// Checks of every ordinary table, by name (in the connection's current snapshot).
pub async fn of(conn: &mut AsyncPgConnection) -> anyhow::Result<Vec<TableCheck>> {
    let names: Vec<Name> = diesel::sql_query(
        "SELECT n.nspname || '.' || c.relname AS name, format('%I.%I', n.nspname, c.relname) AS ident \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1",
    )
    .load(conn)
    .await?;
    let mut checks = Vec::with_capacity(names.len());
    for table in names {
        let sums: Vec<Sum> = diesel::sql_query(format!(
            "SELECT count(*)::bigint AS rows, \
             coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text AS checksum \
             FROM {} t",
            table.ident
        ))
        .load(conn)
        .await?;
        let sum = sums.into_iter().next();
        checks.push(TableCheck {
            name: table.name,
            rows: sum.as_ref().map_or(0, |s| s.rows),
            checksum: sum.map(|s| s.checksum).unwrap_or_default(),
        });
    }
    Ok(checks)
}

/// How `restored` differs from `source`, in words; `None` when equal.
pub fn differences(source: &[TableCheck], restored: &[TableCheck]) -> Option<String> {
    let mut problems = Vec::new();
    for table in source {
        match restored.iter().find(|r| r.name == table.name) {
            None => problems.push(format!("table {} is missing", table.name)),
            Some(r) if r.rows != table.rows => {
                problems.push(format!(
                    "table {} has {} rows, not {}",
                    table.name, r.rows, table.rows
                ));
            }
            Some(r) if r.checksum != table.checksum => {
                problems.push(format!("table {}'s rows differ (checksum)", table.name));
            }
            Some(_) => {}
        }
    }
    for table in restored {
        if !source.iter().any(|s| s.name == table.name) {
            problems.push(format!("table {} was not in the database", table.name));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}
