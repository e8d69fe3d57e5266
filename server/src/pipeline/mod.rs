//! The deploy pipeline: fetching a source ([`git`]), deciding how to build and start it
//! ([`detect`]), running the build ([`build`]), and the pipeline's part of the deploy job
//! ([`deploy`]: source → plan → build → release, up to `deploying`; `reuse`: rollbacks and
//! promotions, which run a release built before). It knows nothing of
//! the runtime: the `worker` hands a built release to it.

pub mod build;
mod caches;
pub mod deploy;
pub mod detect;
pub mod git;
mod releases;
mod reuse;
pub mod toolchain;
