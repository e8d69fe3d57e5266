use leptos::prelude::*;
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path,
};

use crate::{
    components::{layout::Shell, session::provide_session},
    pages::{
        account::AccountPage,
        audit::AuditPage,
        invite::InvitePage,
        login::LoginPage,
        members::MembersPage,
        new_workspace::NewWorkspacePage,
        not_found::NotFound,
        overview::Overview,
        project::{IntegrationsPage, MatrixPage, ProjectPage, ProjectsPage},
        service::ServicePage,
        setup::{SetupPage, SignupPage},
        verify_email::VerifyEmailPage,
    },
};

#[component]
pub fn App() -> impl IntoView {
    provide_session();
    view! {
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/setup") view=SetupPage />
                <Route path=path!("/login") view=LoginPage />
                <Route path=path!("/signup") view=SignupPage />
                <Route path=path!("/invite") view=InvitePage />
                <Route path=path!("/verify-email") view=VerifyEmailPage />
                <ParentRoute path=path!("") view=Shell>
                    <Route path=path!("/") view=Overview />
                    <Route path=path!("/workspaces/new") view=NewWorkspacePage />
                    <Route path=path!("/workspaces/:id/members") view=MembersPage />
                    <Route path=path!("/workspaces/:id/audit") view=AuditPage />
                    <Route path=path!("/account") view=AccountPage />
                    <Route path=path!("/projects") view=ProjectsPage />
                    <Route path=path!("/projects/:id") view=ProjectPage />
                    <Route path=path!("/projects/:id/matrix") view=MatrixPage />
                    <Route path=path!("/projects/:id/integrations") view=IntegrationsPage />
                    <Route path=path!("/services/:id") view=ServicePage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
