pub mod auth_card;
pub mod health;
pub mod layout;
pub mod session;
pub mod sidebar;
pub mod signup_form;
pub mod top_bar;
pub mod workspace;
