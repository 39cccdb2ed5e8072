//! Framing negotiation: from the extended framings of two connected pins, the allocator plan.
//!
//! Microsoft's algorithm (in the KS proxy) is not public; this is the project's, specification
//! section 7.5, step by step:
//!
//! 1. **Items.** Every pair of an upstream and a downstream framing item whose memory types
//!    match (equal, either one GUID_NULL, or `KSMEMORY_TYPE_SYSTEM` against a kernel pool type,
//!    which is system memory) and whose bus types match (equal or either GUID_NULL) is a
//!    candidate, and every candidate is considered (up to [`MAX_PAIRS`] item pairs in all; larger
//!    framings are refused with [`NegotiationError::TooManyPairs`]). The plan is the best
//!    candidate's that succeeds, in order of the sum of their `MemoryTypeWeight`s (higher
//!    first), then of the sum of their item indices (item 0 first), then the more specific memory
//!    type, then the GUID, then the items' contents: an order that does not depend on which side
//!    is which, nor on the order of items with equal keys.
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
//!    The owner's physical maximum is hard even with `PREFERENCES_ONLY` (it gives way on what it
//!    accepts, not on what it can allocate): an owner by default or by preference that cannot
//!    hold the frames passes the allocator to the other pin if that one can
//!    ([`Ownership::OnlyOneHolds`]); otherwise the negotiation fails with
//!    [`NegotiationError::OwnerCannotHold`]. A plan's create request is never one the owner's
//!    allocator would refuse for its size ([`AllocatorRequest::new`] holds a request to the same
//!    maximum).
//! 4. **Frames**: the larger request (0 = no preference).
//! 5. **Alignment**: the OR of the masks, i.e. the stricter alignment.
//! 6. **Pool type and options**: `PagedPool` for kernel paged memory, `NonPagedPool` otherwise;
//!    `SYSTEM_MEMORY` for system memory; `COMPATIBLE` (frames pass through in place) when both
//!    items are in-place modifiers and neither insists on frame integrity.
//! 7. The legacy framing is validated against the allocator-request rules (7.4 (B)) before it
//!    is returned; [`AllocatorPlan::request`] holds it against a pin and a budget to build the
//!    library's own allocator from it.
//!
//! Every choice is recorded as a [`Reason`] in the [`AllocatorPlan`].
//!
//! A user-mode client that reads with its own buffers has no allocator and no framing of its
//! own: [`plan_for_user_client`] says which of a pin's items its buffers satisfy, and why the
//! items before it do not.

mod client;
mod pipes;
mod reason;
mod size;

pub use client::{
    CLIENT_DEFAULT_FRAMES, ClientError, ClientPlan, ClientRefusal, plan_for_user_client,
};
pub use pipes::{
    ChainFilter, ChainPin, ChainPlan, MAX_CHAIN, MAX_COMBINATIONS, MAX_PIPE_PINS, Pipe, PipeError,
    PipeReason, plan_chain,
};
pub use reason::{NegotiationError, Ownership, Reason, Side, SizeBasis};

use crate::{
    AllocatorRequest, PinConstraints, PoolConfig,
    framing::{
        Compression, Framing, FramingExView, FramingItem, ITEM_LEN, ItemFlags, LegacyRole,
        MemoryType, OptionFlags, PoolType,
    },
    request::RequestError,
};
use size::{Grid, Upstream};

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
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn reasons(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter().flatten()
    }

    /// The plan's framing as a request for the library's own allocator: held against the pin
    /// that will own it and the budget, with the pool's shape resolved ([`AllocatorRequest::new`]).
    /// A driver that negotiates between its own pins builds its [`FramePool`](crate::FramePool)
    /// from this. (The negotiation itself does not apply the library's limits: the allocator it
    /// plans for may be another driver's.)
    ///
    /// # Errors
    ///
    /// The [`RequestError`] of the first check the plan's framing fails.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn request(
        &self,
        pin: &PinConstraints,
        budget: &PoolConfig,
    ) -> Result<AllocatorRequest, RequestError> {
        AllocatorRequest::new(&self.framing, pin, budget)
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

type CandidateKey =
    (core::cmp::Reverse<u64>, usize, bool, u128, [[u8; ITEM_LEN]; 2], (usize, usize), usize);

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
    /// Sort key, smallest first: heavier first, lower index sum first, specific memory first,
    /// then the GUID, then the two items' contents as an unordered pair; none of it depends on
    /// which side is which. Candidates equal in all of that have equal items, so their plans
    /// differ only in the item indices; the smaller pair of indices decides.
    fn key(&self) -> CandidateKey {
        let (u, d) = (item_bytes(&self.u), item_bytes(&self.d));
        let indices = (self.upstream.min(self.downstream), self.upstream.max(self.downstream));
        (
            core::cmp::Reverse(self.weight),
            self.upstream + self.downstream,
            self.memory_type.is_wildcard(),
            self.memory_type.0.to_u128(),
            if u <= d { [u, d] } else { [d, u] },
            indices,
            self.upstream,
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

/// The owner allocates the frames, so they must fit its physical maximum, whatever it prefers:
/// the rule `AllocatorRequest` holds the create request to on the owner's pin. An owner by
/// default or by preference that cannot hold them gives way to the other pin if that one can.
fn holder(
    c: &Candidate,
    owner: Side,
    why: Ownership,
    size: u32,
) -> Result<(Side, Ownership), NegotiationError> {
    let physical = |side| match side {
        Side::Upstream => c.u.physical_range,
        Side::Downstream => c.d.physical_range,
    };
    let own = physical(owner);
    if size <= own.max_frame_size {
        return Ok((owner, why));
    }
    let other = match owner {
        Side::Upstream => Side::Downstream,
        Side::Downstream => Side::Upstream,
    };
    if why != Ownership::MustAllocate && size <= physical(other).max_frame_size {
        return Ok((other, Ownership::OnlyOneHolds { size, other_maximum: own.max_frame_size }));
    }
    Err(NegotiationError::OwnerCannotHold { owner, size, physical: own })
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
        // An optimal size must also be one the hardware takes: on both physical grids, whose
        // steppings an optimal range need not share.
        let u_best = u_opt.grid.intersect(u_phys.grid).map(|grid| Upstream { grid, ..u_opt });
        let d_best = d_opt.intersect(d_phys);
        let optimal = u_best.zip(d_best).and_then(|(u, d)| u.smallest_common(d, bounds, 1));
        if optimal_informative && let Some(size) = optimal {
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
    let (owner, why) = holder(c, owner, why, size)?;
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
    framing.check(LegacyRole::Request).map_err(NegotiationError::InvalidPlan)?;
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

/// Most item pairs a negotiation considers: `CountItems` of one side times that of the other.
/// Real pins declare one to a few items; the bound keeps a negotiation of two huge (untrusted)
/// framings from running for hours.
pub const MAX_PAIRS: usize = 1 << 16;

/// Negotiates the allocator for a connection from the upstream (output) pin's framing to the
/// downstream (input) pin's framing.
///
/// ```
/// use ks_allocator::{
///     framing::{FramingEx, FramingItem, FramingRange, ItemFlags, MemoryType},
///     negotiate::{Reason, Side, negotiate},
/// };
///
/// // A capture pin that produces two 153600-byte frames, and a sink that takes sizes from 4 KiB
/// // to 1 MiB, 8-byte aligned, and must allocate.
/// let capture = FramingEx::simple(
///     MemoryType::KERNEL_NONPAGED,
///     ItemFlags::SYSTEM_MEMORY,
///     2,
///     ks_sys::FILE_BYTE_ALIGNMENT,
///     153_600,
///     153_600,
/// );
/// let sink = FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
///     .with_flags(ItemFlags::MUST_ALLOCATE)
///     .with_alignment(ks_sys::FILE_QUAD_ALIGNMENT)
///     .with_optimal_range(FramingRange::new(4096, 1 << 20))]);
///
/// let plan = negotiate(&capture.view(), &sink.view())?;
/// assert_eq!(plan.owner, Side::Downstream);
/// let framing = plan.framing;
/// assert_eq!((framing.frames, framing.frame_size, framing.file_alignment), (2, 153_600, 7));
/// let owner = plan.reasons().find(|reason| matches!(reason, Reason::Owner { .. }));
/// assert_eq!(
///     owner.map(ToString::to_string).as_deref(),
///     Some("owner: downstream: its item requires MUST_ALLOCATE")
/// );
/// # Ok::<(), ks_allocator::NegotiationError>(())
/// ```
///
/// # Errors
///
/// A [`NegotiationError`] naming the conflict: an invalid framing, memory types disjoint, both
/// sides must allocate, ranges disjoint and neither side prefers-only, compression impossible,
/// no frame size stated, or more than [`MAX_PAIRS`] item pairs. When several item pairs are
/// candidates and none gives a plan, the error is the best pair's.
///
/// # IRQL
///
/// Any (pure computation, no allocation).
pub fn negotiate(
    upstream: &FramingExView<'_>,
    downstream: &FramingExView<'_>,
) -> Result<AllocatorPlan, NegotiationError> {
    let invalid = |side| move |finding| NegotiationError::InvalidFraming { side, finding };
    upstream.check().map_err(invalid(Side::Upstream))?;
    downstream.check().map_err(invalid(Side::Downstream))?;
    let (up_count, down_count) = (upstream.count(), downstream.count());
    if up_count.checked_mul(down_count).is_none_or(|pairs| pairs > MAX_PAIRS) {
        return Err(NegotiationError::TooManyPairs {
            upstream_items: up_count,
            downstream_items: down_count,
        });
    }
    let candidates = || {
        upstream.items().enumerate().flat_map(move |(ui, u)| {
            downstream.items().enumerate().filter_map(move |(di, d)| {
                let bus_ok = u.bus_type == d.bus_type
                    || u.bus_type.is_wildcard()
                    || d.bus_type.is_wildcard();
                let memory_type = common_memory(u.memory_type, d.memory_type).filter(|_| bus_ok)?;
                let weight = u64::from(u.memory_type_weight) + u64::from(d.memory_type_weight);
                Some(Candidate { upstream: ui, downstream: di, u, d, memory_type, weight })
            })
        })
    };
    let count = candidates().count();
    let compression = upstream.header().output_compression;
    // The best successful plan and the best candidate's error, each by candidate key.
    let mut best_plan: Option<(CandidateKey, AllocatorPlan)> = None;
    let mut best_error: Option<(CandidateKey, NegotiationError)> = None;
    for candidate in candidates() {
        let key = candidate.key();
        if best_plan.as_ref().is_some_and(|(best, _)| *best <= key) {
            continue;
        }
        match plan(&candidate, compression, count) {
            Ok(plan) => best_plan = Some((key, plan)),
            Err(error) => {
                if best_error.as_ref().is_none_or(|(best, _)| key < *best) {
                    best_error = Some((key, error));
                }
            }
        }
    }
    match (best_plan, best_error) {
        (Some((_, plan)), _) => Ok(plan),
        (None, Some((_, error))) => Err(error),
        (None, None) => Err(NegotiationError::MemoryTypesDisjoint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
