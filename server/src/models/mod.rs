//! Rows and the queries on them, as associated functions returning `QueryResult`.

pub mod database;
pub mod deployment;
pub mod github;
pub mod hosts;
pub mod invitation;
pub mod log_lines;
pub mod member;
pub mod project;
pub mod sandbox_user;
pub mod storage;
pub mod teardown;
pub mod user;
pub mod workspace;
