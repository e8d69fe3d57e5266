//! A log, live — a deployment's build log or a service's runtime output — replayed from the
//! start over the live socket, then tailed. The list is virtualized (only the rows in view
//! exist in the page), so 100,000 lines scroll as smoothly as 100. Terminal colours become
//! allowlisted style spans (`railyard_shared::ansi`); the text is only ever text.
//!
//! Follow mode keeps the newest line in view; scrolling up leaves it ("Jump to bottom"
//! comes back). Pause holds new lines aside until resumed. Filters (stream, search) apply to
//! what is loaded; the download is the stored log as text.

use leptos::{html::Div, prelude::*};
use railyard_shared::{
    ansi,
    deployments::LogLine,
    live::{ServerMessage, Topic},
};

use crate::live::{Connection, use_live};

/// Lines kept in the page (the oldest go first).
const KEEP: usize = 100_000;
/// Height of one row, in pixels (as in the stylesheet).
const ROW: f64 = 20.0;
/// Rows rendered above and below the visible ones.
const OVERSCAN: usize = 20;

fn push_lines(target: RwSignal<Vec<LogLine>>, fresh: Vec<LogLine>) {
    target.update(|all| {
        all.extend(fresh);
        if all.len() > KEEP {
            let extra = all.len() - KEEP;
            all.drain(..extra);
        }
    });
}

/// One line: its time, then its spans.
fn line_view(line: &LogLine) -> impl IntoView + use<> {
    let spans = ansi::spans(&line.text);
    view! {
        <div class=format!("log-line log-{}", line.stream)>
            <span class="log-ts">{line.ts.format("%H:%M:%S%.3f").to_string()}</span>
            {spans.into_iter().map(|span| {
                let classes = span.style.classes();
                let css = span.style.css();
                if classes.is_empty() && css.is_empty() {
                    span.text.into_any()
                } else {
                    view! { <span class=classes style=css>{span.text}</span> }.into_any()
                }
            }).collect_view()}
        </div>
    }
}

#[component]
pub fn LiveLog(
    /// A deployment's build log or a service's runtime log.
    topic: Topic,
    title: &'static str,
    /// Where the stored log downloads as text.
    download: String,
) -> impl IntoView {
    let lines = RwSignal::new(Vec::<LogLine>::new());
    let held = RwSignal::new(Vec::<LogLine>::new());
    let cursor = StoredValue::new(0i64);
    let dropped = RwSignal::new(0u64);
    let connection = RwSignal::new(Connection::Connecting);
    let follow = RwSignal::new(true);
    let paused = RwSignal::new(false);
    let stream = RwSignal::new(String::new());
    let search = RwSignal::new(String::new());
    let scroll_top = RwSignal::new(0.0f64);
    let height = RwSignal::new(460.0f64);
    let viewport = NodeRef::<Div>::new();

    let on_message = move |message: ServerMessage| match message {
        ServerMessage::Lines { lines: batch, .. } => {
            let last = cursor.get_value();
            let fresh: Vec<LogLine> = batch.into_iter().filter(|l| l.cursor > last).collect();
            if let Some(newest) = fresh.last() {
                cursor.set_value(newest.cursor);
                push_lines(if paused.get_untracked() { held } else { lines }, fresh);
            }
        }
        ServerMessage::Dropped { count } => dropped.update(|d| *d += count),
        _ => {}
    };
    use_live().subscribe(topic, move || cursor.get_value(), connection, on_message);

    // The lines that pass the filters, as positions in `lines` (`None`: all of them).
    let matching = Memo::new(move |_| {
        let q = search.get().to_lowercase();
        let stream = stream.get();
        if q.is_empty() && stream.is_empty() {
            return None;
        }
        Some(lines.with(|all| {
            all.iter()
                .enumerate()
                .filter(|(_, l)| {
                    (stream.is_empty() || l.stream == stream)
                        && (q.is_empty() || ansi::plain(&l.text).to_lowercase().contains(&q))
                })
                .map(|(i, _)| i)
                .collect::<Vec<usize>>()
        }))
    });
    let count = move || {
        matching
            .with(|m| m.as_ref().map(Vec::len))
            .unwrap_or_else(|| lines.with(Vec::len))
    };
    let first = move || ((scroll_top.get() / ROW) as usize).saturating_sub(OVERSCAN);
    let rows = move || {
        let start = first();
        let end = (start + (height.get() / ROW) as usize + 2 * OVERSCAN).min(count());
        lines.with(|all| {
            matching.with(|m| {
                (start..end)
                    .filter_map(|i| match m {
                        Some(m) => m.get(i).and_then(|&at| all.get(at)),
                        None => all.get(i),
                    })
                    .map(line_view)
                    .collect_view()
            })
        })
    };
    // Also runs from an animation frame, perhaps after the view is gone: `try_`.
    let to_bottom = move || {
        if let Some(Some(el)) = viewport.try_get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
    };
    // Follow mode: after the rows change, the newest one is in view.
    Effect::new(move |_| {
        let _ = count();
        if follow.get_untracked() {
            request_animation_frame(to_bottom);
        }
    });
    let on_scroll = move |_| {
        let Some(el) = viewport.get_untracked() else {
            return;
        };
        let top = f64::from(el.scroll_top());
        let before = scroll_top.get_untracked();
        height.set(f64::from(el.client_height()));
        scroll_top.set(top);
        let at_bottom = top + f64::from(el.client_height()) >= f64::from(el.scroll_height()) - ROW;
        // Follow mode ends only when the reader scrolls up: lines that arrive between the
        // jump to the bottom and its scroll event leave it on.
        let follows = at_bottom || (follow.get_untracked() && top >= before);
        if follow.get_untracked() != follows {
            follow.set(follows);
        }
    };
    let jump = move |_| {
        follow.set(true);
        to_bottom();
    };
    let toggle_pause = move |_| {
        if paused.get_untracked() {
            let waiting = held.try_update(std::mem::take).unwrap_or_default();
            push_lines(lines, waiting);
        }
        paused.update(|p| *p = !*p);
    };

    view! {
        <div class="card log-card" data-testid=if title == "Build log" { "build-log" } else { "runtime-log" }>
            <div class="card-head">
                <h2>{title}</h2>
                <div class="row log-tools">
                    <select aria-label="Stream" bind:value=stream>
                        <option value="">"All streams"</option>
                        <option value="stdout">"stdout"</option>
                        <option value="stderr">"stderr"</option>
                        <option value="event">"events"</option>
                    </select>
                    <input type="search" placeholder="Search" aria-label="Search the log" bind:value=search />
                    <button class="button-ghost" type="button" on:click=toggle_pause>
                        {move || if paused.get() { "Resume" } else { "Pause" }}
                    </button>
                    <a class="button-ghost" href=download download="">"Download"</a>
                    {move || {
                        let (class, label) = connection.get().badge();
                        view! { <span class=class data-testid="log-connection"><span class="dot"></span>{label}</span> }
                    }}
                </div>
            </div>
            <div class="log" node_ref=viewport on:scroll=on_scroll data-testid="log-viewport">
                <div class="log-spacer" style:height=move || format!("{}px", count() as f64 * ROW)>
                    <div class="log-window" style:transform=move || format!("translateY({}px)", first() as f64 * ROW)>
                        {rows}
                    </div>
                </div>
                {move || (count() == 0).then(|| view! {
                    <p class="log-empty muted">{move || if search.get().is_empty() && stream.get().is_empty() {
                        "Waiting for output…"
                    } else {
                        "No line matches."
                    }}</p>
                })}
            </div>
            <div class="log-foot muted">
                <span data-testid="log-count">{move || {
                    let total = lines.with(Vec::len);
                    match matching.with(|m| m.as_ref().map(Vec::len)) {
                        Some(shown) => format!("{shown} of {total} lines"),
                        None => format!("{total} lines"),
                    }
                }}</span>
                {move || (dropped.get() > 0).then(|| view! {
                    <span class="badge badge-down">{format!("{} lines dropped while this view fell behind", dropped.get())}</span>
                })}
                {move || paused.get().then(|| view! {
                    <span class="badge badge-pending">{move || format!("paused · {} new", held.with(Vec::len))}</span>
                })}
                {move || (!follow.get()).then(|| view! {
                    <button class="button-ghost button-small" type="button" on:click=jump>"Jump to bottom ↓"</button>
                })}
            </div>
        </div>
    }
}
