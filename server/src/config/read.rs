//! Reading the configuration, one area per function: each reads its variables, checks them
//! and names the variable of any error.

use std::{path::PathBuf, time::Duration};

use super::{
    AuthConfig, ConfigError, DatabaseConfig, EdgeTimeouts, GitHubConfig, HttpConfig, LogConfig, LogFormat,
    MailConfig, PipelineConfig, RedisConfig, RuntimeConfig, default_public_url,
    env::{Env, invalid},
    redact_url,
};
use crate::crypto::KeySource;

pub(super) fn http(env: &Env<'_>) -> Result<HttpConfig, ConfigError> {
    let listen = env.parse(
        "RAILYARD_LISTEN",
        "127.0.0.1:7070",
        "a socket address such as 127.0.0.1:7070",
    )?;
    let edge_listen = env.parse(
        "RAILYARD_ROUTER_LISTEN",
        "127.0.0.1:8080",
        "a socket address such as 127.0.0.1:8080",
    )?;
    let embedded_edge = match env.get("RAILYARD_ROUTER").as_deref().map(str::trim) {
        None | Some("" | "embedded") => true,
        Some("external") => false,
        Some(other) => return Err(invalid("RAILYARD_ROUTER", other, "embedded or external")),
    };
    let public_url = match env.get("RAILYARD_PUBLIC_URL") {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            url.trim_end_matches('/').to_owned()
        }
        Some(url) => return Err(invalid("RAILYARD_PUBLIC_URL", &url, "an http:// or https:// URL")),
        None => default_public_url(listen),
    };
    let http = HttpConfig {
        listen,
        edge_listen,
        embedded_edge,
        request_timeout: Duration::from_secs(env.parse_in("RAILYARD_REQUEST_TIMEOUT_SECS", 30, 1..=3600)?),
        idle_timeout: Duration::from_secs(env.parse_in("RAILYARD_IDLE_TIMEOUT_SECS", 60, 1..=86_400)?),
        max_connections_per_client: env.parse_in(
            "RAILYARD_MAX_CONNECTIONS_PER_CLIENT",
            256,
            0..=1_000_000,
        )?,
        max_connections: env.parse_opt_in("RAILYARD_MAX_CONNECTIONS", 1..=10_000_000)?,
        router_max_connections: env.parse_opt_in("RAILYARD_ROUTER_MAX_CONNECTIONS", 1..=10_000_000)?,
        edge_timeouts: EdgeTimeouts {
            request: Duration::from_secs(env.parse_in(
                "RAILYARD_ROUTER_REQUEST_TIMEOUT_SECS",
                300,
                1..=86_400,
            )?),
            idle: Duration::from_secs(env.parse_in("RAILYARD_ROUTER_IDLE_TIMEOUT_SECS", 75, 1..=86_400)?),
        },
        edge_threads: env.parse_in(
            "RAILYARD_ROUTER_THREADS",
            (std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) / 2).max(1),
            1..=256,
        )?,
        body_limit: env.parse_in(
            "RAILYARD_BODY_LIMIT_BYTES",
            1024 * 1024,
            1024..=1024 * 1024 * 1024,
        )?,
        public_url,
        trusted_proxies: match env.get("RAILYARD_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            invalid(
                                "RAILYARD_TRUSTED_PROXIES",
                                p,
                                "comma-separated IP addresses or CIDR ranges",
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        },
    };
    Ok(http)
}

pub(super) fn database(env: &Env<'_>) -> Result<DatabaseConfig, ConfigError> {
    let database = DatabaseConfig {
        url: match env.get("DATABASE_URL") {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Some(url),
            Some(url) => {
                return Err(invalid(
                    "DATABASE_URL",
                    &redact_url(&url),
                    "a postgres:// URL (unset it to use the embedded PostgreSQL)",
                ));
            }
            None => None,
        },
        pool_size: env.parse_in("RAILYARD_DB_POOL_SIZE", 10, 1..=500)?,
        statement_timeout: Duration::from_millis(env.parse_in(
            "RAILYARD_DB_STATEMENT_TIMEOUT_MS",
            15_000,
            100..=3_600_000,
        )?),
        acquire_timeout: Duration::from_millis(env.parse_in(
            "RAILYARD_DB_ACQUIRE_TIMEOUT_MS",
            3_000,
            100..=120_000,
        )?),
        pg_bin_dir: env.get("RAILYARD_PG_BIN_DIR").map(PathBuf::from),
    };
    Ok(database)
}

pub(super) fn redis(env: &Env<'_>) -> Result<RedisConfig, ConfigError> {
    let redis = RedisConfig {
        url: match env.get("REDIS_URL") {
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Some(url),
            Some(url) => {
                return Err(invalid(
                    "REDIS_URL",
                    &redact_url(&url),
                    "a redis:// or rediss:// URL",
                ));
            }
            None => None,
        },
    };
    Ok(redis)
}

pub(super) fn log(env: &Env<'_>) -> Result<LogConfig, ConfigError> {
    let log = LogConfig {
        format: match env.get("RAILYARD_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("RAILYARD_LOG_FORMAT", other, "`text` or `json`")),
        },
        filter: env
            .get("RUST_LOG")
            .unwrap_or_else(|| "info,tower_http=info,diesel_async=warn".to_owned()),
    };
    Ok(log)
}

pub(super) fn auth(env: &Env<'_>) -> Result<AuthConfig, ConfigError> {
    let auth = AuthConfig {
        master_key: match (
            (env.0)("RAILYARD_MASTER_KEY"),
            env.get("RAILYARD_MASTER_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "RAILYARD_MASTER_KEY",
                    "*****",
                    "set either RAILYARD_MASTER_KEY or RAILYARD_MASTER_KEY_FILE, not both",
                ));
            }
            // Present but empty is refused (when the key ring loads), never treated as "no key".
            (Some(key), None) => KeySource::Inline(key),
            (None, Some(path)) => KeySource::File(PathBuf::from(path)),
            (None, None) => KeySource::Generated,
        },
        setup_token: match env.get("RAILYARD_SETUP_TOKEN") {
            Some(token) if token.trim().len() >= 24 && !token.trim().eq_ignore_ascii_case("changeme") => {
                Some(token.trim().to_owned())
            }
            Some(_) => {
                return Err(invalid(
                    "RAILYARD_SETUP_TOKEN",
                    "*****",
                    "a random token of at least 24 characters (e.g. `openssl rand -hex 16`)",
                ));
            }
            None => None,
        },
        open_signup: env.parse_bool("RAILYARD_OPEN_SIGNUP", false)?,
        github: match (env.get("GITHUB_CLIENT_ID"), env.get("GITHUB_CLIENT_SECRET")) {
            (None, None) => None,
            (Some(client_id), Some(client_secret)) => Some(GitHubConfig {
                client_id,
                client_secret,
                oauth_url: env.url("GITHUB_OAUTH_URL", "https://github.com")?,
                api_url: env.url("GITHUB_API_URL", "https://api.github.com")?,
            }),
            (Some(_), None) => {
                return Err(invalid(
                    "GITHUB_CLIENT_SECRET",
                    "",
                    "set together with GITHUB_CLIENT_ID",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "GITHUB_CLIENT_ID",
                    "",
                    "set together with GITHUB_CLIENT_SECRET",
                ));
            }
        },
        mail: match env.get("RESEND_API_KEY") {
            None => None,
            Some(key) => Some(MailConfig {
                resend_api_key: key,
                resend_api_url: env.url("RESEND_API_URL", "https://api.resend.com")?,
                from: env
                    .get("RAILYARD_MAIL_FROM")
                    .filter(|f| f.contains('@'))
                    .ok_or_else(|| {
                        invalid(
                            "RAILYARD_MAIL_FROM",
                            "",
                            "a sender such as `Railyard <railyard@example.com>` (needed with RESEND_API_KEY)",
                        )
                    })?,
            }),
        },
        cors_origins: env
            .get("RAILYARD_CORS_ORIGINS")
            .map(|list| {
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    for origin in &auth.cors_origins {
        if !(origin.starts_with("http://") || origin.starts_with("https://"))
            || origin.matches('/').count() != 2
        {
            return Err(invalid(
                "RAILYARD_CORS_ORIGINS",
                origin,
                "comma-separated origins such as https://app.example.com",
            ));
        }
    }
    Ok(auth)
}

pub(super) fn pipeline(env: &Env<'_>) -> Result<PipelineConfig, ConfigError> {
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let build_concurrency = env.parse_in("RAILYARD_BUILD_CONCURRENCY", cpus.clamp(1, 64), 1..=64)?;
    let pipeline = PipelineConfig {
        github_url: env.url("GITHUB_URL", "https://github.com")?,
        file_source_roots: absolute_dirs(env, "RAILYARD_FILE_SOURCE_ROOTS")?,
        workers: env.parse_in("RAILYARD_WORKERS", build_concurrency + 4, 0..=128)?,
        build_concurrency,
        job_lease: Duration::from_secs(env.parse_in("RAILYARD_JOB_LEASE_SECS", 30, 2..=3600)?),
        build_timeout: Duration::from_secs(env.parse_in("RAILYARD_BUILD_TIMEOUT_SECS", 1800, 5..=86_400)?),
        releases_kept: env.parse_in("RAILYARD_RELEASES_KEEP", 5, 1..=100)?,
        upload_limit: env.parse_in(
            "RAILYARD_UPLOAD_LIMIT_BYTES",
            200 * 1024 * 1024,
            1024..=16 * 1024 * 1024 * 1024,
        )?,
        build_log_limit: env.parse_in(
            "RAILYARD_BUILD_LOG_LIMIT_BYTES",
            10 * 1024 * 1024,
            64 * 1024..=1024 * 1024 * 1024,
        )?,
        push_limit: env.parse_in(
            "RAILYARD_PUSH_LIMIT_BYTES",
            500 * 1024 * 1024,
            64 * 1024..=64 * 1024 * 1024 * 1024,
        )?,
        workspace_storage_limit: env.parse_in(
            "RAILYARD_WORKSPACE_STORAGE_LIMIT_BYTES",
            20 * 1024 * 1024 * 1024,
            64 * 1024..=u64::MAX / 2,
        )?,
        node_registry: env
            .url("RAILYARD_NODE_REGISTRY", "https://registry.npmjs.org")?
            .trim_end_matches('/')
            .to_owned(),
    };
    Ok(pipeline)
}

pub(super) fn runtime(env: &Env<'_>) -> Result<RuntimeConfig, ConfigError> {
    let ports = env
        .get("RAILYARD_PORT_RANGE")
        .unwrap_or_else(|| "20000-29999".to_owned());
    let bad_ports = || {
        invalid(
            "RAILYARD_PORT_RANGE",
            &ports,
            "a range of ports such as 20000-29999",
        )
    };
    let (low, high) = ports.trim().split_once('-').ok_or_else(bad_ports)?;
    let (low, high): (u16, u16) = (
        low.trim().parse().map_err(|_| bad_ports())?,
        high.trim().parse().map_err(|_| bad_ports())?,
    );
    if low < 1024 || high < low {
        return Err(bad_ports());
    }
    let base_domain = env
        .get("RAILYARD_BASE_DOMAIN")
        .unwrap_or_else(|| "localhost".to_owned())
        .trim()
        .trim_matches('.')
        .to_ascii_lowercase();
    if base_domain.is_empty()
        || !base_domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(invalid(
            "RAILYARD_BASE_DOMAIN",
            &base_domain,
            "a domain name such as apps.example.com",
        ));
    }
    let runtime = RuntimeConfig {
        ports: low..=high,
        health_timeout: Duration::from_secs(env.parse_in("RAILYARD_HEALTH_TIMEOUT_SECS", 60, 1..=3600)?),
        stop_grace: Duration::from_secs(env.parse_in("RAILYARD_STOP_GRACE_SECS", 10, 0..=3600)?),
        drain: Duration::from_secs(env.parse_in("RAILYARD_DRAIN_SECS", 5, 0..=3600)?),
        base_domain,
        health_every: match env.parse_in("RAILYARD_HEALTH_INTERVAL_SECS", 10, 0..=86_400)? {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        },
        health_failures: env.parse_in("RAILYARD_HEALTH_FAILURES", 3, 1..=100)?,
        log_max_bytes: env.parse_in("RAILYARD_LOG_MAX_BYTES", 10 * 1024 * 1024, 4096..=1 << 40)?,
        log_retention: Duration::from_secs(
            86_400 * env.parse_in("RAILYARD_LOG_RETENTION_DAYS", 7u64, 1..=3650)?,
        ),
        cgroup_root: env.get("RAILYARD_CGROUP_ROOT").map(PathBuf::from),
    };
    Ok(runtime)
}

pub(super) fn sandbox(env: &Env<'_>) -> Result<crate::sandbox::SandboxConfig, ConfigError> {
    let isolate = match env.get("RAILYARD_ISOLATION").as_deref().map(str::trim) {
        None | Some("" | "on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(invalid(
                "RAILYARD_ISOLATION",
                other,
                "`on` (the default: builds and apps run isolated, or not at all) or `off`",
            ));
        }
    };
    let readable = absolute_dirs(env, "RAILYARD_SANDBOX_READ_PATHS")?;
    Ok(crate::sandbox::SandboxConfig {
        isolate,
        uid_base: env.parse_in("RAILYARD_SANDBOX_UID_BASE", 400_000u32, 1000..=2_000_000_000)?,
        readable,
    })
}

/// A `:`-separated list of absolute directories.
fn absolute_dirs(env: &Env<'_>, var: &'static str) -> Result<Vec<PathBuf>, ConfigError> {
    env.get(var)
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let path = PathBuf::from(p.trim());
            if path.is_absolute() {
                Ok(path)
            } else {
                Err(invalid(var, p, "absolute directories separated by `:`"))
            }
        })
        .collect()
}

pub(super) fn github(env: &Env<'_>) -> Result<super::GitHubIntegration, ConfigError> {
    let webhook_secret = env.get("GITHUB_WEBHOOK_SECRET");
    if webhook_secret.as_ref().is_some_and(|s| s.len() < 16) {
        return Err(invalid(
            "GITHUB_WEBHOOK_SECRET",
            "*****",
            "a random secret of at least 16 characters (the GitHub App's webhook secret)",
        ));
    }
    Ok(super::GitHubIntegration {
        url: env.url("GITHUB_URL", "https://github.com")?,
        api_url: env.url("GITHUB_API_URL", "https://api.github.com")?,
        webhook_secret,
    })
}

pub(super) fn databases(env: &Env<'_>) -> Result<super::DatabasesConfig, ConfigError> {
    use super::{BackupStoreConfig, NeonConfig};
    let admin_url = env.get("RAILYARD_APP_POSTGRES_ADMIN_URL");
    if let Some(url) = &admin_url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(invalid(
            "RAILYARD_APP_POSTGRES_ADMIN_URL",
            &redact_url(url),
            "a postgres:// URL of a superuser (or a role with CREATEDB and CREATEROLE)",
        ));
    }
    let neon = match env.get("NEON_API_KEY") {
        Some(api_key) => Some(NeonConfig {
            api_url: env.url("NEON_API_URL", "https://console.neon.tech/api/v2")?,
            api_key,
            project_id: env.get("NEON_PROJECT_ID").ok_or_else(|| {
                invalid(
                    "NEON_PROJECT_ID",
                    "",
                    "the id of the Neon project apps' branches are made in",
                )
            })?,
        }),
        None => None,
    };
    let backup_store = match env.get("RAILYARD_BACKUP_STORE").as_deref().map(str::trim) {
        None | Some("" | "local") => BackupStoreConfig::Local {
            dir: env.get("RAILYARD_BACKUP_DIR").map(PathBuf::from),
        },
        Some("s3") => {
            let need = |var: &'static str| {
                env.get(var)
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| invalid(var, "", "set (RAILYARD_BACKUP_STORE=s3)"))
            };
            BackupStoreConfig::S3 {
                endpoint: env.url("RAILYARD_S3_ENDPOINT", "https://s3.amazonaws.com")?,
                bucket: need("RAILYARD_S3_BUCKET")?,
                region: env
                    .get("RAILYARD_S3_REGION")
                    .unwrap_or_else(|| "us-east-1".to_owned()),
                access_key: need("RAILYARD_S3_ACCESS_KEY_ID")?,
                secret_key: need("RAILYARD_S3_SECRET_ACCESS_KEY")?,
            }
        }
        Some(other) => return Err(invalid("RAILYARD_BACKUP_STORE", other, "local or s3")),
    };
    Ok(super::DatabasesConfig {
        admin_url,
        neon,
        backup_store,
    })
}
