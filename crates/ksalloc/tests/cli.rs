//! `ksalloc framing decode` as a user runs it: real sample framings, crafted bad ones, stdin,
//! and the exit statuses 0 (valid), 1 (errors) and 2 (unreadable or unparsable).

use std::path::{Path, PathBuf};

mod common;
use common::ksalloc;

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
fn usage_errors_have_a_status_of_their_own() {
    for args in [
        &["framing", "decode", "--legacy", "--request", "-"][..],
        &["framing", "decode", "--lenient", "-"],
        &["framing", "decode", "--bogus", "-"],
        &["framing", "negotiate", "only-one"],
        &["frobnicate"],
    ] {
        let output = ksalloc(args, Some(&[]));
        assert_eq!(output.status.code(), Some(64), "{args:?}: {}", text(&output.stderr));
        assert!(text(&output.stderr).contains("Usage:"), "{args:?}");
    }
    let output = ksalloc(&["--help"], None);
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    for command in ["framing", "capture"] {
        assert!(help.contains(command), "{help}");
    }
    assert!(help.contains("64 a usage error"), "{help}");
    // -h, --help and `help` say the same.
    assert_eq!(text(&ksalloc(&["-h"], None).stdout), help);
    assert_eq!(text(&ksalloc(&["help"], None).stdout), help);
    assert_eq!(ksalloc(&["framing", "negotiate", "--help"], None).status.code(), Some(0));
    let capture = text(&ksalloc(&["capture", "--help"], None).stdout);
    assert_eq!(text(&ksalloc(&["capture", "-h"], None).stdout), capture);
    for range in ["1 to 100000", "0.1 to 100", "at least 1", "64 a usage error"] {
        assert!(capture.contains(range), "{range}: {capture}");
    }
}

#[test]
fn an_invalid_framing_says_why_on_standard_error() {
    let mut bytes = avshws();
    bytes[24 + 48] = 5; // FramingItem[0].FileAlignment = 5
    let output = ksalloc(&["framing", "decode", "-"], Some(&bytes));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("ksalloc: -: INVALID: 1 error, 0 warnings"), "{stderr}");
    assert!(
        stderr.contains("FramingItem[0].FileAlignment: 0x5 is not an alignment mask"),
        "{stderr}"
    );
    // A valid one writes nothing there.
    assert!(ksalloc(&["framing", "decode", "-"], Some(&avshws())).stderr.is_empty());
}

#[test]
fn json_that_is_not_an_object_is_named_as_json() {
    for (input, kind) in
        [(&b"[]"[..], "not an array"), (b"\"x\"", "not a string"), (b" 42\n", "not a number")]
    {
        let output = ksalloc(&["framing", "decode", "-"], Some(input));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("a JSON framing is an object"), "{stderr}");
        assert!(stderr.contains(kind), "{stderr}");
        assert!(!stderr.contains("argument(s)"), "{stderr}");
    }
    // The sample JSON file of many framings is an array: refused as such, not as a macro line.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/framings.json");
    if corpus.exists() {
        let output = ksalloc(&["framing", "decode", corpus.to_str().unwrap()], None);
        assert!(text(&output.stderr).contains("not an array"), "{}", text(&output.stderr));
    }
    // A broken array is a JSON syntax error.
    let output = ksalloc(&["framing", "decode", "-"], Some(b"[1, 2"));
    assert_eq!(output.status.code(), Some(2));
    assert!(!text(&output.stderr).contains("argument(s)"), "{}", text(&output.stderr));
    // An object after a UTF-8 byte order mark is read as JSON.
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend_from_slice(br#"{"items": [{"memory_type": "KernelNonPaged"}]}"#);
    let output = ksalloc(&["framing", "decode", "-"], Some(&bom));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn a_legacy_framing_decoded_as_extended_gets_a_hint() {
    let legacy = words(&[2, 0, 2, 153_600, 0, 0]);
    let output = ksalloc(&["framing", "decode", "-"], Some(&legacy));
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("24 bytes is a KSALLOCATOR_FRAMING"), "{stderr}");
    assert!(stderr.contains("--legacy") && stderr.contains("--request"), "{stderr}");
}

#[test]
fn legacy_decoding_wants_exactly_24_bytes() {
    let output = ksalloc(&["framing", "decode", "--request", "-"], Some(&avshws()));
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "112 bytes, but the structure is exactly 24 (it parses as a KSALLOCATOR_FRAMING_EX"
        ),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    let mut long = words(&[2, 0, 2, 153_600, 0, 0]);
    long.push(0);
    assert_eq!(
        ksalloc(&["framing", "decode", "--legacy", "-"], Some(&long)).status.code(),
        Some(2)
    );
}

#[test]
fn decode_reads_json_and_macro_lines_too() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let declare =
        ksalloc(&["framing", "decode", data.join("avshws-declare.txt").to_str().unwrap()], None);
    let stdout = text(&declare.stdout);
    assert_eq!(declare.status.code(), Some(0), "{stdout}{}", text(&declare.stderr));
    assert!(stdout.starts_with("KSALLOCATOR_FRAMING_EX: 112 bytes, 1 item\n"), "{stdout}");
    assert!(stdout.contains("FramingRange           8192..=8192 stepping 1"), "{stdout}");
    let sink = ksalloc(&["framing", "decode", data.join("sink.json").to_str().unwrap()], None);
    let stdout = text(&sink.stdout);
    assert_eq!(sink.status.code(), Some(0), "{stdout}{}", text(&sink.stderr));
    assert!(stdout.contains("MemoryType             DontCare"), "{stdout}");
    // A JSON file with an error names its line instead of misreading the bytes as CountItems.
    let bad = scratch(
        "decode-bad.json",
        b"{\n  \"items\": [\n    { \"memory_type\": \"Kernel\" }\n  ]\n}",
    );
    let output = ksalloc(&["framing", "decode", bad.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("line 3: items[0].memory_type: unknown memory type"), "{stderr}");
    assert!(!stderr.contains("CountItems"), "{stderr}");
}

#[test]
fn decode_json_output() {
    let mut bytes = avshws();
    bytes[24 + 48] = 5; // FramingItem[0].FileAlignment = 5
    bytes[4] = 1; // PinFlags
    let output = ksalloc(&["framing", "decode", "--json", "-"], Some(&bytes));
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["structure"], "KSALLOCATOR_FRAMING_EX");
    assert_eq!((report["bytes"].as_u64(), report["count_items"].as_u64()), (Some(112), Some(1)));
    assert_eq!(
        (report["valid"].as_bool(), report["errors"].as_u64(), report["warnings"].as_u64()),
        (Some(false), Some(1), Some(1))
    );
    let item = &report["items"][0];
    assert_eq!(item["memory_type"], "KernelNonPaged");
    assert_eq!(item["memory_type_guid"], "4A6D5FC4-7895-11D1-B069-00A0C9062802");
    assert_eq!(item["flag_names"], serde_json::json!(["SYSTEM_MEMORY", "PREFERENCES_ONLY"]));
    assert_eq!(item["file_alignment"], 5);
    assert_eq!(
        item["physical_range"],
        serde_json::json!({ "min": 153_600, "max": 153_600, "stepping": 0 })
    );
    assert_eq!(report["trailing_bytes"], 0);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings[0]["severity"], "warning");
    assert_eq!(findings[0]["field"], "PinFlags");
    assert_eq!(
        findings[1],
        serde_json::json!({
            "severity": "error",
            "item": 0,
            "field": "FileAlignment",
            "message": "0x5 is not an alignment mask (2^k - 1, e.g. FILE_QUAD_ALIGNMENT = 7)",
        })
    );

    let query = words(&[2, 0, 2, 153_600, 0, 0]);
    let output = ksalloc(&["framing", "decode", "--json", "--legacy", "-"], Some(&query));
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (report["structure"].as_str(), report["role"].as_str()),
        (Some("KSALLOCATOR_FRAMING"), Some("query"))
    );
    assert_eq!(report["flag_names"], serde_json::json!(["SYSTEM_MEMORY"]));
    assert_eq!(
        (report["frame_size"].as_u64(), report["pool_type_name"].as_str()),
        (Some(153_600), Some("NonPagedPool"))
    );

    // Unreadable input: the same error object as negotiate's.
    let output = ksalloc(&["framing", "decode", "--json", "-"], Some(&avshws()[..50]));
    assert_eq!(output.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (error["status"].as_u64(), error["kind"].as_str()),
        (Some(2), Some("unreadable_input"))
    );
    assert!(error["error"].as_str().unwrap().contains("CountItems 1 needs 112 bytes"));
}

mod negotiate {
    use super::*;

    const SINK_JSON: &str = r#"{
  "items": [
    { "memory_type": "DontCare", "flags": ["SYSTEM_MEMORY", "PREFERENCES_ONLY"] }
  ]
}"#;

    const AVSHWS_MACRO: &str = "DECLARE_SIMPLE_FRAMING_EX(
    CapturePinAllocatorFraming,
    STATICGUIDOF (KSMEMORY_TYPE_KERNEL_NONPAGED),
    KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY |
        KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY,
    2,
    0,
    2 * PAGE_SIZE,
    2 * PAGE_SIZE
    );";

    fn rgb24() -> String {
        samples().join("wds-avshws-capture.runtime-rgb24-320x240.bin").to_str().unwrap().to_owned()
    }

    #[test]
    fn raw_bytes_against_a_json_sink() {
        let sink = scratch("sink.json", SINK_JSON.as_bytes());
        let output = ksalloc(&["framing", "negotiate", &rgb24(), sink.to_str().unwrap()], None);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
        assert!(stdout.starts_with("plan: the downstream pin owns the allocator\n"), "{stdout}");
        assert!(stdout.contains("  Frames           2\n  FrameSize        230400\n"), "{stdout}");
        assert!(stdout.contains("owner: downstream: neither pin must allocate"), "{stdout}");
        assert!(stdout.contains("KSALLOCATOR_FRAMING for the allocator create request: 02000000 00000000 02000000 00840300"));
    }

    #[test]
    fn json_output_has_the_documented_keys() {
        let sink = scratch("sink2.json", SINK_JSON.as_bytes());
        let output = ksalloc(
            &["framing", "negotiate", "--json", "-", sink.to_str().unwrap()],
            Some(AVSHWS_MACRO.as_bytes()),
        );
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(plan["owner"], "downstream");
        assert_eq!(plan["frames"], 2);
        assert_eq!(plan["frame_size"], 8192);
        assert_eq!(plan["file_alignment"], 0);
        assert_eq!(plan["pool_type"], 0);
        assert_eq!(plan["options_flags"], 2);
        assert_eq!(plan["upstream_item"], 0);
        assert_eq!(plan["downstream_item"], 0);
        assert!(plan["reasons"].as_array().unwrap().len() >= 6);
    }

    #[test]
    fn the_six_arguments_alone_are_accepted() {
        let six = "STATICGUIDOF(KSMEMORY_TYPE_KERNEL_NONPAGED), SYSTEM_MEMORY | PREFERENCES_ONLY, 4, FILE_64_BYTE_ALIGNMENT, 320*240*2, 320*240*2";
        let path = scratch("six.txt", six.as_bytes());
        let output = ksalloc(
            &["framing", "negotiate", "--json", path.to_str().unwrap(), path.to_str().unwrap()],
            None,
        );
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            (plan["frames"].as_u64(), plan["frame_size"].as_u64(), plan["file_alignment"].as_u64()),
            (Some(4), Some(153_600), Some(63))
        );
    }

    #[test]
    fn conflicts_give_status_1_and_are_named() {
        // Physical ranges as tight as the optimal ones, so no size fits both.
        let hard = |min: u32, max: u32| {
            format!(
                r#"{{ "items": [ {{ "memory_type": "KernelNonPaged", "flags": ["SYSTEM_MEMORY"], "frames": 2,
                   "optimal_range": {{ "min": {min}, "max": {max} }}, "physical_range": {{ "min": {min}, "max": {max} }} }} ] }}"#
            )
        };
        let small = scratch("small.json", hard(100, 200).as_bytes());
        let large = scratch("large.json", hard(500, 600).as_bytes());
        let output = ksalloc(
            &["framing", "negotiate", small.to_str().unwrap(), large.to_str().unwrap()],
            None,
        );
        assert_eq!(output.status.code(), Some(1));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("cannot negotiate: ranges disjoint and neither side prefers-only"),
            "{stderr}"
        );
        let paged =
            scratch("paged.txt", b"KSMEMORY_TYPE_KERNEL_PAGED, SYSTEM_MEMORY, 2, 0, 100, 200");
        let output = ksalloc(
            &["framing", "negotiate", "--json", small.to_str().unwrap(), paged.to_str().unwrap()],
            None,
        );
        assert_eq!(output.status.code(), Some(1));
        let error: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(error["kind"], "memory_types_disjoint");
        assert_eq!(error["status"], 1);
        assert!(
            error["error"].as_str().unwrap().starts_with("cannot negotiate: memory types disjoint")
        );
        // Unreadable input gets the same shape, on stdout too.
        let output = ksalloc(
            &["framing", "negotiate", "--json", "/nonexistent", paged.to_str().unwrap()],
            None,
        );
        assert_eq!(output.status.code(), Some(2));
        let error: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            (error["status"].as_u64(), error["kind"].as_str()),
            (Some(2), Some("unreadable_input"))
        );
        assert!(error["error"].as_str().unwrap().contains("cannot read /nonexistent"));
    }

    #[test]
    fn text_errors_name_the_line_and_field() {
        let cases: [(&str, &str, &str); 10] = [
            (
                "bad-type.json",
                "{\n  \"items\": [ {\n    \"frames\": \"two\"\n  } ]\n}",
                "line 3: items[0].frames: invalid type: string \"two\", expected u32 (column 5)\n",
            ),
            (
                "bad-alignment.json",
                "{\n  \"items\": [\n    { \"memory_type\": \"System\",\n      \"alignment\": \"2 * FOO\"\n    }\n  ]\n}",
                "line 4: items[0].alignment: cannot read \"FOO\" (column 7)",
            ),
            (
                "syntax.json",
                "{\n  \"items\": [\n    { \"memory_type\": \"System\", }\n  ]\n}",
                "line 3: trailing comma (column 32)",
            ),
            (
                "trailing.json",
                "{ \"items\": [ { \"memory_type\": \"System\" } ] }\n{ }",
                "line 2: trailing characters (column 1)",
            ),
            (
                "bad-multiline.txt",
                "DECLARE_SIMPLE_FRAMING_EX(\n    Name,\n    STATICGUIDOF(KSMEMORY_TYPE_SYSTEM),\n    0,\n    2,\n    5 +,\n    100,\n    100);",
                "line 6: Alignment: the expression ends too early",
            ),
            (
                "bad-memory.json",
                "{\n  \"items\": [\n    { \"memory_type\": \"Kernel\" }\n  ]\n}",
                "line 3: items[0].memory_type: unknown memory type \"Kernel\"",
            ),
            (
                "bad-field.json",
                "{\n  \"items\": [ { \"memory_type\": \"System\",\n \"frame\": 2 } ]\n}",
                "line 3: items[0].frame: unknown field `frame`",
            ),
            (
                "bad-flag.json",
                "{ \"items\": [ { \"memory_type\": \"System\", \"flags\": [\"NOPE\"] } ] }",
                "line 1: items[0].flags: unknown flag \"NOPE\"",
            ),
            (
                "bad-arg.txt",
                "\n\nDECLARE_SIMPLE_FRAMING_EX(x, STATICGUIDOF(KSMEMORY_TYPE_SYSTEM), 0, 2, 0, 2 * FOO, 100);",
                "line 3: MinFrameSize: cannot read \"FOO\"",
            ),
            (
                "bad-count.txt",
                "KSMEMORY_TYPE_SYSTEM, 0, 2",
                "line 1: expected the arguments of DECLARE_SIMPLE_FRAMING_EX",
            ),
        ];
        let sink = scratch("sink3.json", SINK_JSON.as_bytes());
        for (name, content, expected) in cases {
            let path = scratch(name, content.as_bytes());
            let output = ksalloc(
                &["framing", "negotiate", path.to_str().unwrap(), sink.to_str().unwrap()],
                None,
            );
            assert_eq!(output.status.code(), Some(2), "{name}");
            let stderr = text(&output.stderr);
            assert!(stderr.contains(expected), "{name}: {stderr}");
            assert!(!stderr.contains(" at line "), "{name}: position given twice: {stderr}");
            assert!(!stderr.contains(".?"), "{name}: no made-up field path: {stderr}");
        }
        let output = ksalloc(&["framing", "negotiate", "-", "-"], Some(b""));
        assert_eq!(output.status.code(), Some(2));
        assert!(text(&output.stderr).contains("can only be given once"));
        let output =
            ksalloc(&["framing", "negotiate", "/nonexistent", sink.to_str().unwrap()], None);
        assert_eq!(output.status.code(), Some(2));
        let truncated = scratch("truncated.bin", &avshws()[..50]);
        let output = ksalloc(
            &["framing", "negotiate", truncated.to_str().unwrap(), sink.to_str().unwrap()],
            None,
        );
        assert_eq!(output.status.code(), Some(2));
        assert!(text(&output.stderr).contains("not a KSALLOCATOR_FRAMING_EX"));
    }
}

/// The test engineer's chapter of the book.
fn chapter() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join("book/src/test-engineer.md")).unwrap()
}

/// The book shows `tests/data/sink.json` as it is.
#[test]
fn the_book_shows_the_sink_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sink = std::fs::read_to_string(root.join("tests/data/sink.json")).unwrap();
    assert!(
        chapter().contains(&format!("`tests/data/sink.json`:\n\n```json\n{sink}```")),
        "the test engineer's chapter does not show tests/data/sink.json as it is"
    );
}

/// The book shows these commands and their output; keep them true.
#[test]
fn the_book_s_decode_and_negotiation_examples() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let decoded = ksalloc(
        &[
            "framing",
            "decode",
            data.join("framings/wds-avshws-capture.runtime.bin").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(decoded.status.code(), Some(0));
    assert!(
        chapter().contains(&text(&decoded.stdout)),
        "the book shows other output than:\n{}",
        text(&decoded.stdout)
    );
    let upstream = data.join("framings/wds-avshws-capture.runtime-rgb24-320x240.bin");
    let output = ksalloc(
        &[
            "framing",
            "negotiate",
            upstream.to_str().unwrap(),
            data.join("sink.json").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(
        chapter().contains(&text(&output.stdout)),
        "the book shows other output than:\n{}",
        text(&output.stdout)
    );
    // The pasted macro line gives the declared (pre-resize) framing.
    let output = ksalloc(
        &[
            "framing",
            "negotiate",
            "--json",
            data.join("avshws-declare.txt").to_str().unwrap(),
            data.join("sink.json").to_str().unwrap(),
        ],
        None,
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((plan["frames"].as_u64(), plan["frame_size"].as_u64()), (Some(2), Some(8192)));
}
