//! The book and the README name files of the repository (in backticks, or as link targets):
//! each must exist, so a moved or renamed file cannot leave a chapter pointing nowhere. (Links
//! between chapters and to the API are intra-doc links, which `cargo doc` checks with warnings
//! denied.)

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The top-level entries a repository path starts with.
const TOPS: [&str; 12] = [
    "src/",
    "crates/",
    "sample/",
    "tests/",
    "book/",
    "benches/",
    "fuzz/",
    "inf/",
    ".ci/",
    ".github/",
    ".cargo/",
    "Makefile.toml",
];

/// Candidate repository paths in `text`: backticked spans and `](...)` link targets that start
/// with a top-level entry, cut at the first space (a command line names its file first).
fn paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 1 {
            found.extend(span.split_whitespace().map(str::to_owned));
        }
    }
    for link in text.split("](").skip(1) {
        if let Some(end) = link.find(')') {
            found.push(link[..end].to_owned());
        }
    }
    found
        .into_iter()
        .map(|p| p.trim_end_matches([',', '.', ':', ';', ')']).to_owned())
        .filter(|p| TOPS.iter().any(|top| p.starts_with(top)))
        .filter(|p| !p.contains(['*', '<', '{', '$']))
        .collect()
}

#[test]
fn every_repository_path_the_book_names_exists() {
    let root = root();
    let mut documents: Vec<PathBuf> = std::fs::read_dir(root.join("book/src"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    documents.push(root.join("README.md"));
    let mut checked = 0;
    let mut missing = Vec::new();
    for document in &documents {
        let text = std::fs::read_to_string(document).unwrap();
        for path in paths(&text) {
            checked += 1;
            if !root.join(&path).exists() {
                missing.push(format!("{}: {path}", document.display()));
            }
        }
    }
    assert!(missing.is_empty(), "paths that do not exist:\n{}", missing.join("\n"));
    assert!(checked > 40, "only {checked} paths found: is the scan still finding them?");
}

#[test]
fn the_scan_finds_paths_and_leaves_the_rest() {
    let text = "see `sample/core/src/pin.rs`, run `cargo test -p x`, \
                `bash .ci/run` and [the sheet](book/images/contact-sheet.png); `target/x`";
    assert_eq!(paths(text), ["sample/core/src/pin.rs", ".ci/run", "book/images/contact-sheet.png"]);
}
