//! The allocator properties: handlers for a pin's automation table, and the buffer-level
//! functions they are made of.
//!
//! C header: `ks.h` (`KSPROPERTY_CONNECTION_ALLOCATORFRAMING(_EX)`, `KSPROPERTY_STREAM_ALLOCATOR`).
//! Specification sections 4.1 to 4.3, 4.9 and 7.6.
//!
//! Each function takes the property's value buffer exactly as long as the request made it and
//! returns the status and the byte count (`Irp->IoStatus.Information`) to report. Nothing is
//! read or written outside the buffers, whatever their lengths; a buffer that is too short is
//! left untouched.
//!
//! The size protocol of variable-length values (`ALLOCATORFRAMING_EX`): a zero-length buffer asks
//! for the size and gets `STATUS_BUFFER_OVERFLOW` (a warning, so the I/O manager reports the size
//! to a user-mode caller); a buffer that is too short gets `STATUS_BUFFER_TOO_SMALL`, also with the
//! size; a pin without framing gets `STATUS_NOT_FOUND`.
//!
//! # In an automation table
//!
//! [`CONNECTION_PROPERTY_SET`] serves `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` and
//! `..._ALLOCATORFRAMING_EX` from the pin descriptor's `AllocatorFraming` (as AVStream does for
//! its own pins); [`stream_property_set`] serves `KSPROPERTY_STREAM_ALLOCATOR` with the slot a
//! driver keeps in its pin context:
//!
//! ```
//! # extern crate ks_host;
//! use ks_allocator::{SyncStatic, property::CONNECTION_PROPERTY_SET};
//!
//! // SAFETY: the sets point only at the library's immutable tables and GUIDs.
//! static PIN_PROPERTY_SETS: SyncStatic<[ks_sys::KSPROPERTY_SET; 1]> =
//!     unsafe { SyncStatic::new([CONNECTION_PROPERTY_SET]) };
//! assert_eq!(PIN_PROPERTY_SETS[0].PropertiesCount, 2);
//! ```

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use core::marker::PhantomData;

use ks_sys::{
    KSPIN, KSPROPERTY, KSPROPERTY_ITEM, KSPROPERTY_SET, NTSTATUS, PIRP, PKSIDENTIFIER, PVOID,
    STATUS_SUCCESS,
};

use crate::{
    Error,
    framing::{Framing, FramingExView, LEGACY_LEN},
    sync::{AtomicUsize, Ordering},
};

/// What a property handler reports: the status and `Irp->IoStatus.Information`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The request's status.
    pub status: NTSTATUS,
    /// Bytes written, or, for a size query, the size needed.
    pub information: usize,
}

impl Reply {
    const fn success(information: usize) -> Self {
        Self { status: STATUS_SUCCESS, information }
    }

    const fn error(error: Error, information: usize) -> Self {
        Self { status: error.to_status(), information }
    }
}

/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX` (get): the pin's extended framing, all
/// `24 + 88 * CountItems` bytes of it.
///
/// | request | status | information |
/// | --- | --- | --- |
/// | the pin has no framing | `STATUS_NOT_FOUND` | 0 |
/// | empty buffer | `STATUS_BUFFER_OVERFLOW` | size |
/// | shorter than the size | `STATUS_BUFFER_TOO_SMALL` | size |
/// | long enough | `STATUS_SUCCESS`, the framing copied | size |
///
/// Any IRQL (pure copy), as long as the buffers are resident.
#[must_use]
pub fn get_allocator_framing_ex(framing: Option<&FramingExView<'_>>, output: &mut [u8]) -> Reply {
    let Some(framing) = framing else {
        return Reply::error(Error::NOT_FOUND, 0);
    };
    let size = framing.byte_len();
    if output.is_empty() {
        return Reply::error(Error::BUFFER_OVERFLOW, size);
    }
    match framing.encode(output) {
        Ok(written) => Reply::success(written),
        Err(_) => Reply::error(Error::BUFFER_TOO_SMALL, size),
    }
}

/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` (get): the legacy 24-byte framing.
///
/// `STATUS_NOT_FOUND` without framing; `STATUS_BUFFER_TOO_SMALL` with the size for a buffer under
/// 24 bytes (KS normally rejects those first, the item's `MinData` being 24); otherwise the 24
/// bytes and `STATUS_SUCCESS`.
#[must_use]
pub fn get_allocator_framing(framing: Option<&Framing>, output: &mut [u8]) -> Reply {
    let Some(framing) = framing else {
        return Reply::error(Error::NOT_FOUND, 0);
    };
    match framing.encode(output) {
        Ok(written) => Reply::success(written),
        Err(_) => Reply::error(Error::BUFFER_TOO_SMALL, LEGACY_LEN),
    }
}

/// How wide the caller's handles are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleWidth {
    /// A native 64-bit caller: 8-byte handles.
    Native,
    /// A 32-bit caller under WOW64 (`IoIs32bitProcess`): 4-byte handles, although the item's
    /// `MinData` is `sizeof(HANDLE)`.
    Wow64,
}

impl HandleWidth {
    /// Bytes of a handle.
    #[must_use]
    pub const fn bytes(self) -> usize {
        match self {
            Self::Native => 8,
            Self::Wow64 => 4,
        }
    }
}

/// The allocator assigned to a pin with `KSPROPERTY_STREAM_ALLOCATOR` (set): the handle value,
/// 0 for none. A driver keeps one per pin and resolves the handle to the allocator's file object
/// when it starts streaming.
#[derive(Debug, Default)]
pub struct AssignedAllocator(AtomicUsize);

impl AssignedAllocator {
    /// No allocator assigned.
    #[must_use]
    pub fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// The assigned handle value, 0 for none. Any IRQL.
    #[must_use]
    pub fn handle(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// `KSPROPERTY_STREAM_ALLOCATOR` (get): always a NULL handle; success means "this pin can use an
/// allocator". `STATUS_BUFFER_TOO_SMALL` with the handle size if the buffer cannot hold one.
#[must_use]
pub fn get_stream_allocator(output: &mut [u8], width: HandleWidth) -> Reply {
    let size = width.bytes();
    let Some(handle) = output.get_mut(..size) else {
        return Reply::error(Error::BUFFER_TOO_SMALL, size);
    };
    handle.fill(0);
    Reply::success(size)
}

/// `KSPROPERTY_STREAM_ALLOCATOR` (set): assigns the allocator handle in `input` (NULL releases
/// the current one). Only while the pin is stopped (`KSSTATE_STOP`): `STATUS_INVALID_DEVICE_STATE`
/// otherwise; `STATUS_BUFFER_TOO_SMALL` if `input` cannot hold a handle of the caller's width.
/// PASSIVE_LEVEL (the caller references the handle's object).
#[must_use]
pub fn set_stream_allocator(
    slot: &AssignedAllocator,
    input: &[u8],
    width: HandleWidth,
    state: ks_sys::KSSTATE,
) -> Reply {
    let handle = match width {
        HandleWidth::Native => input.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)),
        HandleWidth::Wow64 => input.first_chunk::<4>().map(|b| u64::from(u32::from_le_bytes(*b))),
    };
    let Some(handle) = handle else {
        return Reply::error(Error::BUFFER_TOO_SMALL, width.bytes());
    };
    if state != ks_sys::KSSTATE_STOP {
        return Reply::error(Error::INVALID_DEVICE_STATE, 0);
    }
    let Ok(handle) = usize::try_from(handle) else {
        return Reply::error(Error::INVALID_PARAMETER, 0);
    };
    slot.0.store(handle, Ordering::Release);
    Reply::success(0)
}

/// The value buffer KS passed: `len` bytes at `data` (NULL or empty for a size query).
///
/// # Safety
///
/// `data` is NULL or points at `len` bytes writable for the duration of the request.
unsafe fn value<'a>(data: PVOID, len: u32) -> &'a mut [u8] {
    if data.is_null() || len == 0 {
        return &mut [];
    }
    // SAFETY: the caller's contract: KS passes the request's value buffer and its length.
    unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len as usize) }
}

/// Reports `reply`: sets `Information` and returns the status.
///
/// # Safety
///
/// `irp` is the live IRP of the request.
unsafe fn complete(irp: PIRP, reply: Reply) -> NTSTATUS {
    // SAFETY: the caller's contract.
    unsafe { ks_sys::irp::irp_set_information(irp, reply.information) };
    reply.status
}

/// The extended framing of the pin an IRP addresses, from its descriptor.
///
/// # Safety
///
/// `irp` is a live property IRP on a pin; the pin's descriptor and its `AllocatorFraming` (if
/// any) stay valid and unchanged during the request (the filter control mutex is held).
unsafe fn pin_framing<'a>(irp: PIRP) -> Option<FramingExView<'a>> {
    // SAFETY: the caller's contract: KS routes pin property IRPs here.
    let pin: *const KSPIN = unsafe { ks_sys::KsGetPinFromIrp(irp) };
    if pin.is_null() {
        return None;
    }
    // SAFETY: a non-NULL pin from KS is live for the request.
    let descriptor = unsafe { (*pin).Descriptor };
    if descriptor.is_null() {
        return None;
    }
    // SAFETY: as above, for the pin's descriptor.
    let framing = unsafe { (*descriptor).AllocatorFraming };
    // SAFETY: AllocatorFraming is NULL or a valid framing of the count it states (what AVStream
    // itself relies on), unchanged during the request.
    unsafe { FramingExView::from_raw(framing) }
}

/// `PFNKSHANDLER` of `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX` (get). PASSIVE_LEVEL.
///
/// # Safety
///
/// Only KS calls it, for a property request on a pin, with the request's value buffer.
pub unsafe extern "C" fn allocator_framing_ex_handler(
    irp: PIRP,
    _request: PKSIDENTIFIER,
    data: PVOID,
) -> NTSTATUS {
    // SAFETY: `irp` is the live request (this function's contract).
    let len = unsafe { ks_sys::irp::irp_output_buffer_length(irp) };
    // SAFETY: as above.
    let framing = unsafe { pin_framing(irp) };
    // SAFETY: KS passes the value buffer of the request's output length.
    let output = unsafe { value(data, len) };
    let reply = get_allocator_framing_ex(framing.as_ref(), output);
    // SAFETY: as above.
    unsafe { complete(irp, reply) }
}

/// `PFNKSHANDLER` of `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` (get): the legacy framing of the
/// pin's preferred (first) item ([`Framing::from_item`]). PASSIVE_LEVEL.
///
/// # Safety
///
/// Only KS calls it, for a property request on a pin, with the request's value buffer.
pub unsafe extern "C" fn allocator_framing_handler(
    irp: PIRP,
    _request: PKSIDENTIFIER,
    data: PVOID,
) -> NTSTATUS {
    // SAFETY: `irp` is the live request (this function's contract).
    let len = unsafe { ks_sys::irp::irp_output_buffer_length(irp) };
    // SAFETY: as above.
    let legacy = unsafe { pin_framing(irp) }
        .and_then(|view| view.item(0))
        .map(|item| Framing::from_item(&item));
    // SAFETY: KS passes the value buffer of the request's output length.
    let output = unsafe { value(data, len) };
    let reply = get_allocator_framing(legacy.as_ref(), output);
    // SAFETY: as above.
    unsafe { complete(irp, reply) }
}

/// Where a driver keeps a pin's [`AssignedAllocator`].
///
/// # Safety
///
/// Implementors guarantee that `KSPIN.Context` of every pin whose automation table holds
/// [`stream_property_set::<Self>`](stream_property_set) points at a live `Self` for as long as
/// the pin exists.
pub unsafe trait AllocatorAssignment: Sync {
    /// The pin's slot.
    fn assigned_allocator(&self) -> &AssignedAllocator;
}

/// The `KSPROPERTY_STREAM_ALLOCATOR` handlers for pins whose context is a `T`.
struct StreamHandlers<T>(PhantomData<T>);

impl<T: AllocatorAssignment> StreamHandlers<T> {
    /// The pin's context.
    ///
    /// # Safety
    ///
    /// `irp` is a live property IRP on a pin whose context is a `T` (`AllocatorAssignment`).
    unsafe fn context<'a>(irp: PIRP) -> Option<(&'a T, ks_sys::KSSTATE)> {
        // SAFETY: the caller's contract.
        let pin: *const KSPIN = unsafe { ks_sys::KsGetPinFromIrp(irp) };
        if pin.is_null() {
            return None;
        }
        // SAFETY: a non-NULL pin from KS is live for the request.
        let pin = unsafe { &*pin };
        let (context, state) = (pin.Context.cast::<T>(), pin.DeviceState);
        // SAFETY: `AllocatorAssignment`'s contract: the context is a live `T`.
        unsafe { context.as_ref() }.map(|context| (context, state))
    }

    fn width(irp: PIRP) -> HandleWidth {
        // SAFETY: `irp` is the live request.
        if unsafe { ks_sys::IoIs32bitProcess(irp) } != 0 {
            HandleWidth::Wow64
        } else {
            HandleWidth::Native
        }
    }

    /// Get. PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, for a property request on a pin whose context is a `T`.
    unsafe extern "C" fn get(irp: PIRP, _request: PKSIDENTIFIER, data: PVOID) -> NTSTATUS {
        // SAFETY: `irp` is the live request (this function's contract).
        let len = unsafe { ks_sys::irp::irp_output_buffer_length(irp) };
        // SAFETY: KS passes the value buffer of the request's output length.
        let output = unsafe { value(data, len) };
        let reply = get_stream_allocator(output, Self::width(irp));
        // SAFETY: as above.
        unsafe { complete(irp, reply) }
    }

    /// Set. PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, for a property request on a pin whose context is a `T`.
    unsafe extern "C" fn set(irp: PIRP, _request: PKSIDENTIFIER, data: PVOID) -> NTSTATUS {
        // SAFETY: `irp` is the live request (this function's contract).
        let len = unsafe { ks_sys::irp::irp_output_buffer_length(irp) };
        // SAFETY: KS passes the value buffer of the request's length.
        let input = unsafe { value(data, len) };
        // SAFETY: as above.
        let reply = match unsafe { Self::context(irp) } {
            Some((context, state)) => {
                set_stream_allocator(context.assigned_allocator(), input, Self::width(irp), state)
            }
            None => Reply::error(Error::INVALID_DEVICE_REQUEST, 0),
        };
        // SAFETY: as above.
        unsafe { complete(irp, reply) }
    }

    const ITEMS: [KSPROPERTY_ITEM; 1] =
        [property_item(ks_sys::KSPROPERTY_STREAM_ALLOCATOR, Some(Self::get), Some(Self::set), 4)];
}

const fn property_item(
    id: u32,
    get: ks_sys::PFNKSHANDLER,
    set: ks_sys::PFNKSHANDLER,
    min_data: u32,
) -> KSPROPERTY_ITEM {
    #[allow(clippy::cast_possible_truncation, reason = "24")]
    let min_property = size_of::<KSPROPERTY>() as u32;
    KSPROPERTY_ITEM {
        PropertyId: id,
        GetPropertyHandler: get,
        MinProperty: min_property,
        MinData: min_data,
        SetPropertyHandler: set,
        Values: core::ptr::null(),
        RelationsCount: 0,
        Relations: core::ptr::null(),
        SupportHandler: None,
        SerializedSize: 0,
    }
}

/// The two Connection-set items: `ALLOCATORFRAMING` (get, `MinData` 24) and
/// `ALLOCATORFRAMING_EX` (get, `MinData` 0: the size protocol runs in the handler).
pub const CONNECTION_PROPERTY_ITEMS: [KSPROPERTY_ITEM; 2] = [
    #[allow(clippy::cast_possible_truncation, reason = "24")]
    property_item(
        ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING,
        Some(allocator_framing_handler),
        None,
        LEGACY_LEN as u32,
    ),
    property_item(
        ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        Some(allocator_framing_ex_handler),
        None,
        0,
    ),
];

/// `KSPROPSETID_Connection` with the two allocator-framing items, for a pin automation table.
pub const CONNECTION_PROPERTY_SET: KSPROPERTY_SET = KSPROPERTY_SET {
    Set: &ks_sys::KSPROPSETID_Connection,
    PropertiesCount: 2,
    PropertyItem: core::ptr::from_ref(&CONNECTION_PROPERTY_ITEMS).cast::<KSPROPERTY_ITEM>(),
    FastIoCount: 0,
    FastIoTable: core::ptr::null(),
};

/// `KSPROPSETID_Stream` with `KSPROPERTY_STREAM_ALLOCATOR` (get and set) for pins whose context
/// is a `T`. Its `MinData` is 4, not `sizeof(HANDLE)`, so that 32-bit clients under WOW64 reach
/// the handler with their 4-byte handles; the handler checks the width each caller needs.
#[must_use]
pub const fn stream_property_set<T: AllocatorAssignment>() -> KSPROPERTY_SET {
    KSPROPERTY_SET {
        Set: &ks_sys::KSPROPSETID_Stream,
        PropertiesCount: 1,
        PropertyItem: core::ptr::from_ref(&StreamHandlers::<T>::ITEMS).cast::<KSPROPERTY_ITEM>(),
        FastIoCount: 0,
        FastIoTable: core::ptr::null(),
    }
}
