//! The capture pin: its context, its dispatch routines and its data intersection handler.
//!
//! The allocator properties (`KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX`,
//! `KSPROPERTY_STREAM_ALLOCATOR`) are not in the pin's automation table: AVStream answers them
//! for its pins from the descriptor's `AllocatorFraming` and the pipe it builds, and an entry of
//! the minidriver's would override the class's (the library's property sets are for KS filters
//! that are not AVStream minidrivers).

use core::{cell::UnsafeCell, ptr::NonNull};

use ks_allocator::{
    Error, PoolBox,
    framing::{FramingEx, FramingItem, ItemFlags, MemoryType},
};
use ks_sys::{
    KS_DATAFORMAT_VIDEOINFOHEADER, KS_FRAME_INFO, KSALLOCATOR_FRAMING_EX, KSATTRIBUTE_LIST,
    KSDATARANGE, KSMULTIPLE_ITEM, KSP_PIN, KSPIN, KSSTATE, NTSTATUS, PIRP, PKSDATAFORMAT,
    PKSDATARANGE, PULONG, PVOID, STATUS_SUCCESS,
};

use crate::{
    POOL_TAG, device,
    format::{self, ImageFormat},
    hardware::Hardware,
    ks, render,
};

/// Frames the pin asks for: enough to keep a consumer busy while the next one is filled.
pub const FRAMES: u32 = 4;

/// The pin's framing item for frames of `size` bytes: kernel non-paged system memory, 64-byte
/// aligned, [`FRAMES`] of them, exactly `size` bytes.
///
/// `MUST_ALLOCATE` without `PREFERENCES_ONLY`: the pin owns the pipe's allocator, as a device
/// that must supply its own frames does, so every frame it fills comes from its
/// `KSPIN_DISPATCH.Allocator`, the library's frame pool (a pin with only preferences would
/// leave the choice to the graph, and a sink would usually allocate).
#[must_use]
pub const fn framing_item(size: u32) -> FramingItem {
    FramingItem::new(MemoryType::KERNEL_NONPAGED)
        .with_flags(ItemFlags::SYSTEM_MEMORY.union(ItemFlags::MUST_ALLOCATE))
        .with_frames(FRAMES)
        .with_alignment(ks_sys::FILE_64_BYTE_ALIGNMENT)
        .with_exact_size(size)
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
unsafe fn connection_format(pin: *const KSPIN) -> Result<ImageFormat, format::FormatError> {
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
    #[expect(clippy::cast_possible_truncation, reason = "112 bytes")]
    let size = size_of::<KSALLOCATOR_FRAMING_EX>() as u32;
    // SAFETY: the slot holds a pointer to the one-item framing of `descriptors`, 112 bytes.
    let status = unsafe { ks_sys::KsEditSized(bag, framing_slot, size, size, POOL_TAG) };
    ks_allocator::to_result(status)?;
    // SAFETY: the framing is now the pin's own writable copy of 112 bytes.
    let framing = unsafe { framing_slot.read() }.cast::<FramingEx<1>>();
    #[expect(clippy::cast_possible_truncation, reason = "at most MAX_FRAME_BYTES, 2 MiB")]
    let frame_size = format.image_size() as u32;
    // SAFETY: the copy has `FramingEx<1>`'s layout (asserted in the library) and is the pin's.
    unsafe { framing.write(FramingEx::new([framing_item(frame_size)])) };
    Ok(())
}

/// Frees a pin context when AVStream empties the pin's object bag (after its close; the
/// assigned allocator's reference goes with it). PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, once, with the context `create` put in the bag.
unsafe extern "C" fn free_context(context: PVOID) {
    if let Some(context) = NonNull::new(context.cast::<PinContext>()) {
        // SAFETY: the bag item is the PoolBox `create` made with POOL_TAG; freed once.
        drop(unsafe { PoolBox::from_raw_with_tag(context, POOL_TAG) });
    }
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
    let Ok(context) = PoolBox::new(context, POOL_TAG) else {
        return Error::INSUFFICIENT_RESOURCES.to_status();
    };
    let raw = PoolBox::into_raw(context);
    // SAFETY: a live pin (this function's contract).
    let bag = unsafe { ks::pin_bag(pin) };
    // SAFETY: the pin's bag takes the context, freed by `free_context`.
    let status = unsafe { ks::add_to_bag(bag, raw.cast(), Some(free_context)) };
    if status != STATUS_SUCCESS {
        if let Some(raw) = NonNull::new(raw) {
            // SAFETY: `raw` came from `into_raw` just now and the bag did not take it.
            drop(unsafe { PoolBox::from_raw_with_tag(raw, POOL_TAG) });
        }
        return status;
    }
    // SAFETY: a live pin in its create dispatch: nothing else uses its context yet.
    unsafe { ks::set_pin_context(pin, raw.cast()) };
    // Every frame carries a KS_FRAME_INFO after its KSSTREAM_HEADER (picture number, drops).
    #[expect(clippy::cast_possible_truncation, reason = "56 + 72 bytes")]
    let header_size = (size_of::<ks_sys::KSSTREAM_HEADER>() + size_of::<KS_FRAME_INFO>()) as u32;
    // SAFETY: as above.
    unsafe { ks::set_stream_header_size(pin, header_size) };
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
unsafe fn descriptor_range(range: *const KSDATARANGE) -> Option<ImageFormat> {
    if range.is_null() {
        return None;
    }
    // SAFETY: the caller's contract: a whole `KS_DATARANGE_VIDEO`.
    let bytes = unsafe {
        core::slice::from_raw_parts(range.cast::<u8>(), size_of::<ks_sys::KS_DATARANGE_VIDEO>())
    };
    format::parse_range(bytes).ok()
}

/// `AVStrMiniPinSetDeviceState`: takes the hardware at ACQUIRE, starts the frame interrupt at
/// RUN, stops it below RUN and gives the hardware back at STOP. PASSIVE_LEVEL, with the filter
/// control mutex held; AVStream delivers one step at a time.
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
    if from == ks_sys::KSSTATE_STOP && to != ks_sys::KSSTATE_STOP && !hardware.acquire(pin) {
        return Error::INSUFFICIENT_RESOURCES.to_status(); // another pin streams
    }
    // SAFETY: the control mutex is held (this function's contract).
    let format = unsafe { context.format() };
    if to == ks_sys::KSSTATE_RUN && from != ks_sys::KSSTATE_RUN {
        hardware.start(format.frame_interval);
    }
    if from == ks_sys::KSSTATE_RUN && to != ks_sys::KSSTATE_RUN {
        hardware.stop();
    }
    if to == ks_sys::KSSTATE_STOP && from != ks_sys::KSSTATE_STOP {
        hardware.stop();
        ks_allocator::debug_print_as(
            "ks-sample",
            ks_sys::DPFLTR_INFO_LEVEL,
            format_args!(
                "{} stopped after {} frame times, {} without a buffer",
                format,
                hardware.ticks(),
                hardware.drops()
            ),
        );
        hardware.release(pin);
    }
    STATUS_SUCCESS
}

/// `AVStrMiniPinProcess`: fills one frame per frame time the hardware counted since the last
/// call, each into the next buffer of the pin's queue, or counts a drop when the queue is empty.
/// DISPATCH_LEVEL (`KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING`), never concurrently with itself.
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
    let due = hardware.take_due();
    for (done, number) in due.clone().enumerate() {
        // SAFETY: a live pin; a locked leading edge, or NULL when the queue is empty.
        let edge = unsafe {
            ks_sys::KsPinGetLeadingEdgeStreamPointer(pin, ks_sys::KSSTREAM_POINTER_STATE_LOCKED)
        };
        if edge.is_null() {
            let left = due.len() - done;
            hardware.count_drops(u32::try_from(left).unwrap_or(u32::MAX));
            break;
        }
        // SAFETY: a locked stream pointer from AVStream: its output offset describes the
        // frame's writable bytes until it is unlocked.
        let written = unsafe { fill(edge, &format, number, hardware) };
        let used = written.unwrap_or_else(|| {
            hardware.count_drops(1); // a buffer too small for a frame: given back empty
            0
        });
        // SAFETY: the stream pointer is locked; `used` bytes were written at its position. The
        // frame is complete either way: eject it.
        unsafe { ks_sys::KsStreamPointerAdvanceOffsetsAndUnlock(edge, 0, used, 1) };
    }
    // Nothing more until the next frame interrupt calls KsPinAttemptProcessing.
    ks_sys::STATUS_PENDING
}

/// Draws frame `number` into the buffer under a locked stream pointer and stamps its header
/// (presentation time and duration, and the `KS_FRAME_INFO` after it when the header has room);
/// returns the bytes written, or `None` if the buffer cannot hold a frame.
///
/// # Safety
///
/// `edge` is a locked stream pointer of an output pin.
unsafe fn fill(
    edge: *mut ks_sys::KSSTREAM_POINTER,
    format: &ImageFormat,
    number: u32,
    hardware: &Hardware,
) -> Option<u32> {
    // SAFETY: a locked stream pointer (this function's contract).
    let offset = unsafe { &raw const (*edge).OffsetOut };
    // SAFETY: as above.
    let offset = unsafe { offset.read() };
    if offset.Data.is_null() {
        return None;
    }
    // SAFETY: while locked, `Data` has `Remaining` writable bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(offset.Data, offset.Remaining as usize) };
    let written = render::render(format, number, out)?;
    // SAFETY: as above.
    let header = unsafe { &raw const (*edge).StreamHeader };
    // SAFETY: as above; the header belongs to the frame under the pointer.
    let header = unsafe { header.read() };
    if !header.is_null() {
        // SAFETY: the locked frame's header is the driver's to fill until it is unlocked.
        unsafe { stamp(header, format, number, hardware) };
    }
    u32::try_from(written).ok()
}

/// Stamps a frame's header: its presentation time (`number` intervals from the start of the
/// stream, the stream's own clock: the pin has no clock assigned) and duration, both valid; and,
/// when the header is long enough (the pin asked for it with `StreamHeaderSize`, but AVStream
/// does not promise it), its `KS_FRAME_INFO`: a whole frame, its picture number (frame times so
/// far, this one included) and the frame times dropped so far.
///
/// # Safety
///
/// `header` is the header of a frame under a locked stream pointer, `Size` bytes long.
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
