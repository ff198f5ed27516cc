//! Making text from a manifest safe to print on a terminal.
//!
//! A manifest under review can carry ESC sequences (retitle or clear the
//! screen), BEL, NUL or bidirectional overrides that reorder what a reader
//! sees. Every human rendering of manifest text passes through
//! [`escape_controls`], so such characters show as visible escapes instead
//! of acting on the terminal. JSON output needs none of this: its encoder
//! escapes control characters itself.

use std::borrow::Cow;

/// True for characters a terminal acts on instead of showing: the C0 and C1
/// controls and DEL, and the bidirectional embeddings, overrides and
/// isolates (the "Trojan Source" characters).
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with each character [`is_unsafe_for_terminal`] written as a
/// visible escape (`\u{1b}`); borrowed when nothing needed escaping.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_controls_except(text, &[])
}

/// Like [`escape_controls`], leaving the characters in `keep` as they are
/// (a quoted source line keeps its tabs, which the renderer expands).
pub fn escape_controls_except<'t>(text: &'t str, keep: &[char]) -> Cow<'t, str> {
    let needs_escape = |c: char| is_unsafe_for_terminal(c) && !keep.contains(&c);
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&escaped(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The visible form of one character, as Rust writes it: `\u{1b}`.
pub fn escaped(c: char) -> String {
    format!("\\u{{{:x}}}", u32::from(c))
}

/// `U+001B (ESC)`, for messages that name a control character.
pub fn describe_control(c: char) -> String {
    let name = match c {
        '\0' => " (NUL)",
        '\u{7}' => " (BEL)",
        '\u{8}' => " (BS)",
        '\u{b}' => " (VT)",
        '\u{c}' => " (FF)",
        '\u{1b}' => " (ESC)",
        '\u{7f}' => " (DEL)",
        '\u{9b}' => " (CSI)",
        _ => "",
    };
    format!("U+{:04X}{name}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_and_plain_text_is_borrowed() {
        assert_eq!(
            escape_controls("a\u{1b}]0;pwned\u{7}b\0\u{9b}2J\u{202e}"),
            "a\\u{1b}]0;pwned\\u{7}b\\u{0}\\u{9b}2J\\u{202e}"
        );
        assert!(matches!(escape_controls("plain é"), Cow::Borrowed(_)));
        assert_eq!(escape_controls_except("\tx\u{7}", &['\t']), "\tx\\u{7}");
        assert_eq!(describe_control('\u{1b}'), "U+001B (ESC)");
    }
}
