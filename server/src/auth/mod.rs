//! Identity: passwords, sessions, access tokens, cookies, and who is calling.

pub mod api_token;
pub mod caller;
pub mod cookies;
pub mod email;
pub mod jwt;
pub mod password;
pub mod secret;
pub mod session;
pub mod setup;

pub use caller::{Caller, RequestMeta};
