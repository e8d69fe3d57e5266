//! The Railyard dashboard: a Leptos single-page app, client-side rendered.

mod api;
mod app;
mod components;
mod format;
mod live;
mod pages;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
