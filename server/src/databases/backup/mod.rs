//! Backups of apps' databases: `pg_dump -Fc` in one snapshot, sealed chunk by chunk
//! ([`crypt`]) into a store ([`store`]), then **verified**: restored into a scratch
//! database and compared table by table with the source as it was in the dump's snapshot
//! ([`checks`]). A backup that fails anywhere is marked failed with the reason; earlier
//! backups are never touched. Restores authenticate the whole file before anything is
//! written to a database.

pub mod checks;
pub mod crypt;
pub mod retention;
pub mod store;

use std::{path::PathBuf, sync::Arc};

use anyhow::Context as _;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use railyard_shared::databases::TableCheck;
use tokio::io::BufReader;
use uuid::Uuid;

use self::{crypt::Header, store::BackupStore};
use super::{DatabaseHost, tools};
use crate::{
    crypto::KeyRing,
    db::DbPool,
    jobs::kinds::{self, BackupDatabase},
    models::database::{AppDatabase, BackupRow, Backups, Databases, Restores},
};

/// Takes, verifies, prunes and restores backups.
#[derive(Debug, Clone)]
pub struct Engine {
    pub db: DbPool,
    pub keys: Arc<KeyRing>,
    pub host: Arc<dyn DatabaseHost>,
    pub store: Arc<dyn BackupStore>,
    /// Scratch files (a backup before it is stored, a download before it is read).
    pub spool: PathBuf,
}

/// The object key of a backup.
pub fn object_key(database: Uuid, backup: Uuid) -> String {
    format!("{database}/{backup}.rybk")
}

pub fn header_of(backup: &BackupRow, database: &AppDatabase) -> Header {
    Header {
        database: database.name.clone(),
        backup: backup.id,
        created_at: backup.created_at,
    }
}

/// Queues a backup of `database` (inside the caller's transaction).
pub async fn request(
    conn: &mut AsyncPgConnection,
    store: &dyn BackupStore,
    database: &AppDatabase,
    trigger: &str,
    by: Option<Uuid>,
) -> diesel::QueryResult<BackupRow> {
    let id = Uuid::new_v4();
    let row = Backups::insert(
        conn,
        id,
        database.id,
        trigger,
        store.kind(),
        &object_key(database.id, id),
        by,
    )
    .await?;
    kinds::enqueue(conn, &BackupDatabase { backup_id: id }).await?;
    Ok(row)
}

#[derive(diesel::QueryableByName)]
struct One {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Dumps `url` in one snapshot into the sealed file `out`; returns its size and the
/// tables as they were in that snapshot.
pub async fn dump_sealed(
    keys: &KeyRing,
    bin: &std::path::Path,
    url: &str,
    header: &Header,
    out: &std::path::Path,
) -> anyhow::Result<(u64, Vec<TableCheck>)> {
    let mut source = AsyncPgConnection::establish(url)
        .await
        .context("cannot connect to the database")?;
    source
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let snapshot: Vec<One> = diesel::sql_query("SELECT pg_export_snapshot() AS value")
        .load(&mut source)
        .await?;
    let snapshot = snapshot
        .into_iter()
        .next()
        .map(|s| s.value)
        .context("no snapshot")?;
    let mut dump = tools::dump(bin, url, Some(&snapshot))?;
    let stdout = dump.stdout.take().context("pg_dump's stdout")?;
    let file = tokio::fs::File::create(out)
        .await
        .with_context(|| format!("cannot write {}", out.display()))?;
    let (sealed, checked) = tokio::join!(
        crypt::seal(
            keys,
            header,
            stdout,
            tokio::io::BufWriter::with_capacity(1 << 20, file)
        ),
        checks::of(&mut source)
    );
    tools::finish("pg_dump", dump).await?;
    let size = sealed?;
    let checked = checked.context("reading the tables")?;
    source.batch_execute("COMMIT").await?;
    Ok((size, checked))
}

/// Restores the sealed file at `path` into `url` (objects owned by `role`; `clean` drops
/// what exists first). Nothing is committed unless the whole file authenticates: the
/// restore is one transaction, cut off at the first chunk that fails.
pub async fn restore_sealed(
    keys: &KeyRing,
    bin: &std::path::Path,
    path: &std::path::Path,
    header: Option<&Header>,
    url: &str,
    role: Option<&str>,
    clean: bool,
) -> anyhow::Result<Header> {
    let mut restore = tools::restore(bin, url, role, clean)?;
    let stdin = restore.stdin.take().context("pg_restore's stdin")?;
    let file = tokio::fs::File::open(path).await?;
    match crypt::open(keys, header, BufReader::with_capacity(1 << 20, file), stdin).await {
        Ok(header) => {
            tools::finish("pg_restore", restore).await?;
            Ok(header)
        }
        Err(err) => {
            let _ = restore.kill().await;
            Err(err)
        }
    }
}

/// Checks the whole file authenticates, writing nothing anywhere.
pub async fn authenticate(
    keys: &KeyRing,
    path: &std::path::Path,
    header: Option<&Header>,
) -> anyhow::Result<Header> {
    let file = tokio::fs::File::open(path).await?;
    crypt::open(
        keys,
        header,
        BufReader::with_capacity(1 << 20, file),
        tokio::io::sink(),
    )
    .await
}

impl Engine {
    fn spool_file(&self, name: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.spool)
            .with_context(|| format!("cannot create {}", self.spool.display()))?;
        Ok(self.spool.join(name))
    }

    /// The backup job: dump, seal, store, verify, prune. Failures are the backup's outcome.
    pub async fn take(&self, backup_id: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let Some(backup) = Backups::find(&mut conn, backup_id).await? else {
            return Ok(());
        };
        if backup.state != "queued" {
            return Ok(());
        }
        let Some(database) = Databases::find(&mut conn, backup.database_id).await? else {
            return Ok(());
        };
        Backups::start(&mut conn, backup.id).await?;
        drop(conn);
        let outcome = self.take_and_verify(&backup, &database).await;
        let mut conn = self.db.get().await?;
        match outcome {
            Ok((size, tables)) => {
                Backups::verified(&mut conn, backup.id, size as i64, &tables).await?;
                tracing::info!(backup = %backup.id, database = %database.name, size, "backup verified");
                drop(conn);
                if let Err(err) = self.prune(&database).await {
                    tracing::warn!(database = %database.name, error = %format!("{err:#}"), "pruning backups failed");
                }
            }
            Err((size, err)) => {
                let reason = format!("{err:#}");
                tracing::warn!(backup = %backup.id, database = %database.name, reason, "backup failed");
                Backups::failed(&mut conn, backup.id, size.map(|s| s as i64), &reason).await?;
            }
        }
        Ok(())
    }

    async fn take_and_verify(
        &self,
        backup: &BackupRow,
        database: &AppDatabase,
    ) -> Result<(u64, Vec<TableCheck>), (Option<u64>, anyhow::Error)> {
        let header = header_of(backup, database);
        let bin = self.host.bin_dir().await.map_err(|e| (None, e))?;
        let url = self.host.admin_url(&database.name).await.map_err(|e| (None, e))?;
        let spool = self
            .spool_file(&format!("{}.rybk", backup.id))
            .map_err(|e| (None, e))?;
        let dumped = dump_sealed(&self.keys, &bin, &url, &header, &spool).await;
        let (size, source_tables) = match dumped {
            Ok(done) => done,
            Err(err) => {
                let _ = std::fs::remove_file(&spool);
                return Err((None, err.context("the dump failed")));
            }
        };
        let stored = self.store.put(&backup.object_key, &spool).await;
        let _ = std::fs::remove_file(&spool);
        stored.map_err(|e| (Some(size), e))?;
        let restored = self
            .verify(backup, &header)
            .await
            .map_err(|e| (Some(size), e.context("verification failed")))?;
        match checks::differences(&source_tables, &restored) {
            None => Ok((size, source_tables)),
            Some(why) => Err((
                Some(size),
                anyhow::anyhow!("verification failed: the restored copy differs: {why}"),
            )),
        }
    }

    /// Restores the stored object into a scratch database and reads its tables.
    async fn verify(&self, backup: &BackupRow, header: &Header) -> anyhow::Result<Vec<TableCheck>> {
        let scratch = format!("verify_{}", backup.id.simple());
        let fetched = self
            .store
            .fetch(
                &backup.object_key,
                &self.spool_file(&format!("{}.fetch", backup.id))?,
            )
            .await?;
        self.host.create_scratch(&scratch).await?;
        let result = async {
            let url = self.host.admin_url(&scratch).await?;
            let bin = self.host.bin_dir().await?;
            restore_sealed(&self.keys, &bin, &fetched, Some(header), &url, None, false).await?;
            let mut conn = AsyncPgConnection::establish(&url).await?;
            checks::of(&mut conn).await
        }
        .await;
        if fetched.starts_with(&self.spool) {
            let _ = std::fs::remove_file(&fetched);
        }
        if let Err(err) = self.host.drop_database(&scratch).await {
            tracing::warn!(database = scratch, error = %format!("{err:#}"), "could not drop a scratch database");
        }
        result
    }

    /// Removes what the database's retention no longer keeps.
    pub async fn prune(&self, database: &AppDatabase) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let all = Backups::of_database(&mut conn, database.id, 10_000).await?;
        let settings = Databases::settings(&mut conn, database.id).await?;
        let gone = retention::expired(&all, settings.keep_daily, settings.keep_weekly);
        for backup in &gone {
            self.store.delete(&backup.object_key).await?;
        }
        let ids: Vec<Uuid> = gone.iter().map(|b| b.id).collect();
        Backups::pruned(&mut conn, &ids).await?;
        Ok(())
    }

    /// The restore job.
    pub async fn restore(&self, restore_id: Uuid) -> anyhow::Result<()> {
        let mut conn = self.db.get().await?;
        let Some(restore) = Restores::find(&mut conn, restore_id).await? else {
            return Ok(());
        };
        if restore.state != "queued" {
            return Ok(());
        }
        let backup = Backups::find(&mut conn, restore.backup_id)
            .await?
            .context("the backup is gone")?;
        let database = Databases::find(&mut conn, backup.database_id)
            .await?
            .context("the database is gone")?;
        Restores::start(&mut conn, restore.id).await?;
        drop(conn);
        let outcome = self
            .restore_into(
                &backup,
                &database,
                &restore.database_name,
                restore.target == "in_place",
            )
            .await;
        let mut conn = self.db.get().await?;
        match outcome {
            Ok(tables) => Restores::finish(&mut conn, restore.id, "done", None, &tables).await?,
            Err(err) => {
                let reason = format!("{err:#}");
                tracing::warn!(restore = %restore.id, reason, "restore failed");
                Restores::finish(&mut conn, restore.id, "failed", Some(&reason), &[]).await?;
            }
        }
        Ok(())
    }

    async fn restore_into(
        &self,
        backup: &BackupRow,
        database: &AppDatabase,
        target: &str,
        in_place: bool,
    ) -> anyhow::Result<Vec<TableCheck>> {
        let header = header_of(backup, database);
        let spool = self.spool_file(&format!("{}.restore", backup.id))?;
        let fetched = self.store.fetch(&backup.object_key, &spool).await?;
        let result = async {
            // The whole file first: a tampered backup restores nothing.
            authenticate(&self.keys, &fetched, Some(&header)).await?;
            let bin = self.host.bin_dir().await?;
            let url = self.host.admin_url(target).await?;
            let role = super::safe_name(&database.role_name)?;
            if in_place {
                super::provision::pause_connections(&*self.host, database, true).await?;
                let restored =
                    restore_sealed(&self.keys, &bin, &fetched, Some(&header), &url, Some(role), true).await;
                super::provision::pause_connections(&*self.host, database, false).await?;
                restored?;
            } else {
                // The environment's role owns it (and its `public` schema) from the start.
                self.host.create_scratch(target).await?;
                super::provision::hand_over(&*self.host, target, role).await?;
                let restored =
                    restore_sealed(&self.keys, &bin, &fetched, Some(&header), &url, Some(role), false).await;
                if let Err(err) = restored {
                    let _ = self.host.drop_database(target).await;
                    return Err(err);
                }
            }
            let mut conn = AsyncPgConnection::establish(&url).await?;
            checks::of(&mut conn).await
        }
        .await;
        if fetched.starts_with(&self.spool) {
            let _ = std::fs::remove_file(&fetched);
        }
        result
    }
}
