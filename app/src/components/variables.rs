//! The Variables tab: a table (add, edit, delete, seal), references shown resolved with
//! their source, a raw `.env` editor, and for a service the "changes not deployed" banner
//! with "Deploy changes". Sealed values never come back from the server, so the page cannot
//! show them: their rows say only that they are set, and since when.

use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use railyard_shared::variables::{NewVariable, Variable, VariablePatch};

use crate::{
    api::projects::{self as api, VariablesOf},
    components::auth_card::FormError,
};

fn confirm(message: &str) -> bool {
    window().confirm_with_message(message).unwrap_or(false)
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
    // A write in flight: its controls stay disabled until it is answered.
    let busy = RwSignal::new(false);
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
    let add = move |ev: SubmitEvent| {
        ev.prevent_default();
        let variable = NewVariable {
            name: name.get_untracked().trim().to_owned(),
            value: value.get_untracked(),
            sealed: sealed.get_untracked(),
        };
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let result = api::create_variable(of, variable).await;
            busy.try_set(false);
            match result {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    value.set(String::new());
                    sealed.set(false);
                    reload();
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let open_raw = move |_| {
        spawn_local(async move {
            match api::export_variables(of).await {
                Ok(text) => raw.set(Some(text)),
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let save_raw = move |_| {
        let text = raw.get_untracked().unwrap_or_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let result = api::import_variables(of, text).await;
            busy.try_set(false);
            match result {
                Ok(_) => {
                    error.set(None);
                    raw.set(None);
                    notice.set(Some("Saved the .env text.".into()));
                    reload();
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let deploy_changes = move |_| {
        let VariablesOf::Service { service, environment } = of else {
            return;
        };
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let result = api::deploy_changes(service, environment).await;
            busy.try_set(false);
            match result {
                Ok(deployment) => {
                    error.set(None);
                    notice.set(Some(format!(
                        "Deploying the changes ({}).",
                        &deployment.id.to_string()[..8]
                    )));
                    reload();
                    if let Some(done) = on_deployed {
                        done.run(());
                    }
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };

    view! {
        <div class="card" data-testid=format!("variables-{}", if is_service { "service" } else { "shared" })>
            <div class="card-head">
                <h2>{title}</h2>
                <button class="button-ghost" type="button" on:click=open_raw>"Raw editor"</button>
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
            <Transition fallback=|| view! { <div class="skeleton"></div> }>
                {move || list.get().map(|result| match result {
                    Ok(list) if list.variables.is_empty() => view! {
                        <p class="muted empty">"No variables yet."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Value"</th><th></th></tr></thead>
                            <tbody>
                                {list.variables.into_iter().map(|v| view! {
                                    <VariableRow of variable=v on_change=Callback::new(move |()| reload()) error can_write />
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                })}
            </Transition>
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

#[component]
fn VariableRow(
    of: VariablesOf,
    variable: Variable,
    on_change: Callback<()>,
    error: RwSignal<Option<String>>,
    can_write: Signal<bool>,
) -> impl IntoView {
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(variable.value.clone().unwrap_or_default());
    let name = StoredValue::new(variable.name.clone());
    let save = move |ev: SubmitEvent| {
        ev.prevent_default();
        let patch = VariablePatch {
            value: Some(draft.get_untracked()),
            sealed: None,
        };
        spawn_local(async move {
            match api::update_variable(of, &name.get_value(), patch).await {
                Ok(_) => {
                    error.set(None);
                    editing.set(false);
                    on_change.run(());
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let seal = move |_| {
        if !confirm(&format!(
            "Seal {}? Its value will never be shown again.",
            name.get_value()
        )) {
            return;
        }
        let patch = VariablePatch {
            value: None,
            sealed: Some(true),
        };
        spawn_local(async move {
            match api::update_variable(of, &name.get_value(), patch).await {
                Ok(_) => on_change.run(()),
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let delete = move |_| {
        if !confirm(&format!("Delete {}?", name.get_value())) {
            return;
        }
        spawn_local(async move {
            match api::delete_variable(of, &name.get_value()).await {
                Ok(()) => {
                    error.set(None);
                    on_change.run(());
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let sealed = variable.sealed;
    let shown = match &variable.value {
        Some(value) => value.clone(),
        None => format!(
            "•••••• sealed · set {}",
            variable.updated_at.format("%Y-%m-%d %H:%M")
        ),
    };
    let resolved = variable.resolved.clone();
    let sources = variable.references.join(", ");
    view! {
        <tr data-testid=format!("variable-{}", variable.name)>
            <td class="mono nowrap"><span>{variable.name.clone()}</span>
                {sealed.then(|| view! { <span class="tag">"sealed"</span> })}
            </td>
            <td class="mono value-cell">
                {move || if editing.get() {
                    view! {
                        <form class="row" on:submit=save>
                            <input type="text" class="mono" aria-label=format!("Value of {}", name.get_value())
                                placeholder=if sealed { "new value" } else { "" } bind:value=draft />
                            <button class="button-ghost" type="submit" disabled=move || !can_write.get()>"Save"</button>
                            <button class="button-ghost" type="button" on:click=move |_| editing.set(false)>"Cancel"</button>
                        </form>
                    }.into_any()
                } else {
                    view! { <span class=if sealed { "muted" } else { "" }>{shown.clone()}</span> }.into_any()
                }}
                {resolved.clone().map(|r| view! {
                    <div class="resolved" data-testid="resolved">
                        <span class="muted">"→ "</span>{r}
                        <span class="hint">{format!(" from {sources}")}</span>
                    </div>
                })}
            </td>
            <td class="actions">
                <button class="button-ghost" type="button" disabled=move || !can_write.get() on:click=move |_| {
                    if sealed { draft.set(String::new()); }
                    editing.set(true);
                }>{if sealed { "Replace" } else { "Edit" }}</button>
                {(!sealed).then(|| view! { <button class="button-ghost" type="button" on:click=seal disabled=move || !can_write.get()>"Seal"</button> })}
                <button class="button-ghost danger" type="button" on:click=delete disabled=move || !can_write.get()>"Delete"</button>
            </td>
        </tr>
    }
}
