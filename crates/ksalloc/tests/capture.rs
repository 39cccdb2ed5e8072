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
        "--sink",
        "kernel",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("owner: upstream: its item requires MUST_ALLOCATE"), "{stdout}");
    assert!(stdout.contains("frames: device memory"), "{stdout}");
    let json = summary(&output);
    let delivered = json["frames_delivered"].as_u64().unwrap();
    assert!(delivered >= 80, "{json}");
    assert_eq!(json["frames_out_of_order"], 0, "{json}");
    assert_eq!(json["bad_content"], 0, "{json}");
    assert_eq!(json["sink"], "kernel", "{json}");
    assert_eq!(json["allocator"]["backend"], "common_buffer", "{json}");
    assert_eq!(json["allocator"]["bad_frees"], 0, "{json}");
    assert_eq!(json["allocator"]["frames"], 4, "{json}");
    assert_eq!(json["leaked_bytes"], 0, "{json}");
    assert_eq!(json["own_allocator"], true, "{json}");
    assert_eq!(json["plan"]["frame_size"], 320 * 240 * 3, "{json}");
    assert_eq!(json["plan"]["memory_type"], "DeviceUnknown", "{json}");
    assert_eq!(json["violations"].as_array().map(Vec::len), Some(0), "{json}");
    // Each frame one contiguous block, one mapping, every byte written by DMA.
    assert_eq!(json["dma"]["max_mappings_per_frame"], 1, "{json}");
    assert_eq!(json["dma"]["violations"], 0, "{json}");
    assert!(json["dma"]["bytes_written"].as_u64().unwrap() >= delivered * 320 * 240 * 3, "{json}");
    assert!(json["dpc_us"]["max"].as_u64().unwrap() >= json["dpc_us"]["p99"].as_u64().unwrap());
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

/// The default sink is a user-mode client: its own buffers (system memory, scattered pages),
/// the pin's system-memory item, no allocator.
#[test]
fn a_user_mode_client_gets_scattered_buffers_of_its_own() {
    let output = ksalloc(&[
        "capture",
        "--format",
        "rgb24:640x480",
        "--frames",
        "30",
        "--json",
        "--speed",
        "10",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("passed over item 0: the pin must allocate its frames"), "{stdout}");
    let json = summary(&output);
    let delivered = json["frames_delivered"].as_u64().unwrap();
    assert_eq!(delivered, 30, "{json}");
    assert_eq!(json["bad_content"], 0, "{json}");
    assert_eq!(json["sink"], "user", "{json}");
    assert_eq!(json["allocator"]["backend"], "client_buffers", "{json}");
    assert_eq!(json["own_allocator"], false, "{json}");
    assert_eq!(json["plan"]["upstream_item"], 1, "{json}");
    assert!(json["dma"]["max_mappings_per_frame"].as_u64().unwrap() > 100, "{json}");
    assert!(json["dma"]["bytes_written"].as_u64().unwrap() >= delivered * 640 * 480 * 3, "{json}");
    assert_eq!(json["dma"]["violations"], 0, "{json}");
    assert_eq!(json["leaked_bytes"], 0, "{json}");
}

/// A kernel-mode sink read from a framing file: one that needs system memory gets it from its
/// own allocator (scattered, several mappings a frame); one that insists on six frames gets six;
/// one that must allocate device memory too is refused, with the reason.
/// `ksalloc capture --frames 20 --json --speed 10 --sink FILE`, the file holding `framing`.
fn capture_with_sink_framing(name: &str, framing: &str) -> (Output, serde_json::Value) {
    let path = scratch(name);
    std::fs::write(&path, framing).unwrap();
    let args = ["capture", "--frames", "20", "--json", "--speed", "10", "--sink"];
    let output = ksalloc(&[&args[..], &[path.to_str().unwrap()]].concat());
    let json = summary(&output);
    (output, json)
}

#[test]
fn a_sink_framing_file_decides_the_buffer_type_or_is_refused_with_the_reason() {
    let (output, json) = capture_with_sink_framing(
        "system.json",
        r#"{"items":[{"memory_type":"KernelNonPaged","optimal_range":[1,4294967295]}]}"#,
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json["allocator"]["backend"], "sink_allocator", "{json}");
    assert_eq!(json["plan"]["memory_type"], "KernelNonPaged", "{json}");
    assert!(json["dma"]["max_mappings_per_frame"].as_u64().unwrap() > 1, "{json}");
    assert_eq!(json["bad_content"], 0, "{json}");

    let (output, json) = capture_with_sink_framing(
        "six.json",
        r#"{"items":[{"memory_type":"DontCare","frames":6,"alignment":"FILE_64_BYTE_ALIGNMENT","optimal_range":[1,4294967295]}]}"#,
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json["allocator"]["backend"], "common_buffer", "{json}");
    assert_eq!(
        (json["plan"]["frames"].as_u64(), json["allocator"]["frames"].as_u64()),
        (Some(6), Some(6)),
        "{json}"
    );

    let (output, json) = capture_with_sink_framing(
        "greedy.json",
        r#"{"items":[{"memory_type":"DeviceUnknown","flags":["MUST_ALLOCATE"],"optimal_range":[1,4294967295]}]}"#,
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let reason = json["not_started"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("both sides must allocate"), "{json}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("both sides must allocate"));

    let missing = scratch("missing.json");
    let output = ksalloc(&["capture", "--sink", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--sink"), "{output:?}");
}

#[test]
fn a_failing_pool_refuses_to_start_without_leaking_and_names_the_status() {
    for k in ["1", "5", "7"] {
        let output =
            ksalloc(&["capture", "--frames", "30", "--fail-every", k, "--json", "--speed", "10"]);
        let code = output.status.code();
        assert_eq!(code, Some(1), "{output:?}");
        let json = summary(&output);
        assert_eq!(json["leaked_bytes"], 0, "{json}");
        assert_eq!(json["violations"].as_array().map(Vec::len), Some(0), "{json}");
        assert_eq!(json["status"], 1, "{json}");
        assert!(json["not_started"]["step"].is_string(), "{json}");
        assert_eq!(json["not_started"]["status"], "0xC000009A", "{json}");
        assert_eq!(json["not_started"]["status_name"], "STATUS_INSUFFICIENT_RESOURCES", "{json}");
        assert_eq!(json["host_failed_allocations"], 1, "{json}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("could not start")
                && stderr.contains("STATUS_INSUFFICIENT_RESOURCES (0xC000009A)"),
            "{stderr}"
        );
    }
}

#[test]
fn fail_every_beyond_the_run_s_allocations_fails_nothing_and_says_so() {
    // The run's allocations: the driver's start, and a stream pointer clone per frame the
    // pin programs (how many of those a run makes varies a little with timing).
    let output = ksalloc(&["capture", "--frames", "10", "--json", "--speed", "10"]);
    let calls = summary(&output)["host_pool_allocations"].as_u64().unwrap();
    assert!(calls > 10);
    let k = (calls * 100).to_string();
    let output =
        ksalloc(&["capture", "--frames", "10", "--fail-every", &k, "--json", "--speed", "10"]);
    assert_eq!(output.status.code(), Some(0));
    let json = summary(&output);
    assert_eq!(json["host_failed_allocations"], 0, "{json}");
    let calls = json["host_pool_allocations"].as_u64().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("the run made {calls} pool allocations; 0 failed (every {k}th")),
        "{stdout}"
    );
}

#[test]
fn bad_option_values_are_named_and_exit_2_usage_errors_64() {
    for (args, expected) in [
        (&["capture", "--format", "nv12:320x240"][..], "unknown subtype \"nv12\""),
        (&["capture", "--format", "rgb24:800x600"][..], "800x600 is not in the pin's data ranges"),
        (&["capture", "--frames", "0"][..], "'--frames <N>': must be a whole number from 1 to"),
        (&["capture", "--frames", "abc"][..], "'--frames <N>'"),
        (&["capture", "--frames", "-1"][..], "'--frames <N>'"),
        (&["capture", "--speed", "-5"][..], "'--speed <X>': must be a number from 0.1 to 100"),
        (&["capture", "--speed", "nan"][..], "'--speed <X>'"),
        (&["capture", "--fail-every", "0"][..], "'--fail-every <K>'"),
    ] {
        let output = ksalloc(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("NaN"), "{args:?}: {stderr}");
    }
    for args in [&["capture", "--bogus"][..], &["capture", "--frames"], &["capture", "extra"]] {
        assert_eq!(ksalloc(args).status.code(), Some(64), "{args:?}");
    }
}

#[test]
fn a_contact_sheet_path_is_checked_before_streaming() {
    let directory = scratch("");
    for path in ["/nonexistent/dir/x.png", directory.to_str().unwrap()] {
        let output =
            ksalloc(&["capture", "--frames", "5", "--speed", "10", "--png", path, "--json"]);
        assert_eq!(output.status.code(), Some(2), "{path}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("--png {path}")), "{stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("frames delivered"), "streamed anyway: {stdout}");
        assert_eq!(summary(&output)["kind"], "bad_argument", "{stdout}");
    }
}

#[test]
fn a_contact_sheet_that_cannot_be_written_is_an_error() {
    if !std::path::Path::new("/dev/full").exists() {
        return; // the device that refuses every write is Linux's
    }
    let output =
        ksalloc(&["capture", "--frames", "5", "--speed", "10", "--png", "/dev/full", "--json"]);
    assert_eq!(output.status.code(), Some(74), "{output:?}");
    let json = summary(&output);
    assert_eq!(json["status"], 74, "{json}");
    assert!(json["png"].is_null(), "{json}");
    assert!(json["png_error"].as_str().is_some_and(|e| e.contains("/dev/full")), "{json}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the contact sheet could not be written"), "{stderr}");
}

/// `ksalloc capture --through LIST --json` at ten times real time: the summary.
fn through(list: &str, format: &str, frames: &str) -> (Output, serde_json::Value) {
    let args = ["capture", "--format", format, "--through", list, "--frames", frames];
    let output = ksalloc(&[&args[..], &["--json", "--speed", "10"]].concat());
    let json = summary(&output);
    (output, json)
}

fn pipe_pins(pipe: &serde_json::Value) -> Vec<&str> {
    pipe["pins"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect()
}

/// The issue's run: the overlay and the scaler on 640x480 RGB24, two pipes, every frame checked
/// at the sink (picture and mark at half size), nothing leaked.
#[test]
fn through_the_overlay_and_the_scaler_two_pipes_and_every_frame_checked() {
    let (output, json) = through("overlay,scale", "rgb24:640x480", "90");
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(json["through"], serde_json::json!(["overlay", "scale"]));
    assert_eq!(json["sink_format"], "rgb24:320x240");
    let pipes = json["pipes"].as_array().unwrap();
    assert_eq!(pipes.len(), 2, "{json}");
    assert_eq!(pipe_pins(&pipes[0]), ["cap.out", "ovl.in", "ovl.out", "scale.in"]);
    assert_eq!(pipes[0]["frame_size"], 921_600);
    assert_eq!(pipe_pins(&pipes[1]), ["scale.out", "sink.in"]);
    assert_eq!(pipes[1]["frame_size"], 230_400);
    assert_eq!(pipes[1]["owner"], "scale.out");
    assert_eq!(pipes[1]["allocator"]["backend"], "scaler_pool");
    for pipe in pipes {
        assert_eq!(pipe["allocator"]["bad_frees"], 0, "{json}");
        assert_eq!(pipe["allocator"]["failed_allocations"], 0, "{json}");
        assert!(pipe["allocator"]["allocations"].as_u64().unwrap() >= 90, "{json}");
    }
    assert_eq!(json["frames_delivered"], 90, "{json}");
    assert_eq!(json["bad_content"], 0, "{json}");
    assert_eq!(json["frames_out_of_order"], 0, "{json}");
    assert_eq!(json["leaked_bytes"], 0, "{json}");
    assert_eq!(json["violations"].as_array().map(Vec::len), Some(0), "{json}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("pipe 2: scale.out -> sink.in"), "{stdout}");
    assert!(stdout.contains("through: overlay, scale (rgb24:320x240 at the sink)"), "{stdout}");
}

#[test]
fn through_one_transform_one_pipe_or_two() {
    let (output, json) = through("overlay", "yuy2:320x240", "20");
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(json["pipes"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json["bad_content"], 0, "{json}");
    let (output, json) = through("scale", "yuy2:640x480", "20");
    assert_eq!(output.status.code(), Some(0), "{json}");
    assert_eq!(json["pipes"].as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(json["sink_format"], "yuy2:320x240", "{json}");
    assert_eq!(json["bad_content"], 0, "{json}");
}

#[test]
fn through_what_cannot_be_built_is_named() {
    // The scaler takes 640x480 frames only.
    let (output, json) = through("scale", "yuy2:320x240", "5");
    assert_eq!(output.status.code(), Some(2));
    assert!(json["error"].as_str().unwrap().contains("scale takes 640x480 frames"), "{json}");
    let (output, json) = through("scale,scale", "yuy2:640x480", "5");
    assert_eq!(output.status.code(), Some(2));
    assert!(json["error"].as_str().unwrap().contains("reaching it are yuy2:320x240"), "{json}");
    // A chain ends in a kernel-mode pin.
    let output = ksalloc(&["capture", "--through", "overlay", "--sink", "user", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(summary(&output)["error"].as_str().unwrap().contains("--sink user"));
    // An unknown transform is a bad value.
    let output = ksalloc(&["capture", "--through", "overlay,blur"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown transform \"blur\""));
}

/// Every pool allocation of a chain's run (the driver's and the allocators', through the start
/// of the stream) failing in turn: each run streams or does not start, naming the step, and
/// nothing leaks.
#[test]
fn through_a_chain_every_allocation_failing_in_turn_leaks_nothing() {
    let mut k = 1;
    loop {
        let args = ["capture", "--format", "yuy2:640x480", "--through", "overlay,scale"];
        let k_text = k.to_string();
        let more = ["--frames", "3", "--speed", "20", "--json", "--fail-every", k_text.as_str()];
        let output = ksalloc(&[&args[..], &more[..]].concat());
        let json = summary(&output);
        assert_eq!(json["leaked_bytes"], 0, "K={k}: {json}");
        assert_eq!(json["violations"].as_array().map(Vec::len), Some(0), "K={k}: {json}");
        match output.status.code() {
            Some(0) => {
                if json["host_failed_allocations"] == 0 {
                    break; // K is beyond the run's allocations
                }
            }
            Some(1) => assert!(json["not_started"]["step"].is_string(), "K={k}: {json}"),
            other => panic!("K={k}: exit {other:?}: {json}"),
        }
        k += 1;
        assert!(k < 200, "the run makes fewer than 200 allocations");
    }
    assert!(k > 10, "a chain's run makes more than ten allocations (K reached {k})");
}
