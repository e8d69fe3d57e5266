//! `GET /api/v1/live`: the one WebSocket for live data. Authenticated like every API call
//! (the session cookie, or a bearer API token for non-browser clients) and refused unless a
//! browser's `Origin` is this server's own. The client subscribes to logs from a cursor and
//! gets the replay from the store, then the live tail, in order, with no gap and no
//! duplicate (a gap in the live stream is filled from the store). Lines are batched into
//! one frame per topic every 16 ms; a client too slow for the bus gets
//! `{"type":"dropped","count":N}` and the tail continues (reconnecting from its last cursor
//! recovers everything).
//!
//! Topics: `deployment:<id>` (a build log), `service:<id>:<environment id>` (what the
//! service's processes print, and Railyard's own events about them), and
//! `project:<id>:<environment id>` (the canvas: a [`ProjectOverview`] on subscribing and
//! again whenever a service, deployment or instance of it changes, at most one per frame).
//!
//! The messages both ways are [`railyard_shared::live`]'s, one socket carrying any number of
//! topics.

use std::{collections::HashMap, time::Duration};

use axum::{
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, header},
    response::Response,
};
use futures_util::{SinkExt as _, StreamExt as _};
use railyard_shared::{
    auth::Role,
    deployments::{LogLine, ProjectOverview},
    live::{CLOSE_SIGNED_OUT, ClientMessage, ServerMessage, Topic, UnknownTopic},
};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::scope::{authorize_project, authorize_service, environment_of, require_log_reader};
use crate::models::log_lines::{LogQuery, deployment_lines, service_lines};
use crate::{
    app::AppState,
    auth::Caller,
    error::{AppError, AppResult},
    logbus::Live,
    models::deployment::Deployments,
    status,
};

/// Frames are sent at most this often (lines that arrive meanwhile share one).
const BATCH_EVERY: Duration = Duration::from_millis(16);
/// Lines read from the store per query while replaying.
const REPLAY_PAGE: i64 = 5000;
/// What a topic check answers when it could not ask the database (nothing is revoked for it).
const UNAVAILABLE: &str = "the database is unavailable";
/// Topics one socket may have open at once.
const MAX_TOPICS: usize = 100;
/// `subscribe` requests one socket may send per [`SUBSCRIBE_WINDOW`] (each one replays).
const MAX_SUBSCRIBES: u32 = 200;
const SUBSCRIBE_WINDOW: Duration = Duration::from_secs(10);
/// How often a socket checks its credential and topics again without being told to: the
/// bus says so at once when access changes ([`Live::Access`]); this catches what expires.
const REAUTHORIZE_EVERY: Duration = Duration::from_secs(30);

/// Whether a browser's `Origin` is this server (its public URL, its own host, or a
/// configured CORS origin). Clients that send no `Origin` are not browsers.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    let own = state.config.http.public_url.trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin == own
        || (!host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}")))
        || state
            .config
            .auth
            .cors_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/') == origin)
}

pub async fn live(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> AppResult<Response> {
    if !origin_allowed(&state, &headers) {
        return Err(AppError::forbidden());
    }
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            if let Err(err) = serve(state, caller, socket).await {
                tracing::debug!(error = %err, "a live connection ended");
            }
        }))
}

/// Which stored log a topic is.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// `deployment:<id>`: a build log.
    Deployment(Uuid),
    /// `service:<id>:<environment id>`: what a service's processes print.
    Service(Uuid, Uuid),
}

impl Source {
    fn of(topic: Topic) -> Option<Self> {
        match topic {
            Topic::Deployment(id) => Some(Self::Deployment(id.uuid())),
            Topic::Service { service, environment } => {
                Some(Self::Service(service.uuid(), environment.uuid()))
            }
            Topic::Project { .. } => None,
        }
    }

    /// Up to `limit` stored lines after `after`.
    async fn read(
        self,
        conn: &mut diesel_async::AsyncPgConnection,
        after: i64,
        limit: i64,
    ) -> diesel::QueryResult<Vec<LogLine>> {
        let query = LogQuery::after(after, limit);
        match self {
            Self::Deployment(id) => deployment_lines(conn, id, &query).await,
            Self::Service(service, environment) => service_lines(conn, service, environment, &query).await,
        }
    }
}

/// A subscription: the log and the last cursor sent.
struct Subscription {
    source: Source,
    last: i64,
    /// After the client fell behind the bus: take the next live line as it comes.
    resync: bool,
    pending: Vec<LogLine>,
}

async fn serve(state: AppState, caller: Caller, socket: WebSocket) -> anyhow::Result<()> {
    let (mut sink, mut stream) = socket.split();
    // Subscribed to the bus before any replay: nothing stored after the replay is missed.
    let mut bus = state.bus.subscribe();
    let mut subscriptions: HashMap<String, Subscription> = HashMap::new();
    let mut watches: HashMap<String, Watch> = HashMap::new();
    let mut tick = tokio::time::interval(BATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recheck = tokio::time::interval(REAUTHORIZE_EVERY);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.tick().await;
    let mut subscribes = (tokio::time::Instant::now(), 0_u32);
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else { return Ok(()) };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => return Ok(()),
                    _ => continue,
                };
                match serde_json::from_str::<ClientMessage>(text.as_str()) {
                    Ok(ClientMessage::Subscribe { topic, cursor }) => {
                        if subscribes.0.elapsed() >= SUBSCRIBE_WINDOW {
                            subscribes = (tokio::time::Instant::now(), 0);
                        }
                        subscribes.1 += 1;
                        let open = subscriptions.len() + watches.len();
                        let refusal = if subscribes.1 > MAX_SUBSCRIBES {
                            Some(format!(
                                "more than {MAX_SUBSCRIBES} subscribe requests in {} s on one socket; slow down",
                                SUBSCRIBE_WINDOW.as_secs()
                            ))
                        } else if open >= MAX_TOPICS
                            && !subscriptions.contains_key(&topic)
                            && !watches.contains_key(&topic)
                        {
                            Some(format!("a socket may have {MAX_TOPICS} topics open at once; unsubscribe from one first"))
                        } else {
                            None
                        };
                        if let Some(message) = refusal {
                            send(&mut sink, ServerMessage::Error { topic, message }).await?;
                            continue;
                        }
                        let opened = match topic.parse::<Topic>() {
                            Err(unknown) => Err(unknown.to_string()),
                            Ok(Topic::Project { project, environment }) => {
                                watch(&state, &caller, project.uuid(), environment.uuid()).await.map(|watch| {
                                    watches.insert(topic.clone(), watch);
                                    Vec::new()
                                })
                            }
                            Ok(log) => subscribe(&state, &caller, log, cursor.unwrap_or(0)).await.map(
                                |(subscription, replay)| {
                                    subscriptions.insert(topic.clone(), subscription);
                                    replay
                                },
                            ),
                        };
                        match opened {
                            Ok(replay) => {
                                send(&mut sink, ServerMessage::Subscribed { topic: topic.clone() }).await?;
                                for page in replay.chunks(1000) {
                                    let lines = page.to_vec();
                                    send(&mut sink, ServerMessage::Lines { topic: topic.clone(), lines }).await?;
                                }
                            }
                            Err(message) => send(&mut sink, ServerMessage::Error { topic, message }).await?,
                        }
                    }
                    Ok(ClientMessage::Unsubscribe { topic }) => {
                        subscriptions.remove(&topic);
                        watches.remove(&topic);
                    }
                    Err(err) => {
                        let message = format!("not a message this socket understands: {err}");
                        send(&mut sink, ServerMessage::Error { topic: String::new(), message }).await?;
                    }
                }
            }
            live = bus.recv() => match live {
                Ok(live) => match &*live {
                    Live::Lines { topic, lines } => {
                        if let Some(subscription) = subscriptions.get_mut(topic) {
                            take(&state, subscription, lines).await?;
                        }
                    }
                    Live::Status { project, environment } => {
                        for watch in watches.values_mut() {
                            if watch.project == *project && environment.is_none_or(|e| e == watch.environment) {
                                watch.dirty = true;
                            }
                        }
                    }
                    Live::Access { user } => {
                        if user.is_none_or(|user| user == caller.user_id)
                            && !reauthorize(&state, &caller, &mut subscriptions, &mut watches, &mut sink).await?
                        {
                            return Ok(());
                        }
                    }
                },
                Err(RecvError::Lagged(count)) => {
                    for subscription in subscriptions.values_mut() {
                        subscription.resync = true;
                    }
                    send(&mut sink, ServerMessage::Dropped { count }).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = recheck.tick() => {
                if !reauthorize(&state, &caller, &mut subscriptions, &mut watches, &mut sink).await? {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                for (topic, subscription) in &mut subscriptions {
                    if !subscription.pending.is_empty() {
                        let lines = std::mem::take(&mut subscription.pending);
                        send(&mut sink, ServerMessage::Lines { topic: topic.clone(), lines }).await?;
                    }
                }
                for (topic, watch) in &mut watches {
                    if std::mem::take(&mut watch.dirty) {
                        match overview(&state, watch).await {
                            Ok(overview) => {
                                send(&mut sink, ServerMessage::Status { topic: topic.clone(), overview }).await?;
                            }
                            // Tried again with the next frame.
                            Err(err) => {
                                tracing::debug!(error = %format!("{err:#}"), "reading a project overview failed");
                                watch.dirty = true;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A watched project canvas (`project:<id>:<environment id>`).
struct Watch {
    project: Uuid,
    environment: Uuid,
    /// Changed since the last overview sent: send one at the next frame.
    dirty: bool,
}

async fn overview(state: &AppState, watch: &Watch) -> anyhow::Result<ProjectOverview> {
    let mut conn = state.db.get().await?;
    Ok(status::project_overview(&mut conn, &state.config, watch.project, watch.environment).await?)
}

/// Checks access to a `project:` topic; the first overview goes out with the next frame.
async fn watch(state: &AppState, caller: &Caller, project: Uuid, environment: Uuid) -> Result<Watch, String> {
    let mut conn = state.db.get().await.map_err(|_| UNAVAILABLE.to_owned())?;
    authorize_watch(&mut conn, caller, project, environment).await?;
    Ok(Watch {
        project,
        environment,
        dirty: true,
    })
}

/// Whether `caller` may read the log `source`: "not found" when not (another team's ids
/// answer as unknown ones do).
async fn authorize_log(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    source: Source,
) -> Result<(), String> {
    let not_found = || "not found".to_owned();
    match source {
        Source::Deployment(id) => {
            let row = Deployments::find(conn, id)
                .await
                .map_err(|_| UNAVAILABLE.to_owned())?
                .ok_or_else(not_found)?;
            let (_, workspace) = authorize_service(conn, caller, row.service_id, Role::Viewer)
                .await
                .map_err(|_| not_found())?;
            require_log_reader(conn, caller, workspace)
                .await
                .map_err(refusal_of)?;
        }
        Source::Service(service, environment) => {
            let (found, workspace) = authorize_service(conn, caller, service, Role::Viewer)
                .await
                .map_err(|_| not_found())?;
            environment_of(conn, found.project_id.uuid(), Some(environment))
                .await
                .map_err(|_| not_found())?;
            require_log_reader(conn, caller, workspace)
                .await
                .map_err(refusal_of)?;
        }
    }
    Ok(())
}

/// A log check's error as a socket says it: a refusal names its reason; anything else is
/// the database's and revokes nothing.
fn refusal_of(err: AppError) -> String {
    match err.code {
        railyard_shared::ErrorCode::Forbidden => err.message.into_owned(),
        railyard_shared::ErrorCode::NotFound => "not found".to_owned(),
        _ => UNAVAILABLE.to_owned(),
    }
}

/// Whether `caller` may watch the canvas of `project` in `environment`.
async fn authorize_watch(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    project: Uuid,
    environment: Uuid,
) -> Result<(), String> {
    authorize_project(conn, caller, project, Role::Viewer, "project")
        .await
        .map_err(|_| "not found".to_owned())?;
    environment_of(conn, project, Some(environment))
        .await
        .map_err(|_| "not found".to_owned())?;
    Ok(())
}

/// Checks the caller's credential and every open topic again, at once when the bus says
/// their access changed and every [`REAUTHORIZE_EVERY`]. A topic no longer allowed is
/// closed with an error naming it; a session or token that ended closes the socket
/// ([`CLOSE_SIGNED_OUT`]) and returns false. A database that does not answer changes
/// nothing (asked again next time).
async fn reauthorize(
    state: &AppState,
    caller: &Caller,
    subscriptions: &mut HashMap<String, Subscription>,
    watches: &mut HashMap<String, Watch>,
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
) -> anyhow::Result<bool> {
    let Ok(mut conn) = state.db.get().await else {
        return Ok(true);
    };
    match caller.still_signed_in(&mut conn).await {
        Ok(true) => {}
        Ok(false) => {
            let frame = axum::extract::ws::CloseFrame {
                code: CLOSE_SIGNED_OUT,
                reason: "the session or API token has ended; sign in again".into(),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            return Ok(false);
        }
        Err(_) => return Ok(true),
    }
    let mut revoked = Vec::new();
    for (name, subscription) in subscriptions.iter() {
        if let Err(message) = authorize_log(&mut conn, caller, subscription.source).await
            && message != UNAVAILABLE
        {
            revoked.push(name.clone());
        }
    }
    for (name, watch) in watches.iter() {
        if let Err(message) = authorize_watch(&mut conn, caller, watch.project, watch.environment).await
            && message != UNAVAILABLE
        {
            revoked.push(name.clone());
        }
    }
    drop(conn);
    for topic in revoked {
        subscriptions.remove(&topic);
        watches.remove(&topic);
        let message = "you no longer have access to this topic".to_owned();
        send(sink, ServerMessage::Error { topic, message }).await?;
    }
    Ok(true)
}

/// Checks access to a log `topic` and reads what is stored after `cursor`.
async fn subscribe(
    state: &AppState,
    caller: &Caller,
    topic: Topic,
    cursor: i64,
) -> Result<(Subscription, Vec<LogLine>), String> {
    let Some(source) = Source::of(topic) else {
        return Err(UnknownTopic.to_string());
    };
    let unavailable = |_| UNAVAILABLE.to_owned();
    let mut conn = state.db.get().await.map_err(|_| UNAVAILABLE.to_owned())?;
    authorize_log(&mut conn, caller, source).await?;
    let mut replay = Vec::new();
    let mut last = cursor.max(0);
    loop {
        let page = source
            .read(&mut conn, last, REPLAY_PAGE)
            .await
            .map_err(unavailable)?;
        let full = page.len() as i64 == REPLAY_PAGE;
        if let Some(line) = page.last() {
            last = line.cursor;
        }
        replay.extend(page);
        if !full {
            break;
        }
    }
    Ok((
        Subscription {
            source,
            last,
            resync: false,
            pending: Vec::new(),
        },
        replay,
    ))
}

/// Queues the live `lines` the client has not seen, filling a gap from the store.
async fn take(state: &AppState, subscription: &mut Subscription, lines: &[LogLine]) -> anyhow::Result<()> {
    let Some(first) = lines.iter().find(|l| l.cursor > subscription.last) else {
        return Ok(());
    };
    if subscription.resync {
        subscription.resync = false;
        subscription.last = first.cursor - 1;
    }
    if first.cursor > subscription.last + 1 {
        let mut conn = state.db.get().await?;
        let gap = subscription
            .source
            .read(&mut conn, subscription.last, first.cursor - subscription.last - 1)
            .await?;
        for line in gap {
            subscription.last = line.cursor;
            subscription.pending.push(line);
        }
    }
    for line in lines {
        if line.cursor > subscription.last {
            subscription.last = line.cursor;
            subscription.pending.push(line.clone());
        }
    }
    Ok(())
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: ServerMessage,
) -> anyhow::Result<()> {
    let text = serde_json::to_string(&message)?;
    sink.send(Message::Text(text.into())).await?;
    Ok(())
}
