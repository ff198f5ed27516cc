//! Diagnostics about a manifest: what is wrong, where, and what to do.
//!
//! They are plain data so that the CLI can render them (with miette) and
//! tests can assert on them without a terminal.

use serde::Serialize;

use crate::escape::escape_controls;
use crate::source::{SourceFile, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// Informational: something was deliberately ignored.
    Advice,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Advice => "advice",
        }
    }
}

/// Stable identifiers of every diagnostic, documented in `docs/manifest.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    // The YAML layer.
    InvalidUtf8,
    ControlCharacter,
    YamlSyntax,
    TabIndentation,
    DuplicateKey,
    YamlAnchor,
    YamlTag,
    MultipleDocuments,
    // Shape of the document.
    UnknownKey,
    WrongType,
    MissingKey,
    InvalidValue,
    MixedGroupForms,
    IgnoredSection,
    EnvironmentRequired,
    UnknownEnvironment,
    MissingApplication,
    // Names.
    InvalidName,
    DuplicateServer,
    EnvironmentVariableClash,
    // Engines and versions.
    EngineMismatch,
    UnknownEngine,
    UnsupportedVersion,
    EndOfLifeVersion,
    // Groups and replication.
    NoServers,
    UnknownGroup,
    GroupTypeMismatch,
    IncompatibleVersions,
    ReplicaHasSlaves,
    ChainedReplication,
    ReplicationCycle,
    CrossApplicationMongodb,
    MongodbGroupReplication,
    TooManyMembers,
    ImportAndReplicate,
    MultiplePrimaries,
    PrimaryWithoutServers,
    ReplicaIsPrimary,
    UnsupportedVendor,
    // Servers on existing hosts (the ssh provider).
    InvalidAddress,
    InvalidSshSetting,
    SshOnLocalServer,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidUtf8 => "invalid-utf8",
            Code::ControlCharacter => "control-character",
            Code::YamlSyntax => "yaml-syntax",
            Code::TabIndentation => "tab-indentation",
            Code::DuplicateKey => "duplicate-key",
            Code::YamlAnchor => "yaml-anchor",
            Code::YamlTag => "yaml-tag",
            Code::MultipleDocuments => "multiple-documents",
            Code::UnknownKey => "unknown-key",
            Code::WrongType => "wrong-type",
            Code::MissingKey => "missing-key",
            Code::InvalidValue => "invalid-value",
            Code::MixedGroupForms => "mixed-group-forms",
            Code::IgnoredSection => "ignored-section",
            Code::EnvironmentRequired => "environment-required",
            Code::UnknownEnvironment => "unknown-environment",
            Code::MissingApplication => "missing-application",
            Code::InvalidName => "invalid-name",
            Code::DuplicateServer => "duplicate-server",
            Code::EnvironmentVariableClash => "environment-variable-clash",
            Code::EngineMismatch => "engine-mismatch",
            Code::UnknownEngine => "unknown-engine",
            Code::UnsupportedVersion => "unsupported-version",
            Code::EndOfLifeVersion => "end-of-life-version",
            Code::NoServers => "no-servers",
            Code::UnknownGroup => "unknown-group",
            Code::GroupTypeMismatch => "group-type-mismatch",
            Code::IncompatibleVersions => "incompatible-versions",
            Code::ReplicaHasSlaves => "replica-has-slaves",
            Code::ChainedReplication => "chained-replication",
            Code::ReplicationCycle => "replication-cycle",
            Code::CrossApplicationMongodb => "cross-application-mongodb",
            Code::MongodbGroupReplication => "mongodb-group-replication",
            Code::TooManyMembers => "too-many-members",
            Code::ImportAndReplicate => "import-and-replicate",
            Code::MultiplePrimaries => "multiple-primaries",
            Code::PrimaryWithoutServers => "primary-without-servers",
            Code::ReplicaIsPrimary => "replica-is-primary",
            Code::UnsupportedVendor => "unsupported-vendor",
            Code::InvalidAddress => "invalid-address",
            Code::InvalidSshSetting => "invalid-ssh-setting",
            Code::SshOnLocalServer => "ssh-on-local-server",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A span with an optional short caption. The first label of a diagnostic is
/// the primary one: its position is the diagnostic's `line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Error, code, message, span)
    }

    pub fn warning(code: Code, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Warning, code, message, span)
    }

    pub fn advice(code: Code, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Advice, code, message, span)
    }

    /// An error about a command-line value: it points nowhere in the file.
    pub fn command_line_error(code: Code, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    fn new(severity: Severity, code: Code, message: impl Into<String>, span: Span) -> Self {
        Self {
            severity,
            code,
            message: message.into(),
            labels: vec![Label { span, text: None }],
            help: None,
        }
    }

    /// Captions the primary label.
    pub fn with_caption(mut self, text: impl Into<String>) -> Self {
        if let Some(primary) = self.labels.first_mut() {
            primary.text = Some(text.into());
        }
        self
    }

    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: Some(text.into()),
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn primary_span(&self) -> Span {
        self.labels
            .first()
            .map(|label| label.span)
            .unwrap_or_default()
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Where the diagnostic points, `file:line:column`, or `command line`
    /// for one about a flag (it has no place in the file).
    fn place(&self, source: &SourceFile) -> String {
        match self.labels.first() {
            Some(label) => format!(
                "{}:{}",
                escape_controls(source.name()),
                source.location(label.span.start)
            ),
            None => "command line".to_string(),
        }
    }

    /// `file:line:column: severity[code]: message`, followed by an indented
    /// `help:` line. Used in tests; control characters are escaped.
    pub fn to_compact_string(&self, source: &SourceFile) -> String {
        let mut out = self.to_short_line_without_help(source);
        if let Some(help) = &self.help {
            out.push_str("\n    help: ");
            out.push_str(&escape_controls(help));
        }
        out
    }

    /// Exactly one line, for `validate --format short`: the help, when
    /// there is one, follows the message in parentheses.
    pub fn to_short_line(&self, source: &SourceFile) -> String {
        let mut out = self.to_short_line_without_help(source);
        if let Some(help) = &self.help {
            out.push_str(" (help: ");
            out.push_str(&escape_controls(help));
            out.push(')');
        }
        out
    }

    fn to_short_line_without_help(&self, source: &SourceFile) -> String {
        format!(
            "{}: {}[{}]: {}",
            self.place(source),
            self.severity.as_str(),
            self.code,
            escape_controls(&self.message)
        )
    }

    /// A JSON object for `validate --format json`.
    pub fn to_json(&self, source: &SourceFile) -> serde_json::Value {
        let at = |offset| source.location(offset);
        let labels: Vec<_> = self
            .labels
            .iter()
            .map(|label| {
                let (start, end) = (at(label.span.start), at(label.span.end));
                serde_json::json!({
                    "line": start.line, "column": start.column,
                    "end_line": end.line, "end_column": end.column,
                    "text": label.text,
                })
            })
            .collect();
        // A command-line diagnostic has no place: file, line and column are null.
        let place = self.labels.first().map(|label| at(label.span.start));
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": place.map(|_| source.name()),
            "line": place.map(|p| p.line),
            "column": place.map(|p| p.column),
            "labels": labels,
            "help": self.help,
        })
    }
}

/// The diagnostics of one run, in source order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(diagnostics);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Orders by position so output reads top to bottom; the sort is stable,
    /// so diagnostics at one position keep the order the checks found them.
    pub(crate) fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.primary_span().start, d.severity));
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
