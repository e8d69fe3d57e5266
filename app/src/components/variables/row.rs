//! One variable: its value (or that it is sealed, and since when), resolved references with
//! their source, and edit, replace, seal and delete.

use leptos::{ev::SubmitEvent, prelude::*};
use railyard_shared::variables::{Variable, VariablePatch};

use crate::api::projects::{self as api, VariablesOf};

fn confirm(message: &str) -> bool {
    window().confirm_with_message(message).unwrap_or(false)
}

/// One change to the variable.
#[derive(Debug, Clone)]
enum Change {
    Value(String),
    Seal,
    Delete,
}

#[component]
pub fn VariableRow(
    of: VariablesOf,
    variable: Variable,
    on_change: Callback<()>,
    error: RwSignal<Option<String>>,
    can_write: Signal<bool>,
) -> impl IntoView {
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(variable.value.clone().unwrap_or_default());
    let name = StoredValue::new(variable.name.clone());
    let change = Action::new_local(move |change: &Change| {
        let change = change.clone();
        async move {
            let name = name.get_value();
            let done = match &change {
                Change::Value(value) => {
                    let patch = VariablePatch {
                        value: Some(value.clone()),
                        sealed: None,
                    };
                    api::update_variable(of, &name, patch).await.map(drop)
                }
                Change::Seal => {
                    let patch = VariablePatch {
                        value: None,
                        sealed: Some(true),
                    };
                    api::update_variable(of, &name, patch).await.map(drop)
                }
                Change::Delete => api::delete_variable(of, &name).await,
            };
            match done {
                Ok(()) => {
                    error.try_set(None);
                    editing.try_set(false);
                    on_change.run(());
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let busy = change.pending();
    let locked = move || busy.get() || !can_write.get();
    let run = move |request: Change| {
        if !busy.get_untracked() {
            change.dispatch(request);
        }
    };
    let save = move |ev: SubmitEvent| {
        ev.prevent_default();
        run(Change::Value(draft.get_untracked()));
    };
    let seal = move |_| {
        if confirm(&format!(
            "Seal {}? Its value will never be shown again.",
            name.get_value()
        )) {
            run(Change::Seal);
        }
    };
    let delete = move |_| {
        if confirm(&format!("Delete {}?", name.get_value())) {
            run(Change::Delete);
        }
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
                            <button class="button-ghost" type="submit" disabled=locked>"Save"</button>
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
                <button class="button-ghost" type="button" disabled=locked on:click=move |_| {
                    if sealed { draft.set(String::new()); }
                    editing.set(true);
                }>{if sealed { "Replace" } else { "Edit" }}</button>
                {(!sealed).then(|| view! { <button class="button-ghost" type="button" on:click=seal disabled=locked>"Seal"</button> })}
                <button class="button-ghost danger" type="button" on:click=delete disabled=locked>"Delete"</button>
            </td>
        </tr>
    }
}
