use leptos::prelude::*;

/// The frame of the signed-out pages: the brand and one centred card.
#[component]
pub fn AuthCard(title: &'static str, subtitle: String, children: Children) -> impl IntoView {
    view! {
        <div class="auth-page">
            <div class="auth-brand">
                <img src="/favicon.svg" alt="" width="36" height="36" />
                <span>"Railyard"</span>
            </div>
            <div class="card auth-card">
                <h1>{title}</h1>
                <p class="muted">{subtitle}</p>
                {children()}
            </div>
        </div>
    }
}

/// An error from the server, shown above a form.
#[component]
pub fn FormError(error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|message| {
            // Server messages are lower-case sentences; start them with a capital here.
            let mut chars = message.chars();
            let message: String = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            view! {
                <p class="form-error" role="alert" data-testid="form-error">
                    {message}
                </p>
            }
        })
    }
}
