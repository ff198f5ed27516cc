//! Loading YAML into marked-yaml's node tree, and turning its failures and
//! markers into [`Diagnostic`]s and byte [`Span`]s.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{Marker, Node};

use crate::diagnostic::{Code, Diagnostic};
use crate::loader;
use crate::source::{SourceFile, Span};

/// Parses the whole text. The tree is there whenever the YAML could be
/// read; the diagnostics hold every YAML-level problem either way.
pub(crate) fn load(source: &SourceFile) -> (Option<Node>, Vec<Diagnostic>) {
    if let Some(at) = source.invalid_utf8_at() {
        // The text holds U+FFFD where the bad bytes were: label that character.
        let width = source.text()[at..].chars().next().map_or(0, char::len_utf8);
        return (
            None,
            vec![
                Diagnostic::error(
                    Code::InvalidUtf8,
                    "the manifest is not valid UTF-8",
                    Span::new(at, at + width),
                )
                .with_caption("this byte is not UTF-8")
                .with_help("save the file as UTF-8"),
            ],
        );
    }
    let mut diagnostics = control_characters(source);
    let loaded = loader::load(source);
    if loaded.root.is_none() {
        // Tabs are the most common cause of a syntax error by far (copied
        // documentation), and the scanner's own words don't say what to
        // do: point at every tab-indented line instead.
        diagnostics.extend(tab_indentation(source));
    }
    let lines_reported: Vec<usize> = diagnostics
        .iter()
        .map(|d| source.location(d.primary_span().start).line)
        .collect();
    diagnostics.extend(loaded.diagnostics.into_iter().filter(|d| {
        // A syntax error on a line already explained (a tab, a control
        // character) says the same thing less helpfully.
        d.code != Code::YamlSyntax
            || !lines_reported.contains(&source.location(d.primary_span().start).line)
    }));
    (loaded.root, diagnostics)
}

/// The characters YAML's `c-printable` leaves out, tab and line breaks
/// being allowed.
pub(crate) fn is_forbidden_in_yaml(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{85}')
}

/// YAML allows no control character but tab and line breaks in a stream
/// (escapes such as `"\e"` in double quotes are how one writes them). Raw
/// ones are refused at their place, one diagnostic per line, because they
/// would reach a reviewer's terminal as escape sequences.
fn control_characters(source: &SourceFile) -> Vec<Diagnostic> {
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut last_line = 0;
    for (at, c) in source.text().char_indices() {
        if !is_forbidden_in_yaml(c) {
            continue;
        }
        let line = source.line_number(at);
        if line == last_line {
            continue;
        }
        last_line = line;
        diagnostics.push(
            Diagnostic::error(
                Code::ControlCharacter,
                format!(
                    "the manifest holds the control character {}",
                    crate::escape::describe_control(c)
                ),
                Span::new(at, at + c.len_utf8()),
            )
            .with_caption("here")
            .with_help(
                "YAML does not allow control characters in a file: remove it, or write it as an \
                 escape inside double quotes (such as \"\\e\")",
            ),
        );
    }
    diagnostics
}

/// One diagnostic per line whose indentation contains a tab.
fn tab_indentation(source: &SourceFile) -> Vec<Diagnostic> {
    (1..=source.line_count())
        .filter_map(|line| {
            let text = source.line(line);
            let indent_len = text.len() - text.trim_start_matches([' ', '\t']).len();
            let indent = &text[..indent_len];
            let has_content = indent_len < text.len();
            (has_content && indent.contains('\t')).then(|| {
                let start = source.line_start(line);
                let tab = start + indent.find('\t').unwrap_or(0);
                Diagnostic::error(
                    Code::TabIndentation,
                    "this line is indented with a tab character",
                    Span::new(tab, tab + 1),
                )
                .with_caption("tab")
                .with_help(tab_help(source, line))
            })
        })
        .collect()
}

/// Names the key a tab-indented line sits under, when the line above opens
/// a block, because "indent it deeper than X" is something one can do.
fn tab_help(source: &SourceFile, line: usize) -> String {
    let parent = (1..line)
        .rev()
        .map(|l| source.line(l).trim_end())
        .find(|text| {
            let content = text.trim_start();
            !content.is_empty() && !content.starts_with('#')
        });
    match parent.map(str::trim_start) {
        Some(key) if key.ends_with(':') => format!(
            "YAML allows only spaces for indentation: replace the tab with spaces, indenting \
             this line further than `{key}` above it"
        ),
        _ => "YAML allows only spaces for indentation: replace the tab with spaces".to_string(),
    }
}

pub(crate) fn marker_offset(source: &SourceFile, marker: &Marker) -> usize {
    source.offset_of(marker.line(), marker.column())
}

fn point(source: &SourceFile, marker: &Marker) -> Span {
    let at = marker_offset(source, marker);
    Span::new(at, at)
}

/// The span of a scalar as written, quotes included, on its first line.
pub(crate) fn scalar_span(source: &SourceFile, scalar: &MarkedScalarNode) -> Span {
    let Some(marker) = scalar.span().start() else {
        return Span::default();
    };
    let start = marker_offset(source, marker);
    let rest = &source.text()[start..];
    // Look no further than the scalar can reach: splitting the rest of a
    // 10 MB line for each of its scalars made long lines quadratic.
    let until_line_end = |text: &str| text.find(['\n', '\r']).unwrap_or(text.len());
    let len = match rest.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            closing_quote(rest, quote).map_or_else(|| until_line_end(rest), |end| end + 1)
        }
        Some('|' | '>') => 1,
        _ => {
            let mut reach = scalar.as_str().len().min(rest.len());
            while !rest.is_char_boundary(reach) {
                reach -= 1;
            }
            until_line_end(&rest[..reach])
        }
    };
    Span::new(start, start + len)
}

/// The byte index of the quote closing a scalar that opens at index 0, on
/// the same line.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\n' | '\r' => return None,
            '\\' if quote == '"' => {
                chars.next();
            }
            // In single quotes, '' is an escaped quote.
            '\'' if quote == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                chars.next();
            }
            c if c == quote => return Some(at),
            _ => {}
        }
    }
    None
}

/// A span for any node: a scalar's text, else the first key of a mapping or
/// the start of a sequence (markers of block collections are imprecise).
pub(crate) fn node_span(source: &SourceFile, node: &Node) -> Span {
    match node {
        Node::Scalar(scalar) => scalar_span(source, scalar),
        Node::Mapping(map) => first_key_span(source, map).unwrap_or_else(|| {
            map.span()
                .start()
                .map_or(Span::default(), |m| point(source, m))
        }),
        Node::Sequence(seq) => seq
            .span()
            .start()
            .map_or(Span::default(), |m| point(source, m)),
    }
}

fn first_key_span(source: &SourceFile, map: &MarkedMappingNode) -> Option<Span> {
    map.keys().next().map(|key| scalar_span(source, key))
}

/// YAML's null (`key:` with nothing after it, `~`, `null`), unquoted.
pub(crate) fn is_null(node: &Node) -> bool {
    node.as_scalar().is_some_and(|s| {
        s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
    })
}

/// What a node is, for "expected X, found Y" messages.
pub(crate) fn kind(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) if is_null(node) => "nothing",
        Node::Scalar(_) => "a single value",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}
