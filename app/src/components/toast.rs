//! Toasts: short notes on the outcome of an action (a deploy queued, a rollback refused),
//! in a corner, gone after a few seconds. Errors stay a little longer.

use std::time::Duration;

use leptos::prelude::*;

#[derive(Debug, Clone)]
struct Toast {
    id: u32,
    error: bool,
    text: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next: StoredValue<u32>,
}

impl Toasts {
    fn push(self, error: bool, text: String) {
        let id = self.next.get_value();
        self.next.set_value(id.wrapping_add(1));
        self.list.update(|list| list.push(Toast { id, error, text }));
        let list = self.list;
        set_timeout(
            move || list.update(|l| l.retain(|t| t.id != id)),
            Duration::from_secs(if error { 8 } else { 4 }),
        );
    }

    pub fn ok(self, text: impl Into<String>) {
        self.push(false, text.into());
    }

    pub fn error(self, text: impl Into<String>) {
        self.push(true, text.into());
    }
}

pub fn provide_toasts() -> Toasts {
    let toasts = Toasts {
        list: RwSignal::new(Vec::new()),
        next: StoredValue::new(0),
    };
    provide_context(toasts);
    toasts
}

pub fn use_toasts() -> Toasts {
    expect_context::<Toasts>()
}

#[component]
pub fn ToastStack() -> impl IntoView {
    let toasts = use_toasts();
    view! {
        <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
            <For each=move || toasts.list.get() key=|t| t.id let:toast>
                <div class=if toast.error { "toast toast-error" } else { "toast" }>{toast.text}</div>
            </For>
        </div>
    }
}
