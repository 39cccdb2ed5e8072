//! The scaler: a transform filter that halves the picture in both directions (640x480 in,
//! 320x240 out, YUY2 or RGB24, [`render::scale_half`]).
//!
//! It is not in place: each output frame is a new, smaller frame from the output pipe's
//! allocator, which is the output pin's own ([`ScaleAllocator`], the library's pool within
//! [`ScaleBudget`], through `KSPIN_DISPATCH.Allocator`). The output framing says so
//! ([`OUTPUT_FRAMING`]): `MUST_ALLOCATE`, and the 1:4 output compression (a quarter of the
//! input's bytes) with `INSIST_ON_FRAMESIZE_RATIO`, so that a graph sizes the output pipe's
//! frames from the input pipe's and refuses a connection that cannot take them. The input pin
//! takes frames in any system memory ([`INPUT_FRAMING`]).
//!
//! Its `Process` is filter-centric ([`crate::transform`]), at PASSIVE_LEVEL.

use ks_allocator::{
    Budget, DefaultAllocator, PoolConfig,
    framing::{Compression, FramingEx, FramingItem, FramingRange, ItemFlags, MemoryType},
};
use ks_sys::{KSFILTER, KSPROCESSPIN_INDEXENTRY, NTSTATUS, STATUS_SUCCESS};

use crate::{
    format::{ImageFormat, Subtype},
    render,
    transform::{self, ProcessPins},
};

/// Frames the output pin asks for: one being filled, one with the consumer, one spare.
pub const FRAMES: u32 = 3;

/// The input pin's framing: any size, kernel non-paged memory the processor can read, one
/// frame held at a time.
pub static INPUT_FRAMING: FramingEx<1> =
    FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
        .with_flags(ItemFlags::SYSTEM_MEMORY)
        .with_frames(1)
        .with_alignment(ks_sys::FILE_BYTE_ALIGNMENT)
        .with_physical_range(FramingRange::new(1, u32::MAX))
        .with_optimal_range(FramingRange::new(1, u32::MAX))]);

/// The output pin's framing: a quarter of the input's bytes (1:4, no margin: half the width
/// and half the height at the same pixel size), insisted on; frames its own pool allocates
/// (`MUST_ALLOCATE`), [`FRAMES`] of them, 8-byte aligned.
pub static OUTPUT_FRAMING: FramingEx<1> =
    FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
        .with_flags(
            ItemFlags::SYSTEM_MEMORY
                .union(ItemFlags::MUST_ALLOCATE)
                .union(ItemFlags::INSIST_ON_FRAMESIZE_RATIO),
        )
        .with_frames(FRAMES)
        .with_alignment(ks_sys::FILE_QUAD_ALIGNMENT)
        .with_physical_range(FramingRange::new(1, u32::MAX))
        .with_optimal_range(FramingRange::new(1, u32::MAX))])
    .with_compression(Compression::new(1, 4, 0));

/// The largest output frame: 320x240 RGB24 (three bytes a pixel, against YUY2's two).
const MAX_OUTPUT_BYTES: usize = ImageFormat::new(Subtype::Rgb24, 320, 240).image_size();

/// The output allocator's budget: twice [`FRAMES`] frames of the largest output picture,
/// whole pages each, and no more (an allocator create request can come from any process that
/// opened the pin).
pub struct ScaleBudget;

impl Budget for ScaleBudget {
    const CONFIG: PoolConfig = PoolConfig::DEFAULT
        .with_max_frames(2 * FRAMES)
        .with_max_bytes(2 * FRAMES as usize * MAX_OUTPUT_BYTES.next_multiple_of(4096))
        .with_uncapped_frames(FRAMES);
}

/// The output pin's allocator: the library's pool over non-paged system memory, within
/// [`ScaleBudget`].
pub type ScaleAllocator = DefaultAllocator<ScaleBudget>;

/// `AVStrMiniFilterProcess`: scales the frame at the input's leading edge into the frame at the
/// output's, which takes the input's timing and `KS_FRAME_INFO` and goes downstream
/// (`Terminate`); the input frame is used up either way. An input frame that is not a whole
/// picture of the input's format is dropped, and the output frame kept for the next.
/// PASSIVE_LEVEL, with the filter's processing mutex held by AVStream.
///
/// # Safety
///
/// Only AVStream calls it, with the filter and its process pin index.
pub(crate) unsafe extern "C" fn process(
    _filter: *mut KSFILTER,
    index: *mut KSPROCESSPIN_INDEXENTRY,
) -> NTSTATUS {
    // SAFETY: the index AVStream passes this filter's Process, used in this call only.
    let Some(ProcessPins { mut input, mut output }) = (unsafe { ProcessPins::new(index) }) else {
        return ks_sys::STATUS_PENDING;
    };
    let (in_format, out_format, available) = (input.format(), output.format(), input.available());
    let scaled = match (in_format, out_format, input.data(), output.data()) {
        (Some(in_format), Some(out_format), Some(from), Some(to)) => {
            render::scale_half(&in_format, from, &out_format, to)
        }
        _ => None,
    };
    input.set_used(available);
    if let Some(bytes) = scaled {
        // SAFETY: the headers of the two frames at the process pins' leading edges in this
        // call.
        unsafe { transform::copy_timing(input.stream_header(), output.stream_header()) };
        output.set_used(u32::try_from(bytes).unwrap_or(0));
        output.terminate();
    }
    STATUS_SUCCESS
}
