//! A self-test of ks-allocator's kernel build.
//!
//! Everything the library does is tested through its host build. This crate is a driver whose
//! `DriverEntry` runs the library's checks in whatever build it is linked into and reports each
//! as one `DbgPrintEx` line (`ks-selftest: ok   7 ...` or `ks-selftest: FAIL 7 ...: why`), then
//! `ks-selftest: N passed, M failed`, and succeeds only when M is 0. Linked for
//! `x86_64-pc-windows-msvc` (`.ci/wine-selftest`), it is the library's Windows code (calling
//! conventions, imports resolved by a loader, the `ExAllocatePool2` lookup and its fallback)
//! executed by Wine's kernel-driver host; in `cargo test` the same checks run against ks-host.
//!
//! It imports only from ntoskrnl.exe (no ks.sys, which Wine does not have): the checks drive the
//! library's pools, `DEFAULT_DISPATCH`'s four C callbacks (with a pin and descriptor built here,
//! as AVStream would pass them), the framing parser, validator and negotiation on real
//! framings from Microsoft's samples (embedded from `tests/data/framings`), and the library's
//! debug output. What the checks are is in [`checks`].

#![no_std]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod checks;
mod corpus;
pub mod report;

use ks_sys::{NTSTATUS, PDRIVER_OBJECT, PUNICODE_STRING, STATUS_SUCCESS, STATUS_UNSUCCESSFUL};

pub use checks::run;
pub use report::{Report, Summary};

/// The driver's entry point: runs every check, prints the summary and makes the driver
/// unloadable. `STATUS_SUCCESS` only when every check passed (a load then shows the summary and
/// `sc start` succeeds), `STATUS_UNSUCCESSFUL` otherwise.
///
/// # Safety
///
/// Called once by the I/O manager (or a host standing in for it) with a writable driver object.
///
/// # IRQL
///
/// PASSIVE_LEVEL.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    driver: PDRIVER_OBJECT,
    _registry_path: PUNICODE_STRING,
) -> NTSTATUS {
    if !driver.is_null() {
        // SAFETY: `DriverUnload` lies inside the DRIVER_OBJECT the loader passes (this
        // function's contract), at this offset on x64.
        let slot = unsafe { driver.cast::<u8>().add(ks_sys::DRIVER_OBJECT_DRIVER_UNLOAD_OFFSET) };
        // SAFETY: the slot is writable and pointer-sized (as above).
        unsafe { slot.cast::<ks_sys::PDRIVER_UNLOAD>().write_unaligned(Some(unload)) };
    }
    let summary = run(Report::to_debugger());
    if summary.failed == 0 { STATUS_SUCCESS } else { STATUS_UNSUCCESSFUL }
}

/// `DriverUnload`: reports what the library still holds (nothing, after a passing run).
///
/// # Safety
///
/// Called once by the I/O manager before the image is unloaded.
///
/// # IRQL
///
/// PASSIVE_LEVEL.
unsafe extern "C" fn unload(_driver: PDRIVER_OBJECT) {
    ks_allocator::debug_print_as(
        "ks-selftest",
        ks_sys::DPFLTR_ERROR_LEVEL,
        format_args!("unloaded, {} library allocations live", ks_allocator::live_allocations()),
    );
}
