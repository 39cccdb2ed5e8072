//! Where frames come from: a small trait with the system pool as the default implementation.
//!
//! A driver with device memory (on-board RAM, a slice of a DMA common buffer) implements
//! [`FrameMemory`] for it and builds its pools on that; the pool logic, checks and statistics
//! stay the same (the "multiple buffer types" of the KS allocator documentation).

use core::ptr::NonNull;

use crate::{
    framing::PoolType,
    system::{PoolKind, SystemPool},
};

/// A source of frame memory.
///
/// The pool asks it for one block per region of frames (all frames at creation for a capped
/// pool) and gives every block back when the pool is dropped.
///
/// # Safety
///
/// Implementors guarantee that [`allocate`](FrameMemory::allocate) returns `None` or a block of
/// at least `bytes` bytes, aligned to at least [`alignment`](FrameMemory::alignment)`(bytes)`,
/// that nothing else uses until it is passed to [`free`](FrameMemory::free); and that if
/// [`usable_at_dispatch`](FrameMemory::usable_at_dispatch) is true, `allocate`, `free` and
/// accesses to the memory are valid at IRQL <= DISPATCH_LEVEL.
pub unsafe trait FrameMemory: Send + Sync {
    /// Whether frames may be touched, and blocks allocated, at DISPATCH_LEVEL. A pool grows on
    /// demand only over such memory.
    fn usable_at_dispatch(&self) -> bool;

    /// The alignment every block of `bytes` bytes is guaranteed to have.
    fn alignment(&self, bytes: usize) -> usize;

    /// A block of `bytes` bytes, or `None`.
    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>>;

    /// Gives back a block.
    ///
    /// # Safety
    ///
    /// `block` and `bytes` are exactly what one `allocate` call returned and was asked for, and
    /// the block is given back once.
    unsafe fn free(&self, block: NonNull<u8>, bytes: usize);
}

/// Pool tag of frame memory: `KsAf` in a debugger.
pub const FRAME_TAG: u32 = u32::from_le_bytes(*b"KsAf");

/// System pool memory for frames: non-paged (the default, usable at DISPATCH_LEVEL) or paged
/// (for `KSMEMORY_TYPE_KERNEL_PAGED`; frames must not be touched at DISPATCH_LEVEL, and the pool
/// never grows at run time).
#[derive(Clone, Copy, Debug)]
pub struct SystemMemory {
    system: SystemPool,
    kind: PoolKind,
    tag: u32,
}

impl SystemMemory {
    /// Non-paged, non-executable pool with `tag`. PASSIVE_LEVEL (looks up `ExAllocatePool2`).
    #[must_use]
    pub fn non_paged(tag: u32) -> Self {
        Self { system: SystemPool::resolve(), kind: PoolKind::NonPaged, tag }
    }

    /// Paged pool with `tag`. PASSIVE_LEVEL.
    #[must_use]
    pub fn paged(tag: u32) -> Self {
        Self { system: SystemPool::resolve(), kind: PoolKind::Paged, tag }
    }

    /// The memory a legacy framing's `PoolType` asks for: paged for `PagedPool` and
    /// `PagedPoolCacheAligned`, non-paged otherwise. PASSIVE_LEVEL.
    #[must_use]
    pub fn for_pool_type(pool_type: PoolType, tag: u32) -> Self {
        if pool_type.is_paged() { Self::paged(tag) } else { Self::non_paged(tag) }
    }

    /// Whether this memory is paged.
    #[must_use]
    pub fn is_paged(&self) -> bool {
        self.kind == PoolKind::Paged
    }

    /// Whether `ExAllocatePool2` is used (false: the `ExAllocatePoolWithTag` fallback of
    /// Windows before 10 version 2004).
    #[must_use]
    pub fn uses_allocate_pool2(&self) -> bool {
        self.system.has_allocate_pool2()
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
        self.system.allocate(self.kind, bytes, self.tag)
    }

    unsafe fn free(&self, block: NonNull<u8>, _bytes: usize) {
        // SAFETY: the caller passes a block from `allocate`, which used `self.tag`, once.
        unsafe { SystemPool::free(block, self.tag) };
    }
}
