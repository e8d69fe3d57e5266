//! The service action job: restart, stop or start a running service.

use std::sync::Arc;

use crate::{
    jobs::kinds::{Attempt, Handle, ServiceAction},
    runtime::releaser::Releaser,
};

pub struct ServiceActionJob {
    pub releaser: Arc<Releaser>,
}

#[async_trait::async_trait]
impl Handle<ServiceAction> for ServiceActionJob {
    async fn handle(&self, job: ServiceAction, _: Attempt) -> anyhow::Result<()> {
        self.releaser
            .act(job.service_id, job.environment_id, job.action)
            .await
    }
}
