//! Frame pools: fixed-size, aligned frames handed out and taken back in O(1), lock-free, at
//! IRQL <= DISPATCH_LEVEL, with every bad free caught.
//!
//! # Design
//!
//! A pool's frames live in at most [`MAX_REGIONS`] contiguous *regions* of frame memory; a pool
//! created with a frame count (what AVStream negotiates) has exactly one, allocated at creation.
//! Frame `i` of a region is at `base + i * stride`, where `stride` is the frame size rounded up
//! to the alignment. Nothing is ever stored in frame memory: the whole frame belongs to the
//! consumer.
//!
//! Which frames are free is one bit each in a *free map* of 64-bit words.
//!
//! - **Allocate** loads a word, picks its lowest set bit and clears it with one atomic
//!   `fetch_and`; if another CPU took that bit first, it retries with the value the `fetch_and`
//!   returned. Lowest-first keeps frames cache-warm (the recycled frame is the one just freed
//!   when the pool is mostly idle) and makes the high-water mark cheap to keep.
//! - **Free** maps the address to its frame index with one range check per region and an exact
//!   division (no divide instruction, see `divide.rs`), then sets the bit with one atomic
//!   `fetch_or`. The bit's previous value says whether the frame was already free: a double free
//!   is detected inside the same atomic that frees, so two CPUs freeing the same frame cannot
//!   both succeed. A pointer outside every region, or inside a frame but not at its start, is
//!   rejected before anything is touched.
//!
//! There is no ABA problem to solve: a bit has no identity beyond its index and no link to
//! follow, unlike a Treiber stack, which needs a tag or a 128-bit CAS.
//!
//! The counters a hot path needs are kept off shared cache lines: each frame has a use counter
//! that only the frame's current owner writes (a plain load and store, ordered by the free
//! map's acquire/release), so allocations = the sum of the use counters, outstanding =
//! total - free bits, frees = allocations - outstanding. Failed allocations and bad frees are
//! counted on their own (rare) paths.
//!
//! # Frame count and growth
//!
//! A framing with `Frames > 0` gets exactly that many frames, allocated at creation; Allocate
//! and Free never allocate. `Frames == 0` means "no cap": the bookkeeping for
//! [`PoolConfig::ceiling`] frames is reserved at creation and the pool starts with
//! [`INITIAL_UNCAPPED`] frames; when they are all out, Allocate adds a region (doubling the
//! frame count, at most up to the ceiling) if the frame memory is usable at DISPATCH_LEVEL.
//! Only one CPU grows at a time; another that finds the pool empty meanwhile gets `None` at
//! once rather than waiting. Over paged memory an uncapped pool allocates the whole ceiling at
//! creation instead, since it can never grow at DISPATCH_LEVEL.
//!
//! # Bad frees
//!
//! A bad free (foreign pointer, interior pointer, double free) leaves the pool untouched, is
//! counted by kind in [`PoolStats::bad_frees`], returned as [`BadFree`], and reported with
//! `DbgPrintEx` (`DPFLTR_IHVSTREAMING_ID`, error level). Release builds report the first
//! [`REPORTED_BAD_FREES`] of a pool and then only count, so a consumer stuck in a loop cannot
//! flood the debugger from a DPC; debug builds report every one.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod divide;
mod memory;

use core::{alloc::Layout, fmt, mem::ManuallyDrop, ptr::NonNull};

use divide::ExactDivider;
pub use memory::{FRAME_TAG, FrameMemory, SystemMemory};

use crate::{
    Error, Result,
    framing::{Framing, LegacyRole},
    sync::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    system::{PoolKind, SystemPool},
};

/// Pool tag of a pool's bookkeeping (header and free map): `KsAh` in a debugger.
pub const BOOKKEEPING_TAG: u32 = u32::from_le_bytes(*b"KsAh");
/// Most regions of frame memory one pool has (growth doubles the frame count each time).
pub const MAX_REGIONS: usize = 16;
/// Most frames one pool manages.
pub const MAX_FRAMES: u32 = 1 << 16;
/// Frames an uncapped pool (framing `Frames == 0`) starts with.
pub const INITIAL_UNCAPPED: u32 = 2;
/// Bad frees a pool reports to the debugger in release builds before it only counts them.
pub const REPORTED_BAD_FREES: u32 = 8;
/// Largest region of frame memory: offsets within a region must fit 32 bits.
const MAX_REGION_BYTES: usize = u32::MAX as usize;

/// Settings of a pool that the framing does not carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most frames an uncapped pool (framing `Frames == 0`) may grow to.
    pub ceiling: u32,
    /// The object the pool serves (the `KSPIN` for a pin allocator), for diagnostics only.
    pub owner: usize,
}

impl PoolConfig {
    /// A ceiling of 32 frames, no owner.
    pub const DEFAULT: Self = Self { ceiling: 32, owner: 0 };

    /// The same configuration for `owner`.
    #[must_use]
    pub const fn with_owner(self, owner: usize) -> Self {
        Self { owner, ..self }
    }

    /// The same configuration with another ceiling.
    #[must_use]
    pub const fn with_ceiling(self, ceiling: u32) -> Self {
        Self { ceiling, ..self }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A free that did not free anything; the pool is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadFree {
    /// The address is not inside any frame of this pool.
    Foreign {
        /// The address.
        address: usize,
    },
    /// The address is inside a frame of this pool but not at its start.
    Interior {
        /// The frame.
        frame: u32,
        /// Bytes past the frame's start.
        offset: usize,
    },
    /// The frame is already free.
    Double {
        /// The frame.
        frame: u32,
    },
}

impl fmt::Display for BadFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Foreign { address } => {
                write!(f, "free of {address:#x}, which is not a frame of this pool")
            }
            Self::Interior { frame, offset } => {
                write!(f, "free of an address {offset} bytes into frame {frame} (not its start)")
            }
            Self::Double { frame } => write!(f, "double free of frame {frame}"),
        }
    }
}

/// Bad frees by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BadFreeCounts {
    /// Pointers that are not frames of the pool.
    pub foreign: u64,
    /// Pointers into the middle of a frame.
    pub interior: u64,
    /// Frames freed while already free.
    pub double: u64,
}

impl BadFreeCounts {
    /// All bad frees.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.foreign + self.interior + self.double
    }
}

/// A snapshot of a pool's counters, read without locks.
///
/// Each value is read atomically; under concurrent Allocate and Free the values may come from
/// slightly different instants (a frame can be counted as allocated but not yet as
/// outstanding). At rest they are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Most frames the pool can have: the framing's `Frames`, or the ceiling if uncapped.
    pub capacity: u32,
    /// Frames the pool has (allocated frame memory).
    pub frames_total: u32,
    /// Frames free now.
    pub frames_free: u32,
    /// Frames handed out now.
    pub frames_outstanding: u32,
    /// Most frames outstanding at once so far (the highest frame handed out + 1; frames go
    /// lowest-first, so this is the peak).
    pub high_water: u32,
    /// Successful allocations.
    pub allocations: u64,
    /// Successful frees.
    pub frees: u64,
    /// Allocations that found no frame.
    pub failed_allocations: u64,
    /// Frees that were rejected.
    pub bad_frees: BadFreeCounts,
}

/// One contiguous block of frames.
struct Region {
    /// Address of the first frame (aligned).
    base: AtomicUsize,
    /// What the frame memory returned (to give back).
    block: AtomicUsize,
    /// Size of the block.
    block_bytes: AtomicUsize,
    /// Index of the first frame.
    first: AtomicU32,
    /// Frames in the region.
    count: AtomicU32,
    /// `count * stride`: the bytes the frames span.
    span: AtomicUsize,
}

impl Region {
    fn empty() -> Self {
        Self {
            base: AtomicUsize::new(0),
            block: AtomicUsize::new(0),
            block_bytes: AtomicUsize::new(0),
            first: AtomicU32::new(0),
            count: AtomicU32::new(0),
            span: AtomicUsize::new(0),
        }
    }
}

/// The pool's bookkeeping, at the start of one non-paged block followed by the free map
/// (`words` `AtomicU64`) and the per-frame use counters (`capacity` `AtomicU64`).
///
/// `repr(C)` keeps what every Allocate and Free reads (stride, divider, array offsets, region 0)
/// together at the start, in the first two cache lines.
#[repr(C)]
struct Header<M> {
    stride: usize,
    divider: ExactDivider,
    bitmap_offset: usize,
    uses_offset: usize,
    words: usize,
    capacity: u32,
    high_water: AtomicU32,
    regions: [Region; MAX_REGIONS],
    memory: ManuallyDrop<M>,
    block_bytes: usize,
    owner: usize,
    frame_size: usize,
    align_mask: usize,
    /// `Frames` of the framing; 0 = uncapped.
    cap: u32,
    region_count: AtomicU32,
    frames_total: AtomicU32,
    growing: AtomicBool,
    failed: AtomicU64,
    bad_foreign: AtomicU64,
    bad_interior: AtomicU64,
    bad_double: AtomicU64,
    reports_left: AtomicU32,
}

/// A pool of frames of one size and alignment, for one allocator instance.
///
/// # Invariants
///
/// `header` points at a live, initialised `Header` at the start of a block of
/// `header.block_bytes` bytes of non-paged system pool with [`BOOKKEEPING_TAG`], holding the free map
/// and use counters at the recorded offsets; the block and every region are owned by this
/// handle and released exactly once, by `Drop`. Bit `i` of the free map is set exactly when
/// frame `i` exists and is free. Region `r < region_count` describes frames
/// `first .. first + count` at `base + (i - first) * stride`, each `stride` bytes, aligned to
/// `align_mask + 1`, inside the region's block.
pub struct FramePool<M: FrameMemory = SystemMemory> {
    header: NonNull<Header<M>>,
}

// SAFETY: the pool only shares its header through atomics and the frame memory through `M`,
// which is `Send + Sync` by `FrameMemory`'s bound; the handle owns everything it points to.
unsafe impl<M: FrameMemory> Send for FramePool<M> {}
// SAFETY: every method takes `&self` and works through atomics (see the module documentation).
unsafe impl<M: FrameMemory> Sync for FramePool<M> {}

/// The trailing array at `offset` bytes from the header. Computing the pointer is safe; using it
/// relies on the type invariant of [`FramePool`].
fn array<M>(header: NonNull<Header<M>>, offset: usize) -> *mut AtomicU64 {
    header.as_ptr().wrapping_byte_add(offset).cast()
}

/// Rounds `value` up to a multiple of `mask + 1` (a power of two), or `None` on overflow.
const fn align_up(value: usize, mask: usize) -> Option<usize> {
    match value.checked_add(mask) {
        Some(sum) => Some(sum & !mask),
        None => None,
    }
}

impl<M: FrameMemory> FramePool<M> {
    /// Builds a pool from a validated allocator framing (what `InitializeAllocator` receives).
    /// PASSIVE_LEVEL.
    ///
    /// Takes `framing.frame_size` bytes per frame aligned to `framing.file_alignment + 1`,
    /// `framing.frames` frames (or, for 0, up to `config.ceiling`), from `memory`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`]: the framing fails the allocator-request rules
    ///   (specification 7.4 (B), lenient on option bits), or asks for more than [`MAX_FRAMES`]
    ///   frames or more than 4 GiB in one region;
    /// - [`Error::INSUFFICIENT_RESOURCES`]: the bookkeeping or the frame memory could not be
    ///   allocated. Nothing is leaked.
    pub fn new(framing: &Framing, memory: M, config: PoolConfig) -> Result<Self> {
        const {
            assert!(
                align_of::<Header<M>>() <= 16,
                "the header must fit the pool's 16-byte alignment"
            );
        }
        framing.check(LegacyRole::RequestLenient).map_err(|_| Error::INVALID_PARAMETER)?;
        let frame_size = framing.frame_size as usize;
        let align_mask = framing.file_alignment as usize;
        // A stride of at least 2 keeps the exact divider's magic in 64 bits; a 1-byte frame
        // simply gets a spare byte.
        let stride = align_up(frame_size, align_mask).ok_or(Error::INVALID_PARAMETER)?.max(2);
        let divider = ExactDivider::new(stride as u64).ok_or(Error::INVALID_PARAMETER)?;
        let cap = framing.frames;
        let capacity = if cap == 0 { config.ceiling } else { cap };
        if capacity == 0 || capacity > MAX_FRAMES {
            return Err(Error::INVALID_PARAMETER);
        }
        if (cap as usize).checked_mul(stride).is_none_or(|span| span > MAX_REGION_BYTES) {
            return Err(Error::INVALID_PARAMETER);
        }
        let words = (capacity as usize).div_ceil(64);
        let (layout, bitmap_offset, uses_offset) = Self::layout(words, capacity as usize)?;

        let system = SystemPool::resolve();
        let block = system
            .allocate(PoolKind::NonPaged, layout.size(), BOOKKEEPING_TAG)
            .ok_or(Error::INSUFFICIENT_RESOURCES)?;
        let header = block.cast::<Header<M>>();
        // SAFETY: `block` is a fresh, zeroed, non-paged allocation of `layout.size()` bytes,
        // aligned to 16 (pool alignment) which suffices for `Header<M>` (asserted above); the
        // trailing arrays lie within it at offsets `Layout::extend` computed.
        unsafe {
            header.write(Header {
                memory: ManuallyDrop::new(memory),
                block_bytes: layout.size(),
                bitmap_offset,
                uses_offset,
                words,
                owner: config.owner,
                frame_size,
                stride,
                align_mask,
                cap,
                capacity,
                divider,
                regions: core::array::from_fn(|_| Region::empty()),
                region_count: AtomicU32::new(0),
                frames_total: AtomicU32::new(0),
                growing: AtomicBool::new(false),
                high_water: AtomicU32::new(0),
                failed: AtomicU64::new(0),
                bad_foreign: AtomicU64::new(0),
                bad_interior: AtomicU64::new(0),
                bad_double: AtomicU64::new(0),
                reports_left: AtomicU32::new(REPORTED_BAD_FREES),
            });
        }
        let (bitmap, uses) = (array(header, bitmap_offset), array(header, uses_offset));
        for index in 0..words {
            // SAFETY: word `index` lies inside the block (layout above) and is written once.
            unsafe { bitmap.wrapping_add(index).write(AtomicU64::new(0)) };
        }
        for index in 0..capacity as usize {
            // SAFETY: counter `index` lies inside the block (layout above) and is written once.
            unsafe { uses.wrapping_add(index).write(AtomicU64::new(0)) };
        }
        // INVARIANT: the header and arrays are initialised; no region yet, all bits clear.
        let pool = Self { header };

        let initial = if cap != 0 {
            cap
        } else if pool.header().memory.usable_at_dispatch() {
            INITIAL_UNCAPPED.min(capacity)
        } else {
            capacity
        };
        // On failure `pool` is dropped, which releases the bookkeeping.
        pool.add_region(initial, true).ok_or(Error::INSUFFICIENT_RESOURCES)?;
        Ok(pool)
    }

    /// Layout of the bookkeeping block: header, free map, use counters.
    fn layout(words: usize, capacity: usize) -> Result<(Layout, usize, usize)> {
        let header = Layout::new::<Header<M>>();
        let bitmap = Layout::array::<AtomicU64>(words).map_err(|_| Error::INVALID_PARAMETER)?;
        let uses = Layout::array::<AtomicU64>(capacity).map_err(|_| Error::INVALID_PARAMETER)?;
        let (layout, bitmap_offset) =
            header.extend(bitmap).map_err(|_| Error::INVALID_PARAMETER)?;
        let (layout, uses_offset) = layout.extend(uses).map_err(|_| Error::INVALID_PARAMETER)?;
        Ok((layout.pad_to_align(), bitmap_offset, uses_offset))
    }

    fn header(&self) -> &Header<M> {
        // SAFETY: the type invariant: `header` is live and initialised while `self` exists.
        unsafe { self.header.as_ref() }
    }

    fn free_map(&self) -> &[AtomicU64] {
        let header = self.header();
        // SAFETY: the type invariant: `words` initialised `AtomicU64` at `bitmap_offset`.
        unsafe {
            core::slice::from_raw_parts(array(self.header, header.bitmap_offset), header.words)
        }
    }

    fn uses(&self) -> &[AtomicU64] {
        let header = self.header();
        // SAFETY: the type invariant: `capacity` initialised `AtomicU64` at `uses_offset`.
        unsafe {
            core::slice::from_raw_parts(
                array(self.header, header.uses_offset),
                header.capacity as usize,
            )
        }
    }

    /// Allocates frame memory for `count` more frames and publishes it. With `all_free`, every
    /// new frame is marked free and `Some(u32::MAX)` returned; otherwise the first new frame is
    /// kept for the caller and its index returned. PASSIVE_LEVEL at creation; at run time only
    /// under the `growing` flag and over memory usable at DISPATCH_LEVEL.
    fn add_region(&self, count: u32, all_free: bool) -> Option<u32> {
        let header = self.header();
        let index = header.region_count.load(Ordering::Relaxed) as usize;
        let region = header.regions.get(index)?;
        let first = header.frames_total.load(Ordering::Relaxed);
        if count == 0 || first.checked_add(count)? > header.capacity {
            return None;
        }
        let span = (count as usize).checked_mul(header.stride)?;
        if span > MAX_REGION_BYTES {
            return None;
        }
        let padding =
            if header.memory.alignment(span) > header.align_mask { 0 } else { header.align_mask };
        let block_bytes = span.checked_add(padding)?;
        let block = header.memory.allocate(block_bytes)?;
        let Some(base) = align_up(block.as_ptr() as usize, header.align_mask) else {
            // SAFETY: `block` came from `allocate(block_bytes)` just now and is freed once.
            unsafe { header.memory.free(block, block_bytes) };
            return None;
        };
        // ORDERING: plain stores; published by the Release store of `region_count` below and by
        // the Release `fetch_or`s that free the new frames.
        region.base.store(base, Ordering::Relaxed);
        region.block.store(block.as_ptr() as usize, Ordering::Relaxed);
        region.block_bytes.store(block_bytes, Ordering::Relaxed);
        region.first.store(first, Ordering::Relaxed);
        region.count.store(count, Ordering::Relaxed);
        region.span.store(span, Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation, reason = "index < MAX_REGIONS")]
        // ORDERING: Release pairs with the Acquire loads in `frame_address` and `index_of`.
        header.region_count.store(index as u32 + 1, Ordering::Release);
        header.frames_total.store(first + count, Ordering::Release);
        let keep = if all_free { None } else { Some(first) };
        let free_map = self.free_map();
        for frame in first..first + count {
            if Some(frame) == keep {
                continue;
            }
            let (word, bit) = (frame as usize / 64, frame % 64);
            if let Some(word) = free_map.get(word) {
                // INVARIANT: the frame now exists and is free.
                // ORDERING: Release pairs with the Acquire `fetch_and` in `take`.
                word.fetch_or(1 << bit, Ordering::Release);
            }
        }
        Some(keep.unwrap_or(u32::MAX))
    }

    /// Takes the lowest free frame, or `None`.
    #[inline]
    fn take(&self) -> Option<u32> {
        for (word_index, word) in self.free_map().iter().enumerate() {
            // ORDERING: Relaxed is enough to choose a candidate; the `fetch_and` decides.
            let mut current = word.load(Ordering::Relaxed);
            while current != 0 {
                let bit = current.trailing_zeros();
                let mask = 1u64 << bit;
                // Only the one bit of the result is looked at, so this is a single `lock btr`
                // on x86-64 rather than a compare-exchange loop.
                // ORDERING: Acquire pairs with the Release `fetch_or` of the free (or of the
                // region's publication), so the previous owner's writes and the region fields
                // happen before our use of the frame.
                if word.fetch_and(!mask, Ordering::Acquire) & mask != 0 {
                    #[allow(
                        clippy::cast_possible_truncation,
                        reason = "word_index < MAX_FRAMES / 64"
                    )]
                    return Some(word_index as u32 * 64 + bit);
                }
                // Another CPU took it; look again.
                current = word.load(Ordering::Relaxed);
            }
        }
        None
    }

    /// Grows an uncapped pool by one region and returns a frame of it, or `None` (capped pool,
    /// ceiling reached, memory not usable at DISPATCH_LEVEL, another CPU growing, or no memory).
    #[cold]
    fn grow(&self) -> Option<u32> {
        let header = self.header();
        if header.cap != 0 || !header.memory.usable_at_dispatch() {
            return None;
        }
        // ORDERING: Acquire pairs with the Release below so one grower sees the previous one's
        // region; failing to get the flag means someone else is growing: return at once.
        if header
            .growing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // A frame may have been freed, or a region added, since `take` failed.
        let frame = self.take().or_else(|| {
            let total = header.frames_total.load(Ordering::Relaxed);
            let count = total.max(1).min(header.capacity.saturating_sub(total));
            self.add_region(count, false)
        });
        // ORDERING: Release publishes the region fields to the next grower.
        header.growing.store(false, Ordering::Release);
        frame
    }

    /// The address of frame `index`.
    #[inline]
    fn frame_address(&self, index: u32) -> Option<usize> {
        let header = self.header();
        // Region 0 (frames 0..count) exists from creation on and never changes: the common
        // case, and the only one for a capped pool.
        let [first, ..] = &header.regions;
        // ORDERING: region 0 was written before the pool was shared.
        if index < first.count.load(Ordering::Relaxed) {
            return Some(first.base.load(Ordering::Relaxed) + index as usize * header.stride);
        }
        self.frame_address_in_grown_regions(index)
    }

    #[cold]
    fn frame_address_in_grown_regions(&self, index: u32) -> Option<usize> {
        let header = self.header();
        // ORDERING: Acquire pairs with the Release in `add_region`.
        let regions = header.region_count.load(Ordering::Acquire) as usize;
        header.regions.iter().take(regions).skip(1).find_map(|region| {
            let offset = index.checked_sub(region.first.load(Ordering::Relaxed))?;
            if offset >= region.count.load(Ordering::Relaxed) {
                return None;
            }
            Some(region.base.load(Ordering::Relaxed) + offset as usize * header.stride)
        })
    }

    /// The frame `address` starts, or why it starts none.
    #[inline]
    fn index_of(&self, address: usize) -> core::result::Result<u32, BadFree> {
        let header = self.header();
        let [first, ..] = &header.regions;
        // ORDERING: region 0 was written before the pool was shared.
        if let Some(result) = self.index_in(first, address) {
            return result;
        }
        self.index_in_grown_regions(address)
    }

    #[cold]
    fn index_in_grown_regions(&self, address: usize) -> core::result::Result<u32, BadFree> {
        // ORDERING: Acquire pairs with the Release in `add_region`.
        let regions = self.header().region_count.load(Ordering::Acquire) as usize;
        self.header()
            .regions
            .iter()
            .take(regions)
            .skip(1)
            .find_map(|region| self.index_in(region, address))
            .unwrap_or(Err(BadFree::Foreign { address }))
    }

    /// The frame of `region` that `address` starts, why it starts none although it points into
    /// the region, or `None` if it points outside the region.
    #[inline]
    fn index_in(
        &self,
        region: &Region,
        address: usize,
    ) -> Option<core::result::Result<u32, BadFree>> {
        let header = self.header();
        let offset = address.wrapping_sub(region.base.load(Ordering::Relaxed));
        if offset >= region.span.load(Ordering::Relaxed) {
            return None;
        }
        // NO-OVERFLOW: offset < span = count * stride <= MAX_REGION_BYTES = u32::MAX.
        #[allow(clippy::cast_possible_truncation, reason = "see NO-OVERFLOW above")]
        let (quotient, exact) = header.divider.divide(offset as u32);
        let frame = region.first.load(Ordering::Relaxed) + quotient;
        if !exact {
            return Some(Err(BadFree::Interior {
                frame,
                offset: offset - quotient as usize * header.stride,
            }));
        }
        Some(Ok(frame))
    }

    /// Hands out a frame, or `None` at once when none is free (and the pool cannot grow).
    /// IRQL <= DISPATCH_LEVEL (frames over paged memory must not be touched there); lock-free;
    /// callable from several CPUs at once.
    #[inline]
    #[must_use = "a frame that is not used should be freed"]
    pub fn allocate(&self) -> Option<NonNull<u8>> {
        let header = self.header();
        let Some(frame) = self.take().or_else(|| self.grow()) else {
            header.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if let Some(uses) = self.uses().get(frame as usize) {
            // ORDERING: only the frame's owner writes its counter; the free map's
            // Acquire/Release orders successive owners, so a plain increment is exact.
            uses.store(uses.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        if frame >= header.high_water.load(Ordering::Relaxed) {
            header.high_water.fetch_max(frame + 1, Ordering::Relaxed);
        }
        // INVARIANT: a set bit always names an existing frame, so this is `Some`.
        let address = self.frame_address(frame)?;
        NonNull::new(address as *mut u8)
    }

    /// Takes a frame back. IRQL <= DISPATCH_LEVEL; lock-free; callable from several CPUs at
    /// once.
    ///
    /// # Errors
    ///
    /// A [`BadFree`] if `frame` is not the start of a frame of this pool that is handed out; the
    /// pool is then unchanged, and the bad free is counted and reported (module documentation).
    #[inline]
    pub fn free(&self, frame: NonNull<u8>) -> core::result::Result<(), BadFree> {
        let result = self.index_of(frame.as_ptr() as usize).and_then(|index| {
            let (word, mask) = (index as usize / 64, 1u64 << (index % 64));
            let word = self
                .free_map()
                .get(word)
                .ok_or(BadFree::Foreign { address: frame.as_ptr() as usize })?;
            // ORDERING: Release pairs with the Acquire `fetch_and` of the next allocation, so
            // the consumer's writes to the frame happen before its next owner's use.
            let previous = word.fetch_or(mask, Ordering::Release);
            if previous & mask != 0 { Err(BadFree::Double { frame: index }) } else { Ok(()) }
        });
        if let Err(bad) = result {
            self.bad_free(bad);
        }
        result
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
                    self.header, header.owner
                ),
            );
        }
    }

    /// The counters, read without locks. Any IRQL.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let header = self.header();
        let frames_total = header.frames_total.load(Ordering::Relaxed);
        let frames_free: u32 =
            self.free_map().iter().map(|word| word.load(Ordering::Relaxed).count_ones()).sum();
        let frames_outstanding = frames_total.saturating_sub(frames_free);
        let allocations: u64 = self.uses().iter().map(|uses| uses.load(Ordering::Relaxed)).sum();
        PoolStats {
            capacity: header.capacity,
            frames_total,
            frames_free,
            frames_outstanding,
            high_water: header.high_water.load(Ordering::Relaxed),
            allocations,
            frees: allocations.saturating_sub(u64::from(frames_outstanding)),
            failed_allocations: header.failed.load(Ordering::Relaxed),
            bad_frees: BadFreeCounts {
                foreign: header.bad_foreign.load(Ordering::Relaxed),
                interior: header.bad_interior.load(Ordering::Relaxed),
                double: header.bad_double.load(Ordering::Relaxed),
            },
        }
    }

    /// Bytes of each frame a consumer may use (the framing's `FrameSize`).
    #[must_use]
    pub fn frame_size(&self) -> usize {
        self.header().frame_size
    }

    /// Distance between consecutive frames: the frame size rounded up to the alignment.
    #[must_use]
    pub fn stride(&self) -> usize {
        self.header().stride
    }

    /// The alignment mask every frame address honours.
    #[must_use]
    pub fn align_mask(&self) -> usize {
        self.header().align_mask
    }

    /// Whether frames may be touched at DISPATCH_LEVEL (false for paged memory).
    #[must_use]
    pub fn usable_at_dispatch(&self) -> bool {
        self.header().memory.usable_at_dispatch()
    }

    /// The frame memory backend.
    #[must_use]
    pub fn memory(&self) -> &M {
        &self.header().memory
    }

    /// Bytes of bookkeeping: the fixed header plus the per-frame free bit and use counter.
    #[must_use]
    pub fn bookkeeping_bytes(&self) -> usize {
        self.header().block_bytes
    }
}

impl<M: FrameMemory> Drop for FramePool<M> {
    /// Releases every region, frames still handed out included, then the bookkeeping.
    /// PASSIVE_LEVEL.
    fn drop(&mut self) {
        let header = self.header();
        let regions = header.region_count.load(Ordering::Acquire) as usize;
        for region in header.regions.iter().take(regions) {
            let bytes = region.block_bytes.load(Ordering::Relaxed);
            if let Some(block) = NonNull::new(region.block.load(Ordering::Relaxed) as *mut u8) {
                // SAFETY: the type invariant: the region's block came from `memory.allocate`
                // with these bytes and is given back only here.
                unsafe { header.memory.free(block, bytes) };
            }
        }
        let words = header.words;
        let capacity = header.capacity as usize;
        let (bitmap_offset, uses_offset) = (header.bitmap_offset, header.uses_offset);
        let (bitmap, uses) = (array(self.header, bitmap_offset), array(self.header, uses_offset));
        for index in 0..words {
            // SAFETY: initialised in `new`, dropped once here (a no-op for core atomics).
            unsafe { core::ptr::drop_in_place(bitmap.wrapping_add(index)) };
        }
        for index in 0..capacity {
            // SAFETY: as above.
            unsafe { core::ptr::drop_in_place(uses.wrapping_add(index)) };
        }
        // SAFETY: the type invariant: the header is live; nothing else refers to it any more
        // (`self` is being dropped).
        let header = unsafe { &mut *self.header.as_ptr() };
        // SAFETY: `memory` is dropped exactly here, after its last use above.
        unsafe { ManuallyDrop::drop(&mut header.memory) };
        // SAFETY: the header is initialised and dropped once (its `memory` field is a
        // ManuallyDrop, already dropped above, and is not dropped again).
        unsafe { core::ptr::drop_in_place(self.header.as_ptr()) };
        // SAFETY: the type invariant: the bookkeeping block came from the system pool with this tag
        // and is freed only here.
        unsafe { SystemPool::free(self.header.cast(), BOOKKEEPING_TAG) };
    }
}
