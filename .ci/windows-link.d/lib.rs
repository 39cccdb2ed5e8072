//! A driver image linked on Linux: the sample (feature `sample`, `.ci/windows-link`) or the
//! library's self-test (feature `selftest`, `.ci/wine-selftest`).
//!
//! What a WDK build gets from elsewhere is provided here, and only here: the panic handler
//! (wdk-panic in the real build), `_fltused` and `__CxxFrameHandler3` (the WDK's libraries,
//! through wdk-sys). Everything else, `DriverEntry` included, is the driver's own code.

#![no_std]

#[cfg(all(feature = "sample", feature = "selftest"))]
compile_error!("an image has one DriverEntry: enable `sample` or `selftest`, not both");

#[cfg(feature = "sample")]
pub use ks_sample_core::DriverEntry;
#[cfg(feature = "selftest")]
pub use ks_selftest::DriverEntry;

unsafe extern "system" {
    /// ntoskrnl's bug check: what wdk-panic calls.
    fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> !;
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: bug-checking is what a kernel panic handler does; the code spells "RPNC" as
    // wdk-panic's does.
    unsafe { KeBugCheckEx(u32::from_be_bytes(*b"RPNC"), 0, 0, 0, 0) }
}

/// The floating-point marker MSVC's runtime defines; core references it.
#[unsafe(no_mangle)]
pub static _fltused: i32 = 0;

/// The C++ exception personality routine core's precompiled objects reference; with
/// `panic = "abort"` nothing unwinds, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn __CxxFrameHandler3() -> ! {
    // SAFETY: as for `panic`: unreachable, and a bug check if it were reached.
    unsafe { KeBugCheckEx(u32::from_be_bytes(*b"RPNC"), 1, 0, 0, 0) }
}
