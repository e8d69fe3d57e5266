//! `/workspaces/:id/audit`: who did what, newest first, filterable by action.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use railyard_shared::WorkspaceId;
use railyard_shared::auth::AuditEntry;

use crate::{api, components::auth_card::FormError};

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_params_map();
    let workspace_id = move || {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<WorkspaceId>().ok())
    };
    let action = RwSignal::new(String::new());
    let entries = RwSignal::new(Vec::<AuditEntry>::new());
    let cursor = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    // A read that pages: the first page (again, after a filter), or the next one appended.
    let fetch = Action::new_local(move |&(workspace, more): &(WorkspaceId, bool)| {
        let after = if more { cursor.get_untracked() } else { None };
        async move {
            match api::list_audit(workspace, action.get_untracked(), after).await {
                Ok(page) => {
                    if more {
                        entries.try_update(|list| list.extend(page.entries));
                    } else {
                        entries.try_set(page.entries);
                    }
                    cursor.try_set(page.next_cursor);
                    error.try_set(None);
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let loading = fetch.pending();
    let load = move |more: bool| {
        if let Some(id) = workspace_id() {
            fetch.dispatch((id, more));
        }
    };
    // Load on open and whenever the workspace changes.
    Effect::new(move || {
        workspace_id();
        untrack(|| load(false));
    });

    view! {
        <section class="page">
            <header class="page-header">
                <div>
                    <h1>"Audit log"</h1>
                    <p class="muted">"Every change and sign-in in this workspace. Entries cannot be edited or deleted."</p>
                </div>
            </header>
            <form class="row filter" on:submit=move |ev| { ev.prevent_default(); load(false); }>
                <input type="search" placeholder="Filter by action, e.g. member.* or invitation.create" aria-label="Filter by action" bind:value=action />
                <button class="button-ghost" type="submit" disabled=move || loading.get()>"Filter"</button>
            </form>
            <FormError error=error.into() />
            <div class="card table-card">
                <table class="table" data-testid="audit">
                    <thead><tr><th>"Time"</th><th>"Action"</th><th>"Actor"</th><th class="wide-only">"Target"</th><th class="wide-only">"Address"</th></tr></thead>
                    <tbody>
                        <For each=move || entries.get() key=|e| e.id let:entry>
                            <tr>
                                <td class="mono nowrap time-cell">{entry.created_at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                                <td><span class="tag">{entry.action.clone()}</span></td>
                                <td class="actor-cell">{entry.actor_email.clone().unwrap_or_else(|| entry.actor_label.clone())}</td>
                                <td class="mono wide-only">{entry.target_type.clone()} " " {entry.target_id.chars().take(8).collect::<String>()}</td>
                                <td class="mono muted wide-only">{entry.ip.clone()}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
                <Show when=move || entries.with(Vec::is_empty) && !loading.get()>
                    <p class="muted empty">"Nothing recorded matches."</p>
                </Show>
            </div>
            <Show when=move || cursor.get().is_some()>
                <button class="button-ghost" type="button" disabled=move || loading.get() on:click=move |_| load(true)>"Load older entries"</button>
            </Show>
        </section>
    }
}
