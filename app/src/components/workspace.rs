//! The caller's workspaces and the one the dashboard is looking at (remembered per
//! browser in localStorage).

use leptos::prelude::*;
use railyard_shared::WorkspaceId;
use railyard_shared::auth::Workspace;

use crate::api::{self, ApiError};

const STORAGE_KEY: &str = "railyard.workspace";

#[derive(Clone, Copy)]
pub struct Workspaces {
    pub list: LocalResource<Result<Vec<Workspace>, ApiError>>,
    selected: RwSignal<Option<WorkspaceId>>,
}

impl Workspaces {
    /// The selected workspace, or the first one when none (or a stale one) is selected.
    pub fn current(self) -> Option<Workspace> {
        let list = self.list.get()?.ok()?;
        let selected = self.selected.get();
        list.iter()
            .find(|w| Some(w.id) == selected)
            .or_else(|| list.first())
            .cloned()
    }

    pub fn find(self, id: WorkspaceId) -> Option<Workspace> {
        self.list.get()?.ok()?.into_iter().find(|w| w.id == id)
    }

    pub fn select(self, id: WorkspaceId) {
        self.selected.set(Some(id));
        remember(id);
    }

    pub fn refetch(self) {
        self.list.refetch();
    }
}

/// Makes `id` the workspace the dashboard opens on (also usable outside the shell).
pub fn remember(id: WorkspaceId) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.set_item(STORAGE_KEY, &id.to_string());
    }
}

pub fn provide_workspaces() {
    let stored = window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        .and_then(|id| id.parse().ok());
    provide_context(Workspaces {
        list: LocalResource::new(api::list_workspaces),
        selected: RwSignal::new(stored),
    });
}

pub fn use_workspaces() -> Workspaces {
    expect_context::<Workspaces>()
}
