//! Builds marked-yaml's node tree from yaml-rust2's events ourselves.
//!
//! marked-yaml's own loader stops at the first duplicate key, anchor or tag
//! and reads only the first document, so one such problem hid every other
//! one in the file. This loader reports each of them where it was written,
//! keeps building the tree (the first of two duplicate keys wins, an anchor
//! or tag is dropped, an alias reads as nothing) and lets the reader and the
//! validator report the rest in the same run.

use hashlink::LinkedHashMap;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Marker, Node, Span as NodeSpan};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker as ScanMarker, TScalarStyle};

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{SourceFile, Span};
use crate::yaml::{is_forbidden_in_yaml, marker_offset, node_span, scalar_span};

/// What [`load`] makes of the text: the tree when the YAML could be read at
/// all, and every problem met on the way.
pub(crate) struct Loaded {
    pub(crate) root: Option<Node>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// Where a mapping is in reading its next entry.
enum KeyState {
    WaitingForKey,
    WaitingForValue(MarkedScalarNode),
    /// The key was a list or mapping (already reported): drop its value.
    DiscardValue,
}

enum Frame {
    Mapping {
        start: Marker,
        entries: LinkedHashMap<MarkedScalarNode, Node>,
        key: KeyState,
    },
    Sequence {
        start: Marker,
        items: Vec<Node>,
    },
}

struct Receiver<'s> {
    source: &'s SourceFile,
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
    /// The document is not a mapping: there is nothing for the reader.
    not_a_mapping: bool,
    diagnostics: Vec<Diagnostic>,
}

pub(crate) fn load(source: &SourceFile) -> Loaded {
    let mut receiver = Receiver {
        source,
        stack: Vec::new(),
        root: None,
        documents: 0,
        not_a_mapping: false,
        diagnostics: Vec::new(),
    };
    // The scanner would stop at a raw control character (reported by
    // yaml::load already); read U+FFFD in its place, one character for
    // one so that every marker's line and column still hold.
    let text = source.text();
    let readable: std::borrow::Cow<'_, str> = if text.chars().any(is_forbidden_in_yaml) {
        text.chars()
            .map(|c| {
                if is_forbidden_in_yaml(c) {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    let mut parser = Parser::new(readable.chars());
    // `multi`: read on past the first document so that a second one is
    // reported instead of silently ignored.
    match parser.load(&mut receiver, true) {
        Ok(()) if receiver.not_a_mapping => Loaded {
            root: None,
            diagnostics: receiver.diagnostics,
        },
        Ok(()) => Loaded {
            root: Some(receiver.root.unwrap_or_else(|| {
                Node::from(MarkedMappingNode::new_empty(NodeSpan::new_blank()))
            })),
            diagnostics: receiver.diagnostics,
        },
        Err(scan) => {
            let mut diagnostics = receiver.diagnostics;
            diagnostics.push(syntax_error(source, scan.marker(), scan.info()));
            Loaded {
                root: None,
                diagnostics,
            }
        }
    }
}

fn to_marker(mark: ScanMarker) -> Marker {
    Marker::new(0, mark.index(), mark.line(), mark.col() + 1)
}

fn syntax_error(source: &SourceFile, mark: &ScanMarker, info: &str) -> Diagnostic {
    let at = marker_offset(source, &to_marker(*mark));
    Diagnostic::error(
        Code::YamlSyntax,
        format!("invalid YAML: {info}"),
        Span::new(at, at),
    )
    .with_caption("here")
}

impl MarkedEventReceiver for Receiver<'_> {
    fn on_event(&mut self, event: Event, mark: ScanMarker) {
        let mark = to_marker(mark);
        if let Event::DocumentStart = event {
            self.documents += 1;
            if self.documents == 2 {
                self.second_document(&mark);
            }
            return;
        }
        if self.documents > 1 {
            return;
        }
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                self.anchor_and_tag(anchor, tag.as_ref(), &mark);
                let mut scalar = MarkedScalarNode::new(NodeSpan::new_start(mark), value);
                // Quoted text is never read as a number or boolean.
                scalar.set_coerce(matches!(style, TScalarStyle::Plain));
                self.add(Node::from(scalar));
            }
            Event::Alias(_) => {
                let at = marker_offset(self.source, &mark);
                self.diagnostics
                    .push(anchor_error(token_at(self.source, at)));
                self.add(Node::from(MarkedScalarNode::new(
                    NodeSpan::new_start(mark),
                    "",
                )));
            }
            Event::MappingStart(anchor, tag) => {
                self.anchor_and_tag(anchor, tag.as_ref(), &mark);
                self.stack.push(Frame::Mapping {
                    start: mark,
                    entries: LinkedHashMap::new(),
                    key: KeyState::WaitingForKey,
                });
            }
            Event::SequenceStart(anchor, tag) => {
                self.anchor_and_tag(anchor, tag.as_ref(), &mark);
                self.stack.push(Frame::Sequence {
                    start: mark,
                    items: Vec::new(),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Mapping { start, entries, .. }) => Node::from(
                        MarkedMappingNode::new(NodeSpan::new_with_marks(start, mark), entries),
                    ),
                    Some(Frame::Sequence { start, items }) => Node::from(MarkedSequenceNode::new(
                        NodeSpan::new_with_marks(start, mark),
                        items,
                    )),
                    // The parser balances starts and ends.
                    None => return,
                };
                self.add(node);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

impl Receiver<'_> {
    /// Places a finished node: as the document, a list item, a key or a value.
    fn add(&mut self, node: Node) {
        let source = self.source;
        let Some(frame) = self.stack.last_mut() else {
            if node.as_mapping().is_none() {
                self.not_a_mapping = true;
                self.diagnostics.push(Diagnostic::error(
                    Code::WrongType,
                    "the manifest must be a mapping of keys such as `application:` and `postgresql:`",
                    node_span(source, &node),
                ));
            } else {
                self.root = Some(node);
            }
            return;
        };
        match frame {
            Frame::Sequence { items, .. } => items.push(node),
            Frame::Mapping { entries, key, .. } => {
                match std::mem::replace(key, KeyState::WaitingForKey) {
                    KeyState::WaitingForKey => match node {
                        Node::Scalar(scalar) => *key = KeyState::WaitingForValue(scalar),
                        other => {
                            *key = KeyState::DiscardValue;
                            self.diagnostics.push(Diagnostic::error(
                                Code::YamlSyntax,
                                "a mapping key must be a plain value, not a list or mapping",
                                node_span(source, &other),
                            ));
                        }
                    },
                    KeyState::WaitingForValue(name) => {
                        if let Some((first, _)) = entries.get_key_value(&name) {
                            // The first one is kept, so that what the other
                            // checks say refers to the entry read first.
                            self.diagnostics.push(duplicate_key(source, first, &name));
                        } else {
                            entries.insert(name, node);
                        }
                    }
                    KeyState::DiscardValue => {}
                }
            }
        }
    }

    fn anchor_and_tag(&mut self, anchor: usize, tag: Option<&Tag>, mark: &Marker) {
        let at = marker_offset(self.source, mark);
        if anchor != 0 {
            let span = token_before(self.source, at, '&').unwrap_or(Span::new(at, at));
            self.diagnostics.push(anchor_error(span));
        }
        if tag.is_some() {
            // The event's mark is where the tagged node begins; the tag is
            // the `!…` written before it (or at it, for a tagged scalar).
            let span = token_before(self.source, at, '!')
                .or_else(|| {
                    self.source.text()[at..]
                        .starts_with('!')
                        .then(|| token_at(self.source, at))
                })
                .unwrap_or(Span::new(at, at));
            self.diagnostics.push(
                Diagnostic::error(
                    Code::YamlTag,
                    "YAML tags (`!name`) are not supported in a manifest",
                    span,
                )
                .with_help("remove the tag; values are read as plain text"),
            );
        }
    }

    fn second_document(&mut self, mark: &Marker) {
        let at = marker_offset(self.source, mark);
        // The mark is where the second document's content starts; the
        // `---` that opened it is the last one written before that place.
        let text = self.source.text();
        let start = if text[at..].starts_with("---") {
            Some(at)
        } else {
            text[..at].rfind("---")
        };
        let span = start.map_or(Span::new(at, at), |start| Span::new(start, start + 3));
        self.diagnostics.push(
            Diagnostic::error(
                Code::MultipleDocuments,
                "the manifest holds a second YAML document, which dbgroups would not read",
                span,
            )
            .with_caption("a second document starts here")
            .with_help("a manifest is one YAML document: merge the two, or remove the `---` line"),
        );
    }
}

fn duplicate_key(
    source: &SourceFile,
    first: &MarkedScalarNode,
    again: &MarkedScalarNode,
) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateKey,
        format!("duplicate key \"{}\"", again.as_str()),
        scalar_span(source, again),
    )
    .with_caption("written again here")
    .with_label(scalar_span(source, first), "first written here")
    .with_help("a mapping holds each key once: merge the two entries or remove one")
}

fn anchor_error(span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::YamlAnchor,
        "YAML anchors and aliases are not supported in a manifest",
        span,
    )
    .with_help("write the values out in full, so that each group reads on its own")
}

/// How far back from a node its anchor or tag is looked for, in bytes.
const PROPERTY_LOOKBACK: usize = 512;

/// The last `&name` or `!tag` (by `sigil`) that starts a token before byte
/// `end`: the scanner marks the node after the property, sometimes as far
/// as its first value.
fn token_before(source: &SourceFile, end: usize, sigil: char) -> Option<Span> {
    let text = &source.text()[..end];
    let starts_token =
        |at: usize| at == 0 || text[..at].ends_with([' ', '\t', '\n', '[', '{', ',', ':', '-']);
    // Properties stand right before their node: look back a little only,
    // so that many of them on a long line stay linear.
    let mut window_start = end.saturating_sub(PROPERTY_LOOKBACK);
    while !text.is_char_boundary(window_start) {
        window_start -= 1;
    }
    let at = text[window_start..]
        .rmatch_indices(sigil)
        .map(|(at, _)| window_start + at)
        .find(|&at| starts_token(at))?;
    Some(token_at(source, at))
}

/// The span of the token (up to a blank or flow indicator) starting at `at`.
fn token_at(source: &SourceFile, at: usize) -> Span {
    let rest = &source.text()[at..];
    let len = rest
        .find(|c: char| c.is_whitespace() || ",]}".contains(c))
        .unwrap_or(rest.len());
    Span::new(at, at + len)
}
