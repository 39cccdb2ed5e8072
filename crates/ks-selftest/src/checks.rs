//! The checks: each runs the library's real code and compares what it did with what its
//! contract says, in whatever build this crate is linked into.
//!
//! 1. the `ExAllocatePool2` lookup (present, or absent and the `ExAllocatePoolWithTag` fallback
//!    serving) and a [`PoolBox`] in system pool;
//! 2. frame pools over non-paged and paged system memory: distinct writable frames, exhaustion
//!    returning `None` at once, counters that balance; a pool spread over the machine's
//!    processors (`KeQueryActiveProcessorCountEx`, `KeGetCurrentProcessorNumberEx`);
//! 3. every alignment mask from 0 to 0xFFF;
//! 4. every kind of bad free (foreign, interior, double) caught and counted, the pool intact;
//! 5. `DEFAULT_DISPATCH` through its four C pointers, as AVStream calls them: initialise with a
//!    negotiated framing for a pin whose descriptor carries avshws's framing, allocate to
//!    exhaustion, free, delete with frames still out, and a refused request;
//! 6. the parser and validator on every embedded real framing, and a truncated one refused;
//! 7. `negotiate()` of each capture pin's run-time framing with a typical sink;
//! 8. the library's debug output, with a line `.ci/wine-selftest` compares byte for byte;
//! 9. nothing the library allocated left behind.

use core::ptr::NonNull;

use ks_allocator::{
    AllocatorRequest, DEFAULT_DISPATCH, FramePool, PinConstraints, PoolBox, PoolConfig,
    framing::{Framing, FramingEx, FramingExView, ItemFlags, MemoryType, OptionFlags, PoolType},
    live_allocations, negotiate,
    pool::{BadFree, SystemMemory},
    uses_allocate_pool2,
};
use ks_sys::{KSPIN, KSPIN_DESCRIPTOR_EX, NTSTATUS, PVOID};

use crate::{
    corpus,
    report::{Failure, Outcome, Report, Summary, equal, holds},
};

/// The pool tag of the self-test's own allocations ("KsSt").
pub const TAG: u32 = u32::from_le_bytes(*b"KsSt");

/// The line the debug-output check prints, which `.ci/wine-selftest` looks for byte for byte: the
/// library's formatting of signed, unsigned, hexadecimal and text arguments through
/// `DbgPrintEx`.
pub const FORMAT_LINE: &str = "format: 42 -7 0x2a 18446744073709551615 text \"quoted\" 100% done";

/// Runs every check, reporting each, and returns the counts (after printing them).
///
/// # IRQL
///
/// PASSIVE_LEVEL (paged pool and the first `ExAllocatePool2` lookup).
#[must_use = "the summary says whether every check passed"]
pub fn run(mut report: Report<'_>) -> Summary {
    let baseline = live_allocations();
    system(&mut report);
    pools(&mut report);
    spread_pool(&mut report);
    alignments(&mut report);
    bad_frees(&mut report);
    dispatch(&mut report);
    framings(&mut report);
    negotiation(&mut report);
    debug_output(&mut report);
    report.check(
        format_args!("nothing the library allocated is left"),
        equal("live allocations", baseline as u64, live_allocations() as u64),
    );
    report.finish()
}

fn status_failure(what: &'static str, status: NTSTATUS) -> Failure {
    // The status's 32 bits, as they are printed in NT documentation.
    Failure { what, expected: 0, actual: u64::from(status.cast_unsigned()) }
}

fn request(
    frames: u32,
    size: u32,
    mask: u32,
    pool_type: PoolType,
) -> Result<AllocatorRequest, Failure> {
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, pool_type, frames, size, mask);
    AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT).map_err(|error| {
        status_failure("allocator request", ks_allocator::Error::from(error).to_status())
    })
}

fn pool(frames: u32, size: u32, mask: u32, paged: bool) -> Result<FramePool, Failure> {
    let (memory, pool_type) = if paged {
        (SystemMemory::PAGED, PoolType::PAGED)
    } else {
        (SystemMemory::NON_PAGED, PoolType::NON_PAGED)
    };
    FramePool::new(&request(frames, size, mask, pool_type)?, memory)
        .map_err(|error| status_failure("pool creation", error.to_status()))
}

/// Takes up to `N` frames; the rest of the array is `None`.
fn take<const N: usize>(pool: &FramePool) -> [Option<NonNull<u8>>; N] {
    let mut frames = [None; N];
    for slot in &mut frames {
        *slot = pool.allocate();
    }
    frames
}

/// Gives back every frame in `frames`.
fn give_back(pool: &FramePool, frames: &[Option<NonNull<u8>>]) -> Outcome {
    for frame in frames.iter().flatten() {
        holds("a frame the pool handed out is taken back", pool.free(*frame).is_ok())?;
    }
    Ok(())
}

/// The byte written over frame `n`.
fn pattern(n: usize) -> u8 {
    n.to_le_bytes()[0] ^ 0x5A
}

/// The frames are all there, pairwise disjoint over `size` bytes, aligned to `mask + 1`, and
/// each holds what was written to it.
fn frames_are_sound(frames: &[Option<NonNull<u8>>], size: usize, mask: usize) -> Outcome {
    let mut start = [0_usize; 16];
    let count = frames.len().min(start.len());
    for (n, (frame, slot)) in frames.iter().zip(start.iter_mut()).enumerate() {
        let Some(frame) = frame else {
            return equal("frames handed out", frames.len() as u64, n as u64);
        };
        *slot = frame.as_ptr() as usize;
        equal("address bits under the alignment mask", 0, (*slot & mask) as u64)?;
        // SAFETY: the pool handed out `size` writable bytes at `frame`, owned by this check.
        unsafe { frame.as_ptr().write_bytes(pattern(n), size) };
    }
    let starts = start.get_mut(..count).unwrap_or_default();
    starts.sort_unstable();
    holds(
        "frames do not overlap",
        starts.windows(2).all(|w| matches!(w, [a, b] if a + size <= *b)),
    )?;
    for (n, frame) in frames.iter().flatten().enumerate() {
        // SAFETY: as above; nothing else wrote these frames since.
        let bytes = unsafe { core::slice::from_raw_parts(frame.as_ptr(), size) };
        holds("a frame keeps what was written to it", bytes.iter().all(|b| *b == pattern(n)))?;
    }
    Ok(())
}

fn system(report: &mut Report<'_>) {
    let present = uses_allocate_pool2();
    report.check(
        format_args!(
            "ExAllocatePool2 lookup: {}",
            if present {
                "present, frames come from it"
            } else {
                "absent, ExAllocatePoolWithTag serves"
            }
        ),
        holds("the same answer twice", present == uses_allocate_pool2()),
    );
    let before = live_allocations();
    let outcome = (|| {
        let value = 0x0123_4567_89AB_CDEF_u64;
        let boxed = PoolBox::new(value, TAG).map_err(|_| status_failure("PoolBox::new", -1))?;
        equal("value read back", value, *boxed)?;
        equal("tag", u64::from(TAG), u64::from(PoolBox::tag(&boxed)))?;
        equal("live allocations with the box", before as u64 + 1, live_allocations() as u64)?;
        drop(boxed);
        equal("live allocations after the box", before as u64, live_allocations() as u64)
    })();
    report.check(format_args!("PoolBox in system pool, freed with its tag"), outcome);
}

fn pools(report: &mut Report<'_>) {
    for paged in [false, true] {
        let memory = if paged { "paged" } else { "non-paged" };
        let outcome = (|| {
            let pool = pool(8, 4096, 0xF, paged)?;
            let frames = take::<8>(&pool);
            frames_are_sound(&frames, 4096, 0xF)?;
            give_back(&pool, &frames)
        })();
        report.check(
            format_args!("frame pool over {memory} memory: 8 distinct writable frames"),
            outcome,
        );

        let outcome = (|| {
            let pool = pool(5, 1500, 0x7, paged)?;
            let frames = take::<5>(&pool);
            holds("5 frames before exhaustion", frames.iter().all(Option::is_some))?;
            holds("exhaustion returns None at once", pool.allocate().is_none())?;
            give_back(&pool, &frames)?;
            let stats = pool.stats();
            equal("allocations", 5, stats.allocations)?;
            equal("frees", 5, stats.frees)?;
            equal("failed allocations", 1, stats.failed_allocations)?;
            equal("high water", 5, u64::from(stats.high_water))?;
            equal("frames free", 5, u64::from(stats.frames_free))?;
            equal("frames outstanding", 0, u64::from(stats.frames_outstanding))
        })();
        report.check(
            format_args!("frame pool over {memory} memory: exhaustion and statistics"),
            outcome,
        );
    }
}

/// A pool spread over the machine's processors (`KeQueryActiveProcessorCountEx`, and
/// `KeGetCurrentProcessorNumberEx` at every allocation): as many shards as the documented rule
/// gives, every frame handed out once from wherever the thread runs, a double free caught in
/// each shard.
fn spread_pool(report: &mut Report<'_>) {
    // SAFETY: a plain-value argument (0xFFFF, ALL_PROCESSOR_GROUPS, a USHORT by definition).
    let processors = unsafe { ks_sys::KeQueryActiveProcessorCountEx(0xFFFF) };
    let outcome = (|| {
        let pool = pool(8, 256, 0xF, false)?;
        // The rule of the pool's module documentation for 8 frames.
        let wanted = (processors as usize).clamp(1, 8);
        let per = 8_usize.div_ceil(wanted).next_power_of_two();
        let expected = if wanted < 2 { 1 } else { 8_usize.div_ceil(per) };
        equal("shards", expected as u64, pool.shards() as u64)?;
        let frames = take::<9>(&pool);
        holds(
            "8 frames, then None",
            frames[..8].iter().all(Option::is_some) && frames[8].is_none(),
        )?;
        frames_are_sound(&frames[..8], 256, 0xF)?;
        give_back(&pool, &frames)?;
        for frame in frames.iter().flatten() {
            holds(
                "a second free is a double free",
                matches!(pool.free(*frame), Err(BadFree::Double { .. })),
            )?;
        }
        let stats = pool.stats();
        equal("frames free", 8, u64::from(stats.frames_free))?;
        equal("double frees", 8, stats.bad_frees.double)?;
        // Every frame was out at once: whatever the processors, the peak is the frame count.
        equal("high water", 8, u64::from(stats.high_water))
    })();
    report.check(
        format_args!("frame pool spread over the machine's {processors} processor(s)"),
        outcome,
    );
}

fn alignments(report: &mut Report<'_>) {
    for mask in [0_u32, 0x1, 0x3, 0x7, 0xF, 0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF] {
        let outcome = (|| {
            let pool = pool(3, 1000, mask, false)?;
            let frames = take::<3>(&pool);
            frames_are_sound(&frames, 1000, mask as usize)?;
            give_back(&pool, &frames)
        })();
        report.check(
            format_args!("alignment mask {mask:#05x}: 3 frames of 1000 bytes aligned"),
            outcome,
        );
    }
}

fn bad_frees(report: &mut Report<'_>) {
    let pool = match pool(4, 256, 0xF, false) {
        Ok(pool) => pool,
        Err(failure) => {
            report.check(format_args!("bad frees: the pool"), Err(failure));
            return;
        }
    };
    let foreign = [0_u8; 64];
    let outcome = match pool.free(NonNull::from(&foreign).cast()) {
        Err(BadFree::Foreign { .. }) => Ok(()),
        _ => holds("a foreign pointer is refused as Foreign", false),
    };
    report.check(format_args!("bad free of a foreign pointer is refused"), outcome);

    let frame = pool.allocate();
    let interior = frame.and_then(|frame| NonNull::new(frame.as_ptr().wrapping_add(16)));
    let outcome = match interior.map(|pointer| pool.free(pointer)) {
        Some(Err(BadFree::Interior { offset: 16, .. })) => Ok(()),
        _ => holds("a pointer 16 bytes into a frame is refused as Interior", false),
    };
    report.check(format_args!("bad free of a pointer into a frame is refused"), outcome);

    let outcome = match frame.map(|frame| (pool.free(frame), pool.free(frame))) {
        Some((Ok(()), Err(BadFree::Double { .. }))) => Ok(()),
        _ => holds("the second free of a frame is refused as Double", false),
    };
    report.check(format_args!("double free is refused"), outcome);

    let outcome = (|| {
        let stats = pool.stats();
        equal("foreign frees counted", 1, stats.bad_frees.foreign)?;
        equal("interior frees counted", 1, stats.bad_frees.interior)?;
        equal("double frees counted", 1, stats.bad_frees.double)?;
        let frames = take::<4>(&pool);
        frames_are_sound(&frames, 256, 0xF)?;
        holds("still exactly 4 frames", pool.allocate().is_none())?;
        give_back(&pool, &frames)
    })();
    report.check(format_args!("bad frees are counted and the pool is intact"), outcome);
}

/// A `KSALLOCATOR_FRAMING_EX` copied to 8-byte-aligned storage, as a descriptor points at one.
#[repr(C, align(8))]
struct AlignedFraming([u8; 512]);

impl AlignedFraming {
    fn of(bytes: &[u8]) -> Self {
        let mut copy = AlignedFraming([0; 512]);
        for (to, from) in copy.0.iter_mut().zip(bytes) {
            *to = *from;
        }
        copy
    }
}

/// A typical sink's framing: any memory, system memory, preferences only.
static SINK: FramingEx<1> = FramingEx::simple(
    MemoryType::DONT_CARE,
    ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY),
    0,
    0,
    0,
    u32::MAX,
);

fn dispatch(report: &mut Report<'_>) {
    let (Some(initialize), Some(delete), Some(allocate), Some(free)) = (
        DEFAULT_DISPATCH.InitializeAllocator,
        DEFAULT_DISPATCH.DeleteAllocator,
        DEFAULT_DISPATCH.Allocate,
        DEFAULT_DISPATCH.Free,
    ) else {
        report.check(
            format_args!("DEFAULT_DISPATCH has its four callbacks"),
            holds("callbacks", false),
        );
        return;
    };
    let declared = AlignedFraming::of(corpus::framing("wds-avshws-capture.declared"));
    // SAFETY: all-zero is a valid KSPIN_DESCRIPTOR_EX and KSPIN (integers, NULL pointers, None).
    let mut descriptor: KSPIN_DESCRIPTOR_EX = unsafe { core::mem::zeroed() };
    descriptor.Flags = ks_sys::KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING;
    descriptor.AllocatorFraming = (&raw const declared.0).cast();
    // SAFETY: as above.
    let mut pin: KSPIN = unsafe { core::mem::zeroed() };
    pin.Descriptor = &raw const descriptor;

    let plan = FramingExView::parse(corpus::framing("wds-avshws-capture.runtime-rgb24-320x240"))
        .ok()
        .and_then(|capture| negotiate(&capture, &SINK.view()).ok());
    let Some(plan) = plan else {
        report.check(
            format_args!("DEFAULT_DISPATCH: avshws's framing negotiates"),
            holds("a plan", false),
        );
        return;
    };
    let before = live_allocations();
    let framing = plan.framing.to_raw();
    let mut context: PVOID = core::ptr::null_mut();
    // SAFETY: what AVStream passes: the pin (whose descriptor and framing outlive the call), the
    // request's framing and where to store the context.
    let status =
        unsafe { initialize(&raw mut pin, (&raw const framing).cast_mut(), &raw mut context) };
    let outcome = (|| {
        equal("InitializeAllocator status", 0, u64::from(status.cast_unsigned()))?;
        holds("a context", !context.is_null())
    })();
    let initialized = outcome.is_ok();
    report.check(
        format_args!(
            "DEFAULT_DISPATCH InitializeAllocator: avshws RGB24 320x240 ({} frames of {} bytes)",
            plan.framing.frames, plan.framing.frame_size
        ),
        outcome,
    );
    if !initialized {
        return;
    }

    let mut frames = [core::ptr::null_mut::<core::ffi::c_void>(); 16];
    let mut handed = 0_usize;
    for slot in &mut frames {
        // SAFETY: a live context from InitializeAllocator.
        *slot = unsafe { allocate(context) };
        if slot.is_null() {
            break;
        }
        handed += 1;
    }
    report.check(
        format_args!("DEFAULT_DISPATCH Allocate: exactly the planned frames, then NULL"),
        equal("frames handed out", u64::from(plan.framing.frames), handed as u64),
    );

    for frame in frames.iter().take(handed.saturating_sub(1)) {
        // SAFETY: a live context and a frame it handed out, freed once.
        unsafe { free(context, *frame) };
    }
    // SAFETY: as above; all but the last frame were given back, so one is available again.
    let again = unsafe { allocate(context) };
    report.check(
        format_args!("DEFAULT_DISPATCH Free: a freed frame is handed out again"),
        holds("a frame after a free", !again.is_null() && frames.contains(&again)),
    );

    let live_before_delete = live_allocations();
    // SAFETY: the context from InitializeAllocator, deleted once; no call follows. Two frames
    // are still out: the allocator is kept, memory and all, and reported.
    unsafe { delete(context) };
    report.check(
        format_args!(
            "DEFAULT_DISPATCH DeleteAllocator with frames outstanding keeps them until released"
        ),
        retired_until_released(live_before_delete, before),
    );

    let paged = Framing { pool_type: PoolType::PAGED, ..plan.framing }.to_raw();
    let mut untouched: PVOID = NonNull::<u8>::dangling().as_ptr().cast();
    let sentinel = untouched;
    // SAFETY: as for the first call.
    let status =
        unsafe { initialize(&raw mut pin, (&raw const paged).cast_mut(), &raw mut untouched) };
    let outcome = (|| {
        equal(
            "status of paged frames for a DISPATCH_LEVEL pin",
            u64::from(ks_sys::STATUS_INVALID_PARAMETER.cast_unsigned()),
            u64::from(status.cast_unsigned()),
        )?;
        holds("the context is untouched", untouched == sentinel)?;
        equal("live allocations", before as u64, live_allocations() as u64)
    })();
    report.check(
        format_args!("DEFAULT_DISPATCH refuses paged frames for a DISPATCH_LEVEL pin"),
        outcome,
    );
}

/// After an allocator was deleted with two frames out: it is retired with its memory, and
/// releasing the retired allocators gives the pool allocations back to `before`.
fn retired_until_released(live_before_delete: usize, before: usize) -> Outcome {
    let retired = ks_allocator::retired_allocators();
    equal("retired allocators", 1, u64::from(retired.allocators))?;
    equal("frames out when retired", 2, retired.frames)?;
    equal("live allocations kept", live_before_delete as u64, live_allocations() as u64)?;
    // SAFETY: nothing uses the two frames still out.
    let released = unsafe { ks_allocator::release_retired_allocators() };
    equal("allocators released", 1, u64::from(released.allocators))?;
    equal("live allocations after the release", before as u64, live_allocations() as u64)
}

fn framings(report: &mut Report<'_>) {
    for (name, bytes) in corpus::FRAMINGS {
        let outcome = match FramingExView::parse(bytes) {
            Ok(view) => holds("the framing validates without errors", view.check().is_ok()),
            Err(_) => holds("the framing parses", false),
        };
        report.check(format_args!("framing {name}: parses and validates"), outcome);
    }
    let bytes = corpus::framing("wds-avshws-capture.runtime");
    let truncated = bytes.get(..bytes.len().saturating_sub(4)).unwrap_or_default();
    report.check(
        format_args!("a truncated framing is refused by the parser"),
        holds("a parse error", FramingExView::parse(truncated).is_err()),
    );
}

fn negotiation(report: &mut Report<'_>) {
    for name in [
        "wds-avshws-capture.runtime",
        "wds-avscamera-video.runtime",
        "wds-avscamera-image.runtime",
        "wds-avssamp-video.runtime",
        "wds-avssamp-audio.runtime",
    ] {
        let outcome = (|| {
            let capture = FramingExView::parse(corpus::framing(name)).map_err(|_| Failure {
                what: "the framing parses",
                expected: 1,
                actual: 0,
            })?;
            let plan = negotiate(&capture, &SINK.view()).map_err(|_| Failure {
                what: "a plan",
                expected: 1,
                actual: 0,
            })?;
            let item = capture.items().nth(plan.upstream_item).ok_or(Failure {
                what: "the chosen item exists",
                expected: 1,
                actual: 0,
            })?;
            let range = item.physical_range;
            let size = plan.framing.frame_size;
            holds(
                "the frame size lies in the capture item's physical range",
                range.min_frame_size <= size
                    && (range.max_frame_size == 0 || size <= range.max_frame_size),
            )?;
            holds(
                "a request can be made of it",
                plan.request(&PinConstraints::NONE, &PoolConfig::DEFAULT).is_ok(),
            )
        })();
        report.check(format_args!("negotiate {name} with a sink"), outcome);
    }
}

fn debug_output(report: &mut Report<'_>) {
    report.note(format_args!(
        "format: {} {} {:#x} {} {} {:?} {}% done",
        42_u32,
        -7_i32,
        42_u32,
        u64::MAX,
        "text",
        "quoted",
        100
    ));
    report.check(format_args!("debug output formatted by the library (the line above)"), Ok(()));
}
