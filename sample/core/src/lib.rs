//! A sample AVStream capture minidriver in Rust, built on ks-allocator: the Rust counterpart of
//! the WDK's avshws ("AVStream simulated hardware") sample, with two transform filters.
//!
//! One device with three filter factories. The capture filter (categories video, capture and
//! video camera) has one capture pin that produces YUY2 or RGB24 frames at 320x240 or 640x480,
//! at 29.97 frames per second (any rate from 30.000 down to one frame in 64 s on request), from
//! simulated hardware: a
//! scatter/gather DMA capture engine whose frame interrupt (a kernel timer's DPC) writes the next
//! programmed frame by DMA, only through the frame's mappings, and completes it, or counts a
//! drop when nothing is programmed.
//!
//! The two transforms (categories video and data transform) take those frames: the
//! [`overlay`] marks each frame in place (its pins share one pipe with the pins around it), the
//! [`scale`]r halves 640x480 to 320x240 into frames of its own pool (a pipe of its own). They
//! are filter factories of the same device rather than a second minidriver: they work on this
//! driver's formats and pictures (one [`format`] parser, one [`scene`], one [`check`]), one
//! package installs all three on a test machine, and nothing about a graph depends on which
//! driver a filter comes from (ks-host chains filters by their pins, as ks.sys does). The cost,
//! said plainly: the transforms exist only while the capture device is started, where a
//! software-only driver would have a root-enumerated device of its own.
//!
//! What it shows a driver author:
//!
//! - a DMA device, as avshws is: a DMA adapter from `IoGetDmaAdapter` registered with
//!   `KsDeviceRegisterAdapterObject`, a pin with `KSPIN_FLAG_GENERATE_MAPPINGS` that programs its
//!   engine from each frame's `KSMAPPING`s at PASSIVE_LEVEL through a stream pointer clone per
//!   frame, and completions from the DPC;
//! - two buffer types in order of preference: frames in the device's memory (a common buffer the
//!   pin's allocator carves through the library's `DeviceRegion`), which only a kernel-mode sink
//!   that takes any memory can use, then non-paged system memory anyone may supply (a user-mode
//!   client's buffers, a sink's allocator, or the pin's own pool);
//! - the pin's allocator framing declared with the library's `const` builders and resized with
//!   `KsEdit` to the frame size at pin creation and on a format change;
//! - the pin's `KSPIN_DISPATCH.Allocator` ([`CaptureAllocator`]): frame pools within a budget sized
//!   for the largest format ([`CaptureBudget`]), over the device's memory or system memory as the
//!   connection chose;
//! - no allocator property sets in the pin's automation table: AVStream answers them for its
//!   pins, and entries there would override the class (the library's sets are for KS filters
//!   that are not AVStream minidrivers);
//! - each frame stamped with its presentation time and duration, with a `KS_FRAME_INFO`, on a
//!   frame interrupt that keeps the format's rate exactly;
//! - the surface format a renderer may send just before RUN taken and drawn at its pitch;
//! - filter-centric transforms, one in place and one copying with an output compression, whose
//!   two pins agree on their pictures ([`transform`]);
//! - untrusted formats and data ranges parsed from bytes, never cast ([`format`]);
//! - every callback's IRQL in its documentation, and no panic on any of them.
//!
//! This crate is the driver's code. The Windows image (`ks_sample.sys`) is the `ks-sample` crate
//! in `sample/driver`, which re-exports [`DriverEntry`] and adds the WDK build's panic handler
//! and link settings; the user-mode host (ks-host) loads this crate directly. It uses only
//! ks-sys and ks-allocator.

#![no_std]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod allocator;
mod bus;
pub mod check;
pub mod descriptors;
mod device;
mod dma;
pub mod format;
mod hardware;
mod ks;
pub mod overlay;
pub mod pin;
pub mod render;
pub mod scale;
pub mod scene;
pub mod transform;

pub use allocator::CaptureAllocator;
pub use descriptors::{CAPTURE_FRAMING, CaptureBudget, DEVICE_DESCRIPTOR, FILTER_DESCRIPTOR};

use ks_sys::{NTSTATUS, PDRIVER_OBJECT, PUNICODE_STRING};

/// The pool tag of the driver's own allocations (contexts, hardware, `KsEdit` copies): `Smpl`.
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"Smpl");

/// The driver's entry point: hands the device descriptor to AVStream. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only the I/O manager calls it, once, with the driver object and its registry path.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    driver: PDRIVER_OBJECT,
    registry_path: PUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the arguments are the I/O manager's; the descriptor is an immutable static.
    unsafe { ks_sys::KsInitializeDriver(driver, registry_path, DEVICE_DESCRIPTOR.as_ptr()) }
}
