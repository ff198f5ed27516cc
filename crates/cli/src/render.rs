//! Turns the manifest crate's plain [`Diagnostic`]s into miette reports.
//!
//! miette is handed an [`Excerpt`] per diagnostic, never the whole file:
//! its own source reader scans the text from the top for every report,
//! which made 8,000 diagnostics take ten seconds and quoted a 10 MB line
//! whole. An excerpt holds only the lines the labels point at (and one line
//! of context each side), with long lines cut around the labels and
//! terminal control characters written as visible escapes.

use dbgroups_manifest::escape::{escape_controls, escape_controls_except, is_unsafe_for_terminal};
use dbgroups_manifest::{Diagnostic, Severity, SourceFile};
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use crate::terminal::Style;

/// A quoted line longer than this many characters is cut around its labels.
const QUOTED_LINE_LIMIT: usize = 160;
/// Characters kept either side of the labels on a cut line.
const CUT_MARGIN: usize = 40;
/// Lines quoted above and below each label, as miette's default.
const CONTEXT_LINES: usize = 1;

/// A diagnostic paired with its excerpt, as miette wants it.
#[derive(Debug)]
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    excerpt: Excerpt,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape_controls(&self.diagnostic.message))
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(format!("manifest::{}", self.diagnostic.code)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Advice => miette::Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(escape_controls(h).into_owned()) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.excerpt)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let labels = self.excerpt.labels.iter().map(|label| {
            let span = SourceSpan::new(label.start.into(), label.end - label.start);
            let text = label.text.clone();
            if label.primary {
                LabeledSpan::new_primary_with_span(text, span)
            } else {
                LabeledSpan::new_with_span(text, span)
            }
        });
        Some(Box::new(labels))
    }
}

/// Renders diagnostics the way rustc does, quoting the lines they point at.
pub(crate) fn graphical(diagnostics: &[&Diagnostic], source: &SourceFile, style: Style) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // The excerpt names itself `file:line:column` (columns in characters,
    // as `short` and `json` count them), so miette's own byte-counted
    // position is left out.
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_context_lines(CONTEXT_LINES)
        .without_primary_span_start();
    let mut out = String::new();
    for (index, diagnostic) in diagnostics.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let report = Report {
            diagnostic,
            excerpt: Excerpt::new(source, diagnostic),
        };
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
    }
    out
}

/// A label placed in the excerpt's own text.
#[derive(Debug)]
struct ExcerptLabel {
    start: usize,
    end: usize,
    text: Option<String>,
    primary: bool,
}

/// One quoted line: where it starts in the excerpt text and which line of
/// the manifest it is (one-based).
#[derive(Debug)]
struct ExcerptLine {
    start: usize,
    number: usize,
}

/// The part of a manifest one diagnostic quotes, made safe to print.
#[derive(Debug)]
struct Excerpt {
    /// `file:line:column` of the primary label.
    name: String,
    text: String,
    lines: Vec<ExcerptLine>,
    labels: Vec<ExcerptLabel>,
}

/// How one manifest line is quoted: the byte range of it that is kept.
struct Window {
    from: usize,
    to: usize,
}

impl Excerpt {
    fn new(source: &SourceFile, diagnostic: &Diagnostic) -> Self {
        let at = source.location(diagnostic.primary_span().start);
        let name = format!("{}:{at}", escape_controls(source.name()));
        // Every label's first and last line, with context, merged into runs.
        // The empty "line" after the final line break is no context.
        let last_line = if source.text().ends_with('\n') {
            source.line_count().saturating_sub(1).max(1)
        } else {
            source.line_count()
        };
        let mut wanted: Vec<usize> = Vec::new();
        for label in &diagnostic.labels {
            let first = source.line_number(label.span.start);
            let last = source.line_number(label.span.end).max(first);
            let from = first.saturating_sub(CONTEXT_LINES).max(1);
            let to = (last + CONTEXT_LINES).min(last_line).max(last);
            // A label spanning many lines quotes its first and last ones.
            wanted.extend(from..=to.min(first + CONTEXT_LINES));
            wanted.extend(last.saturating_sub(CONTEXT_LINES).max(from)..=to);
        }
        wanted.sort_unstable();
        wanted.dedup();

        let mut excerpt = Excerpt {
            name,
            text: String::new(),
            lines: Vec::with_capacity(wanted.len()),
            labels: Vec::with_capacity(diagnostic.labels.len()),
        };
        let mut label_points: Vec<(usize, usize)> = vec![(0, 0); diagnostic.labels.len()];
        for &number in &wanted {
            let line_start = source.line_start(number);
            let line = source.line(number);
            // Offsets up to the next line's start (a CR, the line break)
            // belong to this line, drawn at its end.
            let next_start = if number < source.line_count() {
                source.line_start(number + 1)
            } else {
                usize::MAX
            };
            let on_line = |offset: usize| {
                (line_start..next_start)
                    .contains(&offset)
                    .then(|| (offset - line_start).min(line.len()))
            };
            let window = window_for(
                line,
                diagnostic
                    .labels
                    .iter()
                    .flat_map(|l| [on_line(l.span.start), on_line(l.span.end)])
                    .flatten(),
            );
            let quoted_start = excerpt.text.len();
            excerpt.lines.push(ExcerptLine {
                start: quoted_start,
                number,
            });
            let map = excerpt.push_line(line, &window);
            for (index, label) in diagnostic.labels.iter().enumerate() {
                if let Some(offset) = on_line(label.span.start) {
                    label_points[index].0 = quoted_start + map(offset);
                }
                if let Some(offset) = on_line(label.span.end) {
                    label_points[index].1 = quoted_start + map(offset);
                }
            }
        }
        excerpt.labels = diagnostic
            .labels
            .iter()
            .zip(label_points)
            .enumerate()
            .map(|(index, (label, (start, end)))| ExcerptLabel {
                start,
                end: end.max(start),
                text: label
                    .text
                    .as_deref()
                    .map(|t| escape_controls(t).into_owned()),
                primary: index == 0,
            })
            .collect();
        excerpt
    }

    /// Appends `line` cut to `window` and escaped; returns how a byte offset
    /// in `line` maps into the appended text (clamped to the window).
    fn push_line<'l>(&mut self, line: &'l str, window: &Window) -> impl Fn(usize) -> usize + 'l {
        let mut quoted = String::new();
        let cut_before = window.from > 0;
        let cut_after = window.to < line.len();
        if cut_before {
            quoted.push('…');
        }
        let prefix = quoted.len();
        let kept = &line[window.from..window.to];
        quoted.push_str(&escape_controls_except(kept, &['\t']));
        if cut_after {
            quoted.push('…');
        }
        self.text.push_str(&quoted);
        self.text.push('\n');
        let (from, to) = (window.from, window.to);
        move |offset: usize| {
            let offset = offset.clamp(from, to);
            // Escapes widen the text: count what precedes the offset.
            prefix
                + line[from..offset]
                    .chars()
                    .map(|c| {
                        if c != '\t' && is_unsafe_for_terminal(c) {
                            dbgroups_manifest::escape::escaped(c).len()
                        } else {
                            c.len_utf8()
                        }
                    })
                    .sum::<usize>()
        }
    }

    /// The excerpt lines holding `span`, widened by context lines that
    /// follow on in the manifest (runs are not joined across a gap).
    fn lines_around(&self, span: &SourceSpan, before: usize, after: usize) -> (usize, usize) {
        let index_of = |offset: usize| match self.lines.binary_search_by_key(&offset, |l| l.start) {
            Ok(exact) => exact,
            Err(next) => next.saturating_sub(1),
        };
        let mut first = index_of(span.offset());
        let mut last = index_of(span.offset() + span.len().saturating_sub(1)).max(first);
        for _ in 0..before {
            if first > 0 && self.lines[first - 1].number + 1 == self.lines[first].number {
                first -= 1;
            }
        }
        for _ in 0..after {
            if last + 1 < self.lines.len()
                && self.lines[last].number + 1 == self.lines[last + 1].number
            {
                last += 1;
            }
        }
        (first, last)
    }
}

/// The part of `line` to quote: all of it when short, else the stretch
/// around `points` (byte offsets of label ends on this line).
fn window_for(line: &str, points: impl Iterator<Item = usize>) -> Window {
    if line.chars().count() <= QUOTED_LINE_LIMIT {
        return Window {
            from: 0,
            to: line.len(),
        };
    }
    let points: Vec<usize> = points.collect();
    let low = points.iter().copied().min().unwrap_or(0);
    let high = points.iter().copied().max().unwrap_or(0);
    let from = back_chars(line, low, CUT_MARGIN);
    // Labels far apart on one line: keep the first, as much as fits.
    let to =
        forward_chars(line, high, CUT_MARGIN).min(forward_chars(line, from, QUOTED_LINE_LIMIT));
    Window { from, to }
}

fn back_chars(line: &str, from: usize, count: usize) -> usize {
    line[..from]
        .char_indices()
        .rev()
        .nth(count.saturating_sub(1))
        .map_or(0, |(at, _)| at)
}

fn forward_chars(line: &str, from: usize, count: usize) -> usize {
    line[from..]
        .char_indices()
        .nth(count)
        .map_or(line.len(), |(at, _)| from + at)
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        if self.lines.is_empty() {
            return Err(MietteError::OutOfBounds);
        }
        let (first, last) = self.lines_around(span, context_lines_before, context_lines_after);
        let start = self.lines[first].start;
        let end = self
            .lines
            .get(last + 1)
            .map_or(self.text.len(), |next| next.start);
        let column = self.text[start..span.offset().clamp(start, end)]
            .chars()
            .count();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &self.text.as_bytes()[start..end],
            SourceSpan::new(start.into(), end - start),
            self.lines[first].number - 1,
            column,
            last - first,
        )))
    }
}

#[cfg(test)]
mod tests {
    use dbgroups_manifest::{ParseOptions, SourceFile};

    use super::*;

    /// With colour on, the only escapes are the theme's own `ESC[…m`.
    #[test]
    fn manifest_control_characters_never_reach_a_colour_terminal() {
        let text = "application: \"a\\e]0;t\\a\"\nredis:\n  servers:\n    - server:\n        unique_name: r\u{1b}]0;x\u{7}\n        vendor: \"\\u009b2J\"\n";
        let source = SourceFile::new("m\u{1b}.yml", text);
        let parsed = dbgroups_manifest::parse(&source, &ParseOptions::default());
        let diagnostics: Vec<&Diagnostic> = parsed.diagnostics.iter().collect();
        assert!(diagnostics.len() >= 3, "{diagnostics:?}");
        let out = graphical(
            &diagnostics,
            &source,
            Style {
                color: true,
                width: 100,
            },
        );
        let mut rest = out.as_str();
        let mut colour_codes = 0;
        while let Some(at) = rest.find('\u{1b}') {
            let sequence = &rest[at + 1..];
            let end = sequence.find('m').unwrap_or(sequence.len());
            let is_colour = sequence.starts_with('[')
                && sequence[1..end]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ';');
            assert!(
                is_colour,
                "not a colour code: {:?}",
                &sequence[..end.min(12)]
            );
            colour_codes += 1;
            rest = &sequence[end..];
        }
        assert!(colour_codes > 0, "colour was on");
        let other_controls: Vec<char> = out
            .chars()
            .filter(|&c| is_unsafe_for_terminal(c) && c != '\u{1b}' && c != '\n')
            .collect();
        assert_eq!(other_controls, Vec::<char>::new());
        assert!(out.contains("\\u{1b}"), "escapes are visible: {out}");
    }
}
