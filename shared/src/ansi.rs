//! Terminal colour codes in log lines, made safe to show: a line becomes spans of plain
//! text, each with styles from a fixed allowlist (bold, dim, italic, underline and the
//! 16 + 256 + 24-bit colours). Only SGR sequences (`ESC [ … m`) style anything; every other
//! escape (cursor moves, window titles, OSC 8 hyperlinks) is dropped and its payload never
//! shown or followed. The text itself stays text: the view escapes it.

/// A colour: one of the 16 named ones (a CSS class) or an RGB triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Named(u8),
    Rgb(u8, u8, u8),
}

/// The styles in effect for a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub fg: Option<Colour>,
    pub bg: Option<Colour>,
}

impl Style {
    /// CSS classes from the allowlist (`ansi-bold`, `ansi-fg-1`, …).
    pub fn classes(&self) -> String {
        let mut classes = Vec::new();
        for (on, class) in [
            (self.bold, "ansi-bold"),
            (self.dim, "ansi-dim"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ] {
            if on {
                classes.push(class.to_owned());
            }
        }
        if let Some(Colour::Named(n)) = self.fg {
            classes.push(format!("ansi-fg-{n}"));
        }
        if let Some(Colour::Named(n)) = self.bg {
            classes.push(format!("ansi-bg-{n}"));
        }
        classes.join(" ")
    }

    /// Inline CSS for RGB colours: built from numbers only, so nothing from the line can
    /// reach it.
    pub fn css(&self) -> String {
        let mut css = String::new();
        if let Some(Colour::Rgb(r, g, b)) = self.fg {
            css.push_str(&format!("color:rgb({r},{g},{b});"));
        }
        if let Some(Colour::Rgb(r, g, b)) = self.bg {
            css.push_str(&format!("background-color:rgb({r},{g},{b});"));
        }
        css
    }

    fn apply(&mut self, params: &[u16]) {
        let mut i = 0;
        while i < params.len() {
            let p = params[i];
            match p {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some(Colour::Named((p - 30) as u8)),
                90..=97 => self.fg = Some(Colour::Named((p - 90 + 8) as u8)),
                39 => self.fg = None,
                40..=47 => self.bg = Some(Colour::Named((p - 40) as u8)),
                100..=107 => self.bg = Some(Colour::Named((p - 100 + 8) as u8)),
                49 => self.bg = None,
                38 | 48 => {
                    let (colour, used) = extended(&params[i + 1..]);
                    if let Some(colour) = colour {
                        if p == 38 {
                            self.fg = Some(colour);
                        } else {
                            self.bg = Some(colour);
                        }
                    }
                    i += used;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// `5;n` (256 colours) or `2;r;g;b`, and how many parameters it used.
fn extended(params: &[u16]) -> (Option<Colour>, usize) {
    let byte = |i: usize| params.get(i).map(|v| (*v).min(255) as u8);
    match params.first() {
        Some(5) => match byte(1) {
            Some(n) => (Some(colour_256(n)), 2),
            None => (None, params.len()),
        },
        Some(2) => match (byte(1), byte(2), byte(3)) {
            (Some(r), Some(g), Some(b)) => (Some(Colour::Rgb(r, g, b)), 4),
            _ => (None, params.len()),
        },
        _ => (None, params.len()),
    }
}

/// xterm's 256-colour palette.
fn colour_256(n: u8) -> Colour {
    match n {
        0..=15 => Colour::Named(n),
        16..=231 => {
            let n = n - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            Colour::Rgb(level(n / 36), level((n / 6) % 6), level(n % 6))
        }
        _ => {
            let grey = 8 + (n - 232) * 10;
            Colour::Rgb(grey, grey, grey)
        }
    }
}

/// A run of text with one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub style: Style,
}

/// Splits `line` into styled spans; escape sequences are consumed, never shown.
pub fn spans(line: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut style = Style::default();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    let flush = |text: &mut String, style: Style, out: &mut Vec<Span>| {
        if !text.is_empty() {
            out.push(Span {
                text: std::mem::take(text),
                style,
            });
        }
    };
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            // Other control characters (but tabs) would only confuse the view.
            if c == '\t' || !c.is_control() {
                text.push(c);
            }
            continue;
        }
        match chars.next() {
            // CSI: parameter bytes, intermediates, then one final byte in @..~.
            Some('[') => {
                let mut params = String::new();
                let mut last = None;
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        last = Some(c);
                        break;
                    }
                    params.push(c);
                }
                if last == Some('m') && params.len() <= 64 {
                    flush(&mut text, style, &mut out);
                    let numbers: Vec<u16> = if params.is_empty() {
                        vec![0]
                    } else {
                        params
                            .split([';', ':'])
                            .map(|p| p.parse::<u16>().unwrap_or(0))
                            .collect()
                    };
                    style.apply(&numbers);
                }
            }
            // OSC (titles, hyperlinks): up to BEL or ESC \, all of it dropped.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    flush(&mut text, style, &mut out);
    out
}

/// The text of `line` without any escape sequence.
pub fn plain(line: &str) -> String {
    spans(line).into_iter().map(|s| s.text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_become_allowlisted_classes() {
        let got = spans("\u{1b}[1;31merror\u{1b}[0m: done");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, "error");
        assert_eq!(got[0].style.classes(), "ansi-bold ansi-fg-1");
        assert_eq!(got[1].text, ": done");
        assert_eq!(got[1].style, Style::default());
        assert_eq!(spans("\u{1b}[92mok")[0].style.classes(), "ansi-fg-10");
        assert_eq!(spans("\u{1b}[38;5;196mx")[0].style.css(), "color:rgb(255,0,0);");
        assert_eq!(
            spans("\u{1b}[48;2;1;2;3mx")[0].style.css(),
            "background-color:rgb(1,2,3);"
        );
        assert_eq!(spans("\u{1b}[38;5;3mx")[0].style.classes(), "ansi-fg-3");
    }

    #[test]
    fn markup_stays_text_and_links_are_dropped() {
        let line = "\u{1b}[31m<img src=x onerror=alert(1)>\u{1b}[0m";
        assert_eq!(plain(line), "<img src=x onerror=alert(1)>");
        let link = "see \u{1b}]8;;javascript:alert(1)\u{1b}\\here\u{1b}]8;;\u{1b}\\ now";
        assert_eq!(plain(link), "see here now");
        assert_eq!(plain("\u{1b}]0;title\u{7}x\u{1b}[2Ky\u{1b}[?25l"), "xy");
    }

    #[test]
    fn odd_input_never_panics() {
        for line in [
            "\u{1b}",
            "\u{1b}[",
            "\u{1b}[38;5m",
            "\u{1b}[38;2;1m",
            "\u{1b}[999999999m",
            "\u{1b}]8;;x",
            "a\u{0}b\u{8}c",
        ] {
            let _ = spans(line);
        }
        assert_eq!(plain("a\u{0}b\tc"), "ab\tc");
    }
}
