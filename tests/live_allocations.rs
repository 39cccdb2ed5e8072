//! `live_allocations()` counts the library's pool allocations until they are freed. One test in
//! its own binary: the count is global to the driver (here, to the process).

extern crate ks_host;

use ks_allocator::{FramePool, PoolBox, live_allocations, pool::SystemMemory};
use ks_host::Session;

mod common;

#[test]
fn counts_pools_contexts_and_boxes_until_they_are_freed() {
    let host = Session::begin();
    assert_eq!(live_allocations(), 0);

    let pool = FramePool::new(&common::request(4, 4096, 0xF), SystemMemory::NON_PAGED).unwrap();
    let with_pool = live_allocations();
    assert!(with_pool >= 1, "the pool's frames and bookkeeping are pool allocations");
    assert_eq!(with_pool, host.live().count, "every host pool block is the library's");

    let boxed = PoolBox::new(7_u64, u32::from_le_bytes(*b"Test")).unwrap();
    assert_eq!(live_allocations(), with_pool + 1);
    drop(boxed);
    assert_eq!(live_allocations(), with_pool);

    // Handing frames out and back allocates nothing.
    let frame = pool.allocate().unwrap();
    pool.free(frame).unwrap();
    assert_eq!(live_allocations(), with_pool);

    drop(pool);
    assert_eq!(live_allocations(), 0);
    assert!(host.live().is_empty());
}
