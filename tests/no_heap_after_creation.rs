//! After creation, Allocate, Free and the statistics allocate nothing: counted with a global
//! allocator that tallies the allocations of the calling thread.

extern crate ks_host;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use ks_allocator::{
    AllocatorRequest, DEFAULT_DISPATCH, FramePool, PinConstraints, PoolConfig,
    framing::{Framing, OptionFlags, PoolType},
    pool::SystemMemory,
};
use ks_host::ks::DispatchAllocator;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; counting touches only a thread-local
// `Cell` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn allocate_free_and_stats_allocate_nothing() {
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 8, 4096, 0xFFF);
    let request =
        AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT).unwrap();
    let pool = FramePool::new(&request, SystemMemory::NON_PAGED).unwrap();
    let before_creation_counted = allocations();
    assert!(
        before_creation_counted > 0,
        "creation allocates (through the host's pool), so the counter works"
    );

    let mut frames = Vec::with_capacity(8);
    let start = allocations();
    let mut stats_total = 0;
    for round in 0..100_000 {
        for _ in 0..=(round % 8) {
            frames.push(pool.allocate().unwrap());
        }
        while let Some(frame) = frames.pop() {
            pool.free(frame).unwrap();
        }
        stats_total += pool.stats().allocations;
    }
    assert!(stats_total > 0);
    assert_eq!(allocations() - start, 0, "the hot path allocated");

    // The same through the C dispatch table, called as AVStream calls it.
    // SAFETY: a NULL pin (no constraints) and the library's own table.
    let allocator = unsafe {
        DispatchAllocator::initialize(DEFAULT_DISPATCH, std::ptr::null_mut(), &framing.to_raw())
    }
    .unwrap();
    let start = allocations();
    ks_host::irql::at_dispatch(|| {
        for _ in 0..100_000 {
            let frame = allocator.allocate().unwrap();
            allocator.free(frame);
        }
    });
    assert_eq!(allocations() - start, 0, "the dispatch path allocated");
}
