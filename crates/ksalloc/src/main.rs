//! `ksalloc`: the command-line tool of ks-allocator.
//!
//! - `ksalloc framing decode [--legacy | --request [--lenient]] FILE` prints every field of a KS
//!   allocator framing captured from a driver or a device, then every error and warning the
//!   validator finds. Exit status: 0 valid (warnings allowed), 1 the framing has errors, 2 the
//!   input cannot be read or parsed.
//! - `ksalloc framing negotiate [--json] UPSTREAM DOWNSTREAM` prints the allocator plan for two
//!   connected pins and the reason for each choice. Exit status: 0 a plan, 1 the framings cannot
//!   be reconciled (the conflict is named), 2 unreadable input.

use std::{
    io::{self, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};

mod decode;
mod input;
mod negotiate;

/// Decode and check Windows kernel-streaming allocator framings.
#[derive(Debug, Parser)]
#[command(name = "ksalloc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with allocator framings.
    #[command(subcommand)]
    Framing(FramingCommand),
}

#[derive(Debug, Subcommand)]
enum FramingCommand {
    /// Print every field of a framing and validate it.
    ///
    /// FILE holds the raw bytes as a driver or KS hands them over: by default a
    /// KSALLOCATOR_FRAMING_EX (the ALLOCATORFRAMING_EX property value). Exit status: 0 valid
    /// (warnings allowed), 1 the framing has errors, 2 the bytes cannot be read or parsed.
    Decode(DecodeArgs),
    /// Negotiate the allocator for a connection between two pins.
    ///
    /// Each of UPSTREAM and DOWNSTREAM is a file (or - for standard input, once) holding a
    /// KSALLOCATOR_FRAMING_EX as raw bytes, a JSON description (see the README), or a
    /// DECLARE_SIMPLE_FRAMING_EX(...) line pasted from C source. Exit status: 0 a plan, 1 the
    /// framings cannot be reconciled (the conflict is named), 2 unreadable input.
    Negotiate(NegotiateArgs),
}

#[derive(Debug, Args)]
struct NegotiateArgs {
    /// Print the plan as one JSON object.
    #[arg(long)]
    json: bool,
    /// The framing of the upstream (output) pin.
    upstream: PathBuf,
    /// The framing of the downstream (input) pin.
    downstream: PathBuf,
}

#[derive(Debug, Args)]
struct DecodeArgs {
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

fn read_input(path: &PathBuf) -> io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        io::stdin().lock().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path)
    }
}

/// Reads and parses one framing input, or prints why not.
fn framing_input(path: &PathBuf, stdin_used: &mut bool) -> Result<input::Owned, String> {
    let name = path.display().to_string();
    if path.as_os_str() == "-" {
        if *stdin_used {
            return Err("- (standard input) can only be given once".to_owned());
        }
        *stdin_used = true;
    }
    let bytes = read_input(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    input::read(&bytes).map_err(|e| format!("{name}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Framing(FramingCommand::Negotiate(args)) => {
            let mut stdin_used = false;
            if args.upstream.as_os_str() == "-" && args.downstream.as_os_str() == "-" {
                eprintln!("ksalloc: - (standard input) can only be given once");
                return ExitCode::from(decode::EXIT_UNREADABLE);
            }
            let inputs = framing_input(&args.upstream, &mut stdin_used)
                .and_then(|up| Ok((up, framing_input(&args.downstream, &mut stdin_used)?)));
            let (upstream, downstream) = match inputs {
                Ok(inputs) => inputs,
                Err(reason) => {
                    eprintln!("ksalloc: {reason}");
                    return ExitCode::from(decode::EXIT_UNREADABLE);
                }
            };
            let (mut out, mut err) = (String::new(), String::new());
            let status = negotiate::run(&upstream, &downstream, args.json, &mut out, &mut err);
            let _ = io::stdout().lock().write_all(out.as_bytes());
            if !err.is_empty() {
                eprint!("ksalloc: {err}");
            }
            ExitCode::from(status)
        }
        Command::Framing(FramingCommand::Decode(args)) => {
            let name = args.file.display().to_string();
            let bytes = match read_input(&args.file) {
                Ok(bytes) => bytes,
                Err(error) => {
                    eprintln!("ksalloc: cannot read {name}: {error}");
                    return ExitCode::from(decode::EXIT_UNREADABLE);
                }
            };
            let kind = if args.legacy {
                decode::Kind::Legacy
            } else if args.request {
                decode::Kind::Request { lenient: args.lenient }
            } else {
                decode::Kind::Extended
            };
            let mut out = String::new();
            let result = decode::decode(kind, &bytes, &mut out);
            let mut stdout = io::stdout().lock();
            // A closed pipe (ksalloc ... | head) is not an error of the framing.
            let _ = stdout.write_all(out.as_bytes());
            match result {
                Ok(status) => ExitCode::from(status),
                Err(reason) => {
                    eprintln!("ksalloc: {name}: {reason}");
                    ExitCode::from(decode::EXIT_UNREADABLE)
                }
            }
        }
    }
}
