use leptos::prelude::*;
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

use crate::{
    components::layout::Shell,
    pages::{not_found::NotFound, overview::Overview},
};

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Shell>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Overview />
                </Routes>
            </Shell>
        </Router>
    }
}
