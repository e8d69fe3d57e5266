//! Password policy and argon2id hashing (OWASP parameters: m = 19 MiB, t = 2, p = 1).

use std::{collections::HashSet, sync::LazyLock};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::SaltString,
};

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

/// A hash of a random password, verified against when an account does not exist so a
/// failed sign-in takes as long either way.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_with_salt("railyard-dummy-password-for-timing", &[7u8; 16]).unwrap_or_default());

/// Why a password was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("this password is one of the most commonly used; choose another")]
    Common,
    #[error("the password must not be your email address")]
    IsEmail,
    #[error("the password must not be only spaces")]
    Blank,
}

/// Checks the policy. Length counts characters, not bytes; nothing is truncated.
pub fn check_policy(password: &str, email: &str) -> Result<(), PolicyError> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PolicyError::TooLong);
    }
    if password.trim().is_empty() {
        return Err(PolicyError::Blank);
    }
    let lower = password.to_lowercase();
    if COMMON.contains(lower.as_str()) {
        return Err(PolicyError::Common);
    }
    if lower == email.to_lowercase() {
        return Err(PolicyError::IsEmail);
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(salt)?;
    Ok(argon2().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Hashes with a fresh 16-byte salt (`salt` from the caller's CSPRNG). CPU-heavy: call
/// from `spawn_blocking`.
pub fn hash(password: &str, salt: &[u8; 16]) -> anyhow::Result<String> {
    hash_with_salt(password, salt).map_err(|err| anyhow::anyhow!("argon2 hashing failed: {err}"))
}

/// Verifies `password` against a stored PHC string, or against a dummy hash when there is
/// none (so unknown accounts cost the same time). CPU-heavy: call from `spawn_blocking`.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let (stored, real) = match stored {
        Some(stored) => (stored, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    argon2().verify_password(password.as_bytes(), &parsed).is_ok() && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check_policy("short", "a@b.c"), Err(PolicyError::TooShort));
        assert_eq!(check_policy("password", "a@b.c"), Err(PolicyError::Common));
        assert_eq!(
            check_policy("PassWord1", "a@b.c"),
            Err(PolicyError::Common),
            "case-insensitive"
        );
        assert_eq!(check_policy("iloveyou2", "a@b.c"), Err(PolicyError::Common));
        assert_eq!(
            check_policy("me@example.com", "Me@Example.com"),
            Err(PolicyError::IsEmail)
        );
        assert_eq!(check_policy(&"x".repeat(129), "a@b.c"), Err(PolicyError::TooLong));
        // 128 characters of 4 bytes each: allowed, counted in characters.
        assert_eq!(check_policy(&"🚂".repeat(128), "a@b.c"), Ok(()));
        assert_eq!(check_policy("correct horse battery", "a@b.c"), Ok(()));
        assert_eq!(check_policy("          ", "a@b.c"), Err(PolicyError::Blank));
        assert_eq!(
            check_policy("\u{3000}\t\u{3000}\t\u{3000}\t\u{3000}\t", "a@b.c"),
            Err(PolicyError::Blank)
        );
        assert!(COMMON.len() > 30_000, "the list is loaded");
    }

    #[test]
    fn hashes_are_argon2id_and_never_truncate() {
        let long = format!("{}A", "z".repeat(127));
        let hash = hash(&long, &[1u8; 16]).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify(&long, Some(&hash)));
        assert!(
            !verify(&format!("{}B", "z".repeat(127)), Some(&hash)),
            "the last character counts"
        );
        assert!(!verify(&long, None), "no account never verifies");
        assert!(!verify(&long, Some("not a phc string")));
    }
}
