//! The pool tags of everything the library allocates, in one place.
//!
//! A tag is four characters stored little-endian, so `KsAf` reads as `KsAf` in a debugger's
//! `!poolused` and in Driver Verifier's pool tracking. Memory a driver's own
//! [`FrameMemory`](crate::pool::FrameMemory) backend allocates carries whatever tag the driver
//! chooses.

/// Allocator contexts: the small non-paged block `InitializeAllocator` stores in `*Context`.
pub const CONTEXT_TAG: u32 = u32::from_le_bytes(*b"KsAc");

/// A frame pool's bookkeeping: its header, free map and use counters (non-paged).
pub const BOOKKEEPING_TAG: u32 = u32::from_le_bytes(*b"KsAh");

/// Frame memory from the system pool ([`SystemMemory`](crate::pool::SystemMemory)).
pub const FRAME_TAG: u32 = u32::from_le_bytes(*b"KsAf");
