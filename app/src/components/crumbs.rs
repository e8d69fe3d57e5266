//! The top bar's breadcrumbs: a page that shows a named thing (a project, a service) says
//! its trail with [`set_crumbs`], so the bar shows names, never ids. Other pages get theirs
//! from the path.

use leptos::prelude::*;

/// One step of the trail: its label, and where it leads (`None`: the current page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

impl Crumb {
    pub fn link(label: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            href: Some(href.into()),
        }
    }

    pub fn here(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            href: None,
        }
    }
}

/// The trail the current page set, if it set one.
#[derive(Clone, Copy)]
pub struct Crumbs(pub RwSignal<Option<Vec<Crumb>>>);

pub fn provide_crumbs() {
    provide_context(Crumbs(RwSignal::new(None)));
}

pub fn use_crumbs() -> Crumbs {
    expect_context::<Crumbs>()
}

/// Shows `trail` while the calling component lives (a page that replaced it keeps its own).
pub fn set_crumbs(trail: Vec<Crumb>) {
    let crumbs = use_crumbs().0;
    crumbs.set(Some(trail.clone()));
    on_cleanup(move || {
        crumbs.try_update(|now| {
            if now.as_ref() == Some(&trail) {
                *now = None;
            }
        });
    });
}

/// Shows the trail `trail` reads (once it has one: the page's data has loaded), following
/// it as it changes, while the calling component lives.
pub fn follow_crumbs(trail: impl Fn() -> Option<Vec<Crumb>> + 'static) {
    let crumbs = use_crumbs().0;
    let mine = StoredValue::new(None::<Vec<Crumb>>);
    Effect::new(move |_| {
        if let Some(now) = trail() {
            mine.set_value(Some(now.clone()));
            crumbs.set(Some(now));
        }
    });
    on_cleanup(move || {
        crumbs.try_update(|now| {
            if mine
                .try_get_value()
                .flatten()
                .is_some_and(|m| now.as_ref() == Some(&m))
            {
                *now = None;
            }
        });
    });
}
