//! `ksalloc`: the command-line tool of ks-allocator.
//!
//! - `ksalloc framing decode [--json] [--legacy | --request [--lenient]] FILE` prints every
//!   field of a KS allocator framing captured from a driver or a device (or written as JSON or a
//!   `DECLARE_SIMPLE_FRAMING_EX` line), then every error and warning the validator finds.
//! - `ksalloc framing negotiate [--json] UPSTREAM DOWNSTREAM` prints the allocator plan for two
//!   connected pins and the reason for each choice.
//! - `ksalloc framing pipes [--json] GRAPH` prints the pipes of a chain of filters: each
//!   pipe's pins, the owner of its allocator, its frames and sizes, and the reasons.
//! - `ksalloc capture [--format F] [--frames N] [--png FILE] [--json] [--fail-every K]
//!   [--speed X] [--sink KIND] [--through LIST]` loads the sample capture driver in the
//!   user-mode host, streams it (through the sample's transforms, with `--through`) to a sink
//!   that checks every frame, and reports the plan or the pipes, deliveries, drops, latency,
//!   allocator statistics and leaks.
//!
//! Exit status: 0 valid / a plan / it streamed; 1 the framing has errors / the framings cannot be
//! reconciled (the conflict is named) / the stream could not start (the step and its status are
//! named); 2 the input cannot be read or parsed, or an option's value is bad (the message names
//! the option and what it accepts); 64 a usage error (an unknown, missing or conflicting
//! option; `--help` and `--version` exit 0); 74 the contact sheet could not be written. Every
//! failure's reason goes to standard error; with `--json`, a failure is also one JSON object on
//! standard output: `{"status": N, "kind": "...", "error": "..."}`.

use std::{
    io::{self, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};
use serde_json::json;

mod capture;
mod decode;
mod input;
mod negotiate;
mod pipes;

/// Exit status of a usage error (`EX_USAGE` of sysexits.h), apart from the input's own 0-2.
const EXIT_USAGE: u8 = 64;
/// Exit status of a bad option value (the same as unreadable input: the value cannot be used).
const EXIT_BAD_VALUE: u8 = 2;

/// What `ksalloc --help`, `-h` and `help` print after the commands.
const EXIT_STATUS_HELP: &str = "\
Exit status: 0 a valid framing, a plan, or a capture that streamed; 1 the framing has errors, \
the framings cannot be reconciled, or the stream could not start; 2 unreadable input or a bad \
option value; 64 a usage error; 74 the contact sheet could not be written.";

/// Windows kernel-streaming allocators: decode, check and negotiate allocator framings, and
/// stream the sample AVStream capture driver in the user-mode host.
#[derive(Debug, Parser)]
#[command(name = "ksalloc", version, about, long_about = None, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode, validate and negotiate allocator framings.
    #[command(subcommand)]
    Framing(FramingCommand),
    /// Load the sample capture driver in the user-mode host and stream it (through the sample's
    /// transforms with --through) to a checking sink: the negotiated plan or the pipes, frames
    /// delivered and dropped, latency, allocator statistics, leaks.
    #[command(long_about = None, after_help = capture::EXIT_STATUS_HELP)]
    Capture(capture::CaptureArgs),
}

#[derive(Debug, Subcommand)]
enum FramingCommand {
    /// Print every field of a framing and validate it.
    ///
    /// FILE (or - for standard input) holds a KSALLOCATOR_FRAMING_EX as raw bytes (the
    /// ALLOCATORFRAMING_EX property value), a JSON description or a DECLARE_SIMPLE_FRAMING_EX(...)
    /// line, as `framing negotiate` reads them; with --legacy or --request, the exact 24 bytes
    /// of a KSALLOCATOR_FRAMING. Exit status: 0 valid (warnings allowed), 1 the framing has
    /// errors, 2 the input cannot be read or parsed.
    Decode(DecodeArgs),
    /// Negotiate the allocator for a connection between two pins.
    ///
    /// Each of UPSTREAM and DOWNSTREAM is a file (or - for standard input, once) holding a
    /// KSALLOCATOR_FRAMING_EX as raw bytes, a JSON description (see the book's test engineer
    /// guide), or a DECLARE_SIMPLE_FRAMING_EX(...) line pasted from C source. Exit status: 0 a plan, 1 the
    /// framings cannot be reconciled (the conflict is named), 2 unreadable input.
    Negotiate(NegotiateArgs),
    /// Plan the pipes (allocators) of a chain of filters.
    ///
    /// GRAPH (or - for standard input) is JSON: `{"filters": [{"name": "cap", "pins": [{"name":
    /// "out", "flow": "out", "framing": F}]}, ...], "connections": [["cap.out", "ovl.in"],
    /// ...]}`, each F a framing in the JSON form `framing negotiate` reads. Prints each pipe's
    /// pins, owner, frames, frame size, alignment, memory and pool type and the reason for each
    /// choice. Exit status: 0 a plan, 1 the chain cannot be planned (the pins in conflict are
    /// named) or the connections do not make a chain, 2 unreadable input.
    Pipes(PipesArgs),
}

#[derive(Debug, Args)]
struct PipesArgs {
    /// Print the pipes, or the failure, as one JSON object.
    #[arg(long)]
    json: bool,
    /// The graph: a JSON file, or - for standard input.
    graph: PathBuf,
}

#[derive(Debug, Args)]
struct NegotiateArgs {
    /// Print the plan, or the failure, as one JSON object.
    #[arg(long)]
    json: bool,
    /// The framing of the upstream (output) pin.
    upstream: PathBuf,
    /// The framing of the downstream (input) pin.
    downstream: PathBuf,
}

#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "each is one command-line flag")]
struct DecodeArgs {
    /// Print the fields, verdict and findings, or the failure, as one JSON object.
    #[arg(long)]
    json: bool,
    /// A 24-byte KSALLOCATOR_FRAMING as the legacy ALLOCATORFRAMING property returns it
    /// (RequirementsFlags).
    #[arg(long, conflicts_with = "request")]
    legacy: bool,
    /// A 24-byte KSALLOCATOR_FRAMING as an allocator create request carries it (OptionsFlags).
    #[arg(long)]
    request: bool,
    /// With --request: also accept the requirement bits 0x1-0x8 in OptionsFlags, as ReactOS
    /// does (Windows' header mask is 0x3).
    #[arg(long, requires = "request")]
    lenient: bool,
    /// The file to read, or - for standard input.
    file: PathBuf,
}

/// Why a command produced no result: its exit status, a short machine-readable kind and the
/// message.
pub struct Failure {
    status: u8,
    kind: &'static str,
    message: String,
}

impl Failure {
    fn unreadable(message: String) -> Self {
        Self { status: decode::EXIT_UNREADABLE, kind: "unreadable_input", message }
    }

    /// Reports the failure (stderr, and stdout as JSON when asked) and returns its status.
    fn report(&self, as_json: bool) -> ExitCode {
        eprintln!("ksalloc: {}", self.message);
        if as_json {
            let object = json!({ "status": self.status, "kind": self.kind, "error": self.message });
            print(&format!("{object}\n"));
        }
        ExitCode::from(self.status)
    }
}

/// Writes to standard output; a closed pipe (`ksalloc ... | head`) is not an error of ours.
fn print(text: &str) {
    let _ = io::stdout().lock().write_all(text.as_bytes());
}

fn read_input(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    let name = path.display();
    let result = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        io::stdin().lock().read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    result.map_err(|e| Failure::unreadable(format!("cannot read {name}: {e}")))
}

/// Reads and parses one framing input.
fn framing_input(path: &PathBuf) -> Result<input::Owned, Failure> {
    let bytes = read_input(path)?;
    input::read(&bytes).map_err(|e| Failure::unreadable(format!("{}: {e}", path.display())))
}

fn negotiate(args: &NegotiateArgs) -> Result<String, Failure> {
    if args.upstream.as_os_str() == "-" && args.downstream.as_os_str() == "-" {
        return Err(Failure::unreadable("- (standard input) can only be given once".to_owned()));
    }
    let upstream = framing_input(&args.upstream)?;
    let downstream = framing_input(&args.downstream)?;
    negotiate::run(&upstream, &downstream, args.json)
}

fn pipes(args: &PipesArgs) -> Result<String, Failure> {
    let bytes = read_input(&args.graph)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Failure::unreadable(format!("{}: not UTF-8 text: {e}", args.graph.display()))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    pipes::run(text, args.json).map_err(|mut failure| {
        if failure.status == decode::EXIT_UNREADABLE {
            failure.message = format!("{}: {}", args.graph.display(), failure.message);
        }
        failure
    })
}

fn decode(args: &DecodeArgs) -> Result<decode::Report, Failure> {
    let bytes = read_input(&args.file)?;
    let kind = if args.legacy {
        decode::Kind::Legacy
    } else if args.request {
        decode::Kind::Request { lenient: args.lenient }
    } else {
        decode::Kind::Extended
    };
    decode::decode(kind, &bytes)
        .map_err(|reason| Failure::unreadable(format!("{}: {reason}", args.file.display())))
}

/// The exit status of a command line clap refused: a value that cannot be used is a bad
/// value (2), like unreadable input; anything else (unknown, missing, repeated or conflicting
/// options) a usage error (64); help and version are not errors.
fn clap_status(error: &clap::Error) -> u8 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    // clap reports a missing value as an empty invalid one: that is a usage error.
    let given = !matches!(
        error.get(ContextKind::InvalidValue),
        Some(ContextValue::String(value)) if value.is_empty()
    );
    match error.kind() {
        _ if !error.use_stderr() => 0,
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8 if given => {
            EXIT_BAD_VALUE
        }
        _ => EXIT_USAGE,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(clap_status(&error));
        }
    };
    match cli.command {
        Command::Capture(args) => match capture::run(&args) {
            Ok(outcome) => {
                print(&outcome.text);
                if let Some(failure) = &outcome.failure {
                    eprintln!("ksalloc: {failure}");
                }
                ExitCode::from(outcome.status)
            }
            Err(failure) => failure.report(args.json),
        },
        Command::Framing(FramingCommand::Negotiate(args)) => match negotiate(&args) {
            Ok(plan) => {
                print(&plan);
                ExitCode::SUCCESS
            }
            Err(failure) => failure.report(args.json),
        },
        Command::Framing(FramingCommand::Pipes(args)) => match pipes(&args) {
            Ok(plan) => {
                print(&plan);
                ExitCode::SUCCESS
            }
            Err(failure) => failure.report(args.json),
        },
        Command::Framing(FramingCommand::Decode(args)) => match decode(&args) {
            Ok(report) => {
                if args.json {
                    print(&format!("{}\n", report.json));
                } else {
                    print(&report.text);
                }
                for line in report.errors.lines() {
                    eprintln!("ksalloc: {}: {line}", args.file.display());
                }
                ExitCode::from(report.status)
            }
            Err(failure) => failure.report(args.json),
        },
    }
}
