//! The masker: every line Railyard stores or sends passes it, and the values of a service's
//! sealed variables — raw, base64 (standard and URL-safe, also as part of a longer base64
//! text), URL-encoded and hex — come out as `*****`.
//!
//! [`MaskStream`] masks a byte stream read in chunks (a pipe): a secret split across two
//! reads is still found, because the stream holds back only the shortest tail that could
//! still grow into a match; everything before it goes out at once.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD},
};

/// What a masked value becomes.
pub const MASK: &str = "*****";
/// Values shorter than this are not masked (masking `1` or `yes` would garble every line).
pub const MIN_SECRET: usize = 4;

/// Replaces known secrets in text. Cheap to clone (shared automaton).
#[derive(Clone, Default)]
pub struct Masker {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    automaton: AhoCorasick,
    patterns: Vec<Vec<u8>>,
    longest: usize,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("patterns", &self.inner.as_ref().map_or(0, |i| i.patterns.len()))
            .finish()
    }
}

impl Masker {
    /// A masker for `secrets` (and their encoded forms).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for secret in secrets {
            if secret.len() < MIN_SECRET {
                continue;
            }
            patterns.extend(forms(secret.as_bytes()));
        }
        patterns.retain(|p| p.len() >= MIN_SECRET);
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Self::default();
        }
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
        {
            Ok(automaton) => Self {
                inner: Some(Arc::new(Inner {
                    automaton,
                    patterns,
                    longest,
                })),
            },
            Err(err) => {
                // Only a pathological pattern set can fail to build; mask nothing rather than
                // lose the log, and say so.
                tracing::error!(error = %err, "the masker could not be built");
                Self::default()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// `text` with every secret replaced.
    pub fn mask(&self, text: &str) -> String {
        match &self.inner {
            None => text.to_owned(),
            Some(inner) => inner
                .automaton
                .replace_all(text, &vec![MASK; inner.patterns.len()]),
        }
    }

    /// Masks bytes; a secret is a whole UTF-8 string, so valid UTF-8 stays valid.
    pub fn mask_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        match &self.inner {
            None => bytes.to_vec(),
            Some(inner) => inner
                .automaton
                .replace_all_bytes(bytes, &vec![MASK.as_bytes(); inner.patterns.len()]),
        }
    }

    /// A stream masker for output that arrives in chunks.
    pub fn stream(&self) -> MaskStream {
        MaskStream {
            masker: self.clone(),
            pending: Vec::new(),
        }
    }
}

/// The encoded forms of a secret that are masked along with it.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![secret.to_vec()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(secret).into_bytes());
        // The same secret inside a longer base64 text (`Basic base64(user:secret)`): for each
        // alignment, the characters that depend on the secret's bytes alone.
        for shift in 1..3usize {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(secret);
            let encoded = engine.encode(&shifted).into_bytes();
            let first = (shift * 8).div_ceil(6);
            let last = (shifted.len() * 8) / 6;
            if last > first {
                out.push(encoded[first..last].to_vec());
            }
        }
        let plain = engine.encode(secret).into_bytes();
        let last = (secret.len() * 8) / 6;
        out.push(plain[..last.min(plain.len())].to_vec());
    }
    let text = String::from_utf8_lossy(secret);
    let strict = percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC).to_string();
    out.push(strict.replace("%20", "+").into_bytes());
    out.push(strict.into_bytes());
    out.push(
        percent_encoding::utf8_percent_encode(&text, COMPONENT)
            .to_string()
            .into_bytes(),
    );
    out.push(
        percent_encoding::utf8_percent_encode(&text, COMPONENT)
            .to_string()
            .replace("%20", "+")
            .into_bytes(),
    );
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    out.push(hex.to_uppercase().into_bytes());
    out.push(hex.into_bytes());
    out
}

/// What JavaScript's `encodeURIComponent` leaves alone: letters, digits and `-_.!~*'()`.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Masks a stream of chunks; see the module documentation.
#[derive(Debug)]
pub struct MaskStream {
    masker: Masker,
    pending: Vec<u8>,
}

impl MaskStream {
    /// Appends the masked output that is final after `chunk` to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(inner) = self.masker.inner.clone() else {
            out.extend_from_slice(chunk);
            return;
        };
        self.pending.extend_from_slice(chunk);
        let buf = std::mem::take(&mut self.pending);
        let mut pos = 0;
        let mut hold = held_from(&inner, &buf, 0);
        for found in inner.automaton.find_iter(&buf) {
            if found.start() >= hold {
                break;
            }
            out.extend_from_slice(&buf[pos..found.start()]);
            out.extend_from_slice(MASK.as_bytes());
            pos = found.end();
            if pos > hold {
                hold = held_from(&inner, &buf, pos);
            }
        }
        let hold = hold.max(pos);
        out.extend_from_slice(&buf[pos..hold]);
        self.pending = buf[hold..].to_vec();
    }

    /// Appends the rest (the stream ended).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let rest = std::mem::take(&mut self.pending);
        out.extend_from_slice(&self.masker.mask_bytes(&rest));
    }
}

/// The first position at or after `from` from which the rest of `buf` is a proper prefix of
/// a pattern (could still become a match), or `buf.len()`.
fn held_from(inner: &Inner, buf: &[u8], from: usize) -> usize {
    let start = from.max(buf.len().saturating_sub(inner.longest.saturating_sub(1)));
    (start..buf.len())
        .find(|&i| {
            let tail = &buf[i..];
            inner
                .patterns
                .iter()
                .any(|p| p.len() > tail.len() && p.starts_with(tail))
        })
        .unwrap_or(buf.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "canary-7f3a9c12 sk/live+x";

    #[test]
    fn masks_the_value_and_its_encodings() {
        let masker = Masker::new([SECRET]);
        let b64 = STANDARD.encode(SECRET);
        let url =
            percent_encoding::utf8_percent_encode(SECRET, percent_encoding::NON_ALPHANUMERIC).to_string();
        let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
        for line in [
            format!("token={SECRET}!"),
            format!("b64 {b64}"),
            format!("b64url {}", URL_SAFE_NO_PAD.encode(SECRET)),
            format!("url {url}"),
            format!("hex {hex} HEX {}", hex.to_uppercase()),
            format!("basic {}", STANDARD.encode(format!("user:{SECRET}"))),
            format!("form {}", url.replace("%20", "+")),
        ] {
            let masked = masker.mask(&line);
            assert!(masked.contains(MASK), "{line} → {masked}");
            assert!(!masked.contains(SECRET) && !masked.contains(&b64) && !masked.contains(&hex));
            assert!(!masked.contains("7f3a9c12"), "{masked}");
        }
        assert_eq!(masker.mask("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_and_no_secrets_leave_text_alone() {
        assert!(Masker::new(["abc"]).is_empty());
        assert_eq!(Masker::new(["abc"]).mask("abc"), "abc");
        assert_eq!(Masker::default().mask("x"), "x");
    }

    #[test]
    fn a_secret_split_across_chunks_is_masked() {
        let masker = Masker::new([SECRET, "other-secret-value"]);
        let text = format!("a {SECRET} b {SECRET}{SECRET} other-secret-value\nend partial canary-7f");
        let bytes = text.as_bytes();
        // Every way of cutting the text into two chunks, and byte by byte.
        for cut in 0..=bytes.len() {
            let mut stream = masker.stream();
            let mut out = Vec::new();
            stream.feed(&bytes[..cut], &mut out);
            stream.feed(&bytes[cut..], &mut out);
            stream.finish(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                masker.mask(&text),
                "cut at {cut}"
            );
        }
        let mut stream = masker.stream();
        let mut out = Vec::new();
        for b in bytes {
            stream.feed(std::slice::from_ref(b), &mut out);
        }
        stream.finish(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), masker.mask(&text));
    }

    #[test]
    fn the_stream_holds_back_only_a_possible_start() {
        let masker = Masker::new([SECRET]);
        let mut stream = masker.stream();
        let mut out = Vec::new();
        stream.feed(b"hello world\nnext line\n", &mut out);
        assert_eq!(
            out, b"hello world\nnext line\n",
            "nothing held without a partial match"
        );
        out.clear();
        stream.feed(b"key: canary-7f", &mut out);
        assert_eq!(out, b"key: ", "the possible start of a secret waits");
        out.clear();
        stream.feed(b"00 not it\n", &mut out);
        assert_eq!(out, b"canary-7f00 not it\n");
    }

    #[test]
    fn a_multi_line_secret_is_masked_as_a_whole() {
        let pem = "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASCAUEwggE9AgEAAkEA\n-----END KEY-----";
        let masker = Masker::new([pem]);
        let mut stream = masker.stream();
        let mut out = Vec::new();
        for line in format!("before\n{pem}\nafter\n").split_inclusive('\n') {
            stream.feed(line.as_bytes(), &mut out);
        }
        stream.finish(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "before\n*****\nafter\n");
    }
}
