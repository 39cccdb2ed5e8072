//! The frame pool on the user-mode host: sizes, alignment, exhaustion, every kind of bad free,
//! statistics, uncapped and paged requests, memory backends, dropping with frames outstanding
//! and fault injection. (The `ExAllocatePool2` fallback has a test binary of its own,
//! `pool_fallback.rs`: the lookup is made once per driver.)

extern crate ks_host;

use std::{collections::HashSet, ptr::NonNull};

use ks_allocator::{
    AllocatorRequest, Error, FramePool, PinConstraints, PoolConfig,
    framing::{Framing, OptionFlags, PoolType},
    pool::{BadFree, BadFreeCounts, FrameMemory, REPORTED_BAD_FREES, SystemMemory},
};
use ks_host::Session;

mod common;
use common::{request, system_pool as pool};

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
fn an_uncapped_request_gets_the_budgets_frames_up_front_and_never_grows() {
    let _host = Session::begin();
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 0, 5000, 0x3F);
    let budget = PoolConfig::DEFAULT.with_uncapped_frames(6);
    let request = AllocatorRequest::new(&framing, &PinConstraints::NONE, &budget).unwrap();
    assert!(request.is_uncapped());
    let pool = FramePool::new(&request, SystemMemory::NON_PAGED).unwrap();
    assert_eq!(pool.stats().frames_total, 6);
    let calls = ks_host::pool::allocation_calls();
    let frames = ks_host::irql::at_dispatch(|| take_all(&pool));
    assert_eq!(frames.len(), 6);
    assert!(frames.iter().all(|f| (f.as_ptr() as usize).trailing_zeros() >= 6));
    assert_eq!(frames.iter().collect::<HashSet<_>>().len(), 6);
    assert_eq!(pool.allocate(), None, "exhausted: no growth");
    assert_eq!(ks_host::pool::allocation_calls(), calls, "Allocate never calls the system pool");
    for frame in &frames {
        pool.free(*frame).unwrap();
    }
    assert_eq!(pool.free(frames[5]), Err(BadFree::Double { frame: 5 }));
    let stats = pool.stats();
    assert_eq!((stats.frames_total, stats.frames_free, stats.failed_allocations), (6, 6, 2));
}

#[test]
fn paged_requests_get_paged_frames() {
    let _host = Session::begin();
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::PAGED, 5, 4096, 0);
    let request =
        AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT).unwrap();
    let memory = SystemMemory::for_request(&request);
    assert!(memory.is_paged() && !memory.usable_at_dispatch());
    let pool = FramePool::new(&request, memory).unwrap();
    assert!(!pool.usable_at_dispatch());
    assert_eq!(pool.stats().frames_total, 5);
    // The pool itself works at DISPATCH_LEVEL (its bookkeeping is non-paged); only the frames
    // must not be touched there.
    let frames = ks_host::irql::at_dispatch(|| take_all(&pool));
    assert_eq!(frames.len(), 5);
    ks_host::irql::at_dispatch(|| frames.iter().for_each(|f| pool.free(*f).unwrap()));
}

#[test]
fn creation_fails_cleanly_at_every_allocation() {
    let host = Session::begin();
    for frames in [3, 0] {
        let request = request(frames, 20_000, 0xFFF);
        let mut failures = 0;
        for n in 1.. {
            ks_host::pool::fail_nth(n);
            let result = FramePool::new(&request, SystemMemory::NON_PAGED);
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
        assert_eq!(failures, 2, "frame memory and bookkeeping are the two allocations");
    }
}

#[test]
fn dropping_a_pool_with_frames_outstanding_releases_them_and_says_so() {
    for attached in [true, false] {
        let host = Session::begin();
        ks_host::debug::set_debugger_attached(attached);
        let pool = pool(4, 300_000, 0xFFF);
        let outstanding = take_all(&pool);
        pool.free(outstanding[0]).unwrap();
        assert_eq!(host.live().by_tag["KsAf"].count, 1, "one block of frames");
        assert_eq!(host.live().by_tag["KsAh"].count, 1, "one bookkeeping block");
        drop(pool);
        assert!(host.live().is_empty(), "{}", host.live());
        let output = host.take_output();
        assert_eq!(output.len(), 1, "{output:?}");
        assert_eq!(output[0].level, ks_sys::DPFLTR_ERROR_LEVEL);
        assert_eq!(output[0].component, ks_sys::DPFLTR_IHVSTREAMING_ID);
        assert!(output[0].text.contains("deleted with 3 of 4 frames outstanding"), "{output:?}");
        let violations = host.take_violations();
        if cfg!(debug_assertions) && attached {
            assert_eq!(violations.len(), 1, "debug builds stop in the debugger: {violations:?}");
            assert_eq!(violations[0].routine, "DbgBreakPoint");
            assert!(violations[0].detail.contains("3 of 4 frames outstanding"), "{violations:?}");
        } else {
            assert!(violations.is_empty(), "no breakpoint without a debugger: {violations:?}");
        }
    }
}

#[test]
fn dropping_a_pool_with_every_frame_back_is_silent() {
    let host = Session::begin();
    let pool = pool(4, 4096, 0);
    let frames = take_all(&pool);
    for frame in frames {
        pool.free(frame).unwrap();
    }
    drop(pool);
    assert!(host.take_output().is_empty());
}

#[test]
fn creating_a_paged_pool_above_apc_level_is_a_violation() {
    let host = Session::begin();
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::PAGED, 2, 100, 0);
    let request =
        AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT).unwrap();
    let result = ks_host::irql::at_dispatch(|| {
        FramePool::new(&request, SystemMemory::for_request(&request)).map(|_| ())
    });
    assert_eq!(result, Err(Error::INSUFFICIENT_RESOURCES));
    let violations = host.take_violations();
    assert!(
        violations.iter().any(|v| v.routine == "ExAllocatePool2" && v.irql == 2),
        "{violations:?}"
    );
}

#[test]
fn bookkeeping_is_at_most_16_bytes_per_frame_plus_a_header() {
    const _: () = assert!(1002 <= PoolConfig::DEFAULT.max_frames);
    let _host = Session::begin();
    let small = pool(2, 64, 0).bookkeeping_bytes();
    let large = pool(1002, 64, 0).bookkeeping_bytes();
    let per_frame = (large - small) / 1000;
    assert!(per_frame <= 16, "{per_frame} bytes per frame");
    assert!(small < 1024, "fixed header {small} bytes");
}

/// A pool spread over processors keeps its use counters in its shards and adds at most a line
/// and the padding of its regions per shard (16 at most): under 4 KiB beyond 8 bytes a frame.
#[test]
fn spread_bookkeeping_is_bounded_whatever_the_processor_count() {
    let _host = Session::begin();
    for processors in [1, 2, 3, 16, 64, 1024] {
        ks_host::processor::set_active(processors);
        for frames in [1, 2, 5, 8, 33, 64, 100, 1000, 1024] {
            let pool = big_pool(frames);
            assert!(pool.shards() <= ks_allocator::pool::MAX_SHARDS);
            let bytes = pool.bookkeeping_bytes();
            assert!(
                bytes <= 8 * frames as usize + 4096,
                "{frames} frames on {processors} processors ({} shards): {bytes} bytes",
                pool.shards()
            );
        }
    }
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
    let pool = FramePool::new(&request(4, 100_000, 0xFFF), device).unwrap();
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

/// System memory as Wine's pool gives it: heap blocks 16 bytes past a page boundary, although
/// Windows' pool promises page alignment from `PAGE_SIZE` on (the promise `SystemMemory` makes).
struct UnalignedHeap {
    requests: std::sync::Mutex<Vec<usize>>,
    live: std::sync::Mutex<Vec<(usize, std::alloc::Layout)>>,
}

// SAFETY: blocks are fresh heap memory of the size asked for, usable anywhere, that nothing
// else uses until freed. Their alignment breaks the promise on purpose: that is what the test
// shows the pool survives (it never trusts the promise with the frames' bounds).
unsafe impl FrameMemory for UnalignedHeap {
    fn usable_at_dispatch(&self) -> bool {
        true
    }
    fn alignment(&self, bytes: usize) -> usize {
        if bytes >= 4096 { 4096 } else { 16 }
    }
    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>> {
        self.requests.lock().unwrap().push(bytes);
        let layout = std::alloc::Layout::from_size_align(bytes + 16, 4096).unwrap();
        // SAFETY: non-zero size.
        let base = unsafe { std::alloc::alloc(layout) };
        self.live.lock().unwrap().push((base as usize, layout));
        NonNull::new(base.wrapping_add(16))
    }
    unsafe fn free(&self, block: NonNull<u8>, _bytes: usize) {
        let mut live = self.live.lock().unwrap();
        let index = live.iter().position(|(base, _)| base + 16 == block.as_ptr() as usize).unwrap();
        let (base, layout) = live.swap_remove(index);
        // SAFETY: allocated above with this layout, freed once.
        unsafe { std::alloc::dealloc(base as *mut u8, layout) };
    }
}

#[test]
fn memory_that_breaks_its_alignment_promise_costs_one_retry_not_a_failure() {
    let _host = Session::begin();
    let heap = UnalignedHeap { requests: Vec::new().into(), live: Vec::new().into() };
    let pool = FramePool::new(&request(3, 1000, 0xFFF), heap).unwrap();
    let frames = take_all(&pool);
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|frame| (frame.as_ptr() as usize).trailing_zeros() >= 12));
    let span = 2 * 4096 + 1000; // two strides and the last frame
    let requests = pool.memory().requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "the promised alignment first, then room to align: {requests:?}");
    assert_eq!(requests[1], requests[0] + 0xFFF);
    assert!(requests[0] >= span);
    assert_eq!(pool.memory().live.lock().unwrap().len(), 1, "the misaligned block was given back");
    for frame in frames {
        pool.free(frame).unwrap();
    }
    drop(pool);
}

/// A pool of `frames` 64-byte frames within a budget that allows them.
fn big_pool(frames: u32) -> FramePool {
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, frames, 64, 0);
    let config = PoolConfig::DEFAULT.with_max_frames(frames).with_max_bytes(frames as usize * 64);
    let request = AllocatorRequest::new(&framing, &PinConstraints::NONE, &config).unwrap();
    FramePool::new(&request, SystemMemory::NON_PAGED).unwrap()
}

mod search {
    use super::*;

    /// A pool of more than 4096 frames (each summary bit stands for several words): every frame
    /// once, then `None`, then the freed ones lowest first.
    #[test]
    fn a_pool_of_many_words_finds_its_last_free_frames() {
        let _host = Session::begin();
        let pool = big_pool(9000);
        let frames = take_all(&pool);
        assert_eq!(frames.len(), 9000);
        assert_eq!(frames.iter().collect::<HashSet<_>>().len(), 9000);
        assert_eq!(pool.allocate(), None);
        for &i in &[8999, 4500, 70] {
            pool.free(frames[i]).unwrap();
        }
        assert_eq!(pool.allocate(), Some(frames[70]));
        assert_eq!(pool.allocate(), Some(frames[4500]));
        assert_eq!(pool.allocate(), Some(frames[8999]));
        assert_eq!(pool.allocate(), None);
        // The None that ended `take_all`, and the two since.
        assert_eq!(pool.stats().failed_allocations, 3);
        for frame in frames {
            pool.free(frame).unwrap();
        }
        assert_eq!(pool.stats().frames_free, 9000);
        // Every frame taken back at once (a retired allocator's release) is found again.
        let frames = take_all(&pool);
        // SAFETY: the frames are not used after this.
        unsafe { pool.reclaim_outstanding() };
        assert_eq!(take_all(&pool).len(), frames.len());
        // SAFETY: as above.
        unsafe { pool.reclaim_outstanding() };
    }
}

/// Pools spread over processors: each processor starts at its own shard and takes from the
/// others when its own is empty, every frame once, bad frees caught in every shard.
mod shards {
    use std::collections::BTreeSet;

    use ks_host::processor;
    use proptest::prelude::*;

    use super::*;

    /// The documented spread: (shards, frames per shard) of a pool of `frames` frames on
    /// `processors` processors; (1, frames) for one shared free map.
    fn spread(frames: u32, processors: u32) -> (usize, usize) {
        let frames = frames as usize;
        let dense = (1, frames);
        let wanted = (processors as usize).min(ks_allocator::pool::MAX_SHARDS).min(frames);
        if wanted < 2 {
            return dense;
        }
        let per = frames.div_ceil(wanted).next_power_of_two();
        let shards = frames.div_ceil(per);
        if per > 64 || shards < 2 { dense } else { (shards, per) }
    }

    /// The frame the model expects processor `on` to get: the lowest free frame of its home
    /// shard, or of the next shard that has one, wrapping.
    fn expected(free: &BTreeSet<usize>, (shards, per): (usize, usize), on: u32) -> Option<usize> {
        let home = (on as usize % 64) % shards;
        (0..shards)
            .map(|k| (home + k) % shards)
            .find_map(|shard| free.range(shard * per..(shard + 1) * per).next().copied())
    }

    #[test]
    fn each_processor_starts_at_its_home_shard_then_takes_from_the_next() {
        let _host = Session::begin();
        processor::set_active(2);
        let pool = big_pool(8);
        assert_eq!(pool.shards(), 2);
        let base = pool.allocate().unwrap();
        pool.free(base).unwrap();
        let index = |frame: NonNull<u8>| (frame.as_ptr() as usize - base.as_ptr() as usize) / 64;
        let on_one = processor::bind(1);
        let taken = take_all(&pool);
        assert_eq!(taken.iter().map(|f| index(*f)).collect::<Vec<_>>(), [4, 5, 6, 7, 0, 1, 2, 3]);
        drop(on_one);
        for frame in &taken {
            pool.free(*frame).unwrap();
        }
        // Processor 0 again: its home shard first, lowest first, as a one-processor pool.
        assert_eq!(pool.allocate().map(index), Some(0));
        let stats = pool.stats();
        assert_eq!(
            (stats.allocations, stats.frames_outstanding, stats.failed_allocations),
            (10, 1, 1)
        );
        assert_eq!(stats.high_water, 8, "every frame was out at once");
        pool.free(base).unwrap();
    }

    #[test]
    fn high_water_is_exact_on_one_processor_and_a_bound_across_processors() {
        let _host = Session::begin();
        processor::set_active(4);
        let pool = big_pool(16);
        assert_eq!(pool.shards(), 4);
        {
            let _on = processor::bind(3);
            // Four from the home shard, one more from shard 0: five out at once, at most.
            let five: Vec<_> = (0..5).map(|_| pool.allocate().unwrap()).collect();
            for frame in five {
                pool.free(frame).unwrap();
            }
            let two: Vec<_> = (0..2).map(|_| pool.allocate().unwrap()).collect();
            for frame in two {
                pool.free(frame).unwrap();
            }
        }
        assert_eq!(pool.stats().high_water, 5);
        // One frame at a time on processors 1 and 2 in turn: never two out at once, but each
        // shard's peak counts, so the figure is an upper bound.
        for on in [1, 2] {
            let _on = processor::bind(on);
            let frame = pool.allocate().unwrap();
            pool.free(frame).unwrap();
        }
        assert_eq!(pool.stats().high_water, 7);
    }

    #[test]
    fn every_kind_of_bad_free_is_caught_in_every_shard() {
        let _host = Session::begin();
        processor::set_active(3);
        let pool = big_pool(6);
        assert_eq!(pool.shards(), 3);
        let frames = take_all(&pool);
        assert_eq!(frames.len(), 6);
        for (n, frame) in frames.iter().enumerate() {
            pool.free(*frame).unwrap();
            assert_eq!(
                pool.free(*frame),
                Err(BadFree::Double { frame: u32::try_from(n).unwrap() })
            );
            let inside = NonNull::new(frame.as_ptr().wrapping_add(1)).unwrap();
            assert!(matches!(pool.free(inside), Err(BadFree::Interior { offset: 1, .. })));
        }
        let past = NonNull::new(frames[5].as_ptr().wrapping_add(64)).unwrap();
        assert!(matches!(pool.free(past), Err(BadFree::Foreign { .. })));
        let stats = pool.stats();
        assert_eq!(
            (stats.frames_free, stats.bad_frees.double, stats.bad_frees.interior),
            (6, 6, 6)
        );
        assert_eq!(stats.bad_frees.foreign, 1);
    }

    /// Marks every frame free when dropped, so that a failed assertion ends the case with its
    /// own message rather than with the pool's report of frames still out.
    struct ReclaimOnDrop<'a>(&'a FramePool);

    impl Drop for ReclaimOnDrop<'_> {
        fn drop(&mut self) {
            // SAFETY: the case is over; none of its frames is used after this.
            unsafe { self.0.reclaim_outstanding() };
        }
    }

    /// What a test does: allocate on a processor, or free the nth frame it holds.
    #[derive(Clone, Debug)]
    enum Op {
        Allocate(u32),
        Free(usize),
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        /// Against a model of the documented spread, at any pool size and processor count:
        /// each allocation gets the frame the model names (None exactly when every frame is
        /// out), frees put frames back in their shards, and the counters agree. One processor,
        /// or a pool too large to spread, is one dense free map (with a summary of groups of
        /// words from 65 frames, several words a group beyond 4096): lowest free frame first.
        #[test]
        fn allocations_follow_the_home_shard_then_the_next(
            frames in prop_oneof![4 => 1u32..300, 1 => prop_oneof![Just(1000u32), Just(4097), Just(5000)]],
            processors in 1u32..40,
            ops in prop::collection::vec(
                prop_oneof![3 => (0u32..64).prop_map(Op::Allocate), 2 => (0usize..10_000).prop_map(Op::Free)],
                1..300,
            ),
        ) {
            let _host = Session::begin();
            processor::set_active(processors);
            let pool = big_pool(frames);
            let _clean = ReclaimOnDrop(&pool);
            let shape = spread(frames, processors);
            prop_assert_eq!(pool.shards(), shape.0);
            let base = {
                let first = pool.allocate().unwrap();
                pool.free(first).unwrap();
                first.as_ptr() as usize
            };
            let index = |frame: NonNull<u8>| (frame.as_ptr() as usize - base) / 64;
            let mut free: BTreeSet<usize> = (0..frames as usize).collect();
            let mut held: Vec<NonNull<u8>> = Vec::new();
            let (mut allocations, mut failed) = (1u64, 0u64);
            for op in ops {
                match op {
                    Op::Allocate(on) => {
                        let on = on % processors;
                        let got = {
                            let _on = processor::bind(on);
                            pool.allocate()
                        };
                        prop_assert_eq!(got.map(index), expected(&free, shape, on));
                        match got {
                            Some(frame) => {
                                free.remove(&index(frame));
                                held.push(frame);
                                allocations += 1;
                            }
                            None => failed += 1,
                        }
                    }
                    Op::Free(n) if !held.is_empty() => {
                        let frame = held.swap_remove(n % held.len());
                        prop_assert!(pool.free(frame).is_ok());
                        prop_assert_eq!(pool.free(frame), Err(BadFree::Double { frame: u32::try_from(index(frame)).unwrap() }));
                        free.insert(index(frame));
                    }
                    Op::Free(_) => {}
                }
            }
            let stats = pool.stats();
            prop_assert_eq!(stats.frames_free as usize, free.len());
            prop_assert_eq!((stats.allocations, stats.failed_allocations), (allocations, failed));
            prop_assert!(stats.high_water <= frames);
            for frame in held {
                pool.free(frame).unwrap();
            }
            // Every frame taken back at once (a retired allocator's release) is found again.
            let all = take_all(&pool);
            prop_assert_eq!(all.len(), frames as usize);
            // SAFETY: the frames are not used after this.
            unsafe { pool.reclaim_outstanding() };
            prop_assert_eq!(take_all(&pool).len(), frames as usize);
            // SAFETY: as above.
            unsafe { pool.reclaim_outstanding() };
        }
    }
}
