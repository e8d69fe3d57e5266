//! A `postgres` service's page: its database in this environment (state, where to connect,
//! the password revealed on request, tables with rows and sizes) and its backups (taken
//! on demand or on schedule, each verified by a restore).

use leptos::prelude::*;
use railyard_shared::{
    EnvironmentId, ServiceId,
    databases::{Backup, Database},
};

use super::restore::RestorePanel;
use crate::{api::databases as api, components::toast::use_toasts, format};

fn state_badge(state: &str) -> &'static str {
    match state {
        "ready" | "verified" => "badge badge-ok",
        "failed" => "badge badge-down",
        _ => "badge badge-pending",
    }
}

#[component]
pub fn DatabaseTab(
    service: ServiceId,
    name: String,
    environment: EnvironmentId,
    can_write: Signal<bool>,
    can_admin: Signal<bool>,
) -> impl IntoView {
    let toasts = use_toasts();
    let database = LocalResource::new(move || api::find_database(service, environment));
    // Until it is ready, read it again every 2 s.
    let timer = set_interval_with_handle(
        move || {
            if database
                .get_untracked()
                .and_then(Result::ok)
                .is_none_or(|d| d.state == "provisioning")
            {
                database.refetch();
            }
        },
        std::time::Duration::from_secs(2),
    )
    .ok();
    on_cleanup(move || {
        if let Some(timer) = timer {
            timer.clear();
        }
    });
    let revealed = RwSignal::new(None::<String>);
    let reveal = Action::new_local(move |&(): &()| async move {
        match api::reveal(service, environment).await {
            Ok(url) => {
                revealed.try_set(Some(url));
            }
            Err(err) => toasts.error(err.message),
        }
    });
    let reference = format!("${{{{ {name}.DATABASE_URL }}}}");
    let view_of = move |db: Database| {
        let reference = reference.clone();
        let tables = db.tables.clone();
        let empty = tables.is_empty();
        view! {
            <div class="card" data-testid="database-card">
                <div class="card-head">
                    <h2>"PostgreSQL"</h2>
                    <span class=state_badge(&db.state)><span class="dot"></span><span data-testid="database-state">{db.state.clone()}</span></span>
                </div>
                {db.reason.clone().map(|why| view! { <p class="form-error">{why}</p> })}
                <dl class="facts">
                    <dt>"Database"</dt><dd class="mono">{db.database.clone()}</dd>
                    <dt>"User"</dt><dd class="mono">{db.user.clone()}</dd>
                    <dt>"Host"</dt><dd class="mono">{format!("{}:{}", db.host, db.port)}</dd>
                    <dt>"Size"</dt><dd>{db.size_bytes.map(format::memory).unwrap_or_else(|| "—".to_owned())}</dd>
                    <dt>"Connections"</dt><dd data-testid="database-connections">{db.connections.map(|c| c.to_string()).unwrap_or_else(|| "—".to_owned())}</dd>
                    <dt>"Backups"</dt><dd class="mono">{format!("{} (UTC) · {} daily, {} weekly kept", db.backup_settings.schedule, db.backup_settings.keep_daily, db.backup_settings.keep_weekly)}</dd>
                </dl>
                <label class="stack">"Connection string"
                    <code class="code" data-testid="database-url">{move || revealed.get().unwrap_or_else(|| db.url.clone())}</code>
                </label>
                <p class="hint">"Other services reference it as "<code>{reference}</code>" (and PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)."</p>
                <div class="row">
                    <button class="button-ghost button-small" type="button" data-testid="reveal-password"
                        disabled=move || !can_write.get() || revealed.get().is_some()
                        title=move || (!can_write.get()).then_some("Viewers cannot see the password")
                        on:click=move |_| { reveal.dispatch(()); }>"Reveal password"</button>
                </div>
            </div>
            <div class="card">
                <div class="card-head"><h2>"Tables"</h2></div>
                {if empty {
                    view! { <p class="muted">"No tables yet."</p> }.into_any()
                } else {
                    view! {
                        <div class="scroll-x"><table class="table" data-testid="database-tables">
                            <thead><tr><th>"Table"</th><th>"Rows"</th><th>"Size"</th></tr></thead>
                            <tbody>
                                {tables.into_iter().map(|t| view! {
                                    <tr><td class="mono">{t.name}</td><td>{t.rows}</td><td>{format::memory(t.size_bytes)}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                }}
            </div>
        }
    };
    view! {
        {move || database.get().map(|loaded| match loaded {
            Ok(db) => view_of(db).into_any(),
            Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
        })}
        <BackupsCard service environment can_write can_admin />
    }
}

#[component]
fn BackupsCard(
    service: ServiceId,
    environment: EnvironmentId,
    can_write: Signal<bool>,
    can_admin: Signal<bool>,
) -> impl IntoView {
    let toasts = use_toasts();
    let chosen = RwSignal::new(None::<Backup>);
    let backups = LocalResource::new(move || api::list_backups(service, environment));
    // While one is queued or running, read them again every 2 s.
    let timer = set_interval_with_handle(
        move || {
            let busy = backups.get_untracked().and_then(Result::ok).is_some_and(|list| {
                list.iter()
                    .any(|b| matches!(b.state.as_str(), "queued" | "running"))
            });
            if busy {
                backups.refetch();
            }
        },
        std::time::Duration::from_secs(2),
    )
    .ok();
    on_cleanup(move || {
        if let Some(timer) = timer {
            timer.clear();
        }
    });
    let back_up = Action::new_local(move |&(): &()| async move {
        match api::back_up(service, environment).await {
            Ok(_) => {
                toasts.ok("Backup queued: it is verified by a restore once taken.");
                backups.refetch();
            }
            Err(err) => toasts.error(err.message),
        }
    });
    let pending = back_up.pending();
    let row = move |b: Backup| {
        let now = format::now_s();
        let tables = b.tables.len();
        let verified = b.state == "verified";
        let href = api::download_href(b.id);
        let pick = b.clone();
        view! {
            <tr data-testid="backup-row">
                <td>{format::ago(b.created_at, now)}</td>
                <td><span class=state_badge(&b.state)><span class="dot"></span><span data-testid="backup-state">{b.state.clone()}</span></span></td>
                <td>{b.size_bytes.map(format::memory).unwrap_or_else(|| "—".to_owned())}</td>
                <td>{b.trigger.clone()}</td>
                <td class="muted">{match (&b.reason, b.verified_at) {
                    (Some(why), _) => why.clone(),
                    (None, Some(_)) => format!("{tables} tables restored and compared"),
                    (None, None) => String::new(),
                }}</td>
                <td class="actions">
                    {verified.then(|| view! {
                        <button class="button-ghost button-small" type="button" data-testid="restore-backup"
                            disabled=move || !can_admin.get()
                            title=move || (!can_admin.get()).then_some("Restoring needs the admin role")
                            on:click=move |_| chosen.set(Some(pick.clone()))>"Restore…"</button>
                        <Show when=move || can_admin.get()>
                            <a class="button-ghost button-small" href=href.clone() download=""
                                title="The decrypted dump, for pg_restore (recorded in the audit log)">"Download"</a>
                        </Show>
                    })}
                </td>
            </tr>
        }
    };
    view! {
        <div class="card" data-testid="backups-card">
            <div class="card-head">
                <h2>"Backups"</h2>
                <button class="button button-small" type="button" data-testid="back-up"
                    disabled=move || pending.get() || !can_write.get()
                    title=move || (!can_write.get()).then_some("Viewers cannot take backups")
                    on:click=move |_| { back_up.dispatch(()); }>"Back up now"</button>
            </div>
            {move || backups.get().map(|loaded| match loaded {
                Ok(list) if list.is_empty() => view! { <p class="muted">"No backups yet."</p> }.into_any(),
                Ok(list) => view! {
                    <div class="scroll-x">
                        <table class="table">
                            <thead><tr><th>"Taken"</th><th>"State"</th><th>"Size"</th><th>"By"</th><th></th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(row).collect_view()}</tbody>
                        </table>
                    </div>
                }.into_any(),
                Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
            })}
            {move || chosen.get().map(|backup| view! {
                <RestorePanel backup on_close=Callback::new(move |()| chosen.set(None)) />
            })}
        </div>
    }
}
