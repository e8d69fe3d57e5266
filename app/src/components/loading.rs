//! The one way a page reads: a `LocalResource` awaited inside [`Loaded`], which is a
//! `<Transition>` (the previous content stays while a refetch runs; a skeleton shows the
//! first time) around an `<ErrorBoundary>` (a failed read shows its message in place).
//!
//! ```ignore
//! <Loaded fallback=|| view! { <div class="skeleton"></div> }>
//!     {move || Suspend::new(async move { list.await.map(|list| view! { ... }) })}
//! </Loaded>
//! ```

use leptos::prelude::*;

#[component]
pub fn Loaded<F, V>(
    /// What shows until the first read answers.
    fallback: F,
    children: ChildrenFn,
) -> impl IntoView
where
    F: Fn() -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Transition fallback>
            <ErrorBoundary fallback=|errors| view! { <ReadFailed errors /> }>
                {children()}
            </ErrorBoundary>
        </Transition>
    }
}

/// The messages of the reads that failed, in place of what they would have shown.
#[component]
fn ReadFailed(errors: ArcRwSignal<Errors>) -> impl IntoView {
    move || {
        errors
            .get()
            .into_iter()
            .map(|(_, error)| view! { <p class="form-error" role="alert" data-testid="form-error">{error.to_string()}</p> })
            .collect_view()
    }
}
