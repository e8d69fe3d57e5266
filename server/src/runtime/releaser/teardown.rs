//! Stopping everything of a deleted service, environment, project or workspace, then
//! removing what it left on disk: releases, uploads, pushed repositories, build caches and
//! app logs (memory cgroups go with the stopped instances).

use std::path::Path;

use super::{Releaser, notify_routes};
use crate::jobs::kinds::Teardown;

impl Releaser {
    /// Carries out a teardown; idempotent (a retry finds less to do).
    pub async fn teardown(&self, job: &Teardown) -> anyhow::Result<()> {
        for instance in &job.instances {
            let _turn = self.lock(instance.service_id, instance.environment_id).await;
            let recorded = instance.pid.zip(instance.start_ticks);
            self.runtime
                .stop_recorded(instance.id, recorded, self.config.stop_grace)
                .await?;
        }
        if !job.instances.is_empty() {
            notify_routes(&mut *self.db.get().await?).await?;
        }
        let layout = &self.layout;
        let mut dirs: Vec<std::path::PathBuf> = Vec::new();
        dirs.extend(job.releases.iter().map(|path| layout.data_dir.join(path)));
        dirs.extend(job.uploads.iter().map(|id| layout.upload(*id)));
        for service in &job.services {
            dirs.push(layout.push_repo(*service));
            dirs.push(layout.cache(*service));
            dirs.push(layout.service_logs(*service));
        }
        for dir in &dirs {
            // Only what lies inside the data directory (paths come from its own rows).
            if dir.starts_with(&layout.data_dir) && !dir.components().any(|c| c.as_os_str() == "..") {
                remove(dir, true).await?;
            }
        }
        for (service, environment) in &job.logs {
            let log = layout.service_log(*service, *environment);
            remove(&log, false).await?;
            for n in 1..=crate::logs::rotate::KEEP {
                remove(&log.with_extension(format!("log.{n}")), false).await?;
            }
        }
        tracing::info!(what = %job.what, instances = job.instances.len(), "tore down what was deleted");
        Ok(())
    }
}

async fn remove(path: &Path, dir: bool) -> anyhow::Result<()> {
    let result = if dir {
        tokio::fs::remove_dir_all(path).await
    } else {
        tokio::fs::remove_file(path).await
    };
    match result {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::from(err).context(format!("removing {}", path.display())))
        }
        _ => Ok(()),
    }
}
