//! What the two transform filters ([`overlay`](crate::overlay) and [`scale`](crate::scale))
//! share: their pins' contexts, format checks and intersection, and the reading of the process
//! pins AVStream gives their filter-centric `Process` callbacks.
//!
//! Each transform filter has pin factory [`INPUT`] (video in) and [`OUTPUT`] (video out), one
//! instance each, and processes *filter-centric*, as software filters usually do: AVStream calls
//! the filter's `Process` at PASSIVE_LEVEL (no `KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING`: the
//! work is a pass over a whole picture) when both pins have a frame, with the process pins of
//! each factory.
//!
//! The two pins of a transform must agree: each filter says how its output's picture follows
//! from its input's ([`Relation`]). A pin's format is checked against the other pin's, when that
//! one exists, in `SetDataFormat`, and the intersection handler offers only formats that agree
//! with it; both run with the filter's control mutex held, which also guards the formats (see
//! [`TransformPin`]).

use core::{cell::UnsafeCell, ptr::NonNull};

use ks_allocator::Error;
use ks_sys::{
    KS_FRAME_INFO, KSDATARANGE, KSP_PIN, KSPIN, KSPROCESSPIN, KSPROCESSPIN_INDEXENTRY,
    KSSTREAM_HEADER, NTSTATUS, PIRP, PKSDATAFORMAT, PKSDATARANGE, PULONG, PVOID, STATUS_SUCCESS,
};

use crate::{format::ImageFormat, ks, pin};

/// The input pin factory of a transform filter.
pub const INPUT: u32 = 0;
/// The output pin factory of a transform filter.
pub const OUTPUT: u32 = 1;

/// How a transform's output picture follows from its input picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// The same picture (subtype and size): the overlay.
    Same,
    /// The same subtype at half the width and half the height: the scaler.
    Halved,
}

impl Relation {
    /// The relation a handler's `HALVED` parameter names.
    const fn of(halved: bool) -> Self {
        if halved { Self::Halved } else { Self::Same }
    }

    /// Whether `output` may follow from `input`.
    #[must_use]
    pub const fn holds(self, input: &ImageFormat, output: &ImageFormat) -> bool {
        match self {
            Self::Same => input.same_picture(output),
            Self::Halved => {
                input.subtype as u8 == output.subtype as u8
                    && input.width == 2 * output.width
                    && input.height == 2 * output.height
            }
        }
    }

    /// Whether a format on pin factory `id` agrees with the other pin's `other`.
    const fn agrees(self, id: u32, format: &ImageFormat, other: &ImageFormat) -> bool {
        if id == INPUT { self.holds(format, other) } else { self.holds(other, format) }
    }
}

/// What a transform keeps per pin (`KSPIN.Context`).
///
/// # Invariants
///
/// `format` is written only in `create` (before AVStream publishes the pin) and in
/// `set_data_format` while the pin is in STOP, both with the filter control mutex held. It is
/// read by the intersection and format callbacks (the control mutex held) and by `Process`,
/// which AVStream calls only when both pins have a frame, and a pin in STOP has none: no read
/// overlaps a write.
pub struct TransformPin {
    format: UnsafeCell<ImageFormat>,
}

// SAFETY: the only interior mutability is `format`, serialised by AVStream's mutexes (see the
// invariants).
unsafe impl Sync for TransformPin {}

/// The format of a transform pin.
///
/// # Safety
///
/// `pin` is a live transform pin whose create dispatch succeeded, and the caller holds the
/// filter's control mutex or its processing mutex.
pub(crate) unsafe fn pin_format(pin: *const KSPIN) -> Option<ImageFormat> {
    // SAFETY: the caller's contract.
    let context = unsafe { ks::pin_context(pin) }.cast::<TransformPin>();
    // SAFETY: the context `create` set, alive with the pin; a read the mutex serialises.
    unsafe { context.as_ref() }.map(|context| unsafe { context.format.get().read() })
}

/// The format of the filter's other pin (of factory `1 - id`), if it has one.
///
/// # Safety
///
/// `pin` is a live transform pin; the caller holds the filter's control mutex.
unsafe fn other_format(pin: *mut KSPIN, id: u32) -> Option<ImageFormat> {
    // SAFETY: a live pin (this function's contract).
    let filter = unsafe { ks_sys::KsPinGetParentFilter(pin) };
    if filter.is_null() {
        return None;
    }
    let other_id = if id == INPUT { OUTPUT } else { INPUT };
    // SAFETY: the pin's live filter; the control mutex is held (this function's contract).
    let other = unsafe { ks_sys::KsFilterGetFirstChildPin(filter, other_id) };
    if other.is_null() || core::ptr::eq(other, pin) {
        return None;
    }
    // SAFETY: a pin of the filter, created by `create` (AVStream lists a pin once its create
    // dispatch ran); the control mutex is held.
    unsafe { pin_format(other) }
}

/// The pin factory id of a pin.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
unsafe fn pin_id(pin: *const KSPIN) -> u32 {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*pin).Id };
    // SAFETY: an aligned field of the live pin.
    unsafe { field.read_volatile() }
}

/// `AVStrMiniPinCreate` of a transform pin: its context, holding its format, and stream
/// headers with room for a `KS_FRAME_INFO` (video frames carry one through the chain).
/// PASSIVE_LEVEL, with the filter control mutex held.
///
/// # Safety
///
/// Only AVStream calls it, with a live pin whose format `set_data_format` accepted.
pub(crate) unsafe extern "C" fn create(pin: *mut KSPIN, _irp: PIRP) -> NTSTATUS {
    // SAFETY: a live pin (this function's contract).
    let Ok(format) = (unsafe { pin::connection_format(pin) }) else {
        return Error::INVALID_PARAMETER.to_status();
    };
    // SAFETY: a live pin in its create dispatch (this function's contract).
    unsafe { ks::give_pin_context(pin, TransformPin { format: UnsafeCell::new(format) }) }
}

/// `AVStrMiniPinSetDataFormat` of both pins of a transform whose output picture follows from
/// its input's by [`Relation::of`]`(HALVED)` (the overlay's `Same`, the scaler's `Halved`): the
/// format must match `range` (a range of the pin's own: anything else is `STATUS_NO_MATCH`, so
/// AVStream tries the next), agree with the other pin's format when that pin exists
/// (`STATUS_NO_MATCH` otherwise), and, on a pin that exists, show the same picture as before and
/// be changed only in STOP (`STATUS_INVALID_DEVICE_STATE` otherwise: a transform's frames are
/// sized at connection). PASSIVE_LEVEL, with the filter control mutex held.
///
/// # Safety
///
/// Only AVStream calls it, with a live transform pin and one of its data ranges.
pub(crate) unsafe extern "C" fn set_data_format<const HALVED: bool>(
    pin: *mut KSPIN,
    old_format: PKSDATAFORMAT,
    _old_attributes: *mut ks_sys::KSMULTIPLE_ITEM,
    range: *const KSDATARANGE,
    _attribute_range: *const ks_sys::KSATTRIBUTE_LIST,
) -> NTSTATUS {
    let relation = Relation::of(HALVED);
    // SAFETY: a live pin (this function's contract).
    let Ok(format) = (unsafe { pin::connection_format(pin) }) else {
        return ks_sys::STATUS_NO_MATCH;
    };
    // SAFETY: one of the pin's own ranges.
    let range = unsafe { pin::descriptor_range(range) };
    if range.is_none_or(|range| !range.same_picture(&format)) {
        return ks_sys::STATUS_NO_MATCH;
    }
    // SAFETY: a live pin.
    let id = unsafe { pin_id(pin) };
    // SAFETY: a live pin; the control mutex is held (this function's contract).
    if let Some(other) = unsafe { other_format(pin, id) }
        && !relation.agrees(id, &format, &other)
    {
        return ks_sys::STATUS_NO_MATCH;
    }
    if old_format.is_null() {
        return STATUS_SUCCESS; // a new pin: `create` keeps the format
    }
    // SAFETY: a live pin past its create dispatch, the control mutex held.
    let (Some(current), stopped) =
        (unsafe { pin_format(pin) }, unsafe { ks::device_state(pin) } == ks_sys::KSSTATE_STOP)
    else {
        return Error::INVALID_DEVICE_STATE.to_status();
    };
    if !stopped || !current.same_picture(&format) {
        return Error::INVALID_DEVICE_STATE.to_status();
    }
    // SAFETY: a live pin past its create dispatch.
    let context = unsafe { ks::pin_context(pin) }.cast::<TransformPin>();
    // SAFETY: the pin is in STOP and the control mutex is held: nothing reads the format now
    // (invariants).
    if let Some(context) = unsafe { context.as_ref() } {
        // SAFETY: as above.
        unsafe { context.format.get().write(format) };
    }
    STATUS_SUCCESS
}

/// The intersection handler of both pins of a transform ([`set_data_format`] says which
/// relation `HALVED` names): as the capture pin's ([`pin::intersect`]), offering only formats
/// that agree with the filter's other pin when it exists. PASSIVE_LEVEL, with the filter control
/// mutex held (the filter is `context`).
///
/// # Safety
///
/// Only AVStream calls it, with its arguments.
pub(crate) unsafe extern "C" fn intersect<const HALVED: bool>(
    context: PVOID,
    irp: PIRP,
    pin: *mut KSP_PIN,
    caller: PKSDATARANGE,
    descriptor: PKSDATARANGE,
    buffer_size: u32,
    data: PVOID,
    data_size: PULONG,
) -> NTSTATUS {
    let relation = Relation::of(HALVED);
    if !context.is_null() && !pin.is_null() {
        // SAFETY: AVStream passes the pin factory the request names.
        let id = unsafe { (*pin).PinId };
        let filter = context.cast::<ks_sys::KSFILTER>();
        let other_id = if id == INPUT { OUTPUT } else { INPUT };
        // SAFETY: the filter whose pin is asked about; the control mutex is held.
        let other = unsafe { ks_sys::KsFilterGetFirstChildPin(filter, other_id) };
        // SAFETY: a pin of the filter past its create dispatch; the control mutex is held.
        let other = if other.is_null() { None } else { unsafe { pin_format(other) } };
        // SAFETY: NULL or one of the pin's own ranges.
        let offered = unsafe { pin::descriptor_range(descriptor) };
        if let (Some(other), Some(offered)) = (other, offered)
            && !relation.agrees(id, &offered, &other)
        {
            return ks_sys::STATUS_NO_MATCH;
        }
    }
    // SAFETY: the arguments as AVStream passed them.
    unsafe { pin::intersect(context, irp, pin, caller, descriptor, buffer_size, data, data_size) }
}

/// The process pins a transform's `Process` gets: the first instance of each of its factories.
pub(crate) struct ProcessPins<'a> {
    pub(crate) input: ProcessPin<'a>,
    pub(crate) output: ProcessPin<'a>,
}

impl ProcessPins<'_> {
    /// Reads the index AVStream passes (one entry per pin factory, in id order).
    ///
    /// # Safety
    ///
    /// `index` is the index AVStream passed a transform filter's `Process`, in that call (the
    /// results are not kept beyond it): two entries, each with `Count` valid process pins, whose
    /// frames are locked at their leading edges, and the filter's processing mutex held.
    pub(crate) unsafe fn new(index: *mut KSPROCESSPIN_INDEXENTRY) -> Option<Self> {
        if index.is_null() {
            return None;
        }
        let first = |id: u32| -> Option<ProcessPin<'_>> {
            // SAFETY: the index has an entry per pin factory (this function's contract).
            let entry = unsafe { index.wrapping_add(id as usize).read() };
            if entry.Count == 0 || entry.Pins.is_null() {
                return None;
            }
            // SAFETY: `Count >= 1` valid pointers.
            let pin = unsafe { entry.Pins.read() };
            let pin = NonNull::new(pin)?;
            Some(ProcessPin { pin, _call: core::marker::PhantomData })
        };
        let (input, output) = (first(INPUT)?, first(OUTPUT)?);
        (input.pin != output.pin).then_some(Self { input, output })
    }
}

/// One process pin of the current `Process` call.
///
/// # Invariants
///
/// `pin` is a process pin AVStream passed the call this value lives in, distinct from every
/// other `ProcessPin` of the call; its frame is locked at the leading edge and the filter's
/// processing mutex is held, so nothing else touches it meanwhile.
pub(crate) struct ProcessPin<'a> {
    pin: NonNull<KSPROCESSPIN>,
    _call: core::marker::PhantomData<&'a mut KSPROCESSPIN>,
}

impl ProcessPin<'_> {
    fn read(&self) -> KSPROCESSPIN {
        // SAFETY: a valid process pin (invariants).
        unsafe { self.pin.as_ptr().read() }
    }

    /// Whether the pin shares its frames in place with the filter's other pin.
    pub(crate) fn in_place(&self) -> bool {
        !self.read().InPlaceCounterpart.is_null()
    }

    /// The format of the pin.
    pub(crate) fn format(&self) -> Option<ImageFormat> {
        let pin = self.read().Pin;
        if pin.is_null() {
            return None;
        }
        // SAFETY: a live transform pin past its create dispatch; AVStream holds the processing
        // mutex around `Process`, and a pin with a frame is out of STOP (see `TransformPin`).
        unsafe { pin_format(pin) }
    }

    /// Bytes at the leading edge.
    pub(crate) fn available(&self) -> u32 {
        self.read().BytesAvailable
    }

    /// The bytes at the leading edge.
    pub(crate) fn data(&mut self) -> Option<&mut [u8]> {
        let KSPROCESSPIN { Data: data, BytesAvailable: len, .. } = self.read();
        if data.is_null() {
            return None;
        }
        // SAFETY: `BytesAvailable` bytes at `Data`, the frame locked at the leading edge, used
        // by nothing else during the call (invariants); the borrow ends with `self`'s.
        Some(unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len as usize) })
    }

    /// The `KSSTREAM_HEADER` of the frame at the leading edge, or NULL.
    pub(crate) fn stream_header(&self) -> *mut KSSTREAM_HEADER {
        let pointer = self.read().StreamPointer;
        if pointer.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: the pin's locked leading edge (invariants).
        unsafe { (*pointer).StreamHeader }
    }

    /// Says how many bytes of the frame the filter used (read, or wrote).
    pub(crate) fn set_used(&mut self, bytes: u32) {
        // SAFETY: a valid process pin, the filter's to write during the call (invariants).
        unsafe { (*self.pin.as_ptr()).BytesUsed = bytes };
    }

    /// Asks AVStream to send the frame on whatever `BytesUsed` says.
    pub(crate) fn terminate(&mut self) {
        // SAFETY: as above.
        unsafe { (*self.pin.as_ptr()).Terminate = 1 };
    }
}

/// Gives an output frame the input frame's timing and `KS_FRAME_INFO`, as far as both headers
/// hold them.
///
/// # Safety
///
/// Both are NULL or the headers of frames at process pins' leading edges in this `Process` call,
/// `Size` bytes each.
pub(crate) unsafe fn copy_timing(from: *const KSSTREAM_HEADER, to: *mut KSSTREAM_HEADER) {
    if from.is_null() || to.is_null() {
        return;
    }
    // SAFETY: the caller's contract: a live header, not written during the call.
    let source = unsafe { &*from };
    // SAFETY: the caller's contract: another frame's header, ours to write.
    let target = unsafe { &mut *to };
    target.PresentationTime = source.PresentationTime;
    target.Duration = source.Duration;
    let timing =
        ks_sys::KSSTREAM_HEADER_OPTIONSF_TIMEVALID | ks_sys::KSSTREAM_HEADER_OPTIONSF_DURATIONVALID;
    target.OptionsFlags = (target.OptionsFlags & !timing) | (source.OptionsFlags & timing);
    let needed = size_of::<KSSTREAM_HEADER>() + size_of::<KS_FRAME_INFO>();
    if (source.Size as usize) < needed || (target.Size as usize) < needed {
        return;
    }
    // SAFETY: both headers are followed by a KS_FRAME_INFO (their sizes say so).
    let info = unsafe { from.wrapping_add(1).cast::<KS_FRAME_INFO>().read_unaligned() };
    if info.ExtendedHeaderSize as usize >= size_of::<KS_FRAME_INFO>() {
        // SAFETY: as above.
        unsafe { to.wrapping_add(1).cast::<KS_FRAME_INFO>().write_unaligned(info) };
    }
}
