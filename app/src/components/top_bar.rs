use leptos::prelude::*;
use leptos_router::{
    components::A,
    hooks::{use_location, use_navigate},
};

use crate::{
    api,
    components::{
        crumbs::{Crumb, use_crumbs},
        health::HealthBadge,
        session::use_session,
        workspace::use_workspaces,
    },
};

/// The trail of the pages that set none: named from the path (workspaces by name).
fn path_trail(path: &str, workspace_name: impl Fn(&str) -> String) -> Vec<Crumb> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => vec![Crumb::here("Overview")],
        ["account"] => vec![Crumb::here("Account")],
        ["projects"] => vec![Crumb::here("Projects")],
        ["workspaces", "new"] => vec![Crumb::here("New workspace")],
        ["workspaces", id, page] => {
            let page = match *page {
                "members" => "Members",
                "audit" => "Audit log",
                other => other,
            };
            vec![Crumb::here(workspace_name(id)), Crumb::here(page)]
        }
        // A named page (project, service) sets its own once loaded.
        _ => Vec::new(),
    }
}

#[component]
pub fn TopBar() -> impl IntoView {
    let location = use_location();
    let workspaces = use_workspaces();
    let crumbs = use_crumbs().0;
    let trail = move || {
        crumbs.get().unwrap_or_else(|| {
            path_trail(&location.pathname.get(), |id| {
                id.parse()
                    .ok()
                    .and_then(|id| workspaces.find(id))
                    .map(|w| w.name)
                    .unwrap_or_default()
            })
        })
    };
    view! {
        <header class="top-bar">
            <nav class="crumbs" aria-label="Breadcrumbs" data-testid="crumbs">
                <span class="crumb-root">"railyard"</span>
                {move || trail().into_iter().map(|crumb| view! {
                    <span class="crumb-sep">"/"</span>
                    {match crumb.href {
                        Some(href) => view! { <A href=href attr:class="crumb-link">{crumb.label}</A> }.into_any(),
                        None => view! { <span class="crumb-current">{crumb.label}</span> }.into_any(),
                    }}
                }).collect_view()}
            </nav>
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
    let sign_out = Action::new_local(move |&(): &()| {
        let navigate = navigate.clone();
        async move {
            if let Err(err) = api::logout().await {
                leptos::logging::warn!("sign-out failed: {err}");
            }
            session.signed_out();
            navigate("/login", Default::default());
        }
    });
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
            <button class="button-ghost" type="button" disabled=move || sign_out.pending().get()
                on:click=move |_| { sign_out.dispatch(()); }>"Sign out"</button>
        </div>
    }
}
