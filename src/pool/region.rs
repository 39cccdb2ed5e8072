//! Frames carved from one physically contiguous, device-visible region the driver owns: a DMA
//! common buffer, or a window of a device's on-board memory.
//!
//! The KS allocator documentation expects a vendor allocator when frames "come from a common
//! DMA buffer", and a device that allocates frames itself needs each frame's *device* (logical)
//! address to program its DMA engine. [`DeviceRegion`] is that memory as a
//! [`FrameMemory`]: pools built on it carve their frame blocks out of the region (page-aligned
//! blocks, first fit), and [`FramePool::device_address`](super::FramePool::device_address) gives
//! each frame's device address without a translation of the driver's own.
//!
//! # Who frees the region
//!
//! A pool never frees the region; it gives its block back. The region's owner (the device)
//! creates it with the routine that releases the memory (`FreeCommonBuffer` and whatever else the
//! memory needs) and closes its handle when the device goes. The region is a counted object: the
//! owner's handle and every pool built on it (its clone of the handle) hold a reference, and the
//! release routine runs when the last one goes. Closing the region while pools still use it is a bug of the driver's
//! (an allocator outlived its device): it is reported at error level, and the memory is released
//! only when the last of those pools is deleted, never while a frame of it can still be handed
//! out.
//!
//! # IRQL
//!
//! Creating and closing a region, and carving or giving back a block (pool creation and
//! deletion), at PASSIVE_LEVEL; device addresses at any IRQL. A pool over a region never calls the
//! system pool after its creation, as every pool.

use core::{
    cell::UnsafeCell,
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use super::FrameMemory;
use crate::{Error, Result, system::PoolBox, tags::CONTEXT_TAG};

/// Most blocks (pools) one region holds at once.
pub const MAX_REGION_BLOCKS: usize = 16;

/// What releases a region's memory when its last reference goes: called once, at PASSIVE_LEVEL,
/// with the context given to [`DeviceRegion::new`] and the region's virtual base, device address
/// and length.
pub type RegionRelease =
    unsafe extern "C" fn(context: *mut c_void, base: *mut u8, device: u64, len: usize);

/// One block carved from the region: its offset and length in bytes (both page multiples), or
/// length 0 for a free slot.
#[derive(Clone, Copy, Default)]
struct Block {
    offset: usize,
    len: usize,
}

struct Inner {
    base: NonNull<u8>,
    device: u64,
    len: usize,
    /// Handles: the owner's and its clones (one in every pool built on the region).
    refs: AtomicUsize,
    /// Held while `blocks` is read or changed (PASSIVE_LEVEL, a few comparisons at a time).
    busy: AtomicBool,
    blocks: UnsafeCell<[Block; MAX_REGION_BLOCKS]>,
    release: RegionRelease,
    context: *mut c_void,
}

/// A device-visible region frames are carved from; a counted handle (cloning it takes a
/// reference, dropping it gives one back; the last one releases the memory).
///
/// ```
/// # extern crate ks_host;
/// # let _host = ks_host::Session::begin();
/// use core::{ffi::c_void, ptr::NonNull};
///
/// use ks_allocator::{
///     AllocatorRequest, FramePool, PinConstraints, PoolConfig,
///     framing::{Framing, OptionFlags, PoolType},
///     pool::DeviceRegion,
/// };
///
/// // A stand-in for a common buffer: 64 KiB, page aligned, at device address 0x8000_0000.
/// # #[repr(align(4096))] struct Memory([u8; 0x1_0000]);
/// # static mut MEMORY: Memory = Memory([0; 0x1_0000]);
/// unsafe extern "C" fn release(_: *mut c_void, _: *mut u8, _: u64, _: usize) {
///     // FreeCommonBuffer(...) and PutDmaAdapter(...) in a driver.
/// }
/// # let base = NonNull::new((&raw mut MEMORY).cast::<u8>()).unwrap();
/// // SAFETY: `base` is 64 KiB of page-aligned memory the region may hand out until it calls
/// // `release`, which frees nothing here.
/// let region = unsafe {
///     DeviceRegion::new(base, 0x8000_0000, 0x1_0000, release, core::ptr::null_mut())
/// }?;
///
/// // Four page-aligned frames of 10000 bytes, carved from the region.
/// let framing = Framing::request(OptionFlags::empty(), PoolType::NON_PAGED, 4, 10_000, 0xFFF);
/// let request = AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT)?;
/// let pool = FramePool::new(&request, region.clone())?;
/// let frame = pool.allocate().expect("a frame");
/// let device = pool.device_address(frame).expect("a region frame has a device address");
/// assert_eq!(device, 0x8000_0000 + (frame.as_ptr() as u64 - base.as_ptr() as u64));
/// assert_eq!(device % 4096, 0);
/// pool.free(frame).expect("ours");
///
/// // Eight such frames do not fit in what is left: refused before anything is handed out.
/// let more = Framing::request(OptionFlags::empty(), PoolType::NON_PAGED, 8, 10_000, 0xFFF);
/// let request = AllocatorRequest::new(&more, &PinConstraints::NONE, &PoolConfig::DEFAULT)?;
/// assert!(FramePool::new(&request, region.clone()).is_err());
/// drop(pool);
/// drop(region); // the last reference: `release` runs now
/// # let _ = _host.take_output();
/// # Ok::<(), ks_allocator::Error>(())
/// ```
///
/// # Invariants
///
/// `inner` points at a live `Inner` in a [`PoolBox`] with [`CONTEXT_TAG`], freed (after
/// `release` ran) by whoever drops the last handle; `refs` counts the handles. Blocks are
/// carved only through a handle, by a pool that holds that handle until it gave its block back.
/// `base..base + len` is memory the region hands out, page aligned, device address `device`;
/// the blocks lie inside it and do not overlap.
pub struct DeviceRegion {
    inner: NonNull<Inner>,
    /// The handle `new` returned (the owner's), not a clone.
    owner: bool,
}

// SAFETY: the region is shared through atomics and a lock over its block table; its memory and
// context are the driver's, given to the region for any thread to use (the constructor's
// contract).
unsafe impl Send for DeviceRegion {}
// SAFETY: as above.
unsafe impl Sync for DeviceRegion {}

/// How much of a region is in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegionUsage {
    /// The region's length.
    pub len: usize,
    /// Bytes in blocks carved for pools.
    pub used: usize,
    /// Blocks (pools) carved.
    pub blocks: usize,
    /// The largest block a new pool could get now.
    pub largest_free: usize,
}

const PAGE: usize = ks_sys::PAGE_SIZE as usize;

impl DeviceRegion {
    /// A region over `len` bytes at `base` (device address `device`), released by
    /// `release(context, base, device, len)` when its last reference goes.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_PARAMETER`] for a base or device address that is not page aligned, or a
    /// length of 0; [`Error::INSUFFICIENT_RESOURCES`] when the region's bookkeeping cannot be
    /// allocated (`release` is not called then: the caller still owns the memory).
    ///
    /// # Safety
    ///
    /// `base..base + len` is memory nothing else uses until `release` is called with it, valid
    /// at any IRQL <= DISPATCH_LEVEL, at device address `device`; `release` and `context` may be
    /// used from any thread at PASSIVE_LEVEL.
    ///
    /// # IRQL
    ///
    /// PASSIVE_LEVEL.
    pub unsafe fn new(
        base: NonNull<u8>,
        device: u64,
        len: usize,
        release: RegionRelease,
        context: *mut c_void,
    ) -> Result<Self> {
        if len == 0
            || !base.as_ptr().addr().is_multiple_of(PAGE)
            || !device.is_multiple_of(PAGE as u64)
        {
            return Err(Error::INVALID_PARAMETER);
        }
        let inner = Inner {
            base,
            device,
            len,
            refs: AtomicUsize::new(1),
            busy: AtomicBool::new(false),
            blocks: UnsafeCell::new([Block::default(); MAX_REGION_BLOCKS]),
            release,
            context,
        };
        let inner = PoolBox::new(inner, CONTEXT_TAG).map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
        let raw = PoolBox::into_raw(inner);
        // INVARIANT: a live Inner in a PoolBox, one reference (this handle).
        NonNull::new(raw)
            .map(|inner| Self { inner, owner: true })
            .ok_or(Error::INSUFFICIENT_RESOURCES)
    }

    fn inner(&self) -> &Inner {
        // SAFETY: the type invariant: live while a reference (this handle) exists.
        unsafe { self.inner.as_ref() }
    }

    /// Runs `f` on the block table, with the region's lock held. PASSIVE_LEVEL.
    fn with_blocks<R>(&self, f: impl FnOnce(&mut [Block; MAX_REGION_BLOCKS]) -> R) -> R {
        let inner = self.inner();
        while inner
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock gives this thread the table alone until it is released below.
        let result = f(unsafe { &mut *inner.blocks.get() });
        inner.busy.store(false, Ordering::Release);
        result
    }

    /// The region's base, device address and length.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn bounds(&self) -> (NonNull<u8>, u64, usize) {
        let inner = self.inner();
        (inner.base, inner.device, inner.len)
    }

    /// How much of the region pools use now.
    ///
    /// # IRQL
    ///
    /// PASSIVE_LEVEL.
    #[must_use]
    pub fn usage(&self) -> RegionUsage {
        let len = self.inner().len;
        self.with_blocks(|blocks| {
            let used = blocks.iter().map(|b| b.len).sum();
            let count = blocks.iter().filter(|b| b.len > 0).count();
            RegionUsage { len, used, blocks: count, largest_free: largest_gap(blocks, len) }
        })
    }

    /// The device address of `address`, if it lies in the region.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn device_address_of(&self, address: NonNull<u8>) -> Option<u64> {
        let inner = self.inner();
        let offset = address.as_ptr().addr().checked_sub(inner.base.as_ptr().addr())?;
        (offset < inner.len).then(|| inner.device + offset as u64)
    }

    /// Gives back this handle's reference; the last one releases the region.
    fn release_ref(&self) {
        let inner = self.inner();
        if inner.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let (release, context, base, device, len) =
            (inner.release, inner.context, inner.base, inner.device, inner.len);
        // SAFETY: the last reference: nothing can carve from or read the region any more; its
        // memory goes back to its owner's release routine (the constructor's contract), once.
        unsafe { release(context, base.as_ptr(), device, len) };
        // SAFETY: the type invariant: the PoolBox of `new`, taken back once, by the last
        // reference.
        drop(unsafe { PoolBox::from_raw_with_tag(self.inner, CONTEXT_TAG) });
    }
}

/// The largest free run between the blocks of `blocks` in a region of `len` bytes.
fn largest_gap(blocks: &[Block; MAX_REGION_BLOCKS], len: usize) -> usize {
    let mut largest = 0;
    let mut start = 0;
    while let Some(next) =
        blocks.iter().filter(|b| b.len > 0 && b.offset >= start).min_by_key(|b| b.offset)
    {
        largest = largest.max(next.offset - start);
        start = next.offset + next.len;
    }
    largest.max(len - start.min(len))
}

/// The lowest page-aligned offset where `bytes` fit between the blocks, or `None`.
fn first_fit(blocks: &[Block; MAX_REGION_BLOCKS], len: usize, bytes: usize) -> Option<usize> {
    let mut start = 0;
    loop {
        let next = blocks
            .iter()
            .filter(|b| b.len > 0 && b.offset + b.len > start)
            .min_by_key(|b| b.offset);
        match next {
            Some(block) if block.offset < start.checked_add(bytes)? => {
                start = block.offset + block.len;
            }
            _ => return (start.checked_add(bytes)? <= len).then_some(start),
        }
    }
}

impl Clone for DeviceRegion {
    /// Another handle to the same region (one more reference). Any IRQL.
    fn clone(&self) -> Self {
        self.inner().refs.fetch_add(1, Ordering::AcqRel);
        Self { inner: self.inner, owner: false }
    }
}

impl Drop for DeviceRegion {
    /// Gives back this handle's reference; the last one releases the region. A handle dropped
    /// while pools still use the region is reported, not a use after free: the memory stays
    /// until they are gone. PASSIVE_LEVEL.
    fn drop(&mut self) {
        let blocks = self.with_blocks(|blocks| blocks.iter().filter(|b| b.len > 0).count());
        if self.owner && blocks > 0 {
            crate::system::debug_print(
                ks_sys::DPFLTR_ERROR_LEVEL,
                format_args!(
                    "device region {:p} closed while {blocks} pools still use it: its memory is \
                     released when the last of them is deleted",
                    self.inner().base
                ),
            );
        }
        self.release_ref();
    }
}

// SAFETY: blocks are page-aligned, disjoint runs of the region (first fit over the block table,
// under its lock), which the constructor's contract gives to the region alone and makes valid at
// any IRQL <= DISPATCH_LEVEL; each is used by nobody else until it is given back.
unsafe impl FrameMemory for DeviceRegion {
    fn usable_at_dispatch(&self) -> bool {
        true
    }

    fn alignment(&self, _bytes: usize) -> usize {
        PAGE
    }

    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>> {
        let len = self.inner().len;
        let rounded = bytes.checked_add(PAGE - 1)? & !(PAGE - 1);
        let offset = self.with_blocks(|blocks| {
            let slot = blocks.iter().position(|b| b.len == 0)?;
            let offset = first_fit(blocks, len, rounded)?;
            *blocks.get_mut(slot)? = Block { offset, len: rounded };
            Some(offset)
        });
        let Some(offset) = offset else {
            let usage = self.usage();
            crate::system::debug_print(
                ks_sys::DPFLTR_ERROR_LEVEL,
                format_args!(
                    "device region {:p}: {rounded} bytes of frames do not fit ({} of {} bytes \
                     free in one piece, {} of {MAX_REGION_BLOCKS} pools)",
                    self.inner().base,
                    usage.largest_free,
                    usage.len,
                    usage.blocks,
                ),
            );
            return None;
        };
        NonNull::new(self.inner().base.as_ptr().wrapping_add(offset))
    }

    unsafe fn free(&self, block: NonNull<u8>, _bytes: usize) {
        let offset = block.as_ptr().addr().wrapping_sub(self.inner().base.as_ptr().addr());
        self.with_blocks(|blocks| {
            if let Some(slot) = blocks.iter_mut().find(|b| b.len > 0 && b.offset == offset) {
                *slot = Block::default();
            }
        });
    }

    fn device_address(&self, frame: NonNull<u8>) -> Option<u64> {
        self.device_address_of(frame)
    }
}
