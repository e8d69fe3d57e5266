//! Apps' log files (`<data dir>/logs/<service>/<environment>.log`), rotated by size: the
//! file is copied to `.1` (older ones shift to `.2`, `.3`), then truncated in place. Apps
//! write with `O_APPEND`, so they keep writing at the new end without reopening anything —
//! the file belongs to them, not to this server, and survives its restarts. (Lines written
//! between the copy and the truncation are lost: the price of copy-truncate.)

use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    time::Duration,
};

/// Old files kept beside the live one.
pub const KEEP: usize = 3;

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Rotates `path` if it is larger than `max` bytes; true when it did.
pub fn rotate_if_larger(path: &Path, max: u64) -> std::io::Result<bool> {
    let len = match fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    if len <= max {
        return Ok(false);
    }
    for n in (1..KEEP).rev() {
        match fs::rename(numbered(path, n), numbered(path, n + 1)) {
            Err(err) if err.kind() != ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    fs::copy(path, numbered(path, 1))?;
    fs::OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

/// Checks every app log under `logs` every few seconds and rotates those past `max`.
pub fn spawn_rotation(logs: PathBuf, max: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let logs = logs.clone();
            let _ = tokio::task::spawn_blocking(move || rotate_all(&logs, max)).await;
        }
    })
}

fn rotate_all(logs: &Path, max: u64) {
    let Ok(services) = fs::read_dir(logs) else { return };
    for service in services.flatten() {
        let Ok(files) = fs::read_dir(service.path()) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|ext| ext == "log")
                && let Err(err) = rotate_if_larger(&path, max)
            {
                tracing::warn!(path = %path.display(), error = %err, "rotating an app log failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_limit_and_keeps_three() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("app.log");
        for round in 0..5 {
            fs::write(&log, format!("round {round} {}", "x".repeat(100))).unwrap_or_else(|e| panic!("{e}"));
            assert!(rotate_if_larger(&log, 50).unwrap_or_else(|e| panic!("{e}")));
        }
        assert_eq!(fs::metadata(&log).map(|m| m.len()).ok(), Some(0));
        let read = |n| fs::read_to_string(numbered(&log, n)).unwrap_or_default();
        assert!(read(1).starts_with("round 4"));
        assert!(read(3).starts_with("round 2"));
        assert!(!numbered(&log, 4).exists());
        fs::write(&log, "small").unwrap_or_else(|e| panic!("{e}"));
        assert!(!rotate_if_larger(&log, 50).unwrap_or_else(|e| panic!("{e}")));
    }
}
