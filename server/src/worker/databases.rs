//! Apps' databases: provisioning, backups and restores.

use std::sync::Arc;

use crate::{
    crypto::KeyRing,
    databases::{DatabaseHost, backup::Engine, provision},
    db::DbPool,
    jobs::kinds::{Attempt, BackupDatabase, Handle, ProvisionDatabase, RestoreBackup},
    variables::PublicUrls,
};

#[derive(Clone)]
pub struct DatabaseJobs {
    pub db: DbPool,
    pub keys: Arc<KeyRing>,
    pub urls: PublicUrls,
    pub host: Arc<dyn DatabaseHost>,
    pub backups: Engine,
}

#[async_trait::async_trait]
impl Handle<ProvisionDatabase> for DatabaseJobs {
    async fn handle(&self, job: ProvisionDatabase, attempt: Attempt) -> anyhow::Result<()> {
        provision::provision(&self.db, &self.keys, &self.urls, &*self.host, &job, attempt.last).await
    }
}

#[async_trait::async_trait]
impl Handle<BackupDatabase> for DatabaseJobs {
    async fn handle(&self, job: BackupDatabase, _: Attempt) -> anyhow::Result<()> {
        self.backups.take(job.backup_id).await
    }
}

#[async_trait::async_trait]
impl Handle<RestoreBackup> for DatabaseJobs {
    async fn handle(&self, job: RestoreBackup, _: Attempt) -> anyhow::Result<()> {
        self.backups.restore(job.restore_id).await
    }
}
