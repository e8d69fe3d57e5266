//! A deployment's build log: lines in order, each with a cursor (`seq`), a timestamp and a
//! stream, written to PostgreSQL in batches (every 100 ms, or sooner when many are waiting).
//! A restarted build continues after the last stored line, so cursors never repeat.
//! A log keeps at most its limit of the build's output (`RAILYARD_BUILD_LOG_LIMIT_BYTES`,
//! counted over every attempt): past it one line says so and the rest of the output is
//! dropped; Railyard's own events (what happened to the deployment) are always kept.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use tokio::sync::Notify;
use uuid::Uuid;

use railyard_shared::deployments::LogLine;

use super::line::Stream;
use crate::{
    db::DbPool,
    logbus::{Live, LogBus},
    schema::deployment_logs,
    variables::Masker,
};

/// Lines waiting before a write is forced.
const BATCH: usize = 500;

type Row = (i64, DateTime<Utc>, &'static str, String);

#[derive(Default)]
struct Pending {
    next_seq: i64,
    rows: Vec<Row>,
    /// Bytes of output kept so far (stored and waiting).
    kept: u64,
    /// Output past the limit was dropped (and the line saying so written).
    capped: bool,
}

/// Collects lines and writes them behind the scenes; [`BuildLog::close`] writes the rest.
/// Every line passes the masker (the deployment's secrets) first.
pub struct BuildLog {
    db: DbPool,
    bus: Option<LogBus>,
    /// Bytes of output kept at most.
    limit: u64,
    masker: Mutex<Masker>,
    deployment: Uuid,
    pending: Arc<Mutex<Pending>>,
    /// One write at a time, so lines are stored and published in cursor order.
    writing: Arc<tokio::sync::Mutex<()>>,
    wake: Arc<Notify>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    writer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for BuildLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildLog")
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

impl BuildLog {
    /// Opens the log of `deployment`, continuing after any lines already stored; stored
    /// lines are published on `bus`.
    pub async fn open(db: DbPool, bus: Option<LogBus>, deployment: Uuid, limit: u64) -> anyhow::Result<Self> {
        let (last, kept): (Option<i64>, Option<i64>) = {
            let mut conn = db.get().await?;
            deployment_logs::table
                .filter(deployment_logs::deployment_id.eq(deployment))
                .select((
                    diesel::dsl::max(deployment_logs::seq),
                    diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
                        "SUM(octet_length(text))::bigint",
                    ),
                ))
                .first(&mut conn)
                .await?
        };
        let kept = u64::try_from(kept.unwrap_or(0)).unwrap_or(0);
        let pending = Arc::new(Mutex::new(Pending {
            next_seq: last.unwrap_or(0) + 1,
            rows: Vec::new(),
            kept,
            capped: kept >= limit,
        }));
        let writing = Arc::new(tokio::sync::Mutex::new(()));
        let wake = Arc::new(Notify::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = tokio::spawn({
            let (db, pending, wake, stop) = (db.clone(), pending.clone(), wake.clone(), stop.clone());
            let (bus, writing) = (bus.clone(), writing.clone());
            async move {
                while !std::sync::atomic::AtomicBool::load(&stop, std::sync::atomic::Ordering::Acquire) {
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    let _one = writing.lock().await;
                    if let Err(err) = write(&db, bus.as_ref(), deployment, &pending).await {
                        tracing::warn!(error = %format!("{err:#}"), %deployment, "writing build log lines failed; retrying");
                    }
                }
            }
        });
        Ok(Self {
            db,
            bus,
            limit,
            masker: Mutex::new(Masker::default()),
            deployment,
            pending,
            writing,
            wake,
            stop,
            writer,
        })
    }

    /// From now on, lines are masked with `masker`.
    pub fn set_masker(&self, masker: Masker) {
        *self
            .masker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = masker;
    }

    pub fn masker(&self) -> Masker {
        self.masker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn line(&self, stream: Stream, text: String) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stream != Stream::Event {
            if pending.capped {
                return;
            }
            let size = text.len() as u64;
            if pending.kept.saturating_add(size) > self.limit {
                pending.capped = true;
                let note = format!(
                    "The build printed more than {} of output: the rest of it is not kept \
                     (RAILYARD_BUILD_LOG_LIMIT_BYTES). Its events still are.",
                    human_bytes(self.limit)
                );
                let seq = pending.next_seq;
                pending.next_seq += 1;
                pending.rows.push((seq, Utc::now(), Stream::Event.as_str(), note));
                self.wake.notify_one();
                return;
            }
            pending.kept += size;
        }
        drop(pending);
        let text = self.masker().mask(&text);
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seq = pending.next_seq;
        pending.next_seq += 1;
        pending.rows.push((seq, Utc::now(), stream.as_str(), text));
        if pending.rows.len() >= BATCH {
            self.wake.notify_one();
        }
    }

    /// A line of Railyard's own.
    pub fn event(&self, text: impl Into<String>) {
        self.line(Stream::Event, text.into());
    }

    /// Writes every line so far (and publishes it) before returning: called before a state
    /// change, so whoever sees the new state also sees the lines that led to it.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let _one = self.writing.lock().await;
        write(&self.db, self.bus.as_ref(), self.deployment, &self.pending).await
    }

    /// Writes every line so far and stops the background writer.
    pub async fn close(self) -> anyhow::Result<()> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
        let _ = self.writer.await;
        write(&self.db, self.bus.as_ref(), self.deployment, &self.pending).await
    }
}

/// `bytes` as a person reads it (`10 MiB`, `512 KiB`).
fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

async fn write(
    db: &DbPool,
    bus: Option<&LogBus>,
    deployment: Uuid,
    pending: &Mutex<Pending>,
) -> anyhow::Result<()> {
    let rows = std::mem::take(
        &mut pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .rows,
    );
    if rows.is_empty() {
        return Ok(());
    }
    let result = async {
        let mut conn = db.get().await?;
        for chunk in rows.chunks(1000) {
            let values: Vec<_> = chunk
                .iter()
                .map(|(seq, ts, stream, text)| {
                    (
                        deployment_logs::deployment_id.eq(deployment),
                        deployment_logs::seq.eq(*seq),
                        deployment_logs::ts.eq(*ts),
                        deployment_logs::stream.eq(*stream),
                        deployment_logs::text.eq(text),
                    )
                })
                .collect();
            diesel::insert_into(deployment_logs::table)
                .values(values)
                .on_conflict_do_nothing()
                .execute(&mut conn)
                .await?;
        }
        anyhow::Ok(())
    }
    .await;
    if result.is_ok()
        && let Some(bus) = bus
    {
        bus.publish(Live::Lines {
            topic: format!("deployment:{deployment}"),
            lines: rows
                .iter()
                .map(|(seq, ts, stream, text)| LogLine {
                    cursor: *seq,
                    ts: *ts,
                    stream: (*stream).to_owned(),
                    text: text.clone(),
                })
                .collect(),
        });
    }
    if result.is_err() {
        // Keep the lines for the next attempt, in order.
        let mut guard = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer = std::mem::take(&mut guard.rows);
        guard.rows = rows;
        guard.rows.extend(newer);
    }
    result
}
