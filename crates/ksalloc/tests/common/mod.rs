//! What the command-line tests share: running the tool.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

/// Runs `ksalloc` with `args`, writing `stdin` to its standard input (or giving it none), and
/// returns what it did.
pub fn ksalloc(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}
