//! Frames carved from a device region (a DMA common buffer, on-board memory): placement and
//! alignment, device addresses, requests that do not fit, several pools on one region, and who
//! frees the region when.

extern crate ks_host;

use std::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicUsize, Ordering},
};

use ks_allocator::{
    AllocatorRequest, Error, FramePool, PinConstraints, PoolConfig,
    framing::{Framing, OptionFlags, PoolType},
    pool::{DeviceRegion, MAX_REGION_BLOCKS},
};
use ks_host::Session;

/// The device address the test regions claim to be at.
const DEVICE: u64 = 0x1_2340_0000;

/// Page-aligned memory standing for a common buffer, and how often it was released.
struct Memory {
    base: NonNull<u8>,
    layout: std::alloc::Layout,
    released: AtomicUsize,
}

impl Memory {
    #[expect(
        clippy::unnecessary_box_returns,
        reason = "the region's release context points at it: it must not move"
    )]
    fn new(len: usize) -> Box<Self> {
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: a non-zero size.
        let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap();
        Box::new(Self { base, layout, released: AtomicUsize::new(0) })
    }

    /// A region over the whole memory.
    fn region(&self) -> DeviceRegion {
        let context = std::ptr::from_ref(self).cast_mut().cast::<c_void>();
        // SAFETY: the memory is the region's until released; `release` only counts, and the
        // memory outlives every region of the test (it is freed when `self` drops).
        unsafe { DeviceRegion::new(self.base, DEVICE, self.layout.size(), release, context) }
            .unwrap()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

unsafe extern "C" fn release(context: *mut c_void, base: *mut u8, device: u64, _len: usize) {
    // SAFETY: the context is the test's `Memory`, alive for the test.
    let memory = unsafe { &*context.cast::<Memory>() };
    assert_eq!((base, device), (memory.base.as_ptr(), DEVICE));
    memory.released.fetch_add(1, Ordering::SeqCst);
}

fn request(frames: u32, size: u32, mask: u32) -> AllocatorRequest {
    let framing = Framing::request(OptionFlags::empty(), PoolType::NON_PAGED, frames, size, mask);
    AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT).unwrap()
}

#[test]
fn frames_are_carved_aligned_from_the_region_with_their_device_addresses() {
    let host = Session::begin();
    let memory = Memory::new(1 << 20);
    let region = memory.region();
    for mask in [0, 0x3F, 0xFFF] {
        let pool = FramePool::new(&request(5, 100_000, mask), region.clone()).unwrap();
        let calls = ks_host::pool::allocation_calls();
        let frames: Vec<NonNull<u8>> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(frames.len(), 5);
        for frame in &frames {
            let offset = frame.as_ptr() as usize - memory.base.as_ptr() as usize;
            assert!(offset + 100_000 <= 1 << 20, "inside the region");
            assert_eq!(frame.as_ptr() as usize & mask as usize, 0, "mask {mask:#x}");
            assert_eq!(pool.device_address(*frame), Some(DEVICE + offset as u64));
            // The whole frame is the consumer's.
            // SAFETY: a frame of 100000 bytes handed out to this test.
            unsafe { frame.as_ptr().write_bytes(0x5A, 100_000) };
        }
        // Not the start of a frame: no device address.
        let inside = NonNull::new(frames[0].as_ptr().wrapping_add(1)).unwrap();
        assert_eq!(pool.device_address(inside), None);
        for frame in frames {
            pool.free(frame).unwrap();
        }
        assert_eq!(ks_host::pool::allocation_calls(), calls, "no pool call after creation");
    }
    let usage = region.usage();
    assert_eq!((usage.used, usage.blocks, usage.largest_free), (0, 0, 1 << 20));
    drop(region);
    assert_eq!(memory.released.load(Ordering::SeqCst), 1);
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn a_request_that_does_not_fit_is_refused_before_anything_is_handed_out() {
    let host = Session::begin();
    let memory = Memory::new(256 << 10);
    let region = memory.region();
    let first = FramePool::new(&request(2, 100_000, 0xFFF), region.clone()).unwrap();
    let before = region.usage();
    assert_eq!(before.used, 2 * 102_400);
    // 60 KiB are left: 1 frame of 64 KiB does not fit.
    let refused = FramePool::new(&request(1, 65_536, 0), region.clone());
    assert_eq!(refused.err(), Some(Error::INSUFFICIENT_RESOURCES));
    assert_eq!(region.usage(), before, "nothing was carved");
    let output = host.take_output();
    assert!(output.iter().any(|r| r.text.contains("do not fit")), "{output:?}");
    // Giving a block back makes room again, first fit.
    drop(first);
    let second = FramePool::new(&request(1, 65_536, 0), region.clone()).unwrap();
    let frame = second.allocate().unwrap();
    assert_eq!(frame.as_ptr(), memory.base.as_ptr(), "the lowest place that fits");
    second.free(frame).unwrap();
    drop(second);
    drop(region);
    assert_eq!(memory.released.load(Ordering::SeqCst), 1);
}

#[test]
fn pools_on_one_region_never_overlap_and_the_table_has_a_limit() {
    let _host = Session::begin();
    let memory = Memory::new(64 << 20);
    let region = memory.region();
    let pools: Vec<FramePool<DeviceRegion>> = (0..MAX_REGION_BLOCKS)
        .map(|n| {
            FramePool::new(&request(2, 3000 + 100 * u32::try_from(n).unwrap(), 0), region.clone())
                .unwrap()
        })
        .collect();
    let frames: Vec<Vec<NonNull<u8>>> =
        pools.iter().map(|pool| std::iter::from_fn(|| pool.allocate()).collect()).collect();
    let mut spans: Vec<(usize, usize)> = pools
        .iter()
        .zip(&frames)
        .flat_map(|(pool, frames)| frames.iter().map(|f| (f.as_ptr() as usize, pool.frame_size())))
        .collect();
    spans.sort_unstable();
    assert_eq!(spans.len(), 2 * MAX_REGION_BLOCKS);
    assert!(spans.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0), "frames overlap");
    // One more pool than the table holds: refused though there is room.
    assert!(FramePool::new(&request(1, 64, 0), region.clone()).is_err());
    for (pool, frames) in pools.iter().zip(frames) {
        for frame in frames {
            pool.free(frame).unwrap();
        }
    }
    drop(pools);
    assert_eq!(region.usage().blocks, 0);
}

/// A device removed while an allocator still uses its memory is a bug; it is reported, and the
/// memory is released only when the last pool on it goes, never while frames can be handed out.
#[test]
fn closing_the_region_while_pools_use_it_is_reported_and_defers_the_release() {
    let host = Session::begin();
    let memory = Memory::new(1 << 20);
    let region = memory.region();
    let pool = FramePool::new(&request(4, 4096, 0xFFF), region.clone()).unwrap();
    let frame = pool.allocate().unwrap();
    drop(region);
    let output = host.take_output();
    assert!(
        output.iter().any(|r| r.text.contains("closed while 1 pools still use it")),
        "{output:?}"
    );
    assert_eq!(memory.released.load(Ordering::SeqCst), 0, "still in use");
    // The pool works on: its frames are still the region's.
    // SAFETY: a 4096-byte frame handed out to this test.
    unsafe { frame.as_ptr().write_bytes(1, 4096) };
    pool.free(frame).unwrap();
    let again = pool.allocate().unwrap();
    pool.free(again).unwrap();
    drop(pool);
    assert_eq!(memory.released.load(Ordering::SeqCst), 1, "released with the last pool");
    let _ = host.take_output();
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn a_region_must_be_page_aligned_at_both_ends_of_the_bus() {
    let _host = Session::begin();
    let memory = Memory::new(8192);
    let context = std::ptr::null_mut();
    let odd = NonNull::new(memory.base.as_ptr().wrapping_add(16)).unwrap();
    // SAFETY: refused before the memory is used.
    let refused = unsafe { DeviceRegion::new(odd, DEVICE, 4096, release, context) };
    assert_eq!(refused.err(), Some(Error::INVALID_PARAMETER));
    // SAFETY: as above.
    let refused = unsafe { DeviceRegion::new(memory.base, DEVICE + 8, 4096, release, context) };
    assert_eq!(refused.err(), Some(Error::INVALID_PARAMETER));
    // SAFETY: as above.
    let refused = unsafe { DeviceRegion::new(memory.base, DEVICE, 0, release, context) };
    assert_eq!(refused.err(), Some(Error::INVALID_PARAMETER));
}
