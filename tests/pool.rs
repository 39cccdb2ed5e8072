//! The frame pool on the user-mode host: sizes, alignment, exhaustion, growth, every kind of bad
//! free, statistics, memory backends, the `ExAllocatePool2` fallback and fault injection.

extern crate ks_host;

use std::{collections::HashSet, ptr::NonNull};

use ks_allocator::{
    Error, FramePool, PoolConfig,
    framing::{Framing, OptionFlags, PoolType},
    pool::{
        BadFree, BadFreeCounts, FRAME_TAG, FrameMemory, INITIAL_UNCAPPED, REPORTED_BAD_FREES,
        SystemMemory,
    },
};
use ks_host::Session;

fn framing(frames: u32, frame_size: u32, alignment: u32) -> Framing {
    Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, frames, frame_size, alignment)
}

fn pool(frames: u32, frame_size: u32, alignment: u32) -> FramePool {
    FramePool::new(
        &framing(frames, frame_size, alignment),
        SystemMemory::non_paged(FRAME_TAG),
        PoolConfig::DEFAULT,
    )
    .expect("pool")
}

fn take_all<M: FrameMemory>(pool: &FramePool<M>) -> Vec<NonNull<u8>> {
    std::iter::from_fn(|| pool.allocate()).collect()
}

#[test]
fn hands_out_exactly_the_frame_count_then_none() {
    let _host = Session::begin();
    let pool = pool(4, 153_600, 0);
    let frames = take_all(&pool);
    assert_eq!(frames.len(), 4);
    assert_eq!(pool.allocate(), None, "exhaustion returns None at once");
    let stats = pool.stats();
    assert_eq!((stats.frames_total, stats.frames_free, stats.frames_outstanding), (4, 0, 4));
    assert_eq!(
        (stats.allocations, stats.frees, stats.failed_allocations, stats.high_water),
        (4, 0, 2, 4)
    );
    for frame in frames {
        pool.free(frame).unwrap();
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.frames_free, stats.frames_outstanding, stats.allocations, stats.frees),
        (4, 0, 4, 4)
    );
    assert_eq!(stats.bad_frees, BadFreeCounts::default());
}

#[test]
fn frames_are_distinct_whole_and_aligned_for_every_mask() {
    let _host = Session::begin();
    for mask in [0, 3, 7, 0xF, 0x3F, 0x1FF, 0xFFF] {
        for size in [1, 100, 4095, 4096, 4097, 70_000] {
            for frames in [1, 3, 65] {
                let pool = pool(frames, size, mask);
                let taken = take_all(&pool);
                assert_eq!(taken.len(), frames as usize);
                let mut spans = Vec::new();
                for (n, frame) in taken.iter().enumerate() {
                    let address = frame.as_ptr() as usize;
                    assert_eq!(
                        address & mask as usize,
                        0,
                        "mask {mask:#x} size {size}: {address:#x}"
                    );
                    // The whole frame belongs to the consumer: fill it (ASan checks the bounds).
                    // SAFETY: the pool handed out `size` writable bytes at `frame`.
                    unsafe {
                        frame.as_ptr().write_bytes(u8::try_from(n % 251).unwrap(), size as usize);
                    };
                    spans.push((address, address + size as usize));
                }
                spans.sort_unstable();
                assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "frames overlap");
                for (n, frame) in taken.iter().enumerate() {
                    // SAFETY: as above; nothing else wrote these frames.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(frame.as_ptr(), size as usize) };
                    assert!(
                        bytes.iter().all(|b| usize::from(*b) == n % 251),
                        "frame {n} was overwritten"
                    );
                }
                for frame in taken {
                    pool.free(frame).unwrap();
                }
            }
        }
    }
}

#[test]
fn frames_are_recycled_lowest_first() {
    let _host = Session::begin();
    let pool = pool(8, 4096, 0xFFF);
    let a = pool.allocate().unwrap();
    let b = pool.allocate().unwrap();
    pool.free(a).unwrap();
    assert_eq!(pool.allocate(), Some(a), "the warm, lowest frame comes back first");
    pool.free(a).unwrap();
    pool.free(b).unwrap();
    assert_eq!(pool.stats().high_water, 2);
}

#[test]
fn every_kind_of_bad_free_is_caught_and_the_pool_keeps_working() {
    let host = Session::begin();
    let pool = pool(3, 1000, 0xF);
    let stride = pool.stride();
    let frames = take_all(&pool);
    let first = frames[0];
    let base = first.as_ptr() as usize;

    // Not ours: a stack address, just before the first frame, just past the last.
    let local = 0u64;
    let foreign = [
        NonNull::from(&local).cast::<u8>(),
        NonNull::new((base - 16) as *mut u8).unwrap(),
        NonNull::new((base + 3 * stride) as *mut u8).unwrap(),
    ];
    for pointer in foreign {
        assert_eq!(
            pool.free(pointer),
            Err(BadFree::Foreign { address: pointer.as_ptr() as usize })
        );
    }
    // Inside a frame, not at its start.
    let interior = NonNull::new((base + stride + 24) as *mut u8).unwrap();
    assert_eq!(pool.free(interior), Err(BadFree::Interior { frame: 1, offset: 24 }));
    // Double free.
    pool.free(first).unwrap();
    assert_eq!(pool.free(first), Err(BadFree::Double { frame: 0 }));
    assert_eq!(pool.free(first), Err(BadFree::Double { frame: 0 }));

    let stats = pool.stats();
    assert_eq!(stats.bad_frees, BadFreeCounts { foreign: 3, interior: 1, double: 2 });
    assert_eq!(
        (stats.frames_free, stats.frames_outstanding),
        (1, 2),
        "nothing was freed by the bad frees"
    );

    // The pool is intact: the three frames come and go as before.
    for frame in &frames[1..] {
        pool.free(*frame).unwrap();
    }
    let again = take_all(&pool);
    assert_eq!(
        again.iter().copied().collect::<HashSet<_>>(),
        frames.iter().copied().collect::<HashSet<_>>()
    );
    for frame in again {
        pool.free(frame).unwrap();
    }

    // Reported through DbgPrintEx: every one in debug builds, the first few in release builds.
    let reports: Vec<String> = host.take_output().into_iter().map(|r| r.text).collect();
    let expected = if cfg!(debug_assertions) { 6 } else { 6.min(REPORTED_BAD_FREES as usize) };
    assert_eq!(reports.len(), expected, "{reports:#?}");
    assert!(
        reports[3].contains("free of an address 24 bytes into frame 1 (not its start)"),
        "{}",
        reports[3]
    );
    assert!(reports[4].starts_with("ks-allocator: pool "), "{}", reports[4]);
    assert!(reports[4].contains("double free of frame 0; the pool is unchanged"), "{}", reports[4]);
}

#[test]
fn release_builds_stop_reporting_after_a_few_bad_frees() {
    let host = Session::begin();
    let pool = pool(1, 64, 0);
    let frame = pool.allocate().unwrap();
    pool.free(frame).unwrap();
    for _ in 0..50 {
        assert!(pool.free(frame).is_err());
    }
    assert_eq!(pool.stats().bad_frees.double, 50, "every bad free is counted");
    let reports = host.take_output().len();
    if cfg!(debug_assertions) {
        assert_eq!(reports, 50);
    } else {
        assert_eq!(reports, REPORTED_BAD_FREES as usize);
    }
}

#[test]
fn an_uncapped_pool_grows_to_its_ceiling_and_stops() {
    let _host = Session::begin();
    let config = PoolConfig::DEFAULT.with_ceiling(8);
    let pool = FramePool::new(&framing(0, 5000, 0x3F), SystemMemory::non_paged(FRAME_TAG), config)
        .unwrap();
    assert_eq!(pool.stats().frames_total, INITIAL_UNCAPPED);
    let frames = take_all(&pool);
    assert_eq!(frames.len(), 8);
    assert!(frames.iter().all(|f| (f.as_ptr() as usize).trailing_zeros() >= 6));
    assert_eq!(frames.iter().collect::<HashSet<_>>().len(), 8);
    let stats = pool.stats();
    assert_eq!((stats.capacity, stats.frames_total, stats.frames_outstanding), (8, 8, 8));
    assert_eq!(pool.allocate(), None, "the ceiling is a cap");
    for frame in &frames {
        pool.free(*frame).unwrap();
    }
    // Frames of every region come back and are accepted exactly once.
    assert_eq!(pool.free(frames[7]), Err(BadFree::Double { frame: 7 }));
    assert_eq!(pool.stats().frames_free, 8);
}

#[test]
fn paged_frames_are_flagged_and_never_grown_at_run_time() {
    let _host = Session::begin();
    let config = PoolConfig::DEFAULT.with_ceiling(5);
    let memory = SystemMemory::paged(FRAME_TAG);
    assert!(memory.is_paged() && !memory.usable_at_dispatch());
    let pool = FramePool::new(&framing(0, 4096, 0), memory, config).unwrap();
    assert!(!pool.usable_at_dispatch());
    assert_eq!(pool.stats().frames_total, 5, "an uncapped paged pool takes its ceiling up front");
    // The pool itself works at DISPATCH_LEVEL (its bookkeeping is non-paged); only the frames
    // must not be touched there.
    let frames = ks_host::irql::at_dispatch(|| take_all(&pool));
    assert_eq!(frames.len(), 5);
    ks_host::irql::at_dispatch(|| frames.iter().for_each(|f| pool.free(*f).unwrap()));
}

#[test]
fn works_on_windows_without_exallocatepool2() {
    let host = Session::begin();
    ks_host::routines::hide("ExAllocatePool2");
    let memory = SystemMemory::non_paged(FRAME_TAG);
    assert!(!memory.uses_allocate_pool2());
    let pool = FramePool::new(&framing(2, 512, 7), memory, PoolConfig::DEFAULT).unwrap();
    let frame = pool.allocate().unwrap();
    // SAFETY: 512 readable bytes at `frame`.
    let bytes = unsafe { std::slice::from_raw_parts(frame.as_ptr(), 512) };
    assert!(bytes.iter().all(|b| *b == 0), "the fallback zeroes like ExAllocatePool2");
    pool.free(frame).unwrap();
    drop(pool);
    assert!(host.live().is_empty());
    assert!(!SystemMemory::non_paged(FRAME_TAG).uses_allocate_pool2(), "still hidden");
}

#[test]
fn invalid_framings_are_rejected() {
    let _host = Session::begin();
    let memory = || SystemMemory::non_paged(FRAME_TAG);
    let cases = [
        framing(2, 0, 0),                                         // no frame size
        framing(2, 100, 5),                                       // not a mask
        framing(2, 100, 0x1FFF),                                  // beyond a page
        Framing { pool_type: PoolType(2), ..framing(2, 100, 0) }, // pool type
        Framing { flags: 0x8000_0000, ..framing(2, 100, 0) },     // option bits
        framing(ks_allocator::pool::MAX_FRAMES + 1, 100, 0),      // too many frames
        framing(2, u32::MAX, 0xFFF),                              // stride over 4 GiB
        framing(2, 3_000_000_000, 0),                             // region over 4 GiB
    ];
    for (n, case) in cases.iter().enumerate() {
        let result = FramePool::new(case, memory(), PoolConfig::DEFAULT);
        assert_eq!(result.err(), Some(Error::INVALID_PARAMETER), "case {n}: {case:?}");
    }
    assert_eq!(
        FramePool::new(&framing(0, 100, 0), memory(), PoolConfig::DEFAULT.with_ceiling(0)).err(),
        Some(Error::INVALID_PARAMETER)
    );
}

#[test]
fn creation_fails_cleanly_at_every_allocation() {
    let host = Session::begin();
    for config in [PoolConfig::DEFAULT, PoolConfig::DEFAULT.with_ceiling(4)] {
        for frames in [3, 0] {
            let mut failures = 0;
            for n in 1.. {
                ks_host::pool::fail_nth(n);
                let result = FramePool::new(
                    &framing(frames, 20_000, 0xFFF),
                    SystemMemory::non_paged(FRAME_TAG),
                    config,
                );
                ks_host::pool::clear_failures();
                match result {
                    Ok(pool) => {
                        assert_eq!(pool.stats().frames_free, pool.stats().frames_total);
                        break;
                    }
                    Err(error) => {
                        assert_eq!(error, Error::INSUFFICIENT_RESOURCES, "allocation {n}");
                        assert!(
                            host.live().is_empty(),
                            "allocation {n} failed and leaked: {}",
                            host.live()
                        );
                        failures += 1;
                    }
                }
            }
            assert_eq!(failures, 2, "bookkeeping and frame memory are the two allocations");
        }
    }
}

#[test]
fn growth_that_fails_for_lack_of_memory_is_an_ordinary_exhaustion() {
    let host = Session::begin();
    let pool = FramePool::new(
        &framing(0, 100, 0),
        SystemMemory::non_paged(FRAME_TAG),
        PoolConfig::DEFAULT,
    )
    .unwrap();
    let frames = take_all_limited(&pool, 2);
    ks_host::pool::fail_tag(FRAME_TAG);
    assert_eq!(pool.allocate(), None);
    assert_eq!(pool.stats().failed_allocations, 1);
    ks_host::pool::clear_failures();
    let grown = pool.allocate().expect("grows once memory is there again");
    for frame in frames.into_iter().chain([grown]) {
        pool.free(frame).unwrap();
    }
    drop(pool);
    assert!(host.live().is_empty());
}

fn take_all_limited(pool: &FramePool, n: usize) -> Vec<NonNull<u8>> {
    (0..n).map(|_| pool.allocate().unwrap()).collect()
}

#[test]
fn dropping_a_pool_releases_outstanding_frames() {
    let host = Session::begin();
    let pool = pool(4, 300_000, 0xFFF);
    let _outstanding = take_all(&pool);
    assert_eq!(host.live().by_tag["KsAf"].count, 1, "one region");
    assert_eq!(host.live().by_tag["KsAh"].count, 1, "one bookkeeping block");
    drop(pool);
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn creating_a_pool_above_passive_level_is_a_violation() {
    let host = Session::begin();
    let pool = ks_host::irql::at_dispatch(|| pool(2, 100, 0));
    let violations = host.take_violations();
    assert!(!violations.is_empty());
    assert!(
        violations.iter().all(|v| v.routine == "MmGetSystemRoutineAddress" && v.irql == 2),
        "{violations:?}"
    );
    drop(pool);
}

#[test]
fn bookkeeping_is_at_most_16_bytes_per_frame_plus_a_header() {
    let _host = Session::begin();
    let small = pool(2, 64, 0).bookkeeping_bytes();
    let large = pool(1002, 64, 0).bookkeeping_bytes();
    let per_frame = (large - small) / 1000;
    assert!(per_frame <= 16, "{per_frame} bytes per frame");
    assert!(small < 1024, "fixed header {small} bytes");
}

/// A vendor backend: frames carved from one device buffer (a DMA common buffer, say).
struct DeviceBuffer {
    base: NonNull<u8>,
    size: usize,
    used: std::sync::atomic::AtomicUsize,
}

// SAFETY: `DeviceBuffer` is plain addresses and an atomic.
unsafe impl Send for DeviceBuffer {}
// SAFETY: as above.
unsafe impl Sync for DeviceBuffer {}

// SAFETY: blocks are disjoint ranges of the buffer (bump allocation), 4096-aligned because the
// buffer is and every block is rounded to 4096; the buffer is ordinary memory usable anywhere.
unsafe impl FrameMemory for DeviceBuffer {
    fn usable_at_dispatch(&self) -> bool {
        true
    }
    fn alignment(&self, _bytes: usize) -> usize {
        4096
    }
    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>> {
        let rounded = bytes.div_ceil(4096) * 4096;
        let start = self.used.fetch_add(rounded, std::sync::atomic::Ordering::Relaxed);
        if start + rounded > self.size {
            return None;
        }
        NonNull::new(self.base.as_ptr().wrapping_add(start))
    }
    unsafe fn free(&self, _block: NonNull<u8>, _bytes: usize) {}
}

#[test]
fn a_vendor_backend_serves_frames_from_device_memory() {
    let _host = Session::begin();
    let layout = std::alloc::Layout::from_size_align(1 << 20, 4096).unwrap();
    // SAFETY: non-zero size.
    let base = NonNull::new(unsafe { std::alloc::alloc(layout) }).unwrap();
    let device = DeviceBuffer { base, size: 1 << 20, used: 0.into() };
    let pool = FramePool::new(&framing(4, 100_000, 0xFFF), device, PoolConfig::DEFAULT).unwrap();
    let frames = take_all(&pool);
    assert_eq!(frames.len(), 4);
    for frame in &frames {
        let offset = frame.as_ptr() as usize - base.as_ptr() as usize;
        assert!(offset + 100_000 <= 1 << 20, "frame inside the device buffer");
        assert_eq!(offset % 4096, 0);
    }
    assert_eq!(pool.memory().used.load(std::sync::atomic::Ordering::Relaxed), 4 * 102_400);
    for frame in frames {
        pool.free(frame).unwrap();
    }
    drop(pool);
    // SAFETY: allocated above with `layout`; the pool is gone.
    unsafe { std::alloc::dealloc(base.as_ptr(), layout) };
}
