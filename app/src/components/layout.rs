use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};

use crate::{
    components::{
        crumbs::provide_crumbs,
        health::provide_health,
        isolation::IsolationBanner,
        session::use_session,
        sidebar::Sidebar,
        toast::{ToastStack, provide_toasts},
        top_bar::TopBar,
        workspace::provide_workspaces,
    },
    live::provide_live,
};

/// The signed-in frame: sidebar, top bar, and the routed page. Signed-out visitors go to
/// the sign-in page.
#[component]
pub fn Shell() -> impl IntoView {
    let session = use_session();
    move || match session.0.get() {
        None => view! { <div class="boot" aria-busy="true"></div> }.into_any(),
        Some(None) => view! { <Redirect path="/login" /> }.into_any(),
        Some(Some(_)) => view! { <SignedIn /> }.into_any(),
    }
}

#[component]
fn SignedIn() -> impl IntoView {
    provide_health();
    provide_workspaces();
    provide_toasts();
    provide_live();
    provide_crumbs();
    view! {
        <div class="shell">
            <Sidebar />
            <div class="main">
                <TopBar />
                <IsolationBanner />
                <main class="content">
                    <Outlet />
                </main>
            </div>
            <ToastStack />
        </div>
    }
}
