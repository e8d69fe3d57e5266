use std::{ops::Deref, sync::Arc};

use anyhow::Context as _;

use crate::{
    auth::{cookies::CookiePolicy, jwt::Signer},
    config::Config,
    crypto::KeyRing,
    databases::{DatabaseHost, backup::store::BackupStore},
    db::DbPool,
    github::{GitHubApi, GitHubRest, HttpGitHub, HttpGitHubRest},
    logbus::LogBus,
    mail::{Mailer, ResendMailer},
    ratelimit::RateLimiter,
    redis::RedisBus,
    sandbox::Sandbox,
};

/// Everything a handler may reach. Outside services (GitHub, mail, clock, ...) join here as
/// `Arc<dyn Trait>` so tests swap them for local servers that speak the real protocol.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub db: DbPool,
    /// `None` when no `REDIS_URL` is configured (the log bus stays in-process).
    pub redis: Option<RedisBus>,
    /// Live log lines, shared by every replica through Redis when configured.
    pub bus: LogBus,
    /// Encryption at rest for stored secrets.
    pub keys: Arc<KeyRing>,
    /// Access-token signing and verification.
    pub signer: Signer,
    pub cookies: CookiePolicy,
    pub limits: RateLimiter,
    /// GitHub sign-in; `None` when not configured.
    pub github: Option<Arc<dyn GitHubApi>>,
    /// GitHub's REST API with users' tokens (repositories, hooks, statuses, comments).
    pub github_rest: Arc<dyn GitHubRest>,
    /// Outgoing email; `None` when not configured (invitation links are then shown to copy).
    pub mailer: Option<Arc<dyn Mailer>>,
    /// Who builds and apps run as (probed once per process).
    pub sandbox: Arc<Sandbox>,
    /// Where apps' databases live.
    pub databases: Arc<dyn DatabaseHost>,
    /// Where their backups go.
    pub backup_store: Arc<dyn BackupStore>,
}

impl App {
    /// The backup engine of this process.
    pub fn backups(&self) -> crate::databases::backup::Engine {
        crate::databases::backup::Engine {
            db: self.db.clone(),
            keys: self.keys.clone(),
            host: self.databases.clone(),
            store: self.backup_store.clone(),
            spool: crate::layout::Layout::new(&self.config.data_dir).backup_spool(),
        }
    }

    /// Loads the key ring (refusing a weak or empty master key) and the token signing keys
    /// (creating or rotating them as due).
    pub async fn build(config: Config, db: DbPool, redis: Option<RedisBus>) -> anyhow::Result<Self> {
        let keys = Arc::new(KeyRing::load(&config.auth.master_key, &config.data_dir).context("master key")?);
        let signer = Signer::new(config.http.public_url.clone());
        {
            let mut conn = db
                .get()
                .await
                .context("database connection for the signing keys")?;
            signer.rotate_and_load(&mut conn, &keys).await?;
        }
        let cookies = CookiePolicy::new(
            config.http.public_url.starts_with("https://"),
            &keys.derive("csrf"),
        );
        let namespace: String = keys.derive("redis-namespace")[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let bus = match &config.redis.url {
            Some(url) => LogBus::redis(url, &namespace).await?,
            None => LogBus::local(),
        };
        let limits = RateLimiter::new(redis.clone(), namespace);
        let github: Option<Arc<dyn GitHubApi>> = match &config.auth.github {
            Some(gh) => Some(Arc::new(HttpGitHub::new(
                &gh.oauth_url,
                &gh.api_url,
                &gh.client_id,
                &gh.client_secret,
            )?)),
            None => None,
        };
        let github_rest: Arc<dyn GitHubRest> = Arc::new(HttpGitHubRest::new(&config.github.api_url)?);
        let mailer: Option<Arc<dyn Mailer>> = match &config.auth.mail {
            Some(mail) => Some(Arc::new(ResendMailer::new(
                &mail.resend_api_url,
                &mail.resend_api_key,
                &mail.from,
            )?)),
            None => None,
        };
        let sandbox = Arc::new(Sandbox::detect(config.sandbox.clone(), &config.data_dir).await);
        let databases = crate::databases::host_of(&config)?;
        let backup_store = crate::databases::backup::store::store_of(&config)?;
        Ok(Self {
            databases,
            backup_store,
            sandbox,
            config,
            db,
            redis,
            bus,
            keys,
            signer,
            cookies,
            limits,
            github,
            github_rest,
            mailer,
        })
    }
}

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
