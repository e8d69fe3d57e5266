//! A log, live — a deployment's build log or a service's runtime output: the one WebSocket
//! (`/api/v1/live`) replays it from the start, then tails it. A dropped connection comes back by itself (jittered exponential
//! backoff) from the last cursor seen, so nothing is lost or shown twice. Text is only ever
//! text (escaped by the view); terminal colour codes are removed.

use futures_util::{SinkExt as _, StreamExt as _, future::AbortHandle};
use gloo_net::websocket::{Message, futures::WebSocket};
use leptos::{prelude::*, task::spawn_local};
use railyard_shared::deployments::LogLine;

/// Lines kept in the page (the oldest go first).
const KEEP: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    Connecting,
    Live,
    Reconnecting,
}

/// `text` without terminal escape sequences (colours, cursor moves, OSC titles and links).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn live_url() -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    format!("{scheme}://{}/api/v1/live", location.host().unwrap_or_default())
}

#[component]
pub fn LiveLog(
    /// `deployment:<id>` or `service:<id>:<environment id>`.
    topic: String,
    title: &'static str,
) -> impl IntoView {
    let lines = RwSignal::new(Vec::<LogLine>::new());
    let connection = RwSignal::new(Connection::Connecting);
    let follow = RwSignal::new(true);
    let view_ref = NodeRef::<leptos::html::Pre>::new();
    let (handle, registration) = AbortHandle::new_pair();
    spawn_local(async move {
        let _ =
            futures_util::future::Abortable::new(follow_log(topic, lines, connection), registration).await;
    });
    on_cleanup(move || handle.abort());
    // Follow mode: keep the newest line in view.
    Effect::new(move |_| {
        lines.track();
        if follow.get_untracked()
            && let Some(pre) = view_ref.get()
        {
            pre.set_scroll_top(pre.scroll_height());
        }
    });
    let indicator = move || match connection.get() {
        Connection::Connecting => ("badge badge-pending", "connecting"),
        Connection::Live => ("badge badge-ok", "live"),
        Connection::Reconnecting => ("badge badge-down", "reconnecting"),
    };
    view! {
        <div class="card log-card" data-testid=if title == "Build log" { "build-log" } else { "runtime-log" }>
            <div class="card-head">
                <h2>{title}</h2>
                <div class="row">
                    <label class="check"><input type="checkbox" bind:checked=follow />"Follow"</label>
                    <span class=move || indicator().0 data-testid="log-connection">
                        <span class="dot"></span>{move || indicator().1}
                    </span>
                </div>
            </div>
            <pre class="log" node_ref=view_ref>
                <For each=move || lines.get() key=|line| line.cursor let:line>
                    <div class=format!("log-line log-{}", line.stream)>
                        <span class="log-ts">{line.ts.format("%H:%M:%S%.3f").to_string()}</span>
                        {strip_ansi(&line.text)}
                    </div>
                </For>
            </pre>
        </div>
    }
}

/// Keeps a socket open (reconnecting with backoff) and appends what arrives.
async fn follow_log(topic: String, lines: RwSignal<Vec<LogLine>>, connection: RwSignal<Connection>) {
    let mut cursor = 0i64;
    let mut failures = 0u32;
    loop {
        if let Ok(socket) = WebSocket::open(&live_url()) {
            let (mut sink, mut stream) = socket.split();
            let subscribe = serde_json::json!({
                "type": "subscribe",
                "topic": topic,
                "cursor": cursor,
            });
            if sink.send(Message::Text(subscribe.to_string())).await.is_ok() {
                while let Some(Ok(Message::Text(text))) = stream.next().await {
                    let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    match message["type"].as_str() {
                        Some("subscribed") => {
                            connection.set(Connection::Live);
                            failures = 0;
                        }
                        Some("lines") => {
                            let batch: Vec<LogLine> =
                                serde_json::from_value(message["lines"].clone()).unwrap_or_default();
                            let fresh: Vec<LogLine> =
                                batch.into_iter().filter(|l| l.cursor > cursor).collect();
                            if let Some(last) = fresh.last() {
                                cursor = last.cursor;
                                lines.update(|all| {
                                    all.extend(fresh);
                                    if all.len() > KEEP {
                                        let extra = all.len() - KEEP;
                                        all.drain(..extra);
                                    }
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        connection.set(Connection::Reconnecting);
        failures = failures.saturating_add(1);
        // 0.5 s doubling to 30 s, each wait between half and one and a half of that.
        let base = (500u32.saturating_mul(2u32.saturating_pow(failures.min(6) - 1))).min(30_000);
        let jitter = 0.5 + js_sys::Math::random();
        gloo_timers::future::TimeoutFuture::new((f64::from(base) * jitter) as u32).await;
    }
}
