//! How times and sizes read on the page.

/// Seconds since the epoch, from the browser's clock (chrono has no clock on wasm32).
pub fn now_s() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// "just now", "4 min ago", "2 h ago", "3 d ago".
pub fn ago(at: chrono::DateTime<chrono::Utc>, now: i64) -> String {
    let s = (now - at.timestamp()).max(0);
    match s {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

/// How long from `start` (seconds since the epoch) to `end` (now when `None`), as "12 s" or
/// "3 min 4 s".
pub fn took(start: i64, end: Option<i64>) -> String {
    let s = (end.unwrap_or_else(now_s) - start).max(0);
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// `54 MB`, `1.25 GB` (binary units, as the memory limit is set; storage too).
pub fn memory(bytes: i64) -> String {
    let mb = bytes as f64 / f64::from(1u32 << 20);
    if mb < 1024.0 {
        format!("{mb:.0} MB")
    } else {
        format!("{:.2} GB", mb / 1024.0)
    }
}

/// `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn uptime(seconds: i64) -> String {
    let (m, h, d) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {}m", m % 60),
        (d, h, _) => format!("{d}d {}h", h % 24),
    }
}
