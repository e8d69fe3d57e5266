//! The deploy job: the pipeline builds the deployment (or re-releases one), then the
//! runtime takes it live.

use std::sync::Arc;

use crate::{
    jobs::kinds::{Attempt, Deploy, Handle},
    pipeline::deploy::{Next, Pipeline},
    runtime::releaser::Releaser,
};

pub struct DeployJob {
    pub pipeline: Pipeline,
    /// Starts built releases; without one, deployments stop at `deploying` (builds only).
    pub releaser: Option<Arc<Releaser>>,
}

impl DeployJob {
    async fn deploy(&self, id: uuid::Uuid) -> anyhow::Result<()> {
        let Next::GoLive { pair, log } = self.pipeline.run(id).await? else {
            return Ok(());
        };
        let Some(releaser) = &self.releaser else {
            return match log {
                Some(log) => log.close().await,
                None => Ok(()),
            };
        };
        let log = match log {
            Some(log) => log,
            None => self.pipeline.log(id).await?,
        };
        let result = releaser.go_live(id, pair, &log).await;
        log.close().await?;
        result
    }
}

#[async_trait::async_trait]
impl Handle<Deploy> for DeployJob {
    async fn handle(&self, job: Deploy, attempt: Attempt) -> anyhow::Result<()> {
        let result = self.deploy(job.deployment_id).await;
        if let Err(err) = &result
            && attempt.last
        {
            self.pipeline.fail_in_flight(job.deployment_id, err).await?;
        }
        result
    }
}
