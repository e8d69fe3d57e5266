//! Running one build step: its own process group, a scrubbed environment, every output line
//! streamed in order to the build log, and a deadline and a cancel that kill the whole group.

use std::{ffi::OsString, path::Path, process::Stdio, time::Duration};

use railyard_shared::deployments::Step;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _},
    sync::watch,
    time::Instant,
};

use crate::variables::{Masker, mask::MaskStream};
use crate::{
    logs::{BuildLog, Stream, clean_line},
    sandbox::{self, Jail},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    #[error("`{step}` exited with {status}")]
    Failed { step: String, status: String },
    #[error("`{step}` could not start: {error}")]
    Spawn { step: String, error: String },
    #[error("the build took longer than {0} s")]
    Timeout(u64),
    #[error("cancelled")]
    Cancelled,
}

/// Runs `step` in `dir` (in `jail`, when isolation is on) until it exits, `deadline`
/// passes or `cancel` turns true.
#[allow(clippy::too_many_arguments)]
pub async fn run_step(
    step: &Step,
    dir: &Path,
    jail: Option<&Jail>,
    env: &[(OsString, OsString)],
    log: &BuildLog,
    deadline: Instant,
    build_timeout: Duration,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), StepError> {
    let shown = step.to_string();
    let mut cmd = sandbox::command(step, dir, jail).map_err(|error| StepError::Spawn {
        step: shown.clone(),
        error,
    })?;
    cmd.current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    log.event(format!("$ {shown}"));
    let mut child = cmd.spawn().map_err(|err| StepError::Spawn {
        step: shown.clone(),
        error: err.to_string(),
    })?;
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(StepError::Spawn {
            step: shown,
            error: "no output pipes".into(),
        });
    };

    let output = async {
        let masker = log.masker();
        let mut out = Lines::new(stdout, &masker);
        let mut err = Lines::new(stderr, &masker);
        while !(out.done && err.done) {
            tokio::select! {
                line = out.next(), if !out.done => if let Some(line) = line { log.line(Stream::Stdout, line) },
                line = err.next(), if !err.done => if let Some(line) = line { log.line(Stream::Stderr, line) },
            }
        }
        child.wait().await
    };
    let stopped = async {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => StepError::Timeout(build_timeout.as_secs()),
            _ = cancel.wait_for(|c| *c) => StepError::Cancelled,
        }
    };
    let result = tokio::select! {
        status = output => status.map_err(|err| StepError::Spawn { step: shown.clone(), error: err.to_string() }),
        error = stopped => Err(error),
    };
    // Whatever happened, nothing the step started outlives it.
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), nix::sys::signal::SIGKILL);
    }
    let status = result?;
    if status.success() {
        Ok(())
    } else {
        let status = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => format!("code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            _ => "an unknown status".into(),
        };
        Err(StepError::Failed { step: shown, status })
    }
}

/// Lines of a pipe, masked as a byte stream (a secret split across reads, or across lines,
/// is still found) and each cut to a storable size (a line without a newline still arrives).
struct Lines<R> {
    reader: R,
    mask: MaskStream,
    /// Masked output not yet returned as lines.
    buf: Vec<u8>,
    eof: bool,
    done: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(reader: R, masker: &Masker) -> Self {
        Self {
            reader,
            mask: masker.stream(),
            buf: Vec::new(),
            eof: false,
            done: false,
        }
    }

    async fn next(&mut self) -> Option<String> {
        // Never hold more than a few times the longest stored line.
        let limit = crate::logs::MAX_LINE * 4;
        let mut chunk = vec![0u8; 8192];
        loop {
            let end = match self.buf.iter().position(|b| *b == b'\n') {
                Some(newline) => Some(newline + 1),
                None if self.buf.len() >= limit => Some(limit),
                None if self.eof && !self.buf.is_empty() => Some(self.buf.len()),
                None => None,
            };
            if let Some(end) = end {
                let line: Vec<u8> = self.buf.drain(..end).collect();
                return Some(clean_line(&line));
            }
            if self.eof {
                self.done = true;
                return None;
            }
            match self.reader.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    self.mask.finish(&mut self.buf);
                    self.eof = true;
                }
                Ok(n) => self.mask.feed(&chunk[..n], &mut self.buf),
            }
        }
    }
}
