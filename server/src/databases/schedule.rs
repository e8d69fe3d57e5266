//! Scheduled backups: each database's five-field cron expression (UTC, `croner`'s parser),
//! checked every minute; a slot fires once (claimed in the database, so several replicas
//! take one backup).

use chrono::{DateTime, Utc};
use croner::Cron;

use super::backup::{self, store::BackupStore};
use crate::{db::DbPool, models::database::Databases};

/// The expression with single spaces, or why it is not a five-field cron expression.
pub fn normalized(text: &str) -> Result<String, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "`schedule` must be a cron expression of five fields (minute hour day month weekday), e.g. `0 3 * * *`; {text:?} has {}",
            fields.len()
        ));
    }
    let joined = fields.join(" ");
    joined
        .parse::<Cron>()
        .map_err(|err| format!("`schedule` {text:?} is not a valid cron expression: {err}"))?;
    Ok(joined)
}

/// The newest slot of `schedule` at or before `now`.
pub fn last_slot(schedule: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cron: Cron = schedule.parse().ok()?;
    cron.find_previous_occurrence(&now, true).ok()
}

/// Queues a backup of every ready database whose schedule had a slot since it was made
/// that no backup took yet. Returns how many were queued.
pub async fn enqueue_due(db: &DbPool, store: &dyn BackupStore, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut conn = db.get().await?;
    let mut queued = 0;
    for database in Databases::all(&mut conn).await? {
        if database.state != "ready" {
            continue;
        }
        let settings = Databases::settings(&mut conn, database.id).await?;
        let Some(slot) = last_slot(&settings.schedule, now) else {
            continue;
        };
        if slot <= database.created_at {
            continue;
        }
        if Databases::claim_slot(&mut conn, database.id, slot).await? {
            backup::request(&mut conn, store, &database, "schedule", None).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(normalized("0  3 * *  *").as_deref(), Ok("0 3 * * *"));
        assert!(normalized("0 3 * *").unwrap_err().contains("five fields"));
        assert!(normalized("61 3 * * *").unwrap_err().contains("not a valid"));
        assert!(normalized("0 3 * * * *").is_err());
    }

    #[test]
    fn the_last_slot_is_at_or_before_now() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let slot = last_slot("0 3 * * *", now).unwrap();
        assert_eq!(slot.to_rfc3339(), "2026-12-05T03:00:00+00:00");
        let slot = last_slot("*/15 * * * *", now).unwrap();
        assert_eq!(slot.to_rfc3339(), "2026-12-05T10:30:00+00:00");
    }
}
