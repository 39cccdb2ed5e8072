//! Frame pools: fixed-size, aligned frames handed out and taken back in O(1), lock-free, at
//! IRQL <= DISPATCH_LEVEL, with bad frees caught.
//!
//! # Design
//!
//! A pool is made from an [`AllocatorRequest`]: every frame it will ever have is allocated when it
//! is created, in one contiguous block of frame memory. Frame `i` is at `base + i * stride`, where
//! `stride` is the frame size rounded up to the alignment. Nothing is ever stored in frame
//! memory: the whole frame belongs to the consumer. After creation the pool never calls the
//! system pool, so `allocate` and `free` are safe in a DPC whatever the frames are.
//!
//! Which frames are free is one bit each in a *free map* of 64-bit words. On a machine of
//! several processors a pool is *spread*: its frames are divided among *shards*, one per
//! processor (see [Shards](#shards)); otherwise, and for pools too large to spread, it has one
//! dense free map every processor shares.
//!
//! - **Allocate** loads a word, picks its lowest set bit and clears it with one atomic
//!   `fetch_and`; if another CPU took that bit first, it looks again, at most 64 times per word
//!   (so no loop is unbounded; an allocation that loses 64 races running on one word moves on,
//!   and may fail although a frame was freed meanwhile). Lowest-first keeps frames cache-warm
//!   (the recycled frame is the one just freed when the pool is mostly idle) and makes the
//!   high-water mark cheap to keep.
//! - **A pool of more than 64 frames** keeps a *summary*: one bit per group of free-map words
//!   (a word per bit up to 4096 frames), set when the group may have a free frame. Allocate
//!   visits only the groups the summary names, lowest first, so a pool with one frame free, or
//!   none, costs the same to search at 1024 frames as at 65. The summary is a hint kept with two
//!   rules: a free that makes a word non-empty (its `fetch_or`, acquire-release) then sets its
//!   group's bit if it is clear; an allocation that finds a group empty clears the bit, then
//!   reads the group's words again with a read-modify-write (acquire-release) and sets the bit
//!   back if a free refilled one. Either that read sees the free's bit, or the free's
//!   `fetch_or` reads from it and then sees the cleared bit: a free frame never goes unnamed
//!   (checked with loom, which models acquire-release exactly). Bits are not cleared when an
//!   allocation empties a word, only when a search finds the group empty, so the common pair
//!   costs no summary write. An allocation racing the free of the only free frame may miss it,
//!   as it may in any pool.
//! - **Free** maps the address to its frame index with one range check and an exact division
//!   (no divide instruction, see `divide.rs`), then sets the bit with one atomic `fetch_or`. The
//!   bit's previous value says whether the frame was already free: a double free is detected
//!   inside the same atomic that frees, so two CPUs freeing the same frame cannot both succeed.
//!   A pointer outside the frames, or inside a frame but not at its start, is rejected before
//!   anything is touched.
//!
//! There is no ABA problem to solve: a bit has no identity beyond its index and no link to
//! follow, unlike a Treiber stack, which needs a tag or a 128-bit CAS.
//!
//! The counters a hot path needs are kept off shared cache lines: each frame has a use counter
//! that only the frame's current owner writes (a plain load and store, ordered by the free
//! map's acquire/release), so allocations = the sum of the use counters, outstanding =
//! total - free bits, frees = allocations - outstanding. Failed allocations and bad frees are
//! counted on their own (rare) paths. Bookkeeping is 8 bytes and a bit per frame, a header of
//! under 1 KiB and, for a spread pool, 128 bytes per shard beyond its use counters (at most
//! [`MAX_SHARDS`] shards, so at most 2 KiB more, plus up to 127 bytes to align the first).
//!
//! # Shards
//!
//! Every CPU allocating and freeing through one free-map word makes that word's cache line
//! move between them at each operation. A pool of at most 64 frames per processor is therefore
//! spread over `min(processors, frames, MAX_SHARDS)` shards (fewer when rounding leaves one
//! empty): each shard holds the same power of two of consecutive frames, at most 64 (the last
//! shard the rest), and starts a 128-byte line of its own with its free-map word and its peak
//! and failure counters, followed by the use counters of its frames. The processor count is
//! `KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS)` when the pool is created.
//!
//! - **Allocate** asks `KeGetCurrentProcessorNumberEx` which processor it runs on; the
//!   processor's *home* shard is its index modulo the shards (a table in the header, so no
//!   division). It takes the lowest free frame of its home shard, or of the next shard that has
//!   one, in order, wrapping around: a frame is never refused while any shard has one (short of
//!   the races above). The processor is only where the search starts, so correctness never
//!   depends on it: a thread that moves to another processor in the middle (it can below
//!   DISPATCH_LEVEL) only starts from a shard that is no longer its home. When two
//!   processors share a home (more processors than shards) they share its line, as every
//!   processor shares a dense map.
//! - **Free** sets the frame's bit in the shard that holds the frame, with the same one
//!   `fetch_or` as a dense map: a double free is still caught in the atomic operation that frees.
//!   Frames go back to their own shard, not to the freeing processor's, since a frame's bit is
//!   its identity.
//! - With one thread per processor allocating and freeing its own frames (several pins of a
//!   filter, each streaming on its processor) no cache line is shared. A producer on one
//!   processor and a consumer on another still pass each frame's line between them once per
//!   frame, as any free list does.
//! - **High water** is kept per shard (the highest frame of the shard taken, plus one, written
//!   in the shard's own line) and reported as the sum. On one processor that is exactly the
//!   most frames out at once (a shard is only taken from when those before it in the search
//!   are empty); with several processors it is an upper bound on it, never above the frame
//!   count. A dense pool keeps the exact figure as before.
//!
//! On the user-mode host, `KeGetCurrentProcessorNumberEx` reports the processor a thread bound
//! itself to (`ks_host::processor::bind`, processor 0 until then), and the active count is the
//! machine's cores or `KS_HOST_PROCESSORS`: tests choose the processors, so results are the
//! same on every machine.
//!
//! # Bad frees
//!
//! A bad free leaves the pool untouched, is counted by kind in [`PoolStats::bad_frees`],
//! returned as [`BadFree`], and reported with `DbgPrintEx` (`DPFLTR_IHVSTREAMING_ID`, error
//! level). Release builds report the first [`REPORTED_BAD_FREES`] of a pool and then only count,
//! so a consumer stuck in a loop cannot flood the debugger from a DPC; debug builds report every
//! one. What is caught, exactly:
//!
//! - a pointer that is not inside any frame of the pool ([`BadFree::Foreign`]);
//! - a pointer inside a frame but not at its start ([`BadFree::Interior`]);
//! - a frame freed while it is free ([`BadFree::Double`]), including two CPUs freeing it at once.
//!
//! What cannot be caught: a *stale* double free, where a frame is freed, handed out again to a
//! new owner, and then freed a second time by its first owner. `Free` receives only the
//! address, which is the same for both owners, so no counter kept by the pool could tell the two
//! frees apart; the frame is then taken from its new owner. Only the consumer can prevent that
//! (by forgetting a frame's address once it has freed it).
//!
//! # Dropping a pool
//!
//! Dropping the pool releases every frame, outstanding or not. Frames still out at that point
//! are a bug in the consumer (it may still write them): the drop reports their number with
//! `DbgPrintEx` at error level and, in debug builds with a kernel debugger attached, stops in
//! the debugger.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod bookkeeping;
pub(crate) mod divide;
mod memory;
mod region;
mod stats;

use bookkeeping::{Bookkeeping, Header};
pub use memory::{FrameMemory, SystemMemory};
pub use region::{DeviceRegion, MAX_REGION_BLOCKS, RegionRelease, RegionUsage};
pub use stats::{BadFree, BadFreeCounts, PoolStats};

use crate::{
    AllocatorRequest, Error, Result,
    sync::{AtomicU32, AtomicU64, Ordering},
};

/// Bad frees a pool reports to the debugger in release builds before it only counts them.
pub const REPORTED_BAD_FREES: u32 = 8;

/// A pool of frames of one size and alignment, for one allocator instance.
///
/// ```
/// # extern crate ks_host;
/// # let _host = ks_host::Session::begin();
/// use ks_allocator::{
///     AllocatorRequest, FramePool, PinConstraints, PoolConfig,
///     framing::{Framing, OptionFlags, PoolType},
///     pool::{BadFree, SystemMemory},
/// };
///
/// // Two 64-byte-aligned frames of 1000 bytes in non-paged pool.
/// let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 2, 1000, 0x3F);
/// let request = AllocatorRequest::new(&framing, &PinConstraints::NONE, &PoolConfig::DEFAULT)?;
/// let pool = FramePool::new(&request, SystemMemory::for_request(&request))?;
///
/// let a = pool.allocate().expect("a free frame");
/// let b = pool.allocate().expect("another one");
/// assert_eq!(a.as_ptr() as usize % 64, 0);
/// assert_eq!(pool.allocate(), None, "exhausted: None at once, never a wait");
///
/// pool.free(a).expect("a frame of this pool");
/// // Freeing it again is caught, reported and ignored: the pool is unchanged.
/// assert_eq!(pool.free(a), Err(BadFree::Double { frame: 0 }));
///
/// let stats = pool.stats();
/// assert_eq!((stats.allocations, stats.frees, stats.frames_outstanding), (2, 1, 1));
/// assert_eq!((stats.failed_allocations, stats.bad_frees.double), (1, 1));
/// pool.free(b).expect("a frame of this pool");
/// # drop(pool);
/// # let _ = _host.take_output();
/// # Ok::<(), ks_allocator::Error>(())
/// ```
///
/// # Invariants
///
/// `bookkeeping` is live and describes `header.frames` frames at `base + i * stride`, each
/// `stride` bytes, aligned to `align_mask + 1`, inside the frame memory block
/// `header.block` of `header.block_bytes` bytes that `header.memory` allocated; the block is
/// owned by this value and given back once, by `Drop`. Bit `i` of the free map is set exactly
/// when frame `i` is free.
pub struct FramePool<M: FrameMemory = SystemMemory> {
    bookkeeping: Bookkeeping<M>,
}

// SAFETY: the pool shares its bookkeeping only through atomics and immutable fields, and the
// frame memory through `M`, which is `Send + Sync` by `FrameMemory`'s bound; the handle owns
// everything it points to.
unsafe impl<M: FrameMemory> Send for FramePool<M> {}
// SAFETY: every method takes `&self` and works through atomics (see the module documentation).
unsafe impl<M: FrameMemory> Sync for FramePool<M> {}

/// Rounds `value` up to a multiple of `mask + 1` (a power of two), or `None` on overflow.
const fn align_up(value: usize, mask: usize) -> Option<usize> {
    match value.checked_add(mask) {
        Some(sum) => Some(sum & !mask),
        None => None,
    }
}

/// The frame memory of a pool: a block from `memory` and the first frame's address in it,
/// aligned to `align_mask + 1`, with `span` bytes of frames inside the block.
///
/// Memory aligned enough by its own promise gets no padding. A backend that breaks the promise
/// (Wine's pool is heap memory, and not page aligned from `PAGE_SIZE` on as Windows' is) costs
/// one retry with room to align the first frame instead of a failure; the frames never overrun
/// the block either way. `None` when the memory cannot be had.
fn frame_block<M: FrameMemory>(
    memory: &M,
    span: usize,
    align_mask: usize,
) -> Option<(core::ptr::NonNull<u8>, usize, usize)> {
    let promised = memory.alignment(span) > align_mask;
    let attempts: &[usize] = if promised { &[0, align_mask] } else { &[align_mask] };
    for &padding in attempts {
        let block_bytes = span.checked_add(padding)?;
        let block = memory.allocate(block_bytes)?;
        let block_end = (block.as_ptr() as usize).checked_add(block_bytes);
        let base = align_up(block.as_ptr() as usize, align_mask).filter(|base| {
            base.checked_add(span).is_some_and(|end| block_end.is_some_and(|limit| end <= limit))
        });
        if let Some(base) = base {
            return Some((block, block_bytes, base));
        }
        // SAFETY: `block` came from `memory.allocate(block_bytes)` just now; freed once.
        unsafe { memory.free(block, block_bytes) };
    }
    None
}

impl<M: FrameMemory> FramePool<M> {
    /// Builds the pool `request` describes, with every frame allocated from `memory` now.
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`] when the bookkeeping or the frame memory cannot be
    /// allocated. Nothing is leaked.
    ///
    /// # IRQL
    ///
    /// PASSIVE_LEVEL.
    pub fn new(request: &AllocatorRequest, memory: M) -> Result<Self> {
        let span = request.frame_bytes();
        let align_mask = request.align_mask() as usize;
        let (block, block_bytes, base) =
            frame_block(&memory, span, align_mask).ok_or(Error::INSUFFICIENT_RESOURCES)?;
        let frames = request.frames();
        let spread = Spread::for_pool(frames, crate::sync::active_processors());
        let words = if spread.shards == 0 { (frames as usize).div_ceil(64) } else { 0 };
        let header = Header {
            base,
            span,
            stride: request.stride(),
            divider: request.divider(),
            words,
            shards: spread.shards,
            shift: spread.shift,
            home: spread.home(),
            group: words.div_ceil(64),
            summary: AtomicU64::new(summary_bits(words)),
            bitmap_offset: 0,
            uses_offset: 0,
            shard_offset: 0,
            shard_stride: 0,
            frames,
            high_water: AtomicU32::new(0),
            failed: AtomicU64::new(0),
            bad_foreign: AtomicU64::new(0),
            bad_interior: AtomicU64::new(0),
            bad_double: AtomicU64::new(0),
            reports_left: AtomicU32::new(REPORTED_BAD_FREES),
            block,
            block_bytes,
            bookkeeping_bytes: 0,
            frame_size: request.frame_size() as usize,
            align_mask,
            owner: request.owner(),
            memory,
        };
        match Bookkeeping::new(header) {
            // INVARIANT: the frames lie inside the block (checked above) and the bookkeeping
            // marks every one of them free.
            Ok(bookkeeping) => Ok(Self { bookkeeping }),
            Err(memory) => {
                // SAFETY: `block` came from `memory.allocate(block_bytes)` above; freed once.
                unsafe { memory.free(block, block_bytes) };
                Err(Error::INSUFFICIENT_RESOURCES)
            }
        }
    }

    fn header(&self) -> &Header<M> {
        self.bookkeeping.header()
    }

    /// Takes a free frame of a dense pool, the lowest, and counts its use; or `None`.
    #[inline]
    fn take_dense(&self) -> Option<u32> {
        let map = self.bookkeeping.free_map();
        let frame = match map {
            [word] => take_from(word),
            _ => self.take_searching(map),
        };
        let header = self.header();
        let Some(frame) = frame else {
            header.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if let Some(uses) = self.bookkeeping.uses().get(frame as usize) {
            count_use(uses);
        }
        if frame >= header.high_water.load(Ordering::Relaxed) {
            header.high_water.fetch_max(frame + 1, Ordering::Relaxed);
        }
        Some(frame)
    }

    /// Takes a free frame of a sharded pool and counts its use; or `None`. The lowest free
    /// frame of the calling processor's home shard, or else of the next shard that has one, in
    /// order, wrapping (module documentation). Which shard is home is only where the search
    /// starts: a thread that moves to another processor meanwhile takes a frame all the same.
    #[inline]
    fn take_sharded(&self) -> Option<u32> {
        let header = self.header();
        let processor = crate::sync::current_processor() as usize;
        let home = header.home.get(processor % 64).map_or(0, |home| usize::from(*home));
        match self.take_in_shard(home) {
            Some(frame) => Some(frame),
            None => self.take_elsewhere(home),
        }
    }

    /// Takes the lowest free frame of shard `index`, counts its use and the shard's peak.
    #[inline]
    fn take_in_shard(&self, index: usize) -> Option<u32> {
        let shard = self.bookkeeping.shard(index)?;
        let bit = take_from(&shard.free)?;
        // SAFETY: `bit` was set in the shard's free map, so it names a frame of the shard.
        count_use(unsafe { Bookkeeping::<M>::shard_use(shard, bit) });
        if bit >= shard.peak.load(Ordering::Relaxed) {
            shard.peak.fetch_max(bit + 1, Ordering::Relaxed);
        }
        #[expect(clippy::cast_possible_truncation, reason = "a frame index, below 2^32")]
        let frame = (index << self.header().shift) as u32 | bit;
        Some(frame)
    }

    /// The home shard had no free frame: the next shards in order, wrapping; a failure is
    /// counted in the home shard.
    #[cold]
    fn take_elsewhere(&self, home: usize) -> Option<u32> {
        let shards = self.header().shards;
        let mut others = (home + 1..shards).chain(0..home);
        if let Some(frame) = others.find_map(|index| self.take_in_shard(index)) {
            return Some(frame);
        }
        if let Some(shard) = self.bookkeeping.shard(home) {
            shard.failed.fetch_add(1, Ordering::Relaxed);
        }
        None
    }

    /// [`take_dense`](Self::take_dense) for a free map of more than one word: the summary names the groups
    /// of words that may have a free frame, lowest first. A group found empty has its summary
    /// bit cleared, then is looked at once more, and the bit set again if a free refilled it
    /// meanwhile (module documentation). At most 64 groups are visited, each once or twice.
    #[inline]
    fn take_searching(&self, map: &[AtomicU64]) -> Option<u32> {
        let header = self.header();
        let group = header.group;
        // ORDERING: Relaxed: a hint; each word's own `fetch_and` decides.
        let mut candidates = header.summary.load(Ordering::Relaxed);
        while candidates != 0 {
            let bit = candidates.trailing_zeros();
            candidates &= candidates - 1;
            let first = bit as usize * group;
            let words = map.get(first..(first + group).min(map.len())).unwrap_or_default();
            if let Some(frame) = take_in(words, first) {
                return Some(frame);
            }
            // ORDERING: AcqRel here and in the read-modify-write below that reads the group
            // again, with the free's AcqRel `fetch_or` on the word: either that read sees the
            // free's bit, or the free's `fetch_or` reads from it and so sees this clear when it
            // then reads the summary (`mark_group`). A free frame never loses its summary bit.
            header.summary.fetch_and(!(1u64 << bit), Ordering::AcqRel);
            if words.iter().any(|word| word.fetch_or(0, Ordering::AcqRel) != 0) {
                header.summary.fetch_or(1u64 << bit, Ordering::AcqRel);
                if let Some(frame) = take_in(words, first) {
                    return Some(frame);
                }
            }
        }
        None
    }

    /// The frame `address` starts, or why it starts none.
    #[inline]
    fn index_of(&self, address: usize) -> core::result::Result<u32, BadFree> {
        let header = self.header();
        let offset = address.wrapping_sub(header.base);
        if offset >= header.span {
            return Err(BadFree::Foreign { address });
        }
        // NO-OVERFLOW: offset < span <= MAX_POOL_BYTES = u32::MAX (AllocatorRequest).
        #[expect(clippy::cast_possible_truncation, reason = "see NO-OVERFLOW above")]
        let (frame, exact) = header.divider.divide(offset as u32);
        if exact {
            Ok(frame)
        } else {
            Err(BadFree::Interior { frame, offset: offset - frame as usize * header.stride })
        }
    }

    /// Hands out a frame, or `None` at once when none is free.
    ///
    /// Lock-free, never allocates, callable from several CPUs at once.
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL. Frames of paged memory must not be touched above APC_LEVEL.
    #[inline]
    #[must_use = "a frame that is not used should be freed"]
    pub fn allocate(&self) -> Option<core::ptr::NonNull<u8>> {
        let header = self.header();
        let frame = if header.shards != 0 { self.take_sharded() } else { self.take_dense() }?;
        // INVARIANT: a set bit names an existing frame, so the address is inside the frames.
        core::ptr::NonNull::new((header.base + frame as usize * header.stride) as *mut u8)
    }

    /// Takes a frame back.
    ///
    /// Lock-free, never allocates, callable from several CPUs at once.
    ///
    /// # Errors
    ///
    /// A [`BadFree`] if `frame` is not the start of a frame of this pool that is handed out; the
    /// pool is then unchanged, and the bad free is counted and reported (module documentation,
    /// which also says which bad frees cannot be caught).
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL.
    #[inline]
    pub fn free(&self, frame: core::ptr::NonNull<u8>) -> core::result::Result<(), BadFree> {
        let result = self.index_of(frame.as_ptr() as usize).and_then(|index| {
            if self.header().shards != 0 {
                self.free_sharded(index)
            } else {
                self.free_dense(index)
            }
        });
        if let Err(bad) = result {
            self.bad_free(bad);
        }
        result
    }

    /// Sets frame `index`'s bit in its shard, or says it was set.
    #[inline]
    fn free_sharded(&self, index: u32) -> core::result::Result<(), BadFree> {
        let header = self.header();
        let mask = 1u64 << (index & ((1u32 << header.shift) - 1));
        let Some(shard) = self.bookkeeping.shard(index as usize >> header.shift) else {
            // INVARIANT: `index_of` gave a frame of the pool, and every frame is in a shard.
            return Err(BadFree::Foreign { address: header.base + index as usize * header.stride });
        };
        // ORDERING: Release pairs with the Acquire `fetch_and` of the next allocation, so the
        // consumer's writes to the frame happen before its next owner's use.
        let previous = shard.free.fetch_or(mask, Ordering::Release);
        if previous & mask != 0 { Err(BadFree::Double { frame: index }) } else { Ok(()) }
    }

    /// Sets frame `index`'s bit in the dense free map, or says it was set.
    #[inline]
    fn free_dense(&self, index: u32) -> core::result::Result<(), BadFree> {
        let header = self.header();
        let (word, mask) = (index as usize / 64, 1u64 << (index % 64));
        let Some(word) = self.bookkeeping.free_map().get(word) else {
            // INVARIANT: `index_of` gave a frame of the pool, and every frame has a bit.
            return Err(BadFree::Foreign { address: header.base + index as usize * header.stride });
        };
        // ORDERING: Release pairs with the Acquire `fetch_and` of the next allocation, so the
        // consumer's writes to the frame happen before its next owner's use; AcqRel (the same
        // instruction on x86-64) when a summary is kept (`take_searching`).
        let searching = header.words > 1;
        let order = if searching { Ordering::AcqRel } else { Ordering::Release };
        let previous = word.fetch_or(mask, order);
        if previous & mask != 0 {
            return Err(BadFree::Double { frame: index });
        }
        if searching && previous == 0 {
            self.mark_group(index as usize / 64);
        }
        Ok(())
    }

    /// A free made word `word` non-empty: its group's summary bit is set, unless it is.
    #[inline]
    fn mark_group(&self, word: usize) {
        let header = self.header();
        let bit = 1u64 << (word / header.group);
        // ORDERING: Relaxed is enough: a search that cleared the bit before the free's
        // `fetch_or` read its word happens before this read (see `take_searching`).
        if header.summary.load(Ordering::Relaxed) & bit == 0 {
            header.summary.fetch_or(bit, Ordering::Release);
        }
    }

    #[cold]
    fn bad_free(&self, bad: BadFree) {
        let header = self.header();
        let counter = match bad {
            BadFree::Foreign { .. } => &header.bad_foreign,
            BadFree::Interior { .. } => &header.bad_interior,
            BadFree::Double { .. } => &header.bad_double,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let report = cfg!(debug_assertions)
            || header
                .reports_left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1))
                .is_ok();
        if report {
            crate::system::debug_print(
                ks_sys::DPFLTR_ERROR_LEVEL,
                format_args!(
                    "pool {:p} (owner {:#x}): {bad}; the pool is unchanged",
                    self.bookkeeping.address(),
                    header.owner
                ),
            );
        }
    }

    /// The counters, read without locks.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let header = self.header();
        let frames_total = header.frames;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut frames_free: u32 =
            self.bookkeeping.free_map().iter().map(|word| load(word).count_ones()).sum();
        let mut allocations: u64 = self.bookkeeping.uses().iter().map(load).sum();
        let mut failed_allocations = load(&header.failed);
        let mut high_water = header.high_water.load(Ordering::Relaxed);
        for index in 0..header.shards {
            let Some(shard) = self.bookkeeping.shard(index) else { break };
            frames_free += load(&shard.free).count_ones();
            allocations += self.bookkeeping.shard_uses(index).iter().map(load).sum::<u64>();
            failed_allocations += load(&shard.failed);
            high_water += shard.peak.load(Ordering::Relaxed);
        }
        let frames_outstanding = frames_total.saturating_sub(frames_free);
        PoolStats {
            frames_total,
            frames_free,
            frames_outstanding,
            high_water,
            allocations,
            frees: allocations.saturating_sub(u64::from(frames_outstanding)),
            failed_allocations,
            bad_frees: BadFreeCounts {
                foreign: header.bad_foreign.load(Ordering::Relaxed),
                interior: header.bad_interior.load(Ordering::Relaxed),
                double: header.bad_double.load(Ordering::Relaxed),
            },
        }
    }

    /// Bytes of each frame a consumer may use (the framing's `FrameSize`).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn frame_size(&self) -> usize {
        self.header().frame_size
    }

    /// Distance between consecutive frames: the frame size rounded up to the alignment.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn stride(&self) -> usize {
        self.header().stride
    }

    /// The alignment mask every frame address honours.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn align_mask(&self) -> usize {
        self.header().align_mask
    }

    /// Whether frames may be touched at DISPATCH_LEVEL (false for paged memory).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn usable_at_dispatch(&self) -> bool {
        self.header().memory.usable_at_dispatch()
    }

    /// The device (logical) address of a frame of this pool, when its memory has one (a
    /// [`DeviceRegion`]); `None` for system memory, or for an address that is not a frame of
    /// this pool.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn device_address(&self, frame: core::ptr::NonNull<u8>) -> Option<u64> {
        self.index_of(frame.as_ptr() as usize).ok()?;
        self.header().memory.device_address(frame)
    }

    /// The frame memory backend.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn memory(&self) -> &M {
        &self.header().memory
    }

    /// Marks every frame free, as if every frame out had been given back: for an owner that
    /// knows its consumers are gone (a retired allocator being released, see
    /// [`release_retired_allocators`](crate::release_retired_allocators)), so that dropping the
    /// pool then is not reported as a deletion with frames out.
    ///
    /// # Safety
    ///
    /// No one uses a frame this pool handed out, nor will give one back.
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL.
    pub unsafe fn reclaim_outstanding(&self) {
        let header = self.header();
        for (index, word) in self.bookkeeping.free_map().iter().enumerate() {
            // ORDERING: Release, as a free: the frames' last writes happen before any reuse.
            word.store(bookkeeping::free_bits(header.frames, index, 6), Ordering::Release);
        }
        for index in 0..header.shards {
            if let Some(shard) = self.bookkeeping.shard(index) {
                let bits = bookkeeping::free_bits(header.frames, index, header.shift);
                // ORDERING: as above.
                shard.free.store(bits, Ordering::Release);
            }
        }
        header.summary.store(summary_bits(header.words), Ordering::Release);
    }

    /// How many shards the free map is spread over: 1 for one free map every processor shares
    /// (module documentation).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn shards(&self) -> usize {
        self.header().shards.max(1)
    }

    /// Bytes of bookkeeping: the fixed header plus the per-frame free bit and use counter, and
    /// for a pool spread over shards, a cache line or more per shard.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn bookkeeping_bytes(&self) -> usize {
        self.header().bookkeeping_bytes
    }
}

/// Times an allocation tries a word's bits before it gives up on the word: each failed
/// `fetch_and` means another CPU took the bit it tried, so this bounds the work under
/// contention (no unbounded retry loop) at the price of a rare spurious failure when other CPUs
/// win 64 races running.
const WORD_ATTEMPTS: u32 = 64;

/// Counts one more use of a frame just taken.
#[inline]
fn count_use(uses: &AtomicU64) {
    // ORDERING: only the frame's owner writes its counter; the free map's Acquire/Release
    // orders successive owners, so a plain increment is exact.
    uses.store(uses.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// Most shards a pool is spread over: a failed allocation looks at each once, so this bounds
/// its cost on a machine of many processors (which then share shards, processor `p` at home
/// in shard `p % shards`).
pub const MAX_SHARDS: usize = 16;

/// How a pool's frames are spread over shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Spread {
    /// Shards, or 0 for a dense free map.
    shards: usize,
    /// Frames per shard, as a power of two (6 for a dense free map).
    shift: u32,
}

impl Spread {
    /// The spread of a pool of `frames` frames on a machine of `processors` processors: a
    /// shard per processor (at most [`MAX_SHARDS`], at most one per frame), each holding the
    /// same power of two of frames, at most 64, the last shard the rest; dense when that makes
    /// one shard, or when a shard would need more than 64 frames.
    fn for_pool(frames: u32, processors: u32) -> Self {
        const DENSE: Spread = Spread { shards: 0, shift: 6 };
        let wanted = (processors as usize).min(MAX_SHARDS).min(frames as usize);
        if wanted < 2 {
            return DENSE;
        }
        let per_shard = (frames as usize).div_ceil(wanted).next_power_of_two();
        if per_shard > 64 {
            return DENSE;
        }
        let shards = (frames as usize).div_ceil(per_shard);
        if shards < 2 {
            return DENSE;
        }
        Self { shards, shift: per_shard.trailing_zeros() }
    }

    /// Home shard of processor index `p` (modulo 64): `p % shards`.
    fn home(self) -> [u8; 64] {
        let mut home = [0u8; 64];
        if self.shards != 0 {
            for (processor, shard) in home.iter_mut().enumerate() {
                // NO-OVERFLOW: shards <= MAX_SHARDS < 256.
                #[expect(clippy::cast_possible_truncation, reason = "see NO-OVERFLOW above")]
                let index = (processor % self.shards) as u8;
                *shard = index;
            }
        }
        home
    }
}

/// Takes the lowest free frame of one word of the free map: its bit, or `None`.
#[inline]
fn take_from(word: &AtomicU64) -> Option<u32> {
    // ORDERING: Relaxed is enough to choose a candidate; the `fetch_and` decides.
    let mut current = word.load(Ordering::Relaxed);
    for _ in 0..WORD_ATTEMPTS {
        if current == 0 {
            return None;
        }
        let bit = current.trailing_zeros();
        let mask = 1u64 << bit;
        // Only the one bit of the result is looked at, so this is a single `lock btr` on x86-64
        // rather than a compare-exchange loop.
        // ORDERING: Acquire pairs with the Release (or SeqCst) `fetch_or` of the free, so the
        // previous owner's writes happen before our use of the frame.
        if word.fetch_and(!mask, Ordering::Acquire) & mask != 0 {
            return Some(bit);
        }
        // Another CPU took it; look again.
        current = word.load(Ordering::Relaxed);
    }
    None
}

/// Takes the lowest free frame of `words`, the first of which is word `first` of the map.
#[inline]
fn take_in(words: &[AtomicU64], first: usize) -> Option<u32> {
    words.iter().enumerate().find_map(|(i, word)| {
        let bit = take_from(word)?;
        #[expect(clippy::cast_possible_truncation, reason = "a frame index, below 2^32")]
        let frame = (first + i) as u32 * 64 + bit;
        Some(frame)
    })
}

/// The summary of a free map of `words` words with every frame free: a bit per group.
const fn summary_bits(words: usize) -> u64 {
    let group = words.div_ceil(64);
    if group == 0 {
        return 0;
    }
    let groups = words.div_ceil(group);
    if groups >= 64 { u64::MAX } else { (1u64 << groups) - 1 }
}

impl<M: FrameMemory> Drop for FramePool<M> {
    /// Releases every frame, outstanding or not, then the bookkeeping (its own drop, which runs
    /// after this one); reports frames still outstanding (module documentation). PASSIVE_LEVEL.
    fn drop(&mut self) {
        let outstanding = self.stats().frames_outstanding;
        let header = self.header();
        if outstanding > 0 {
            crate::system::debug_print(
                ks_sys::DPFLTR_ERROR_LEVEL,
                format_args!(
                    "pool {:p} (owner {:#x}) deleted with {outstanding} of {} frames outstanding; \
                     their memory is released now",
                    self.bookkeeping.address(),
                    header.owner,
                    header.frames,
                ),
            );
            crate::system::debug_break();
        }
        // SAFETY: the type invariant: the block came from `memory.allocate(block_bytes)` and is
        // given back only here.
        unsafe { header.memory.free(header.block, header.block_bytes) };
    }
}
