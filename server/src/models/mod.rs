//! Rows and the queries on them, as associated functions returning `QueryResult`.

pub mod deployment;
pub mod invitation;
pub mod member;
pub mod project;
pub mod user;
pub mod workspace;
