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
