//! The repository stands alone: a clone has no sibling directory holding
//! the design document, so no file may send a reader (or a build) there,
//! nor name that document. docs/reference.md is the reference.

use crate::common::{files_under, repo_path};

#[test]
fn no_file_refers_outside_the_repository() {
    // Spelt in pieces, so that this file does not match itself.
    let outside = [["..", "/shared"].concat(), ["DESIGN", ".md"].concat()];
    let files = files_under(&repo_path(""), &["target", ".git"]);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "the walk found the repository's files"
    );
    let mut found = Vec::new();
    for file in &files {
        // Binary files cannot hold a reference a reader follows.
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            if outside.iter().any(|needle| line.contains(needle.as_str())) {
                let relative = file.strip_prefix(repo_path("")).unwrap_or(file);
                found.push(format!("{}:{}: {line}", relative.display(), index + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_reference_is_linked_from_the_readme() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    assert!(readme.contains("(docs/reference.md)"), "{readme}");
    assert!(repo_path("docs/reference.md").is_file());
}
