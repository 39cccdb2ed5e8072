//! The allocator properties, at the level of the buffers KS hands a handler.
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

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ks_sys::{NTSTATUS, STATUS_SUCCESS};

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
