//! The embedded default: a private PostgreSQL cluster under the data directory.
//!
//! With no `DATABASE_URL`, `serve` runs `initdb` once (password auth, TCP on 127.0.0.1
//! only, no Unix socket), starts the cluster with `pg_ctl` on a free port, and stops it on
//! exit; a second start reuses the data. PostgreSQL refuses to run as root, so as root the
//! cluster belongs to the unprivileged `postgres` system user. Every command is run with
//! argv only; the only values passed are paths and numbers Railyard chose itself.

use std::{
    fs,
    io::Write as _,
    net::TcpListener,
    os::unix::{
        fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _},
        process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context as _, bail};
use diesel::{OptionalExtension as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use nix::unistd::{Gid, Uid, User};

/// The database and role Railyard uses inside its cluster.
const DB_NAME: &str = "railyard";
const SUPERUSER: &str = "railyard";

#[derive(Debug)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    pgdata: PathBuf,
    bin: PathBuf,
    owner: Option<(Uid, Gid)>,
    port: u16,
    password: String,
    running: bool,
}

impl EmbeddedPostgres {
    /// Initialises (first time) and starts the cluster in `<data_dir>/postgres`, and makes
    /// sure the `railyard` database exists.
    pub async fn start(data_dir: &Path, bin_override: Option<&Path>) -> anyhow::Result<Self> {
        let cluster = Self::start_at(data_dir.join("postgres"), bin_override).await?;
        cluster.ensure_database().await?;
        Ok(cluster)
    }

    /// Initialises (first time) and starts a cluster of its own in `root` (or re-uses the
    /// one an earlier start left running there).
    pub async fn start_at(root: PathBuf, bin_override: Option<&Path>) -> anyhow::Result<Self> {
        let bin_override = bin_override.map(Path::to_owned);
        tokio::task::spawn_blocking(move || Self::start_blocking(&root, bin_override.as_deref()))
            .await
            .context("embedded PostgreSQL start-up task failed")?
    }

    /// The URL of the `railyard` database of a cluster a `serve` process started in
    /// `data_dir` and that still runs (for `railyard-server router`); `None` when none runs.
    /// The cluster is left as it is.
    pub fn running_url(data_dir: &Path, bin_override: Option<&Path>) -> anyhow::Result<Option<String>> {
        let root = data_dir.join("postgres");
        if !root.join("credentials").is_file() {
            return Ok(None);
        }
        let mut cluster = Self {
            pgdata: root.join("data"),
            bin: find_bin_dir(bin_override)?,
            owner: cluster_owner()?,
            port: 0,
            password: load_or_create_password(&root.join("credentials"))?,
            root,
            running: false,
        };
        Ok(cluster.running_port().map(|port| {
            cluster.port = port;
            cluster.url()
        }))
    }

    /// Stops the cluster in `root` if one runs there (tests end the clusters they start).
    pub fn stop_at(root: &Path, bin_override: Option<&Path>) -> anyhow::Result<()> {
        let mut cluster = Self {
            pgdata: root.join("data"),
            bin: find_bin_dir(bin_override)?,
            owner: cluster_owner()?,
            port: 0,
            password: String::new(),
            root: root.to_owned(),
            running: false,
        };
        if cluster.running_port().is_some() {
            cluster.running = true;
            cluster.stop()?;
        }
        Ok(())
    }

    /// URL of the `railyard` database.
    pub fn url(&self) -> String {
        self.url_for(DB_NAME)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// URL of the cluster's `postgres` database as its superuser.
    pub fn admin_url(&self) -> String {
        self.url_for("postgres")
    }

    /// Where its programs are (`pg_dump` and `pg_restore` of the same version included).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Lets the cluster outlive this value (apps keep their databases while `serve`
    /// restarts; the next start re-uses it).
    pub fn leave_running(mut self) {
        self.running = false;
    }

    fn url_for(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    fn start_blocking(root: &Path, bin_override: Option<&Path>) -> anyhow::Result<Self> {
        let bin = find_bin_dir(bin_override)?;
        fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        let root = root.canonicalize()?;
        let owner = cluster_owner()?;
        if let Some((_, gid)) = owner {
            // Its owner passes through the cluster's directory to its data, and lists nothing.
            nix::unistd::chown(&root, None, Some(gid))?;
            fs::set_permissions(&root, fs::Permissions::from_mode(0o710))?;
        }
        if let Some((uid, gid)) = owner {
            check_reachable(&root, uid, gid)?;
        }
        let password = load_or_create_password(&root.join("credentials"))?;
        let mut cluster = Self {
            pgdata: root.join("data"),
            root,
            bin,
            owner,
            port: 0,
            password,
            running: false,
        };
        if !cluster.pgdata.join("PG_VERSION").is_file() {
            cluster.initdb()?;
        }
        if let Some(port) = cluster.running_port() {
            tracing::info!(
                port,
                "re-using the embedded PostgreSQL left running by an earlier start"
            );
            cluster.port = port;
        } else {
            cluster.launch()?;
        }
        cluster.running = true;
        Ok(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C")
            .current_dir(&self.root);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    fn chown(&self, path: &Path) -> anyhow::Result<()> {
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("cannot hand {} to the postgres user", path.display()))?;
        }
        Ok(())
    }

    fn initdb(&self) -> anyhow::Result<()> {
        tracing::info!(pgdata = %self.pgdata.display(), "initialising the embedded PostgreSQL cluster");
        if self.pgdata.exists() {
            // No PG_VERSION: a half-finished initdb from an interrupted first start.
            fs::remove_dir_all(&self.pgdata)?;
        }
        fs::create_dir(&self.pgdata)?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))?;
        self.chown(&self.pgdata)?;

        let pwfile = self.root.join(".initdb-password");
        write_private(&pwfile, self.password.as_bytes())?;
        self.chown(&pwfile)?;
        let output = self
            .command("initdb")
            .arg("--pgdata")
            .arg(&self.pgdata)
            .args([
                "--username",
                SUPERUSER,
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output();
        let _ = fs::remove_file(&pwfile);
        check_output("initdb", output?)?;

        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(self.pgdata.join("postgresql.conf"))?;
        writeln!(
            conf,
            "\n# Port and addresses are written by railyard-server at every start."
        )?;
        writeln!(conf, "include_if_exists = 'railyard.conf'")?;
        Ok(())
    }

    /// The port of a cluster that is already running from an earlier start (after a crash).
    fn running_port(&self) -> Option<u16> {
        let pid_file = fs::read_to_string(self.pgdata.join("postmaster.pid")).ok()?;
        let status = self
            .command("pg_ctl")
            .arg("status")
            .arg("--pgdata")
            .arg(&self.pgdata)
            .output()
            .ok()?;
        if !status.status.success() {
            return None;
        }
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let log = self.root.join("postgres.log");
        if !log.exists() {
            write_private(&log, b"")?;
        }
        self.chown(&log)?;
        let mut last_error = None;
        // The port of the last start first: apps' databases are addressed by it.
        let saved = self.root.join("port");
        let previous: Option<u16> = fs::read_to_string(&saved)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        for attempt in 0..3 {
            self.port = match previous {
                Some(port) if attempt == 0 && TcpListener::bind(("127.0.0.1", port)).is_ok() => port,
                _ => free_port()?,
            };
            let conf = self.pgdata.join("railyard.conf");
            let settings = format!(
                "# Written by railyard-server at every start; edits are overwritten.\n\
                 listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\n",
                self.port
            );
            fs::write(&conf, settings)?;
            self.chown(&conf)?;
            let output = self
                .command("pg_ctl")
                .arg("start")
                .arg("--pgdata")
                .arg(&self.pgdata)
                .arg("--log")
                .arg(&log)
                .args(["--wait", "--timeout=60", "--silent"])
                .output()?;
            if output.status.success() {
                let _ = fs::write(&saved, self.port.to_string());
                tracing::info!(port = self.port, "embedded PostgreSQL started");
                return Ok(());
            }
            let tail = log_tail(&log);
            last_error = Some(format!(
                "{}\n{tail}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        bail!(
            "pg_ctl could not start the embedded PostgreSQL (log: {}):\n{}",
            log.display(),
            last_error.unwrap_or_default()
        )
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        let mut conn = AsyncPgConnection::establish(&self.url_for("postgres"))
            .await
            .context("cannot connect to the embedded PostgreSQL")?;
        let exists: Option<String> = pg_database::table
            .select(pg_database::datname)
            .filter(diesel::ExpressionMethods::eq(pg_database::datname, DB_NAME))
            .first(&mut conn)
            .await
            .optional()?;
        if exists.is_none() {
            conn.batch_execute(&format!("CREATE DATABASE {DB_NAME}")).await?;
            tracing::info!(database = DB_NAME, "created the railyard database");
        }
        Ok(())
    }

    /// Stops the cluster (fast shutdown: sessions end, data is flushed). Idempotent.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let output = self
            .command("pg_ctl")
            .arg("stop")
            .arg("--pgdata")
            .arg(&self.pgdata)
            .args(["--mode=fast", "--wait", "--timeout=60", "--silent"])
            .output()?;
        check_output("pg_ctl stop", output)?;
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::error!(error = %format!("{err:#}"), "could not stop the embedded PostgreSQL");
        }
    }
}

// The catalog of databases (also used by the test harness).
diesel::table! {
    pg_database (datname) {
        datname -> Text,
    }
}

/// The client programs (`pg_dump`, `pg_restore`) of a server of major version `major`:
/// Debian's `/usr/lib/postgresql/<major>/bin`, or the `PATH`'s when they are that version.
pub fn bin_dir_for_major(major: u32) -> anyhow::Result<PathBuf> {
    let debian = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
    if debian.join("pg_dump").is_file() {
        return Ok(debian);
    }
    let dir = find_bin_dir(None)?;
    let version = Command::new(dir.join("pg_dump")).arg("--version").output()?;
    let text = String::from_utf8_lossy(&version.stdout);
    if text
        .split_whitespace()
        .any(|word| word.split('.').next() == Some(&major.to_string()))
    {
        return Ok(dir);
    }
    bail!(
        "the database server is PostgreSQL {major}, and no pg_dump of that version is installed \
         (install Debian's postgresql-client-{major})"
    )
}

/// `initdb` and `pg_ctl`: from `RAILYARD_PG_BIN_DIR`, the `PATH`, or Debian's
/// `/usr/lib/postgresql/<version>/bin` (newest first).
fn find_bin_dir(bin_override: Option<&Path>) -> anyhow::Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = bin_override {
        if has_tools(dir) {
            return Ok(dir.to_owned());
        }
        bail!(
            "RAILYARD_PG_BIN_DIR={} does not contain initdb and pg_ctl",
            dir.display()
        );
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dir| dir.join("pg_ctl").canonicalize().ok())
        .filter_map(|pg_ctl| pg_ctl.parent().map(Path::to_owned));
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            Some((
                entry.file_name().to_str()?.parse().ok()?,
                entry.path().join("bin"),
            ))
        })
        .collect();
    debian.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    on_path
        .chain(debian.into_iter().map(|(_, dir)| dir))
        .find(|dir| has_tools(dir))
        .context(
            "PostgreSQL server programs (initdb, pg_ctl) not found: install Debian's `postgresql` package, \
             set RAILYARD_PG_BIN_DIR, or set DATABASE_URL to use an existing server",
        )
}

/// As root, the cluster runs as the `postgres` system user; otherwise as ourselves.
pub fn cluster_owner() -> anyhow::Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres")? {
        Some(user) => Ok(Some((user.uid, user.gid))),
        None => bail!(
            "running as root, and PostgreSQL refuses to run as root: no unprivileged `postgres` user exists \
             to own the embedded cluster (installing Debian's `postgresql` package creates it), or set DATABASE_URL"
        ),
    }
}

/// The cluster's owner must be able to traverse every directory above its data.
fn check_reachable(root: &Path, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    for dir in root.ancestors().skip(1) {
        let meta = fs::metadata(dir)?;
        let mode = meta.mode();
        let reachable = if meta.uid() == uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !reachable {
            bail!(
                "the embedded PostgreSQL runs as the `postgres` user, which cannot enter {} (mode {:o}); \
                 choose a RAILYARD_DATA_DIR it can reach (e.g. /var/lib/railyard) or set DATABASE_URL",
                dir.display(),
                mode & 0o7777
            );
        }
    }
    Ok(())
}

fn load_or_create_password(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 && existing.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(existing.to_owned());
        }
        bail!(
            "{} is damaged; restore it from a backup (it holds the embedded PostgreSQL password)",
            path.display()
        );
    }
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, password.as_bytes())?;
    Ok(password)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn check_output(what: &str, output: Output) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// The database of a command that does not start one: `DATABASE_URL`, or the embedded
/// cluster a `serve` runs in the data directory.
pub fn running_database(config: &crate::config::Config) -> anyhow::Result<String> {
    Ok(match &config.database.url {
        Some(url) => url.clone(),
        None => EmbeddedPostgres::running_url(&config.data_dir, config.database.pg_bin_dir.as_deref())?
            .context(
                "no DATABASE_URL, and no embedded PostgreSQL runs in RAILYARD_DATA_DIR: \
                 start `railyard-server serve` first, or set DATABASE_URL",
            )?,
    })
}
