use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_location};

#[component]
pub fn NotFound() -> impl IntoView {
    let path = use_location().pathname;
    view! {
        <div class="auth-page">
            <section class="empty-state" data-testid="not-found">
                <p class="eyebrow">"404"</p>
                <h1>"This page does not exist"</h1>
                <p class="muted">
                    "Nothing lives at " <code>{move || path.get()}</code> ". It may have moved, or the link is mistyped."
                </p>
                <A href="/" attr:class="button">"Back to overview"</A>
            </section>
        </div>
    }
}
