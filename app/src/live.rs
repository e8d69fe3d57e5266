//! The one WebSocket for live data (`/api/v1/live`), one per tab: every subscription on the
//! page shares it ([`provide_live`] opens it for the signed-in frame, [`use_live`] reaches
//! it). It comes back by itself after a drop (jittered exponential backoff) and subscribes
//! again to every topic still followed; log topics resume from their subscriber's cursor, so
//! a reconnect neither loses nor repeats a line. Messages are [`railyard_shared::live`]'s.

use std::{cell::RefCell, collections::HashMap, pin::pin, rc::Rc};

use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::{
    SinkExt as _, StreamExt as _,
    future::{AbortHandle, Abortable, select},
};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};
use leptos::{prelude::*, task::spawn_local};
use railyard_shared::live::{CLOSE_SIGNED_OUT, ClientMessage, ServerMessage, Topic};

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

type Handler = Rc<RefCell<dyn FnMut(ServerMessage)>>;

struct Subscriber {
    topic: String,
    log: bool,
    cursor: Box<dyn Fn() -> i64>,
    connection: RwSignal<Connection>,
    on_message: Handler,
}

impl Subscriber {
    fn subscribe(&self) -> ClientMessage {
        ClientMessage::Subscribe {
            topic: self.topic.clone(),
            cursor: self.log.then(|| (self.cursor)()),
        }
    }
}

#[derive(Default)]
struct Hub {
    next: u64,
    subscribers: HashMap<u64, Subscriber>,
    /// The open socket's outbox (`None` while there is none).
    outbox: Option<UnboundedSender<ClientMessage>>,
}

impl Hub {
    fn send(&self, message: ClientMessage) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.unbounded_send(message);
        }
    }
}

/// The tab's live socket.
#[derive(Clone, Copy)]
pub struct Live {
    hub: StoredValue<Hub, LocalStorage>,
}

/// Opens the tab's live socket for as long as the calling component lives.
pub fn provide_live() {
    let live = Live {
        hub: StoredValue::new_local(Hub::default()),
    };
    provide_context(live);
    let (handle, registration) = AbortHandle::new_pair();
    spawn_local(async move {
        let _ = Abortable::new(live.run(), registration).await;
    });
    on_cleanup(move || handle.abort());
}

pub fn use_live() -> Live {
    expect_context::<Live>()
}

impl Live {
    /// Follows `topic` until the calling component is gone: `on_message` gets each message
    /// about it (and every `dropped`), `connection` says whether it is live. A log topic
    /// replays from `cursor()` (read again at every reconnect).
    pub fn subscribe(
        self,
        topic: Topic,
        cursor: impl Fn() -> i64 + 'static,
        connection: RwSignal<Connection>,
        on_message: impl FnMut(ServerMessage) + 'static,
    ) {
        let subscriber = Subscriber {
            topic: topic.to_string(),
            log: topic.is_log(),
            cursor: Box::new(cursor),
            connection,
            on_message: Rc::new(RefCell::new(on_message)),
        };
        let id = self.hub.try_update_value(|hub| {
            hub.next += 1;
            // A second subscriber of a topic subscribes again: the server replays from its
            // cursor (the first one skips what it has by cursor).
            hub.send(subscriber.subscribe());
            hub.subscribers.insert(hub.next, subscriber);
            hub.next
        });
        on_cleanup(move || {
            if let Some(id) = id {
                self.unsubscribe(id);
            }
        });
    }

    fn unsubscribe(self, id: u64) {
        self.hub.try_update_value(|hub| {
            let Some(gone) = hub.subscribers.remove(&id) else {
                return;
            };
            if !hub.subscribers.values().any(|s| s.topic == gone.topic) {
                hub.send(ClientMessage::Unsubscribe { topic: gone.topic });
            }
        });
    }

    /// Hands `message` to the subscribers it concerns, outside the hub (a handler may
    /// subscribe or unsubscribe).
    fn dispatch(self, message: ServerMessage) {
        let concerned: Vec<(RwSignal<Connection>, Handler)> = self
            .hub
            .try_with_value(|hub| {
                hub.subscribers
                    .values()
                    .filter(|s| message.topic().is_none_or(|topic| topic == s.topic))
                    .map(|s| (s.connection, s.on_message.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let subscribed = matches!(message, ServerMessage::Subscribed { .. });
        for (connection, handler) in concerned {
            if subscribed {
                connection.try_set(Connection::Live);
            }
            (handler.borrow_mut())(message.clone());
        }
    }

    /// Every subscriber's connection becomes `state` (set outside the hub, as above).
    fn mark(self, state: Connection) {
        let connections: Vec<RwSignal<Connection>> = self
            .hub
            .try_with_value(|hub| hub.subscribers.values().map(|s| s.connection).collect())
            .unwrap_or_default();
        for connection in connections {
            connection.try_set(state);
        }
    }

    async fn run(self) {
        let failures = std::cell::Cell::new(0u32);
        loop {
            if let Ok(socket) = WebSocket::open(&live_url()) {
                let (mut sink, mut stream) = socket.split();
                let (outbox, mut queued) = unbounded::<ClientMessage>();
                self.hub.try_update_value(|hub| {
                    for s in hub.subscribers.values() {
                        let _ = outbox.unbounded_send(s.subscribe());
                    }
                    hub.outbox = Some(outbox);
                });
                let writer = async move {
                    while let Some(message) = queued.next().await {
                        let Ok(text) = serde_json::to_string(&message) else {
                            continue;
                        };
                        if sink.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                    }
                };
                let signed_out = std::cell::Cell::new(false);
                let reader = async {
                    loop {
                        let text = match stream.next().await {
                            Some(Ok(Message::Text(text))) => text,
                            Some(Ok(Message::Bytes(_))) => continue,
                            Some(Err(WebSocketError::ConnectionClose(close))) => {
                                signed_out.set(close.code == CLOSE_SIGNED_OUT);
                                break;
                            }
                            _ => break,
                        };
                        let Ok(message) = serde_json::from_str::<ServerMessage>(&text) else {
                            continue;
                        };
                        if matches!(message, ServerMessage::Subscribed { .. }) {
                            failures.set(0);
                        }
                        self.dispatch(message);
                    }
                };
                select(pin!(writer), pin!(reader)).await;
                self.hub.try_update_value(|hub| hub.outbox = None);
                if signed_out.get() {
                    // The session ended (signed out elsewhere, revoked): no reconnecting.
                    let _ = window().location().set_href("/login");
                    return;
                }
            }
            self.mark(Connection::Reconnecting);
            failures.set(failures.get().saturating_add(1));
            gloo_timers::future::TimeoutFuture::new(backoff_ms(failures.get())).await;
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
