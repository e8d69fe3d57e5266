//! Whether the account's email address is proven, and a mailed link to prove it (GitHub
//! sign-in links to an account without its password only when it is).

use leptos::prelude::*;

use crate::{api, components::auth_card::FormError, components::session::use_session};

#[component]
pub fn EmailCard() -> impl IntoView {
    let session = use_session();
    let send = Action::new_local(|(): &()| api::request_email_verification());
    let error = Signal::derive(move || send.value().get().and_then(Result::err).map(|e| e.message));
    let verified = move || session.user().is_some_and(|u| u.email_verified);
    view! {
        <div class="card form narrow">
            <h2 class="card-title">"Email address"</h2>
            <p>
                {move || session.user().map(|u| u.email).unwrap_or_default()} " "
                {move || if verified() {
                    view! { <span class="badge badge-ok">"verified"</span> }.into_any()
                } else {
                    view! { <span class="badge badge-pending">"not verified"</span> }.into_any()
                }}
            </p>
            <Show when=move || !verified()>
                <p class="muted">
                    "Confirm that this address is yours. Until then, signing in with GitHub connects to this account only after its password."
                </p>
                <FormError error />
                <Show when=move || matches!(send.value().get(), Some(Ok(true)))>
                    <p class="form-ok" role="status">"Sent. Open the link in the email (it works for 24 hours)."</p>
                </Show>
                <div class="row">
                    <button class="button" type="button" disabled=move || send.pending().get() on:click=move |_| { send.dispatch(()); }>
                        "Send a confirmation email"
                    </button>
                </div>
            </Show>
        </div>
    }
}
