//! The account's GitHub connection for repositories: who it is, whether GitHub still takes
//! its token, connect / reconnect, disconnect.

use leptos::prelude::*;

use crate::{api::github as api, components::loading::Loaded, components::toast::use_toasts};

#[component]
pub fn GithubCard() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let connection = LocalResource::new(move || {
        version.track();
        api::find_connection()
    });
    let toasts = use_toasts();
    let disconnect = Action::new_local(move |(): &()| async move {
        match api::disconnect().await {
            Ok(()) => toasts.ok("GitHub disconnected."),
            Err(err) => toasts.error(err.message),
        }
        version.try_update(|v| *v += 1);
    });
    view! {
        <div class="card form narrow" data-testid="github-card">
            <h2 class="card-title">"GitHub"</h2>
            <Loaded fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    connection.await.map(|c| {
                        if !c.available {
                            return view! { <p class="muted">"GitHub is not set up on this instance."</p> }.into_any();
                        }
                        let link = api::connect_url("/account");
                        view! {
                            {match (&c.login, &c.broken) {
                                (Some(login), None) => view! { <p>"Connected as "<strong>{login.clone()}</strong>" "<span class="badge badge-ok">"working"</span></p> }.into_any(),
                                (Some(login), Some(why)) => view! {
                                    <p>"Connected as "<strong>{login.clone()}</strong>" "<span class="badge badge-down">"broken"</span></p>
                                    <p class="form-error" data-testid="github-broken">{format!("{why}: repositories cannot be listed, cloned privately or told about deployments until you reconnect.")}</p>
                                }.into_any(),
                                _ => view! { <p class="muted">"Connect GitHub to deploy your repositories (private ones too) on every push, with previews for pull requests."</p> }.into_any(),
                            }}
                            <div class="row">
                                <a class="button" rel="external" href=link>{if c.connected { "Reconnect GitHub" } else { "Connect GitHub" }}</a>
                                {c.connected.then(|| view! {
                                    <button class="button-ghost" type="button" disabled=move || disconnect.pending().get()
                                        on:click=move |_| { disconnect.dispatch(()); }>"Disconnect"</button>
                                })}
                            </div>
                        }.into_any()
                    })
                })}
            </Loaded>
        </div>
    }
}
