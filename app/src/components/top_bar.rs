use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::components::health::HealthBadge;

#[component]
pub fn TopBar() -> impl IntoView {
    let location = use_location();
    let crumb = move || {
        let path = location.pathname.get();
        if path == "/" { "Overview".to_owned() } else { path }
    };
    view! {
        <header class="top-bar">
            <div class="crumbs">
                <span class="crumb-root">"railyard"</span>
                <span class="crumb-sep">"/"</span>
                <span class="crumb-current">{crumb}</span>
            </div>
            <HealthBadge />
        </header>
    }
}
