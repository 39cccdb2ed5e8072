//! Frame allocation for Windows AVStream minidrivers.
//!
//! An AVStream pin moves data in *frames* that an allocator hands out and takes back, sized and
//! aligned by the *framing* the pin declares. This crate gives a minidriver author, in `no_std`
//! Rust without `alloc`:
//!
//! - [`framing`]: `const` framing declarations (the Rust `DECLARE_SIMPLE_FRAMING_EX`), a parser
//!   for untrusted framing bytes and a validator that explains what is wrong;
//! - [`negotiate`](mod@negotiate): the allocator plan for two connected pins' framings, with the
//!   reason for every choice;
//! - [`request`]: [`AllocatorRequest`], an allocator create request held against the pin it is
//!   for ([`PinConstraints`]) and the driver's budget ([`PoolConfig`]) before anything is
//!   allocated;
//! - [`pool`]: [`FramePool`], lock-free frame pools usable at DISPATCH_LEVEL that catch bad
//!   frees, over system memory or a driver's own;
//! - [`dispatch`]: `KSALLOCATOR_DISPATCH` tables built from a Rust trait, with the library's
//!   pool allocator ready as [`DEFAULT_DISPATCH`];
//! - [`property`]: the allocator properties at the level of the buffers KS passes, with the exact
//!   size protocol;
//! - [`live_allocators`], [`retired_allocators`], [`release_retired_allocators`]: the
//!   allocators alive under the budget's ceilings, and those kept because they were deleted with
//!   frames still out;
//! - [`SyncStatic`]: `static` homes for C descriptors and tables that hold pointers;
//! - [`tags`]: the pool tags of everything the library allocates;
//! - [`Error`]: one error type carrying an `NTSTATUS`, for callbacks that return one.
//!
//! # IRQL
//!
//! Every function a driver calls at run time says in an `# IRQL` section at which IRQL it may
//! be called; callbacks say it in their first line. The `const fn`s (builders and accessors of
//! plain data, usable in `static` initialisers) are pure computation, callable at any IRQL.
//!
//! Kernel services are reached only through `ks_sys` imports. On a development machine the
//! `ks-host` crate provides them in user mode, so the same code runs in tests on any OS.
//!
//! The raw ABI (`ks.h` structures, constants, GUIDs and imports) is the `ks_sys` crate. The
//! guides (for driver authors, test engineers, the host, the Windows build) are the chapters of
//! the `ks-allocator-book` crate (`cargo doc --open -p ks-allocator-book`).
//!
//! # Declaring a pin's framing
//!
//! A framing is plain data with the C layout, so it lives in a `static` and its address goes into
//! the pin descriptor's `AllocatorFraming`:
//!
//! ```
//! use ks_allocator::framing::{FramingEx, ItemFlags, MemoryType};
//!
//! /// Two frames of two pages in non-paged system memory, 8-byte aligned; preferences only,
//! /// because the capture pin resizes them once it knows its format.
//! static CAPTURE_FRAMING: FramingEx<1> = FramingEx::simple(
//!     MemoryType::KERNEL_NONPAGED,
//!     ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY),
//!     2,
//!     ks_sys::FILE_QUAD_ALIGNMENT,
//!     2 * ks_sys::PAGE_SIZE,
//!     2 * ks_sys::PAGE_SIZE,
//! );
//!
//! // What `KSPIN_DESCRIPTOR_EX.AllocatorFraming` points at.
//! let raw: *const ks_sys::KSALLOCATOR_FRAMING_EX = CAPTURE_FRAMING.as_raw();
//! assert!(!raw.is_null());
//!
//! // The framing is valid, with nothing to warn about.
//! let summary = CAPTURE_FRAMING.view().summary();
//! assert_eq!((summary.errors, summary.warnings), (0, 0));
//! ```
//!
//! # Reading a framing from untrusted bytes
//!
//! ```
//! use ks_allocator::framing::{FramingExView, ParseError};
//!
//! let mut bytes = [0u8; 112];
//! ks_allocator::framing::FramingEx::<1>::default().encode(&mut bytes)?;
//! let view = FramingExView::parse(&bytes).expect("well-formed");
//! assert_eq!(view.count(), 1);
//!
//! // A count the buffer cannot hold is a typed error, never an out-of-bounds read.
//! bytes[0] = 2;
//! assert_eq!(
//!     FramingExView::parse(&bytes).unwrap_err(),
//!     ParseError::Truncated { count: 2, len: 112, needed: 200 }
//! );
//! # Ok::<(), ks_allocator::Error>(())
//! ```

#![no_std]

#[cfg(loom)]
extern crate std;

pub mod ceiling;
pub mod dispatch;
mod error;
pub mod framing;
pub mod negotiate;
mod pin;
pub mod pool;
pub mod property;
pub mod request;
mod statics;
mod sync;
/// The processors of a loom model (only with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub use sync::model as loom_processors;
mod system;
pub mod tags;

pub use ceiling::{live_allocators, live_allocators_on};
pub use dispatch::{
    Budget, DEFAULT_DISPATCH, DefaultAllocator, DefaultBudget, Outstanding, PinAllocator,
    RetiredStats, dispatch_table, release_retired_allocators, retired_allocators,
};
pub use error::{Error, Result, from_result, to_result};
pub use negotiate::{AllocatorPlan, NegotiationError, negotiate};
pub use pool::{FramePool, PoolStats};
pub use request::{AllocatorRequest, PinConstraints, PoolConfig};
pub use statics::SyncStatic;
pub use system::{PoolBox, PoolBytes, debug_print_as, live_allocations, uses_allocate_pool2};
