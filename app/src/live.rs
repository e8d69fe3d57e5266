//! The one WebSocket for live data (`/api/v1/live`): [`follow`] keeps a subscription to one
//! topic open, coming back by itself after a drop (jittered exponential backoff), and hands
//! every message of the topic to the caller. Log topics resume from the caller's cursor, so
//! a reconnect neither loses nor repeats a line.

use futures_util::{SinkExt as _, StreamExt as _};
use gloo_net::websocket::{Message, futures::WebSocket};
use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    Reconnecting,
}

impl Connection {
    /// The badge class and label of the connection indicator.
    pub fn badge(self) -> (&'static str, &'static str) {
        match self {
            Connection::Connecting => ("badge badge-pending", "connecting"),
            Connection::Live => ("badge badge-ok", "live"),
            Connection::Reconnecting => ("badge badge-down", "reconnecting"),
        }
    }
}

fn live_url() -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    format!("{scheme}://{}/api/v1/live", location.host().unwrap_or_default())
}

/// The wait before reconnect attempt `failures` (1-based): 0.5 s doubling to 30 s, each
/// between half and one and a half of that.
fn backoff_ms(failures: u32) -> u32 {
    let base = 500u32
        .saturating_mul(2u32.saturating_pow(failures.clamp(1, 7) - 1))
        .min(30_000);
    let jitter = 0.5 + js_sys::Math::random();
    (f64::from(base) * jitter) as u32
}

/// Subscribes to `topic` (from `cursor()` for logs) and calls `on_message` with each
/// message about it. Abort it to stop; it also ends by itself once `connection` is disposed
/// (its view is gone), so a late message never touches what the view owned.
pub async fn follow(
    topic: String,
    cursor: impl Fn() -> i64,
    connection: RwSignal<Connection>,
    mut on_message: impl FnMut(serde_json::Value),
) {
    let mut failures = 0u32;
    loop {
        if let Ok(socket) = WebSocket::open(&live_url()) {
            let (mut sink, mut stream) = socket.split();
            let subscribe = serde_json::json!({
                "type": "subscribe",
                "topic": topic,
                "cursor": cursor(),
            });
            if sink.send(Message::Text(subscribe.to_string())).await.is_ok() {
                while let Some(Ok(Message::Text(text))) = stream.next().await {
                    let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    if message["type"] == "subscribed" {
                        if connection.try_set(Connection::Live).is_some() {
                            return;
                        }
                        failures = 0;
                    }
                    if connection.try_get_untracked().is_none() {
                        return;
                    }
                    if message["type"] == "dropped" || message["topic"] == topic.as_str() {
                        on_message(message);
                    }
                }
            }
        }
        if connection.try_set(Connection::Reconnecting).is_some() {
            return;
        }
        failures = failures.saturating_add(1);
        gloo_timers::future::TimeoutFuture::new(backoff_ms(failures)).await;
    }
}
