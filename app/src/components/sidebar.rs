use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_navigate};
use railyard_shared::WorkspaceId;
use railyard_shared::auth::Role;

use crate::components::workspace::use_workspaces;

#[component]
pub fn Sidebar() -> impl IntoView {
    let workspaces = use_workspaces();
    let current = move || workspaces.current();
    view! {
        <aside class="sidebar">
            <A href="/" attr:class="brand">
                <img src="/favicon.svg" alt="" width="28" height="28" />
                <span>"Railyard"</span>
            </A>
            <WorkspaceSwitcher />
            <nav class="nav" aria-label="Main">
                <A href="/" exact=true>
                    <span class="nav-icon" aria-hidden="true">"◈"</span>
                    "Overview"
                </A>
                <A href="/projects">
                    <span class="nav-icon" aria-hidden="true">"▦"</span>
                    "Projects"
                </A>
                {move || {
                    current()
                        .map(|w| {
                            let admin = w.role.at_least(Role::Admin);
                            view! {
                                <A href=format!("/workspaces/{}/members", w.id)>
                                    <span class="nav-icon" aria-hidden="true">"◎"</span>
                                    "Members"
                                </A>
                                <Show when=move || admin>
                                    <A href=format!("/workspaces/{}/audit", w.id)>
                                        <span class="nav-icon" aria-hidden="true">"☰"</span>
                                        "Audit log"
                                    </A>
                                </Show>
                            }
                        })
                }}
                <span class="nav-heading spaced">"You"</span>
                <A href="/account">
                    <span class="nav-icon" aria-hidden="true">"◍"</span>
                    "Account"
                </A>
                <a href="/api/docs" target="_blank" rel="noopener">
                    <span class="nav-icon" aria-hidden="true">"⌘"</span>
                    "API reference"
                    <span class="nav-external" aria-hidden="true">"↗"</span>
                </a>
            </nav>
            <footer class="sidebar-footer">"Self-hosted · no Docker"</footer>
        </aside>
    }
}

#[component]
fn WorkspaceSwitcher() -> impl IntoView {
    let workspaces = use_workspaces();
    let navigate = use_navigate();
    let on_change = move |ev| {
        let value = event_target_value(&ev);
        if value == "new" {
            navigate("/workspaces/new", Default::default());
        } else if let Ok(id) = value.parse::<WorkspaceId>() {
            workspaces.select(id);
            navigate("/", Default::default());
        }
    };
    view! {
        <label class="switcher">
            <span class="nav-heading">"Workspace"</span>
            <select data-testid="workspace-switcher" aria-label="Workspace" on:change=on_change>
                {move || {
                    let current = workspaces.current().map(|w| w.id);
                    let list = workspaces.list.get().and_then(Result::ok).unwrap_or_default();
                    let empty = list.is_empty();
                    view! {
                        <Show when=move || empty>
                            <option value="" selected=true disabled=true>"No workspace yet"</option>
                        </Show>
                        {list
                            .into_iter()
                            .map(|w| {
                                view! {
                                    <option value=w.id.to_string() selected=Some(w.id) == current>{w.name}</option>
                                }
                            })
                            .collect_view()}
                        <option value="new">"＋ New workspace…"</option>
                    }
                }}
            </select>
        </label>
    }
}
