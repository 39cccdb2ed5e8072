//! The crate's one error type: a failure NTSTATUS.
//!
//! Safe functions return [`Result`]; the `extern` callbacks that KS calls turn it back into an
//! `NTSTATUS` with [`from_result`]. Domain errors ([`ParseError`](crate::framing::ParseError),
//! [`FramingError`](crate::framing::FramingError)) convert into [`Error`] with the status a KS
//! caller expects for them.

use core::fmt;

use ks_sys::NTSTATUS;

/// A failure `NTSTATUS` (an error or a warning; never a success code).
///
/// # Invariants
///
/// The status is not a success code: `NT_SUCCESS(status)` is false, i.e. it is negative.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error(NTSTATUS);

/// `Result` with the crate's [`Error`].
pub type Result<T = ()> = core::result::Result<T, Error>;

impl Error {
    /// `STATUS_UNSUCCESSFUL`.
    pub const UNSUCCESSFUL: Self = Self(ks_sys::STATUS_UNSUCCESSFUL);
    /// `STATUS_INVALID_PARAMETER`: a framing or argument is malformed.
    pub const INVALID_PARAMETER: Self = Self(ks_sys::STATUS_INVALID_PARAMETER);
    /// `STATUS_INSUFFICIENT_RESOURCES`: pool memory could not be allocated.
    pub const INSUFFICIENT_RESOURCES: Self = Self(ks_sys::STATUS_INSUFFICIENT_RESOURCES);
    /// `STATUS_BUFFER_TOO_SMALL`: a buffer is shorter than its contents require.
    pub const BUFFER_TOO_SMALL: Self = Self(ks_sys::STATUS_BUFFER_TOO_SMALL);
    /// `STATUS_BUFFER_OVERFLOW` (a warning): the size needed is reported instead of the data.
    pub const BUFFER_OVERFLOW: Self = Self(ks_sys::STATUS_BUFFER_OVERFLOW);
    /// `STATUS_INVALID_BUFFER_SIZE`: a buffer length is not acceptable.
    pub const INVALID_BUFFER_SIZE: Self = Self(ks_sys::STATUS_INVALID_BUFFER_SIZE);
    /// `STATUS_NOT_FOUND`.
    pub const NOT_FOUND: Self = Self(ks_sys::STATUS_NOT_FOUND);
    /// `STATUS_NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: Self = Self(ks_sys::STATUS_NOT_SUPPORTED);
    /// `STATUS_INVALID_DEVICE_STATE`.
    pub const INVALID_DEVICE_STATE: Self = Self(ks_sys::STATUS_INVALID_DEVICE_STATE);
    /// `STATUS_INVALID_DEVICE_REQUEST`.
    pub const INVALID_DEVICE_REQUEST: Self = Self(ks_sys::STATUS_INVALID_DEVICE_REQUEST);

    /// The error for a status, or `None` for a success or informational status.
    #[must_use]
    pub const fn from_status(status: NTSTATUS) -> Option<Self> {
        if status < 0 {
            // INVARIANT: negative statuses are exactly the non-success ones.
            Some(Self(status))
        } else {
            None
        }
    }

    /// The `NTSTATUS` value.
    #[must_use]
    pub const fn to_status(self) -> NTSTATUS {
        self.0
    }

    /// The C name of the status if it is one this crate uses.
    #[must_use]
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            ks_sys::STATUS_UNSUCCESSFUL => "STATUS_UNSUCCESSFUL",
            ks_sys::STATUS_NOT_IMPLEMENTED => "STATUS_NOT_IMPLEMENTED",
            ks_sys::STATUS_INVALID_PARAMETER => "STATUS_INVALID_PARAMETER",
            ks_sys::STATUS_INVALID_DEVICE_REQUEST => "STATUS_INVALID_DEVICE_REQUEST",
            ks_sys::STATUS_NO_MEMORY => "STATUS_NO_MEMORY",
            ks_sys::STATUS_BUFFER_TOO_SMALL => "STATUS_BUFFER_TOO_SMALL",
            ks_sys::STATUS_BUFFER_OVERFLOW => "STATUS_BUFFER_OVERFLOW",
            ks_sys::STATUS_INSUFFICIENT_RESOURCES => "STATUS_INSUFFICIENT_RESOURCES",
            ks_sys::STATUS_DEVICE_NOT_READY => "STATUS_DEVICE_NOT_READY",
            ks_sys::STATUS_NOT_SUPPORTED => "STATUS_NOT_SUPPORTED",
            ks_sys::STATUS_INVALID_DEVICE_STATE => "STATUS_INVALID_DEVICE_STATE",
            ks_sys::STATUS_INVALID_BUFFER_SIZE => "STATUS_INVALID_BUFFER_SIZE",
            ks_sys::STATUS_NOT_FOUND => "STATUS_NOT_FOUND",
            ks_sys::STATUS_NO_MATCH => "STATUS_NO_MATCH",
            ks_sys::STATUS_DEVICE_BUSY => "STATUS_DEVICE_BUSY",
            ks_sys::STATUS_INVALID_HANDLE => "STATUS_INVALID_HANDLE",
            ks_sys::STATUS_OBJECT_TYPE_MISMATCH => "STATUS_OBJECT_TYPE_MISMATCH",
            ks_sys::STATUS_ACCESS_DENIED => "STATUS_ACCESS_DENIED",
            _ => return None,
        })
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Error({name})"),
            None => write!(f, "Error({:#010X})", self.0.cast_unsigned()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#010X})", self.0.cast_unsigned()),
            None => write!(f, "NTSTATUS {:#010X}", self.0.cast_unsigned()),
        }
    }
}

impl core::error::Error for Error {}

/// Converts an `NTSTATUS` coming from the kernel into a [`Result`]: success and informational
/// statuses are `Ok`, so `?` works on kernel calls; [`from_result`] goes back.
///
/// ```
/// use ks_allocator::{Error, from_result, to_result};
///
/// /// What a driver's callback does with the statuses of the routines it calls.
/// fn start(status_of_first_call: ks_sys::NTSTATUS) -> ks_allocator::Result {
///     to_result(status_of_first_call)?; // an error or warning returns early
///     Ok(())
/// }
///
/// assert_eq!(start(ks_sys::STATUS_SUCCESS), Ok(()));
/// assert_eq!(start(ks_sys::STATUS_PENDING), Ok(()), "informational, not an error");
/// assert_eq!(start(ks_sys::STATUS_INSUFFICIENT_RESOURCES), Err(Error::INSUFFICIENT_RESOURCES));
/// // Back to the NTSTATUS an `extern "C"` callback returns to KS.
/// assert_eq!(from_result(start(ks_sys::STATUS_NOT_FOUND)), ks_sys::STATUS_NOT_FOUND);
/// ```
///
/// # Errors
///
/// The status itself when it is an error or a warning.
///
/// # IRQL
///
/// Any.
pub const fn to_result(status: NTSTATUS) -> Result {
    match Error::from_status(status) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Converts a [`Result`] going back to the kernel into an `NTSTATUS`.
///
/// # IRQL
///
/// Any.
#[must_use]
pub const fn from_result(result: Result) -> NTSTATUS {
    match result {
        Ok(()) => ks_sys::STATUS_SUCCESS,
        Err(error) => error.to_status(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_informational_statuses_are_not_errors() {
        assert_eq!(Error::from_status(ks_sys::STATUS_SUCCESS), None);
        assert_eq!(Error::from_status(ks_sys::STATUS_PENDING), None);
        assert_eq!(Error::from_status(ks_sys::STATUS_MORE_ENTRIES), None);
        assert_eq!(to_result(ks_sys::STATUS_MORE_ENTRIES), Ok(()));
    }

    #[test]
    fn warnings_and_errors_round_trip() {
        for status in [ks_sys::STATUS_BUFFER_OVERFLOW, ks_sys::STATUS_NOT_FOUND, -5] {
            let error = Error::from_status(status).unwrap();
            assert_eq!(error.to_status(), status);
            assert_eq!(from_result(Err(error)), status);
        }
        assert_eq!(from_result(Ok(())), ks_sys::STATUS_SUCCESS);
    }

    #[test]
    fn errors_print_their_names() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{:?}", Error::INVALID_PARAMETER), "Error(STATUS_INVALID_PARAMETER)");
        assert_eq!(format!("{}", Error::BUFFER_TOO_SMALL), "STATUS_BUFFER_TOO_SMALL (0xC0000023)");
        assert_eq!(format!("{}", Error::from_status(-2).unwrap()), "NTSTATUS 0xFFFFFFFE");
        let no_match = Error::from_status(ks_sys::STATUS_NO_MATCH).unwrap();
        assert_eq!(format!("{no_match}"), "STATUS_NO_MATCH (0xC0000272)");
    }
}
