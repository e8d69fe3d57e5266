//! Waiting for a new release to be healthy: a 2xx from its health check path, or, with
//! none set, an HTTP answer below 500 on `/`. Polled quickly at first (20 ms, growing
//! to 500 ms), so a fast app goes live at once; an exit ends the wait immediately.

use std::time::Duration;

use tokio::{sync::watch, time::Instant};

/// Waits until the app on `port` is healthy; `Err` says why not (shown on the deployment).
pub async fn wait_healthy(
    port: u16,
    path: Option<&str>,
    timeout: Duration,
    exited: &mut watch::Receiver<Option<i32>>,
) -> Result<Duration, String> {
    let began = Instant::now();
    let deadline = began + timeout;
    let client = client().map_err(|err| err.to_string())?;
    let mut delay = Duration::from_millis(20);
    let mut last = String::from("no answer yet");
    loop {
        if let Some(code) = *exited.borrow() {
            return Err(format!("the app exited with code {code} before it was healthy"));
        }
        let healthy = match probe(&client, port, path, true).await {
            Ok(()) => true,
            Err(why) => {
                last = why;
                false
            }
        };
        if healthy {
            return Ok(began.elapsed());
        }
        if Instant::now() >= deadline {
            let hint = if last.starts_with("nothing listens") {
                ": the app must listen on the PORT it is given"
            } else {
                ""
            };
            return Err(format!(
                "not healthy within {} s ({last}){hint}",
                timeout.as_secs()
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(delay.min(deadline - Instant::now())) => {}
            _ = exited.changed() => {}
        }
        delay = (delay * 3 / 2).min(Duration::from_millis(500));
    }
}

/// The client health checks use: short timeout, never a proxy.
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
}

/// The URL a health check asks: the app's own port on 127.0.0.1, whatever `path` says (it
/// is set as the path and query, never parsed as part of an address).
pub fn probe_url(port: u16, path: &str) -> reqwest::Url {
    let mut url = reqwest::Url::parse("http://127.0.0.1/").unwrap_or_else(|_| unreachable!("a fixed URL"));
    let _ = url.set_port(Some(port));
    let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    url.set_path(path);
    url.set_query(query);
    url
}

/// With `path`, a 2xx from it. Without one, when `ready` (the gate before a release goes
/// live) an HTTP answer on `/` below 500: a release that answers 500 to everything does not
/// go live; otherwise (the checks of a live app) a TCP connection accepted.
pub async fn probe(
    client: &reqwest::Client,
    port: u16,
    path: Option<&str>,
    ready: bool,
) -> Result<(), String> {
    match path {
        None if ready => match client.get(probe_url(port, "/")).send().await {
            Ok(res) if res.status().as_u16() < 500 => Ok(()),
            Ok(res) => Err(format!(
                "/ answered {} (with no health check path set, / must answer below 500)",
                res.status()
            )),
            Err(err) if err.is_connect() => Err(format!("nothing listens on PORT {port}")),
            Err(err) if err.is_timeout() => Err("/ did not answer within 5 s".to_owned()),
            Err(_) => Err("/ did not answer HTTP".to_owned()),
        },
        Some(path) => match client.get(probe_url(port, path)).send().await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => Err(format!("{path} answered {}", res.status())),
            Err(err) if err.is_connect() => Err(format!("nothing listens on PORT {port}")),
            Err(err) => Err(err.to_string()),
        },
        None => match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("nothing listens on PORT {port}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::probe_url;

    #[test]
    fn the_probe_asks_the_apps_own_port_whatever_the_path_says() {
        for (path, expected) in [
            ("/health", "http://127.0.0.1:4000/health"),
            ("/health?full=1", "http://127.0.0.1:4000/health?full=1"),
            ("@127.0.0.1:31999/x", "http://127.0.0.1:4000/@127.0.0.1:31999/x"),
            ("//evil.example/x", "http://127.0.0.1:4000//evil.example/x"),
        ] {
            let url = probe_url(4000, path);
            assert_eq!(url.host_str(), Some("127.0.0.1"), "{path}");
            assert_eq!(url.port(), Some(4000), "{path}");
            assert_eq!(url.as_str(), expected);
        }
    }
}
