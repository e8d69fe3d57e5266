//! What every stored log line is: storable text of bounded length, from a stream.

/// Longest stored line, in bytes; longer lines are cut with a marker.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Railyard's own lines (steps, state changes, errors).
    Event,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Event => "event",
        }
    }
}

/// Makes raw output storable: valid UTF-8, no NUL (PostgreSQL text cannot hold it), no
/// trailing CR, at most [`MAX_LINE`] bytes.
pub fn clean_line(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let mut text = String::from_utf8_lossy(raw).replace('\0', "\u{fffd}");
    if text.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" … [line cut at 16 KiB]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_made_storable() {
        assert_eq!(clean_line(b"hello\r\n"), "hello");
        assert_eq!(clean_line(b"a\0b"), "a\u{fffd}b");
        assert_eq!(clean_line(&[0xff, b'x']), "\u{fffd}x");
        let long = clean_line("é".repeat(MAX_LINE).as_bytes());
        assert!(long.len() < MAX_LINE + 64 && long.ends_with("[line cut at 16 KiB]"));
    }
}
