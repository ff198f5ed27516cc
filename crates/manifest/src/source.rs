//! The manifest's text, byte spans inside it, and the line index that turns a
//! span into the `line:column` users see.

use std::path::Path;

use crate::error::ManifestError;

/// A half-open byte range `[start, end)` in a [`SourceFile`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A value read from the manifest together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl Spanned<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// A one-based line and column; the column counts characters, as editors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

const BYTE_ORDER_MARK: char = '\u{feff}';

/// How far apart [`SourceFile`]'s column checkpoints are, in bytes.
const CHECKPOINT_BYTES: usize = 128;

fn checkpoints(text: &str) -> Vec<(usize, usize)> {
    let mut checkpoints = Vec::new();
    let (mut column, mut last) = (0, 0);
    for (at, c) in text.char_indices() {
        if at - last >= CHECKPOINT_BYTES {
            checkpoints.push((at, column));
            last = at;
        }
        if c == '\n' {
            column = 0;
            last = at + 1;
        } else {
            column += 1;
        }
    }
    checkpoints
}

/// The text of a manifest and the name it is shown under in diagnostics.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
    /// `(byte offset, zero-based column)` every [`CHECKPOINT_BYTES`] or so
    /// into long lines, so that a column on a 10 MB line is found without
    /// counting characters from the line's start each time.
    checkpoints: Vec<(usize, usize)>,
    /// Byte offset of the first byte that was not UTF-8, when read from bytes.
    invalid_utf8_at: Option<usize>,
}

impl SourceFile {
    /// A UTF-8 byte order mark at the start is dropped: editors on Windows
    /// write one, and it is no part of the first key.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.starts_with(BYTE_ORDER_MARK) {
            text.drain(..BYTE_ORDER_MARK.len_utf8());
        }
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        let checkpoints = checkpoints(&text);
        Self {
            name: name.into(),
            text,
            line_starts,
            checkpoints,
            invalid_utf8_at: None,
        }
    }

    /// Accepts any bytes: text that is not UTF-8 is kept (lossily) so the
    /// parser can report where it went wrong instead of refusing the file.
    pub fn from_bytes(name: impl Into<String>, bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::new(name, text),
            Err(err) => {
                // Offsets are into the text without its byte order mark.
                let bom = if bytes.starts_with("\u{feff}".as_bytes()) {
                    3
                } else {
                    0
                };
                let valid = err.valid_up_to() - bom;
                let mut file = Self::new(name, String::from_utf8_lossy(bytes).into_owned());
                // Everything before `valid` was copied unchanged, so the offset holds.
                file.invalid_utf8_at = Some(valid);
                file
            }
        }
    }

    /// Reads a manifest from disk. Only I/O can fail here; content problems
    /// are reported as diagnostics by [`crate::parse`].
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let bytes = std::fs::read(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_bytes(path.display().to_string(), &bytes))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn invalid_utf8_at(&self) -> Option<usize> {
        self.invalid_utf8_at
    }

    /// The one-based line of a byte offset, without counting columns (cheap
    /// on a long line).
    pub fn line_number(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset.min(self.text.len())) {
            Ok(exact) => exact + 1,
            Err(next) => next,
        }
    }

    /// The line and column of a byte offset (clamped to the text).
    pub fn location(&self, offset: usize) -> Location {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(exact) => exact,
            Err(next) => next - 1,
        };
        let line_start = self.line_starts[line_index];
        let (base, base_column) = self.checkpoint_before(line_start, |&(at, _)| at <= offset);
        let column = base_column + self.text[base..offset].chars().count() + 1;
        Location {
            line: line_index + 1,
            column,
        }
    }

    /// The byte offset of a one-based line and character column, clamped to
    /// the end of that line (markers from the YAML scanner use this form).
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&line_start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let wanted = column.saturating_sub(1);
        let (base, base_column) =
            self.checkpoint_before(line_start, |&(_, at_column)| at_column <= wanted);
        let line_text = self.line_text_from(base);
        base + line_text
            .char_indices()
            .nth(wanted - base_column)
            .map_or(line_text.len(), |(at, _)| at)
    }

    /// The last checkpoint on the line starting at `line_start` for which
    /// `before` holds, else the line's start (column 0).
    fn checkpoint_before(
        &self,
        line_start: usize,
        before: impl Fn(&(usize, usize)) -> bool,
    ) -> (usize, usize) {
        let first_on_line = self.checkpoints.partition_point(|&(at, _)| at < line_start);
        let on_line = &self.checkpoints[first_on_line..];
        // Checkpoints of this line come first and are not followed by a
        // column reset until the next line, whose first checkpoint has a
        // smaller column: stop at the line's end.
        let line_end = self.line_end_from(line_start);
        let on_line = &on_line[..on_line.partition_point(|&(at, _)| at < line_end)];
        match on_line.partition_point(|c| before(c)) {
            0 => (line_start, 0),
            n => on_line[n - 1],
        }
    }

    fn line_end_from(&self, line_start: usize) -> usize {
        let index = self.line_starts.partition_point(|&s| s <= line_start);
        self.line_starts
            .get(index)
            .map_or(self.text.len(), |&next| next)
    }

    /// The text of the one-based line `line`, without its line break.
    pub fn line(&self, line: usize) -> &str {
        self.line_starts
            .get(line.saturating_sub(1))
            .map_or("", |&start| self.line_text_from(start))
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The byte offset where the one-based line `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    fn line_text_from(&self, start: usize) -> &str {
        let line = &self.text[start..self.line_end_from(start)];
        let line = line.strip_suffix('\n').unwrap_or(line);
        line.strip_suffix('\r').unwrap_or(line)
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_characters_not_bytes() {
        let file = SourceFile::new("m.yml", "a: é\nbb: x\n");
        assert_eq!(file.location(0), Location { line: 1, column: 1 });
        let x = file.text().find('x').expect("x is in the text");
        assert_eq!(file.location(x), Location { line: 2, column: 5 });
        assert_eq!(file.offset_of(2, 5), x);
        assert_eq!(file.offset_of(1, 4), 3);
        assert_eq!(file.line(2), "bb: x");
    }

    #[test]
    fn columns_on_a_long_line_agree_with_counting_from_its_start() {
        let line = "é".repeat(3000) + "x" + &"a".repeat(5000);
        let file = SourceFile::new("m.yml", format!("k: 1\n{line}\nz\n"));
        let x = file.text().find('x').expect("x is in the text");
        assert_eq!(
            file.location(x),
            Location {
                line: 2,
                column: 3001
            }
        );
        assert_eq!(file.offset_of(2, 3001), x);
        assert_eq!(file.offset_of(2, 9000), 5 + line.len());
        assert_eq!(file.location(x + 4000).column, 3001 + 4000);
        let z = file.text().rfind('z').expect("z is in the text");
        assert_eq!(file.location(z), Location { line: 3, column: 1 });
        assert_eq!(file.offset_of(3, 1), z);
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let file = SourceFile::new("m.yml", "a\n");
        assert_eq!(file.offset_of(9, 9), 2);
        assert_eq!(file.location(99), Location { line: 2, column: 1 });
    }

    #[test]
    fn a_byte_order_mark_is_dropped_and_crlf_lines_read_without_their_cr() {
        let file = SourceFile::from_bytes("m.yml", "\u{feff}a: 1\r\nb: 2\r\n".as_bytes());
        assert_eq!(file.text(), "a: 1\r\nb: 2\r\n");
        assert_eq!(file.line(1), "a: 1");
        assert_eq!(file.location(6), Location { line: 2, column: 1 });
        assert_eq!(file.line_number(6), 2);
        let bad = SourceFile::from_bytes("m.yml", b"\xef\xbb\xbfa: \xff\n");
        assert_eq!(bad.invalid_utf8_at(), Some(3));
    }

    #[test]
    fn invalid_utf8_is_kept_with_its_position() {
        let file = SourceFile::from_bytes("m.yml", b"a: 1\nb: \xff\n");
        assert_eq!(file.invalid_utf8_at(), Some(8));
        assert_eq!(file.location(8), Location { line: 2, column: 4 });
    }
}
