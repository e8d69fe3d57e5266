//! The Settings tab: the service's settings in this environment (the branch it tracks, root
//! directory, commands, health check, restart policy, memory limit, port); they apply from
//! the next deployment. Below them, the danger zone ([`super::danger`]).

use leptos::{ev::SubmitEvent, prelude::*};
use railyard_shared::deployments::ServiceSettings;
use railyard_shared::{EnvironmentId, ServiceId};

use crate::{
    api::projects as api,
    components::{auth_card::FormError, toast::use_toasts},
};

/// The service's settings in this environment; they apply from the next deployment.
#[component]
pub fn SettingsForm(
    service: ServiceId,
    environment: EnvironmentId,
    can_write: Signal<bool>,
    /// What an empty branch means here.
    tracks: String,
) -> impl IntoView {
    let toasts = use_toasts();
    let loaded = LocalResource::new(move || api::service_settings(service, environment));
    let branch = RwSignal::new(String::new());
    let (root, build, start, health, policy, memory, port) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let error = RwSignal::new(None::<String>);
    // The fields take the stored settings once they arrive, and only then can be edited:
    // filled earlier, what was typed would be overwritten (and saving before then would
    // clear the stored settings).
    let ready = RwSignal::new(false);
    Effect::new(move |_| match loaded.get() {
        None => {}
        Some(Err(err)) => error.set(Some(err.message)),
        Some(Ok(s)) => {
            let text = |v: Option<String>| v.unwrap_or_default();
            root.set(text(s.root_dir));
            build.set(text(s.build_command));
            start.set(text(s.start_command));
            health.set(text(s.health_check_path));
            policy.set(text(s.restart_policy));
            memory.set(text(s.memory_limit_mb.map(|mb| mb.to_string())));
            port.set(text(s.port.map(|p| p.to_string())));
            branch.set(text(s.branch));
            ready.set(true);
        }
    });
    let save = Action::new_local(move |settings: &ServiceSettings| {
        let settings = settings.clone();
        async move {
            match api::save_service_settings(service, environment, settings).await {
                Ok(_) => {
                    error.try_set(None);
                    toasts.ok("Settings saved: they apply from the next deployment.");
                }
                Err(err) => {
                    error.try_set(Some(err.message));
                }
            }
        }
    });
    let saving = save.pending();
    let locked = move || !ready.get() || !can_write.get();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if saving.get_untracked() || !can_write.get_untracked() {
            return;
        }
        let text = |s: RwSignal<String>| Some(s.get_untracked().trim().to_owned()).filter(|v| !v.is_empty());
        let Ok(memory_limit_mb) = text(memory).map(|mb| mb.parse::<i32>()).transpose() else {
            error.set(Some("The memory limit is a whole number of MB.".to_owned()));
            return;
        };
        let Ok(port) = text(port).map(|p| p.parse::<i32>()).transpose() else {
            error.set(Some("The port is a whole number.".to_owned()));
            return;
        };
        save.dispatch(ServiceSettings {
            root_dir: text(root),
            build_command: text(build),
            start_command: text(start),
            health_check_path: text(health),
            restart_policy: text(policy),
            port,
            memory_limit_mb,
            branch: text(branch),
        });
    };
    view! {
        <form class="card form settings-form" on:submit=submit data-testid="settings">
            <h2 class="card-title">"Settings"</h2>
            <p class="hint">"Left empty, Railyard detects it from the source. Changes apply from the next deployment."</p>
            <FormError error=error.into() />
            <label>"Branch this environment tracks"
                <input type="text" class="mono" placeholder=tracks bind:value=branch disabled=locked data-testid="settings-branch" />
                <span class="hint">"A push to this branch deploys here. Empty: production tracks the service's branch; other environments deploy on request or by promotion."</span>
            </label>
            <label>"Root directory"<input type="text" placeholder="." bind:value=root disabled=locked /></label>
            <label>"Build command"
                <input type="text" class="mono" placeholder="npm run build" bind:value=build disabled=locked />
            </label>
            <label>"Start command"
                <input type="text" class="mono" placeholder="node server.js" bind:value=start disabled=locked />
            </label>
            <label>"Health check path"<input type="text" placeholder="/health" bind:value=health disabled=locked /></label>
            <label>"Restart policy"
                <select bind:value=policy disabled=locked>
                    <option value="">"On failure (default)"</option>
                    <option value="on_failure">"On failure"</option>
                    <option value="always">"Always"</option>
                    <option value="never">"Never"</option>
                </select>
            </label>
            <label>"Memory limit (MB)"
                <input type="number" min="16" max="1048576" step="1" placeholder="No limit" bind:value=memory
                    disabled=locked />
            </label>
            <label>"Port"
                <input type="number" min="1" max="65535" step="1" placeholder="Any (passed as PORT)" bind:value=port
                    disabled=locked />
            </label>
            <p class="hint">"Past its memory limit the app is stopped by the kernel and restarted by its policy. \
                Leave the port empty: each release then gets its own as PORT and the next starts beside it, with no downtime. \
                A fixed port (for an app that ignores PORT) means the running release stops before the next one starts."</p>
            <div class="row"><button class="button" type="submit" disabled=move || locked() || saving.get()>"Save settings"</button></div>
        </form>
    }
}

/// What the service keeps on disk (its releases, build cache with Rust's `target/` and the
/// saved `node_modules`, pushed repository, uploads, app logs), as measured after its last
/// build, against the workspace's quota.
#[component]
pub fn DiskUsage(service: ServiceId, workspace: railyard_shared::WorkspaceId) -> impl IntoView {
    let usage = LocalResource::new(move || crate::api::fetch_usage(workspace));
    move || {
        usage.get().and_then(Result::ok).map(|usage| {
            let mine = usage
                .services
                .iter()
                .find(|s| s.service_id == service)
                .map_or(0, |s| s.bytes);
            let size = |bytes: u64| match bytes {
                0..1024 => format!("{bytes} B"),
                1024..1_048_576 => format!("{} KB", bytes / 1024),
                _ => crate::format::memory(i64::try_from(bytes).unwrap_or(i64::MAX)),
            };
            view! {
                <p class="muted disk-usage" data-testid="disk-usage">
                    {format!(
                        "On disk: {} (releases, build cache, logs) · the workspace uses {} of {}.",
                        size(mine),
                        size(usage.storage_bytes),
                        size(usage.storage_limit_bytes)
                    )}
                </p>
            }
        })
    }
}
