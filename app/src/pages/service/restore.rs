//! Restoring a verified backup: into a new database beside it, or in place after typing
//! the database's name; then the restore's progress until it is done or failed.

use leptos::prelude::*;
use railyard_shared::databases::{Backup, Restore};

use crate::{api::databases as api, components::toast::use_toasts, format};

#[component]
pub fn RestorePanel(backup: Backup, on_close: Callback<()>) -> impl IntoView {
    let toasts = use_toasts();
    let typed = RwSignal::new(String::new());
    let restore = RwSignal::new(None::<Restore>);
    let start = Action::new_local(move |&in_place: &bool| {
        let confirm = in_place.then(|| typed.get_untracked().trim().to_owned());
        async move {
            match api::restore(backup.id, in_place, confirm).await {
                Ok(started) => {
                    restore.try_set(Some(started));
                }
                Err(err) => toasts.error(err.message),
            }
        }
    });
    // While it runs, read it again every 2 s.
    let timer = set_interval_with_handle(
        move || {
            let Some(current) = restore.get_untracked() else {
                return;
            };
            if matches!(current.state.as_str(), "done" | "failed") {
                return;
            }
            leptos::task::spawn_local(async move {
                if let Ok(next) = api::find_restore(current.id).await {
                    restore.try_set(Some(next));
                }
            });
        },
        std::time::Duration::from_secs(2),
    )
    .ok();
    on_cleanup(move || {
        if let Some(timer) = timer {
            timer.clear();
        }
    });
    let pending = start.pending();
    let name = backup.database.clone();
    let matches = {
        let name = name.clone();
        move || typed.get().trim() == name
    };
    let taken = format::ago(backup.created_at, format::now_s());
    view! {
        <div class="restore-panel" data-testid="restore-panel">
            <div class="card-head">
                <h3>{format!("Restore the backup taken {taken}")}</h3>
                <button class="button-ghost button-small" type="button" on:click=move |_| on_close.run(())>"Close"</button>
            </div>
            {move || match restore.get() {
                Some(r) => view! {
                    <p data-testid="restore-state">
                        {match r.state.as_str() {
                            "done" => format!("Restored into {}: {} tables compared with the backup.", r.database, r.tables.len()),
                            "failed" => format!("The restore failed: {}", r.reason.clone().unwrap_or_default()),
                            other => format!("Restoring into {} ({other})…", r.database),
                        }}
                    </p>
                }.into_any(),
                None => {
                    let (name, matches) = (name.clone(), matches.clone());
                    view! {
                        <div class="danger-row">
                            <div>
                                <strong>"Into a new database"</strong>
                                <p class="hint">"A database beside this one, owned by the same user; the app keeps running on its own."</p>
                            </div>
                            <button class="button button-small" type="button" data-testid="restore-new"
                                disabled=move || pending.get()
                                on:click=move |_| { start.dispatch(false); }>"Restore to new"</button>
                        </div>
                        <div class="danger-row">
                            <div>
                                <strong>"In place"</strong>
                                <p class="hint">"Replaces everything in the database with the backup. Connections to it are closed while it restores."</p>
                                <label class="hint">{format!("Type {name} to confirm")}
                                    <input type="text" class="mono" bind:value=typed data-testid="restore-confirm"
                                        aria-label=format!("Type {name} to confirm") />
                                </label>
                            </div>
                            <button class="button button-danger" type="button" data-testid="restore-in-place"
                                disabled=move || pending.get() || !matches()
                                on:click=move |_| { start.dispatch(true); }>"Restore in place"</button>
                        </div>
                    }.into_any()
                }
            }}
        </div>
    }
}
