//! Outgoing email, behind a trait. The one implementation speaks Resend's HTTP API
//! (`POST /emails`) at a configurable base URL, so tests point it at a local server that
//! speaks the same protocol. Messages are plain text: names and workspace names are user
//! input and never become HTML.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("email not sent: {0}")]
pub struct MailError(pub String);

#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}

#[derive(Debug)]
pub struct ResendMailer {
    http: reqwest::Client,
    api_url: String,
    api_key: String,
    from: String,
}

impl ResendMailer {
    pub fn new(api_url: &str, api_key: &str, from: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            from: from.to_owned(),
        })
    }
}

#[derive(Serialize)]
struct ResendEmail<'a> {
    from: &'a str,
    to: [&'a str; 1],
    subject: &'a str,
    text: &'a str,
}

#[async_trait::async_trait]
impl Mailer for ResendMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let body = ResendEmail {
            from: &self.from,
            to: [&mail.to],
            subject: &mail.subject,
            text: &mail.text,
        };
        let response = self
            .http
            .post(format!("{}/emails", self.api_url))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|err| MailError(err.without_url().to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(MailError(format!(
                "the mail service answered {}",
                response.status()
            )))
        }
    }
}
