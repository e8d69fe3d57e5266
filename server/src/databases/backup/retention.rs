//! Which backups retention removes: of the verified ones, the newest of each of the last
//! `keep_daily` days and of each of the last `keep_weekly` ISO weeks (UTC) stay, with the
//! newest of all; failed ones stay while they are among the newest 20 (they say why).

use std::collections::HashSet;

use chrono::Datelike as _;
use uuid::Uuid;

use crate::models::database::BackupRow;

/// Failed backups kept for their reasons.
const FAILED_KEPT: usize = 20;

/// `backups` newest first; returns those to remove. Queued and running ones always stay.
pub fn expired(backups: &[BackupRow], keep_daily: i32, keep_weekly: i32) -> Vec<BackupRow> {
    let mut newest_first: Vec<&BackupRow> = backups.iter().collect();
    newest_first.sort_by_key(|b| std::cmp::Reverse(b.created_at));
    let verified: Vec<&BackupRow> = newest_first
        .iter()
        .copied()
        .filter(|b| b.state == "verified")
        .collect();
    let mut keep: HashSet<Uuid> = HashSet::new();
    if let Some(newest) = verified.first() {
        keep.insert(newest.id);
    }
    let mut days = Vec::new();
    let mut weeks = Vec::new();
    for backup in &verified {
        let day = backup.created_at.date_naive();
        if !days.contains(&day) && days.len() < keep_daily.max(0) as usize {
            days.push(day);
            keep.insert(backup.id);
        }
        let week = (day.iso_week().year(), day.iso_week().week());
        if !weeks.contains(&week) && weeks.len() < keep_weekly.max(0) as usize {
            weeks.push(week);
            keep.insert(backup.id);
        }
    }
    let mut failed_seen = 0;
    newest_first
        .into_iter()
        .filter(|b| match b.state.as_str() {
            "verified" => !keep.contains(&b.id),
            "failed" => {
                failed_seen += 1;
                failed_seen > FAILED_KEPT
            }
            _ => false,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::*;

    fn backup(at: DateTime<Utc>, state: &str) -> BackupRow {
        BackupRow {
            id: Uuid::new_v4(),
            database_id: Uuid::nil(),
            state: state.to_owned(),
            trigger: "schedule".to_owned(),
            store: "local".to_owned(),
            object_key: String::new(),
            size_bytes: None,
            reason: None,
            tables: serde_json::json!([]),
            requested_by: None,
            created_at: at,
            started_at: None,
            finished_at: None,
            verified_at: None,
            pruned_at: None,
        }
    }

    #[test]
    fn keeps_the_newest_of_each_day_and_week() {
        // Monday 2026-11-30 03:00, one backup every 12 hours for 30 days.
        let start = DateTime::parse_from_rfc3339("2026-11-30T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let all: Vec<BackupRow> = (0..60)
            .map(|i| backup(start - Duration::hours(12 * i), "verified"))
            .collect();
        let gone = expired(&all, 3, 2);
        let kept: Vec<&BackupRow> = all
            .iter()
            .filter(|b| !gone.iter().any(|g| g.id == b.id))
            .collect();
        let mut days: Vec<String> = kept
            .iter()
            .map(|b| b.created_at.format("%F %H").to_string())
            .collect();
        days.sort();
        // The newest of each of the last 3 days (the 03:00 ones: newer than the 15:00 of
        // the day before), and the newest of last week (Sunday 11-29 15:00).
        assert_eq!(days, ["2026-11-28 15", "2026-11-29 15", "2026-11-30 03"]);
    }

    #[test]
    fn never_removes_the_newest_or_unfinished_ones() {
        let now = Utc::now();
        let all = vec![
            backup(now, "running"),
            backup(now - Duration::days(400), "verified"),
            backup(now - Duration::days(500), "verified"),
        ];
        let gone = expired(&all, 1, 1);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, all[2].id);
    }
}
