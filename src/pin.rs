//! Reading the fields of a KS-owned `KSPIN` and its descriptor.
//!
//! AVStream owns the pin object and writes some of its fields while a callback runs on another
//! thread (`DeviceState` and `ClientState` on a state change, `Descriptor` when the minidriver
//! `KsEdit`s it). A `&KSPIN` would promise Rust that nothing writes any of it for the reference's
//! lifetime, which the library cannot know; so each field is read on its own, through a raw
//! pointer, once (the kernel's `READ_ONCE` idiom: a volatile read of one aligned word).

use ks_sys::{KSALLOCATOR_FRAMING_EX, KSPIN, KSPIN_DESCRIPTOR_EX, KSSTATE, PVOID, ULONG};

/// `pin->Descriptor`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn descriptor(pin: *const KSPIN) -> *const KSPIN_DESCRIPTOR_EX {
    // SAFETY: `pin` points at a live object (the caller's contract); no reference is made.
    let field = unsafe { &raw const (*pin).Descriptor };
    // SAFETY: the field is an aligned pointer inside the pin, readable as the object is live.
    unsafe { field.read_volatile() }
}

/// `pin->Context`.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn context(pin: *const KSPIN) -> PVOID {
    // SAFETY: `pin` points at a live object (the caller's contract); no reference is made.
    let field = unsafe { &raw const (*pin).Context };
    // SAFETY: the field is an aligned pointer inside the pin, readable as the object is live.
    unsafe { field.read_volatile() }
}

/// `pin->DeviceState`: the state the pin was last asked to enter.
///
/// # Safety
///
/// `pin` points at a live `KSPIN`.
pub(crate) unsafe fn device_state(pin: *const KSPIN) -> KSSTATE {
    // SAFETY: `pin` points at a live object (the caller's contract); no reference is made.
    let field = unsafe { &raw const (*pin).DeviceState };
    // SAFETY: the field is an aligned 32-bit value inside the pin, readable as the object is live.
    unsafe { field.read_volatile() }
}

/// `descriptor->Flags` (`KSPIN_FLAG_*`).
///
/// # Safety
///
/// `descriptor` points at a live `KSPIN_DESCRIPTOR_EX`.
pub(crate) unsafe fn flags(descriptor: *const KSPIN_DESCRIPTOR_EX) -> ULONG {
    // SAFETY: `descriptor` points at a live object (the caller's contract); no reference is made.
    let field = unsafe { &raw const (*descriptor).Flags };
    // SAFETY: the field is an aligned 32-bit value, readable as the object is live.
    unsafe { field.read_volatile() }
}

/// `descriptor->AllocatorFraming`.
///
/// # Safety
///
/// `descriptor` points at a live `KSPIN_DESCRIPTOR_EX`.
pub(crate) unsafe fn allocator_framing(
    descriptor: *const KSPIN_DESCRIPTOR_EX,
) -> *const KSALLOCATOR_FRAMING_EX {
    // SAFETY: `descriptor` points at a live object (the caller's contract); no reference is made.
    let field = unsafe { &raw const (*descriptor).AllocatorFraming };
    // SAFETY: the field is an aligned pointer, readable as the object is live.
    unsafe { field.read_volatile() }
}
