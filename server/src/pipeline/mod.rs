//! The deploy pipeline's building blocks: fetching a source ([`git`]) and deciding how to
//! build and start it ([`detect`]). Deployments, build execution and the job that strings
//! them together come next.

pub mod deployment;
pub mod detect;
pub mod git;
