//! The sample AVStream capture minidriver as a Windows kernel image (`ks_sample.sys`).
//!
//! Everything the driver does is in [`ks_sample_core`], the crate the user-mode host loads and
//! tests; this crate is what makes it a WDM driver for the windows-drivers-rs flow:
//!
//! - `DriverEntry`, re-exported from `ks_sample_core`, is the image's entry point;
//! - `[package.metadata.wdk.driver-model]` in its manifest makes wdk-build treat it as a WDM
//!   driver, and its build script hands the link over to wdk-build;
//! - wdk-panic is the panic handler: a panic, which no path of the driver is written to reach,
//!   stops the machine with `KeBugCheckEx` rather than unwinding into ks.sys;
//! - no global allocator: neither the library nor the sample uses `alloc`.
//!
//! On Windows, `cargo make` in the repository root builds this crate, stamps `ks_sample.inx`
//! into `ks_sample.inf`, verifies it and makes and test-signs the catalog (see the book's Windows build chapter).

#![no_std]

// The panic handler: wdk-panic's in the WDK build; std's elsewhere, where the image is only a
// host library that nothing loads (so that `cargo build --workspace` works on any host). Link
// lines only: neither crate contributes items.
#[cfg(not(windows))]
extern crate std;
#[cfg(windows)]
extern crate wdk_panic;

pub use ks_sample_core::DriverEntry;
