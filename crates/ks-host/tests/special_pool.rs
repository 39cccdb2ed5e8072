//! The host's verifier checks on pool memory: guard bytes after every block, poisoned freed
//! blocks, the seeded low-resources simulation, and `KeBugCheckEx` stopping the run with its
//! code and parameters.

use std::process::Command;

use ks_host::{Session, pool};
use ks_sys::{NonPagedPoolNx, PVOID};

const TAG: u32 = u32::from_le_bytes(*b"Spcl");

fn allocate(bytes: usize) -> *mut u8 {
    let memory: PVOID = ks_host::pool::ExAllocatePoolWithTag(NonPagedPoolNx, bytes as u64, TAG);
    assert!(!memory.is_null());
    memory.cast()
}

#[test]
fn a_write_past_the_end_is_reported_at_free() {
    let session = Session::begin();
    let block = allocate(100);
    // SAFETY: the second guard byte after the block: host memory inside the allocation.
    let past_end = unsafe { block.add(101) };
    // SAFETY: as above; written on purpose, to be caught.
    unsafe { past_end.write(0) };
    ks_host::pool::ExFreePoolWithTag(block.cast(), TAG);
    let violations = session.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].detail.contains("written past its end (up to 2 bytes past)"),
        "{violations:?}"
    );
    assert!(violations[0].detail.contains("tag Spcl, 100 bytes"));
}

#[test]
fn a_write_after_free_is_reported_when_the_block_leaves_the_quarantine() {
    let session = Session::begin();
    let block = allocate(64);
    ks_host::pool::ExFreePoolWithTag(block.cast(), TAG);
    // SAFETY: inside the freed block, which is still the host's (in the quarantine).
    let inside = unsafe { block.add(10) };
    // SAFETY: as above; written on purpose, to be caught.
    unsafe { inside.write(1) };
    assert!(session.take_violations().is_empty(), "caught when the quarantine lets it go");
    // 256 more freed blocks push it out of the quarantine, where the poison is checked.
    for _ in 0..256 {
        let other = allocate(16);
        ks_host::pool::ExFreePoolWithTag(other.cast(), TAG);
    }
    let violations = session.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0]
            .detail
            .contains("written after it was freed (first changed byte at offset 10)")
    );
}

#[test]
fn correct_use_is_not_reported() {
    let session = Session::begin();
    let block = allocate(4096);
    // SAFETY: the whole block is the caller's.
    unsafe { block.write_bytes(0x77, 4096) };
    ks_host::pool::ExFreePoolWithTag(block.cast(), TAG);
    assert!(session.take_violations().is_empty());
}

#[test]
fn low_resources_fails_the_same_calls_for_the_same_seed() {
    let failed_calls = |seed| {
        let _session = Session::begin();
        pool::low_resources(250, seed);
        let mut failed = Vec::new();
        for call in 0..400 {
            let memory = ks_host::pool::ExAllocatePoolWithTag(NonPagedPoolNx, 32, TAG);
            if memory.is_null() {
                failed.push(call);
            } else {
                ks_host::pool::ExFreePoolWithTag(memory, TAG);
            }
        }
        failed
    };
    let first = failed_calls(7);
    assert_eq!(first, failed_calls(7), "a seed replays");
    assert_ne!(first, failed_calls(8), "another seed fails other calls");
    assert!((60..=140).contains(&first.len()), "about a quarter of 400: {}", first.len());
}

/// Run in a child process by `a_bug_check_stops_the_run_with_its_code_and_parameters`.
#[test]
fn bug_check_child() {
    if std::env::var_os("KS_HOST_BUG_CHECK_CHILD").is_none() {
        return;
    }
    ks_host::debug::KeBugCheckEx(u32::from_be_bytes(*b"RPNC"), 1, 2, 3, 4);
}

#[test]
fn a_bug_check_stops_the_run_with_its_code_and_parameters() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "bug_check_child", "--nocapture"])
        .env("KS_HOST_BUG_CHECK_CHILD", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ks-host: KeBugCheckEx: bug check 0x52504E43 (0x1, 0x2, 0x3, 0x4)"),
        "{stderr}"
    );
}
