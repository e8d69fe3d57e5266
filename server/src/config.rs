//! Configuration from the environment, one struct per area.
//!
//! Every variable is listed in `.env.example`. Parsing fails fast, naming the variable and
//! what was expected, before anything starts.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::crypto::KeySource;

#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is invalid: {expected}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub expected: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub dashboard: DashboardConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    /// Where Railyard keeps its state: the embedded PostgreSQL cluster, later releases and logs.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Dashboard + API (`RAILYARD_LISTEN`).
    pub listen: SocketAddr,
    /// The app router (`RAILYARD_ROUTER_LISTEN`).
    pub router_listen: SocketAddr,
    /// Upper bound for one API request (`RAILYARD_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// Largest accepted JSON body (`RAILYARD_BODY_LIMIT_BYTES`).
    pub body_limit: usize,
    /// Base URL printed for humans (`RAILYARD_PUBLIC_URL`); derived from `listen` when unset.
    pub public_url: String,
    /// Proxies whose `X-Forwarded-For` is believed (`RAILYARD_TRUSTED_PROXIES`); by default
    /// none, and the client address is the socket's peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`; `None` starts the embedded PostgreSQL cluster.
    pub url: Option<String>,
    pub pool_size: u32,
    /// Set as `statement_timeout` on every new pooled connection.
    pub statement_timeout: Duration,
    /// How long to wait for a pooled connection before answering 503.
    pub acquire_timeout: Duration,
    /// Directory holding `initdb` and `pg_ctl` for the embedded cluster (`RAILYARD_PG_BIN_DIR`).
    pub pg_bin_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`; `None` keeps the log bus in-process.
    pub url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Trunk's output directory (`RAILYARD_DASHBOARD_DIR`).
    pub dist_dir: PathBuf,
}

#[derive(Clone)]
pub struct AuthConfig {
    /// `RAILYARD_MASTER_KEY` / `RAILYARD_MASTER_KEY_FILE` / generated in the data dir.
    pub master_key: KeySource,
    /// `RAILYARD_SETUP_TOKEN`: the one-time token for the first account; generated when unset.
    pub setup_token: Option<String>,
    /// `RAILYARD_OPEN_SIGNUP`: anyone may sign up (default: invitation only).
    pub open_signup: bool,
    /// `RAILYARD_CORS_ORIGINS`: origins allowed to call the API from a browser.
    pub cors_origins: Vec<String>,
    /// GitHub sign-in, when `GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET` are set.
    pub github: Option<GitHubConfig>,
    /// Invitation emails through Resend, when `RESEND_API_KEY` is set.
    pub mail: Option<MailConfig>,
}

#[derive(Clone)]
pub struct MailConfig {
    pub resend_api_key: String,
    /// `RESEND_API_URL` (default `https://api.resend.com`).
    pub resend_api_url: String,
    /// `RAILYARD_MAIL_FROM`, e.g. `Railyard <railyard@example.com>`.
    pub from: String,
}

#[derive(Clone)]
pub struct GitHubConfig {
    pub client_id: String,
    pub client_secret: String,
    /// `GITHUB_OAUTH_URL` (default `https://github.com`).
    pub oauth_url: String,
    /// `GITHUB_API_URL` (default `https://api.github.com`).
    pub api_url: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys or tokens.
        f.debug_struct("AuthConfig")
            .field("open_signup", &self.open_signup)
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `RUST_LOG`-style filter.
    pub filter: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses configuration from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let lookup = |name: &str| lookup(name);
        let listen = env.parse(
            "RAILYARD_LISTEN",
            "127.0.0.1:7070",
            "a socket address such as 127.0.0.1:7070",
        )?;
        let router_listen = env.parse(
            "RAILYARD_ROUTER_LISTEN",
            "127.0.0.1:8080",
            "a socket address such as 127.0.0.1:8080",
        )?;
        let public_url = match env.get("RAILYARD_PUBLIC_URL") {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(url) => return Err(invalid("RAILYARD_PUBLIC_URL", &url, "an http:// or https:// URL")),
            None => default_public_url(listen),
        };
        let http = HttpConfig {
            listen,
            router_listen,
            request_timeout: Duration::from_secs(env.parse_in(
                "RAILYARD_REQUEST_TIMEOUT_SECS",
                30,
                1..=3600,
            )?),
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

        let auth = AuthConfig {
            master_key: match (lookup("RAILYARD_MASTER_KEY"), env.get("RAILYARD_MASTER_KEY_FILE")) {
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
                    from: env.get("RAILYARD_MAIL_FROM").filter(|f| f.contains('@')).ok_or_else(|| {
                        invalid("RAILYARD_MAIL_FROM", "", "a sender such as `Railyard <railyard@example.com>` (needed with RESEND_API_KEY)")
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

        Ok(Self {
            auth,
            http,
            database,
            redis,
            dashboard: DashboardConfig {
                dist_dir: env
                    .get("RAILYARD_DASHBOARD_DIR")
                    .map_or_else(|| PathBuf::from("dist"), PathBuf::from),
            },
            log,
            data_dir: env
                .get("RAILYARD_DATA_DIR")
                .map_or_else(|| PathBuf::from(".railyard"), PathBuf::from),
        })
    }
}

fn default_public_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

/// Hides the password of a connection URL so it can appear in an error message.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{user}:*****@{host}{slash}{tail}")
        }
        None => url.to_owned(),
    }
}

fn invalid(var: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError {
        var,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A variable's value; empty counts as unset so `VAR=` in a .env file means "default".
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    fn url(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(var).unwrap_or_else(|| default.to_owned());
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(value.trim_end_matches('/').to_owned())
        } else {
            Err(invalid(var, &value, "an http:// or https:// URL"))
        }
    }

    fn parse_bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(invalid(var, other, "`true` or `false`")),
        }
    }

    fn parse<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: &str,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let value = self.get(var).unwrap_or_else(|| default.to_owned());
        value.trim().parse().map_err(|_| invalid(var, &value, expected))
    }

    fn parse_in<T>(
        &self,
        var: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(value) = self.get(var) else {
            return Ok(default);
        };
        let expected = || format!("a whole number from {} to {}", range.start(), range.end());
        let parsed: T = value
            .trim()
            .parse()
            .map_err(|_| invalid(var, &value, &expected()))?;
        if range.contains(&parsed) {
            Ok(parsed)
        } else {
            Err(invalid(var, &value, &expected()))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:7070");
        assert_eq!(config.http.router_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.http.public_url, "http://127.0.0.1:7070");
        assert_eq!(config.data_dir, PathBuf::from(".railyard"));
        assert!(
            config.database.url.is_none(),
            "no DATABASE_URL means the embedded cluster"
        );
        assert!(config.redis.url.is_none());
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(config.database.statement_timeout, Duration::from_secs(15));
    }

    #[test]
    fn reads_every_area() {
        let config = parse(&[
            ("RAILYARD_LISTEN", "0.0.0.0:9000"),
            ("RAILYARD_ROUTER_LISTEN", "[::1]:9080"),
            ("RAILYARD_DATA_DIR", "/var/lib/railyard"),
            ("DATABASE_URL", "postgres://u:p@db:5432/railyard"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("RAILYARD_DB_POOL_SIZE", "4"),
            ("RAILYARD_LOG_FORMAT", "json"),
            ("RAILYARD_DASHBOARD_DIR", "/srv/dist"),
        ])
        .unwrap();
        assert_eq!(config.http.listen.port(), 9000);
        assert_eq!(config.http.public_url, "http://localhost:9000");
        assert_eq!(config.http.router_listen.to_string(), "[::1]:9080");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/railyard"));
        assert_eq!(
            config.database.url.as_deref(),
            Some("postgres://u:p@db:5432/railyard")
        );
        assert_eq!(config.database.pool_size, 4);
        assert_eq!(config.redis.url.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.dashboard.dist_dir, PathBuf::from("/srv/dist"));
    }

    #[test]
    fn empty_values_mean_default() {
        let config = parse(&[("DATABASE_URL", ""), ("RAILYARD_LISTEN", " ")]).unwrap();
        assert!(config.database.url.is_none());
        assert_eq!(config.http.listen.port(), 7070);
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_passwords() {
        let err = parse(&[("RAILYARD_LISTEN", "localhost")]).unwrap_err();
        assert_eq!(err.var, "RAILYARD_LISTEN");
        assert!(err.to_string().contains("socket address"), "{err}");

        let err = parse(&[("RAILYARD_DB_POOL_SIZE", "0")]).unwrap_err();
        assert_eq!(err.var, "RAILYARD_DB_POOL_SIZE");
        assert!(err.to_string().contains("from 1 to 500"), "{err}");

        let err = parse(&[("DATABASE_URL", "mysql://root:hunter2@db/x")]).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let err = parse(&[("RAILYARD_LOG_FORMAT", "yaml")]).unwrap_err();
        assert_eq!(err.var, "RAILYARD_LOG_FORMAT");
    }

    #[test]
    fn auth_settings() {
        let config = parse(&[]).unwrap();
        assert!(matches!(config.auth.master_key, KeySource::Generated));
        assert!(!config.auth.open_signup, "invitation only by default");
        assert!(config.auth.setup_token.is_none());

        let config = parse(&[
            ("RAILYARD_MASTER_KEY", ""),
            ("RAILYARD_OPEN_SIGNUP", "true"),
            (
                "RAILYARD_CORS_ORIGINS",
                "https://a.example.com, http://localhost:3000/",
            ),
        ])
        .unwrap();
        assert!(
            matches!(&config.auth.master_key, KeySource::Inline(k) if k.is_empty()),
            "empty is kept, and refused later"
        );
        assert!(config.auth.open_signup);
        assert_eq!(
            config.auth.cors_origins,
            ["https://a.example.com", "http://localhost:3000"]
        );

        for (var, value) in [
            ("RAILYARD_SETUP_TOKEN", "short"),
            ("RAILYARD_OPEN_SIGNUP", "maybe"),
            ("RAILYARD_CORS_ORIGINS", "*"),
            ("RAILYARD_CORS_ORIGINS", "https://a.example.com/path"),
        ] {
            assert_eq!(parse(&[(var, value)]).unwrap_err().var, var, "{var}={value}");
        }
        let both = parse(&[("RAILYARD_MASTER_KEY", "x"), ("RAILYARD_MASTER_KEY_FILE", "/k")]).unwrap_err();
        assert_eq!(both.var, "RAILYARD_MASTER_KEY");
        assert!(
            !format!(
                "{:?}",
                parse(&[("RAILYARD_SETUP_TOKEN", "0123456789abcdef0123456789")])
                    .unwrap()
                    .auth
            )
            .contains("0123")
        );
    }

    #[test]
    fn redacts_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5/db"),
            "postgres://u:*****@h:5/db"
        );
        assert_eq!(redact_url("redis://:secret@h"), "redis://:*****@h");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("garbage"), "<not a URL>");
    }
}
