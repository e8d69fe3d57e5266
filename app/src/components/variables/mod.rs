//! The Variables tab: a table (add, edit, delete, seal), references shown resolved with
//! their source, a raw `.env` editor, and for a service the "changes not deployed" banner
//! with "Deploy changes". Sealed values never come back from the server, so the page cannot
//! show them: their rows say only that they are set, and since when.

mod row;

use leptos::{ev::SubmitEvent, prelude::*};
use railyard_shared::{EnvironmentId, ServiceId, variables::NewVariable};

use crate::{
    api::projects::{self as api, VariablesOf},
    components::{auth_card::FormError, loading::Loaded},
};
use row::VariableRow;

/// One write of the panel (one at a time: its controls are disabled while it runs).
#[derive(Debug, Clone)]
enum Write {
    Add(NewVariable),
    /// Reads the variables as `.env` text into the raw editor.
    OpenRaw,
    SaveRaw(String),
    DeployChanges {
        service: ServiceId,
        environment: EnvironmentId,
    },
}

#[component]
pub fn VariablesPanel(
    of: VariablesOf,
    #[prop(into)] title: String,
    /// Told after a deployment started here.
    #[prop(optional)]
    on_deployed: Option<Callback<()>>,
    /// Whether the caller may change variables (viewers may not); by default yes.
    #[prop(optional, into)]
    can_write: Option<Signal<bool>>,
) -> impl IntoView {
    let can_write = can_write.unwrap_or_else(|| Signal::derive(|| true));
    let is_service = matches!(of, VariablesOf::Service { .. });
    let version = RwSignal::new(0u32);
    let reload = move || version.update(|v| *v += 1);
    let list = LocalResource::new(move || {
        version.track();
        api::list_variables(of)
    });
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let raw = RwSignal::new(None::<String>);

    let name = RwSignal::new(String::new());
    let value = RwSignal::new(String::new());
    let sealed = RwSignal::new(false);
    let write = Action::new_local(move |write: &Write| {
        let write = write.clone();
        async move {
            let done = match write {
                Write::Add(variable) => api::create_variable(of, variable).await.map(|_| {
                    name.try_set(String::new());
                    value.try_set(String::new());
                    sealed.try_set(false);
                }),
                Write::OpenRaw => api::export_variables(of).await.map(|text| {
                    raw.try_set(Some(text));
                }),
                Write::SaveRaw(text) => api::import_variables(of, text).await.map(|_| {
                    raw.try_set(None);
                    notice.try_set(Some("Saved the .env text.".into()));
                }),
                Write::DeployChanges { service, environment } => {
                    api::deploy_changes(service, environment).await.map(|deployment| {
                        notice.try_set(Some(format!(
                            "Deploying the changes ({}).",
                            &deployment.id.to_string()[..8]
                        )));
                        if let Some(done) = on_deployed {
                            done.run(());
                        }
                    })
                }
            };
            match done {
                Ok(()) => {
                    error.try_set(None);
                    reload();
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let busy = write.pending();
    let run = move |request: Write| {
        if !busy.get_untracked() {
            write.dispatch(request);
        }
    };
    let add = move |ev: SubmitEvent| {
        ev.prevent_default();
        run(Write::Add(NewVariable {
            name: name.get_untracked().trim().to_owned(),
            value: value.get_untracked(),
            sealed: sealed.get_untracked(),
        }));
    };
    let open_raw = move |_| run(Write::OpenRaw);
    let save_raw = move |_| run(Write::SaveRaw(raw.get_untracked().unwrap_or_default()));
    let deploy_changes = move |_| {
        if let VariablesOf::Service { service, environment } = of {
            run(Write::DeployChanges { service, environment });
        }
    };

    view! {
        <div class="card" data-testid=format!("variables-{}", if is_service { "service" } else { "shared" })>
            <div class="card-head">
                <h2>{title}</h2>
                <button class="button-ghost" type="button" on:click=open_raw disabled=move || busy.get()>"Raw editor"</button>
            </div>
            <FormError error=error.into() />
            {move || notice.get().map(|n| view! { <p class="form-ok" role="status">{n}</p> })}
            {move || {
                let staged = list.get().and_then(Result::ok).map(|l| l.staged).unwrap_or_default();
                (is_service && !staged.is_empty()).then(|| {
                    let names = staged
                        .iter()
                        .map(|c| format!("{} ({})", c.name, c.change))
                        .collect::<Vec<_>>()
                        .join(", ");
                    view! {
                        <div class="staged" role="status" data-testid="staged">
                            <span>{format!("{} change(s) not deployed: {names}", staged.len())}</span>
                            <button class="button" type="button" on:click=deploy_changes disabled=move || busy.get() || !can_write.get()>"Deploy changes"</button>
                        </div>
                    }
                })
            }}
            {move || raw.get().map(|text| view! {
                <div class="raw-editor">
                    <p class="hint">"One NAME=value per line. Sealed variables are not shown; they are kept unless named here."</p>
                    <textarea aria-label="Raw .env" rows="10" spellcheck="false"
                        prop:value=text on:input=move |ev| raw.set(Some(event_target_value(&ev)))></textarea>
                    <div class="row">
                        <button class="button" type="button" on:click=save_raw disabled=move || busy.get() || !can_write.get()>"Save .env"</button>
                        <button class="button-ghost" type="button" on:click=move |_| raw.set(None)>"Cancel"</button>
                    </div>
                </div>
            })}
            <Loaded fallback=|| view! { <div class="skeleton"></div> }>
                {move || Suspend::new(async move {
                    list.await.map(|list| if list.variables.is_empty() {
                        view! { <p class="muted empty">"No variables yet."</p> }.into_any()
                    } else {
                        view! {
                            <table class="table">
                                <thead><tr><th>"Name"</th><th>"Value"</th><th></th></tr></thead>
                                <tbody>
                                    {list.variables.into_iter().map(|v| view! {
                                        <VariableRow of variable=v on_change=Callback::new(move |()| reload()) error can_write />
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    })
                })}
            </Loaded>
            <form class="form variable-form" on:submit=add>
                <div class="row">
                    <input type="text" required maxlength="256" placeholder="NAME" aria-label="New variable name"
                        class="mono" bind:value=name />
                    <input type="text" placeholder="value, or ${{ shared.NAME }}" aria-label="New variable value"
                        class="mono" bind:value=value />
                    <label class="check"><input type="checkbox" bind:checked=sealed />"Sealed"</label>
                    <button class="button" type="submit" disabled=move || busy.get() || !can_write.get()
                        title=move || (!can_write.get()).then_some("Viewers cannot change variables")>"Add"</button>
                </div>
                <p class="hint">
                    "Sealed values are write-only: never shown again, masked in every log. Reference others with "
                    <code>"${{ shared.NAME }}"</code>", "<code>"${{ service.NAME }}"</code>" or "<code>"${{ NAME }}"</code>"."
                </p>
            </form>
        </div>
    }
}
