//! Who is signed in, known once for the whole app.

use leptos::{prelude::*, task::spawn_local};
use railyard_shared::auth::User;

use crate::api;

/// `None` while asking the server; then `Some(None)` (signed out) or `Some(Some(user))`.
#[derive(Clone, Copy)]
pub struct SessionState(pub RwSignal<Option<Option<User>>>);

impl SessionState {
    pub fn signed_in(self, user: User) {
        self.0.set(Some(Some(user)));
    }

    pub fn signed_out(self) {
        self.0.set(Some(None));
    }

    pub fn user(self) -> Option<User> {
        self.0.get().flatten()
    }
}

/// Provides the session state and asks the server who is signed in.
pub fn provide_session() {
    let state = SessionState(RwSignal::new(None));
    provide_context(state);
    spawn_local(async move {
        match api::fetch_me().await {
            Ok(user) => state.0.set(Some(user)),
            Err(err) => {
                leptos::logging::warn!("cannot tell who is signed in: {err}");
                state.0.set(Some(None));
            }
        }
    });
}

pub fn use_session() -> SessionState {
    expect_context::<SessionState>()
}
