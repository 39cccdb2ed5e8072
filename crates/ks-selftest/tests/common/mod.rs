//! What the self-test's host tests share.

use std::fmt::Write as _;

use ks_selftest::{Report, Summary};

/// Runs `f` with a report that collects its lines, and returns the summary and the lines.
pub fn collect(f: impl FnOnce(Report<'_>) -> Summary) -> (Summary, Vec<String>) {
    let mut lines = Vec::new();
    let mut sink = |line: std::fmt::Arguments<'_>| {
        let mut text = String::new();
        text.write_fmt(line).expect("formatting into a String succeeds");
        lines.push(text);
    };
    let summary = f(Report::new(&mut sink));
    (summary, lines)
}
