//! The log bus: live log lines fan out to every WebSocket subscriber of every server
//! replica — through Redis pub/sub (fred) when `REDIS_URL` is set, else an in-process
//! broadcast channel. Only lines already stored are published, in cursor order, so a
//! subscriber can fill any gap (or a reconnect) from the store.
//!
//! Each process keeps one bounded broadcast channel: a subscriber that falls behind loses
//! the oldest messages (it learns how many) instead of slowing the others or growing memory.

use std::sync::Arc;

use anyhow::Context as _;
use fred::{
    clients::SubscriberClient,
    interfaces::{ClientLike as _, EventInterface as _, PubsubInterface as _},
};
use railyard_shared::deployments::LogLine;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

/// Messages a process holds for slow subscribers before they miss some.
pub const CAPACITY: usize = 16 * 1024;

/// What travels on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Live {
    /// Stored lines of one log, in cursor order. `topic` is `deployment:<id>`.
    Lines { topic: String, lines: Vec<LogLine> },
    /// Something shown on a project's canvas changed: in one environment, or (a service
    /// added, renamed or removed) in all of them.
    Status {
        project: uuid::Uuid,
        environment: Option<uuid::Uuid>,
    },
    /// What `user` may see may have changed (a session or token revoked, a role changed, a
    /// membership ended), or, with no user, anyone's (a workspace deleted): their live
    /// sockets check their credential and every topic again.
    Access { user: Option<uuid::Uuid> },
}

#[derive(Clone)]
pub struct LogBus {
    local: broadcast::Sender<Arc<Live>>,
    /// Set with Redis: messages go out through it (in order) and come back to every
    /// replica, this one included, through the subscriber.
    outbox: Option<mpsc::UnboundedSender<String>>,
}

impl std::fmt::Debug for LogBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBus")
            .field("redis", &self.outbox.is_some())
            .field("subscribers", &self.local.receiver_count())
            .finish()
    }
}

impl LogBus {
    /// A bus for this process only.
    pub fn local() -> Self {
        Self {
            local: broadcast::channel(CAPACITY).0,
            outbox: None,
        }
    }

    /// A bus shared by every replica through Redis channel `<namespace>:live`.
    pub async fn redis(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let channel = format!("railyard:{namespace}:live");
        let config = fred::types::config::Config::from_url(url).context("invalid REDIS_URL")?;
        let builder = fred::types::Builder::from_config(config);
        let publisher = builder.build().context("the Redis client for the log bus")?;
        let subscriber: SubscriberClient = builder
            .build_subscriber_client()
            .context("the Redis subscriber for the log bus")?;
        publisher
            .init()
            .await
            .context("connecting the log bus to Redis")?;
        subscriber
            .init()
            .await
            .context("connecting the log bus to Redis")?;
        let _resubscribe = subscriber.manage_subscriptions();
        subscriber.subscribe(channel.clone()).await?;

        let local = broadcast::channel(CAPACITY).0;
        let mut messages = subscriber.message_rx();
        tokio::spawn({
            let local = local.clone();
            async move {
                let _keep = subscriber;
                loop {
                    match messages.recv().await {
                        Ok(message) => {
                            let Some(text) = message.value.as_str() else {
                                continue;
                            };
                            match serde_json::from_str::<Live>(&text) {
                                Ok(live) => {
                                    let _ = local.send(Arc::new(live));
                                }
                                Err(err) => tracing::warn!(error = %err, "an unreadable log bus message"),
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "the log bus fell behind Redis");
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
        // One task publishes, so messages leave in the order they were published.
        let (outbox, mut queue) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = queue.recv().await {
                let sent: Result<(), _> = publisher.publish(channel.as_str(), text).await;
                if let Err(err) = sent {
                    tracing::warn!(error = %err, "publishing on the log bus failed");
                }
            }
        });
        Ok(Self {
            local,
            outbox: Some(outbox),
        })
    }

    /// Tells `user`'s live sockets (everyone's, with `None`) on every replica that their
    /// access may have changed: call it once the change is committed.
    pub fn access_changed(&self, user: Option<uuid::Uuid>) {
        self.publish(Live::Access { user });
    }

    /// Publishes to every subscriber (of every replica, with Redis).
    pub fn publish(&self, live: Live) {
        match &self.outbox {
            Some(outbox) => match serde_json::to_string(&live) {
                Ok(text) => {
                    let _ = outbox.send(text);
                }
                Err(err) => tracing::warn!(error = %err, "a log bus message did not serialize"),
            },
            None => {
                let _ = self.local.send(Arc::new(live));
            }
        }
    }

    /// Publishes to this process's subscribers only (for what every replica learns by
    /// itself, such as the database's status notifications).
    pub fn publish_local(&self, live: Live) {
        let _ = self.local.send(Arc::new(live));
    }

    /// Everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Live>> {
        self.local.subscribe()
    }
}
