//! The overlay: an in-place transform filter that marks every frame passing through it (a
//! border and a stamp of the time it saw the frame, [`render::mark`]) without copying it.
//!
//! Its two pins declare the same framing ([`FRAMING`]): `INPLACE_MODIFIER`, so that a graph
//! may run its input and output connections as one pipe (the frames of the upstream allocator
//! pass through it and go on downstream: no allocator of its own, no copy), and system memory
//! (it writes pixels with the processor). When a graph does not put its pins in one pipe (its
//! process pins have no `InPlaceCounterpart`), it copies each frame into the output's frame and
//! marks the copy.
//!
//! Its `Process` is filter-centric ([`crate::transform`]), at PASSIVE_LEVEL.

use ks_allocator::framing::{FramingEx, FramingItem, FramingRange, ItemFlags, MemoryType};
use ks_sys::{KSFILTER, KSPROCESSPIN_INDEXENTRY, NTSTATUS, STATUS_SUCCESS};

use crate::{
    render,
    transform::{self, ProcessPins},
};

/// Frames the overlay holds: the one it marks.
pub const FRAMES: u32 = 1;

/// Both pins' framing: any frame size (the picture's size is checked on each frame), kernel
/// non-paged memory the processor can write (`SYSTEM_MEMORY`), modified in place
/// (`INPLACE_MODIFIER`), [`FRAMES`] frames held.
pub static FRAMING: FramingEx<1> = FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
    .with_flags(ItemFlags::SYSTEM_MEMORY.union(ItemFlags::INPLACE_MODIFIER))
    .with_frames(FRAMES)
    .with_alignment(ks_sys::FILE_BYTE_ALIGNMENT)
    .with_physical_range(FramingRange::new(1, u32::MAX))
    .with_optimal_range(FramingRange::new(1, u32::MAX))]);

/// The overlay's time, as it stamps it: milliseconds of unbiased interrupt time, the low 32
/// bits (they wrap after 49 days; the stamp only needs to tell frames apart and in order).
fn now_ms() -> u32 {
    // SAFETY: no preconditions; any IRQL.
    let now = unsafe { ks_sys::KeQueryUnbiasedInterruptTime() };
    #[expect(clippy::cast_possible_truncation, reason = "the low 32 bits, as documented")]
    let ms = (now / 10_000) as u32;
    ms
}

/// `AVStrMiniFilterProcess`: marks the frame at the input's leading edge, in place (the output
/// process pin stands for the same frame), or in a copy on the output's frame when the pins do
/// not share a pipe. A frame shorter than its format's picture passes unmarked. Returns
/// `STATUS_SUCCESS` (AVStream calls again while both pins have frames). PASSIVE_LEVEL, with the
/// filter's processing mutex held by AVStream.
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
    let (format, seen, available) = (input.format(), now_ms(), input.available());
    if input.in_place() {
        if let (Some(data), Some(format)) = (input.data(), format) {
            let _ = render::mark(&format, data, seen);
        }
        input.set_used(available);
        // The frame goes on with the bytes it holds, even when it is larger than they are.
        output.set_used(available);
        output.terminate();
        return STATUS_SUCCESS;
    }
    let mut used = 0;
    if let (Some(from), Some(to), Some(format)) = (input.data(), output.data(), format) {
        let len = from.len().min(to.len());
        if let (Some(target), Some(source)) = (to.get_mut(..len), from.get(..len)) {
            target.copy_from_slice(source);
            let _ = render::mark(&format, target, seen);
            used = u32::try_from(len).unwrap_or(0);
        }
    }
    // SAFETY: the headers of the two frames at the process pins' leading edges in this call.
    unsafe { transform::copy_timing(input.stream_header(), output.stream_header()) };
    input.set_used(available);
    output.set_used(used);
    output.terminate();
    STATUS_SUCCESS
}
