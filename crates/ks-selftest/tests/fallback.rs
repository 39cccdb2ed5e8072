//! The self-test's checks against ks-host without `ExAllocatePool2` (Windows before 10 version
//! 2004, and Wine): the library's `ExAllocatePoolWithTag` fallback serves every allocation. In
//! its own binary: the library looks the routine up once per driver.

extern crate ks_host;

use ks_host::Session;
use ks_selftest::run;

mod common;

#[test]
fn every_check_passes_with_the_fallback() {
    let host = Session::begin();
    // The dispatch checks delete an allocator with frames out on purpose: reported, but no
    // breakpoint without a debugger (a debug build breaks into an attached one).
    ks_host::debug::set_debugger_attached(false);
    ks_host::routines::hide("ExAllocatePool2");
    let (summary, lines) = common::collect(run);
    assert_eq!(summary.failed, 0, "{lines:#?}");
    assert!(lines.iter().any(|line| line.contains("ExAllocatePool2 lookup: absent")));
    assert!(host.live().is_empty());
}
