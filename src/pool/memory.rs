//! Where frames come from: a small trait with the system pool as the default implementation.
//!
//! A driver with device memory (on-board RAM, a slice of a DMA common buffer) implements
//! [`FrameMemory`] for it and builds its pools on that; the pool logic, checks and statistics
//! stay the same (the "multiple buffer types" of the KS allocator documentation).

use core::ptr::NonNull;

use crate::{
    AllocatorRequest,
    system::{self, PoolKind},
    tags::FRAME_TAG,
};

/// A source of frame memory.
///
/// A pool asks it for one block, holding all its frames, when it is created (PASSIVE_LEVEL), and
/// gives the block back when it is dropped (PASSIVE_LEVEL).
///
/// A driver whose frames live in its own memory implements it; here a fixed buffer that hands
/// out one block at a time (a stand-in for a slice of device memory):
///
/// ```
/// # extern crate ks_host;
/// use core::ptr::NonNull;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// use ks_allocator::{
///     AllocatorRequest, FramePool, PinConstraints, PoolConfig,
///     framing::{Framing, OptionFlags, PoolType},
///     pool::FrameMemory,
/// };
///
/// #[repr(align(4096))]
/// struct DeviceWindow {
///     bytes: core::cell::UnsafeCell<[u8; 4 * 4096]>,
///     taken: AtomicBool,
/// }
///
/// // SAFETY: `bytes` is only handed out as one block while `taken` is set.
/// unsafe impl Sync for DeviceWindow {}
///
/// // SAFETY: one block of at most 16 KiB, page aligned, used by nobody else until it is freed;
/// // plain memory, usable at any IRQL.
/// unsafe impl FrameMemory for DeviceWindow {
///     fn usable_at_dispatch(&self) -> bool {
///         true
///     }
///     fn alignment(&self, _bytes: usize) -> usize {
///         4096
///     }
///     fn allocate(&self, bytes: usize) -> Option<NonNull<u8>> {
///         let fits = bytes <= 4 * 4096;
///         if !fits || self.taken.swap(true, Ordering::Acquire) {
///             return None;
///         }
///         NonNull::new(self.bytes.get().cast())
///     }
///     unsafe fn free(&self, _block: NonNull<u8>, _bytes: usize) {
///         self.taken.store(false, Ordering::Release);
///     }
/// }
///
/// static WINDOW: DeviceWindow =
///     DeviceWindow { bytes: core::cell::UnsafeCell::new([0; 4 * 4096]), taken: AtomicBool::new(false) };
///
/// # let _host = ks_host::Session::begin();
/// let framing = Framing::request(OptionFlags::empty(), PoolType::NON_PAGED, 4, 4096, 0xFFF);
/// let request = AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT)?;
/// let pool = FramePool::new(&request, &WINDOW)?;
/// let frame = pool.allocate().expect("a frame of the window");
/// assert!(WINDOW.bytes.get().cast::<u8>() <= frame.as_ptr());
/// pool.free(frame).expect("ours");
/// # Ok::<(), ks_allocator::Error>(())
/// ```
///
/// A shared reference to a `FrameMemory` is one too, so a `static` backend serves several pools.
///
/// # Safety
///
/// Implementors guarantee that [`allocate`](FrameMemory::allocate) returns `None` or a block of
/// at least `bytes` bytes, aligned to at least [`alignment`](FrameMemory::alignment)`(bytes)`,
/// that nothing else uses until it is passed to [`free`](FrameMemory::free); and that if
/// [`usable_at_dispatch`](FrameMemory::usable_at_dispatch) is true, accesses to the memory are
/// valid at IRQL <= DISPATCH_LEVEL.
pub unsafe trait FrameMemory: Send + Sync {
    /// Whether frames may be touched at DISPATCH_LEVEL (false for paged memory).
    fn usable_at_dispatch(&self) -> bool;

    /// The alignment every block of `bytes` bytes is guaranteed to have.
    fn alignment(&self, bytes: usize) -> usize;

    /// A block of `bytes` bytes, or `None`. PASSIVE_LEVEL.
    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>>;

    /// Gives back a block. PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// `block` and `bytes` are exactly what one `allocate` call returned and was asked for, and
    /// the block is given back once.
    unsafe fn free(&self, block: NonNull<u8>, bytes: usize);

    /// The device (logical, bus) address of a byte of a block, for memory a device reaches at
    /// known addresses (a DMA common buffer, on-board memory); `None` for memory without one
    /// (system pool: its pages are scattered, and a device reaches them through mappings). The
    /// default is `None`. Any IRQL.
    fn device_address(&self, _address: NonNull<u8>) -> Option<u64> {
        None
    }
}

// SAFETY: forwards to `T`, which upholds the contract.
unsafe impl<T: FrameMemory> FrameMemory for &T {
    fn usable_at_dispatch(&self) -> bool {
        (**self).usable_at_dispatch()
    }

    fn alignment(&self, bytes: usize) -> usize {
        (**self).alignment(bytes)
    }

    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>> {
        (**self).allocate(bytes)
    }

    unsafe fn free(&self, block: NonNull<u8>, bytes: usize) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { (**self).free(block, bytes) }
    }

    fn device_address(&self, address: NonNull<u8>) -> Option<u64> {
        (**self).device_address(address)
    }
}

/// System pool memory for frames, tagged [`FRAME_TAG`]: non-paged (the default, usable at
/// DISPATCH_LEVEL) or paged (for `PagedPool` requests; frames must not be touched at
/// DISPATCH_LEVEL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemMemory {
    kind: PoolKind,
}

impl SystemMemory {
    /// Non-paged, non-executable pool.
    pub const NON_PAGED: Self = Self { kind: PoolKind::NonPaged };

    /// Paged pool.
    pub const PAGED: Self = Self { kind: PoolKind::Paged };

    /// The memory a request's `PoolType` asks for: paged for `PagedPool` and
    /// `PagedPoolCacheAligned`, non-paged otherwise.
    #[must_use]
    pub const fn for_request(request: &AllocatorRequest) -> Self {
        if request.is_paged() { Self::PAGED } else { Self::NON_PAGED }
    }

    /// Whether this memory is paged.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_paged(&self) -> bool {
        self.kind == PoolKind::Paged
    }
}

// SAFETY: blocks come straight from the system pool, which returns `bytes` fresh bytes aligned
// to a page from PAGE_SIZE on and to MEMORY_ALLOCATION_ALIGNMENT (two pointers) below, as
// `alignment` states; non-paged pool is usable at DISPATCH_LEVEL, and only it claims so.
unsafe impl FrameMemory for SystemMemory {
    fn usable_at_dispatch(&self) -> bool {
        self.kind == PoolKind::NonPaged
    }

    fn alignment(&self, bytes: usize) -> usize {
        let page = ks_sys::PAGE_SIZE as usize;
        if bytes >= page { page } else { 2 * size_of::<usize>() }
    }

    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>> {
        system::allocate(self.kind, bytes, FRAME_TAG)
    }

    unsafe fn free(&self, block: NonNull<u8>, _bytes: usize) {
        // SAFETY: the caller passes a block from `allocate`, which used FRAME_TAG, once.
        unsafe { system::free(block, FRAME_TAG) };
    }
}
