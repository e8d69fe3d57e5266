pub mod health;
pub mod layout;
pub mod sidebar;
pub mod top_bar;
