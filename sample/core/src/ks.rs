//! Reads and writes of the AVStream objects' fields, each through a raw pointer, once.
//!
//! AVStream owns `KSDEVICE` and `KSPIN` and changes some of their fields while the driver's
//! callbacks run elsewhere (a pin's state, its descriptor when `KsEdit` replaces it); a Rust
//! reference to the whole object would promise that nothing does. So each field is read or
//! written alone, through a pointer to it, as the library does for the pins it serves.

use ks_sys::{
    KSDEVICE, KSOBJECT_BAG, KSPIN, KSPIN_DESCRIPTOR_EX, KSSTATE, NTSTATUS, PFNKSFREE,
    PKSDATAFORMAT, PVOID,
};

/// `device->Bag`.
///
/// # Safety
///
/// `device` points at a live `KSDEVICE`.
pub(crate) unsafe fn device_bag(device: *const KSDEVICE) -> KSOBJECT_BAG {
    // SAFETY: the caller's contract; no reference to the device is made.
    let field = unsafe { &raw const (*device).Bag };
    // SAFETY: an aligned field of the live device.
    unsafe { field.read_volatile() }
}

/// `device->Context`.
///
/// # Safety
///
/// `device` points at a live `KSDEVICE`.
pub(crate) unsafe fn device_context(device: *const KSDEVICE) -> PVOID {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*device).Context };
    // SAFETY: an aligned field of the live device.
    unsafe { field.read_volatile() }
}

/// `device->Context = context`.
///
/// # Safety
///
/// `device` points at a live `KSDEVICE` whose context nothing else reads or writes now.
pub(crate) unsafe fn set_device_context(device: *mut KSDEVICE, context: PVOID) {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw mut (*device).Context };
    // SAFETY: an aligned field of the live device.
    unsafe { field.write_volatile(context) };
}

/// `device->FunctionalDeviceObject`.
///
/// # Safety
///
/// `device` points at a live `KSDEVICE`.
pub(crate) unsafe fn device_object(device: *const KSDEVICE) -> ks_sys::PDEVICE_OBJECT {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*device).FunctionalDeviceObject };
    // SAFETY: an aligned field of the live device.
    unsafe { field.read_volatile() }
}

/// `device->PhysicalDeviceObject`.
///
/// # Safety
///
/// `device` points at a live `KSDEVICE`.
pub(crate) unsafe fn physical_device_object(device: *const KSDEVICE) -> ks_sys::PDEVICE_OBJECT {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*device).PhysicalDeviceObject };
    // SAFETY: an aligned field of the live device.
    unsafe { field.read_volatile() }
}

/// `pin->Bag`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn pin_bag(pin: *const KSPIN) -> KSOBJECT_BAG {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*pin).Bag };
    // SAFETY: an aligned field of the live pin.
    unsafe { field.read_volatile() }
}

/// `pin->Context`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn pin_context(pin: *const KSPIN) -> PVOID {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*pin).Context };
    // SAFETY: an aligned field of the live pin.
    unsafe { field.read_volatile() }
}

/// `pin->Context = context`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN` whose context nothing else reads or writes now (its create
/// dispatch).
pub(crate) unsafe fn set_pin_context(pin: *mut KSPIN, context: PVOID) {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw mut (*pin).Context };
    // SAFETY: an aligned field of the live pin.
    unsafe { field.write_volatile(context) };
}

/// `pin->ConnectionFormat`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn connection_format(pin: *const KSPIN) -> PKSDATAFORMAT {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*pin).ConnectionFormat };
    // SAFETY: an aligned field of the live pin.
    unsafe { field.read_volatile() }
}

/// `pin->DeviceState`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn device_state(pin: *const KSPIN) -> KSSTATE {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*pin).DeviceState };
    // SAFETY: an aligned field of the live pin.
    unsafe { field.read_volatile() }
}

/// `pin->StreamHeaderSize = size`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN` in its create dispatch.
pub(crate) unsafe fn set_stream_header_size(pin: *mut KSPIN, size: u32) {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw mut (*pin).StreamHeaderSize };
    // SAFETY: an aligned field of the live pin.
    unsafe { field.write_volatile(size) };
}

/// The current `pin->Descriptor->AllocatorFraming`'s first item's exact frame size (what the
/// pin's frames hold), or `None`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN` whose descriptor is its own `KsEdit` copy or a static, with
/// the control mutex held.
pub(crate) unsafe fn framed_frame_size(pin: *const KSPIN) -> Option<u32> {
    // SAFETY: the caller's contract.
    let field = unsafe { &raw const (*pin).Descriptor };
    // SAFETY: an aligned field of the live pin.
    let descriptor = unsafe { field.read_volatile() };
    // SAFETY: a live descriptor (the caller's contract).
    let framing = unsafe { descriptor.as_ref() }?.AllocatorFraming;
    // SAFETY: NULL or a framing of the count it states (AVStream relies on the same).
    let view = unsafe { ks_allocator::framing::FramingExView::from_raw(framing) }?;
    view.item(0).map(|item| item.physical_range.max_frame_size)
}

/// Where `pin->Descriptor` is stored, for `KsEdit`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn descriptor_slot(pin: *mut KSPIN) -> *mut *mut KSPIN_DESCRIPTOR_EX {
    // SAFETY: the caller's contract.
    unsafe { &raw mut (*pin).Descriptor }.cast()
}

/// `KsAddItemToObjectBag(bag, item, free)`.
///
/// # Safety
///
/// `bag` is a live object bag; `item` stays valid until `free` is called with it (or, if
/// `free` is `None`, it is pool memory that `ExFreePool` can free).
pub(crate) unsafe fn add_to_bag(bag: KSOBJECT_BAG, item: PVOID, free: PFNKSFREE) -> NTSTATUS {
    // SAFETY: the caller's contract.
    unsafe { ks_sys::KsAddItemToObjectBag(bag, item, free) }
}

/// Frees a context a pin's create dispatch put in the pin's bag ([`give_pin_context`]), when
/// AVStream empties the bag. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, once, with the context `give_pin_context::<T>` put in the bag.
unsafe extern "C" fn free_pin_context<T>(context: PVOID) {
    if let Some(context) = core::ptr::NonNull::new(context.cast::<T>()) {
        // SAFETY: the bag item is the PoolBox `give_pin_context` made with POOL_TAG; freed once.
        drop(unsafe { ks_allocator::PoolBox::from_raw_with_tag(context, crate::POOL_TAG) });
    }
}

/// Makes `context` the pin's context (`KSPIN.Context`): boxed in non-paged pool with
/// [`POOL_TAG`](crate::POOL_TAG), put in the pin's bag (freed with it), and has every frame of the
/// pin carry a `KS_FRAME_INFO` after its `KSSTREAM_HEADER` (picture number, drops). Returns the
/// status of the first step that fails. PASSIVE_LEVEL, with the filter control mutex held.
///
/// # Safety
///
/// `pin` is a live pin in its create dispatch.
pub(crate) unsafe fn give_pin_context<T>(pin: *mut KSPIN, context: T) -> NTSTATUS {
    let Ok(context) = ks_allocator::PoolBox::new(context, crate::POOL_TAG) else {
        return ks_allocator::Error::INSUFFICIENT_RESOURCES.to_status();
    };
    let raw = ks_allocator::PoolBox::into_raw(context);
    // SAFETY: a live pin (this function's contract).
    let bag = unsafe { pin_bag(pin) };
    // SAFETY: the pin's bag takes the context, freed by `free_pin_context::<T>`.
    let status = unsafe { add_to_bag(bag, raw.cast(), Some(free_pin_context::<T>)) };
    if status != ks_sys::STATUS_SUCCESS {
        if let Some(raw) = core::ptr::NonNull::new(raw) {
            // SAFETY: `raw` came from `into_raw` just now and the bag did not take it.
            drop(unsafe { ks_allocator::PoolBox::from_raw_with_tag(raw, crate::POOL_TAG) });
        }
        return status;
    }
    // SAFETY: a live pin in its create dispatch: nothing else uses its context yet.
    unsafe { set_pin_context(pin, raw.cast()) };
    #[expect(clippy::cast_possible_truncation, reason = "56 + 72 bytes")]
    let header_size =
        (size_of::<ks_sys::KSSTREAM_HEADER>() + size_of::<ks_sys::KS_FRAME_INFO>()) as u32;
    // SAFETY: as above.
    unsafe { set_stream_header_size(pin, header_size) };
    ks_sys::STATUS_SUCCESS
}
