//! What a negotiation reports: the sides, the decisions with their reasons, and the conflicts.

use core::fmt;

use crate::framing::{Compression, Finding, FramingRange, MemoryType, OptionFlags, PoolType};

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
    /// Neither must allocate, or one only prefers to, but the frames exceed the physical maximum
    /// of the pin that would otherwise own the allocator: the other pin, which can hold them,
    /// owns it.
    OnlyOneHolds {
        /// The frame size.
        size: u32,
        /// The physical maximum of the pin passed over.
        other_maximum: u32,
    },
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
                Ownership::OnlyOneHolds { size, other_maximum } => write!(
                    f,
                    "owner: {owner}: neither pin must allocate, and only this one can hold frames of \
                     {size} bytes (the other's physical maximum is {other_maximum})"
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
    /// The frame size both sides can live with is larger than the physical maximum of the pin
    /// that must allocate the frames (a `PREFERENCES_ONLY` owner gives way on what it accepts,
    /// not on what it can allocate: the allocator create request would be refused).
    OwnerCannotHold {
        /// The side that owns the allocator.
        owner: Side,
        /// The frame size the ranges led to.
        size: u32,
        /// The owner's physical range.
        physical: FramingRange,
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
    /// The framings have more than [`MAX_PAIRS`](super::MAX_PAIRS) item pairs between them.
    TooManyPairs {
        /// `CountItems` of the upstream framing.
        upstream_items: usize,
        /// `CountItems` of the downstream framing.
        downstream_items: usize,
    },
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
            Self::OwnerCannotHold { owner, size, physical } => {
                write!(
                    f,
                    "the owner cannot hold the frames: the {owner} pin owns the allocator, but \
                     frames of {size} bytes exceed its physical range "
                )?;
                write_range(f, physical)
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
            Self::TooManyPairs { upstream_items, downstream_items } => write!(
                f,
                "too many item pairs: {upstream_items} upstream items times {downstream_items} \
                 downstream items exceeds {}",
                super::MAX_PAIRS
            ),
        }
    }
}

impl core::error::Error for NegotiationError {}
