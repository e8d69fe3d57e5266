//! GitHub webhooks: a delivery is verified (`X-Hub-Signature-256`, HMAC-SHA256 over the raw
//! body, compared in constant time, against the instance's `GITHUB_WEBHOOK_SECRET` or the
//! repository's own hook secret), recorded once per `X-GitHub-Delivery`, then processed:
//! `ping`; `push` deploys what tracks the branch ([`push`]); `pull_request` makes, updates
//! or removes preview environments ([`previews`]). Anything else, or a body that does not
//! parse, is recorded as ignored. Processing only writes rows and enqueues jobs (builds,
//! GitHub statuses, the pull-request comment), so GitHub gets its answer at once.

pub mod connect;
pub mod previews;
pub mod push;

use serde::Deserialize;
use uuid::Uuid;

use crate::{
    app::App,
    auth::RequestMeta,
    error::AppError,
    github::signature_matches,
    models::github::{Deliveries, NewDelivery, Outcome, Repositories},
};

/// A delivery as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub event: &'a str,
    pub delivery_id: &'a str,
    pub signature: Option<&'a str>,
    /// `X-GitHub-Hook-ID`: which of Railyard's hooks sent it (its secret signs it).
    pub hook_id: Option<i64>,
    pub body: &'a [u8],
}

/// What receiving a verified delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Recorded (and processed) as this delivery.
    Recorded(Uuid),
    /// GitHub's delivery id was seen before: nothing done.
    Duplicate,
}

#[derive(Deserialize)]
struct RepositoryOnly {
    repository: Option<Named>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Named {
    pub full_name: String,
}

/// Verifies, records and processes a delivery. A missing or wrong signature, or no secret
/// to check it with, is a 401 and nothing is recorded.
pub async fn receive(app: &App, meta: &RequestMeta, inbound: Inbound<'_>) -> Result<Received, AppError> {
    let Some(signature) = inbound.signature else {
        return Err(unauthorized("the delivery is not signed (X-Hub-Signature-256)"));
    };
    let mut secrets: Vec<String> = app.config.github.webhook_secret.iter().cloned().collect();
    // The repository named in the body only picks which secret to try; nothing of the body
    // is used before the signature holds.
    let named = serde_json::from_slice::<RepositoryOnly>(inbound.body)
        .ok()
        .and_then(|r| r.repository)
        .map(|r| r.full_name)
        .filter(|name| railyard_shared::projects::valid_repository(name));
    let mut conn = app.db.get().await?;
    let by_hook = match inbound.hook_id {
        Some(hook) => Repositories::of_hook(&mut conn, hook).await?,
        None => None,
    };
    for name in by_hook.iter().chain(named.iter()) {
        if let Some(secret) = Repositories::hook_secret(&mut conn, &app.keys, name)
            .await
            .map_err(AppError::internal)?
        {
            secrets.push(secret);
        }
    }
    if secrets.is_empty() {
        return Err(unauthorized(
            "no webhook secret is configured for this repository: deliveries are refused",
        ));
    }
    if !secrets
        .iter()
        .any(|secret| signature_matches(secret.as_bytes(), inbound.body, signature))
    {
        return Err(unauthorized("the signature does not match"));
    }
    let delivery_id = if inbound.delivery_id.is_empty() {
        Uuid::new_v4().to_string()
    } else {
        inbound.delivery_id.chars().take(100).collect()
    };
    let new = NewDelivery {
        delivery_id: &delivery_id,
        event: &inbound.event.chars().take(100).collect::<String>(),
        payload: inbound.body,
        redelivery_of: None,
    };
    let Some(id) = Deliveries::start(&mut conn, new).await? else {
        return Ok(Received::Duplicate);
    };
    drop(conn);
    run(app, meta, id, inbound.event, inbound.body, None).await?;
    Ok(Received::Recorded(id))
}

fn unauthorized(message: &'static str) -> AppError {
    AppError::new(railyard_shared::ErrorCode::Unauthorized, message)
}

/// Processes a recorded delivery and stores what it came to.
async fn run(
    app: &App,
    meta: &RequestMeta,
    id: Uuid,
    event: &str,
    body: &[u8],
    approved_by: Option<Uuid>,
) -> Result<Outcome, AppError> {
    let outcome = match process(app, meta, event, body, approved_by).await {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::warn!(error = %err, delivery = %id, "a webhook delivery failed");
            Outcome {
                outcome: "failed",
                detail: "processing failed; it has been logged (redeliver it to try again)".to_owned(),
                ..Outcome::default()
            }
        }
    };
    let mut conn = app.db.get().await?;
    Deliveries::finish(&mut conn, id, &outcome).await?;
    Ok(outcome)
}

async fn process(
    app: &App,
    meta: &RequestMeta,
    event: &str,
    body: &[u8],
    approved_by: Option<Uuid>,
) -> anyhow::Result<Outcome> {
    let ignored = |detail: String| Outcome {
        outcome: "ignored",
        detail,
        ..Outcome::default()
    };
    let parsed = |err: serde_json::Error| ignored(format!("the payload is not a {event} event: {err}"));
    Ok(match event {
        "ping" => Outcome {
            outcome: "processed",
            detail: "pong".to_owned(),
            ..Outcome::default()
        },
        "push" => match serde_json::from_slice(body) {
            Ok(payload) => push::handle(app, meta, payload).await?,
            Err(err) => parsed(err),
        },
        "pull_request" => match serde_json::from_slice(body) {
            Ok(payload) => previews::handle(app, meta, payload, approved_by).await?,
            Err(err) => parsed(err),
        },
        other => ignored(format!(
            "`{}` events are not used",
            other.chars().take(60).collect::<String>()
        )),
    })
}

/// Processes a stored delivery again as a new delivery that names it (the dashboard's
/// "Redeliver").
pub async fn redeliver(app: &App, meta: &RequestMeta, original: Uuid) -> Result<Uuid, AppError> {
    let mut conn = app.db.get().await?;
    let (delivery_id, event, payload) = Deliveries::payload(&mut conn, original).await?;
    let new = NewDelivery {
        delivery_id: &delivery_id,
        event: &event,
        payload: &payload,
        redelivery_of: Some(original),
    };
    let id = Deliveries::start(&mut conn, new)
        .await?
        .ok_or_else(|| AppError::conflict("the delivery could not be recorded again"))?;
    Deliveries::inherit_projects(&mut conn, id, original).await?;
    drop(conn);
    run(app, meta, id, &event, &payload, None).await?;
    Ok(id)
}

/// Builds a delivery that waited for approval, as `approver` allowed.
pub async fn approve(app: &App, meta: &RequestMeta, id: Uuid, approver: Uuid) -> Result<(), AppError> {
    let mut conn = app.db.get().await?;
    if !Deliveries::approve(&mut conn, id).await? {
        return Err(AppError::conflict("this delivery is not waiting for approval"));
    }
    let (_, event, payload) = Deliveries::payload(&mut conn, id).await?;
    drop(conn);
    let mut outcome = match process(app, meta, &event, &payload, Some(approver)).await {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::warn!(error = %err, delivery = %id, "an approved delivery failed");
            Outcome {
                outcome: "failed",
                detail: "processing failed; it has been logged".to_owned(),
                ..Outcome::default()
            }
        }
    };
    if outcome.outcome == "processed" {
        outcome.outcome = "approved";
    }
    let mut conn = app.db.get().await?;
    Deliveries::finish(&mut conn, id, &outcome).await?;
    Ok(())
}
