//! Access tokens: short-lived JWTs signed with Ed25519 (`EdDSA`), keys identified by `kid`.
//!
//! Keys live in `signing_keys`, the private half sealed by the key ring. A key signs for
//! [`ROTATE_AFTER`]; then a new one takes over and the old one still verifies for
//! [`VERIFY_RETIRED_FOR`] (longer than a token lives). Public keys are published at
//! `/.well-known/jwks.json`.
//!
//! Verification: the header's `alg` must be `EdDSA` (an allowlist of one), its `kid` must
//! name a known key, the signature is checked first, then `exp`, `nbf`, `iss`, `aud` and
//! our `typ` claim (`access`), so a refresh token or anything else is refused.

use std::{
    sync::{
        RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods as _, ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{crypto::KeyRing, schema::signing_keys};

pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
pub const ROTATE_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
pub const VERIFY_RETIRED_FOR: Duration = Duration::from_secs(24 * 3600);
pub const AUDIENCE: &str = "railyard";
pub const TYP_ACCESS: &str = "access";
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    /// The session (refresh-token family) this token belongs to.
    pub sid: Uuid,
    pub typ: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token's algorithm is not allowed")]
    Algorithm,
    #[error("the access token's signing key is unknown")]
    UnknownKey,
    #[error("the access token is invalid: {0}")]
    Invalid(String),
    #[error("this is not an access token")]
    WrongType,
}

struct Key {
    kid: String,
    public: Vec<u8>,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

/// The signing keys in memory; shared by every request.
pub struct Signer {
    issuer: String,
    keys: RwLock<Vec<Key>>,
    /// Unix seconds of the last reload triggered by an unknown `kid` (at most one per 10 s,
    /// so forged kids cannot make every request hit the database).
    last_reload: AtomicI64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub kid: String,
    pub x: String,
}

impl Signer {
    pub fn new(issuer: String) -> Self {
        Self {
            issuer,
            keys: RwLock::new(Vec::new()),
            last_reload: AtomicI64::new(0),
        }
    }

    /// Makes sure a fresh signing key exists (creating one, and retiring the old, when the
    /// newest is older than [`ROTATE_AFTER`]), then loads every key that still verifies.
    pub async fn rotate_and_load(&self, conn: &mut AsyncPgConnection, ring: &KeyRing) -> anyhow::Result<()> {
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            // Replicas starting together create one key, not one each.
            diesel::sql_query("SELECT pg_advisory_xact_lock(727275)")
                .execute(conn)
                .await?;
            let newest: Option<DateTime<Utc>> = signing_keys::table
                .filter(signing_keys::retired_at.is_null())
                .select(diesel::dsl::max(signing_keys::created_at))
                .first(conn)
                .await?;
            let due = newest.is_none_or(|created| {
                Utc::now()
                    .signed_duration_since(created)
                    .to_std()
                    .unwrap_or_default()
                    > ROTATE_AFTER
            });
            if due {
                let kid = Uuid::new_v4().simple().to_string();
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .map_err(|_| anyhow::anyhow!("cannot generate an Ed25519 key"))?;
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                    .map_err(|_| anyhow::anyhow!("generated key does not parse"))?;
                let sealed = ring.encrypt(pkcs8.as_ref(), &key_aad(&kid))?;
                diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
                    .set(signing_keys::retired_at.eq(Utc::now()))
                    .execute(conn)
                    .await?;
                diesel::insert_into(signing_keys::table)
                    .values((
                        signing_keys::kid.eq(&kid),
                        signing_keys::private_key.eq(sealed),
                        signing_keys::public_key.eq(pair.public_key().as_ref().to_vec()),
                    ))
                    .execute(conn)
                    .await?;
                tracing::info!(kid, "created a new token signing key");
            }
            Ok(())
        })
        .await?;
        self.load(conn, ring).await
    }

    /// Loads the keys that still verify from the database.
    pub async fn load(&self, conn: &mut AsyncPgConnection, ring: &KeyRing) -> anyhow::Result<()> {
        let cutoff = Utc::now() - VERIFY_RETIRED_FOR;
        let rows: Vec<KeyRow> = signing_keys::table
            .filter(
                signing_keys::retired_at
                    .is_null()
                    .or(signing_keys::retired_at.gt(cutoff)),
            )
            .order(signing_keys::created_at.desc())
            .select((
                signing_keys::kid,
                signing_keys::private_key,
                signing_keys::public_key,
                signing_keys::created_at,
                signing_keys::retired_at,
            ))
            .load(conn)
            .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for (kid, sealed, public, created_at, retired_at) in rows {
            let encoding = if retired_at.is_none() {
                let pkcs8 = ring.decrypt(&sealed, &key_aad(&kid)).with_context(|| {
                    format!("cannot decrypt signing key {kid}: is this the right master key?")
                })?;
                Some(EncodingKey::from_ed_der(&pkcs8))
            } else {
                None
            };
            let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&public))
                .with_context(|| format!("signing key {kid} has a malformed public key"))?;
            keys.push(Key {
                kid,
                public,
                encoding,
                decoding,
                created_at,
                retired_at,
            });
        }
        anyhow::ensure!(
            keys.iter().any(|k| k.encoding.is_some()),
            "no active token signing key"
        );
        *self
            .keys
            .write()
            .map_err(|_| anyhow::anyhow!("signing keys lock poisoned"))? = keys;
        Ok(())
    }

    /// Whether an unknown `kid` may trigger a reload now (and records that it does).
    pub fn reload_due(&self) -> bool {
        let now = Utc::now().timestamp();
        let last = AtomicI64::load(&self.last_reload, Ordering::Relaxed);
        now - last >= 10
            && self
                .last_reload
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Signs an access token for `user` in `session`.
    pub fn issue(&self, user: Uuid, session: Uuid) -> anyhow::Result<String> {
        let keys = self
            .keys
            .read()
            .map_err(|_| anyhow::anyhow!("signing keys lock poisoned"))?;
        let key = keys
            .iter()
            .filter(|k| k.encoding.is_some())
            .max_by_key(|k| k.created_at)
            .context("no active signing key")?;
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            sub: user,
            sid: session,
            typ: TYP_ACCESS.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TTL.as_secs() as i64,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let encoding = key.encoding.as_ref().context("no active signing key")?;
        Ok(jsonwebtoken::encode(&header, &claims, encoding)?)
    }

    /// Verifies an access token; see the module docs for the order of checks.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let keys = self.keys.read().map_err(|_| TokenError::UnknownKey)?;
        let key = keys.iter().find(|k| k.kid == kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        if data.claims.typ != TYP_ACCESS {
            return Err(TokenError::WrongType);
        }
        Ok(data.claims)
    }

    /// The public keys that verify, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Vec<Jwk> {
        let Ok(keys) = self.keys.read() else {
            return Vec::new();
        };
        keys.iter()
            .map(|k| Jwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: "EdDSA",
                use_: "sig",
                kid: k.kid.clone(),
                x: URL_SAFE_NO_PAD.encode(&k.public),
            })
            .collect()
    }

    /// Signs arbitrary claims with the active key (tests forge expired, early or mis-addressed
    /// tokens with it to prove they are refused).
    #[cfg(feature = "test-support")]
    pub fn sign_raw(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let keys = self
            .keys
            .read()
            .map_err(|_| anyhow::anyhow!("signing keys lock poisoned"))?;
        let key = keys
            .iter()
            .find(|k| k.encoding.is_some())
            .context("no active signing key")?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(
            &header,
            claims,
            key.encoding.as_ref().context("no key")?,
        )?)
    }

    /// Whether any loaded key is retired (for tests and diagnostics).
    pub fn retired_count(&self) -> usize {
        self.keys
            .read()
            .map(|k| k.iter().filter(|k| k.retired_at.is_some()).count())
            .unwrap_or(0)
    }
}

/// `(kid, sealed private key, public key, created_at, retired_at)`.
type KeyRow = (String, Vec<u8>, Vec<u8>, DateTime<Utc>, Option<DateTime<Utc>>);

pub(crate) fn key_aad(kid: &str) -> Vec<u8> {
    format!("railyard:signing_key:{kid}").into_bytes()
}
