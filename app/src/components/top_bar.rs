use leptos::{prelude::*, task::spawn_local};
use leptos_router::hooks::{use_location, use_navigate};

use crate::{
    api,
    components::{health::HealthBadge, session::use_session, workspace::use_workspaces},
};

#[component]
pub fn TopBar() -> impl IntoView {
    let location = use_location();
    let workspaces = use_workspaces();
    // Readable breadcrumbs: workspace names instead of ids.
    let crumb = move || {
        let path = location.pathname.get();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            [""] => "Overview".to_owned(),
            ["account"] => "Account".to_owned(),
            ["workspaces", "new"] => "New workspace".to_owned(),
            ["workspaces", id, page] => {
                let name = id
                    .parse()
                    .ok()
                    .and_then(|id| workspaces.find(id))
                    .map(|w| w.name)
                    .unwrap_or_default();
                let page = match *page {
                    "members" => "Members",
                    "audit" => "Audit log",
                    other => other,
                };
                format!("{name} / {page}")
            }
            _ => path.clone(),
        }
    };
    view! {
        <header class="top-bar">
            <div class="crumbs">
                <span class="crumb-root">"railyard"</span>
                <span class="crumb-sep">"/"</span>
                <span class="crumb-current">{crumb}</span>
            </div>
            <div class="top-actions">
                <HealthBadge />
                <UserMenu />
            </div>
        </header>
    }
}

#[component]
fn UserMenu() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let sign_out = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            if let Err(err) = api::logout().await {
                leptos::logging::warn!("sign-out failed: {err}");
            }
            session.signed_out();
            navigate("/login", Default::default());
        });
    };
    let name = move || session.user().map(|u| u.name).unwrap_or_default();
    let initial = move || {
        name()
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default()
    };
    view! {
        <div class="user-menu" data-testid="user-menu">
            <span class="avatar" aria-hidden="true">{initial}</span>
            <span class="user-name">{name}</span>
            <button class="button-ghost" type="button" on:click=sign_out>"Sign out"</button>
        </div>
    }
}
