//! The allocator properties at the level of the buffers KS passes: pure functions of the value
//! buffer, exactly as long as the request made it, returning the status and byte count to report.
//! Nothing is read or written outside the buffers, whatever their lengths; a buffer that is too
//! short is left untouched.

use crate::{
    Error,
    framing::{Framing, FramingExView},
};

/// What a property handler reports: the status and `Irp->IoStatus.Information`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The request's status.
    pub status: ks_sys::NTSTATUS,
    /// Bytes written, or, for a size query, the size needed.
    pub information: usize,
}

impl Reply {
    pub(crate) const fn success(information: usize) -> Self {
        Self { status: ks_sys::STATUS_SUCCESS, information }
    }

    pub(crate) const fn error(error: Error, information: usize) -> Self {
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
/// # IRQL
///
/// Any (a pure copy), as long as the buffers are resident.
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
///
/// # IRQL
///
/// Any (a pure copy), as long as the buffers are resident.
#[must_use]
pub fn get_allocator_framing(framing: Option<&Framing>, output: &mut [u8]) -> Reply {
    let Some(framing) = framing else {
        return Reply::error(Error::NOT_FOUND, 0);
    };
    match framing.encode(output) {
        Ok(written) => Reply::success(written),
        Err(_) => Reply::error(Error::BUFFER_TOO_SMALL, crate::framing::LEGACY_LEN),
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

/// `KSPROPERTY_STREAM_ALLOCATOR` (get): always a NULL handle; success means "this pin can use an
/// allocator". `STATUS_BUFFER_TOO_SMALL` with the handle size if the buffer cannot hold one.
///
/// # IRQL
///
/// Any, as long as the buffer is resident.
#[must_use]
pub fn get_stream_allocator(output: &mut [u8], width: HandleWidth) -> Reply {
    let size = width.bytes();
    let Some(handle) = output.get_mut(..size) else {
        return Reply::error(Error::BUFFER_TOO_SMALL, size);
    };
    handle.fill(0);
    Reply::success(size)
}

/// The handle value of a `KSPROPERTY_STREAM_ALLOCATOR` set: the first 8 bytes from a native
/// caller, the first 4 from a 32-bit one, sign-extended as `Handle32ToHandle` does (so that
/// pseudo-handles such as `(HANDLE)-2` keep their meaning). 0 is the NULL handle.
///
/// # Errors
///
/// `STATUS_BUFFER_TOO_SMALL`, with the handle size, if `input` cannot hold a handle of the
/// caller's width.
///
/// # IRQL
///
/// Any (pure computation).
pub fn read_handle(input: &[u8], width: HandleWidth) -> Result<u64, Reply> {
    let handle = match width {
        HandleWidth::Native => input.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)),
        HandleWidth::Wow64 => {
            input.first_chunk::<4>().map(|b| i64::from(i32::from_le_bytes(*b)).cast_unsigned())
        }
    };
    handle.ok_or(Reply::error(Error::BUFFER_TOO_SMALL, width.bytes()))
}
