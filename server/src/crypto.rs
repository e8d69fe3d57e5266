//! Encryption at rest: AES-256-GCM (ring) under a versioned key ring.
//!
//! A sealed value is `[key version: u32 BE][nonce: 12 bytes][ciphertext + tag]`. Every
//! encryption draws a fresh random 96-bit nonce; the caller's additional authenticated data
//! binds a ciphertext to the row it belongs to, so a ciphertext copied elsewhere fails to open.
//! A wrong key, a flipped bit or the wrong AAD is an error, never garbage.
//!
//! Keys come from `RAILYARD_MASTER_KEY` (base64 of 32 bytes), or `RAILYARD_MASTER_KEY_FILE`
//! (lines `<version>:<base64>`), or, on the embedded default, a key generated on first
//! start into `<data dir>/master.key` (mode 0600) with a warning to back it up.

use std::{
    collections::BTreeMap,
    fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU32, Ordering},
    },
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom as _, SystemRandom},
};

const HEADER_LEN: usize = 4 + NONCE_LEN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("ciphertext is too short or malformed")]
    Malformed,
    #[error("ciphertext was sealed with key version {0}, which is not in the key ring")]
    UnknownKey(u32),
    #[error("decryption failed: wrong key, tampered data, or data moved from another record")]
    Open,
    #[error("the system random generator failed")]
    Random,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `RAILYARD_MASTER_KEY`: one key, version 1.
    Inline(String),
    /// `RAILYARD_MASTER_KEY_FILE`.
    File(PathBuf),
    /// Neither set: `<data dir>/master.key`, generated when missing.
    Generated,
}

pub struct KeyRing {
    keys: RwLock<BTreeMap<u32, Arc<LessSafeKey>>>,
    current: AtomicU32,
    /// The oldest key's bytes, only for deriving purpose-bound subkeys (HKDF): they stay the
    /// same when a key is added.
    derive_raw: [u8; 32],
    rng: SystemRandom,
    /// The key file, re-read when a ciphertext names a newer key (another process rotated).
    file: Option<PathBuf>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("versions", &self.versions())
            .field("current", &self.current_version())
            .finish()
    }
}

impl KeyRing {
    /// Loads the key ring; refuses empty, short, placeholder or low-entropy keys.
    pub fn load(source: &KeySource, data_dir: &Path) -> Result<Self, KeyError> {
        match source {
            KeySource::Inline(value) => Self::from_entries(&[(1, parse_key(value, "RAILYARD_MASTER_KEY")?)]),
            KeySource::File(path) => Self::from_file(path),
            KeySource::Generated => {
                let path = data_dir.join("master.key");
                if !path.exists() {
                    generate_key_file(&path)?;
                    tracing::warn!(
                        path = %path.display(),
                        "generated a new master key: back it up; without it, stored secrets cannot be decrypted"
                    );
                }
                Self::from_file(&path)
            }
        }
    }

    /// The key file of `source`, if the ring comes from one (only then can keys be added).
    pub fn file_of(source: &KeySource, data_dir: &Path) -> Option<PathBuf> {
        match source {
            KeySource::Inline(_) => None,
            KeySource::File(path) => Some(path.clone()),
            KeySource::Generated => Some(data_dir.join("master.key")),
        }
    }

    fn from_file(path: &Path) -> Result<Self, KeyError> {
        let ring = Self::from_entries(&read_key_file(path)?)?;
        Ok(Self {
            file: Some(path.to_owned()),
            ..ring
        })
    }

    /// Builds a ring from `(version, key)` pairs; the highest version encrypts.
    pub fn from_entries(entries: &[(u32, [u8; 32])]) -> Result<Self, KeyError> {
        let keys = build_keys(entries)?;
        let derive_raw = entries
            .iter()
            .min_by_key(|(v, _)| *v)
            .map(|(_, k)| *k)
            .unwrap_or_default();
        let current = *keys
            .keys()
            .next_back()
            .ok_or_else(|| KeyError::Invalid("the key ring is empty".to_owned()))?;
        Ok(Self {
            keys: RwLock::new(keys),
            current: AtomicU32::new(current),
            derive_raw,
            rng: SystemRandom::new(),
            file: None,
        })
    }

    /// Re-reads the key file (keys added by `railyard-server keys rotate`); true when the
    /// ring changed.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let fresh = build_keys(&read_key_file(path)?)?;
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut changed = false;
        for (version, key) in fresh {
            if let std::collections::btree_map::Entry::Vacant(slot) = keys.entry(version) {
                slot.insert(key);
                changed = true;
            }
        }
        if let Some(newest) = keys.keys().next_back() {
            self.current.store(*newest, Ordering::Release);
        }
        Ok(changed)
    }

    pub fn versions(&self) -> Vec<u32> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    fn key(&self, version: u32) -> Option<Arc<LessSafeKey>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&version)
            .cloned()
    }

    /// A 32-byte key for one purpose (e.g. `"csrf"`), derived from the current master key
    /// with HKDF-SHA256, so one master key serves every purpose without reuse.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        struct Len32;
        impl ring::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let mut out = [0u8; 32];
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"railyard").extract(&self.derive_raw);
        let info = [purpose.as_bytes()];
        if let Ok(okm) = prk.expand(&info, Len32) {
            let _ = okm.fill(&mut out);
        }
        out
    }

    pub fn current_version(&self) -> u32 {
        self.current.load(Ordering::Acquire)
    }

    /// The key version a ciphertext was sealed with.
    pub fn version_of(sealed: &[u8]) -> Option<u32> {
        Some(u32::from_be_bytes(sealed.get(..4)?.try_into().ok()?))
    }

    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let version = self.current_version();
        let key = self.key(version).ok_or(CryptoError::UnknownKey(version))?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| CryptoError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < HEADER_LEN + AES_256_GCM.tag_len() {
            return Err(CryptoError::Malformed);
        }
        let version = u32::from_be_bytes(sealed[..4].try_into().map_err(|_| CryptoError::Malformed)?);
        let key = match self.key(version) {
            Some(key) => key,
            // Sealed by a process that knows a newer key: read the key file again.
            None if version > self.current_version() && self.reload().is_ok() => {
                self.key(version).ok_or(CryptoError::UnknownKey(version))?
            }
            None => return Err(CryptoError::UnknownKey(version)),
        };
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[4..HEADER_LEN]).map_err(|_| CryptoError::Malformed)?;
        let mut body = sealed[HEADER_LEN..].to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }

    /// Fills `buf` with random bytes from the system generator.
    pub fn random(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        self.rng.fill(buf).map_err(|_| CryptoError::Random)
    }
}

fn build_keys(entries: &[(u32, [u8; 32])]) -> Result<BTreeMap<u32, Arc<LessSafeKey>>, KeyError> {
    let mut keys = BTreeMap::new();
    for (version, bytes) in entries {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KeyError::Invalid("invalid AES-256 key".to_owned()))?;
        if keys.insert(*version, Arc::new(LessSafeKey::new(key))).is_some() {
            return Err(KeyError::Invalid(format!("key version {version} appears twice")));
        }
    }
    Ok(keys)
}

fn read_key_file(path: &Path) -> Result<Vec<(u32, [u8; 32])>, KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut entries = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let what = format!("{} line {}", path.display(), n + 1);
        let (version, key) = line
            .split_once(':')
            .ok_or_else(|| KeyError::Invalid(format!("{what}: expected `<version>:<base64 key>`")))?;
        let version: u32 = version
            .trim()
            .parse()
            .map_err(|_| KeyError::Invalid(format!("{what}: the version must be a whole number")))?;
        entries.push((version, parse_key(key, &what)?));
    }
    Ok(entries)
}

/// Adds a new random key to the key file (version = highest + 1), replacing the file
/// atomically (mode 0600); returns the new version.
pub fn add_key(path: &Path) -> Result<u32, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let entries = read_key_file(path)?;
    let version = entries.iter().map(|(v, _)| *v).max().unwrap_or(0) + 1;
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyError::Invalid("the system random generator failed".into()))?;
    let mut text = fs::read_to_string(path).map_err(io)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{version}:{}\n", B64.encode(key)));
    let tmp = path.with_extension("key.new");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    Ok(version)
}

/// Known placeholders that must never be accepted as a key.
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "secret",
    "default",
    "example",
    "railyard",
    "test",
];

fn parse_key(value: &str, what: &str) -> Result<[u8; 32], KeyError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(KeyError::Invalid(format!(
            "{what} is empty; generate one with `openssl rand -base64 32`"
        )));
    }
    if PLACEHOLDERS.iter().any(|p| value.eq_ignore_ascii_case(p)) {
        return Err(KeyError::Invalid(format!(
            "{what} is a placeholder; generate one with `openssl rand -base64 32`"
        )));
    }
    let bytes = B64.decode(value).map_err(|_| {
        KeyError::Invalid(format!(
            "{what} is not base64; generate one with `openssl rand -base64 32`"
        ))
    })?;
    let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        KeyError::Invalid(format!(
            "{what} decodes to {} bytes; it must be exactly 32",
            b.len()
        ))
    })?;
    let distinct = key.iter().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < 8 {
        return Err(KeyError::Invalid(format!(
            "{what} is not random (only {distinct} distinct bytes)"
        )));
    }
    Ok(key)
}

fn generate_key_file(path: &Path) -> Result<(), KeyError> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyError::Invalid("the system random generator failed".into()))?;
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    writeln!(
        file,
        "# Railyard master key ring: <version>:<base64 AES-256 key>. Back this file up."
    )
    .map_err(io)?;
    writeln!(file, "1:{}", B64.encode(key)).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn ring(entries: &[(u32, u8)]) -> KeyRing {
        let entries: Vec<(u32, [u8; 32])> = entries
            .iter()
            .map(|(v, seed)| {
                let mut key = [0u8; 32];
                for (i, b) in key.iter_mut().enumerate() {
                    *b = seed.wrapping_mul(31).wrapping_add(i as u8);
                }
                (*v, key)
            })
            .collect();
        KeyRing::from_entries(&entries).unwrap()
    }

    #[test]
    fn round_trips_and_binds_the_aad() {
        let ring = ring(&[(1, 7)]);
        let sealed = ring.encrypt(b"gho_secret", b"user:1:github_token").unwrap();
        assert!(
            !sealed.windows(10).any(|w| w == b"gho_secret"),
            "no plain text in the ciphertext"
        );
        assert_eq!(
            ring.decrypt(&sealed, b"user:1:github_token").unwrap(),
            b"gho_secret"
        );
        assert_eq!(
            ring.decrypt(&sealed, b"user:2:github_token"),
            Err(CryptoError::Open),
            "moved to another row"
        );
    }

    #[test]
    fn a_flipped_bit_or_wrong_key_is_an_error() {
        let ring_a = ring(&[(1, 7)]);
        let sealed = ring_a.encrypt(b"value", b"aad").unwrap();
        for i in 4..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                ring_a.decrypt(&tampered, b"aad"),
                Err(CryptoError::Open),
                "byte {i}"
            );
        }
        assert_eq!(ring(&[(1, 8)]).decrypt(&sealed, b"aad"), Err(CryptoError::Open));
        assert_eq!(
            ring(&[(2, 7)]).decrypt(&sealed, b"aad"),
            Err(CryptoError::UnknownKey(1))
        );
        assert_eq!(ring_a.decrypt(&sealed[..10], b"aad"), Err(CryptoError::Malformed));
    }

    #[test]
    fn the_newest_version_encrypts_and_old_ones_still_decrypt() {
        let old = ring(&[(1, 7)]);
        let sealed_old = old.encrypt(b"v1", b"").unwrap();
        let rotated = ring(&[(1, 7), (2, 9)]);
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(rotated.decrypt(&sealed_old, b"").unwrap(), b"v1");
        let sealed_new = rotated.encrypt(b"v2", b"").unwrap();
        assert_eq!(&sealed_new[..4], &2u32.to_be_bytes());
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master_key() {
        let a = ring(&[(1, 7)]);
        assert_eq!(a.derive("csrf"), a.derive("csrf"));
        assert_ne!(a.derive("csrf"), a.derive("other"));
        assert_ne!(a.derive("csrf"), ring(&[(1, 8)]).derive("csrf"));
        assert_ne!(a.derive("csrf"), [0u8; 32]);
    }

    #[test]
    fn a_million_encryptions_repeat_no_nonce() {
        let ring = ring(&[(1, 7)]);
        let mut seen = std::collections::HashSet::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            let sealed = ring.encrypt(b"x", b"").unwrap();
            assert!(seen.insert(sealed[4..HEADER_LEN].to_vec()), "nonce repeated");
        }
    }

    #[test]
    fn refuses_weak_or_malformed_keys() {
        for bad in [
            "",
            "   ",
            "changeme",
            "not base64!!",
            "AAAA",
            &B64.encode([0u8; 32]),
            &B64.encode([1u8; 32]),
        ] {
            let err =
                KeyRing::load(&KeySource::Inline(bad.to_owned()), Path::new("/nonexistent")).unwrap_err();
            assert!(matches!(err, KeyError::Invalid(_)), "{bad:?} accepted");
        }
        let good: Vec<u8> = (0u8..32).collect();
        KeyRing::load(&KeySource::Inline(B64.encode(&good)), Path::new("/nonexistent")).unwrap();
    }

    #[test]
    fn generates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyRing::load(&KeySource::Generated, dir.path()).unwrap();
        let path = dir.path().join("master.key");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = first.encrypt(b"kept", b"").unwrap();
        let second = KeyRing::load(&KeySource::Generated, dir.path()).unwrap();
        assert_eq!(
            second.decrypt(&sealed, b"").unwrap(),
            b"kept",
            "the same key on the next start"
        );
    }

    #[test]
    fn a_key_added_to_the_file_is_picked_up_by_a_running_ring() {
        let dir = tempfile::tempdir().unwrap();
        let running = KeyRing::load(&KeySource::Generated, dir.path()).unwrap();
        let before = running.encrypt(b"old", b"a").unwrap();
        let path = KeyRing::file_of(&KeySource::Generated, dir.path()).unwrap();
        assert_eq!(add_key(&path).unwrap(), 2);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Another process (the rotation) loads the new ring and seals with key 2 ...
        let rotated = KeyRing::load(&KeySource::Generated, dir.path()).unwrap();
        assert_eq!(rotated.current_version(), 2);
        let after = rotated.encrypt(b"new", b"a").unwrap();
        assert_eq!(KeyRing::version_of(&after), Some(2));
        // ... and the running one still opens both, then encrypts with key 2 too.
        assert_eq!(running.decrypt(&after, b"a").unwrap(), b"new");
        assert_eq!(running.decrypt(&before, b"a").unwrap(), b"old");
        assert_eq!(running.current_version(), 2);
        assert_eq!(
            running.derive("csrf"),
            rotated.derive("csrf"),
            "derived keys stay"
        );
    }
}
