//! The log shipper: app output, as the monitors write it to
//! `<data dir>/logs/<service>/<environment>.log` (one record per line:
//! `<unix µs> <o|e> <deployment id> <text>`, secrets already masked), is read behind them,
//! stored in `service_logs` (the row id is the line's cursor) and published on the log bus
//! (topic `service:<service>:<environment>`). The offset read so far is stored in the same
//! transaction as the lines, so a restart neither loses nor repeats a line. A file that
//! shrank was rotated (copy-truncate): the rest of the copy (`.1`) is read first.

use std::{
    collections::BTreeMap,
    io::{Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use railyard_shared::deployments::LogLine;
use uuid::Uuid;

use crate::{
    db::DbPool,
    logbus::{Live, LogBus},
    schema::{log_offsets, service_logs},
};

/// Read at most this much of a file per pass.
const CHUNK: u64 = 1 << 20;
/// How often the files are looked at (a `stat` each; only a file whose size changed is
/// read and shipped).
const EVERY: Duration = Duration::from_millis(20);

/// One line as the monitor writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ts: DateTime<Utc>,
    pub stream: &'static str,
    pub deployment: Option<Uuid>,
    pub text: String,
}

/// Formats one record (without its newline).
pub fn format_record(ts: DateTime<Utc>, stream: &str, deployment: Option<Uuid>, text: &str) -> String {
    let tag = match stream {
        "stderr" => 'e',
        "event" => 'v',
        _ => 'o',
    };
    let deployment = deployment.map_or_else(|| "-".to_owned(), |d| d.to_string());
    format!("{} {tag} {deployment} {text}", ts.timestamp_micros())
}

/// Appends one of Railyard's own lines (a restart, a crash, a failed health check) to a
/// service's log file, as one write: the monitor's records are whole lines written with
/// `O_APPEND` too, so the two never interleave within a line.
pub fn append_event(path: &Path, deployment: Option<Uuid>, text: &str) {
    use std::io::Write as _;
    let mut record = format_record(Utc::now(), "event", deployment, text);
    record.push('\n');
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(record.as_bytes()));
    if let Err(err) = written {
        tracing::warn!(path = %path.display(), error = %err, "could not write an event to a service log");
    }
}

/// The last `n` output lines (stdout and stderr, not events) deployment `deployment`'s
/// processes wrote to the service log at `path`, read from its last 256 KiB.
pub fn last_output(path: &Path, deployment: Uuid, n: usize) -> Vec<Record> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or_default();
    let from = len.saturating_sub(256 * 1024);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let mine: Vec<Record> = lines
        .into_iter()
        .map(parse_record)
        .filter(|r| r.deployment == Some(deployment) && r.stream != "event")
        .collect();
    let skip = mine.len().saturating_sub(n);
    mine.into_iter().skip(skip).collect()
}

/// Parses one record; a line that is not one (written by something else) is kept as
/// stdout text.
pub fn parse_record(line: &str) -> Record {
    let mut parts = line.splitn(4, ' ');
    let parsed = (|| {
        let ts = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
        let stream = match parts.next()? {
            "o" => "stdout",
            "e" => "stderr",
            "v" => "event",
            _ => return None,
        };
        let deployment = match parts.next()? {
            "-" => None,
            id => Some(id.parse().ok()?),
        };
        Some(Record {
            ts,
            stream,
            deployment,
            text: parts.next().unwrap_or_default().to_owned(),
        })
    })();
    parsed.unwrap_or_else(|| Record {
        ts: Utc::now(),
        stream: "stdout",
        deployment: None,
        text: line.to_owned(),
    })
}

/// Reads `path` from `offset`: the complete lines, and the offset after them.
fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<String>, u64)> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(CHUNK).read_to_end(&mut buf)?;
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return Ok((Vec::new(), offset));
    };
    let lines = buf[..end]
        .split(|b| *b == b'\n')
        .map(crate::logs::clean_line)
        .collect();
    Ok((lines, offset + end as u64 + 1))
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// How far a pass read a file.
enum Shipped {
    /// Everything it held when looked at.
    All,
    /// Not yet all (a chunk's worth, or a line still being written).
    More,
}

/// Ships what is new in one file.
async fn ship(
    db: &DbPool,
    bus: &LogBus,
    path: &Path,
    service: Uuid,
    environment: Uuid,
) -> anyhow::Result<Shipped> {
    let key = path.to_string_lossy().into_owned();
    let mut conn = db.get().await?;
    let stored: Option<i64> = log_offsets::table
        .find(&key)
        .select(log_offsets::offset)
        .first(&mut conn)
        .await
        .optional()?;
    let offset = u64::try_from(stored.unwrap_or(0)).unwrap_or(0);
    let len = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(_) => return Ok(Shipped::All),
    };
    let (lines, next) = if len < offset {
        // Rotated: the end of the copy, then the new file from its start.
        let (mut lines, _) = read_from(&rotated(path), offset).unwrap_or_default();
        let (more, next) = read_from(path, 0)?;
        lines.extend(more);
        (lines, next)
    } else if len == offset {
        return Ok(Shipped::All);
    } else {
        read_from(path, offset)?
    };
    let done = if next >= len { Shipped::All } else { Shipped::More };
    if lines.is_empty() && next == offset {
        return Ok(done);
    }
    let records: Vec<Record> = lines.iter().map(|l| parse_record(l)).collect();
    let next = i64::try_from(next).unwrap_or(i64::MAX);
    let ids: Vec<i64> = conn
        .transaction::<_, anyhow::Error, _>(async |conn| {
            let rows: Vec<_> = records
                .iter()
                .map(|r| {
                    (
                        service_logs::service_id.eq(service),
                        service_logs::environment_id.eq(environment),
                        service_logs::deployment_id.eq(r.deployment),
                        service_logs::ts.eq(r.ts),
                        service_logs::stream.eq(r.stream),
                        service_logs::text.eq(&r.text),
                    )
                })
                .collect();
            let mut ids = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(1000) {
                let got: Vec<i64> = diesel::insert_into(service_logs::table)
                    .values(chunk)
                    .returning(service_logs::id)
                    .get_results(conn)
                    .await?;
                ids.extend(got);
            }
            diesel::insert_into(log_offsets::table)
                .values((log_offsets::path.eq(&key), log_offsets::offset.eq(next)))
                .on_conflict(log_offsets::path)
                .do_update()
                .set(log_offsets::offset.eq(next))
                .execute(conn)
                .await?;
            Ok(ids)
        })
        .await?;
    if !ids.is_empty() {
        bus.publish(Live::Lines {
            topic: format!("service:{service}:{environment}"),
            lines: ids
                .into_iter()
                .zip(records)
                .map(|(cursor, r)| LogLine {
                    cursor,
                    ts: r.ts,
                    stream: r.stream.to_owned(),
                    text: r.text,
                })
                .collect(),
        });
    }
    Ok(done)
}

/// The app log files under `logs`: path → (service, environment, size).
fn files(logs: &Path) -> BTreeMap<PathBuf, (Uuid, Uuid, u64)> {
    let mut out = BTreeMap::new();
    let Ok(services) = std::fs::read_dir(logs) else {
        return out;
    };
    for service in services.flatten() {
        let Some(service_id) = service.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(service.path()) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            let environment = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse().ok());
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            if let Some(environment) = environment {
                out.insert(path, (service_id, environment, size));
            }
        }
    }
    out
}

/// Ships every app log under `logs` as it grows; deletes stored lines older than
/// `retention` once an hour.
pub fn spawn(db: DbPool, bus: LogBus, logs: PathBuf, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pruned = std::time::Instant::now() - Duration::from_secs(3600);
        // Each file's size when it was last shipped in full: unchanged files are skipped.
        let mut shipped: std::collections::HashMap<PathBuf, u64> = std::collections::HashMap::new();
        loop {
            let found = {
                let logs = logs.clone();
                tokio::task::spawn_blocking(move || files(&logs))
                    .await
                    .unwrap_or_default()
            };
            shipped.retain(|path, _| found.contains_key(path));
            for (path, (service, environment, size)) in found {
                if shipped.get(&path) == Some(&size) {
                    continue;
                }
                match ship(&db, &bus, &path, service, environment).await {
                    // Read up to (at least) `size`; a partly read file is looked at again.
                    Ok(Shipped::All) => {
                        shipped.insert(path, size);
                    }
                    Ok(Shipped::More) => {
                        shipped.remove(&path);
                    }
                    Err(err) => {
                        shipped.remove(&path);
                        tracing::warn!(path = %path.display(), error = %format!("{err:#}"), "shipping app log lines failed");
                    }
                }
            }
            if pruned.elapsed() >= Duration::from_secs(3600) {
                pruned = std::time::Instant::now();
                let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
                if let Ok(mut conn) = db.get().await {
                    let _ = diesel::delete(service_logs::table.filter(service_logs::ts.lt(cutoff)))
                        .execute(&mut conn)
                        .await;
                }
            }
            tokio::time::sleep(EVERY).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_strangers_are_kept() {
        let ts = DateTime::from_timestamp_micros(1_763_760_000_123_456).unwrap();
        let id = Uuid::new_v4();
        let line = format_record(ts, "stderr", Some(id), "boom: a b  c");
        assert_eq!(
            parse_record(&line),
            Record {
                ts,
                stream: "stderr",
                deployment: Some(id),
                text: "boom: a b  c".into()
            }
        );
        let line = format_record(ts, "event", Some(id), "Restarted.");
        assert_eq!(
            (parse_record(&line).stream, parse_record(&line).text.as_str()),
            ("event", "Restarted.")
        );
        let line = format_record(ts, "stdout", None, "");
        assert_eq!(parse_record(&line).text, "");
        assert_eq!(parse_record(&line).deployment, None);
        let stranger = parse_record("not a record");
        assert_eq!(
            (stranger.stream, stranger.text.as_str()),
            ("stdout", "not a record")
        );
    }
}
