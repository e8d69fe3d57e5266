//! `pg_dump` and `pg_restore` of the server's own major version, run with argv only: the
//! connection goes in as separate options and the password through `PGPASSWORD`, never in
//! argv (other processes can read a command line).

use std::{path::Path, process::Stdio};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    process::{Child, Command},
};

/// A `postgres://` URL taken apart.
struct Conn {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
}

fn parse(url: &str) -> anyhow::Result<Conn> {
    let url = reqwest::Url::parse(url).context("a database URL")?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Conn {
        host: url.host_str().unwrap_or("127.0.0.1").to_owned(),
        port: url.port().unwrap_or(5432),
        user: decode(url.username()),
        password: decode(url.password().unwrap_or_default()),
        database: decode(url.path().trim_start_matches('/')),
    })
}

fn command(bin: &Path, program: &str, url: &str) -> anyhow::Result<Command> {
    let conn = parse(url)?;
    let mut cmd = Command::new(bin.join(program));
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("PGPASSWORD", &conn.password)
        .env("PGCONNECT_TIMEOUT", "10")
        .arg(format!("--host={}", conn.host))
        .arg(format!("--port={}", conn.port))
        .arg(format!("--username={}", conn.user))
        .arg(format!("--dbname={}", conn.database))
        .arg("--no-password")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(cmd)
}

/// `pg_dump -Fc` of `url` to its stdout (in the exported `snapshot` when given).
pub fn dump(bin: &Path, url: &str, snapshot: Option<&str>) -> anyhow::Result<Child> {
    let mut cmd = command(bin, "pg_dump", url)?;
    cmd.args(["--format=custom", "--compress=6", "--no-owner", "--no-privileges"]);
    if let Some(snapshot) = snapshot {
        if !snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            bail!("unexpected snapshot id");
        }
        cmd.arg(format!("--snapshot={snapshot}"));
    }
    cmd.stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.join("pg_dump").display()))
}

/// `pg_restore` into `url` from its stdin; objects owned by `role` when given, all in one
/// transaction, and `clean` drops what exists first (a restore in place).
pub fn restore(bin: &Path, url: &str, role: Option<&str>, clean: bool) -> anyhow::Result<Child> {
    let mut cmd = command(bin, "pg_restore", url)?;
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
    ]);
    if let Some(role) = role {
        cmd.arg(format!("--role={}", super::safe_name(role)?));
    }
    if clean {
        cmd.args(["--clean", "--if-exists"]);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.join("pg_restore").display()))
}

/// Waits for a tool and fails with its standard error when it fails.
pub async fn finish(what: &str, mut child: Child) -> anyhow::Result<()> {
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr).await;
    }
    let status = child.wait().await?;
    if !status.success() {
        bail!("{what} failed ({status}): {}", last_lines(&stderr));
    }
    Ok(())
}

/// The tool's own error lines (`pg_restore: error: ...`), or its last lines.
fn last_lines(text: &str) -> String {
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("error:")).collect();
    let lines: Vec<&str> = match errors.is_empty() {
        true => text.lines().filter(|l| !l.trim().is_empty()).collect(),
        false => errors,
    };
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// Feeds everything `from` reads into `restore`'s stdin, then waits for it.
pub async fn feed(mut from: impl AsyncRead + Unpin, mut restore: Child) -> anyhow::Result<()> {
    let mut stdin = restore.stdin.take().context("pg_restore's stdin")?;
    let copied = tokio::io::copy(&mut from, &mut stdin).await;
    let flushed = stdin.shutdown().await;
    drop(stdin);
    let finished = finish("pg_restore", restore).await;
    finished?;
    copied.context("streaming into pg_restore")?;
    flushed?;
    Ok(())
}

/// `dump | restore`.
pub async fn pipe(mut dump: Child, restore: Child) -> anyhow::Result<()> {
    let stdout = dump.stdout.take().context("pg_dump's stdout")?;
    let fed = feed(stdout, restore).await;
    let dumped = finish("pg_dump", dump).await;
    dumped?;
    fed
}
