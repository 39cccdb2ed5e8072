//! `ksalloc framing decode` as a user runs it: real sample framings, crafted bad ones, stdin,
//! and the exit statuses 0 (valid), 1 (errors) and 2 (unreadable or unparsable).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

fn ksalloc(args: &[&str], stdin: Option<&[u8]>) -> Output {
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/framings")
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ksalloc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn avshws() -> Vec<u8> {
    std::fs::read(samples().join("wds-avshws-capture.runtime.bin")).unwrap()
}

fn words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn every_sample_framing_decodes_as_valid() {
    let mut seen = 0;
    for entry in std::fs::read_dir(samples()).unwrap() {
        let path = entry.unwrap().path();
        let output = ksalloc(&["framing", "decode", path.to_str().unwrap()], None);
        let stdout = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}: {stdout}{}",
            path.display(),
            text(&output.stderr)
        );
        assert!(stdout.contains("valid: 0 errors"), "{stdout}");
        seen += 1;
    }
    assert!(seen >= 14, "only {seen} sample files");
}

#[test]
fn prints_every_field_by_name() {
    let output = ksalloc(&["framing", "decode", "-"], Some(&avshws()));
    assert_eq!(output.status.code(), Some(0));
    let expected = "\
KSALLOCATOR_FRAMING_EX: 112 bytes, 1 item
  CountItems               1
  PinFlags                 0x00000000
  OutputCompression        1/1 + 0 (identity)
  PinWeight                0
  FramingItem[0]
    MemoryType             KernelNonPaged (KSMEMORY_TYPE_KERNEL_NONPAGED {4A6D5FC4-7895-11D1-B069-00A0C9062802})
    BusType                DontCare (KS_TYPE_DONT_CARE {00000000-0000-0000-0000-000000000000})
    MemoryFlags            0x00000000
    BusFlags               0x00000000
    Flags                  0x80000002 KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY | KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY
    Frames                 2
    FileAlignment          0x00000000 (1-byte FILE_BYTE_ALIGNMENT)
    MemoryTypeWeight       0
    PhysicalRange          153600..=153600 stepping 0
    FramingRange           153600..=153600 stepping 0
      InPlaceWeight        0
      NotInPlaceWeight     0
valid: 0 errors, 0 warnings
";
    assert_eq!(text(&output.stdout), expected);
}

#[test]
fn errors_give_status_1_and_name_the_field() {
    let mut bytes = avshws();
    bytes[24 + 48] = 5; // FramingItem[0].FileAlignment = 5
    bytes[24 + 60] = 0xFF; // PhysicalRange.MaxFrameSize below its minimum
    bytes[24 + 61] = 0x00;
    bytes[24 + 62] = 0x00;
    let path = scratch("bad-alignment.bin", &bytes);
    let output = ksalloc(&["framing", "decode", path.to_str().unwrap()], None);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("INVALID: 2 errors, 0 warnings"), "{stdout}");
    assert!(
        stdout.contains("error: FramingItem[0].FileAlignment: 0x5 is not an alignment mask"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: FramingItem[0].PhysicalRange: minimum 153600 exceeds maximum 255"),
        "{stdout}"
    );
}

#[test]
fn warnings_alone_keep_status_0() {
    let mut bytes = avshws();
    bytes[4] = 1; // PinFlags
    let output = ksalloc(&["framing", "decode", "-"], Some(&bytes));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "valid: 0 errors, 1 warning\nwarning: PinFlags: reserved, should be 0 but is 0x1"
        ),
        "{stdout}"
    );
}

#[test]
fn unparsable_input_gives_status_2_with_the_reason() {
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "empty",
            Vec::new(),
            "not a KSALLOCATOR_FRAMING_EX: 0 bytes is shorter than the 24-byte header",
        ),
        ("zero-count", words(&[0, 0, 1, 1, 0, 0]), "CountItems is 0"),
        (
            "truncated",
            avshws()[..111].to_vec(),
            "CountItems 1 needs 112 bytes (24 + 88 * 1) but the buffer holds 111",
        ),
        ("overflow", words(&[u32::MAX, 0, 1, 1, 0, 0]), "CountItems 4294967295 overflows"),
    ];
    for (name, bytes, reason) in cases {
        let path = scratch(name, &bytes);
        let output = ksalloc(&["framing", "decode", path.to_str().unwrap()], None);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(reason), "{name}: {stderr}");
        assert!(output.stdout.is_empty(), "{name}: nothing is printed for unparsable input");
    }
    let output = ksalloc(&["framing", "decode", "/nonexistent/framing.bin"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot read /nonexistent/framing.bin"));
}

#[test]
fn legacy_and_request_framings() {
    // RequirementsFlags SYSTEM_MEMORY, NonPagedPool, 2 frames of 153600, byte alignment.
    let query = words(&[2, 0, 2, 153_600, 0, 0]);
    let output = ksalloc(&["framing", "decode", "--legacy", "-"], Some(&query));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("KSALLOCATOR_FRAMING (legacy property value): 24 bytes\n"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("RequirementsFlags        0x00000002 KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY"),
        "{stdout}"
    );
    assert!(stdout.contains("PoolType                 0 (NonPagedPool)"), "{stdout}");

    let output = ksalloc(&["framing", "decode", "--request", "-"], Some(&query));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("OptionsFlags             0x00000002 KSALLOCATOR_OPTIONF_SYSTEM_MEMORY"),
        "{stdout}"
    );

    // A create request for frames of size 0 with a requirement bit among its options.
    let bad = words(&[0x8 | 0x2, 0, 2, 0, 0, 0]);
    let output = ksalloc(&["framing", "decode", "--request", "-"], Some(&bad));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("error: OptionsFlags: has undefined bits 0x00000008"), "{stdout}");
    assert!(stdout.contains("error: FrameSize: is 0"), "{stdout}");
    let output = ksalloc(&["framing", "decode", "--request", "--lenient", "-"], Some(&bad));
    assert_eq!(output.status.code(), Some(1), "FrameSize 0 is still an error");
    assert!(!text(&output.stdout).contains("OptionsFlags: has undefined"));

    let output = ksalloc(&["framing", "decode", "--legacy", "-"], Some(&query[..20]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr)
            .contains("not a KSALLOCATOR_FRAMING: 20 bytes is shorter than the 24-byte header")
    );
}

#[test]
fn conflicting_options_are_usage_errors() {
    let output = ksalloc(&["framing", "decode", "--legacy", "--request", "-"], Some(&[]));
    assert_eq!(output.status.code(), Some(2));
    let output = ksalloc(&["framing", "decode", "--lenient", "-"], Some(&[]));
    assert_eq!(output.status.code(), Some(2));
}
