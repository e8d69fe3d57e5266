//! Variables and secrets: stored encrypted (AES-256-GCM, the AAD binds each value to its
//! workspace, environment, service and name), resolved at deploy time ([`resolve`]), and
//! masked in everything Railyard prints ([`mask`]).
//!
//! A deployment keeps what it ran with: its resolved variables, encrypted under its own id,
//! and the revisions they came from, so a restart, a recovery or a rollback uses the same
//! values, and "changes not deployed" is a comparison of revisions.

pub mod mask;
pub mod resolve;
pub mod rotate;
pub mod source;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use self::{mask::Masker, resolve::PORT_PLACEHOLDER};
use crate::crypto::KeyRing;

/// Where apps answer: `http://<service>-<environment>-<project>.<base domain>:<port>`.
#[derive(Debug, Clone)]
pub struct PublicUrls {
    pub base_domain: String,
    pub port: u16,
}

impl PublicUrls {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            base_domain: config.runtime.base_domain.clone(),
            port: config.http.edge_listen.port(),
        }
    }

    pub fn url(&self, service: &str, environment: &str, project: &str) -> String {
        format!(
            "http://{service}-{environment}-{project}.{}:{}",
            self.base_domain, self.port
        )
    }
}

/// The additional authenticated data of a stored variable.
pub fn aad(workspace: Uuid, environment: Uuid, service: Option<Uuid>, name: &str) -> Vec<u8> {
    let service = service.map_or_else(|| "shared".to_owned(), |s| s.to_string());
    format!("railyard:variable:{workspace}:{environment}:{service}:{name}").into_bytes()
}

/// The additional authenticated data of a deployment's variables.
pub fn snapshot_aad(deployment: Uuid) -> Vec<u8> {
    format!("railyard:deployment:{deployment}:variables").into_bytes()
}

/// What a deployment runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Name → value (`PORT` references still as [`PORT_PLACEHOLDER`]).
    pub values: BTreeMap<String, String>,
    /// Values to mask in everything printed about this deployment.
    pub secrets: BTreeSet<String>,
}

impl Snapshot {
    pub fn masker(&self) -> Masker {
        Masker::new(self.secrets.iter().map(String::as_str))
    }

    /// The variables as environment entries, with `port` in place of `${{ PORT }}` (an
    /// empty string for a build, which has no port).
    pub fn env(&self, port: Option<u16>) -> Vec<(String, String)> {
        let port = port.map(|p| p.to_string()).unwrap_or_default();
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(PORT_PLACEHOLDER, &port)))
            .collect()
    }

    pub fn seal(&self, keys: &KeyRing, deployment: Uuid) -> anyhow::Result<Vec<u8>> {
        let plain = serde_json::to_vec(self)?;
        Ok(keys.encrypt(&plain, &snapshot_aad(deployment))?)
    }

    pub fn open(keys: &KeyRing, deployment: Uuid, sealed: &[u8]) -> anyhow::Result<Self> {
        let plain = keys
            .decrypt(sealed, &snapshot_aad(deployment))
            .with_context(|| format!("the variables of deployment {deployment}"))?;
        Ok(serde_json::from_slice(&plain)?)
    }
}
