//! The "New service" dialog.

use leptos::{ev::SubmitEvent, prelude::*};
use railyard_shared::ProjectId;
use railyard_shared::projects::{Service, Source};

use super::github_source::GithubPicker;
use crate::{
    api::{github, projects as api},
    components::{auth_card::FormError, toast::use_toasts},
};

/// Adds a service: from a GitHub repository (picked from the connected account), a git
/// repository (with its branch), by `git push` (the remote URL to push to), or by upload
/// (`railyard up`).
#[component]
pub fn NewService(project: ProjectId, project_name: String, on_close: Callback<()>) -> impl IntoView {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Github,
        Git,
        Push,
        Upload,
        Postgres,
    }
    let kind = RwSignal::new(Kind::Github);
    let repository = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let branch = RwSignal::new("main".to_owned());
    let error = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<Service>);
    let toasts = use_toasts();
    let add = Action::new_local(move |(text, source): &(String, Source)| {
        let (text, source) = (text.clone(), source.clone());
        async move {
            let made = match source {
                Source::Github { repository, branch } => {
                    github::create_service(project, text, repository, branch)
                        .await
                        .map(|made| {
                            if let Some(warning) = made.warning {
                                toasts.error(warning);
                            }
                            made.service
                        })
                }
                source => api::create_service(project, text, source).await,
            };
            match made {
                Ok(service) => {
                    error.try_set(None);
                    toasts.ok(format!("Service {} added.", service.name));
                    if matches!(kind.get_untracked(), Kind::Git | Kind::Github | Kind::Postgres) {
                        on_close.run(());
                    } else {
                        created.try_set(Some(service));
                    }
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let adding = add.pending();
    let create = move |ev: SubmitEvent| {
        ev.prevent_default();
        let source = match kind.get_untracked() {
            Kind::Github => match repository.get_untracked() {
                Some(repository) => Source::Github {
                    repository,
                    branch: branch.get_untracked(),
                },
                None => {
                    error.set(Some("Pick a repository first.".to_owned()));
                    return;
                }
            },
            Kind::Git => Source::Git {
                url: url.get_untracked(),
                branch: branch.get_untracked(),
            },
            Kind::Push => Source::Push {
                branch: branch.get_untracked(),
            },
            Kind::Upload => Source::Upload {},
            Kind::Postgres => Source::Postgres {},
        };
        if !adding.get_untracked() {
            add.dispatch((name.get_untracked(), source));
        }
    };
    let origin = window().location().origin().unwrap_or_default();
    let back = format!(
        "{}?new=service",
        window().location().pathname().unwrap_or_default()
    );
    let tab = move |k: Kind, label: &'static str| {
        view! {
            <button role="tab" type="button" aria-selected=move || (kind.get() == k).to_string()
                on:click=move |_| kind.set(k)>{label}</button>
        }
    };
    view! {
        <div class="dialog-backdrop" on:click=move |_| on_close.run(())>
            <div class="card dialog" role="dialog" aria-modal="true" aria-label="New service"
                on:click=|ev| ev.stop_propagation() data-testid="new-service">
                <div class="card-head">
                    <h2>"New service"</h2>
                    <button class="button-ghost" type="button" aria-label="Close" on:click=move |_| on_close.run(())>"✕"</button>
                </div>
                {move || match created.get() {
                    Some(service) => {
                        let remote = format!("{origin}/git/{project_name}/{}.git", service.name);
                        view! {
                            <div class="instructions" data-testid="push-instructions">
                                {if kind.get_untracked() == Kind::Push { view! {
                                    <p>"Push to deploy: each push to "<code>{branch.get_untracked()}</code>" deploys to production. Use an API token (Account → API tokens) as the password."</p>
                                    <pre class="code">{format!("git remote add railyard {remote}\ngit push railyard {}", branch.get_untracked())}</pre>
                                }.into_any() } else { view! {
                                    <p>"Upload the code from its directory with the CLI; it follows the build:"</p>
                                    <pre class="code">{format!("railyard up --service {}", service.id)}</pre>
                                }.into_any() }}
                                <div class="row"><button class="button" type="button" on:click=move |_| on_close.run(())>"Done"</button></div>
                            </div>
                        }.into_any()
                    }
                    None => view! {
                        <form class="form" on:submit=create>
                            <nav class="tabs" role="tablist">
                                {tab(Kind::Github, "GitHub")}
                                {tab(Kind::Git, "Git URL")}
                                {tab(Kind::Push, "git push")}
                                {tab(Kind::Upload, "Upload")}
                                {tab(Kind::Postgres, "PostgreSQL")}
                            </nav>
                            <FormError error=error.into() />
                            <label>"Service name"
                                <input type="text" required maxlength="39" placeholder="web" bind:value=name />
                            </label>
                            {
                                let back = back.clone();
                                move || (kind.get() == Kind::Github).then(|| view! {
                                    <GithubPicker repository branch back=back.clone() />
                                })
                            }
                            {move || (kind.get() == Kind::Git).then(|| view! {
                                <label>"Git repository"
                                    <input type="text" required placeholder="https://github.com/you/app.git" bind:value=url />
                                    <span class="hint">"https://, ssh:// or file:// of a repository this server can read."</span>
                                </label>
                            })}
                            {move || (kind.get() == Kind::Postgres).then(|| view! {
                                <p class="hint" data-testid="postgres-hint">"A database of its own in every environment (a copy of the source's in a clone or preview), backed up daily and verified. Reference it from other services as "<code>"${{ postgres.DATABASE_URL }}"</code>"."</p>
                            })}
                            {move || matches!(kind.get(), Kind::Git | Kind::Push).then(|| view! {
                                <label>"Branch"
                                    <input type="text" required bind:value=branch />
                                </label>
                            })}
                            <div class="row"><button class="button" type="submit"
                                disabled=move || adding.get() || (kind.get() == Kind::Github && repository.get().is_none())>"Add service"</button></div>
                        </form>
                    }.into_any(),
                }}
            </div>
        </div>
    }
}
