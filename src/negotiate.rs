//! Framing negotiation: from the extended framings of two connected pins, the allocator plan.
//!
//! Microsoft's algorithm (in the KS proxy) is not public; this is the project's, specification
//! section 7.5, step by step:
//!
//! 1. **Items.** Every pair of an upstream and a downstream framing item whose memory types
//!    match (equal, either one GUID_NULL, or `KSMEMORY_TYPE_SYSTEM` against a kernel pool type,
//!    which is system memory) and whose bus types match (equal or either GUID_NULL) is a
//!    candidate. Candidates are tried in order of the sum of their `MemoryTypeWeight`s (higher
//!    first), then of the sum of their item indices (item 0 first), then the more specific memory
//!    type, then the GUID: an order that does not depend on which side is which.
//! 2. **Owner.** The item with `MUST_ALLOCATE` and without `PREFERENCES_ONLY` owns the allocator;
//!    two such items conflict. Otherwise a `MUST_ALLOCATE` preference decides, and without one
//!    the downstream pin (the sink of the connection) owns it.
//! 3. **Frame size.** The smallest size both optimal ranges allow (both steppings honoured, a
//!    stepping of 0 counting as 1, within both physical ranges); failing that, the smallest both
//!    physical ranges allow. The upstream pin's output compression maps its sizes to
//!    `ceil(size * numerator / denominator) + margin`; with `INSIST_ON_FRAMESIZE_RATIO` on either
//!    item the chosen size must be exactly the image of a legal upstream size. If no size fits
//!    and a side has `PREFERENCES_ONLY`, the other side's smallest optimal size is taken (the
//!    larger of the two when both are preferences only); otherwise the ranges conflict.
//! 4. **Frames**: the larger request (0 = no preference).
//! 5. **Alignment**: the OR of the masks, i.e. the stricter alignment.
//! 6. **Pool type and options**: `PagedPool` for kernel paged memory, `NonPagedPool` otherwise;
//!    `SYSTEM_MEMORY` for system memory; `COMPATIBLE` (frames pass through in place) when both
//!    items are in-place modifiers and neither insists on frame integrity.
//! 7. The legacy framing is validated against the allocator-request rules before it is returned.
//!
//! Every choice is recorded as a [`Reason`] in the [`AllocatorPlan`].

use core::fmt;

use crate::framing::{
    Compression, Finding, Framing, FramingExView, FramingItem, FramingRange, ITEM_LEN, ItemFlags,
    LegacyRole, MemoryType, OptionFlags, PoolType,
};

/// Which pin of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The pin data comes from (its output pin).
    Upstream,
    /// The pin data goes to (its input pin, the sink of the connection).
    Downstream,
}

impl Side {
    /// `"upstream"` or `"downstream"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Downstream => "downstream",
        }
    }

    /// The other side.
    #[must_use]
    pub const fn other(self) -> Self {
        match self {
            Self::Upstream => Self::Downstream,
            Self::Downstream => Self::Upstream,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why one side owns the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ownership {
    /// Its item has `MUST_ALLOCATE` as a requirement.
    MustAllocate,
    /// Its item has `MUST_ALLOCATE` as a preference (`PREFERENCES_ONLY`), the other none.
    PrefersToAllocate,
    /// Neither must allocate: the downstream pin owns it by default.
    Default,
}

/// Which ranges decided the frame size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SizeBasis {
    /// Both optimal ranges (and both physical ranges) contain it.
    Optimal,
    /// The optimal ranges have nothing in common; both physical ranges contain it.
    Physical,
    /// No size fits both; the side that only has preferences gives way.
    PreferencesOnly {
        /// The side whose size was taken.
        taken_from: Side,
    },
    /// No size fits both and both have only preferences: the larger request wins.
    LargerPreference,
}

/// One decision of a negotiation, with what it rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The framing items chosen.
    Items {
        /// Upstream item index.
        upstream: usize,
        /// Downstream item index.
        downstream: usize,
        /// The memory type both accept.
        memory_type: MemoryType,
        /// Sum of the two `MemoryTypeWeight`s.
        weight: u64,
        /// Candidate pairs considered.
        candidates: usize,
    },
    /// The owner of the allocator.
    Owner {
        /// The owning side.
        owner: Side,
        /// Why.
        why: Ownership,
    },
    /// The frame size.
    FrameSize {
        /// The size.
        size: u32,
        /// Which ranges decided it.
        basis: SizeBasis,
        /// The upstream range used (optimal or physical, per `basis`).
        upstream: FramingRange,
        /// The downstream range used.
        downstream: FramingRange,
        /// The upstream output compression, if not the identity.
        compression: Option<Compression>,
        /// Whether the compression ratio had to be kept exactly.
        insist: bool,
    },
    /// The frame count.
    Frames {
        /// The count (0 = no cap).
        frames: u32,
        /// Upstream request.
        upstream: u32,
        /// Downstream request.
        downstream: u32,
    },
    /// The alignment mask.
    Alignment {
        /// The mask.
        mask: u32,
        /// Upstream mask.
        upstream: u32,
        /// Downstream mask.
        downstream: u32,
    },
    /// The pool type.
    PoolType {
        /// The pool type.
        pool_type: PoolType,
        /// The memory type it serves.
        memory_type: MemoryType,
    },
    /// The create options.
    Options {
        /// The options.
        options: OptionFlags,
        /// Upstream item is an in-place modifier.
        upstream_in_place: bool,
        /// Downstream item is an in-place modifier.
        downstream_in_place: bool,
        /// An item insists on frame integrity.
        frame_integrity: bool,
    },
}

fn write_range(f: &mut fmt::Formatter<'_>, range: FramingRange) -> fmt::Result {
    write!(f, "{}..={} stepping {}", range.min_frame_size, range.max_frame_size, range.stepping)
}

fn write_frame_size(
    f: &mut fmt::Formatter<'_>,
    size: u32,
    basis: SizeBasis,
    (upstream, downstream): (FramingRange, FramingRange),
    compression: Option<Compression>,
    insist: bool,
) -> fmt::Result {
    write!(f, "frame size {size}: ")?;
    match basis {
        SizeBasis::Optimal => f.write_str("the smallest size both optimal ranges allow")?,
        SizeBasis::Physical => {
            f.write_str(
                "the optimal ranges have nothing in common; the smallest size both physical ranges allow, from the larger optimal minimum on",
            )?;
        }
        SizeBasis::PreferencesOnly { taken_from } => write!(
            f,
            "no size fits both; the {} side only has preferences, so the {taken_from} side's optimal size is used",
            taken_from.other()
        )?,
        SizeBasis::LargerPreference => {
            f.write_str(
                "no size fits both and both have only preferences; the larger optimal size is used",
            )?;
        }
    }
    f.write_str(" (upstream ")?;
    write_range(f, upstream)?;
    f.write_str(", downstream ")?;
    write_range(f, downstream)?;
    f.write_str(")")?;
    if let Some(c) = compression {
        write!(
            f,
            "; upstream sizes scaled by its output compression {}/{} + {}{}",
            c.numerator,
            c.denominator,
            c.constant_margin,
            if insist { ", kept exactly (INSIST_ON_FRAMESIZE_RATIO)" } else { "" }
        )?;
    }
    Ok(())
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Items { upstream, downstream, memory_type, weight, candidates } => write!(
                f,
                "items: upstream item {upstream} with downstream item {downstream}, memory {memory_type} \
                 (weight {weight}; {candidates} compatible pair{})",
                if candidates == 1 { "" } else { "s" }
            ),
            Self::Owner { owner, why } => match why {
                Ownership::MustAllocate => {
                    write!(f, "owner: {owner}: its item requires MUST_ALLOCATE")
                }
                Ownership::PrefersToAllocate => {
                    write!(
                        f,
                        "owner: {owner}: its item prefers MUST_ALLOCATE and the other has no such wish"
                    )
                }
                Ownership::Default => write!(
                    f,
                    "owner: downstream: neither pin must allocate, so the sink of the connection owns the allocator"
                ),
            },
            Self::FrameSize { size, basis, upstream, downstream, compression, insist } => {
                write_frame_size(f, size, basis, (upstream, downstream), compression, insist)
            }
            Self::Frames { frames, upstream, downstream } => {
                if frames == 0 {
                    write!(f, "frames 0 (no cap): neither pin asks for a count")
                } else {
                    write!(
                        f,
                        "frames {frames}: the larger request (upstream {upstream}, downstream {downstream}; 0 = no preference)"
                    )
                }
            }
            Self::Alignment { mask, upstream, downstream } => write!(
                f,
                "alignment {mask:#x} ({}-byte): the stricter of upstream {upstream:#x} and downstream {downstream:#x}",
                u64::from(mask) + 1
            ),
            Self::PoolType { pool_type, memory_type } => {
                write!(
                    f,
                    "pool type {pool_type}: memory {memory_type} is {}",
                    if pool_type.is_paged() { "paged" } else { "non-paged" }
                )
            }
            Self::Options { options, upstream_in_place, downstream_in_place, frame_integrity } => {
                write!(f, "options {:#x}:", options.bits())?;
                if options.contains(OptionFlags::SYSTEM_MEMORY) {
                    f.write_str(" SYSTEM_MEMORY (frames are system memory);")?;
                } else {
                    f.write_str(" no SYSTEM_MEMORY (device memory);")?;
                }
                if options.contains(OptionFlags::COMPATIBLE) {
                    f.write_str(" COMPATIBLE: both pins modify in place, frames pass through")
                } else if frame_integrity {
                    f.write_str(" not COMPATIBLE: a pin insists on FRAME_INTEGRITY")
                } else {
                    f.write_str(match (upstream_in_place, downstream_in_place) {
                        (false, false) => " not COMPATIBLE: neither pin is an in-place modifier",
                        (false, true) => {
                            " not COMPATIBLE: the upstream pin is not an in-place modifier"
                        }
                        _ => " not COMPATIBLE: the downstream pin is not an in-place modifier",
                    })
                }
            }
        }
    }
}

/// Why two framings cannot be reconciled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NegotiationError {
    /// A framing has a validation error.
    InvalidFraming {
        /// Whose framing.
        side: Side,
        /// The first error.
        finding: Finding,
    },
    /// No pair of items agrees on memory and bus type.
    MemoryTypesDisjoint,
    /// Both chosen items require `MUST_ALLOCATE`.
    BothMustAllocate {
        /// Upstream item.
        upstream_item: usize,
        /// Downstream item.
        downstream_item: usize,
    },
    /// The ranges have no size in common and neither side has only preferences.
    RangesDisjoint {
        /// Upstream optimal range.
        upstream: FramingRange,
        /// Downstream optimal range.
        downstream: FramingRange,
    },
    /// The compression ratio must be kept exactly and no legal upstream size maps into the
    /// downstream range.
    CompressionImpossible {
        /// The upstream compression.
        compression: Compression,
        /// The downstream range.
        downstream: FramingRange,
    },
    /// Neither pin states a frame size (every range is "don't care").
    NoFrameSize,
    /// An item asks for pitched 2-D buffers (`KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED`), which this
    /// negotiation does not handle.
    Pitched2dBuffers,
    /// The resulting framing breaks the allocator-request rules (e.g. an alignment beyond a
    /// page).
    InvalidPlan(Finding),
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidFraming { side, finding } => {
                write!(f, "the {side} framing is invalid: {finding}")
            }
            Self::MemoryTypesDisjoint => {
                f.write_str("memory types disjoint: no pair of items agrees on memory and bus type")
            }
            Self::BothMustAllocate { upstream_item, downstream_item } => write!(
                f,
                "both sides must allocate: upstream item {upstream_item} and downstream item {downstream_item} require MUST_ALLOCATE"
            ),
            Self::RangesDisjoint { upstream, downstream } => {
                f.write_str("ranges disjoint and neither side prefers-only: upstream ")?;
                write_range(f, upstream)?;
                f.write_str(", downstream ")?;
                write_range(f, downstream)
            }
            Self::CompressionImpossible { compression: c, downstream } => {
                write!(
                    f,
                    "compression impossible: no upstream size scaled by {}/{} + {} lands in the downstream range ",
                    c.numerator, c.denominator, c.constant_margin
                )?;
                write_range(f, downstream)
            }
            Self::NoFrameSize => {
                f.write_str("no frame size: every range of both framings is \"don't care\"")
            }
            Self::Pitched2dBuffers => f.write_str(
                "pitched 2-D buffers (KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED) are not negotiated",
            ),
            Self::InvalidPlan(finding) => {
                write!(f, "the negotiated framing is not a valid allocator request: {finding}")
            }
        }
    }
}

impl core::error::Error for NegotiationError {}

/// Most reasons a plan records.
const MAX_REASONS: usize = 8;

/// The outcome of a negotiation: the legacy framing to create the allocator with, who owns it,
/// the items chosen, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AllocatorPlan {
    /// The 24-byte framing for the allocator create request (`InitializeAllocator` receives it).
    pub framing: Framing,
    /// The side whose pin owns the allocator.
    pub owner: Side,
    /// The upstream item chosen.
    pub upstream_item: usize,
    /// The downstream item chosen.
    pub downstream_item: usize,
    /// The memory type of the frames.
    pub memory_type: MemoryType,
    /// Whether frames pass through in place (`KSALLOCATOR_OPTIONF_COMPATIBLE`).
    pub in_place: bool,
    reasons: [Option<Reason>; MAX_REASONS],
}

impl AllocatorPlan {
    /// The decisions, in the order they were taken.
    pub fn reasons(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter().flatten()
    }
}

/// The sizes a range allows: `min + k * step <= max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grid {
    min: u64,
    max: u64,
    step: u64,
}

impl Grid {
    fn of(range: FramingRange) -> Self {
        Self {
            min: u64::from(range.min_frame_size),
            max: u64::from(range.max_frame_size),
            step: u64::from(range.effective_stepping()),
        }
    }

    fn contains(self, size: u64) -> bool {
        size >= self.min && size <= self.max && (size - self.min).is_multiple_of(self.step)
    }

    fn is_dont_care(self) -> bool {
        self.min == 0 && self.max == u64::from(u32::MAX)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The inverse of `a` modulo `m` (`a` and `m` coprime, `m >= 1`).
#[allow(clippy::many_single_char_names, reason = "the extended Euclidean algorithm's usual names")]
fn inverse(a: u64, m: u64) -> u64 {
    let (mut old_r, mut r) = (i128::from(a % m), i128::from(m));
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    let m = i128::from(m);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "reduced modulo m <= u64::MAX"
    )]
    let inverse = (((old_s % m) + m) % m) as u64;
    inverse
}

/// The smallest size at least `floor` that both grids allow (exact, by the Chinese remainder
/// theorem), or `None`.
#[allow(clippy::many_single_char_names, reason = "the Chinese remainder theorem's usual names")]
fn smallest_common(a: Grid, b: Grid, floor: u64) -> Option<u64> {
    let lo = a.min.max(b.min).max(floor);
    let hi = a.max.min(b.max);
    if lo > hi {
        return None;
    }
    let g = gcd(a.step, b.step);
    let diff = i128::from(b.min) - i128::from(a.min);
    if diff % i128::from(g) != 0 {
        return None;
    }
    // x = a.min + a.step * t with a.step * t ≡ diff (mod b.step).
    let (p, q) = (a.step / g, b.step / g);
    let rhs = (diff / i128::from(g)).rem_euclid(i128::from(q));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "reduced modulo q")]
    let t = ((rhs as u128 * u128::from(inverse(p, q))) % u128::from(q)) as u64;
    let lcm = u128::from(a.step) * u128::from(q);
    let x0 = u128::from(a.min) + u128::from(a.step) * u128::from(t);
    // The smallest x ≡ x0 (mod lcm) with x >= lo.
    let lo = u128::from(lo);
    let x = if x0 >= lo { x0 - (x0 - lo) / lcm * lcm } else { x0 + (lo - x0).div_ceil(lcm) * lcm };
    let x = u64::try_from(x).ok()?;
    (x <= hi).then_some(x)
}

/// The legal sizes of the upstream range on the connection, through the output compression.
#[derive(Clone, Copy, Debug)]
struct Upstream {
    grid: Grid,
    compression: Compression,
    insist: bool,
}

/// Most upstream sizes tried when a compression ratio must be kept exactly.
const RATIO_SEARCH: u64 = 1 << 16;

impl Upstream {
    fn identity(self) -> bool {
        self.compression.is_identity()
    }

    /// The connection size for an upstream size; sizes beyond 32 bits saturate.
    fn scale(self, size: u64) -> Option<u64> {
        let size = u32::try_from(size).ok()?;
        Some(self.compression.apply(size).map_or(u64::from(u32::MAX), u64::from))
    }

    /// The smallest connection size at least `floor` within `bounds` that this side allows and
    /// `downstream` allows.
    fn smallest_common(self, downstream: Grid, bounds: (u64, u64), floor: u64) -> Option<u64> {
        let floor = floor.max(bounds.0);
        let clamp = |size: u64| (size <= bounds.1).then_some(size);
        if self.identity() {
            return smallest_common(self.grid, downstream, floor).and_then(clamp);
        }
        if !self.insist {
            let (lo, hi) = (self.scale(self.grid.min)?, self.scale(self.grid.max)?);
            let mapped = Grid { min: lo, max: hi, step: 1 };
            return smallest_common(mapped, downstream, floor).and_then(clamp);
        }
        // Kept exactly: walk the upstream sizes whose image can reach `floor`.
        let c = self.compression;
        let need = floor.saturating_sub(u64::from(c.constant_margin));
        let start = (need.saturating_mul(u64::from(c.denominator)) / u64::from(c.numerator.max(1)))
            .max(self.grid.min);
        let steps_in = (start - self.grid.min) / self.grid.step;
        let mut size = self.grid.min + steps_in * self.grid.step;
        for _ in 0..RATIO_SEARCH {
            if size > self.grid.max {
                return None;
            }
            let image = self.scale(size)?;
            if image > bounds.1 || image > downstream.max {
                return None;
            }
            if image >= floor && downstream.contains(image) {
                return Some(image);
            }
            size += self.grid.step;
        }
        None
    }

    /// Bounds of the connection sizes this range allows.
    fn bounds(self) -> Option<(u64, u64)> {
        Some((self.scale(self.grid.min)?, self.scale(self.grid.max)?))
    }
}

/// The memory type both sides accept, or `None`.
fn common_memory(upstream: MemoryType, downstream: MemoryType) -> Option<MemoryType> {
    let kernel = |m: MemoryType| m == MemoryType::KERNEL_PAGED || m == MemoryType::KERNEL_NONPAGED;
    if upstream == downstream
        || downstream.is_wildcard()
        || (downstream == MemoryType::SYSTEM && kernel(upstream))
    {
        Some(upstream)
    } else if upstream.is_wildcard() || (upstream == MemoryType::SYSTEM && kernel(downstream)) {
        Some(downstream)
    } else {
        None
    }
}

struct Candidate {
    upstream: usize,
    downstream: usize,
    u: FramingItem,
    d: FramingItem,
    memory_type: MemoryType,
    weight: u64,
}

/// An item's 88 bytes, to order otherwise equal candidates by content.
fn item_bytes(item: &FramingItem) -> [u8; ITEM_LEN] {
    let mut bytes = [0; ITEM_LEN];
    // The array is exactly one item long, so the write cannot fall short.
    let _ = item.encode(&mut crate::framing::codec_writer(&mut bytes));
    bytes
}

impl Candidate {
    /// Sort key: heavier first, lower index sum first, specific memory first, then the GUID,
    /// then the two items' contents as an unordered pair. None of it depends on which side is
    /// which.
    fn key(&self) -> (core::cmp::Reverse<u64>, usize, bool, u128, [[u8; ITEM_LEN]; 2]) {
        let (u, d) = (item_bytes(&self.u), item_bytes(&self.d));
        (
            core::cmp::Reverse(self.weight),
            self.upstream + self.downstream,
            self.memory_type.is_wildcard(),
            self.memory_type.0.to_u128(),
            if u <= d { [u, d] } else { [d, u] },
        )
    }
}

fn hard(flags: ItemFlags, flag: ItemFlags) -> bool {
    flags.contains(flag) && !flags.contains(ItemFlags::PREFERENCES_ONLY)
}

fn owner(c: &Candidate) -> Result<(Side, Ownership), NegotiationError> {
    let must = ItemFlags::MUST_ALLOCATE;
    match (hard(c.u.flags, must), hard(c.d.flags, must)) {
        (true, true) => Err(NegotiationError::BothMustAllocate {
            upstream_item: c.upstream,
            downstream_item: c.downstream,
        }),
        (true, false) => Ok((Side::Upstream, Ownership::MustAllocate)),
        (false, true) => Ok((Side::Downstream, Ownership::MustAllocate)),
        (false, false) => match (c.u.flags.contains(must), c.d.flags.contains(must)) {
            (true, false) => Ok((Side::Upstream, Ownership::PrefersToAllocate)),
            (false, true) => Ok((Side::Downstream, Ownership::PrefersToAllocate)),
            _ => Ok((Side::Downstream, Ownership::Default)),
        },
    }
}

/// Step 3 for one candidate.
fn frame_size(c: &Candidate, compression: Compression) -> Result<Reason, NegotiationError> {
    let insist = c.u.flags.contains(ItemFlags::INSIST_ON_FRAMESIZE_RATIO)
        || c.d.flags.contains(ItemFlags::INSIST_ON_FRAMESIZE_RATIO);
    let up = |range| Upstream { grid: Grid::of(range), compression, insist };
    let (u_opt, u_phys) = (up(c.u.framing_range.range), up(c.u.physical_range));
    let (d_opt, d_phys) = (Grid::of(c.d.framing_range.range), Grid::of(c.d.physical_range));
    let scaled = (!compression.is_identity()).then_some(compression);
    let reason = |size: u64, basis, upstream, downstream| Reason::FrameSize {
        size: u32::try_from(size).unwrap_or(u32::MAX),
        basis,
        upstream,
        downstream,
        compression: scaled,
        insist,
    };
    if u_opt.grid.is_dont_care()
        && d_opt.is_dont_care()
        && u_phys.grid.is_dont_care()
        && d_phys.is_dont_care()
    {
        return Err(NegotiationError::NoFrameSize);
    }
    // Both physical ranges bound every choice.
    let physical_bounds = u_phys.bounds().map(|(lo, hi)| (lo.max(d_phys.min), hi.min(d_phys.max)));
    if let Some(bounds) = physical_bounds.filter(|(lo, hi)| lo <= hi) {
        let optimal_informative = !(u_opt.grid.is_dont_care() && d_opt.is_dont_care());
        if optimal_informative && let Some(size) = u_opt.smallest_common(d_opt, bounds, 1) {
            return Ok(reason(
                size,
                SizeBasis::Optimal,
                c.u.framing_range.range,
                c.d.framing_range.range,
            ));
        }
        // The optimal ranges miss each other: a frame at least as large as the larger optimal
        // minimum serves both sides best; only if the physical ranges allow none, the smallest.
        let larger_minimum = u_opt.scale(u_opt.grid.min).unwrap_or(0).max(d_opt.min).max(1);
        let physical = u_phys
            .smallest_common(d_phys, bounds, larger_minimum)
            .or_else(|| u_phys.smallest_common(d_phys, bounds, 1));
        if let Some(size) = physical {
            return Ok(reason(size, SizeBasis::Physical, c.u.physical_range, c.d.physical_range));
        }
    }
    if insist && !compression.is_identity() {
        return Err(NegotiationError::CompressionImpossible {
            compression,
            downstream: c.d.framing_range.range,
        });
    }
    // Nothing fits both: a side with only preferences gives way.
    let prefers = |item: &FramingItem| item.flags.contains(ItemFlags::PREFERENCES_ONLY);
    let own_smallest = |grid: Grid| -> u64 {
        if grid.min > 0 { grid.min } else { grid.step.min(grid.max).max(1) }
    };
    let up_size = u_opt.scale(own_smallest(u_opt.grid)).unwrap_or(u64::from(u32::MAX));
    let down_size = own_smallest(d_opt);
    let (size, basis) = match (prefers(&c.u), prefers(&c.d)) {
        (false, false) => {
            return Err(NegotiationError::RangesDisjoint {
                upstream: c.u.framing_range.range,
                downstream: c.d.framing_range.range,
            });
        }
        (true, false) => (down_size, SizeBasis::PreferencesOnly { taken_from: Side::Downstream }),
        (false, true) => (up_size, SizeBasis::PreferencesOnly { taken_from: Side::Upstream }),
        (true, true) => (up_size.max(down_size), SizeBasis::LargerPreference),
    };
    Ok(reason(size, basis, c.u.framing_range.range, c.d.framing_range.range))
}

/// Steps 2 to 7 for one candidate.
fn plan(
    c: &Candidate,
    compression: Compression,
    candidates: usize,
) -> Result<AllocatorPlan, NegotiationError> {
    if c.u.flags.contains(ItemFlags::BUFFER_2D_REQUIRED)
        || c.d.flags.contains(ItemFlags::BUFFER_2D_REQUIRED)
    {
        return Err(NegotiationError::Pitched2dBuffers);
    }
    let (owner, why) = owner(c)?;
    let size_reason = frame_size(c, compression)?;
    let Reason::FrameSize { size, .. } = size_reason else {
        return Err(NegotiationError::NoFrameSize);
    };
    let frames = c.u.frames.max(c.d.frames);
    let mask = c.u.file_alignment | c.d.file_alignment;
    let pool_type = if c.memory_type == MemoryType::KERNEL_PAGED {
        PoolType::PAGED
    } else {
        PoolType::NON_PAGED
    };
    let system = c.memory_type.is_system() || c.memory_type.is_wildcard();
    let in_place_u = c.u.flags.contains(ItemFlags::INPLACE_MODIFIER);
    let in_place_d = c.d.flags.contains(ItemFlags::INPLACE_MODIFIER);
    let integrity = c.u.flags.contains(ItemFlags::FRAME_INTEGRITY)
        || c.d.flags.contains(ItemFlags::FRAME_INTEGRITY);
    let in_place = in_place_u && in_place_d && !integrity;
    let mut options = OptionFlags::empty();
    options.set(OptionFlags::SYSTEM_MEMORY, system);
    options.set(OptionFlags::COMPATIBLE, in_place);
    let framing = Framing::request(options, pool_type, frames, size, mask);
    framing.check(LegacyRole::Request).map_err(|error| match error {
        crate::framing::FramingError::Invalid(finding) => NegotiationError::InvalidPlan(finding),
        crate::framing::FramingError::Parse(_) => NegotiationError::NoFrameSize,
    })?;
    let reasons = [
        Some(Reason::Items {
            upstream: c.upstream,
            downstream: c.downstream,
            memory_type: c.memory_type,
            weight: c.weight,
            candidates,
        }),
        Some(Reason::Owner { owner, why }),
        Some(size_reason),
        Some(Reason::Frames { frames, upstream: c.u.frames, downstream: c.d.frames }),
        Some(Reason::Alignment {
            mask,
            upstream: c.u.file_alignment,
            downstream: c.d.file_alignment,
        }),
        Some(Reason::PoolType { pool_type, memory_type: c.memory_type }),
        Some(Reason::Options {
            options,
            upstream_in_place: in_place_u,
            downstream_in_place: in_place_d,
            frame_integrity: integrity,
        }),
        None,
    ];
    Ok(AllocatorPlan {
        framing,
        owner,
        upstream_item: c.upstream,
        downstream_item: c.downstream,
        memory_type: c.memory_type,
        in_place,
        reasons,
    })
}

/// Most item pairs considered (the framings of real pins have one to a few items each).
const MAX_CANDIDATES: usize = 64;

/// Negotiates the allocator for a connection from the upstream (output) pin's framing to the
/// downstream (input) pin's framing. Pure computation; any IRQL.
///
/// # Errors
///
/// A [`NegotiationError`] naming the conflict: an invalid framing, memory types disjoint, both
/// sides must allocate, ranges disjoint and neither side prefers-only, compression impossible,
/// or no frame size stated. When several item pairs are candidates, the error is the best
/// pair's.
pub fn negotiate(
    upstream: &FramingExView<'_>,
    downstream: &FramingExView<'_>,
) -> Result<AllocatorPlan, NegotiationError> {
    upstream.check().map_err(|e| invalid(Side::Upstream, e))?;
    downstream.check().map_err(|e| invalid(Side::Downstream, e))?;
    let mut candidates: [Option<Candidate>; MAX_CANDIDATES] = [const { None }; MAX_CANDIDATES];
    let mut count = 0;
    for (ui, u) in upstream.items().enumerate() {
        for (di, d) in downstream.items().enumerate() {
            let bus_ok =
                u.bus_type == d.bus_type || u.bus_type.is_wildcard() || d.bus_type.is_wildcard();
            let Some(memory_type) = common_memory(u.memory_type, d.memory_type).filter(|_| bus_ok)
            else {
                continue;
            };
            let weight = u64::from(u.memory_type_weight) + u64::from(d.memory_type_weight);
            if let Some(slot) = candidates.get_mut(count) {
                *slot = Some(Candidate { upstream: ui, downstream: di, u, d, memory_type, weight });
                count += 1;
            }
        }
    }
    let candidates = candidates.get_mut(..count).unwrap_or_default();
    candidates.sort_unstable_by_key(|c| c.as_ref().map(Candidate::key));
    let compression = upstream.header().output_compression;
    let mut first_error = None;
    for candidate in candidates.iter().flatten() {
        match plan(candidate, compression, count) {
            Ok(plan) => return Ok(plan),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(NegotiationError::MemoryTypesDisjoint))
}

fn invalid(side: Side, error: crate::framing::FramingError) -> NegotiationError {
    match error {
        crate::framing::FramingError::Invalid(finding) => {
            NegotiationError::InvalidFraming { side, finding }
        }
        crate::framing::FramingError::Parse(_) => NegotiationError::NoFrameSize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(min: u64, max: u64, step: u64) -> Grid {
        Grid { min, max, step }
    }

    #[test]
    fn smallest_common_is_exact() {
        assert_eq!(smallest_common(grid(0, 100, 1), grid(10, 20, 1), 1), Some(10));
        assert_eq!(smallest_common(grid(0, 100, 4), grid(0, 100, 6), 1), Some(12));
        assert_eq!(smallest_common(grid(1, 100, 4), grid(3, 100, 6), 1), Some(9));
        assert_eq!(
            smallest_common(grid(0, 100, 4), grid(1, 100, 4), 1),
            None,
            "parities never meet"
        );
        assert_eq!(smallest_common(grid(0, 10, 4), grid(0, 10, 6), 1), None, "12 is past the end");
        assert_eq!(
            smallest_common(grid(0, u64::from(u32::MAX), 1), grid(0, u64::from(u32::MAX), 1), 1),
            Some(1)
        );
        // Brute force over small grids.
        for (a0, a1, a2) in [(0, 60, 3), (5, 50, 7), (2, 90, 10), (0, 30, 1)] {
            for (b0, b1, b2) in [(1, 70, 2), (4, 80, 9), (0, 64, 8), (7, 7, 1)] {
                let (a, b) = (grid(a0, a1, a2), grid(b0, b1, b2));
                let brute = (1..=100).find(|x| a.contains(*x) && b.contains(*x));
                assert_eq!(smallest_common(a, b, 1), brute, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn memory_types_meet_on_wildcards_and_system_memory() {
        let (s, np, p, d) = (
            MemoryType::SYSTEM,
            MemoryType::KERNEL_NONPAGED,
            MemoryType::KERNEL_PAGED,
            MemoryType::DONT_CARE,
        );
        assert_eq!(common_memory(np, d), Some(np));
        assert_eq!(common_memory(d, p), Some(p));
        assert_eq!(common_memory(s, np), Some(np));
        assert_eq!(common_memory(p, s), Some(p));
        assert_eq!(common_memory(np, p), None);
        assert_eq!(common_memory(MemoryType::USER, s), None);
    }
}
