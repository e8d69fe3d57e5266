//! Where sealed backups are kept: a local directory, or S3-compatible object storage
//! (requests signed with `rusty-s3`, sent with reqwest). A store that fails fails that one
//! backup; what is stored already is never touched by a new backup.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};
use tokio::io::AsyncWriteExt as _;

use crate::config::{BackupStoreConfig, Config};

#[async_trait::async_trait]
pub trait BackupStore: Send + Sync + std::fmt::Debug {
    /// `local` or `s3`.
    fn kind(&self) -> &'static str;
    /// Stores the file at `from` as `key`.
    async fn put(&self, key: &str, from: &Path) -> anyhow::Result<()>;
    /// A local file with `key`'s contents: the store's own (local) or a download into `spool`.
    async fn fetch(&self, key: &str, spool: &Path) -> anyhow::Result<PathBuf>;
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
}

pub fn store_of(config: &Config) -> anyhow::Result<std::sync::Arc<dyn BackupStore>> {
    Ok(match &config.databases.backup_store {
        BackupStoreConfig::Local { dir } => std::sync::Arc::new(LocalStore {
            dir: dir.clone().unwrap_or_else(|| config.data_dir.join("backups")),
        }),
        BackupStoreConfig::S3 {
            endpoint,
            bucket,
            region,
            access_key,
            secret_key,
        } => std::sync::Arc::new(S3Store::new(endpoint, bucket, region, access_key, secret_key)?),
    })
}

/// Keys are `<uuid>/<uuid>.rybk`: nothing else is accepted (no `..`, no absolute path).
fn check_key(key: &str) -> anyhow::Result<&str> {
    let ok = !key.is_empty()
        && key.len() < 200
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'.' | b'_'))
        && !key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if !ok {
        bail!("{key:?} is not a backup key");
    }
    Ok(key)
}

#[derive(Debug)]
pub struct LocalStore {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl BackupStore for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn put(&self, key: &str, from: &Path) -> anyhow::Result<()> {
        let path = self.dir.join(check_key(key)?);
        let parent = path.parent().context("a backup key has a directory")?;
        tokio::fs::create_dir_all(parent)
            .await
            .with_context(|| format!("cannot create {}", parent.display()))?;
        // Written beside its final name, then renamed: a half-written file never has the
        // name of a backup.
        let partial = path.with_extension("part");
        let copied = tokio::fs::copy(from, &partial).await;
        if let Err(err) = copied {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(err)
                .with_context(|| format!("cannot write to the backup directory {}", self.dir.display()));
        }
        tokio::fs::File::open(&partial).await?.sync_all().await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(())
    }

    async fn fetch(&self, key: &str, _spool: &Path) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(check_key(key)?);
        if !path.is_file() {
            bail!("the backup's file {} is missing from the store", path.display());
        }
        Ok(path)
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.dir.join(check_key(key)?)).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }
}

pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket.name())
            .finish()
    }
}

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(3600);

impl S3Store {
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
    ) -> anyhow::Result<Self> {
        let endpoint = reqwest::Url::parse(endpoint).context("RAILYARD_S3_ENDPOINT")?;
        let bucket = Bucket::new(endpoint, UrlStyle::Path, bucket.to_owned(), region.to_owned())
            .map_err(|err| anyhow::anyhow!("RAILYARD_S3_BUCKET: {err}"))?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(access_key, secret_key),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    async fn refused(what: &str, response: reqwest::Response) -> anyhow::Error {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let code = between(&body, "<Code>", "</Code>");
        let message = between(&body, "<Message>", "</Message>");
        anyhow::anyhow!(
            "the S3 store refused to {what} ({status}{}{})",
            code.map(|c| format!(" {c}")).unwrap_or_default(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        )
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

#[async_trait::async_trait]
impl BackupStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &str, from: &Path) -> anyhow::Result<()> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), check_key(key)?)
            .sign(SIGNED_FOR);
        let file = tokio::fs::File::open(from).await?;
        let len = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let response = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .context("cannot reach the S3 store")?;
        if !response.status().is_success() {
            return Err(Self::refused("store the backup", response).await);
        }
        Ok(())
    }

    async fn fetch(&self, key: &str, spool: &Path) -> anyhow::Result<PathBuf> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), check_key(key)?)
            .sign(SIGNED_FOR);
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .context("cannot reach the S3 store")?;
        if !response.status().is_success() {
            return Err(Self::refused("return the backup", response).await);
        }
        let mut file = tokio::fs::File::create(spool).await?;
        while let Some(chunk) = response.chunk().await.context("downloading the backup")? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(spool.to_owned())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), check_key(key)?)
            .sign(SIGNED_FOR);
        let response = self
            .http
            .delete(url)
            .send()
            .await
            .context("cannot reach the S3 store")?;
        if !response.status().is_success() && response.status() != reqwest::StatusCode::NOT_FOUND {
            return Err(Self::refused("delete a backup", response).await);
        }
        Ok(())
    }
}
