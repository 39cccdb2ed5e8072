//! The `PFNKSHANDLER`s KS calls: each recovers the request's pieces from the IRP and the pin,
//! runs the buffer-level function in `serve` and reports its reply.

use core::marker::PhantomData;

use ks_sys::{KSPIN, KSPROPERTY, KSPROPERTY_ITEM, NTSTATUS, PIRP, PKSIDENTIFIER, PVOID};

use super::{
    AllocatorAssignment, HandleWidth, Reply, get_allocator_framing, get_allocator_framing_ex,
    get_stream_allocator, read_handle,
};
use crate::{
    Error,
    framing::{Framing, FramingExView},
};

/// Runs one property request: gives `f` the value buffer KS passed (its length is the request's
/// output length, for a get and a set alike; empty when KS passes NULL), then sets
/// `Irp->IoStatus.Information` and returns the status of `f`'s reply.
///
/// # Safety
///
/// `irp` is the live IRP of a property request and `data` its value buffer, writable for the
/// request's output length (what KS passes a `PFNKSHANDLER`).
unsafe fn serve(irp: PIRP, data: PVOID, f: impl FnOnce(&mut [u8]) -> Reply) -> NTSTATUS {
    // SAFETY: `irp` is a live device-control IRP (this function's contract).
    let len = unsafe { ks_sys::irp::irp_output_buffer_length(irp) };
    let value: &mut [u8] = if data.is_null() || len == 0 {
        &mut []
    } else {
        // SAFETY: KS passes the request's value buffer and its length (this function's
        // contract); nothing else accesses it during the handler.
        unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len as usize) }
    };
    let reply = f(value);
    // SAFETY: `irp` is the live IRP the handler is processing.
    unsafe { ks_sys::irp::irp_set_information(irp, reply.information as ks_sys::ULONG_PTR) };
    reply.status
}

/// The pin a property IRP addresses, or NULL.
///
/// # Safety
///
/// `irp` is a live property IRP on a pin.
unsafe fn pin_of(irp: PIRP) -> *const KSPIN {
    // SAFETY: the caller's contract: KS routes pin property IRPs here.
    unsafe { ks_sys::KsGetPinFromIrp(irp) }
}

/// The extended framing of the pin an IRP addresses, from its descriptor.
///
/// # Safety
///
/// `irp` is a live property IRP on a pin; the pin's descriptor and its `AllocatorFraming` (if
/// any) stay valid and unchanged during the request (the filter control mutex is held).
unsafe fn pin_framing<'a>(irp: PIRP) -> Option<FramingExView<'a>> {
    // SAFETY: the caller's contract.
    let pin = unsafe { pin_of(irp) };
    if pin.is_null() {
        return None;
    }
    // SAFETY: a non-NULL pin from KS is live for the request.
    let descriptor = unsafe { crate::pin::descriptor(pin) };
    if descriptor.is_null() {
        return None;
    }
    // SAFETY: as above, for the pin's descriptor.
    let framing = unsafe { crate::pin::allocator_framing(descriptor) };
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
    // SAFETY: a pin property request (this function's contract).
    let framing = unsafe { pin_framing(irp) };
    // SAFETY: as above, with its value buffer.
    unsafe { serve(irp, data, |output| get_allocator_framing_ex(framing.as_ref(), output)) }
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
    // SAFETY: a pin property request (this function's contract).
    let legacy = unsafe { pin_framing(irp) }
        .and_then(|view| view.item(0))
        .map(|item| Framing::from_item(&item));
    // SAFETY: as above, with its value buffer.
    unsafe { serve(irp, data, |output| get_allocator_framing(legacy.as_ref(), output)) }
}

/// The `KSPROPERTY_STREAM_ALLOCATOR` handlers for pins whose context is a `T`.
pub(super) struct StreamHandlers<T>(PhantomData<T>);

impl<T: AllocatorAssignment> StreamHandlers<T> {
    /// The handle width of the request's client.
    ///
    /// # Safety
    ///
    /// `irp` is a live IRP.
    unsafe fn width(irp: PIRP) -> HandleWidth {
        // SAFETY: the caller's contract.
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
        // SAFETY: a live property IRP (this function's contract).
        let width = unsafe { Self::width(irp) };
        // SAFETY: as above, with its value buffer.
        unsafe { serve(irp, data, |output| get_stream_allocator(output, width)) }
    }

    /// Set: resolves and references the handle in the caller's context, with the pin's control
    /// mutex held around the state check and the assignment (the filter control mutex, which
    /// state changes hold: AVStream does not hold it for a minidriver's property handlers, and
    /// without it the pin could leave STOP between the check and the assignment). PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, for a property request on a pin whose context is a `T`, in the context
    /// of the requestor's process, with no AVStream mutex held by the calling thread.
    unsafe extern "C" fn set(irp: PIRP, _request: PKSIDENTIFIER, data: PVOID) -> NTSTATUS {
        // SAFETY: a live property IRP on a pin (this function's contract).
        let width = unsafe { Self::width(irp) };
        // SAFETY: as above.
        let mode = unsafe { ks_sys::irp::irp_requestor_mode(irp) };
        // SAFETY: as above.
        let pin = unsafe { pin_of(irp) };
        let assign = |input: &mut [u8]| {
            let handle = match read_handle(input, width) {
                Ok(handle) => handle,
                Err(reply) => return reply,
            };
            if pin.is_null() {
                return Reply::error(Error::INVALID_DEVICE_REQUEST, 0);
            }
            // SAFETY: a non-NULL pin from KS is live for the request, PASSIVE_LEVEL, and this
            // thread holds no AVStream mutex (this function's contract).
            unsafe { ks_sys::KsAcquireControl(pin.cast_mut().cast()) };
            // SAFETY: as above; the state cannot change while the mutex is held.
            let state = unsafe { crate::pin::device_state(pin) };
            // SAFETY: as above.
            let context = unsafe { crate::pin::context(pin) }.cast::<T>();
            // SAFETY: the pin's context is NULL or a live `T` (`AllocatorAssignment`'s contract).
            let context = unsafe { context.as_ref() };
            let reply = match context {
                Some(context) => context.assigned_allocator().set(handle, mode, state),
                None => Reply::error(Error::INVALID_DEVICE_REQUEST, 0),
            };
            // SAFETY: acquired above by this thread.
            unsafe { ks_sys::KsReleaseControl(pin.cast_mut().cast()) };
            reply
        };
        // SAFETY: as above, with its value buffer.
        unsafe { serve(irp, data, assign) }
    }

    pub(super) const ITEMS: [KSPROPERTY_ITEM; 1] =
        [property_item(ks_sys::KSPROPERTY_STREAM_ALLOCATOR, Some(Self::get), Some(Self::set), 4)];
}

/// A `KSPROPERTY_ITEM` for property `id` with these handlers and `MinData`, `MinProperty` the
/// size of a `KSPROPERTY`, and no relations, values or support handler: what a property set of a
/// KS filter lists for a plain get/set property.
#[must_use]
pub const fn property_item(
    id: u32,
    get: ks_sys::PFNKSHANDLER,
    set: ks_sys::PFNKSHANDLER,
    min_data: u32,
) -> KSPROPERTY_ITEM {
    #[expect(clippy::cast_possible_truncation, reason = "24")]
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
