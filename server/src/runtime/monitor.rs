//! `railyard-server monitor`: the small process each app runs under (as Podman's conmon).
//! It holds the app's stdout and stderr pipes, masks the secrets it is given on stdin, and
//! appends the output to the app's log file, so the app never depends on the control
//! plane's pipes (it keeps running while the control plane restarts) and no secret reaches
//! the disk. It shares the app's process group: a signal to the group reaches the app, which
//! the monitor outlives only long enough to drain the pipes; it exits with the app's code
//! (signals as 128 + n).

use std::{
    ffi::OsString,
    io::Read as _,
    path::Path,
    process::{ExitCode, Stdio},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    signal::unix::{SignalKind, signal},
};

use uuid::Uuid;

use crate::variables::Masker;

/// What the runtime writes to the monitor's stdin.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MonitorInput {
    pub secrets: Vec<String>,
}

/// How long the pipes are still read after the app exited (a child it left may hold them).
const DRAIN: Duration = Duration::from_millis(500);

/// What the monitor is told on its command line.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    pub dir: &'a Path,
    pub deployment: Option<Uuid>,
    /// The memory cgroup the app runs in (see [`super::cgroup`]).
    pub cgroup: Option<&'a Path>,
    pub log: &'a Path,
}

/// The monitor's main: `railyard-server monitor --dir <dir> [--deployment <id>]
/// [--cgroup <dir>] <log file> -- <program> <args>...`.
pub fn main(args: Args<'_>, command: &[OsString]) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("railyard-server monitor: {err}");
            return ExitCode::from(125);
        }
    };
    match runtime.block_on(run(args, command)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("railyard-server monitor: {err:#}");
            ExitCode::from(125)
        }
    }
}

async fn run(args: Args<'_>, command: &[OsString]) -> anyhow::Result<i32> {
    let Args {
        dir,
        deployment,
        cgroup,
        log,
    } = args;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no command to run"))?;
    // The secrets come on stdin (never in argv or the environment of this process alone).
    let mut input = Vec::new();
    std::io::stdin().take(256 << 20).read_to_end(&mut input)?;
    let input: MonitorInput = if input.is_empty() {
        MonitorInput::default()
    } else {
        serde_json::from_slice(&input)?
    };
    let masker = Masker::new(input.secrets.iter().map(String::as_str));
    drop(input);

    // SIGTERM, SIGINT and SIGHUP to the group are for the app: the monitor stays to drain.
    let _ignored = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
        signal(SignalKind::hangup())?,
    );

    // Joined before the app starts, so the app and all it forks are born inside.
    if let Some(cgroup) = cgroup
        && let Err(err) = super::cgroup::join(cgroup)
    {
        crate::logs::ship::append_event(
            log,
            deployment,
            &format!(
                "The memory limit is not enforced: cannot join {} ({err}).",
                cgroup.display()
            ),
        );
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .await?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        anyhow::bail!("no output pipes");
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let readers = [
        tokio::spawn(pump(stdout, "stdout", deployment, masker.clone(), tx.clone())),
        tokio::spawn(pump(stderr, "stderr", deployment, masker, tx)),
    ];
    let writer = async {
        while let Some(chunk) = rx.recv().await {
            if file.write_all(&chunk).await.is_err() {
                // A full disk must not stop the app: keep draining the pipes.
                continue;
            }
        }
        let _ = file.flush().await;
    };
    let status = async {
        let status = child.wait().await;
        // Output a child of the app still holds is read a little longer, then left.
        let _ = tokio::time::timeout(DRAIN, async {
            for reader in &readers {
                while !reader.is_finished() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
        .await;
        for reader in &readers {
            reader.abort();
        }
        status
    };
    let (status, ()) = tokio::join!(status, writer);
    Ok(exit_code(status?))
}

/// Copies one pipe to the writer: masked, split into lines (cut at 16 KiB), each written
/// as a record `<unix µs> <o|e> <deployment|-> <text>` (see [`super::shipper`]).
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    stream: &'static str,
    deployment: Option<Uuid>,
    masker: Masker,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    let mut mask = masker.stream();
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let read = pipe.read(&mut buf).await;
        let eof = !matches!(read, Ok(n) if n > 0);
        match read {
            Ok(n) if n > 0 => mask.feed(&buf[..n], &mut pending),
            _ => mask.finish(&mut pending),
        }
        let mut out = Vec::new();
        loop {
            let end = match pending.iter().position(|b| *b == b'\n') {
                Some(newline) => newline + 1,
                None if pending.len() >= crate::logs::MAX_LINE => crate::logs::MAX_LINE,
                None if eof && !pending.is_empty() => pending.len(),
                None => break,
            };
            let line: Vec<u8> = pending.drain(..end).collect();
            let text = crate::logs::clean_line(&line);
            let record = crate::logs::ship::format_record(chrono::Utc::now(), stream, deployment, &text);
            out.extend_from_slice(record.as_bytes());
            out.push(b'\n');
        }
        if !out.is_empty() && tx.send(out).await.is_err() {
            return;
        }
        if eof {
            return;
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
