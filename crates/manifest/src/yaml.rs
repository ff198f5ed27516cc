//! Loading YAML into marked-yaml's node tree, and turning its failures and
//! markers into [`Diagnostic`]s and byte [`Span`]s.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Marker, Node};

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{SourceFile, Span};

/// Parses the whole text; on failure returns every diagnostic it can give.
pub(crate) fn load(source: &SourceFile) -> Result<Node, Vec<Diagnostic>> {
    if let Some(at) = source.invalid_utf8_at() {
        // The text holds U+FFFD where the bad bytes were: label that character.
        let width = source.text()[at..].chars().next().map_or(0, char::len_utf8);
        return Err(vec![
            Diagnostic::error(
                Code::InvalidUtf8,
                "the manifest is not valid UTF-8",
                Span::new(at, at + width),
            )
            .with_caption("this byte is not UTF-8")
            .with_help("save the file as UTF-8"),
        ]);
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    marked_yaml::parse_yaml_with_options(0, source.text(), options)
        .map_err(|err| load_error_diagnostics(source, err))
}

fn load_error_diagnostics(source: &SourceFile, err: LoadError) -> Vec<Diagnostic> {
    match err {
        LoadError::ScanError(marker, scan) => {
            // Tabs are the most common cause by far (copied documentation),
            // and the scanner's own words don't say what to do: point at
            // every tab-indented line instead.
            let mut diagnostics = tab_indentation(source);
            let at = marker_offset(source, &marker);
            let already_reported = diagnostics
                .iter()
                .any(|d| source.location(d.primary_span().start).line == marker.line());
            if !already_reported {
                diagnostics.push(
                    Diagnostic::error(
                        Code::YamlSyntax,
                        format!("invalid YAML: {}", scan.info()),
                        Span::new(at, at),
                    )
                    .with_caption("here"),
                );
            }
            diagnostics
        }
        LoadError::DuplicateKey(inner) => {
            let first = scalar_span(source, &inner.prev_key);
            vec![
                Diagnostic::error(
                    Code::DuplicateKey,
                    format!("duplicate key \"{}\"", inner.key.as_str()),
                    scalar_span(source, &inner.key),
                )
                .with_caption("written again here")
                .with_label(first, "first written here")
                .with_help("a mapping holds each key once: merge the two entries or remove one"),
            ]
        }
        LoadError::UnexpectedAnchor(marker) => vec![
            Diagnostic::error(
                Code::YamlAnchor,
                "YAML anchors and aliases are not supported in a manifest",
                anchor_before(source, &marker),
            )
            .with_help("write the values out in full, so that each group reads on its own"),
        ],
        LoadError::UnexpectedTag(marker) => vec![
            Diagnostic::error(
                Code::YamlTag,
                "YAML tags (`!name`) are not supported in a manifest",
                point(source, &marker),
            )
            .with_help("remove the tag; values are read as plain text"),
        ],
        LoadError::MappingKeyMustBeScalar(marker) => vec![Diagnostic::error(
            Code::YamlSyntax,
            "a mapping key must be a plain value, not a list or mapping",
            point(source, &marker),
        )],
        LoadError::TopLevelMustBeMapping(marker) | LoadError::TopLevelMustBeSequence(marker) => {
            vec![Diagnostic::error(
                Code::WrongType,
                "the manifest must be a mapping of keys such as `application:` and `postgresql:`",
                point(source, &marker),
            )]
        }
    }
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

/// The scanner reports an anchor where the node after it begins; point at
/// the `&name` itself, the last one written before that place.
fn anchor_before(source: &SourceFile, marker: &Marker) -> Span {
    let end = marker_offset(source, marker);
    let text = &source.text()[..end];
    let starts_token =
        |at: usize| at == 0 || text[..at].ends_with([' ', '\t', '\n', '[', '{', ',', ':', '-']);
    let anchor = text
        .rmatch_indices(['&', '*'])
        .map(|(at, _)| at)
        .find(|&at| starts_token(at));
    match anchor {
        Some(at) => {
            let len = text[at..]
                .find(|c: char| c.is_whitespace() || ",]}".contains(c))
                .unwrap_or(text.len() - at);
            Span::new(at, at + len)
        }
        None => Span::new(end, end),
    }
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
    let line_rest = rest.split(['\n', '\r']).next().unwrap_or("");
    let len = match line_rest.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            closing_quote(line_rest, quote).map_or(line_rest.len(), |end| end + 1)
        }
        Some('|' | '>') => 1,
        _ => scalar.as_str().len().min(line_rest.len()),
    };
    Span::new(start, start + len)
}

/// The byte index of the quote closing a scalar that opens at index 0.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((at, c)) = chars.next() {
        match c {
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
