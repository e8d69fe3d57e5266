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
    assert_eq!(config.http.edge_listen.to_string(), "127.0.0.1:8080");
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
    assert_eq!(config.http.edge_listen.to_string(), "[::1]:9080");
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
fn edge_timeouts_and_cgroup_root() {
    let config = parse(&[]).unwrap();
    assert_eq!(config.http.edge_timeouts.request, Duration::from_secs(300));
    assert_eq!(config.http.edge_timeouts.idle, Duration::from_secs(75));
    assert!(config.runtime.cgroup_root.is_none());
    let config = parse(&[
        ("RAILYARD_ROUTER_REQUEST_TIMEOUT_SECS", "30"),
        ("RAILYARD_ROUTER_IDLE_TIMEOUT_SECS", "5"),
        ("RAILYARD_CGROUP_ROOT", "/sys/fs/cgroup/railyard.slice"),
    ])
    .unwrap();
    assert_eq!(config.http.edge_timeouts.request, Duration::from_secs(30));
    assert_eq!(config.http.edge_timeouts.idle, Duration::from_secs(5));
    assert_eq!(
        config.runtime.cgroup_root,
        Some(PathBuf::from("/sys/fs/cgroup/railyard.slice"))
    );
    let err = parse(&[("RAILYARD_ROUTER_IDLE_TIMEOUT_SECS", "0")]).unwrap_err();
    assert_eq!(err.var, "RAILYARD_ROUTER_IDLE_TIMEOUT_SECS");
}

#[test]
fn storage_limits() {
    let config = parse(&[]).unwrap();
    assert_eq!(config.pipeline.build_log_limit, 10 * 1024 * 1024);
    assert_eq!(config.pipeline.push_limit, 500 * 1024 * 1024);
    let config = parse(&[
        ("RAILYARD_BUILD_LOG_LIMIT_BYTES", "65536"),
        ("RAILYARD_PUSH_LIMIT_BYTES", "1048576"),
    ])
    .unwrap();
    assert_eq!(config.pipeline.build_log_limit, 65536);
    assert_eq!(config.pipeline.push_limit, 1_048_576);
    assert_eq!(
        parse(&[("RAILYARD_BUILD_LOG_LIMIT_BYTES", "10")])
            .unwrap_err()
            .var,
        "RAILYARD_BUILD_LOG_LIMIT_BYTES"
    );
}

#[test]
fn connection_limits() {
    let config = parse(&[]).unwrap();
    assert_eq!(config.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.http.max_connections_per_client, 256);
    assert_eq!(config.http.max_connections, None);
    assert_eq!(config.http.router_max_connections, None);
    let config = parse(&[
        ("RAILYARD_IDLE_TIMEOUT_SECS", "10"),
        ("RAILYARD_MAX_CONNECTIONS_PER_CLIENT", "0"),
        ("RAILYARD_MAX_CONNECTIONS", "5000"),
        ("RAILYARD_ROUTER_MAX_CONNECTIONS", "20000"),
    ])
    .unwrap();
    assert_eq!(config.http.idle_timeout, Duration::from_secs(10));
    assert_eq!(config.http.max_connections_per_client, 0);
    assert_eq!(config.http.max_connections, Some(5000));
    assert_eq!(config.http.router_max_connections, Some(20000));
    for (var, value) in [
        ("RAILYARD_MAX_CONNECTIONS", "0"),
        ("RAILYARD_ROUTER_MAX_CONNECTIONS", "lots"),
        ("RAILYARD_IDLE_TIMEOUT_SECS", "0"),
    ] {
        assert_eq!(parse(&[(var, value)]).unwrap_err().var, var);
    }
}

#[test]
fn edge_threads_default_to_half_the_cpus() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(parse(&[]).unwrap().http.edge_threads, (cpus / 2).max(1));
    let config = parse(&[("RAILYARD_ROUTER_THREADS", "3")]).unwrap();
    assert_eq!(config.http.edge_threads, 3);
    for bad in ["0", "many", "257"] {
        let err = parse(&[("RAILYARD_ROUTER_THREADS", bad)]).unwrap_err();
        assert_eq!(err.var, "RAILYARD_ROUTER_THREADS", "{bad}");
    }
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

#[test]
fn a_database_without_a_password_on_tcp_is_named() {
    for open in [
        "postgres://root@127.0.0.1:5432/railyard",
        "postgresql://localhost/db",
        "postgres://u:@h/db",
    ] {
        assert!(reachable_without_password(open).is_some(), "{open}");
    }
    for closed in [
        "postgres://u:secret@127.0.0.1/db",
        "postgres://u@h/db?password=secret",
        "postgres:///db?host=/run/postgresql",
        "postgres://u@%2Frun%2Fpostgresql/db",
    ] {
        assert!(reachable_without_password(closed).is_none(), "{closed}");
    }
}

#[test]
fn isolation_is_on_unless_turned_off() {
    let on = parse(&[]).unwrap().sandbox;
    assert!(on.isolate);
    assert_eq!(on.uid_base, 400_000);
    let off = parse(&[
        ("RAILYARD_ISOLATION", "off"),
        ("RAILYARD_SANDBOX_READ_PATHS", "/opt/go:/srv/tools"),
    ])
    .unwrap()
    .sandbox;
    assert!(!off.isolate);
    assert_eq!(
        off.readable,
        [std::path::PathBuf::from("/opt/go"), "/srv/tools".into()]
    );
    for (var, value) in [
        ("RAILYARD_ISOLATION", "maybe"),
        ("RAILYARD_SANDBOX_READ_PATHS", "relative/dir"),
        ("RAILYARD_SANDBOX_UID_BASE", "0"),
    ] {
        assert_eq!(parse(&[(var, value)]).unwrap_err().var, var, "{var}={value}");
    }
}
