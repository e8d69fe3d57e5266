//! A `postgres` service's databases: one row per environment, made when the service is
//! added or an environment is created (a branch of the environment it is cloned from),
//! its variables written at once so other services can reference them, the database
//! itself made by the `provision_database` job.

use anyhow::Context as _;
use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use uuid::Uuid;

use super::{DatabaseHost, Placed, Spec, name_of, new_password, safe_name};
use crate::{
    crypto::KeyRing,
    db::DbPool,
    jobs::kinds::{self, ProvisionDatabase},
    models::database::{AppDatabase, Databases, password_aad},
    schema::{app_databases, environments, services},
    variables::{
        PublicUrls,
        store::{self, Op, VarError},
    },
};

/// What writing a database's rows needs.
pub struct Writer<'a> {
    pub keys: &'a KeyRing,
    pub urls: &'a PublicUrls,
    pub driver: &'static str,
    /// Where the host puts new databases.
    pub placed: &'a Placed,
    pub actor: Uuid,
}

/// The variables a database gives its service: the URL and password sealed.
pub fn variables(spec: &Spec, host: &str, port: u16) -> Vec<(&'static str, String, bool)> {
    vec![
        (
            "DATABASE_URL",
            super::url(spec, host, port, Some(&spec.password)),
            true,
        ),
        ("PGHOST", host.to_owned(), false),
        ("PGPORT", port.to_string(), false),
        ("PGUSER", spec.role.clone(), false),
        ("PGPASSWORD", spec.password.clone(), true),
        ("PGDATABASE", spec.name.clone(), false),
    ]
}

/// Writes `database`'s variables onto its service in its environment.
pub async fn write_variables(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    urls: &PublicUrls,
    database: &AppDatabase,
    actor: Uuid,
) -> Result<(), VarError> {
    let spec = spec_of(keys, database).map_err(|e| VarError::Crypto(format!("{e:#}")))?;
    let ops = variables(&spec, &database.host, database.port as u16)
        .into_iter()
        .map(|(name, value, sealed)| Op::Set {
            name: name.to_owned(),
            value: Some(value),
            sealed: Some(sealed),
            create_only: false,
        })
        .collect();
    store::write(
        conn,
        keys,
        urls,
        database.environment_id,
        Some(database.service_id),
        ops,
        actor,
    )
    .await?;
    Ok(())
}

/// The database's name, role and (decrypted) password.
pub fn spec_of(keys: &KeyRing, database: &AppDatabase) -> anyhow::Result<Spec> {
    let password = keys
        .decrypt(&database.password_sealed, &password_aad(database.id))
        .context("the database's password does not decrypt")?;
    Ok(Spec {
        name: database.name.clone(),
        role: database.role_name.clone(),
        password: String::from_utf8(password).context("the database's password")?,
        external_id: database.external_id.clone(),
    })
}

/// Adds the database of `service` in `environment` (inside the caller's transaction): its
/// row, its variables, and the job that makes it; a copy of `branch_from`'s when given.
pub async fn add(
    conn: &mut AsyncPgConnection,
    writer: &Writer<'_>,
    service: Uuid,
    environment: Uuid,
    branch_from: Option<Uuid>,
) -> Result<AppDatabase, VarError> {
    let id = Uuid::new_v4();
    let name = name_of(id);
    let password = new_password(writer.keys).map_err(|e| VarError::Crypto(e.to_string()))?;
    let sealed = writer
        .keys
        .encrypt(password.as_bytes(), &password_aad(id))
        .map_err(|e| VarError::Crypto(e.to_string()))?;
    let database: AppDatabase = diesel::insert_into(app_databases::table)
        .values((
            app_databases::id.eq(id),
            app_databases::service_id.eq(service),
            app_databases::environment_id.eq(environment),
            app_databases::driver.eq(writer.driver),
            app_databases::name.eq(&name),
            app_databases::role_name.eq(&name),
            app_databases::password_sealed.eq(sealed),
            app_databases::host.eq(&writer.placed.host),
            app_databases::port.eq(i32::from(writer.placed.port)),
            app_databases::branched_from.eq(branch_from),
        ))
        .returning(AppDatabase::as_returning())
        .get_result(conn)
        .await?;
    write_variables(conn, writer.keys, writer.urls, &database, writer.actor).await?;
    kinds::enqueue(
        conn,
        &ProvisionDatabase {
            database_id: id,
            actor: writer.actor,
        },
    )
    .await?;
    Ok(database)
}

/// A new `postgres` service: a database in every environment of its project.
pub async fn for_service(
    conn: &mut AsyncPgConnection,
    writer: &Writer<'_>,
    project: Uuid,
    service: Uuid,
) -> Result<usize, VarError> {
    let envs: Vec<Uuid> = environments::table
        .filter(environments::project_id.eq(project))
        .select(environments::id)
        .load(conn)
        .await?;
    for environment in &envs {
        add(conn, writer, service, *environment, None).await?;
    }
    Ok(envs.len())
}

/// A new environment: a database for each `postgres` service of the project, a branch of
/// `clone_from`'s where it has one.
pub async fn for_environment(
    conn: &mut AsyncPgConnection,
    writer: &Writer<'_>,
    project: Uuid,
    environment: Uuid,
    clone_from: Option<Uuid>,
) -> Result<usize, VarError> {
    let databases: Vec<Uuid> = services::table
        .filter(services::project_id.eq(project))
        .filter(services::source_kind.eq("postgres"))
        .select(services::id)
        .load(conn)
        .await?;
    for service in &databases {
        let source = match clone_from {
            Some(from) => Databases::of(conn, *service, from).await?.map(|_| from),
            None => None,
        };
        add(conn, writer, *service, environment, source).await?;
    }
    Ok(databases.len())
}

/// The `provision_database` job: makes the database (a copy of its source's when it is a
/// branch), records where it is, and rewrites its variables when the host placed it
/// elsewhere than foreseen.
pub async fn provision(
    db: &DbPool,
    keys: &KeyRing,
    urls: &PublicUrls,
    host: &dyn DatabaseHost,
    job: &ProvisionDatabase,
    last_attempt: bool,
) -> anyhow::Result<()> {
    let mut conn = db.get().await?;
    let Some(database) = Databases::find(&mut conn, job.database_id).await? else {
        return Ok(());
    };
    if database.state == "ready" {
        return Ok(());
    }
    let result = async {
        let spec = spec_of(keys, &database)?;
        let source = match database.branched_from {
            Some(from) => match Databases::of(&mut conn, database.service_id, from).await? {
                Some(source) if source.state == "ready" => Some(spec_of(keys, &source)?),
                Some(source) if source.state == "provisioning" => {
                    anyhow::bail!("the database it branches from is still being made");
                }
                // Gone or failed: an empty database instead.
                _ => None,
            },
            None => None,
        };
        host.create(&spec, source.as_ref()).await
    }
    .await;
    match result {
        Ok(placed) => {
            conn.transaction::<_, anyhow::Error, _>(async |conn| {
                diesel::update(app_databases::table.find(database.id))
                    .set((
                        app_databases::host.eq(&placed.host),
                        app_databases::port.eq(i32::from(placed.port)),
                        app_databases::external_id.eq(&placed.external_id),
                        app_databases::state.eq("ready"),
                        app_databases::reason.eq(None::<String>),
                    ))
                    .execute(conn)
                    .await?;
                if placed.host != database.host || i32::from(placed.port) != database.port {
                    let moved = AppDatabase {
                        host: placed.host.clone(),
                        port: i32::from(placed.port),
                        ..database.clone()
                    };
                    write_variables(conn, keys, urls, &moved, job.actor).await?;
                }
                Ok(())
            })
            .await?;
            tracing::info!(database = %database.name, "app database ready");
            Ok(())
        }
        Err(err) => {
            if last_attempt {
                Databases::set_state(&mut conn, database.id, "failed", Some(&format!("{err:#}"))).await?;
            }
            Err(err)
        }
    }
}

/// While `paused`, the database's role may not connect (its sessions are ended): a restore
/// in place runs alone.
pub async fn pause_connections(
    host: &dyn DatabaseHost,
    database: &AppDatabase,
    paused: bool,
) -> anyhow::Result<()> {
    let role = safe_name(&database.role_name)?;
    let mut conn = AsyncPgConnection::establish(&host.admin_url("postgres").await?).await?;
    if paused {
        conn.batch_execute(&format!(
            "ALTER ROLE \"{role}\" CONNECTION LIMIT 0; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        ))
        .await?;
    } else {
        conn.batch_execute(&format!("ALTER ROLE \"{role}\" CONNECTION LIMIT 100"))
            .await?;
    }
    Ok(())
}

/// Gives a restored database to the environment's role (it may connect; nobody else).
pub async fn hand_over(host: &dyn DatabaseHost, database: &str, role: &str) -> anyhow::Result<()> {
    let (database, role) = (safe_name(database)?, safe_name(role)?);
    let mut conn = AsyncPgConnection::establish(&host.admin_url("postgres").await?).await?;
    conn.batch_execute(&format!(
        "ALTER DATABASE \"{database}\" OWNER TO \"{role}\"; REVOKE ALL ON DATABASE \"{database}\" FROM PUBLIC"
    ))
    .await?;
    Ok(())
}
