//! Renderings of a plan: text for terminals, JSON for machines, Markdown for
//! pull-request comments, DOT and Mermaid graphs. None of them shows a
//! secret: the plan they read holds none.

pub mod graph;
pub mod json;
pub mod markdown;
pub mod text;

use std::borrow::Cow;
use std::fmt::Write as _;

/// Makes text from a manifest or a server safe to show a person: control
/// characters (ESC, BEL, NUL, the C1 range …) become visible `\u{1b}`
/// escapes, so a manifest under review cannot retitle, clear or rewrite the
/// reviewer's terminal. Line feeds stay, as the renderings are made of
/// lines. Bidirectional overrides are escaped too: they make a line read
/// differently from what it holds ("trojan source").
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(
            escape_controls("a\u{1b}]0;owned\u{7}b\0c\td\u{9b}e\u{202e}f\ng"),
            "a\\u{1b}]0;owned\\u{7}b\\u{0}c\\u{9}d\\u{9b}e\\u{202e}f\ng"
        );
        assert_eq!(escape_controls("plain ü text\n"), "plain ü text\n");
    }
}
