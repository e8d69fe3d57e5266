//! The live socket's messages (`GET /api/v1/live`), typed for the server that sends them and
//! the dashboard (and any client) that reads them. One socket carries any number of topics.
//!
//! Client → server: `{"type":"subscribe","topic":"deployment:<id>","cursor":0}`,
//! `{"type":"unsubscribe","topic":...}`.
//! Server → client: `{"type":"subscribed","topic":...}`,
//! `{"type":"lines","topic":...,"lines":[{"cursor","ts","stream","text"}]}`,
//! `{"type":"status","topic":...,"overview":{...}}`, `{"type":"dropped","count":N}`,
//! `{"type":"error","topic":...,"message":...}`.
//!
//! Access is checked again whenever it may have changed: a topic the caller may no longer
//! read gets an `error` ("you no longer have access to this topic") and is closed; a
//! session or API token that has ended closes the socket with [`CLOSE_SIGNED_OUT`].

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    DeploymentId, EnvironmentId, ProjectId, ServiceId,
    deployments::{LogLine, ProjectOverview},
};

/// The close code of a socket whose session or API token has ended: sign in again (4000 to
/// 4999 are the application's; this one reads as 401).
pub const CLOSE_SIGNED_OUT: u16 = 4401;

/// What a subscription follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `deployment:<id>`: a deployment's build log.
    Deployment(DeploymentId),
    /// `service:<id>:<environment id>`: what a service's processes print, and Railyard's own
    /// events about them.
    Service {
        service: ServiceId,
        environment: EnvironmentId,
    },
    /// `project:<id>:<environment id>`: the canvas, a [`ProjectOverview`] on subscribing and
    /// again whenever a service, deployment or instance of it changes.
    Project {
        project: ProjectId,
        environment: EnvironmentId,
    },
}

impl Topic {
    /// Whether the topic is a log (replayed from a cursor) rather than a status.
    pub fn is_log(self) -> bool {
        !matches!(self, Self::Project { .. })
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deployment(id) => write!(f, "deployment:{id}"),
            Self::Service { service, environment } => write!(f, "service:{service}:{environment}"),
            Self::Project { project, environment } => write!(f, "project:{project}:{environment}"),
        }
    }
}

/// A topic string that is none of `deployment:<id>`, `service:<id>:<environment id>`,
/// `project:<id>:<environment id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTopic;

impl fmt::Display for UnknownTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "unknown topic: use `deployment:<id>`, `service:<id>:<environment id>` or `project:<id>:<environment id>`",
        )
    }
}

impl FromStr for Topic {
    type Err = UnknownTopic;

    fn from_str(topic: &str) -> Result<Self, UnknownTopic> {
        let (kind, rest) = topic.split_once(':').ok_or(UnknownTopic)?;
        let pair = || {
            let (a, b) = rest.split_once(':')?;
            Some((a.parse::<Uuid>().ok()?, b.parse::<Uuid>().ok()?.into()))
        };
        match kind {
            "deployment" => rest.parse().map(Self::Deployment).map_err(|_| UnknownTopic),
            "service" => pair()
                .map(|(service, environment)| Self::Service {
                    service: service.into(),
                    environment,
                })
                .ok_or(UnknownTopic),
            "project" => pair()
                .map(|(project, environment)| Self::Project {
                    project: project.into(),
                    environment,
                })
                .ok_or(UnknownTopic),
            _ => Err(UnknownTopic),
        }
    }
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Follow `topic`; a log topic replays what is stored after `cursor` first.
    Subscribe {
        topic: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<i64>,
    },
    Unsubscribe {
        topic: String,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The subscription to `topic` holds; its replay (for a log) follows.
    Subscribed { topic: String },
    /// Log lines of `topic`, in cursor order.
    Lines { topic: String, lines: Vec<LogLine> },
    /// The project overview of a `project:` topic.
    Status {
        topic: String,
        overview: ProjectOverview,
    },
    /// The client fell behind: `count` live messages were skipped (a resubscribe from the
    /// last cursor recovers every line).
    Dropped { count: u64 },
    /// A subscription was refused (or a message not understood: `topic` is then empty).
    Error { topic: String, message: String },
}

impl ServerMessage {
    /// The topic the message is about (`None`: it concerns the whole socket).
    pub fn topic(&self) -> Option<&str> {
        match self {
            Self::Subscribed { topic } | Self::Lines { topic, .. } | Self::Status { topic, .. } => {
                Some(topic)
            }
            Self::Error { topic, .. } => Some(topic.as_str()).filter(|t| !t.is_empty()),
            Self::Dropped { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_read_back_as_written() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let service = Topic::Service {
            service: ServiceId(a),
            environment: EnvironmentId(b),
        };
        for topic in [
            Topic::Deployment(DeploymentId(a)),
            service,
            Topic::Project {
                project: ProjectId(a),
                environment: EnvironmentId(b),
            },
        ] {
            assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        }
        assert_eq!(format!("service:{a}:{b}").parse(), Ok(service));
        for bad in [
            "",
            "deployment",
            "deployment:nope",
            &format!("service:{a}"),
            &format!("build:{a}"),
        ] {
            assert_eq!(bad.parse::<Topic>(), Err(UnknownTopic), "{bad}");
        }
    }

    #[test]
    fn messages_keep_their_wire_shape() {
        let subscribe: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","topic":"deployment:x","cursor":7}"#).unwrap();
        assert_eq!(
            subscribe,
            ClientMessage::Subscribe {
                topic: "deployment:x".into(),
                cursor: Some(7)
            }
        );
        let dropped = serde_json::to_value(ServerMessage::Dropped { count: 3 }).unwrap();
        assert_eq!(dropped, serde_json::json!({"type": "dropped", "count": 3}));
        let error = serde_json::to_value(ServerMessage::Error {
            topic: "t".into(),
            message: "no".into(),
        })
        .unwrap();
        assert_eq!(
            error,
            serde_json::json!({"type": "error", "topic": "t", "message": "no"})
        );
    }
}
