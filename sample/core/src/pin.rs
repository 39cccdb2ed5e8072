//! The capture pin: its context, its dispatch routines and its data intersection handler.
//!
//! The allocator properties (`KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX`,
//! `KSPROPERTY_STREAM_ALLOCATOR`) are not in the pin's automation table: AVStream answers them
//! for its pins from the descriptor's `AllocatorFraming` and the pipe it builds, and an entry of
//! the minidriver's would override the class's (the library's property sets are for KS filters
//! that are not AVStream minidrivers).

use core::cell::UnsafeCell;

use ks_allocator::{
    Error,
    framing::{FramingEx, FramingItem, ItemFlags, MemoryType},
};
use ks_sys::{
    KS_DATAFORMAT_VIDEOINFOHEADER, KS_FRAME_INFO, KSATTRIBUTE_LIST, KSDATARANGE, KSMAPPING,
    KSMULTIPLE_ITEM, KSP_PIN, KSPIN, KSSTATE, NTSTATUS, PIRP, PKSDATAFORMAT, PKSDATARANGE,
    PKSSTREAM_POINTER, PULONG, PVOID, STATUS_SUCCESS,
};

use crate::{
    POOL_TAG, device,
    format::{self, ImageFormat},
    hardware::Hardware,
    ks,
};

/// Frames the pin asks for: enough to keep a consumer busy while the next one is filled.
pub const FRAMES: u32 = 4;

/// Page alignment, as a `FileAlignment` mask.
const PAGE_ALIGNMENT: u32 = ks_sys::PAGE_SIZE - 1;

/// The pin's framing items for frames of `size` bytes, in order of preference.
///
/// 0. Frames in the device's memory (`KSMEMORY_TYPE_DEVICE_UNKNOWN`), page aligned, exactly
///    `size` bytes, [`FRAMES`] of them: the frames the device would rather fill, one
///    physically contiguous block each (one DMA mapping). `MUST_ALLOCATE`: only the pin can
///    provide that memory, so a connection that takes this item makes the pin the pipe's
///    allocator (its `KSPIN_DISPATCH.Allocator`, [`CaptureAllocator`](crate::CaptureAllocator)).
///    No `SYSTEM_MEMORY`: the frames are not pool memory, so only a kernel-mode sink that takes
///    any memory can connect on this item.
/// 1. Frames in kernel non-paged system memory, as avshws declares its frames:
///    `SYSTEM_MEMORY | PREFERENCES_ONLY`, so that whoever connects may supply them (a
///    user-mode client's own buffers, a sink's allocator) and the pin maps whatever it gets for
///    DMA; exactly `size` bytes, [`FRAMES`] of them, no alignment required (a scatter/gather
///    device takes any).
#[must_use]
pub const fn framing_items(size: u32) -> [FramingItem; 2] {
    [
        FramingItem::new(MemoryType::DEVICE_UNKNOWN)
            .with_flags(ItemFlags::MUST_ALLOCATE)
            .with_frames(FRAMES)
            .with_alignment(PAGE_ALIGNMENT)
            .with_exact_size(size),
        FramingItem::new(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY))
            .with_frames(FRAMES)
            .with_alignment(ks_sys::FILE_BYTE_ALIGNMENT)
            .with_exact_size(size),
    ]
}

/// What the driver keeps per pin (`KSPIN.Context`).
///
/// # Invariants
///
/// `format` is written only by `set_data_format`, with the filter control mutex and the pin's
/// processing mutex both held; it is read only with one of them held (the process callback
/// runs with the processing mutex held by AVStream; create, state changes and format changes
/// with the control mutex). So a read never overlaps a write.
pub struct PinContext {
    /// The connection format (the last one `SetDataFormat` accepted).
    format: UnsafeCell<ImageFormat>,
}

// SAFETY: the only interior mutability is `format`, whose accesses are serialised by AVStream's
// mutexes (see the invariants).
unsafe impl Sync for PinContext {}

impl PinContext {
    /// The connection format.
    ///
    /// # Safety
    ///
    /// The caller holds the pin's filter control mutex or its processing mutex.
    unsafe fn format(&self) -> ImageFormat {
        // SAFETY: the caller holds one of the mutexes, so no write overlaps (invariants).
        unsafe { self.format.get().read() }
    }
}

/// The connection format of a pin, parsed from its `ConnectionFormat` bytes.
///
/// # Safety
///
/// `pin` is a live pin whose `ConnectionFormat` is NULL or a format of `FormatSize` bytes (AVStream
/// checked the size against the create request).
pub(crate) unsafe fn connection_format(
    pin: *const KSPIN,
) -> Result<ImageFormat, format::FormatError> {
    // SAFETY: the caller's contract.
    let format = unsafe { ks::connection_format(pin) };
    if format.is_null() {
        return Err(format::FormatError::TooShort { len: 0, needed: 1 });
    }
    // SAFETY: a non-NULL format has at least its `FormatSize` field.
    let size = unsafe { format.cast::<u32>().read_unaligned() };
    // SAFETY: the caller's contract: `FormatSize` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(format.cast::<u8>(), size as usize) };
    format::parse_format(bytes)
}

/// The pin's context.
///
/// # Safety
///
/// `pin` is a live pin whose create dispatch succeeded.
unsafe fn context<'a>(pin: *const KSPIN) -> Option<&'a PinContext> {
    // SAFETY: the caller's contract.
    let context = unsafe { ks::pin_context(pin) }.cast::<PinContext>();
    // SAFETY: the context is the one `create` set, alive with the pin.
    unsafe { context.as_ref() }
}

/// The device's hardware, for a pin.
///
/// # Safety
///
/// `pin` is a live pin.
unsafe fn hardware<'a>(pin: *mut KSPIN) -> Option<&'a Hardware> {
    // SAFETY: the caller's contract; `KsGetDevice` accepts any AVStream object.
    let device = unsafe { ks_sys::KsGetDevice(pin.cast()) };
    if device.is_null() {
        return None;
    }
    // SAFETY: the pin's device is live while the pin is.
    unsafe { device::context(device) }.and_then(device::DeviceContext::hardware)
}

/// Makes the pin's descriptor and framing its own (`KsEdit`) and sizes the frames for `format`
/// (its rows at their pitch), as avshws does at pin creation. PASSIVE_LEVEL, with the filter
/// control mutex held.
///
/// # Safety
///
/// `pin` is a live pin in its create or set-format dispatch.
unsafe fn edit_framing(pin: *mut KSPIN, format: &ImageFormat) -> ks_allocator::Result {
    // SAFETY: a live pin (this function's contract).
    let bag = unsafe { ks::pin_bag(pin) };
    // SAFETY: as above.
    let descriptor_slot = unsafe { ks::descriptor_slot(pin) };
    // SAFETY: the slot holds the pin's descriptor; the control mutex is held, as `KsEdit`
    // requires.
    ks_allocator::to_result(unsafe { ks_sys::KsEdit(bag, descriptor_slot, POOL_TAG) })?;
    // SAFETY: the descriptor is now the pin's own writable copy.
    let descriptor = unsafe { descriptor_slot.read() };
    // SAFETY: as above; the framing pointer is a field of that copy.
    let framing_slot = unsafe { &raw mut (*descriptor).AllocatorFraming }.cast::<PVOID>();
    #[expect(clippy::cast_possible_truncation, reason = "200 bytes")]
    let size = size_of::<FramingEx<2>>() as u32;
    // SAFETY: the slot holds a pointer to the two-item framing of `descriptors` (or the pin's
    // copy of it), 200 bytes.
    let status = unsafe { ks_sys::KsEditSized(bag, framing_slot, size, size, POOL_TAG) };
    ks_allocator::to_result(status)?;
    // SAFETY: the framing is now the pin's own writable copy of 200 bytes.
    let framing = unsafe { framing_slot.read() }.cast::<FramingEx<2>>();
    #[expect(clippy::cast_possible_truncation, reason = "at most MAX_FRAME_BYTES, 2 MiB")]
    let frame_size = format.image_size() as u32;
    // SAFETY: the copy has `FramingEx<2>`'s layout (asserted in the library) and is the pin's.
    unsafe { framing.write(FramingEx::new(framing_items(frame_size))) };
    Ok(())
}

/// `AVStrMiniPinCreate`: makes the pin's context and sizes its framing for its format.
/// PASSIVE_LEVEL, with the filter control mutex held.
///
/// # Safety
///
/// Only AVStream calls it, with a live pin whose format `set_data_format` accepted.
pub(crate) unsafe extern "C" fn create(pin: *mut KSPIN, _irp: PIRP) -> NTSTATUS {
    // SAFETY: a live pin (this function's contract).
    let Ok(format) = (unsafe { connection_format(pin) }) else {
        return Error::INVALID_PARAMETER.to_status();
    };
    let context = PinContext { format: UnsafeCell::new(format) };
    // SAFETY: a live pin in its create dispatch (this function's contract).
    let status = unsafe { ks::give_pin_context(pin, context) };
    if status != STATUS_SUCCESS {
        return status;
    }
    // SAFETY: as above.
    ks_allocator::from_result(unsafe { edit_framing(pin, &format) })
}

/// `AVStrMiniPinSetDataFormat`: checks the connection format against `range` (at creation,
/// `old_format` NULL) and takes a new format on a pin that exists. PASSIVE_LEVEL, with the filter
/// control mutex held.
///
/// While stopped, any offered format: the frames are resized (`KsEdit`) for the next
/// allocator. Out of STOP (AVStream may send a video capture pin the renderer's surface
/// parameters just before RUN, and "Data Range Intersections in AVStream" asks that it not be
/// failed): the same picture at another pitch or frame rate, as long as a frame still fits the
/// frames the pipe's allocator already has; the new pitch is drawn from the next frame on, the
/// new rate from the next RUN. A change of picture out of STOP is `STATUS_INVALID_DEVICE_STATE`
/// (the pin does not support dynamic format changes), as is a pitch the frames cannot hold.
///
/// # Safety
///
/// Only AVStream calls it, with a live pin and one of its data ranges.
pub(crate) unsafe extern "C" fn set_data_format(
    pin: *mut KSPIN,
    old_format: PKSDATAFORMAT,
    _old_attributes: *mut KSMULTIPLE_ITEM,
    range: *const KSDATARANGE,
    _attribute_range: *const KSATTRIBUTE_LIST,
) -> NTSTATUS {
    // SAFETY: a live pin (this function's contract).
    let Ok(format) = (unsafe { connection_format(pin) }) else {
        return ks_sys::STATUS_NO_MATCH;
    };
    // SAFETY: one of the pin's own data ranges, a `KS_DATARANGE_VIDEO`.
    let range = unsafe { descriptor_range(range) };
    if range.is_none_or(|range| !range.same_picture(&format)) {
        return ks_sys::STATUS_NO_MATCH; // another of the pin's ranges may match
    }
    if old_format.is_null() {
        return STATUS_SUCCESS; // checked before the pin's create dispatch
    }
    // SAFETY: a live pin past its create dispatch.
    let Some(context) = (unsafe { context(pin) }) else {
        return Error::INVALID_DEVICE_STATE.to_status();
    };
    // SAFETY: the control mutex is held (this function's contract).
    let current = unsafe { context.format() };
    // SAFETY: a live pin.
    let stopped = unsafe { ks::device_state(pin) } == ks_sys::KSSTATE_STOP;
    if !stopped {
        // SAFETY: a live pin, the control mutex held.
        let frames = unsafe { ks::framed_frame_size(pin) }.unwrap_or(0);
        let refusal = if !format.same_picture(&current) {
            Some("another picture")
        } else if format.image_size() > frames as usize {
            Some("a pitch whose frames are larger than the allocator's")
        } else {
            None
        };
        if let Some(refusal) = refusal {
            ks_allocator::debug_print_as(
                "ks-sample",
                ks_sys::DPFLTR_WARNING_LEVEL,
                format_args!("format change to {format} refused while streaming: {refusal}"),
            );
            return Error::INVALID_DEVICE_STATE.to_status();
        }
    }
    // The process callback reads the format with the processing mutex held: keep it out.
    // SAFETY: a live pin, PASSIVE_LEVEL; this thread holds no processing mutex.
    unsafe { ks_sys::KsPinAcquireProcessingMutex(pin) };
    // SAFETY: both mutexes are held: nothing reads the format now (invariants).
    unsafe { context.format.get().write(format) };
    // SAFETY: acquired above.
    unsafe { ks_sys::KsPinReleaseProcessingMutex(pin) };
    if stopped {
        // SAFETY: a live pin, in its set-format dispatch with the control mutex held.
        return ks_allocator::from_result(unsafe { edit_framing(pin, &format) });
    }
    STATUS_SUCCESS
}

/// One of the pin's own data ranges, parsed.
///
/// # Safety
///
/// `range` is NULL or points at a `KS_DATARANGE_VIDEO` of the pin's descriptor.
pub(crate) unsafe fn descriptor_range(range: *const KSDATARANGE) -> Option<ImageFormat> {
    if range.is_null() {
        return None;
    }
    // SAFETY: the caller's contract: a whole `KS_DATARANGE_VIDEO`.
    let bytes = unsafe {
        core::slice::from_raw_parts(range.cast::<u8>(), size_of::<ks_sys::KS_DATARANGE_VIDEO>())
    };
    format::parse_range(bytes).ok()
}

/// `AVStrMiniPinSetDeviceState`: takes the hardware at ACQUIRE (its engine set up for the
/// format), asks for processing and starts the frame interrupt at RUN (the frames waiting are
/// programmed before the first frame time), stops the interrupt below RUN, and at STOP takes
/// every programmed frame back (deleting its clone) and gives the hardware back. PASSIVE_LEVEL,
/// with the filter control mutex held; AVStream delivers one step at a time.
///
/// # Safety
///
/// Only AVStream calls it, with a live pin.
pub(crate) unsafe extern "C" fn set_device_state(
    pin: *mut KSPIN,
    to: KSSTATE,
    from: KSSTATE,
) -> NTSTATUS {
    // SAFETY: a live pin (this function's contract).
    let (Some(hardware), Some(context)) = (unsafe { hardware(pin) }, unsafe { context(pin) })
    else {
        return Error::INVALID_DEVICE_STATE.to_status();
    };
    // SAFETY: the control mutex is held (this function's contract).
    let format = unsafe { context.format() };
    if from == ks_sys::KSSTATE_STOP && to != ks_sys::KSSTATE_STOP {
        if !hardware.acquire(pin) {
            return Error::INSUFFICIENT_RESOURCES.to_status(); // another pin streams
        }
        // The engine's memory holds a static picture as large as the allocator's frames, so
        // that a surface format taken before RUN (another pitch) fits it too.
        // SAFETY: a live pin, the control mutex held.
        let capacity = unsafe { ks::framed_frame_size(pin) }.unwrap_or(0) as usize;
        if let Err(error) = hardware.prepare(&format, capacity) {
            hardware.release(pin);
            return error.to_status();
        }
    }
    if to == ks_sys::KSSTATE_RUN && from != ks_sys::KSSTATE_RUN {
        // A format taken since ACQUIRE (a surface's pitch) is drawn from now on.
        if let Err(error) = hardware.reformat(&format) {
            return error.to_status();
        }
        // SAFETY: a live pin. Asynchronous: the frames waiting are programmed on AVStream's
        // worker, well before the first frame time, one interval from now.
        unsafe { ks_sys::KsPinAttemptProcessing(pin, 1) };
        hardware.start(format.frame_interval);
    }
    if from == ks_sys::KSSTATE_RUN && to != ks_sys::KSSTATE_RUN {
        hardware.stop();
    }
    if to == ks_sys::KSSTATE_STOP && from != ks_sys::KSSTATE_STOP {
        hardware.stop();
        // The frames the engine holds are given back empty: their clones are deleted with the
        // processing mutex held, so no process callback programs or completes meanwhile.
        // SAFETY: a live pin, PASSIVE_LEVEL; this thread holds no processing mutex.
        unsafe { ks_sys::KsPinAcquireProcessingMutex(pin) };
        hardware.take_all(|clone| {
            // SAFETY: a clone the pin made and the engine held, deleted once.
            unsafe { complete(clone, &format, None, hardware) };
        });
        // SAFETY: acquired above.
        unsafe { ks_sys::KsPinReleaseProcessingMutex(pin) };
        hardware.unprepare();
        ks_allocator::debug_print_as(
            "ks-sample",
            ks_sys::DPFLTR_INFO_LEVEL,
            format_args!(
                "{} stopped after {} frame times, {} without a frame",
                format,
                hardware.ticks(),
                hardware.drops()
            ),
        );
        hardware.release(pin);
    }
    STATUS_SUCCESS
}

/// `AVStrMiniPinProcess`: programs the frames waiting at the leading edge into the engine,
/// each through a clone that holds it until the engine completes it (in its DPC), as avshws
/// does. PASSIVE_LEVEL (AVStream's worker: the frame interrupt asks asynchronously), never
/// concurrently with itself.
///
/// # Safety
///
/// Only AVStream calls it, with a live pin.
pub(crate) unsafe extern "C" fn process(pin: *mut KSPIN) -> NTSTATUS {
    // SAFETY: a live pin (this function's contract).
    let (Some(hardware), Some(context)) = (unsafe { hardware(pin) }, unsafe { context(pin) })
    else {
        return ks_sys::STATUS_PENDING;
    };
    // SAFETY: AVStream holds the pin's processing mutex while it processes.
    let format = unsafe { context.format() };
    // SAFETY: a live pin; a locked leading edge, or NULL when no frame waits.
    let mut edge = unsafe {
        ks_sys::KsPinGetLeadingEdgeStreamPointer(pin, ks_sys::KSSTREAM_POINTER_STATE_LOCKED)
    };
    while !edge.is_null() {
        // SAFETY: a locked stream pointer: its output offset describes the frame's mappings.
        let offset = unsafe { (*edge).OffsetOut };
        let count = offset.Remaining;
        let mappings = offset.mappings().cast_const();
        // SAFETY: the frame's `count` mappings, `KSMAPPING`s back to back (the stride the
        // device registered), while the stream pointer is locked.
        let capacity = unsafe { capacity(mappings, count as usize) };
        let eject = capacity < format.image_size() as u64;
        if !eject && !hardware.has_room(count as usize) {
            break; // programmed when the engine completes a frame
        }
        if eject {
            // A frame that cannot hold a picture (or has no mappings): given back empty.
            hardware.count_drop();
        } else {
            let mut clone: PKSSTREAM_POINTER = core::ptr::null_mut();
            // SAFETY: a locked leading edge; the clone needs no context.
            let status = unsafe { ks_sys::KsStreamPointerClone(edge, None, 0, &raw mut clone) };
            if status != STATUS_SUCCESS {
                break; // tried again at the next frame interrupt
            }
            // SAFETY: `count` mappings at `mappings` (above); this is the pin's processing.
            unsafe { hardware.program(clone, mappings.cast(), count as usize, MAPPING_STRIDE) };
        }
        // SAFETY: a locked leading edge, advanced over all its mappings (ejected when empty):
        // it moves to the next frame and stays locked, or is unlocked when there is none.
        let status =
            unsafe { ks_sys::KsStreamPointerAdvanceOffsets(edge, 0, count, u8::from(eject)) };
        if status != STATUS_SUCCESS {
            edge = core::ptr::null_mut();
        }
    }
    if !edge.is_null() {
        // SAFETY: still locked: the frame it is at waits for room in the engine.
        unsafe { ks_sys::KsStreamPointerUnlock(edge, 0) };
    }
    // Nothing more until the next frame interrupt calls KsPinAttemptProcessing.
    ks_sys::STATUS_PENDING
}

/// Bytes from one mapping to the next: the device registered a `KSMAPPING` per entry.
const MAPPING_STRIDE: usize = size_of::<KSMAPPING>();

/// The bytes `count` mappings describe.
///
/// # Safety
///
/// `mappings` points at `count` readable `KSMAPPING`s back to back (or `count` is 0).
unsafe fn capacity(mappings: *const KSMAPPING, count: usize) -> u64 {
    (0..count)
        .map(|index| {
            // SAFETY: the caller's contract; read unaligned, the table is AVStream's.
            let mapping = unsafe { mappings.wrapping_add(index).read_unaligned() };
            u64::from(mapping.ByteCount)
        })
        .sum()
}

/// Completes a frame the engine is done with: its header stamped (a whole picture, frame
/// `number`) or emptied (`None`), then its clone deleted, which lets AVStream complete it.
/// IRQL <= DISPATCH_LEVEL: the engine's DPC, or the pin's stop.
///
/// # Safety
///
/// `clone` is a clone the pin made, not yet deleted, that nothing else uses now.
pub(crate) unsafe fn complete(
    clone: PKSSTREAM_POINTER,
    format: &ImageFormat,
    number: Option<u32>,
    hardware: &Hardware,
) {
    // SAFETY: a live clone (this function's contract).
    let header = unsafe { (*clone).StreamHeader };
    if !header.is_null() {
        #[expect(clippy::cast_possible_truncation, reason = "at most MAX_FRAME_BYTES, 2 MiB")]
        let size = format.image_size() as u32;
        // SAFETY: the frame's header, the driver's while its clone holds the frame.
        unsafe { (*header).DataUsed = if number.is_some() { size } else { 0 } };
        if let Some(number) = number {
            // SAFETY: as above.
            unsafe { stamp(header, format, number, hardware) };
        }
    }
    // SAFETY: a live clone, deleted once.
    unsafe { ks_sys::KsStreamPointerDelete(clone) };
}

/// Stamps a frame's header: its presentation time (`number` intervals from the start of the
/// stream, the stream's own clock: the pin has no clock assigned) and duration, both valid; and,
/// when the header is long enough (the pin asked for it with `StreamHeaderSize`, but AVStream
/// does not promise it), its `KS_FRAME_INFO`: a whole frame, its picture number (frame times so
/// far, this one included) and the frame times dropped so far.
///
/// # Safety
///
/// `header` is the header of a frame the driver holds (a clone), `Size` bytes long.
unsafe fn stamp(
    header: *mut ks_sys::KSSTREAM_HEADER,
    format: &ImageFormat,
    number: u32,
    hardware: &Hardware,
) {
    // SAFETY: the caller's contract: the driver's to fill.
    let stream_header = unsafe { &mut *header };
    stream_header.PresentationTime =
        ks_sys::KSTIME { Time: hardware.presentation_time(number), Numerator: 1, Denominator: 1 };
    stream_header.Duration = format.frame_interval;
    stream_header.OptionsFlags |=
        ks_sys::KSSTREAM_HEADER_OPTIONSF_TIMEVALID | ks_sys::KSSTREAM_HEADER_OPTIONSF_DURATIONVALID;
    let needed = size_of::<ks_sys::KSSTREAM_HEADER>() + size_of::<KS_FRAME_INFO>();
    if (stream_header.Size as usize) < needed {
        return;
    }
    #[expect(clippy::cast_possible_truncation, reason = "72 bytes")]
    let info = KS_FRAME_INFO {
        ExtendedHeaderSize: size_of::<KS_FRAME_INFO>() as u32,
        dwFrameFlags: ks_sys::KS_VIDEO_FLAG_FRAME,
        PictureNumber: i64::from(number) + 1,
        DropCount: i64::from(hardware.drops()),
        hDirectDraw: core::ptr::null_mut(),
        hSurfaceHandle: core::ptr::null_mut(),
        DirectDrawRect: ks_sys::RECT { left: 0, top: 0, right: 0, bottom: 0 },
        Reserved1: 0,
        Reserved2: 0,
        Reserved3: 0,
        Reserved4: 0,
    };
    let extended = header.wrapping_add(1).cast::<KS_FRAME_INFO>();
    // SAFETY: `Size` bytes are the header's (the caller's contract), enough for the extended
    // header right after the KSSTREAM_HEADER, whose size is a multiple of 8.
    unsafe { extended.write(info) };
}

/// `AVStrMiniIntersectHandlerEx`: the format for a client's data range and one of the pin's:
/// the size for a zero-length buffer (`STATUS_BUFFER_OVERFLOW`), the pin's format with the
/// client's frame interval when the client's range asks for the same subtype and size (or is a
/// bare `KSDATARANGE`), `STATUS_NO_MATCH` otherwise. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it: `caller` is a range of `FormatSize` readable bytes, `descriptor` one
/// of the pin's ranges, `data` NULL or `buffer_size` writable bytes, `data_size` writable.
pub(crate) unsafe extern "C" fn intersect(
    _context: PVOID,
    _irp: PIRP,
    _pin: *mut KSP_PIN,
    caller: PKSDATARANGE,
    descriptor: PKSDATARANGE,
    buffer_size: u32,
    data: PVOID,
    data_size: PULONG,
) -> NTSTATUS {
    // SAFETY: one of the pin's own ranges (this function's contract).
    let Some(offered) = (unsafe { descriptor_range(descriptor) }) else {
        return ks_sys::STATUS_NO_MATCH;
    };
    if caller.is_null() || data_size.is_null() {
        return Error::INVALID_PARAMETER.to_status();
    }
    // SAFETY: a non-NULL range has its `FormatSize` field.
    let caller_size = unsafe { caller.cast::<u32>().read_unaligned() };
    // SAFETY: `FormatSize` readable bytes (this function's contract).
    let caller_bytes =
        unsafe { core::slice::from_raw_parts(caller.cast::<u8>(), caller_size as usize) };
    let Some(result) = intersect_ranges(&offered, caller_bytes) else {
        return ks_sys::STATUS_NO_MATCH;
    };
    #[expect(clippy::cast_possible_truncation, reason = "152 bytes")]
    let size = size_of::<KS_DATAFORMAT_VIDEOINFOHEADER>() as u32;
    // SAFETY: `data_size` is writable (this function's contract).
    unsafe { data_size.write(size) };
    if buffer_size == 0 {
        return ks_sys::STATUS_BUFFER_OVERFLOW;
    }
    if buffer_size < size || data.is_null() {
        return ks_sys::STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: `buffer_size >= size` writable bytes at `data`, of any alignment.
    unsafe { data.cast::<KS_DATAFORMAT_VIDEOINFOHEADER>().write_unaligned(result.to_raw()) };
    STATUS_SUCCESS
}

/// The format both a client's range (its bytes) and one of the pin's allow, or `None`.
#[must_use]
pub fn intersect_ranges(offered: &ImageFormat, caller: &[u8]) -> Option<ImageFormat> {
    if caller.len() <= size_of::<KSDATARANGE>() {
        // A bare KSDATARANGE: AVStream matched its GUIDs already; the default format.
        return (caller.len() == size_of::<KSDATARANGE>()).then_some(*offered);
    }
    let asked = format::parse_range(caller).ok()?;
    asked.same_picture(offered).then_some(offered.with_frame_interval(asked.frame_interval))
}
