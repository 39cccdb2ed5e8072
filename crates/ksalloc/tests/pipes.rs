//! `ksalloc framing pipes` as a user runs it: the example graphs of tests/data/pipes, graphs
//! that are not chains, and input that names the wrong thing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

mod common;
use common::ksalloc;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/pipes").join(name)
}

fn graph(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(example(name)).unwrap()).unwrap()
}

/// Runs `framing pipes --json` on `graph` through standard input: the exit status and the one
/// JSON object printed.
fn plan(graph: &Value) -> (Option<i32>, Value) {
    let output = ksalloc(&["framing", "pipes", "--json", "-"], Some(graph.to_string().as_bytes()));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout:?} {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), value)
}

fn pins(pipe: &Value) -> Vec<&str> {
    pipe["pins"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect()
}

#[test]
fn an_in_place_overlay_shares_the_capture_pipe() {
    let output = ksalloc(&["framing", "pipes", example("overlay.json").to_str().unwrap()], None);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("pipe 1: cap.out -> ovl.in -> ovl.out -> sink.in\n"), "{stdout}");
    assert!(!stdout.contains("pipe 2"), "{stdout}");
    assert!(stdout.contains("ovl.in modifies frames in place"), "{stdout}");

    let (status, value) = plan(&graph("overlay.json"));
    assert_eq!(status, Some(0));
    let pipes = value["pipes"].as_array().unwrap();
    assert_eq!(pipes.len(), 1);
    let pipe = &pipes[0];
    assert_eq!(pins(pipe), ["cap.out", "ovl.in", "ovl.out", "sink.in"]);
    // The overlay's system-memory items rule out the capture pin's device memory (item 0).
    assert_eq!(pipe["items"], serde_json::json!([1, 0, 0, 0]));
    assert_eq!(pipe["memory_type"], "KernelNonPaged");
    assert_eq!(pipe["frame_size"], 640 * 480 * 3);
    // The largest request (3) and the two frames the overlay holds.
    assert_eq!(pipe["frames"], 5);
    assert_eq!(pipe["file_alignment"], 7);
    assert_eq!(pipe["pool_type"], 0);
}

#[test]
fn a_scaler_starts_a_pipe_of_a_quarter_of_the_size() {
    let (status, value) = plan(&graph("scale.json"));
    assert_eq!(status, Some(0), "{value}");
    let pipes = value["pipes"].as_array().unwrap();
    assert_eq!(pipes.len(), 2);
    assert_eq!(pins(&pipes[0]), ["cap.out", "ovl.in", "ovl.out", "scale.in"]);
    assert_eq!(pipes[0]["frame_size"], 921_600);
    assert_eq!(pins(&pipes[1]), ["scale.out", "sink.in"]);
    assert_eq!(pipes[1]["owner"], "scale.out");
    assert_eq!(pipes[1]["frame_size"], 230_400);
    assert_eq!(pipes[1]["frames"], 3);
    let reasons: Vec<&str> =
        pipes[1]["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("921600 through 1:4 + 0, required (an item insists)")),
        "{reasons:?}"
    );
    // The create request's bytes carry the pipe's frames and size.
    let bytes = pipes[1]["framing_bytes"].as_str().unwrap().replace(' ', "");
    assert_eq!(&bytes[16..24], "03000000");
    assert_eq!(&bytes[24..32], format!("{:08x}", 230_400u32.swap_bytes()));
}

#[test]
fn two_owners_in_one_pipe_are_a_conflict_that_names_them() {
    let path = example("conflict.json");
    let output = ksalloc(&["framing", "pipes", path.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("the pipe from scale.out to enc.in: both sides must allocate"),
        "{stderr}"
    );
    let (status, value) = plan(&graph("conflict.json"));
    assert_eq!(status, Some(1));
    assert_eq!(value["status"], 1);
    assert_eq!(value["kind"], "both_must_allocate");
}

#[test]
fn the_order_of_filters_and_connections_in_the_file_does_not_matter() {
    let mut reordered = graph("scale.json");
    reordered["filters"].as_array_mut().unwrap().reverse();
    reordered["connections"].as_array_mut().unwrap().reverse();
    assert_eq!(plan(&reordered), plan(&graph("scale.json")));
}

#[test]
fn an_invalid_framing_is_named_by_its_pin() {
    let mut broken = graph("scale.json");
    // An alignment that is not 2^n - 1.
    broken["filters"][2]["pins"][1]["framing"]["items"][0]["alignment"] = 6.into();
    let (status, value) = plan(&broken);
    assert_eq!(status, Some(1));
    assert_eq!(value["kind"], "invalid_framing");
    let error = value["error"].as_str().unwrap();
    assert!(error.contains("scale.out: the framing is invalid"), "{error}");
}

fn refused(graph: &Value, status: i32, kind: &str, wanted: &str) {
    let (got, value) = plan(graph);
    assert_eq!(got, Some(status), "{value}");
    assert_eq!(value["kind"], kind, "{value}");
    let error = value["error"].as_str().unwrap();
    assert!(error.contains(wanted), "{error:?} lacks {wanted:?}");
}

#[test]
fn input_that_names_the_wrong_thing_is_unreadable_and_says_where() {
    let mut g = graph("overlay.json");
    g["connections"][1][1] = "sink.input".into();
    refused(&g, 2, "unreadable_input", "connections[1][1]: no pin \"sink.input\" (the pins: ");

    let mut g = graph("overlay.json");
    g["connections"][0] = serde_json::json!(["ovl.in", "cap.out"]);
    refused(&g, 2, "unreadable_input", "connections[0][0]: a connection starts at an output");

    let mut g = graph("overlay.json");
    g["filters"][2]["name"] = "ovl".into();
    refused(&g, 2, "unreadable_input", "filters[2].name: \"ovl\" is also the name of filters[1]");

    let mut g = graph("overlay.json");
    g["filters"][0]["name"] = "cap.0".into();
    refused(&g, 2, "unreadable_input", "filters[0].name: \"cap.0\" is not a name");

    let mut g = graph("overlay.json");
    g["filters"][1]["pins"][0]["flow"] = "both".into();
    refused(&g, 2, "unreadable_input", "filters[1].pins[0].flow: unknown variant `both`");

    let mut g = graph("overlay.json");
    g["filters"][1]["pins"][0]["framing"]["items"][0]["flags"] = serde_json::json!(["IN_PLACE"]);
    refused(&g, 2, "unreadable_input", "filters[1].pins[0].framing.items[0].flags");

    let mut g = graph("overlay.json");
    g["filters"][1]["pins"][0]["framing"]["items"] = serde_json::json!([]);
    refused(&g, 2, "unreadable_input", "filters[1].pins[0].framing: a framing needs at least one");
}

#[test]
fn a_json_error_names_its_line_in_the_file() {
    let text = std::fs::read_to_string(example("overlay.json")).unwrap();
    let broken = text.replacen("\"frames\": 2", "\"frames\": -2", 1);
    let line = broken.lines().position(|l| l.contains("-2")).unwrap() + 1;
    let output = ksalloc(&["framing", "pipes", "-"], Some(broken.as_bytes()));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("line {line}: filters[1].pins[0].framing.items[0].frames")),
        "{stderr}"
    );
}

#[test]
fn graphs_that_are_not_chains_cannot_be_planned() {
    // A splitter: one output feeding two inputs.
    let mut g = graph("overlay.json");
    g["connections"][1] = serde_json::json!(["cap.out", "sink.in"]);
    refused(&g, 1, "not_a_chain", "cap.out is in connections[0] and connections[1]");

    // A filter nothing connects.
    let mut g = graph("overlay.json");
    g["connections"] = serde_json::json!([["cap.out", "sink.in"]]);
    refused(&g, 1, "not_a_chain", "filter ovl is not connected");

    // A cycle beside a chain.
    let mut g = graph("scale.json");
    g["connections"] = serde_json::json!([
        ["cap.out", "sink.in"],
        ["ovl.out", "scale.in"],
        ["scale.out", "ovl.in"]
    ]);
    refused(&g, 1, "not_a_chain", "cycle or more than one chain");

    // Two sources.
    let mut g = graph("scale.json");
    g["connections"] = serde_json::json!([["cap.out", "ovl.in"], ["scale.out", "sink.in"]]);
    refused(&g, 1, "not_a_chain", "2 filters have no connected input (cap, scale)");

    // One filter.
    let mut g = graph("overlay.json");
    g["filters"] = serde_json::json!([g["filters"][0]]);
    g["connections"] = serde_json::json!([]);
    refused(&g, 1, "not_a_chain", "1 filter(s); a chain has 2 to 8");

    // A filter connected to itself.
    let mut g = graph("overlay.json");
    g["connections"] = serde_json::json!([["cap.out", "sink.in"], ["ovl.out", "ovl.in"]]);
    refused(&g, 1, "not_a_chain", "connections[1] connects ovl.out to ovl.in, a filter to itself");
}

#[test]
fn pins_no_connection_names_are_ignored() {
    let mut g = graph("overlay.json");
    let preview = g["filters"][0]["pins"][0].clone();
    let mut preview = preview;
    preview["name"] = "preview".into();
    g["filters"][0]["pins"].as_array_mut().unwrap().push(preview);
    assert_eq!(plan(&g), plan(&graph("overlay.json")));
}

/// The book and the README show `framing pipes` on `scale.json`; keep them true.
#[test]
fn the_book_and_the_readme_show_the_scaling_chain_as_it_plans() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Run from the repository's root, with the path as the book shows it.
    let output = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .current_dir(&root)
        .args(["framing", "pipes", "tests/data/pipes/scale.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let book = std::fs::read_to_string(root.join("book/src/test-engineer.md")).unwrap();
    assert!(
        book.contains(&format!("$ ksalloc framing pipes tests/data/pipes/scale.json\n{stdout}```")),
        "the test engineer's chapter shows other output than:\n{stdout}"
    );
    // The README shows an excerpt: each of its lines, in order, between the elisions.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("$ cargo run -q -p ksalloc -- framing pipes").unwrap();
    let excerpt = &readme[start..];
    let excerpt = &excerpt[..excerpt.find("```").unwrap()];
    let mut rest = stdout.as_str();
    for line in excerpt.lines().skip(1).filter(|l| l.trim() != "...") {
        let at = rest
            .find(&format!("{line}\n"))
            .unwrap_or_else(|| panic!("the README's {line:?} is not in the output, in order"));
        rest = &rest[at + line.len()..];
    }
}

/// A graph of one connection plans as `framing negotiate` does for the same two framings.
#[test]
fn one_connection_plans_as_the_pair_negotiation() {
    let scale = graph("scale.json");
    let capture = scale["filters"][0]["pins"][0]["framing"].clone();
    let sink = scale["filters"][3]["pins"][0]["framing"].clone();
    let pair = serde_json::json!({
        "filters": [
            {"name": "cap", "pins": [{"name": "out", "flow": "Out", "framing": capture}]},
            {"name": "sink", "pins": [{"name": "in", "flow": "input", "framing": sink}]}
        ],
        "connections": [["cap.out", "sink.in"]]
    });
    let (status, planned) = plan(&pair);
    assert_eq!(status, Some(0), "{planned}");
    let pipe = &planned["pipes"][0];
    let dir = std::env::temp_dir().join(format!("ksalloc-pipes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (up, down) = (dir.join("up.json"), dir.join("down.json"));
    std::fs::write(&up, capture.to_string()).unwrap();
    std::fs::write(&down, sink.to_string()).unwrap();
    let output = ksalloc(
        &["framing", "negotiate", "--json", up.to_str().unwrap(), down.to_str().unwrap()],
        None,
    );
    let negotiated: Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in
        ["frames", "frame_size", "file_alignment", "memory_type", "pool_type", "framing_bytes"]
    {
        assert_eq!(pipe[key], negotiated[key], "{key}");
    }
    let owner = if negotiated["owner"] == "upstream" { "cap.out" } else { "sink.in" };
    assert_eq!(pipe["owner"], owner);
    assert_eq!(
        pipe["items"],
        serde_json::json!([negotiated["upstream_item"], negotiated["downstream_item"]])
    );
}
