//! The GitHub tab of "New service": connect GitHub (asking for the `repo` scope only
//! now), then pick one of the account's repositories (searchable) and its branch.

use leptos::prelude::*;
use railyard_shared::github::GithubRepository;

use crate::api::github as api;

/// The repository and branch picked; `back` is where connecting GitHub returns to.
#[component]
pub fn GithubPicker(
    repository: RwSignal<Option<String>>,
    branch: RwSignal<String>,
    back: String,
) -> impl IntoView {
    let connection = LocalResource::new(api::find_connection);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Checking the GitHub connection…"</p> }>
            {move || Suspend::new({
                let back = back.clone();
                async move {
                    match connection.await {
                        Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
                        Ok(c) if !c.available => view! {
                            <p class="muted" data-testid="github-unavailable">"GitHub is not set up on this instance (an operator sets GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET). Use a git URL instead."</p>
                        }.into_any(),
                        Ok(c) if !c.connected || c.broken.is_some() => {
                            let broken = c.broken.clone();
                            view! {
                                <div class="connect-github" data-testid="connect-github">
                                    {broken.map(|why| view! { <p class="form-error" data-testid="github-broken">{format!("{why}. Reconnect GitHub to list repositories and deploy private ones.")}</p> })}
                                    <p class="muted">"Railyard asks GitHub for access to your repositories (the repo scope) to clone private ones, add a webhook that deploys on push, and report each deployment back."</p>
                                    <a class="button" rel="external" href=api::connect_url(&back)>
                                        {if c.connected { "Reconnect GitHub" } else { "Connect GitHub" }}
                                    </a>
                                </div>
                            }.into_any()
                        }
                        Ok(c) => view! {
                            <p class="muted small">"Connected to GitHub as "<strong>{c.login.unwrap_or_default()}</strong></p>
                            <RepositoryList repository branch />
                        }.into_any(),
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn RepositoryList(repository: RwSignal<Option<String>>, branch: RwSignal<String>) -> impl IntoView {
    let all = LocalResource::new(|| api::list_repositories(""));
    let query = RwSignal::new(String::new());
    let branches = LocalResource::new(move || {
        let chosen = repository.get();
        async move {
            match chosen {
                Some(name) => api::list_branches(&name).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let choose = move |repo: &GithubRepository| {
        repository.set(Some(repo.full_name.clone()));
        branch.set(repo.default_branch.clone());
    };
    view! {
        <label>"Repository"
            <input type="search" placeholder="Search your repositories" bind:value=query data-testid="repo-search" />
        </label>
        <Suspense fallback=|| view! { <p class="muted">"Loading repositories…"</p> }>
            {move || Suspend::new(async move {
                match all.await {
                    Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
                    Ok(list) => {
                        let needle = query.get().to_lowercase();
                        let shown: Vec<GithubRepository> = list
                            .into_iter()
                            .filter(|r| needle.is_empty() || r.full_name.to_lowercase().contains(&needle))
                            .take(50)
                            .collect();
                        if shown.is_empty() {
                            return view! { <p class="muted">"No repository matches."</p> }.into_any();
                        }
                        view! {
                            <ul class="repo-list" role="listbox" aria-label="Repositories" data-testid="repo-list">
                                {shown.into_iter().map(|repo| {
                                    let name = repo.full_name.clone();
                                    let selected = {
                                        let name = name.clone();
                                        move || repository.get().as_deref() == Some(name.as_str())
                                    };
                                    view! {
                                        <li role="option" aria-selected=move || selected().to_string()>
                                            <button type="button" class="repo-option" on:click=move |_| choose(&repo)>
                                                <span class="mono">{name.clone()}</span>
                                                {repo.private.then(|| view! { <span class="tag">"private"</span> })}
                                            </button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match branches.await {
                    Ok(Some(names)) => view! {
                        <label>"Branch"
                            <select bind:value=branch data-testid="branch-select">
                                {names.into_iter().map(|b| {
                                    let selected = b == branch.get_untracked();
                                    view! { <option value=b.clone() selected=selected>{b.clone()}</option> }
                                }).collect_view()}
                            </select>
                            <span class="hint">"Pushes to this branch deploy to production."</span>
                        </label>
                    }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
