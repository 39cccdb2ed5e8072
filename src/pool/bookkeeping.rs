//! A pool's bookkeeping: one non-paged block holding the header (with the free map's summary),
//! the free map (one bit per frame) and the per-frame use counters.
//!
//! ```text
//! | Header<M> | free map: words x AtomicU64 | use counters: frames x AtomicU64 |
//! ```
//!
//! The block is allocated and initialised at creation (PASSIVE_LEVEL) and freed at drop; in
//! between the header's plain fields never change and its counters are atomics, so a shared
//! reference to it is all Allocate and Free need.

use core::{alloc::Layout, ptr::NonNull};

use super::divide::ExactDivider;
use crate::{
    sync::{AtomicU32, AtomicU64},
    system::{self, PoolKind},
    tags::BOOKKEEPING_TAG,
};

/// The fixed part of the bookkeeping.
///
/// `repr(C)` keeps what every Allocate and Free reads (the frame geometry and the array offsets)
/// together at the start, in the first cache line.
#[repr(C)]
pub(super) struct Header<M> {
    /// Address of frame 0 (aligned).
    pub(super) base: usize,
    /// `frames * stride`: the bytes the frames span.
    pub(super) span: usize,
    /// Distance between frames.
    pub(super) stride: usize,
    /// Divides offsets by `stride`.
    pub(super) divider: ExactDivider,
    /// Words of the free map.
    pub(super) words: usize,
    /// Words of the free map each bit of `summary` stands for (pools of more than one word).
    pub(super) group: usize,
    /// For a free map of more than one word: bit `g` is set when a word of group `g` (words
    /// `g * group ..`) may have a free frame (see the pool's module documentation).
    pub(super) summary: AtomicU64,
    /// Byte offset of the free map from the header.
    pub(super) bitmap_offset: usize,
    /// Byte offset of the use counters from the header.
    pub(super) uses_offset: usize,
    /// Frames of the pool.
    pub(super) frames: u32,
    /// The highest frame handed out so far, plus one.
    pub(super) high_water: AtomicU32,
    /// Allocations that found no frame.
    pub(super) failed: AtomicU64,
    /// Bad frees by kind.
    pub(super) bad_foreign: AtomicU64,
    pub(super) bad_interior: AtomicU64,
    pub(super) bad_double: AtomicU64,
    /// Bad frees still to report in release builds.
    pub(super) reports_left: AtomicU32,
    /// The frame memory block as `memory` returned it, and its size.
    pub(super) block: NonNull<u8>,
    pub(super) block_bytes: usize,
    /// Size of this bookkeeping block.
    pub(super) bookkeeping_bytes: usize,
    /// What the request asked for.
    pub(super) frame_size: usize,
    pub(super) align_mask: usize,
    pub(super) owner: usize,
    /// Where the frame memory came from; dropped with the bookkeeping, after the pool gave the
    /// frame memory back.
    pub(super) memory: M,
}

/// The bookkeeping block.
///
/// # Invariants
///
/// `header` points at a live, initialised `Header<M>` at the start of a block of
/// `header.bookkeeping_bytes` bytes of non-paged pool with [`BOOKKEEPING_TAG`], followed by
/// `header.words` initialised `AtomicU64` at `bitmap_offset` and `header.frames` at
/// `uses_offset`. The block is owned by this value and freed by its drop.
pub(super) struct Bookkeeping<M> {
    header: NonNull<Header<M>>,
}

/// The trailing array at `offset` bytes from the header. Computing the pointer is safe; using it
/// relies on the type invariant of [`Bookkeeping`].
fn array<M>(header: NonNull<Header<M>>, offset: usize) -> *mut AtomicU64 {
    header.as_ptr().wrapping_byte_add(offset).cast()
}

impl<M> Bookkeeping<M> {
    /// Allocates the block for `header` (whose `words` and `frames` size the arrays, and whose
    /// offsets and size this fills in), writes it, clears the use counters and marks every frame
    /// free. PASSIVE_LEVEL. Gives the header's `memory` back if the block cannot be allocated.
    pub(super) fn new(mut header: Header<M>) -> Result<Self, M> {
        const {
            assert!(align_of::<Header<M>>() <= 16, "the header must fit the pool's alignment");
        }
        let Some((layout, bitmap_offset, uses_offset)) =
            Self::layout(header.words, header.frames as usize)
        else {
            return Err(header.memory);
        };
        let Some(block) = system::allocate(PoolKind::NonPaged, layout.size(), BOOKKEEPING_TAG)
        else {
            return Err(header.memory);
        };
        header.bitmap_offset = bitmap_offset;
        header.uses_offset = uses_offset;
        header.bookkeeping_bytes = layout.size();
        let (words, frames) = (header.words, header.frames);
        let header_ptr = block.cast::<Header<M>>();
        // SAFETY: `block` is a fresh non-paged allocation of `layout.size()` bytes, aligned to
        // 16 (pool alignment), which suffices for `Header<M>` (asserted above).
        unsafe { header_ptr.write(header) };
        let (bitmap, uses) = (array(header_ptr, bitmap_offset), array(header_ptr, uses_offset));
        for word in 0..words {
            // Bits of frames that exist are set (free); the tail of the last word stays clear.
            let set = frames as usize - (word * 64).min(frames as usize);
            let bits = if set >= 64 { u64::MAX } else { (1u64 << set) - 1 };
            // SAFETY: word `word` lies inside the block (layout above) and is written once.
            unsafe { bitmap.wrapping_add(word).write(AtomicU64::new(bits)) };
        }
        for frame in 0..frames as usize {
            // SAFETY: counter `frame` lies inside the block (layout above) and is written once.
            unsafe { uses.wrapping_add(frame).write(AtomicU64::new(0)) };
        }
        // INVARIANT: the header and both arrays are initialised, in a block with the tag.
        Ok(Self { header: header_ptr })
    }

    /// Layout of the block: header, free map, use counters; `None` if it overflows.
    fn layout(words: usize, frames: usize) -> Option<(Layout, usize, usize)> {
        let header = Layout::new::<Header<M>>();
        let (layout, bitmap_offset) =
            header.extend(Layout::array::<AtomicU64>(words).ok()?).ok()?;
        let (layout, uses_offset) = layout.extend(Layout::array::<AtomicU64>(frames).ok()?).ok()?;
        Some((layout.pad_to_align(), bitmap_offset, uses_offset))
    }

    /// The header.
    pub(super) fn header(&self) -> &Header<M> {
        // SAFETY: the type invariant: `header` is live and initialised while `self` exists.
        unsafe { self.header.as_ref() }
    }

    /// The header's address, for diagnostics.
    pub(super) fn address(&self) -> *const () {
        self.header.as_ptr().cast_const().cast()
    }

    /// One bit per frame, set while the frame is free.
    pub(super) fn free_map(&self) -> &[AtomicU64] {
        let header = self.header();
        // SAFETY: the type invariant: `words` initialised `AtomicU64` at `bitmap_offset`.
        unsafe {
            core::slice::from_raw_parts(array(self.header, header.bitmap_offset), header.words)
        }
    }

    /// How often each frame was handed out.
    pub(super) fn uses(&self) -> &[AtomicU64] {
        let header = self.header();
        // SAFETY: the type invariant: `frames` initialised `AtomicU64` at `uses_offset`.
        unsafe {
            core::slice::from_raw_parts(
                array(self.header, header.uses_offset),
                header.frames as usize,
            )
        }
    }
}

impl<M> Drop for Bookkeeping<M> {
    /// Drops the header (and with it the frame memory backend) and the arrays in place and frees
    /// the block. PASSIVE_LEVEL.
    fn drop(&mut self) {
        let header = self.header();
        let (words, frames) = (header.words, header.frames as usize);
        let (bitmap, uses) =
            (array(self.header, header.bitmap_offset), array(self.header, header.uses_offset));
        // SAFETY: initialised in `new`, dropped once here (a no-op for core's atomics, real work
        // for loom's).
        unsafe { core::ptr::slice_from_raw_parts_mut(bitmap, words).drop_in_place() };
        // SAFETY: as above.
        unsafe { core::ptr::slice_from_raw_parts_mut(uses, frames).drop_in_place() };
        // SAFETY: the type invariant: the header is initialised; dropped once, here, and not
        // used after.
        unsafe { self.header.drop_in_place() };
        // SAFETY: the type invariant: the block came from the system pool with this tag and is
        // freed only here.
        unsafe { system::free(self.header.cast(), BOOKKEEPING_TAG) };
    }
}
