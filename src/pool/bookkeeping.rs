//! A pool's bookkeeping: one non-paged block holding the header (with the free map's summary),
//! then either the dense free map (one bit per frame) and the per-frame use counters, or, for a
//! pool spread over processors, one shard per processor, each starting a cache line of its own.
//!
//! ```text
//! dense:   | Header<M> | free map: words x AtomicU64 | use counters: frames x AtomicU64 |
//! sharded: | Header<M> | pad | shard 0: Shard, its frames' use counters, pad to SHARD_ALIGN |
//!          | shard 1 ... |
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
    /// Words of the dense free map; 0 for a sharded pool.
    pub(super) words: usize,
    /// Shards of a sharded pool; 0 for a dense one.
    pub(super) shards: usize,
    /// Frame `i` is bit `i & ((1 << shift) - 1)` of word or shard `i >> shift` (6 for a dense
    /// free map: 64 frames a word).
    pub(super) shift: u32,
    /// The home shard of each processor index modulo 64 (a sharded pool).
    pub(super) home: [u8; 64],
    /// Words of the free map each bit of `summary` stands for (pools of more than one word).
    pub(super) group: usize,
    /// For a free map of more than one word: bit `g` is set when a word of group `g` (words
    /// `g * group ..`) may have a free frame (see the pool's module documentation).
    pub(super) summary: AtomicU64,
    /// Byte offset of the free map from the header.
    pub(super) bitmap_offset: usize,
    /// Byte offset of the use counters from the header.
    pub(super) uses_offset: usize,
    /// Byte offset of shard 0 from the header, and the distance between shards.
    pub(super) shard_offset: usize,
    pub(super) shard_stride: usize,
    /// Frames of the pool.
    pub(super) frames: u32,
    /// The highest frame handed out so far, plus one (a dense pool; a sharded one keeps a peak
    /// per shard).
    pub(super) high_water: AtomicU32,
    /// Allocations that found no frame (a dense pool; a sharded one counts them per shard).
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

/// Where shards start: a cache line of their own, and the next one too, which some processors
/// fetch in pairs (128 bytes, as crossbeam pads for x86-64).
pub(super) const SHARD_ALIGN: usize = 128;

/// The part of a shard every allocation from it reads and writes, at the start of its line; the
/// use counters of its frames follow.
#[repr(C)]
pub(super) struct Shard {
    /// One bit per frame of the shard, set while the frame is free.
    pub(super) free: AtomicU64,
    /// Most frames of this shard handed out at once so far: the highest bit taken, plus one.
    pub(super) peak: AtomicU32,
    /// Allocations that started here (their processor's home) and found no frame anywhere.
    pub(super) failed: AtomicU64,
}

/// The bookkeeping block.
///
/// # Invariants
///
/// `header` points at a live, initialised `Header<M>` at the start of a block of
/// `header.bookkeeping_bytes` bytes of non-paged pool with [`BOOKKEEPING_TAG`], followed by
/// `header.words` initialised `AtomicU64` at `bitmap_offset` and, for a dense pool,
/// `header.frames` at `uses_offset`; for a sharded pool, by `header.shards` initialised
/// [`Shard`]s at `shard_offset + s * shard_stride`, each followed by the use counters of its
/// frames ([`Bookkeeping::shard_frames`]). The block is owned by this value and freed by its
/// drop.
pub(super) struct Bookkeeping<M> {
    header: NonNull<Header<M>>,
}

/// The trailing array at `offset` bytes from the header. Computing the pointer is safe; using it
/// relies on the type invariant of [`Bookkeeping`].
fn array<M>(header: NonNull<Header<M>>, offset: usize) -> *mut AtomicU64 {
    header.as_ptr().wrapping_byte_add(offset).cast()
}

/// Where the arrays of a block go.
struct Arrays {
    /// Bytes to allocate.
    bytes: usize,
    bitmap_offset: usize,
    uses_offset: usize,
    /// Shard 0's offset from the block start before alignment; up to `SHARD_ALIGN - 1` more
    /// bytes align it (`bytes` includes them).
    shard_offset: usize,
    shard_stride: usize,
}

impl<M> Bookkeeping<M> {
    /// Allocates the block for `header` (whose `words`, `shards`, `shift` and `frames` size the
    /// arrays, and whose offsets and size this fills in), writes it, clears the use counters and
    /// marks every frame free. PASSIVE_LEVEL. Gives the header's `memory` back if the block
    /// cannot be allocated.
    pub(super) fn new(mut header: Header<M>) -> Result<Self, M> {
        const {
            assert!(align_of::<Header<M>>() <= 16, "the header must fit the pool's alignment");
            assert!(align_of::<Shard>() <= SHARD_ALIGN);
        }
        let sharded_frames = if header.shards == 0 { 0 } else { 1usize << header.shift };
        let Some(layout) = Self::layout(header.words, header.frames as usize, sharded_frames)
        else {
            return Err(header.memory);
        };
        let Some(block) = system::allocate(PoolKind::NonPaged, layout.bytes, BOOKKEEPING_TAG)
        else {
            return Err(header.memory);
        };
        header.bitmap_offset = layout.bitmap_offset;
        header.uses_offset = layout.uses_offset;
        header.bookkeeping_bytes = layout.bytes;
        header.shard_stride = layout.shard_stride;
        // Shard 0 starts at the first SHARD_ALIGN boundary after the arrays (the slack for it
        // is in `bytes`).
        let address = block.as_ptr() as usize;
        header.shard_offset =
            (address + layout.shard_offset).next_multiple_of(SHARD_ALIGN) - address;
        let (words, frames, shards) = (header.words, header.frames, header.shards);
        let (shift, shard_offset, shard_stride) =
            (header.shift, header.shard_offset, header.shard_stride);
        let header_ptr = block.cast::<Header<M>>();
        // SAFETY: `block` is a fresh non-paged allocation of `layout.bytes` bytes, aligned to
        // 16 (pool alignment), which suffices for `Header<M>` (asserted above).
        unsafe { header_ptr.write(header) };
        let bitmap = array(header_ptr, layout.bitmap_offset);
        for word in 0..words {
            // SAFETY: word `word` lies inside the block (layout above) and is written once.
            unsafe { bitmap.wrapping_add(word).write(AtomicU64::new(free_bits(frames, word, 6))) };
        }
        if shards == 0 {
            let uses = array(header_ptr, layout.uses_offset);
            for frame in 0..frames as usize {
                // SAFETY: counter `frame` lies inside the block (layout above), written once.
                unsafe { uses.wrapping_add(frame).write(AtomicU64::new(0)) };
            }
        }
        for index in 0..shards {
            let shard: *mut Shard =
                header_ptr.as_ptr().wrapping_byte_add(shard_offset + index * shard_stride).cast();
            let shard_frame_count = (free_bits(frames, index, shift)).count_ones() as usize;
            let fields = Shard {
                free: AtomicU64::new(free_bits(frames, index, shift)),
                peak: AtomicU32::new(0),
                failed: AtomicU64::new(0),
            };
            // SAFETY: shard `index` lies inside the block, aligned to SHARD_ALIGN (layout and
            // alignment above), and is written once.
            unsafe { shard.write(fields) };
            let uses: *mut AtomicU64 = shard.wrapping_add(1).cast();
            for frame in 0..shard_frame_count {
                // SAFETY: the shard's counters follow it inside its stride (layout above);
                // `Shard`'s size is a multiple of `AtomicU64`'s alignment, as `repr(C)` pads
                // it to its own alignment, which is at least that.
                unsafe { uses.wrapping_add(frame).write(AtomicU64::new(0)) };
            }
        }
        // INVARIANT: the header and the arrays or shards are initialised, in a block with the
        // tag.
        Ok(Self { header: header_ptr })
    }

    /// Layout of the block: header, dense free map and use counters, then the shards with
    /// `per_shard` frames each (none when 0); `None` if it overflows.
    fn layout(words: usize, frames: usize, per_shard: usize) -> Option<Arrays> {
        let header = Layout::new::<Header<M>>();
        let (layout, bitmap_offset) =
            header.extend(Layout::array::<AtomicU64>(words).ok()?).ok()?;
        let dense_uses = if per_shard == 0 { frames } else { 0 };
        let (layout, uses_offset) =
            layout.extend(Layout::array::<AtomicU64>(dense_uses).ok()?).ok()?;
        if per_shard == 0 {
            let bytes = layout.pad_to_align().size();
            return Some(Arrays {
                bytes,
                bitmap_offset,
                uses_offset,
                shard_offset: 0,
                shard_stride: 0,
            });
        }
        let shard = Layout::new::<Shard>()
            .extend(Layout::array::<AtomicU64>(per_shard).ok()?)
            .ok()?
            .0
            .align_to(SHARD_ALIGN)
            .ok()?
            .pad_to_align();
        let shards = frames.div_ceil(per_shard);
        // Up to SHARD_ALIGN - 1 bytes to reach shard 0's line, whatever the block's alignment
        // (16 on Windows; the shards must not depend on it).
        let bytes = layout
            .size()
            .checked_add(SHARD_ALIGN - 1)?
            .checked_add(shard.size().checked_mul(shards)?)?;
        Some(Arrays {
            bytes,
            bitmap_offset,
            uses_offset,
            shard_offset: layout.size(),
            shard_stride: shard.size(),
        })
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

    /// The dense free map: one bit per frame, set while the frame is free (empty for a sharded
    /// pool).
    pub(super) fn free_map(&self) -> &[AtomicU64] {
        let header = self.header();
        // SAFETY: the type invariant: `words` initialised `AtomicU64` at `bitmap_offset`.
        unsafe {
            core::slice::from_raw_parts(array(self.header, header.bitmap_offset), header.words)
        }
    }

    /// How often each frame of a dense pool was handed out (empty for a sharded pool).
    pub(super) fn uses(&self) -> &[AtomicU64] {
        let header = self.header();
        let frames = if header.shards == 0 { header.frames as usize } else { 0 };
        // SAFETY: the type invariant: a dense pool has `frames` initialised `AtomicU64` at
        // `uses_offset`.
        unsafe { core::slice::from_raw_parts(array(self.header, header.uses_offset), frames) }
    }

    /// Shard `index` of a sharded pool, or `None` past the last.
    #[inline]
    pub(super) fn shard(&self, index: usize) -> Option<&Shard> {
        let header = self.header();
        if index >= header.shards {
            return None;
        }
        let shard: *const Shard = self
            .header
            .as_ptr()
            .cast_const()
            .wrapping_byte_add(header.shard_offset + index * header.shard_stride)
            .cast();
        // SAFETY: the type invariant: shard `index < shards` is initialised there.
        Some(unsafe { &*shard })
    }

    /// The use counter of frame `bit` of `shard`, without a bounds check (the hot path).
    ///
    /// # Safety
    ///
    /// `shard` is a shard of a live bookkeeping block ([`Bookkeeping::shard`]) and `bit` one of
    /// its frames (a bit its free map has for a frame).
    #[inline]
    pub(super) unsafe fn shard_use(shard: &Shard, bit: u32) -> &AtomicU64 {
        let first: *const AtomicU64 = core::ptr::from_ref(shard).wrapping_add(1).cast();
        // SAFETY: the type invariant of the bookkeeping that holds `shard` puts the use counters
        // of its frames right after it, and the caller promises `bit` is one of its frames, so
        // the counter is inside the block.
        let counter = unsafe { first.add(bit as usize) };
        // SAFETY: as above: an initialised counter, alive as long as the shard.
        unsafe { &*counter }
    }

    /// The use counters of shard `index`'s frames (empty past the last shard).
    #[inline]
    pub(super) fn shard_uses(&self, index: usize) -> &[AtomicU64] {
        let Some(shard) = self.shard(index) else { return &[] };
        let count = self.shard_frames(index);
        let uses: *const AtomicU64 = core::ptr::from_ref(shard).wrapping_add(1).cast();
        // SAFETY: the type invariant: the shard's `count` counters follow it.
        unsafe { core::slice::from_raw_parts(uses, count) }
    }

    /// Frames of shard `index` (0 past the last).
    pub(super) fn shard_frames(&self, index: usize) -> usize {
        let header = self.header();
        if index >= header.shards {
            return 0;
        }
        free_bits(header.frames, index, header.shift).count_ones() as usize
    }
}

/// The bits of word or shard `index` that stand for frames, for `frames` frames with
/// `1 << shift` to a word: every frame free.
pub(super) fn free_bits(frames: u32, index: usize, shift: u32) -> u64 {
    let per = 1usize << shift;
    let set = (frames as usize).saturating_sub(index * per).min(per);
    if set >= 64 { u64::MAX } else { (1u64 << set) - 1 }
}

impl<M> Drop for Bookkeeping<M> {
    /// Drops the header (and with it the frame memory backend), the arrays and the shards in
    /// place and frees the block. PASSIVE_LEVEL.
    fn drop(&mut self) {
        let header = self.header();
        let (words, uses) = (header.words, self.uses().len());
        let (bitmap, uses_ptr) =
            (array(self.header, header.bitmap_offset), array(self.header, header.uses_offset));
        for index in 0..header.shards {
            let counters = self.shard_uses(index);
            let (counters, count) = (counters.as_ptr().cast_mut(), counters.len());
            // SAFETY: initialised in `new`, dropped once here (a no-op for core's atomics,
            // real work for loom's).
            unsafe { core::ptr::slice_from_raw_parts_mut(counters, count).drop_in_place() };
            if let Some(shard) = self.shard(index) {
                // SAFETY: as above.
                unsafe { core::ptr::from_ref(shard).cast_mut().drop_in_place() };
            }
        }
        // SAFETY: as above.
        unsafe { core::ptr::slice_from_raw_parts_mut(bitmap, words).drop_in_place() };
        // SAFETY: as above.
        unsafe { core::ptr::slice_from_raw_parts_mut(uses_ptr, uses).drop_in_place() };
        // SAFETY: the type invariant: the header is initialised; dropped once, here, and not
        // used after.
        unsafe { self.header.drop_in_place() };
        // SAFETY: the type invariant: the block came from the system pool with this tag and is
        // freed only here.
        unsafe { system::free(self.header.cast(), BOOKKEEPING_TAG) };
    }
}
