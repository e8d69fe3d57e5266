//! The deploy pipeline: fetching a source ([`git`]), deciding how to build and start it
//! ([`detect`]), running the build ([`build`], logged by [`log`]), the deployment state
//! machine ([`deployment`]), a deployment's [`variables`], and the job that strings them
//! together ([`deploy`]).

pub mod build;
pub mod deploy;
pub mod deployment;
pub mod detect;
pub mod git;
pub mod log;
pub mod variables;
