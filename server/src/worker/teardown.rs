//! The teardown job: stop and remove what a deletion left behind (processes, files, apps'
//! databases and their backups).

use std::sync::Arc;

use crate::{
    databases::{DatabaseHost, Spec, backup::store::BackupStore},
    jobs::kinds::{Attempt, Handle, Teardown},
    runtime::releaser::Releaser,
};

pub struct TeardownJob {
    pub releaser: Arc<Releaser>,
    pub databases: Arc<dyn DatabaseHost>,
    pub store: Arc<dyn BackupStore>,
}

#[async_trait::async_trait]
impl Handle<Teardown> for TeardownJob {
    async fn handle(&self, job: Teardown, _: Attempt) -> anyhow::Result<()> {
        // Apps first: nothing of theirs holds a connection while their database goes.
        self.releaser.teardown(&job).await?;
        for database in &job.databases {
            let spec = Spec {
                name: database.name.clone(),
                role: database.role.clone(),
                password: String::new(),
                external_id: database.external_id.clone(),
            };
            self.databases.remove(&spec).await?;
            tracing::info!(database = %database.name, "dropped an app database");
        }
        for key in &job.backup_objects {
            self.store.delete(key).await?;
        }
        Ok(())
    }
}
