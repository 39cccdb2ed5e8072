//! The host's own contracts: pool rules, the failure schedule, IRQL checks, debug output,
//! routine lookup and the session's leak check.

use std::ptr;

use ks_host::{Session, irql, pool, routines};
use ks_sys::{
    NonPagedPoolNx, PAGE_SIZE, POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED, POOL_FLAG_UNINITIALIZED,
    PVOID, PagedPool, UNICODE_STRING,
};

const TAG: u32 = u32::from_le_bytes(*b"Test");

fn allocate_pool2() -> unsafe extern "system" fn(u64, usize, u32) -> PVOID {
    let name: Vec<u16> = "ExAllocatePool2".encode_utf16().collect();
    let mut string =
        UNICODE_STRING { Length: 30, MaximumLength: 30, Buffer: name.as_ptr().cast_mut() };
    // SAFETY: a valid UNICODE_STRING over `name`.
    let address = unsafe { ks_sys::MmGetSystemRoutineAddress(&raw mut string) };
    assert!(!address.is_null());
    // SAFETY: the host returns the address of its ExAllocatePool2, which has this type.
    unsafe {
        std::mem::transmute::<PVOID, unsafe extern "system" fn(u64, usize, u32) -> PVOID>(address)
    }
}

#[test]
fn allocations_follow_the_pool_alignment_rules_and_are_tracked_by_tag() {
    let host = Session::begin();
    let small = pool2(POOL_FLAG_NON_PAGED, 100, TAG);
    let large = pool2(POOL_FLAG_NON_PAGED, PAGE_SIZE as usize * 3, TAG);
    assert_eq!(small as usize % 16, 0);
    assert_eq!(large as usize % PAGE_SIZE as usize, 0);
    assert!(bytes(small, 100).iter().all(|b| *b == 0), "zeroed");
    let live = host.live();
    assert_eq!((live.count, live.bytes), (2, 100 + 3 * 4096));
    assert_eq!(live.by_tag["Test"].count, 2);
    ks_sys_free(small, TAG);
    ks_sys_free(large, TAG);
    assert!(host.live().is_empty());
}

/// The bytes at `memory`.
fn bytes<'a>(memory: PVOID, len: usize) -> &'a [u8] {
    // SAFETY: every caller passes a live host allocation of at least `len` bytes.
    unsafe { std::slice::from_raw_parts(memory.cast::<u8>(), len) }
}

/// `ExAllocatePool2` through its looked-up address.
fn pool2(flags: u64, bytes: usize, tag: u32) -> PVOID {
    // SAFETY: plain-value arguments to the host's ExAllocatePool2.
    unsafe { allocate_pool2()(flags, bytes, tag) }
}

fn ks_sys_free(memory: PVOID, tag: u32) {
    // SAFETY: the host's ExFreePoolWithTag checks its argument.
    unsafe { ks_sys::ExFreePoolWithTag(memory, tag) };
}

#[test]
fn bad_requests_return_null() {
    let _host = Session::begin();
    assert!(pool2(POOL_FLAG_NON_PAGED, 0, TAG).is_null(), "zero bytes");
    assert!(pool2(POOL_FLAG_NON_PAGED, 8, 0).is_null(), "tag 0");
    assert!(pool2(POOL_FLAG_NON_PAGED, 8, 0x0102_0304).is_null(), "unprintable tag");
    assert!(pool2(POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED, 8, TAG).is_null(), "two pool kinds");
    assert!(pool2(0, 8, TAG).is_null(), "no pool kind");
}

#[test]
fn uninitialised_memory_is_not_zero() {
    let _host = Session::begin();
    let memory = pool2(POOL_FLAG_NON_PAGED | POOL_FLAG_UNINITIALIZED, 64, TAG);
    assert!(bytes(memory, 64).iter().all(|b| *b == 0xA5));
    ks_sys_free(memory, TAG);
    // SAFETY: plain arguments.
    let legacy = unsafe { ks_sys::ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG) };
    assert!(bytes(legacy, 64).iter().all(|b| *b == 0xA5));
    ks_sys_free(legacy, TAG);
}

#[test]
fn wrong_tag_and_double_free_are_violations_and_free_nothing() {
    let host = Session::begin();
    // SAFETY: plain arguments.
    let memory = unsafe { ks_sys::ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG) };
    ks_sys_free(memory, u32::from_le_bytes(*b"Else"));
    assert_eq!(host.live().count, 1, "a free with the wrong tag frees nothing");
    ks_sys_free(memory, TAG);
    ks_sys_free(memory, TAG);
    ks_sys_free(ptr::null_mut(), TAG);
    let violations = host.take_violations();
    assert_eq!(violations.len(), 3, "{violations:#?}");
    assert!(violations[0].detail.contains("allocated with tag Test but freed with tag Else"));
    assert!(violations[1].detail.contains("not a live pool allocation"));
}

#[test]
fn irql_rules_are_checked() {
    let host = Session::begin();
    irql::at_dispatch(|| {
        assert_eq!(irql::current(), irql::DISPATCH_LEVEL);
        // Non-paged pool is fine at DISPATCH_LEVEL, paged pool is not.
        // SAFETY: plain arguments.
        let nonpaged = unsafe { ks_sys::ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG) };
        assert!(!nonpaged.is_null());
        ks_sys_free(nonpaged, TAG);
        // SAFETY: plain arguments.
        let paged = unsafe { ks_sys::ExAllocatePoolWithTag(PagedPool, 64, TAG) };
        assert!(paged.is_null());
        let _lower = irql::raise(irql::PASSIVE_LEVEL);
    });
    assert_eq!(irql::current(), irql::PASSIVE_LEVEL, "the guard lowers the IRQL again");
    let violations = host.take_violations();
    let routines: Vec<_> = violations.iter().map(|v| v.routine).collect();
    assert_eq!(routines, ["ExAllocatePoolWithTag", "KeRaiseIrql"], "{violations:#?}");
}

#[test]
fn failure_schedule() {
    let host = Session::begin();
    let allocate = || {
        // SAFETY: plain arguments.
        unsafe { ks_sys::ExAllocatePoolWithTag(NonPagedPoolNx, 16, TAG) }
    };
    pool::fail_nth(2);
    let results: Vec<PVOID> = (0..3).map(|_| allocate()).collect();
    assert!(!results[0].is_null() && results[1].is_null() && !results[2].is_null());
    assert_eq!(pool::failed_allocations(), 1);
    pool::fail_tag(TAG);
    assert!(allocate().is_null());
    pool::fail_all();
    assert!(allocate().is_null());
    pool::fail_every(3);
    let every: Vec<bool> = (0..7)
        .map(|_| allocate())
        .map(|m| {
            let failed = m.is_null();
            if !failed {
                ks_sys_free(m, TAG);
            }
            failed
        })
        .collect();
    assert_eq!(every, [false, false, true, false, false, true, false]);
    pool::clear_failures();
    let last = allocate();
    assert!(!last.is_null());
    for memory in [results[0], results[2], last] {
        ks_sys_free(memory, TAG);
    }
    assert!(host.live().is_empty());
}

#[test]
fn debug_output_is_formatted_and_captured() {
    let host = Session::begin();
    // SAFETY: the format's conversions match the arguments.
    unsafe {
        ks_sys::DbgPrintEx(81, 0, c"%s %d %#x\n".as_ptr(), c"frames".as_ptr(), 42i32, 255u32)
    };
    let output = host.take_output();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0].text, "frames 42 0xff\n");
    assert_eq!((output[0].component, output[0].level), (81, 0));
    let long = "x".repeat(600) + "\0";
    // SAFETY: a NUL-terminated string for %s.
    unsafe { ks_sys::DbgPrintEx(81, 0, c"%s".as_ptr(), long.as_ptr()) };
    assert_eq!(host.take_output()[0].text.len(), 511, "truncated like the kernel's 512-byte limit");
}

#[test]
fn routines_can_be_hidden() {
    let _host = Session::begin();
    routines::hide("ExAllocatePool2");
    let name: Vec<u16> = "ExAllocatePool2".encode_utf16().collect();
    let mut string =
        UNICODE_STRING { Length: 30, MaximumLength: 30, Buffer: name.as_ptr().cast_mut() };
    // SAFETY: a valid UNICODE_STRING.
    assert!(unsafe { ks_sys::MmGetSystemRoutineAddress(&raw mut string) }.is_null());
    let unknown: Vec<u16> = "NoSuchRoutine".encode_utf16().collect();
    let mut string =
        UNICODE_STRING { Length: 26, MaximumLength: 26, Buffer: unknown.as_ptr().cast_mut() };
    // SAFETY: a valid UNICODE_STRING.
    assert!(unsafe { ks_sys::MmGetSystemRoutineAddress(&raw mut string) }.is_null());
}

#[test]
#[should_panic(
    expected = "pool memory leaked: 1 allocations, 48 bytes; tag Test: 1 allocations, 48 bytes"
)]
fn a_session_fails_on_leaks() {
    let _host = Session::begin();
    // SAFETY: plain arguments; leaked on purpose.
    let _leak = unsafe { ks_sys::ExAllocatePoolWithTag(NonPagedPoolNx, 48, TAG) };
}
