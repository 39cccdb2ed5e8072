//! Windows before 10 version 2004: no `ExAllocatePool2`. The library looks the routine up once per
//! driver, at its first pool allocation, so this test runs in a process of its own, where the
//! host hides the routine before anything is allocated, as such a kernel would.

extern crate ks_host;

use ks_allocator::{DEFAULT_DISPATCH, FramePool, pool::SystemMemory, uses_allocate_pool2};
use ks_host::{Session, ks::DispatchAllocator};

mod common;
use common::request;

#[test]
fn pools_and_contexts_fall_back_to_exallocatepoolwithtag_and_zero_it() {
    let host = Session::begin();
    ks_host::routines::hide("ExAllocatePool2");
    assert!(!uses_allocate_pool2(), "the kernel has no ExAllocatePool2");

    let pool = FramePool::new(&request(2, 512, 7), SystemMemory::NON_PAGED).unwrap();
    let frame = pool.allocate().unwrap();
    // SAFETY: 512 readable bytes at `frame`.
    let bytes = unsafe { std::slice::from_raw_parts(frame.as_ptr(), 512) };
    assert!(bytes.iter().all(|b| *b == 0), "the fallback zeroes like ExAllocatePool2");
    pool.free(frame).unwrap();
    drop(pool);

    // The allocator context and the pool behind DEFAULT_DISPATCH take the same path.
    let framing = ks_allocator::framing::Framing::request(
        ks_allocator::framing::OptionFlags::SYSTEM_MEMORY,
        ks_allocator::framing::PoolType::NON_PAGED,
        3,
        4096,
        0xFFF,
    );
    // SAFETY: a NULL pin (no constraints) and the library's own table.
    let allocator = unsafe {
        DispatchAllocator::initialize(DEFAULT_DISPATCH, std::ptr::null_mut(), &framing.to_raw())
    }
    .unwrap();
    let frame = allocator.allocate().unwrap();
    allocator.free(frame);
    drop(allocator);
    assert!(host.live().is_empty(), "{}", host.live());

    // The answer is kept: the routine is not looked up again.
    ks_host::routines::unhide_all();
    assert!(!uses_allocate_pool2(), "looked up once per driver");
}
