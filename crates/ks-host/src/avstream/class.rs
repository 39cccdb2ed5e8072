//! The property sets AVStream answers for every pin itself, merged with the pin's own automation
//! table as AVStream merges them (`KsMergeAutomationTables`): a set both define has the items of
//! both, and where both define an item (same property id), the minidriver's wins. So a pin that
//! puts its own allocator handlers in its table overrides the class, and a test sees it.
//!
//! - `KSPROPSETID_Connection`: `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX` from the pin
//!   descriptor's `AllocatorFraming` (after any `KsEdit`), with the size protocol of
//!   specification section 4.2, and the legacy `..._ALLOCATORFRAMING` from its first item; the
//!   filter control mutex held around the copy (descriptor edits happen under it).
//! - `KSPROPSETID_Stream`: `KSPROPERTY_STREAM_ALLOCATOR`. Get answers a NULL handle ("this pin
//!   can take an allocator"); set, only while the pin is stopped, resolves and references the
//!   client's handle in its context, as a file object, and keeps the reference for the pin until
//!   another allocator (or NULL) is assigned or the pin closes (see [`super::Pin::assigned_allocator`]).
//!
//! The buffer-level work is the library's (`ks_allocator::property`): the same protocol, tested
//! there.

use ks_allocator::property::{
    AssignedAllocator, HandleWidth, Reply, allocator_framing_ex_handler, allocator_framing_handler,
    get_stream_allocator, property_item as item, read_handle,
};
use ks_sys::{KSPIN, KSPROPERTY_ITEM, KSPROPERTY_SET, NTSTATUS, PIRP, PKSIDENTIFIER, PVOID};

use super::object::{self, Held};

/// Runs `f` with the control mutex of the pin an IRP addresses held.
///
/// # Safety
///
/// `irp` is a host property IRP on a live pin.
unsafe fn with_pin_control(irp: PIRP, f: impl FnOnce(*mut KSPIN) -> NTSTATUS) -> NTSTATUS {
    // SAFETY: the caller's contract.
    let pin = unsafe { crate::property::KsGetPinFromIrp(irp) };
    // SAFETY: a live pin the host made (or NULL).
    let header = unsafe { object::header(pin.cast()) };
    // SAFETY: a header's mutex lives as long as its object.
    let Some(mutex) = header.and_then(|header| unsafe { header.control.as_ref() }) else {
        return ks_sys::STATUS_INVALID_DEVICE_REQUEST;
    };
    let _held = Held::new(mutex);
    f(pin)
}

/// Gives `f` the request's value buffer and reports its reply, as a property handler does.
///
/// # Safety
///
/// `irp` is a live property IRP and `data` its value buffer of the request's output length.
unsafe fn serve(irp: PIRP, data: PVOID, f: impl FnOnce(&mut [u8]) -> Reply) -> NTSTATUS {
    // SAFETY: the caller's contract.
    let len = unsafe { ks_sys::irp::irp_output_buffer_length(irp) } as usize;
    let value: &mut [u8] = if data.is_null() || len == 0 {
        &mut []
    } else {
        // SAFETY: the caller's contract: `len` writable bytes, nothing else using them.
        unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), len) }
    };
    let reply = f(value);
    // SAFETY: a live IRP.
    unsafe { ks_sys::irp::irp_set_information(irp, reply.information as ks_sys::ULONG_PTR) };
    reply.status
}

/// The handle width of a request's client.
///
/// # Safety
///
/// `irp` is a live host IRP.
unsafe fn width(irp: PIRP) -> HandleWidth {
    // SAFETY: the caller's contract.
    if unsafe { crate::property::IoIs32bitProcess(irp) } != 0 {
        HandleWidth::Wow64
    } else {
        HandleWidth::Native
    }
}

/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX` (get), as the class answers it.
unsafe extern "C" fn framing_ex(irp: PIRP, request: PKSIDENTIFIER, data: PVOID) -> NTSTATUS {
    // SAFETY: KS's handler contract, forwarded with the mutex held.
    let forward = |_| unsafe { allocator_framing_ex_handler(irp, request, data) };
    // SAFETY: a property IRP on a live pin (KS's handler contract).
    unsafe { with_pin_control(irp, forward) }
}

/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` (get), as the class answers it.
unsafe extern "C" fn framing(irp: PIRP, request: PKSIDENTIFIER, data: PVOID) -> NTSTATUS {
    // SAFETY: KS's handler contract, forwarded with the mutex held.
    let forward = |_| unsafe { allocator_framing_handler(irp, request, data) };
    // SAFETY: a property IRP on a live pin (KS's handler contract).
    unsafe { with_pin_control(irp, forward) }
}

/// `KSPROPERTY_STREAM_ALLOCATOR` (get): a NULL handle.
unsafe extern "C" fn stream_allocator_get(
    irp: PIRP,
    _request: PKSIDENTIFIER,
    data: PVOID,
) -> NTSTATUS {
    // SAFETY: a live property IRP.
    let width = unsafe { width(irp) };
    // SAFETY: as above, with its value buffer.
    unsafe { serve(irp, data, |output| get_stream_allocator(output, width)) }
}

/// `KSPROPERTY_STREAM_ALLOCATOR` (set): the allocator assigned to the pin, while it is stopped.
unsafe extern "C" fn stream_allocator_set(
    irp: PIRP,
    _request: PKSIDENTIFIER,
    data: PVOID,
) -> NTSTATUS {
    // SAFETY: a live property IRP.
    let width = unsafe { width(irp) };
    // SAFETY: as above.
    let mode = unsafe { ks_sys::irp::irp_requestor_mode(irp) };
    let assign = |pin: *mut KSPIN| {
        // SAFETY: a live host pin.
        let Some(state) = (unsafe { object::pin_object(pin) }) else {
            return ks_sys::STATUS_INVALID_DEVICE_REQUEST;
        };
        let pin_state = state.state.load(std::sync::atomic::Ordering::Acquire);
        let assigned: &AssignedAllocator = &state.assigned;
        // SAFETY: a live property IRP with its value buffer.
        unsafe {
            serve(irp, data, |input| match read_handle(input, width) {
                Ok(handle) => assigned.set(handle, mode, pin_state),
                Err(reply) => reply,
            })
        }
    };
    // SAFETY: a property IRP on a live pin; the assignment is made with the mutex held, so the
    // state cannot change under it.
    unsafe { with_pin_control(irp, assign) }
}

/// The class's items of each set it answers for pins.
fn class_sets() -> [(&'static ks_sys::GUID, Vec<KSPROPERTY_ITEM>); 2] {
    [
        (
            &ks_sys::KSPROPSETID_Connection,
            vec![
                item(ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING, Some(framing), None, 24),
                item(ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX, Some(framing_ex), None, 0),
            ],
        ),
        (
            &ks_sys::KSPROPSETID_Stream,
            vec![item(
                ks_sys::KSPROPERTY_STREAM_ALLOCATOR,
                Some(stream_allocator_get),
                Some(stream_allocator_set),
                4,
            )],
        ),
    ]
}

/// A pin's property sets merged with the class's: the item arrays they point into live as long
/// as this value.
pub(crate) struct MergedSets {
    _items: Vec<Vec<KSPROPERTY_ITEM>>,
    sets: Vec<KSPROPERTY_SET>,
}

impl MergedSets {
    /// The sets, for a request.
    pub(crate) fn sets(&self) -> &[KSPROPERTY_SET] {
        &self.sets
    }
}

/// The driver's sets merged with the class's: the driver's items first and winning by id.
///
/// # Safety
///
/// The driver's sets' GUID pointers and item arrays are valid (a driver's statics).
pub(crate) unsafe fn merge(driver: &[KSPROPERTY_SET]) -> MergedSets {
    let driver_items = |set: &KSPROPERTY_SET| -> Vec<KSPROPERTY_ITEM> {
        if set.PropertyItem.is_null() {
            return Vec::new();
        }
        // SAFETY: `PropertiesCount` items (this function's contract).
        unsafe { std::slice::from_raw_parts(set.PropertyItem, set.PropertiesCount as usize) }
            .to_vec()
    };
    let same = |set: &KSPROPERTY_SET, guid: &ks_sys::GUID| {
        // SAFETY: the set's GUID pointer is NULL or valid (this function's contract).
        unsafe { set.Set.as_ref() }.is_some_and(|g| {
            ks_allocator::framing::Guid::from_raw(g) == ks_allocator::framing::Guid::from_raw(guid)
        })
    };
    let mut items = Vec::new();
    let mut guids = Vec::new();
    let mut classes = class_sets();
    for set in driver {
        let mut merged = driver_items(set);
        if let Some((_, class)) = classes.iter_mut().find(|(guid, _)| same(set, guid)) {
            let extra: Vec<_> = std::mem::take(class)
                .into_iter()
                .filter(|c| merged.iter().all(|d| d.PropertyId != c.PropertyId))
                .collect();
            merged.extend(extra);
        }
        items.push(merged);
        guids.push(set.Set);
    }
    for (guid, class) in classes {
        if !class.is_empty() && !driver.iter().any(|set| same(set, guid)) {
            items.push(class);
            guids.push(guid);
        }
    }
    let sets = items
        .iter()
        .zip(guids)
        .map(|(items, guid)| KSPROPERTY_SET {
            Set: guid,
            PropertiesCount: u32::try_from(items.len()).unwrap_or(u32::MAX),
            PropertyItem: items.as_ptr(),
            FastIoCount: 0,
            FastIoTable: std::ptr::null(),
        })
        .collect();
    MergedSets { _items: items, sets }
}
