//! The banner instance admins see on every page while tenant code is not isolated
//! (`RAILYARD_ISOLATION=off`, or a host that cannot isolate and so runs no builds).
//! Like the health badge it keeps its own read: it shows nothing until there is something
//! to say.

use leptos::prelude::*;
use railyard_shared::instance::IsolationMode;

use crate::{api, components::session::use_session};

#[component]
pub fn IsolationBanner() -> impl IntoView {
    let session = use_session();
    let admin = move || session.user().is_some_and(|user| user.is_instance_admin);
    let instance = LocalResource::new(move || async move {
        if admin() {
            api::fetch_instance().await.ok()
        } else {
            None
        }
    });
    move || {
        let isolation = instance.get().flatten()?.isolation;
        let title = match isolation.mode {
            IsolationMode::On => return None,
            IsolationMode::Off => "Tenant isolation is off",
            IsolationMode::Unavailable => "Builds and apps cannot run: this host cannot isolate them",
        };
        Some(view! {
            <div class="banner warning" role="alert" data-testid="isolation-banner">
                <strong>{title}</strong>
                <span>{isolation.detail}</span>
            </div>
        })
    }
}
