//! The teardown job: stop and remove what a deletion left behind.

use std::sync::Arc;

use crate::{
    jobs::kinds::{Attempt, Handle, Teardown},
    runtime::releaser::Releaser,
};

pub struct TeardownJob {
    pub releaser: Arc<Releaser>,
}

#[async_trait::async_trait]
impl Handle<Teardown> for TeardownJob {
    async fn handle(&self, job: Teardown, _: Attempt) -> anyhow::Result<()> {
        self.releaser.teardown(&job).await
    }
}
