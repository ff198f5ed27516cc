use dbgroups_manifest::{ParseOptions, Parsed, SourceFile};

pub(crate) fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Parses manifest text as if it were `manifest.yml`.
pub(crate) fn parse_text(text: &str, options: &ParseOptions) -> (SourceFile, Parsed) {
    let source = SourceFile::new("manifest.yml", text);
    let parsed = dbgroups_manifest::parse(&source, options);
    (source, parsed)
}

/// Every diagnostic as `manifest.yml:LINE:COLUMN: severity[code]: message`
/// (with its help line), the form the rule tests assert on.
pub(crate) fn diagnose(text: &str) -> String {
    diagnose_with(text, &ParseOptions::default())
}

pub(crate) fn diagnose_with(text: &str, options: &ParseOptions) -> String {
    let (source, parsed) = parse_text(text, options);
    parsed
        .diagnostics
        .iter()
        .map(|d| d.to_compact_string(&source))
        .collect::<Vec<_>>()
        .join("\n")
}
