use leptos::prelude::*;
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path,
};

use crate::{
    components::{layout::Shell, session::provide_session},
    pages::{login::LoginPage, not_found::NotFound, overview::Overview, setup::SetupPage},
};

#[component]
pub fn App() -> impl IntoView {
    provide_session();
    view! {
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/setup") view=SetupPage />
                <Route path=path!("/login") view=LoginPage />
                <ParentRoute path=path!("") view=Shell>
                    <Route path=path!("/") view=Overview />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
