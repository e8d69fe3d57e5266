//! GitHub, behind a trait: OAuth code exchange (with PKCE) and the signed-in user's profile
//! and emails. The one implementation speaks GitHub's HTTP API at configurable base URLs
//! (`GITHUB_OAUTH_URL`, `GITHUB_API_URL`), so tests point it at a local server that speaks
//! the same protocol.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitHubUser {
    pub id: i64,
    pub login: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitHubEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub refused the sign-in: {0}")]
    Refused(String),
    #[error("GitHub could not be reached: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait GitHubApi: Send + Sync + std::fmt::Debug {
    /// Where the browser goes to authorise (`/login/oauth/authorize` with the query built by
    /// the caller).
    fn authorize_url(&self) -> String;
    fn client_id(&self) -> &str;
    /// Exchanges an authorisation code (and the PKCE verifier) for an access token.
    async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, GitHubError>;
    async fn user(&self, token: &str) -> Result<GitHubUser, GitHubError>;
    async fn emails(&self, token: &str) -> Result<Vec<GitHubEmail>, GitHubError>;
}

#[derive(Debug)]
pub struct HttpGitHub {
    http: reqwest::Client,
    oauth_url: String,
    api_url: String,
    client_id: String,
    client_secret: String,
}

impl HttpGitHub {
    pub fn new(oauth_url: &str, api_url: &str, client_id: &str, client_secret: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("railyard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            oauth_url: oauth_url.trim_end_matches('/').to_owned(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
        })
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        token: &str,
    ) -> Result<T, GitHubError> {
        let response = self
            .http
            .get(format!("{}{path}", self.api_url))
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|err| GitHubError::Unavailable(err.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(GitHubError::Refused(format!(
                "{path} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|err| GitHubError::Unavailable(err.without_url().to_string()))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[async_trait::async_trait]
impl GitHubApi for HttpGitHub {
    fn authorize_url(&self) -> String {
        format!("{}/login/oauth/authorize", self.oauth_url)
    }

    fn client_id(&self) -> &str {
        &self.client_id
    }

    async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, GitHubError> {
        let response = self
            .http
            .post(format!("{}/login/oauth/access_token", self.oauth_url))
            .header("Accept", "application/json")
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|err| GitHubError::Unavailable(err.without_url().to_string()))?;
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|err| GitHubError::Unavailable(err.without_url().to_string()))?;
        match (body.access_token, body.error) {
            (Some(token), None) if !token.is_empty() => Ok(token),
            (_, error) => Err(GitHubError::Refused(
                body.error_description
                    .or(error)
                    .unwrap_or_else(|| "no access token".to_owned()),
            )),
        }
    }

    async fn user(&self, token: &str) -> Result<GitHubUser, GitHubError> {
        self.get_json("/user", token).await
    }

    async fn emails(&self, token: &str) -> Result<Vec<GitHubEmail>, GitHubError> {
        self.get_json("/user/emails", token).await
    }
}

mod rest;

pub use rest::{GitHubRest, HttpGitHubRest, NewDeployment, RestError, RestRepository};

/// Whether `header` (`X-Hub-Signature-256`: `sha256=<hex>`) is the HMAC-SHA256 of `body`
/// under `secret`, compared in constant time (ring's `hmac::verify`).
pub fn signature_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex.trim()) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// `sha256=<hex>` of `body` under `secret`: what GitHub sends (tests and redeliveries sign
/// with it).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_secret_and_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body
        // "Hello, World!".
        let secret = b"It's a Secret to Everybody";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), good);
        assert!(signature_matches(secret, b"Hello, World!", good));
        assert!(!signature_matches(secret, b"Hello, World?", good));
        assert!(!signature_matches(b"another secret", b"Hello, World!", good));
        assert!(!signature_matches(
            secret,
            b"Hello, World!",
            &good.replace("sha256=", "sha1=")
        ));
        assert!(!signature_matches(secret, b"Hello, World!", "sha256=zz"));
        assert!(!signature_matches(secret, b"Hello, World!", ""));
    }
}
