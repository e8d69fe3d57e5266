//! Session cookies and the CSRF double-submit token.
//!
//! Access (JWT, 15 min) and refresh (opaque, 7 days) cookies are HttpOnly and
//! SameSite=Lax. The access and CSRF cookies are on `Path=/`; the refresh cookie
//! (`railyard_session`) only on [`REFRESH_PATH`], so the long-lived secret goes out only to
//! the endpoints that exchange or end it. Over https they are `Secure` with a prefix: the
//! access cookie `__Host-` (so no subdomain can set it), the refresh cookie `__Secure-`
//! (`__Host-` demands `Path=/`); a refresh request carrying two refresh cookies (one
//! tossed in by a subdomain beside the real one) is refused. The refresh cookie of before
//! (`railyard_refresh` on `Path=/`) is expired whenever cookies are set. The CSRF token sits in the readable cookie `railyard_csrf`;
//! a cookie-authenticated write must echo it in `X-CSRF-Token`. The token is
//! `<nonce>.<HMAC-SHA256(key, session id, nonce)>`: a value tossed in by another site or
//! subdomain does not verify for the victim's session.

use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::hmac;
use time::Duration as CookieDuration;
use uuid::Uuid;

use super::{jwt::ACCESS_TTL, secret, session::REFRESH_TTL};

pub const CSRF_COOKIE: &str = "railyard_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Where the refresh cookie is sent: refresh, logout and login live under it.
pub const REFRESH_PATH: &str = "/api/v1/auth";

#[derive(Clone)]
pub struct CookiePolicy {
    secure: bool,
    csrf_key: hmac::Key,
}

impl std::fmt::Debug for CookiePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookiePolicy")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl CookiePolicy {
    pub fn new(secure: bool, csrf_key: &[u8; 32]) -> Self {
        Self {
            secure,
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, csrf_key),
        }
    }

    pub fn access_name(&self) -> &'static str {
        if self.secure {
            "__Host-railyard_access"
        } else {
            "railyard_access"
        }
    }

    pub fn refresh_name(&self) -> &'static str {
        if self.secure {
            "__Secure-railyard_session"
        } else {
            "railyard_session"
        }
    }

    /// How many refresh cookies `headers` carry (more than one: one was tossed in).
    pub fn refresh_cookies_in(&self, headers: &HeaderMap) -> usize {
        let name = self.refresh_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter(|pair| pair.trim().split_once('=').is_some_and(|(n, _)| n == name))
            .count()
    }

    /// The refresh cookie's name before it moved to [`REFRESH_PATH`].
    fn legacy_refresh_name(&self) -> &'static str {
        if self.secure {
            "__Host-railyard_refresh"
        } else {
            "railyard_refresh"
        }
    }

    fn build(
        &self,
        name: &'static str,
        value: String,
        max_age: CookieDuration,
        http_only: bool,
    ) -> Cookie<'static> {
        let path = if name == self.refresh_name() {
            REFRESH_PATH
        } else {
            "/"
        };
        Cookie::build((name, value))
            .path(path)
            .http_only(http_only)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(max_age)
            .build()
    }

    /// Sets the access, refresh and CSRF cookies of a new or refreshed session.
    pub fn signed_in(&self, jar: CookieJar, access: String, refresh: String, session: Uuid) -> CookieJar {
        let access_age = CookieDuration::seconds(ACCESS_TTL.as_secs() as i64);
        let refresh_age = CookieDuration::seconds(REFRESH_TTL.as_secs() as i64);
        jar.add(self.build(self.access_name(), access, access_age, true))
            .add(self.build(self.refresh_name(), refresh, refresh_age, true))
            .add(self.build(CSRF_COOKIE, self.csrf_token(Some(session)), refresh_age, false))
            .add(self.build(
                self.legacy_refresh_name(),
                String::new(),
                CookieDuration::ZERO,
                true,
            ))
    }

    /// Expires every session cookie.
    pub fn signed_out(&self, jar: CookieJar) -> CookieJar {
        [
            self.access_name(),
            self.refresh_name(),
            CSRF_COOKIE,
            self.legacy_refresh_name(),
        ]
        .into_iter()
        .fold(jar, |jar, name| {
            jar.add(self.build(name, String::new(), CookieDuration::ZERO, name != CSRF_COOKIE))
        })
    }

    /// A CSRF cookie for a visitor without a session.
    pub fn anonymous_csrf(&self, jar: CookieJar) -> (CookieJar, String) {
        self.set_csrf(jar, None)
    }

    /// A fresh CSRF cookie bound to `session`.
    pub fn session_csrf(&self, jar: CookieJar, session: Uuid) -> (CookieJar, String) {
        self.set_csrf(jar, Some(session))
    }

    fn set_csrf(&self, jar: CookieJar, session: Option<Uuid>) -> (CookieJar, String) {
        let token = self.csrf_token(session);
        let age = CookieDuration::seconds(REFRESH_TTL.as_secs() as i64);
        (jar.add(self.build(CSRF_COOKIE, token.clone(), age, false)), token)
    }

    fn message(session: Option<Uuid>, nonce: &str) -> Vec<u8> {
        let session = session.map(|s| s.to_string()).unwrap_or_default();
        format!("railyard-csrf:{session}:{nonce}").into_bytes()
    }

    pub fn csrf_token(&self, session: Option<Uuid>) -> String {
        let nonce = URL_SAFE_NO_PAD.encode(secret::random_bytes::<18>().unwrap_or_default());
        let mac =
            URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf_key, &Self::message(session, &nonce)).as_ref());
        format!("{nonce}.{mac}")
    }

    /// The header equals the cookie, and the token was issued by us for `session`.
    pub fn csrf_ok(&self, headers: &HeaderMap, jar: &CookieJar, session: Option<Uuid>) -> bool {
        let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(cookie) = jar.get(CSRF_COOKIE) else {
            return false;
        };
        if !secret::constant_time_eq(sent.as_bytes(), cookie.value().as_bytes()) {
            return false;
        }
        let Some((nonce, mac)) = sent.split_once('.') else {
            return false;
        };
        let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else {
            return false;
        };
        hmac::verify(&self.csrf_key, &Self::message(session, nonce), &mac).is_ok()
    }
}

/// `Cache-Control: no-store` for responses that carry credentials.
pub fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}
