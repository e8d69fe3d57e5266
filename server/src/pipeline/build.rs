//! Running one build step: its own process group, a scrubbed environment, every output line
//! streamed in order to the build log, and a deadline and a cancel that kill the whole group.

use std::{ffi::OsString, path::Path, process::Stdio, time::Duration};

use railyard_shared::deployments::Step;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _},
    process::Command,
    sync::watch,
    time::Instant,
};

use super::log::{BuildLog, Stream, clean_line};
use crate::variables::{Masker, mask::MaskStream};

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

/// The environment builds (and later apps) get: nothing of Railyard's own, only what a
/// toolchain needs to run, plus `extra` (the service's variables).
pub fn scrubbed_env(home: &Path, extra: &[(String, String)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        (
            "PATH".into(),
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        ),
        ("HOME".into(), home.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("CI".into(), "true".into()),
        // Tools that colour or page their output check these.
        ("TERM".into(), "dumb".into()),
        ("NO_UPDATE_NOTIFIER".into(), "1".into()),
        ("npm_config_update_notifier".into(), "false".into()),
        ("npm_config_fund".into(), "false".into()),
        ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// The argv of `step`: the user's line through `sh -c`, or Railyard's argv directly (a
/// relative program such as `.venv/bin/pip` is found in `dir`).
pub fn argv(step: &Step, dir: &Path) -> Result<Vec<OsString>, String> {
    match step {
        Step::Shell(line) => Ok(vec!["sh".into(), "-c".into(), line.into()]),
        Step::Argv(args) => {
            let (program, rest) = args.split_first().ok_or("empty command")?;
            let program: OsString = if program.contains('/') {
                dir.join(program).into()
            } else {
                program.into()
            };
            Ok(std::iter::once(program)
                .chain(rest.iter().map(OsString::from))
                .collect())
        }
    }
}

/// The command for `step` (see [`argv`]).
pub fn command(step: &Step, dir: &Path) -> Result<Command, String> {
    let argv = argv(step, dir)?;
    let (program, rest) = argv.split_first().ok_or("empty command")?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    Ok(cmd)
}

/// Runs `step` in `dir` until it exits, `deadline` passes or `cancel` turns true.
pub async fn run_step(
    step: &Step,
    dir: &Path,
    env: &[(OsString, OsString)],
    log: &BuildLog,
    deadline: Instant,
    build_timeout: Duration,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), StepError> {
    let shown = step.to_string();
    let mut cmd = command(step, dir).map_err(|error| StepError::Spawn {
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
        let limit = super::log::MAX_LINE * 4;
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

/// The processes whose working directory is inside `dir`.
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            std::fs::read_link(entry.path().join("cwd"))
                .is_ok_and(|cwd| cwd.starts_with(dir))
                .then_some(pid)
        })
        .collect()
}

/// Kills what an earlier build of `dir` left running (its worker died without stopping its
/// steps): every process whose working directory is inside `dir`, with its process group.
pub fn kill_leftovers(dir: &Path) -> usize {
    let mut killed = 0;
    for pid in processes_in(dir) {
        if pid != std::process::id() as i32 {
            let pid = nix::unistd::Pid::from_raw(pid);
            if let Ok(group) = nix::unistd::getpgid(Some(pid))
                && group != nix::unistd::getpgrp()
            {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::SIGKILL);
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
            killed += 1;
        }
    }
    killed
}
