//! The self-test's checks run against ks-host (with `ExAllocatePool2`, as on current Windows):
//! every one passes, there are enough of them, the driver entry point returns success and
//! registers an unload routine, and nothing is left in the host's pool.

extern crate ks_host;

use ks_host::Session;
use ks_selftest::{checks::FORMAT_LINE, run};

mod common;

#[test]
fn every_check_passes_on_the_host() {
    let host = Session::begin();
    // The dispatch checks delete an allocator with frames out on purpose: reported, but no
    // breakpoint without a debugger (a debug build breaks into an attached one).
    ks_host::debug::set_debugger_attached(false);
    let (summary, lines) = common::collect(run);
    let failures: Vec<_> = lines.iter().filter(|line| line.starts_with("FAIL")).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(summary.failed, 0);
    assert!(summary.passed >= 20, "only {} checks", summary.passed);
    assert_eq!(lines.last().unwrap(), &format!("{} passed, 0 failed", summary.passed));
    assert!(lines.iter().any(|line| line == FORMAT_LINE), "the format line is printed as is");
    assert!(lines.iter().any(|line| line.contains("ExAllocatePool2 lookup: present")));
    assert!(host.live().is_empty(), "{:?}", host.live());
    assert!(host.take_violations().is_empty());
}

#[test]
fn driver_entry_succeeds_prints_to_the_debugger_and_can_be_unloaded() {
    let host = Session::begin();
    // The dispatch checks delete an allocator with frames out on purpose: reported, but no
    // breakpoint without a debugger (a debug build breaks into an attached one).
    ks_host::debug::set_debugger_attached(false);
    // A DRIVER_OBJECT's 336 bytes, zeroed, seen as pointer-sized slots.
    let mut driver: [ks_sys::PDRIVER_UNLOAD; 42] = [None; 42];
    // SAFETY: a writable, zeroed driver object; no registry path is read.
    let status =
        unsafe { ks_selftest::DriverEntry(driver.as_mut_ptr().cast(), std::ptr::null_mut()) };
    assert_eq!(status, ks_sys::STATUS_SUCCESS);
    let output = host.take_output();
    let text: Vec<_> = output.iter().map(|record| record.text.clone()).collect();
    assert!(
        text.iter()
            .any(|line| line.starts_with("ks-selftest: ") && line.ends_with(" passed, 0 failed\n")),
        "{text:#?}"
    );
    assert!(text.iter().any(|line| line == &format!("ks-selftest: {FORMAT_LINE}\n")), "{text:#?}");

    let unload =
        driver[ks_sys::DRIVER_OBJECT_DRIVER_UNLOAD_OFFSET / size_of::<ks_sys::PDRIVER_UNLOAD>()];
    let unload = unload.expect("DriverUnload is set");
    // SAFETY: called once, as the I/O manager would before unloading.
    unsafe { unload(driver.as_mut_ptr().cast()) };
    let output = host.take_output();
    assert!(
        output
            .iter()
            .any(|record| record.text == "ks-selftest: unloaded, 0 library allocations live\n")
    );
    assert!(host.live().is_empty());
}
