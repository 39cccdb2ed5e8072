//! The allocator properties: handlers for a pin's automation table, and the buffer-level
//! functions they are made of.
//!
//! C header: `ks.h` (`KSPROPERTY_CONNECTION_ALLOCATORFRAMING(_EX)`, `KSPROPERTY_STREAM_ALLOCATOR`).
//! Specification sections 4.1 to 4.3, 4.9 and 7.6.
//!
//! # Who needs these
//!
//! **Not an ordinary AVStream minidriver.** AVStream answers all three properties for its pins
//! itself (the framing from `KSPIN_DESCRIPTOR_EX.AllocatorFraming` after any `KsEdit`, the
//! stream allocator from the pipe it builds), and when it merges a minidriver's automation table
//! with its own, the minidriver's entries win: a pin that lists these sets hides the class's
//! answers, and the class never sees the allocator the graph assigns. The sample driver lists
//! none.
//!
//! **Who does:**
//! - a KS filter that is not an AVStream minidriver (plain WDM KS with its own
//!   `IRP_MJ_DEVICE_CONTROL` and `KsPropertyHandler`, or a stream-class minidriver answering
//!   `SRB_GET_STREAM_PROPERTY`): it has no `KSPIN`, so it calls the buffer-level functions
//!   ([`get_allocator_framing_ex`], [`read_handle`], [`AssignedAllocator::set`], …) from its own
//!   dispatch, with its own pin's framing and state;
//! - an AVStream minidriver that deliberately overrides the class for a pin (to answer with
//!   another framing, or to manage the assigned allocator itself): the `KSPROPERTY_SET` tables
//!   below ([`CONNECTION_PROPERTY_SET`], [`stream_property_set`]), which find the pin with
//!   `KsGetPinFromIrp` and so work only on AVStream pins. It then owns the rules the class
//!   otherwise keeps (below).
//!
//! # What `KSPROPERTY_STREAM_ALLOCATOR` (set) checks, and what its user must
//!
//! The set handler takes the pin's control mutex (the filter control mutex, which AVStream
//! holds for state changes but not for a minidriver's property handlers) around the state check
//! and the assignment, so a pin cannot leave STOP in between. It resolves the handle as a *file
//! object*: it does not know whether that file object is an allocator. A filter that uses the
//! assigned allocator must ask it for its function table
//! (`KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE`, kernel mode, through the file object) before its
//! first frame, and fail the pin's transition out of STOP if it cannot get one; a filter that
//! keeps state in its own structures instead of a `KSPIN` must hold its own state lock around
//! [`AssignedAllocator::set`], whose `state` argument is only as good as that lock.
//!
//! The size protocol of variable-length values (`ALLOCATORFRAMING_EX`): a zero-length buffer asks
//! for the size and gets `STATUS_BUFFER_OVERFLOW` (a warning, so the I/O manager reports the size
//! to a user-mode caller); a buffer that is too short gets `STATUS_BUFFER_TOO_SMALL`, also with the
//! size; a pin without framing gets `STATUS_NOT_FOUND`.
//!
//! `KSPROPERTY_STREAM_ALLOCATOR` (set) resolves the client's handle at once, in the client's
//! context, with `ObReferenceObjectByHandle` (the IRP's requestor mode, file objects only, no
//! access right asked for beyond holding the handle: clients open allocators with whatever access
//! their API gives them, and the reference only keeps the object alive), and keeps the
//! referenced file object in the pin's [`AssignedAllocator`]. A 32-bit client's 4-byte handle is
//! sign-extended as `Handle32ToHandle` does.
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

mod assign;
mod buffer;
mod handlers;

use ks_sys::{KSPROPERTY_ITEM, KSPROPERTY_SET};

pub use assign::AssignedAllocator;
pub use buffer::{
    HandleWidth, Reply, get_allocator_framing, get_allocator_framing_ex, get_stream_allocator,
    read_handle,
};
pub use handlers::{allocator_framing_ex_handler, allocator_framing_handler, property_item};

use crate::framing::LEGACY_LEN;
use handlers::StreamHandlers;

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

/// The two Connection-set items: `ALLOCATORFRAMING` (get, `MinData` 24) and
/// `ALLOCATORFRAMING_EX` (get, `MinData` 0: the size protocol runs in the handler).
pub const CONNECTION_PROPERTY_ITEMS: [KSPROPERTY_ITEM; 2] = [
    #[expect(clippy::cast_possible_truncation, reason = "24")]
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
