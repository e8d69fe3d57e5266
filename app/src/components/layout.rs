use leptos::prelude::*;

use crate::components::{health::provide_health, sidebar::Sidebar, top_bar::TopBar};

/// The app frame: sidebar, top bar, and the routed page in the main area.
#[component]
pub fn Shell(children: Children) -> impl IntoView {
    provide_health();
    view! {
        <div class="shell">
            <Sidebar />
            <div class="main">
                <TopBar />
                <main class="content">{children()}</main>
            </div>
        </div>
    }
}
