//! `/invite?token=…`: what the invitation is for, then join: sign up (new address), sign in
//! (existing account), or accept (already signed in as the invited address).

use leptos::{ev::SubmitEvent, prelude::*};
use leptos_router::{components::A, hooks::use_query_map};
use railyard_shared::WorkspaceId;
use railyard_shared::auth::{InvitationPreview, LoginRequest, SignupRequest};

use crate::{
    api::{self, ApiError},
    components::{
        auth_card::{AuthCard, FormError},
        loading::Loaded,
        session::use_session,
        workspace,
    },
};

/// After joining: open the workspace's members page with the workspace selected.
fn open_workspace(id: WorkspaceId) {
    workspace::remember(id);
    let _ = window().location().set_href(&format!("/workspaces/{id}/members"));
}

#[component]
pub fn InvitePage() -> impl IntoView {
    let token = use_query_map()
        .with_untracked(|q| q.get("token"))
        .unwrap_or_default();
    let preview = LocalResource::new({
        let token = token.clone();
        move || api::preview_invitation(token.clone())
    });
    let token = StoredValue::new(token);
    view! {
        <AuthCard title="Join a workspace" subtitle="You have been invited to Railyard.".to_owned()>
            <Loaded fallback=|| view! { <p class="muted">"Checking the invitation…"</p> }>
                {move || Suspend::new(async move {
                    preview.await.map(|res| view! { <Join preview=res.invitation token=token.get_value() /> })
                })}
            </Loaded>
            {move || preview.get().is_some_and(|r| r.is_err()).then(|| view! {
                <p class="muted auth-alt"><A href="/login">"Sign in"</A></p>
            })}
        </AuthCard>
    }
}

#[component]
fn Join(preview: InvitationPreview, token: String) -> impl IntoView {
    let session = use_session();
    let error = RwSignal::new(None::<String>);
    let summary = format!(
        "{} invited {} to {} as {}.",
        preview.invited_by,
        preview.email,
        preview.workspace_name,
        preview.role.as_str()
    );
    let workspace_id = preview.workspace_id;
    let invited = preview.email.clone();
    let account_exists = preview.account_exists;

    let accepting = Action::new_local(move |token: &String| {
        let token = token.clone();
        async move {
            match api::accept_invitation(token).await {
                Ok(workspace) => open_workspace(workspace.id),
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let accept = {
        let token = token.clone();
        move || {
            if !accepting.pending().get_untracked() {
                accepting.dispatch(token.clone());
            }
        }
    };
    let view_for = move |signed_in_as: Option<String>| match signed_in_as {
        Some(email) if email == invited => {
            let accept = accept.clone();
            view! {
                <button class="button" type="button" disabled=move || accepting.pending().get()
                    on:click=move |_| accept()>"Join workspace"</button>
            }
            .into_any()
        }
        Some(email) => view! {
            <p class="form-error">
                "You are signed in as " {email} ", but this invitation is for " {invited.clone()}
                ". Sign out and open the link again."
            </p>
        }
        .into_any(),
        None if account_exists => {
            view! { <SignInToJoin email=invited.clone() error on_joined=accept.clone() /> }.into_any()
        }
        None => {
            view! { <SignUpToJoin email=invited.clone() token=token.clone() workspace_id error /> }.into_any()
        }
    };
    view! {
        <p class="invite-summary" data-testid="invite-summary">{summary}</p>
        <FormError error=error.into() />
        {move || session.0.get().map(|user| view_for(user.map(|u| u.email)))}
    }
}

#[component]
fn SignUpToJoin(
    email: String,
    token: String,
    workspace_id: WorkspaceId,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let (name, password) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let signup = Action::new_local(|request: &SignupRequest| api::signup(request.clone()));
    Effect::new(move || match signup.value().get() {
        Some(Ok(_)) => open_workspace(workspace_id),
        Some(Err(err)) => error.set(Some(err.message)),
        None => {}
    });
    let shown_email = email.clone();
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        signup.dispatch(SignupRequest {
            email: email.clone(),
            password: password.get_untracked(),
            name: name.get_untracked(),
            setup_token: None,
            invitation_token: Some(token.clone()),
        });
    };
    view! {
        <form class="form" on:submit=on_submit>
            <label>"Email" <input type="email" value=shown_email disabled=true /></label>
            <label>"Your name" <input type="text" required autocomplete="name" bind:value=name /></label>
            <label>
                "Password"
                <input type="password" required minlength="8" maxlength="128" autocomplete="new-password" bind:value=password />
            </label>
            <button class="button" type="submit" disabled=move || signup.pending().get()>"Create account and join"</button>
        </form>
    }
}

#[component]
fn SignInToJoin(
    email: String,
    error: RwSignal<Option<String>>,
    on_joined: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let session = use_session();
    let password = RwSignal::new(String::new());
    let shown_email = email.clone();
    let sign_in = Action::new_local(move |request: &LoginRequest| {
        let (request, on_joined) = (request.clone(), on_joined.clone());
        async move {
            match api::login(request).await {
                Ok(user) => {
                    session.signed_in(user);
                    on_joined();
                }
                Err(ApiError { message, .. }) => {
                    error.try_set(Some(message));
                }
            }
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if !sign_in.pending().get_untracked() {
            sign_in.dispatch(LoginRequest {
                email: email.clone(),
                password: password.get_untracked(),
            });
        }
    };
    view! {
        <form class="form" on:submit=on_submit>
            <label>"Email" <input type="email" value=shown_email disabled=true /></label>
            <label>"Password" <input type="password" required autocomplete="current-password" bind:value=password /></label>
            <button class="button" type="submit" disabled=move || sign_in.pending().get()>"Sign in and join"</button>
        </form>
    }
}
