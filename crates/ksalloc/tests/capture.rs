//! `ksalloc capture` as a person runs it: the sample driver streamed in the host, the JSON
//! summary, the contact sheet, the pool failing under it, and bad arguments.

use std::process::{Command, Output};

fn ksalloc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksalloc")).args(args).output().unwrap()
}

/// The last line of standard output, as JSON.
fn summary(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ksalloc-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn rgb24_streams_checked_frames_and_draws_the_contact_sheet() {
    let png = scratch("rgb24.png");
    let png_arg = png.to_str().unwrap();
    let output = ksalloc(&[
        "capture",
        "--format",
        "rgb24:320x240",
        "--frames",
        "90",
        "--png",
        png_arg,
        "--json",
        "--speed",
        "10",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("owner: upstream: its item requires MUST_ALLOCATE"), "{stdout}");
    let json = summary(&output);
    assert!(json["frames_delivered"].as_u64().unwrap() >= 80, "{json}");
    assert_eq!(json["frames_out_of_order"], 0, "{json}");
    assert_eq!(json["bad_content"], 0, "{json}");
    assert_eq!(json["allocator"]["bad_frees"], 0, "{json}");
    assert_eq!(json["allocator"]["frames"], 4, "{json}");
    assert_eq!(json["leaked_bytes"], 0, "{json}");
    assert_eq!(json["own_allocator"], true, "{json}");
    assert_eq!(json["plan"]["frame_size"], 320 * 240 * 3, "{json}");
    assert_eq!(json["violations"].as_array().map(Vec::len), Some(0), "{json}");
    assert_eq!(json["png"], png_arg);

    // The sheet: 12 thumbnails of 320x240 in 4 columns, 4-pixel gaps; the first thumbnail's
    // first bar is 75% white and its second 75% yellow.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (4 * 324 + 4, 3 * 244 + 4));
    let at = |x: usize, y: usize| {
        let i = (y * info.width as usize + x) * 3;
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    };
    assert_eq!(at(4 + 20, 4 + 60), [191, 191, 191]);
    assert_eq!(at(4 + 60, 4 + 60), [191, 191, 0]);
}

#[test]
fn a_failing_pool_degrades_or_refuses_to_start_without_leaking() {
    for k in ["5", "7", "13"] {
        let output =
            ksalloc(&["capture", "--frames", "30", "--fail-every", k, "--json", "--speed", "10"]);
        let code = output.status.code();
        assert!(matches!(code, Some(0 | 1)), "{output:?}");
        let json = summary(&output);
        assert_eq!(json["leaked_bytes"], 0, "{json}");
        assert_eq!(json["violations"].as_array().map(Vec::len), Some(0), "{json}");
        assert_eq!(json["status"].as_i64(), code.map(i64::from), "{json}");
        if code == Some(1) {
            assert!(json["not_started"]["step"].is_string(), "{json}");
        }
    }
}

#[test]
fn bad_arguments_are_named_and_exit_2() {
    for (args, expected) in [
        (&["capture", "--format", "nv12:320x240"][..], "unknown subtype \"nv12\""),
        (&["capture", "--format", "rgb24:800x600"][..], "800x600 is not in the pin's data ranges"),
        (&["capture", "--frames", "0"][..], "--frames 0: must be 1 to"),
        (&["capture", "--fail-every", "0"][..], "--fail-every 0"),
    ] {
        let output = ksalloc(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
