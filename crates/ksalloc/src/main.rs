//! `ksalloc`: the command-line tool of ks-allocator.
//!
//! `ksalloc framing decode [--legacy | --request [--lenient]] FILE` prints every field of a KS
//! allocator framing captured from a driver or a device, then every error and warning the
//! validator finds. Exit status: 0 valid (warnings allowed), 1 the framing has errors, 2 the
//! input cannot be read or parsed.

use std::{
    io::{self, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};

mod decode;

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
