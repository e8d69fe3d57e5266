use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Sidebar() -> impl IntoView {
    view! {
        <aside class="sidebar">
            <A href="/" attr:class="brand">
                <img src="/favicon.svg" alt="" width="28" height="28" />
                <span>"Railyard"</span>
            </A>
            <nav class="nav" aria-label="Main">
                <span class="nav-heading">"Instance"</span>
                <A href="/" exact=true>
                    <span class="nav-icon" aria-hidden="true">"◈"</span>
                    "Overview"
                </A>
                <a href="/api/docs" target="_blank" rel="noopener">
                    <span class="nav-icon" aria-hidden="true">"⌘"</span>
                    "API reference"
                    <span class="nav-external" aria-hidden="true">"↗"</span>
                </a>
            </nav>
            <footer class="sidebar-footer">"Self-hosted · no Docker"</footer>
        </aside>
    }
}
