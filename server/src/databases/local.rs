//! Apps' databases on a PostgreSQL server Railyard holds the superuser of: a cluster of its
//! own in `<data>/app-postgres` (started on first use, left running across restarts of
//! `serve` so apps keep their databases), or the server of `RAILYARD_APP_POSTGRES_ADMIN_URL`.
//!
//! Every database and role is named by Railyard (`app_<32 hex>`), so names are safe to
//! quote into SQL; passwords are hex. Each database refuses connections from anyone but
//! its own role (`REVOKE ... FROM PUBLIC`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use tokio::sync::OnceCell;

use super::{DatabaseHost, Placed, Spec, Stats, safe_name};
use crate::postgres::EmbeddedPostgres;
use railyard_shared::databases::Table;

/// The server, once known.
#[derive(Debug, Clone)]
struct Server {
    /// Superuser URL (any database; the path is replaced).
    admin: reqwest::Url,
    /// Where `pg_dump` and `pg_restore` of the server's major version are.
    bin: PathBuf,
}

#[derive(Debug)]
pub struct LocalHost {
    source: Source,
    server: OnceCell<Server>,
}

#[derive(Debug)]
enum Source {
    Url(String),
    Embedded { root: PathBuf, bin: Option<PathBuf> },
}

impl LocalHost {
    pub fn new(admin_url: Option<&str>, data_dir: &Path, bin: Option<&Path>) -> Self {
        let source = match admin_url {
            Some(url) => Source::Url(url.to_owned()),
            None => Source::Embedded {
                root: data_dir.join("app-postgres"),
                bin: bin.map(Path::to_owned),
            },
        };
        Self {
            source,
            server: OnceCell::new(),
        }
    }

    async fn server(&self) -> anyhow::Result<&Server> {
        self.server
            .get_or_try_init(|| async {
                match &self.source {
                    Source::Url(url) => {
                        let admin = reqwest::Url::parse(url).context("RAILYARD_APP_POSTGRES_ADMIN_URL")?;
                        let mut conn = AsyncPgConnection::establish(url)
                            .await
                            .context("cannot connect to RAILYARD_APP_POSTGRES_ADMIN_URL")?;
                        let version: Vec<One> =
                            diesel::sql_query("SELECT current_setting('server_version_num') AS value")
                                .load(&mut conn)
                                .await?;
                        let major = version
                            .into_iter()
                            .next()
                            .and_then(|v| v.value.parse::<u32>().ok())
                            .map(|n| n / 10_000)
                            .context("server_version_num")?;
                        Ok(Server {
                            admin,
                            bin: crate::postgres::bin_dir_for_major(major)?,
                        })
                    }
                    Source::Embedded { root, bin } => {
                        // Its owner (`postgres`, when Railyard runs as root) passes through
                        // the data directory to it, as to Railyard's own cluster.
                        if let (Some((_, gid)), Some(data_dir)) =
                            (crate::postgres::cluster_owner()?, root.parent())
                        {
                            std::fs::create_dir_all(data_dir)?;
                            nix::unistd::chown(data_dir, None, Some(gid))?;
                            std::fs::set_permissions(
                                data_dir,
                                std::os::unix::fs::PermissionsExt::from_mode(0o710),
                            )?;
                        }
                        let cluster = EmbeddedPostgres::start_at(root.clone(), bin.as_deref())
                            .await
                            .context("cannot start the PostgreSQL cluster of apps' databases")?;
                        let server = Server {
                            admin: reqwest::Url::parse(&cluster.admin_url())?,
                            bin: cluster.bin_dir().to_owned(),
                        };
                        // Nobody but the superuser connects to the maintenance database.
                        let mut conn = AsyncPgConnection::establish(server.admin.as_str()).await?;
                        conn.batch_execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
                            .await?;
                        cluster.leave_running();
                        Ok(server)
                    }
                }
            })
            .await
    }

    async fn connect(&self, database: &str) -> anyhow::Result<AsyncPgConnection> {
        let url = self.admin_url(database).await?;
        AsyncPgConnection::establish(&url)
            .await
            .with_context(|| format!("cannot connect to database {database}"))
    }

    async fn exists(conn: &mut AsyncPgConnection, name: &str) -> anyhow::Result<bool> {
        let rows: Vec<One> = diesel::sql_query("SELECT datname AS value FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(conn)
            .await?;
        Ok(!rows.is_empty())
    }

    /// Creates or updates the role (login, the given password, no privileges beyond its own).
    async fn ensure_role(conn: &mut AsyncPgConnection, spec: &Spec) -> anyhow::Result<()> {
        let role = safe_name(&spec.role)?;
        let password = safe_password(&spec.password)?;
        conn.batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
             CREATE ROLE \"{role}\"; END IF; END $$; \
             ALTER ROLE \"{role}\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             CONNECTION LIMIT 100 PASSWORD '{password}'"
        ))
        .await?;
        Ok(())
    }

    /// Copies `from` into the new `spec` by dumping and restoring (while `from` is in use).
    async fn dump_restore(&self, from: &Spec, spec: &Spec) -> anyhow::Result<()> {
        let server = self.server().await?;
        let dump = super::tools::dump(&server.bin, &self.admin_url(&from.name).await?, None)?;
        let restore = super::tools::restore(
            &server.bin,
            &self.admin_url(&spec.name).await?,
            Some(&spec.role),
            false,
        )?;
        super::tools::pipe(dump, restore).await
    }
}

#[derive(diesel::QueryableByName)]
struct One {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct TableRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    size: i64,
}

fn safe_password(password: &str) -> anyhow::Result<&str> {
    if password.len() >= 16 && password.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(password)
    } else {
        bail!("a database password must be alphanumeric")
    }
}

#[async_trait::async_trait]
impl DatabaseHost for LocalHost {
    fn driver(&self) -> &'static str {
        "local"
    }

    async fn place(&self) -> anyhow::Result<Placed> {
        let server = self.server().await?;
        Ok(Placed {
            host: server.admin.host_str().unwrap_or("127.0.0.1").to_owned(),
            port: server.admin.port().unwrap_or(5432),
            external_id: None,
        })
    }

    async fn admin_url(&self, database: &str) -> anyhow::Result<String> {
        let mut url = self.server().await?.admin.clone();
        url.set_path(&format!("/{}", safe_name(database)?));
        Ok(url.to_string())
    }

    async fn bin_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(self.server().await?.bin.clone())
    }

    async fn create(&self, spec: &Spec, from: Option<&Spec>) -> anyhow::Result<Placed> {
        let placed = self.place().await?;
        let name = safe_name(&spec.name)?;
        let role = safe_name(&spec.role)?;
        let mut conn = self.connect("postgres").await?;
        Self::ensure_role(&mut conn, spec).await?;
        if Self::exists(&mut conn, name).await? {
            // An earlier attempt made it; a copy that did not finish is made again.
            let done: Vec<One> = diesel::sql_query(
                "SELECT coalesce(shobj_description(oid, 'pg_database'), '') AS value FROM pg_database WHERE datname = $1",
            )
            .bind::<Text, _>(name)
            .load(&mut conn)
            .await?;
            if done
                .into_iter()
                .next()
                .is_some_and(|d| d.value == "railyard:ready")
            {
                return Ok(placed);
            }
            conn.batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .await?;
        }
        match from {
            None => {
                conn.batch_execute(&format!(
                    "CREATE DATABASE \"{name}\" OWNER \"{role}\" TEMPLATE template0 ENCODING 'UTF8'"
                ))
                .await?;
            }
            Some(source) => {
                let source_name = safe_name(&source.name)?;
                let source_role = safe_name(&source.role)?;
                // A file-level copy when nobody is connected to the source; otherwise a dump
                // and restore (PostgreSQL refuses a template in use).
                let copied = conn
                    .batch_execute(&format!(
                        "CREATE DATABASE \"{name}\" OWNER \"{role}\" TEMPLATE \"{source_name}\""
                    ))
                    .await;
                match copied {
                    Ok(()) => {
                        // What the source's role owned is the new role's. REASSIGN also
                        // moves shared objects (the source database itself): moved back.
                        let mut copy = self.connect(name).await?;
                        copy.batch_execute(&format!(
                            "BEGIN; REASSIGN OWNED BY \"{source_role}\" TO \"{role}\"; \
                             ALTER DATABASE \"{source_name}\" OWNER TO \"{source_role}\"; COMMIT"
                        ))
                        .await?;
                    }
                    Err(err) if err.to_string().contains("being accessed by other users") => {
                        tracing::info!(
                            database = name,
                            from = source_name,
                            "source in use: copying by dump and restore"
                        );
                        conn.batch_execute(&format!(
                            "CREATE DATABASE \"{name}\" OWNER \"{role}\" TEMPLATE template0 ENCODING 'UTF8'"
                        ))
                        .await?;
                        conn.batch_execute(&format!("REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC"))
                            .await?;
                        self.dump_restore(source, spec).await?;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
        conn.batch_execute(&format!(
            "REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC; \
             COMMENT ON DATABASE \"{name}\" IS 'railyard:ready'"
        ))
        .await?;
        Ok(placed)
    }

    async fn remove(&self, spec: &Spec) -> anyhow::Result<()> {
        let name = safe_name(&spec.name)?;
        let role = safe_name(&spec.role)?;
        let mut conn = self.connect("postgres").await?;
        // One statement at a time: DROP DATABASE refuses to run inside a transaction block.
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        conn.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""))
            .await?;
        Ok(())
    }

    async fn create_scratch(&self, name: &str) -> anyhow::Result<()> {
        let name = safe_name(name)?;
        let mut conn = self.connect("postgres").await?;
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        conn.batch_execute(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        ))
        .await?;
        conn.batch_execute(&format!("REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC"))
            .await?;
        Ok(())
    }

    async fn start_if_set_up(&self) -> anyhow::Result<()> {
        if matches!(&self.source, Source::Embedded { root, .. } if root.join("data/PG_VERSION").is_file()) {
            self.server().await?;
        }
        Ok(())
    }

    async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        let name = safe_name(name)?;
        let mut conn = self.connect("postgres").await?;
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        Ok(())
    }

    async fn stats(&self, spec: &Spec) -> anyhow::Result<Stats> {
        let name = safe_name(&spec.name)?;
        let mut conn = self.connect("postgres").await?;
        let size: Vec<Count> = diesel::sql_query("SELECT pg_database_size($1)::bigint AS n")
            .bind::<Text, _>(name)
            .load(&mut conn)
            .await?;
        let connections: Vec<Count> =
            diesel::sql_query("SELECT count(*)::bigint AS n FROM pg_stat_activity WHERE datname = $1")
                .bind::<Text, _>(name)
                .load(&mut conn)
                .await?;
        let mut db = self.connect(name).await?;
        // Exact counts for tables of up to ~8 MB, PostgreSQL's estimate beyond.
        let tables: Vec<TableRow> = diesel::sql_query(
            "SELECT n.nspname || '.' || c.relname AS name, \
             CASE WHEN c.relpages < 1000 THEN \
               (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint \
             ELSE greatest(c.reltuples, 0)::bigint END AS rows, \
             pg_total_relation_size(c.oid)::bigint AS size \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1 LIMIT 500",
        )
        .load(&mut db)
        .await?;
        Ok(Stats {
            size_bytes: size.into_iter().next().map_or(0, |s| s.n),
            connections: connections.into_iter().next().map_or(0, |c| c.n),
            tables: tables
                .into_iter()
                .map(|t| Table {
                    name: t.name,
                    rows: t.rows,
                    size_bytes: t.size,
                })
                .collect(),
        })
    }
}
