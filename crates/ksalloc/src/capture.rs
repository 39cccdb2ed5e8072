//! `ksalloc capture`: the sample capture driver loaded in the user-mode host and streamed to a
//! sink that checks every frame.
//!
//! The driver is the `ks-sample` crate, the same code the Windows build links; ks-host plays
//! the kernel and ks.sys. The sink (`--sink`) is the downstream side of the connection: a
//! user-mode client reading with its own buffers (as a camera application does: no allocator,
//! the capture pin's system-memory item), a kernel-mode pin that takes any memory (negotiation
//! picks the pin's device memory, carved from the device's common buffer by the pin's own
//! allocator), or a kernel-mode pin with a framing read from a file. Whatever the frames are,
//! the simulated hardware writes them by DMA through their mappings. Each completed frame is
//! checked on the sink's thread: its size, the frame number its barcode carries, and the picture
//! against the scene.

use std::{
    fmt::Write as _,
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ks_allocator::{
    DefaultAllocator, DefaultBudget, PoolStats,
    framing::{FramingEx, FramingItem, FramingRange, MemoryType},
    negotiate::{AllocatorPlan, ClientPlan},
};
use ks_host::avstream::{
    Completed, Consumer, Device, Driver, Filter, FrameSource, Pin,
    graph::{Graph, GraphError, PipeSummary, Stage},
};
use ks_sample_core::{
    CaptureAllocator, check,
    format::{FORMATS, ImageFormat, Subtype},
    scale::ScaleBudget,
};
use serde_json::json;

use crate::{Failure, input, negotiate};

/// Exit status: the stream could not start.
const EXIT_NOT_STARTED: u8 = 1;
/// Exit status: bad arguments.
const EXIT_BAD_ARGUMENT: u8 = 2;
/// Exit status: the contact sheet could not be written (`EX_IOERR` of sysexits.h).
const EXIT_SHEET_NOT_WRITTEN: u8 = 74;
/// Most frames one run may ask for.
const MAX_FRAMES: u32 = 100_000;
/// The range of `--speed`.
const SPEEDS: std::ops::RangeInclusive<f64> = 0.1..=100.0;
/// Frames on the contact sheet.
const SHEET_FRAMES: usize = 12;
/// Thumbnails per row of the contact sheet.
const SHEET_COLUMNS: usize = 4;
/// The longest a DPC should run, in microseconds (Microsoft's guidance for DPC routines).
pub const DPC_BUDGET_US: u64 = 100;

/// What `ksalloc capture --help` (and `-h`) print after the options.
pub const EXIT_STATUS_HELP: &str = "\
The driver makes its allocations while it starts (device, DMA adapter and common buffer, \
filter, pin, allocator and all its frames, the DMA engine's memory); while streaming, AVStream \
allocates a stream pointer clone for each frame the pin programs, and a clone that fails is \
tried again at the next frame time. So with --fail-every, a run either does not start (the step \
that failed is named) or streams in full, possibly with drops.

Exit status: 0 it streamed (possibly degraded: drops, bad frames); 1 the stream could not start; \
2 a bad option value; 64 a usage error; 74 the contact sheet could not be written.";

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The format SUBTYPE:WIDTHxHEIGHT, one of the pin's data ranges: yuy2 or rgb24, at 320x240
    /// or 640x480.
    #[arg(long, value_name = "FORMAT", default_value = "yuy2:320x240", value_parser = parse_format)]
    format: ImageFormat,
    /// Frames to deliver before stopping, 1 to 100000.
    #[arg(long, value_name = "N", default_value_t = 90, value_parser = parse_frames, allow_negative_numbers = true)]
    frames: u32,
    /// Write a contact sheet of 12 frames sampled across the run to this PNG file (checked
    /// before the run starts).
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
    /// Print the summary as one JSON object (the last line).
    #[arg(long)]
    pub json: bool,
    /// Make the host's pool fail every Kth allocation of the run (K at least 1), like Driver
    /// Verifier's low-resources simulation.
    #[arg(long, value_name = "K", value_parser = parse_fail_every, allow_negative_numbers = true)]
    fail_every: Option<u64>,
    /// Run the simulated hardware's clock X times real time, 0.1 to 100.
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed, allow_negative_numbers = true)]
    speed: f64,
    /// The downstream side: `user`, a user-mode client reading with its own buffers (as every
    /// camera application does; the default without --through); `kernel`, a kernel-mode pin
    /// that takes any memory (so the capture pin's device memory; the default with --through);
    /// or the path of a kernel-mode pin's framing, in any form `framing negotiate` reads.
    #[arg(long, value_name = "KIND", value_parser = parse_sink)]
    sink: Option<SinkKind>,
    /// Stream through the sample's transform filters on the way to the sink, in this order:
    /// `overlay` (marks each frame in place), `scale` (halves 640x480 to 320x240), or both
    /// separated by a comma. The pipes of the chain and each allocator's statistics are
    /// reported.
    #[arg(long, value_name = "LIST", value_parser = parse_through)]
    through: Option<Through>,
}

impl CaptureArgs {
    /// The sink: the one named, else a user-mode client, or a kernel-mode pin that takes any
    /// memory for a chain of filters.
    fn sink(&self) -> SinkKind {
        match (&self.sink, &self.through) {
            (Some(sink), _) => sink.clone(),
            (None, Some(_)) => SinkKind::Kernel,
            (None, None) => SinkKind::User,
        }
    }

    fn transforms(&self) -> &[Transform] {
        self.through.as_ref().map_or(&[], |through| &through.0)
    }
}

/// One of the sample's transform filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// The in-place overlay (filter factory 1).
    Overlay,
    /// The 2:1 scaler (filter factory 2).
    Scale,
}

impl Transform {
    fn name(self) -> &'static str {
        match self {
            Self::Overlay => "overlay",
            Self::Scale => "scale",
        }
    }

    /// Its filter factory on the sample device, and its short name in pin names.
    fn factory(self) -> (usize, &'static str) {
        match self {
            Self::Overlay => (1, "ovl"),
            Self::Scale => (2, "scale"),
        }
    }
}

/// `--through`: the transforms, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Through(Vec<Transform>);

/// `--through`: `overlay`, `scale`, or a comma-separated list of them.
fn parse_through(text: &str) -> Result<Through, String> {
    let mut transforms = Vec::new();
    for name in text.split(',') {
        transforms.push(match name.trim() {
            "overlay" => Transform::Overlay,
            "scale" => Transform::Scale,
            other => {
                return Err(format!(
                    "unknown transform {other:?}: the sample has overlay and scale (a list \
                     such as overlay,scale)"
                ));
            }
        });
    }
    if transforms.len() > ks_allocator::negotiate::MAX_CHAIN - 2 {
        return Err(format!("at most {} transforms", ks_allocator::negotiate::MAX_CHAIN - 2));
    }
    Ok(Through(transforms))
}

/// What the sink shows after `through`: the picture as the capture pin draws it in `format`,
/// at the size the scalers leave, marked where the overlay saw it; or why the chain cannot be
/// built (a scaler given frames it does not take).
fn shown_after(format: ImageFormat, through: &[Transform]) -> Result<Check, String> {
    let mut check = Check { drawn: format, shown: format, marked_at: None };
    for transform in through {
        match transform {
            Transform::Overlay => check.marked_at = Some(check.shown),
            Transform::Scale => {
                let half = FORMATS.iter().find(|f| {
                    f.subtype == check.shown.subtype
                        && 2 * f.width == check.shown.width
                        && 2 * f.height == check.shown.height
                });
                check.shown = *half.ok_or_else(|| {
                    format!(
                        "scale takes 640x480 frames and makes 320x240 ones; the frames reaching \
                         it are {}",
                        check.shown
                    )
                })?;
            }
        }
    }
    Ok(check)
}

/// How the sink checks a frame: the picture drawn at `drawn`'s size, shown in frames of
/// `shown`, and the overlay's mark made at `marked_at`'s size, if an overlay marked it.
#[derive(Clone, Copy, Debug)]
struct Check {
    drawn: ImageFormat,
    shown: ImageFormat,
    marked_at: Option<ImageFormat>,
}

/// The downstream side of the connection (`--sink`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// A user-mode client reading with its own buffers.
    User,
    /// A kernel-mode pin that takes any memory.
    Kernel,
    /// A kernel-mode pin with the framing in this file.
    Framing(PathBuf),
}

impl SinkKind {
    /// What `--json` says for it.
    fn name(&self) -> String {
        match self {
            Self::User => "user".to_owned(),
            Self::Kernel => "kernel".to_owned(),
            Self::Framing(path) => path.display().to_string(),
        }
    }

    /// What the text report says for it.
    fn describe(&self) -> String {
        match self {
            Self::User => "a user-mode client reading with its own buffers".to_owned(),
            Self::Kernel => "a kernel-mode pin that takes any memory".to_owned(),
            Self::Framing(path) => {
                format!("a kernel-mode pin with the framing of {}", path.display())
            }
        }
    }
}

/// `--sink`: `user`, `kernel` or a path.
fn parse_sink(text: &str) -> Result<SinkKind, String> {
    match text {
        "user" => Ok(SinkKind::User),
        "kernel" => Ok(SinkKind::Kernel),
        "" => Err("must be user, kernel or the path of a framing file".to_owned()),
        path => Ok(SinkKind::Framing(PathBuf::from(path))),
    }
}

/// `--frames`: a whole number from 1 to [`MAX_FRAMES`].
fn parse_frames(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=MAX_FRAMES).contains(n))
        .ok_or_else(|| format!("must be a whole number from 1 to {MAX_FRAMES}"))
}

/// `--fail-every`: a whole number, at least 1.
fn parse_fail_every(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|k| *k >= 1)
        .ok_or_else(|| "K must be a whole number, at least 1".to_owned())
}

/// `--speed`: a number from 0.1 to 100.
fn parse_speed(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && SPEEDS.contains(x))
        .ok_or_else(|| format!("must be a number from {} to {}", SPEEDS.start(), SPEEDS.end()))
}

/// The format named on the command line, or why not.
fn parse_format(text: &str) -> Result<ImageFormat, String> {
    let offered = || FORMATS.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let (subtype, size) = text
        .split_once(':')
        .ok_or_else(|| format!("expected SUBTYPE:WIDTHxHEIGHT, one of {}", offered()))?;
    let subtype = match subtype.to_ascii_lowercase().as_str() {
        "yuy2" => Subtype::Yuy2,
        "rgb24" => Subtype::Rgb24,
        other => {
            return Err(format!("unknown subtype {other:?}; the pin offers yuy2 and rgb24"));
        }
    };
    let parsed = size
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    let Some((width, height)) = parsed else {
        return Err("the size must be WIDTHxHEIGHT, such as 320x240".to_owned());
    };
    FORMATS
        .iter()
        .find(|f| f.subtype == subtype && f.width == width && f.height == height)
        .copied()
        .ok_or_else(|| format!("{width}x{height} is not in the pin's data ranges ({})", offered()))
}

/// What the sink saw.
#[derive(Default)]
struct Sink {
    delivered: u32,
    out_of_order: u32,
    bad_content: u32,
    wrong_size: u32,
    /// The highest frame number read, if any.
    highest: Option<u32>,
    latencies: Vec<Duration>,
    /// Frames kept for the contact sheet: their number and bytes.
    kept: Vec<(u32, Vec<u8>)>,
    /// The first problems, for the report.
    problems: Vec<String>,
}

impl Sink {
    fn take(&mut self, check: &Check, keep_every: u32, frame: &Completed) {
        self.latencies.push(frame.completed.elapsed());
        self.delivered += 1;
        let data = frame.data();
        let format = &check.shown;
        if data.len() != format.image_size() {
            self.wrong_size += 1;
            self.note(format!(
                "frame {}: {} bytes, expected {}",
                self.delivered,
                data.len(),
                format.image_size()
            ));
        }
        let marked = check.marked_at.map(|at| check::read_mark(&at, format, data));
        match check::read_frame_as(&check.drawn, format, data) {
            Ok(number) => {
                if let Some(Err(problem)) = marked {
                    self.bad_content += 1;
                    self.note(format!("frame {}: the overlay's mark: {problem}", self.delivered));
                    return;
                }
                if self.highest.is_some_and(|highest| number <= highest) {
                    self.out_of_order += 1;
                    self.note(format!("frame number {number} after {}", self.highest.unwrap_or(0)));
                }
                self.highest = self.highest.max(Some(number));
                if (self.delivered - 1).is_multiple_of(keep_every) && self.kept.len() < SHEET_FRAMES
                {
                    self.kept.push((number, data.to_vec()));
                }
            }
            Err(problem) => {
                self.bad_content += 1;
                self.note(format!("frame {}: {problem}", self.delivered));
            }
        }
    }

    fn note(&mut self, problem: String) {
        if self.problems.len() < 5 {
            self.problems.push(problem);
        }
    }

    /// Frame times with no frame delivered for them, up to the last delivered: the numbers
    /// the driver skipped because its queue had no buffer.
    fn dropped(&self) -> u32 {
        let in_order = self.delivered - self.out_of_order - self.bad_content;
        self.highest.map_or(0, |highest| (highest + 1).saturating_sub(in_order))
    }
}

/// The value at quantile `q` of sorted latencies, in microseconds.
fn percentile(sorted: &[Duration], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index within the slice"
    )]
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    u64::try_from(sorted[index.min(sorted.len() - 1)].as_micros()).unwrap_or(u64::MAX)
}

/// What the connection's frames are and where they come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// The pin's allocator over the device's common buffer.
    CommonBuffer,
    /// The pin's allocator over system memory.
    PinPool,
    /// An allocator the downstream side owns.
    SinkAllocator,
    /// A user-mode client's buffers, no allocator.
    ClientBuffers,
    /// The scaler's output allocator (the library's pool).
    ScalerPool,
    /// In a chain, the library's default allocator, for an owner pin without one of its own.
    DefaultAllocator,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::CommonBuffer => "common_buffer",
            Self::PinPool => "pin_pool",
            Self::SinkAllocator => "sink_allocator",
            Self::ClientBuffers => "client_buffers",
            Self::ScalerPool => "scaler_pool",
            Self::DefaultAllocator => "default_allocator",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::CommonBuffer => {
                "device memory: the capture pin's allocator carves them from the device's common \
                 buffer (KSPIN_DISPATCH.Allocator)"
            }
            Self::PinPool => {
                "system memory from the capture pin's allocator (the library's pool, \
                 KSPIN_DISPATCH.Allocator)"
            }
            Self::SinkAllocator => {
                "system memory from the downstream side's allocator (the library's default \
                 allocator)"
            }
            Self::ClientBuffers => "the client's own buffers, locked and mapped: no allocator",
            Self::ScalerPool => {
                "system memory from the scaler's output allocator (the library's pool, \
                 KSPIN_DISPATCH.Allocator)"
            }
            Self::DefaultAllocator => {
                "system memory from the library's default allocator, standing for ks.sys's: the \
                 owner pin has no allocator of its own"
            }
        }
    }
}

/// The connection's plan: negotiated with a kernel-mode pin, or a user-mode client's.
enum Plan {
    Pin(Box<AllocatorPlan>),
    Client(Box<ClientPlan>),
}

/// How far the run got, for the summary.
#[derive(Default)]
struct Run {
    plan: Option<Plan>,
    backend: Option<Backend>,
    stats: Option<PoolStats>,
    /// The step that failed and its status, if the stream could not start, and why in words
    /// when the host says more than a status.
    not_started: Option<(&'static str, i32)>,
    why: Option<String>,
    timed_out: bool,
    elapsed: Duration,
    /// The pipes of a chain (`--through`).
    pipes: Vec<PipeReport>,
}

fn status_error(step: &'static str) -> impl FnOnce(i32) -> (&'static str, i32) {
    move |status| (step, status)
}

/// The allocator's statistics, read through its context.
///
/// # Safety
///
/// `context` is the live context of the library's `DefaultAllocator<B>`, with this `B`.
unsafe fn pool_stats<B>(context: ks_sys::PVOID) -> Option<PoolStats> {
    // SAFETY: the caller's contract: a live `DefaultAllocator<B>`.
    let allocator = unsafe { context.cast::<DefaultAllocator<B>>().as_ref() }?;
    Some(allocator.pool().stats())
}

/// The kernel-mode sink that takes any memory: frames of any type and size; it does not
/// allocate.
fn any_memory_framing() -> FramingEx<1> {
    FramingEx::new([
        FramingItem::new(MemoryType::DONT_CARE).with_optimal_range(FramingRange::new(1, u32::MAX))
    ])
}

/// The downstream side, ready to connect.
enum Downstream {
    User,
    Kernel(input::Owned),
}

/// Connects `pin` to `downstream`; fills `run.plan`.
fn connect(
    pin: &Pin<'_>,
    downstream: &Downstream,
    consumer: Consumer,
    run: &mut Run,
) -> Result<(), (&'static str, i32)> {
    let refused = |run: &mut Run, error: ks_host::avstream::ConnectError| {
        run.why = Some(error.to_string());
        ("connection", ks_sys::STATUS_NO_MATCH)
    };
    match downstream {
        Downstream::User => match pin.connect_client(consumer) {
            Ok(plan) => run.plan = Some(Plan::Client(Box::new(plan))),
            Err(error) => return Err(refused(run, error)),
        },
        Downstream::Kernel(framing) => {
            let view = framing.view().ok_or(("connection", ks_sys::STATUS_INVALID_PARAMETER))?;
            match pin.connect(&view, consumer) {
                Ok(plan) => run.plan = Some(Plan::Pin(Box::new(plan))),
                Err(error) => return Err(refused(run, error)),
            }
        }
    }
    Ok(())
}

/// The sink's consumer: checks each frame until `target` are delivered, then says so on
/// `done`.
fn consumer(
    sink: &Arc<Mutex<Sink>>,
    check: Check,
    args: &CaptureArgs,
    done: std::sync::mpsc::Sender<()>,
) -> Consumer {
    let keep_every = (args.frames / u32::try_from(SHEET_FRAMES).unwrap_or(1)).max(1);
    let target = args.frames;
    let consumer_sink = Arc::clone(sink);
    Box::new(move |frame: &Completed| {
        if frame.header.DataUsed == 0 {
            return; // given back empty as the pin stops: not a picture
        }
        let mut sink = consumer_sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sink.delivered >= target {
            return; // past the run's count: given back unread
        }
        sink.take(&check, keep_every, frame);
        if sink.delivered == target {
            let _ = done.send(());
        }
    })
}

/// Waits until the sink has its frames or the time budget is spent (three times the frames'
/// time at the run's speed, and a margin), with a progress bar on a terminal.
fn wait_for_frames(
    format: &ImageFormat,
    args: &CaptureArgs,
    sink: &Arc<Mutex<Sink>>,
    finished: &std::sync::mpsc::Receiver<()>,
    run: &mut Run,
) {
    let started = Instant::now();
    #[expect(clippy::cast_precision_loss, reason = "a time budget")]
    let budget = Duration::from_secs_f64(
        f64::from(args.frames) * format.frame_interval as f64 * 1e-7 * 3.0 / args.speed + 5.0,
    );
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(u64::from(args.frames));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos}/{len} frames {wide_bar} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let deadline = started + budget;
    loop {
        let now = Instant::now();
        if now >= deadline {
            run.timed_out = true;
            break;
        }
        let wait = (deadline - now).min(Duration::from_millis(100));
        if finished.recv_timeout(wait).is_ok() {
            break;
        }
        let delivered = sink.lock().map_or(0, |sink| sink.delivered);
        progress.set_position(u64::from(delivered));
    }
    progress.finish_and_clear();
    run.elapsed = started.elapsed();
}

/// The statistics of an allocator the sample or the host made, from its context and what it
/// is: the capture pin's, the scaler's, or the library's default allocator (ks-host's stand-in
/// for a sink's).
fn allocator_of(owner: Owner, context: ks_sys::PVOID) -> (Backend, Option<PoolStats>) {
    match owner {
        Owner::Capture => {
            // SAFETY: the capture pin's allocator is the sample's `CaptureAllocator`; its
            // context lives until STOP.
            let allocator = unsafe { context.cast::<CaptureAllocator>().as_ref() };
            let backend = if allocator.is_some_and(CaptureAllocator::in_device_memory) {
                Backend::CommonBuffer
            } else {
                Backend::PinPool
            };
            (backend, allocator.map(CaptureAllocator::stats))
        }
        // SAFETY: the scaler's output allocator is `DefaultAllocator<ScaleBudget>`; its context
        // lives until STOP.
        Owner::Scaler => (Backend::ScalerPool, unsafe { pool_stats::<ScaleBudget>(context) }),
        // SAFETY: ks-host's stand-in is `DefaultAllocator<DefaultBudget>`; its context lives
        // until STOP.
        Owner::Sink => (Backend::SinkAllocator, unsafe { pool_stats::<DefaultBudget>(context) }),
        Owner::Default => {
            // SAFETY: the host's default allocator is `DefaultAllocator<DefaultBudget>`; its
            // context lives until STOP.
            let stats = unsafe { pool_stats::<DefaultBudget>(context) };
            (Backend::DefaultAllocator, stats)
        }
    }
}

/// Whose allocator serves a pipe.
#[derive(Clone, Copy)]
enum Owner {
    Capture,
    Scaler,
    /// The kernel-mode sink's (the host's stand-in for it).
    Sink,
    /// The default allocator, for a driver pin without an allocator.
    Default,
}

/// Streams on an open filter; fills `run` as it goes.
fn stream(
    filter: &Filter<'_>,
    format: ImageFormat,
    args: &CaptureArgs,
    downstream: &Downstream,
    sink: &Arc<Mutex<Sink>>,
    run: &mut Run,
) -> Result<(), (&'static str, i32)> {
    let range = filter
        .data_ranges(0)
        .into_iter()
        .find(|bytes| ks_sample_core::format::parse_range(bytes).is_ok_and(|r| r == format))
        .ok_or(("data ranges", ks_sys::STATUS_NO_MATCH))?;
    let chosen = filter.intersect(0, range).map_err(status_error("data intersection"))?;
    let pin: Pin<'_> = filter.create_pin(0, &chosen).map_err(status_error("pin create"))?;
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let check = Check { drawn: format, shown: format, marked_at: None };
    connect(&pin, downstream, consumer(sink, check, args, done), run)?;
    pin.set_state(ks_sys::KSSTATE_RUN).map_err(status_error("state change to RUN"))?;
    wait_for_frames(&format, args, sink, &finished, run);
    // PAUSE stops the frame interrupt; the allocator lives until STOP.
    let paused = pin.set_state(ks_sys::KSSTATE_PAUSE);
    let context = pin.allocator_context();
    (run.backend, run.stats) = match (pin.frame_source(), context) {
        (Some(FrameSource::OwnAllocator), Some(context)) => {
            let (backend, stats) = allocator_of(Owner::Capture, context);
            (Some(backend), stats)
        }
        (Some(FrameSource::SinkAllocator), Some(context)) => {
            let (backend, stats) = allocator_of(Owner::Sink, context);
            (Some(backend), stats)
        }
        (Some(FrameSource::ClientBuffers), _) => (Some(Backend::ClientBuffers), None),
        _ => (None, None),
    };
    let stopped = pin.set_state(ks_sys::KSSTATE_STOP);
    paused.and(stopped).map_err(status_error("state change to STOP"))?;
    drop(pin);
    Ok(())
}

/// One pipe of a chain, as the report shows it: the plan and its allocator's statistics.
struct PipeReport {
    summary: PipeSummary,
    backend: Backend,
    stats: Option<PoolStats>,
}

/// Streams through the transforms `through` on the device's filters; fills `run` as it goes.
fn stream_graph(
    device: &Device,
    format: ImageFormat,
    check: Check,
    args: &CaptureArgs,
    downstream: &Downstream,
    sink: &Arc<Mutex<Sink>>,
    run: &mut Run,
) -> Result<(), (&'static str, i32)> {
    let capture = device.open_filter(0).map_err(status_error("filter create"))?;
    let mut filters = Vec::new();
    for transform in args.transforms() {
        let (factory, _) = transform.factory();
        filters.push(device.open_filter(factory).map_err(status_error("filter create"))?);
    }
    let range = capture
        .data_ranges(0)
        .into_iter()
        .find(|bytes| ks_sample_core::format::parse_range(bytes).is_ok_and(|r| r == format))
        .ok_or(("data ranges", ks_sys::STATUS_NO_MATCH))?;
    let chosen = capture.intersect(0, range).map_err(status_error("data intersection"))?;
    let mut stages =
        vec![Stage { name: "cap".to_owned(), filter: &capture, input: None, output: 0 }];
    for (filter, transform) in filters.iter().zip(args.transforms()) {
        let (_, name) = transform.factory();
        stages.push(Stage {
            name: name.to_owned(),
            filter,
            input: Some(ks_sample_core::transform::INPUT),
            output: ks_sample_core::transform::OUTPUT,
        });
    }
    let Downstream::Kernel(framing) = downstream else {
        return Err(("graph", ks_sys::STATUS_INVALID_PARAMETER));
    };
    let view = framing.view().ok_or(("graph", ks_sys::STATUS_INVALID_PARAMETER))?;
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let graph = match Graph::build(&stages, &chosen, &view, consumer(sink, check, args, done)) {
        Ok(graph) => graph,
        Err(error) => {
            let status = match &error {
                GraphError::Pin { status, .. } => *status,
                _ => ks_sys::STATUS_NO_MATCH,
            };
            run.why = Some(error.to_string());
            return Err(("graph", status));
        }
    };
    graph.set_state(ks_sys::KSSTATE_RUN).map_err(status_error("state change to RUN"))?;
    wait_for_frames(&format, args, sink, &finished, run);
    let paused = graph.set_state(ks_sys::KSSTATE_PAUSE);
    for (index, summary) in graph.pipes().iter().enumerate() {
        let owner = match summary.owner.as_str() {
            "cap.out" => Owner::Capture,
            "scale.out" => Owner::Scaler,
            "sink.in" => Owner::Sink,
            _ => Owner::Default,
        };
        let (backend, stats) = graph
            .allocator_context(index)
            .map_or((Backend::SinkAllocator, None), |context| allocator_of(owner, context));
        run.pipes.push(PipeReport { summary: summary.clone(), backend, stats });
    }
    let stopped = graph.set_state(ks_sys::KSSTATE_STOP);
    paused.and(stopped).map_err(status_error("state change to STOP"))?;
    drop(graph);
    Ok(())
}

/// Loads the driver, streams, and unloads it.
fn capture_run(
    format: ImageFormat,
    check: Check,
    args: &CaptureArgs,
    downstream: &Downstream,
    sink: &Arc<Mutex<Sink>>,
) -> Run {
    let mut run = Run::default();
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = match unsafe { Driver::load(ks_sample_core::DriverEntry) } {
        Ok(driver) => driver,
        Err(status) => {
            run.not_started = Some(("DriverEntry", status));
            return run;
        }
    };
    let result =
        driver.add_device().map_err(status_error("device add and start")).and_then(|device| {
            let result = if args.transforms().is_empty() {
                let filter = device.open_filter(0).map_err(status_error("filter create"))?;
                stream(&filter, format, args, downstream, sink, &mut run)
            } else {
                stream_graph(&device, format, check, args, downstream, sink, &mut run)
            };
            drop(device);
            result
        });
    if let Err(failure) = result {
        run.not_started = Some(failure);
    }
    drop(driver);
    run
}

/// Everything the report says.
struct Outcome {
    format: ImageFormat,
    run: Run,
    sink: Sink,
    /// Pool allocations the run made, and how many of them the host failed.
    pool_calls: u64,
    failed_by_host: u64,
    leaked_bytes: usize,
    violations: Vec<String>,
    driver_output: Vec<String>,
    /// Where the contact sheet went, or why not; `None` when none was asked for.
    sheet: Option<Result<PathBuf, String>>,
    p50: u64,
    p99: u64,
    /// What the host's DMA saw during the run.
    dma: ks_host::dma::Stats,
    /// The frame interrupt's DPCs: the longest and the 99th percentile, in microseconds.
    dpc_max: u64,
    dpc_p99: u64,
    sink_kind: SinkKind,
    /// What the sink checked.
    check: Check,
}

/// `STATUS_INSUFFICIENT_RESOURCES (0xC000009A)`: a status by name when it has one.
fn status_text(status: i32) -> String {
    ks_allocator::Error::from_status(status).map_or_else(
        || format!("NTSTATUS {:#010X}", status.cast_unsigned()),
        |error| error.to_string(),
    )
}

/// "1st", "2nd", "3rd", "4th", "11th", "22nd", …
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl Outcome {
    fn status(&self) -> u8 {
        if self.run.not_started.is_some() {
            EXIT_NOT_STARTED
        } else if matches!(self.sheet, Some(Err(_))) {
            EXIT_SHEET_NOT_WRITTEN
        } else {
            0
        }
    }

    /// The failure the exit status reports, for standard error.
    fn failure(&self) -> Option<String> {
        if let Some((step, status)) = self.run.not_started {
            let why = self.run.why.as_ref().map_or_else(String::new, |why| format!(": {why}"));
            return Some(format!(
                "the stream could not start: {step} failed with {}{why}",
                status_text(status)
            ));
        }
        match &self.sheet {
            Some(Err(error)) => Some(format!("the contact sheet could not be written: {error}")),
            _ => None,
        }
    }

    fn text(&self, args: &CaptureArgs) -> String {
        let (run, sink) = (&self.run, &self.sink);
        let mut text = String::new();
        let _ = writeln!(text, "sink: {}", self.sink_kind.describe());
        match &run.plan {
            Some(Plan::Pin(plan)) => negotiate::render(plan, &mut text),
            Some(Plan::Client(plan)) => render_client(plan, &mut text),
            None => {}
        }
        if let Some(backend) = run.backend {
            let _ = writeln!(text, "frames: {}", backend.describe());
        }
        if !args.transforms().is_empty() {
            let names: Vec<&str> = args.transforms().iter().map(|t| t.name()).collect();
            let _ =
                writeln!(text, "through: {} ({} at the sink)", names.join(", "), self.check.shown);
        }
        for (number, pipe) in run.pipes.iter().enumerate() {
            render_pipe(number + 1, pipe, &mut text);
        }
        if let Some(failure) = self.failure().filter(|_| run.not_started.is_some()) {
            let _ = writeln!(text, "{failure}");
        }
        for line in &self.driver_output {
            let _ = writeln!(text, "driver: {line}");
        }
        let _ = writeln!(
            text,
            "{}: {} of {} frames delivered in {:.2} s{}; {} dropped, {} out of order, {} bad \
             content",
            self.format,
            sink.delivered,
            args.frames,
            run.elapsed.as_secs_f64(),
            if run.timed_out { " (timed out)" } else { "" },
            sink.dropped(),
            sink.out_of_order,
            sink.bad_content + sink.wrong_size,
        );
        for problem in &sink.problems {
            let _ = writeln!(text, "  {problem}");
        }
        let _ = writeln!(
            text,
            "latency (frame filled -> sink): p50 {} us, p99 {} us",
            self.p50, self.p99
        );
        let dma = &self.dma;
        let _ = writeln!(
            text,
            "DMA: {} mappings (at most {} a frame), {} bytes written by the device, {} writes \
             refused",
            dma.mappings, dma.max_mappings_per_set, dma.bytes_written, dma.violations
        );
        let build = if cfg!(debug_assertions) { "; a debug build: slower" } else { "" };
        let _ = writeln!(
            text,
            "frame interrupt DPC: longest {} us, p99 {} us (Microsoft's guidance: under \
             {DPC_BUDGET_US} us{build})",
            self.dpc_max, self.dpc_p99
        );
        if let Some(stats) = &run.stats {
            let _ = writeln!(text, "allocator: {}", stats_text(stats));
        }
        if let Some(k) = args.fail_every {
            let _ = writeln!(
                text,
                "host pool: the run made {} pool allocations; {} failed (every {} was to fail)",
                self.pool_calls,
                self.failed_by_host,
                ordinal(k)
            );
        }
        let _ = writeln!(text, "leaked pool memory at unload: {} bytes", self.leaked_bytes);
        for violation in &self.violations {
            let _ = writeln!(text, "verifier: {violation}");
        }
        if let Some(Ok(path)) = &self.sheet {
            let kept = sink.kept.len();
            let _ = writeln!(text, "contact sheet: {} ({kept} frames)", path.display());
        }
        text
    }

    fn json(&self, args: &CaptureArgs) -> serde_json::Value {
        let (run, sink) = (&self.run, &self.sink);
        let allocator = run.backend.map(|backend| allocator_json(backend, run.stats.as_ref()));
        let through: Vec<&str> = args.transforms().iter().map(|t| t.name()).collect();
        let pipes: Vec<serde_json::Value> = run.pipes.iter().map(pipe_json).collect();
        let plan = match &run.plan {
            Some(Plan::Pin(plan)) => Some(negotiate::plan_json(plan)),
            Some(Plan::Client(plan)) => Some(client_json(plan)),
            None => None,
        };
        let not_started = run.not_started.map(|(step, status)| {
            json!({
                "step": step,
                "status": format!("{:#010X}", status.cast_unsigned()),
                "status_name": ks_allocator::Error::from_status(status).and_then(ks_allocator::Error::name),
                "reason": run.why,
            })
        });
        let (png, png_error) = match &self.sheet {
            Some(Ok(path)) => (Some(path.display().to_string()), None),
            Some(Err(error)) => (None, Some(error.clone())),
            None => (None, None),
        };
        json!({
            "status": self.status(),
            "format": self.format.to_string(),
            "frames_requested": args.frames,
            "frames_delivered": sink.delivered,
            "frames_dropped": sink.dropped(),
            "frames_out_of_order": sink.out_of_order,
            "bad_content": sink.bad_content + sink.wrong_size,
            "timed_out": run.timed_out,
            "elapsed_s": run.elapsed.as_secs_f64(),
            "latency_us": { "p50": self.p50, "p99": self.p99 },
            "sink": self.sink_kind.name(),
            "through": through,
            "sink_format": self.check.shown.to_string(),
            "pipes": pipes,
            "plan": plan,
            "own_allocator": matches!(run.backend, Some(Backend::CommonBuffer | Backend::PinPool)),
            "allocator": allocator,
            "dpc_us": { "max": self.dpc_max, "p99": self.dpc_p99 },
            "dma": {
                "mappings": self.dma.mappings,
                "max_mappings_per_frame": self.dma.max_mappings_per_set,
                "bytes_written": self.dma.bytes_written,
                "violations": self.dma.violations,
            },
            "not_started": not_started,
            "host_pool_allocations": self.pool_calls,
            "host_failed_allocations": self.failed_by_host,
            "leaked_bytes": self.leaked_bytes,
            "violations": self.violations,
            "png": png,
            "png_error": png_error,
        })
    }
}

/// An allocator's statistics in words.
fn stats_text(stats: &PoolStats) -> String {
    format!(
        "{} frames, high water {}, {} allocations, {} failed, {} bad frees",
        stats.frames_total,
        stats.high_water,
        stats.allocations,
        stats.failed_allocations,
        stats.bad_frees.total()
    )
}

/// An allocator's kind and statistics, for `--json`.
fn allocator_json(backend: Backend, stats: Option<&PoolStats>) -> serde_json::Value {
    let mut allocator = json!({ "backend": backend.name() });
    if let Some(s) = stats {
        allocator["frames"] = json!(s.frames_total);
        allocator["high_water"] = json!(s.high_water);
        allocator["allocations"] = json!(s.allocations);
        allocator["failed_allocations"] = json!(s.failed_allocations);
        allocator["bad_frees"] = json!(s.bad_frees.total());
    }
    allocator
}

/// A pipe of a chain, for the text report.
fn render_pipe(number: usize, pipe: &PipeReport, out: &mut String) {
    let (summary, f) = (&pipe.summary, pipe.summary.plan.framing);
    let _ = writeln!(out, "pipe {number}: {}", summary.pins.join(" -> "));
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<16} {value}");
    };
    field("owner", summary.owner.clone());
    field("Frames", f.frames.to_string());
    field("FrameSize", f.frame_size.to_string());
    field("FileAlignment", crate::decode::alignment(f.file_alignment));
    field("memory type", summary.plan.memory_type.to_string());
    field("frames from", pipe.backend.describe().to_owned());
    if let Some(stats) = &pipe.stats {
        field("allocator", stats_text(stats));
    }
    let _ = writeln!(out, "  reasons:");
    for reason in &summary.reasons {
        let _ = writeln!(out, "    - {reason}");
    }
}

/// A pipe of a chain, for `--json`: as `framing pipes --json` has it, with its allocator.
fn pipe_json(pipe: &PipeReport) -> serde_json::Value {
    let (summary, f) = (&pipe.summary, pipe.summary.plan.framing);
    let options: Vec<&str> = f.options().iter_names().map(|(name, _)| name).collect();
    json!({
        "pins": summary.pins,
        "owner": summary.owner,
        "frames": f.frames,
        "frame_size": f.frame_size,
        "file_alignment": f.file_alignment,
        "memory_type": summary.plan.memory_type.to_string(),
        "pool_type": f.pool_type.0,
        "pool_type_name": f.pool_type.to_string(),
        "options_flags": f.flags,
        "options": options,
        "reasons": summary.reasons,
        "allocator": allocator_json(pipe.backend, pipe.stats.as_ref()),
    })
}

/// The downstream side `--sink` names; a framing file is read and checked before the run.
fn read_sink(kind: &SinkKind) -> Result<Downstream, Failure> {
    let path = match kind {
        SinkKind::User => return Ok(Downstream::User),
        SinkKind::Kernel => {
            let framing = any_memory_framing();
            let items = framing.items().to_vec();
            let owned = input::Owned { compression: framing.output_compression(), items };
            return Ok(Downstream::Kernel(owned));
        }
        SinkKind::Framing(path) => path,
    };
    let bad = |reason: String| Failure {
        status: EXIT_BAD_ARGUMENT,
        kind: "bad_argument",
        message: format!("--sink {}: {reason}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|error| bad(format!("cannot be read: {error}")))?;
    let framing = input::read(&bytes).map_err(bad)?;
    if framing.view().is_none() {
        return Err(bad("not a framing with at least one item".to_owned()));
    }
    Ok(Downstream::Kernel(framing))
}

/// A user-mode client's plan, for the text report.
fn render_client(plan: &ClientPlan, out: &mut String) {
    let _ = writeln!(out, "plan: a user-mode client brings its own buffers (no allocator)");
    let _ = writeln!(out, "  {:<16} {}", "buffers", plan.frames);
    let _ = writeln!(out, "  {:<16} {}", "FrameSize", plan.frame_size);
    let _ = writeln!(
        out,
        "  {:<16} {}",
        "FileAlignment",
        crate::decode::alignment(plan.file_alignment)
    );
    let _ = writeln!(out, "  {:<16} {} ({})", "item", plan.item, plan.item_memory_type);
    let _ = writeln!(out, "reasons:");
    for refusal in plan.skipped() {
        let _ = writeln!(out, "  - passed over {refusal}");
    }
    let _ = writeln!(
        out,
        "  - item {}: the first the client's buffers can fill (system memory, locked and mapped)",
        plan.item
    );
}

/// A user-mode client's plan, for `--json`.
fn client_json(plan: &ClientPlan) -> serde_json::Value {
    let mut reasons: Vec<String> =
        plan.skipped().map(|refusal| format!("passed over {refusal}")).collect();
    reasons.push(format!(
        "item {}: the first the client's buffers can fill (system memory, locked and mapped)",
        plan.item
    ));
    json!({
        "owner": "none",
        "client": true,
        "frames": plan.frames,
        "frame_size": plan.frame_size,
        "file_alignment": plan.file_alignment,
        "upstream_item": plan.item,
        "memory_type": plan.item_memory_type.to_string(),
        "reasons": reasons,
    })
}

/// The contact sheet's file, opened (created or truncated) before the run so that a path that
/// cannot be written is refused before anything streams.
fn open_sheet(path: &Path) -> Result<std::fs::File, Failure> {
    let bad = |reason: String| Failure {
        status: EXIT_BAD_ARGUMENT,
        kind: "bad_argument",
        message: format!("--png {}: {reason}", path.display()),
    };
    if path.is_dir() {
        return Err(bad("is a directory; name a file to write".to_owned()));
    }
    std::fs::File::create(path).map_err(|error| bad(format!("cannot be written: {error}")))
}

/// What a capture run gives the command line: the report for standard output, its exit
/// status, and the failure that status reports, for standard error.
pub struct Report {
    /// The report (and the JSON line with `--json`).
    pub text: String,
    /// The exit status.
    pub status: u8,
    /// Why the status is not 0, if it is not.
    pub failure: Option<String>,
}

/// Runs the command.
///
/// # Errors
///
/// A bad `--png` path, before anything runs.
pub fn run(args: &CaptureArgs) -> Result<Report, Failure> {
    let format = args.format;
    let sink_kind = args.sink();
    let bad =
        |message: String| Failure { status: EXIT_BAD_ARGUMENT, kind: "bad_argument", message };
    if !args.transforms().is_empty() && sink_kind == SinkKind::User {
        return Err(bad(
            "--through: a chain of filters ends in a kernel-mode sink; --sink user connects a \
             user-mode client to the capture pin alone (use --sink kernel or a framing file)"
                .to_owned(),
        ));
    }
    let check = shown_after(format, args.transforms())
        .map_err(|reason| bad(format!("--through: {reason}")))?;
    let downstream = read_sink(&sink_kind)?;
    let sheet_file = args.png.as_deref().map(open_sheet).transpose()?;
    ks_host::ke::set_time_scale(args.speed);
    // Setting a schedule restarts the host's call count: one for every run, failing or not.
    match args.fail_every {
        Some(k) => ks_host::pool::fail_every(k),
        None => ks_host::pool::clear_failures(),
    }
    let failed_before = ks_host::pool::failed_allocations();
    let dma_before = ks_host::dma::stats();
    let _ = ks_host::ke::take_dpc_durations();
    let sink = Arc::new(Mutex::new(Sink::default()));
    let run = capture_run(format, check, args, &downstream, &sink);
    let dma = ks_host::dma::stats();
    let mut dpcs = ks_host::ke::take_dpc_durations();
    dpcs.sort_unstable();
    let pool_calls = ks_host::pool::allocation_calls();
    ks_host::pool::clear_failures();
    let mut sink =
        std::mem::take(&mut *sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    sink.latencies.sort_unstable();
    let sheet = match (args.png.as_ref(), sheet_file) {
        (Some(path), Some(file)) if !sink.kept.is_empty() => {
            Some(write_sheet(file, path, &check.shown, &sink.kept).map(|()| path.clone()))
        }
        (Some(path), _) => {
            // Nothing to draw: the file made when the path was checked goes again.
            let _ = std::fs::remove_file(path);
            (run.not_started.is_none()).then(|| Err("no frame was delivered to draw".to_owned()))
        }
        (None, _) => None,
    };
    let outcome = Outcome {
        format,
        run,
        p50: percentile(&sink.latencies, 0.50),
        p99: percentile(&sink.latencies, 0.99),
        dma: ks_host::dma::Stats {
            mappings: dma.mappings - dma_before.mappings,
            bytes_written: dma.bytes_written - dma_before.bytes_written,
            violations: dma.violations - dma_before.violations,
            ..dma
        },
        dpc_max: dpcs.last().map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        dpc_p99: percentile(&dpcs, 0.99),
        sink_kind,
        check,
        sink,
        pool_calls,
        failed_by_host: ks_host::pool::failed_allocations() - failed_before,
        leaked_bytes: ks_host::pool::live().bytes,
        violations: ks_host::verifier::take_violations().iter().map(ToString::to_string).collect(),
        driver_output: ks_host::debug::take_output()
            .into_iter()
            .map(|record| record.text.trim_end().to_owned())
            .collect(),
        sheet,
    };
    let mut text = outcome.text(args);
    if args.json {
        let _ = writeln!(text, "{}", outcome.json(args));
    }
    Ok(Report { text, status: outcome.status(), failure: outcome.failure() })
}

/// A frame as top-down RGB rows.
fn to_rgb(format: &ImageFormat, data: &[u8]) -> Vec<u8> {
    let (width, height) = (format.width as usize, format.height as usize);
    let stride = format.stride();
    let mut rgb = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        match format.subtype {
            Subtype::Rgb24 => {
                // Bottom-up: the first stored row is the picture's last.
                let row = &data[(height - 1 - y) * stride..][..width * 3];
                for bgr in row.chunks_exact(3) {
                    rgb.extend_from_slice(&[bgr[2], bgr[1], bgr[0]]);
                }
            }
            Subtype::Yuy2 => {
                let row = &data[y * stride..][..width * 2];
                for pair in row.chunks_exact(4) {
                    let (u, v) = (pair[1], pair[3]);
                    rgb.extend_from_slice(&yuv_to_rgb(pair[0], u, v));
                    rgb.extend_from_slice(&yuv_to_rgb(pair[2], u, v));
                }
            }
        }
    }
    rgb
}

/// BT.601 studio-swing YUV to RGB.
fn yuv_to_rgb(luma: u8, blue_diff: u8, red_diff: u8) -> [u8; 3] {
    let luma = 1.164 * (f64::from(luma) - 16.0);
    let cb = f64::from(blue_diff) - 128.0;
    let cr = f64::from(red_diff) - 128.0;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..=255"
    )]
    let clamp = |x: f64| x.round().clamp(0.0, 255.0) as u8;
    [clamp(luma + 1.596 * cr), clamp(luma - 0.392 * cb - 0.813 * cr), clamp(luma + 2.017 * cb)]
}

/// Writes the kept frames as a grid of thumbnails (half size above 320 pixels wide).
fn write_sheet(
    file: std::fs::File,
    path: &Path,
    format: &ImageFormat,
    kept: &[(u32, Vec<u8>)],
) -> Result<(), String> {
    let scale = if format.width > 320 { 2 } else { 1 };
    let (tw, th) = (format.width as usize / scale, format.height as usize / scale);
    let gap = 4;
    let columns = SHEET_COLUMNS.min(kept.len());
    let rows = kept.len().div_ceil(SHEET_COLUMNS);
    let (sw, sh) = (columns * (tw + gap) + gap, rows * (th + gap) + gap);
    let mut sheet = vec![32u8; sw * sh * 3];
    for (index, (_, data)) in kept.iter().enumerate() {
        let rgb = to_rgb(format, data);
        let (x0, y0) = (
            gap + (index % SHEET_COLUMNS) * (tw + gap),
            gap + (index / SHEET_COLUMNS) * (th + gap),
        );
        for y in 0..th {
            for x in 0..tw {
                let from = ((y * scale) * format.width as usize + x * scale) * 3;
                let to = ((y0 + y) * sw + x0 + x) * 3;
                sheet[to..to + 3].copy_from_slice(&rgb[from..from + 3]);
            }
        }
    }
    let (w, h) = (
        u32::try_from(sw).map_err(|e| e.to_string())?,
        u32::try_from(sh).map_err(|e| e.to_string())?,
    );
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| format!("{}: {e}", path.display()))?;
    writer.write_image_data(&sheet).map_err(|e| format!("{}: {e}", path.display()))?;
    writer.finish().map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_bad_ones_name_the_problem() {
        assert_eq!(parse_format("rgb24:640x480"), Ok(FORMATS[3]));
        assert_eq!(parse_format("YUY2:320X240"), Ok(FORMATS[0]));
        assert!(parse_format("nv12:320x240").unwrap_err().contains("unknown subtype \"nv12\""));
        assert!(
            parse_format("rgb24:800x600")
                .unwrap_err()
                .contains("800x600 is not in the pin's data ranges")
        );
        assert!(parse_format("rgb24").unwrap_err().contains("SUBTYPE:WIDTHxHEIGHT"));
        assert!(parse_format("rgb24:big").unwrap_err().contains("WIDTHxHEIGHT"));
    }

    #[test]
    fn yuv_white_and_black_convert() {
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
    }

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&samples, 0.5), 51);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
