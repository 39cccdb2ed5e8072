//! Pipes: the allocators of a chain of filters, one per set of pins that share frames.
//!
//! A chain is a source, zero or more transforms and a sink, each output pin connected to the next
//! filter's input pin ([`ChainFilter`]). AVStream serves it with *pipes*: the pins one allocator
//! serves, its frames travelling from the pipe's first pin through every pin of the pipe and back.
//! Microsoft's pipe logic (in ks.sys and the KS proxy) is not public; these are the project's
//! rules, each with what it rests on. [`plan_chain`] applies them.
//!
//! 1. **Where pipes end.** A transform whose input pin and output pin both have an
//!    `INPLACE_MODIFIER` item, and whose output compression is the identity, modifies frames in
//!    place: both its connections belong to one pipe, and only its in-place items are considered
//!    for those two pins (the specification's flag semantics: "an in-place modifier can share one
//!    pipe with upstream and downstream"; its frames cannot change size). Any other transform
//!    ends a pipe at its input and starts one at its output: it copies ("every separate chain of
//!    source/sink segments needs its own allocator", the allocation schemes page).
//! 2. **A pipe of one connection** is planned by [`negotiate`](super::negotiate()), exactly: the
//!    two-pin negotiation is the one-connection case of the planner.
//! 3. **A pipe of more pins** is negotiated between its first pin (an output pin) and the rest,
//!    merged into one: for every combination of the other pins' items, a merged item whose memory
//!    type is the one they all accept (as in the pair negotiation), whose bus type the one they
//!    all accept, whose ranges are the sizes every one of them allows (an item with only
//!    preferences drops its optimal range when the others' meet without it), whose alignment is
//!    the OR of theirs, whose weight their sum, and whose flags say what any of them requires
//!    (`MUST_ALLOCATE` a requirement if one requires it, two requiring it conflict; a
//!    preference if one prefers it; `PREFERENCES_ONLY` only if all have only preferences; in
//!    place only if all are). The pair negotiation then chooses between the first pin's items and
//!    the merged ones, by its own order. Ranges count on every pin, input pins included: the
//!    codecs page says an input pin's physical range is not used to size the buffers AVStream
//!    gives it, but a frame larger than what an in-place transform can take would still fail
//!    there, so the planner keeps it as a bound (a choice; tested).
//! 4. **The owner** is the pin whose item requires `MUST_ALLOCATE`, else one that prefers to,
//!    else the pipe's last pin (its sink end, as the pair negotiation's default owner is the
//!    downstream pin), unless the frames exceed that pin's physical maximum and another can hold
//!    them (the pair negotiation's rule, on the merged ranges).
//! 5. **Frames.** The largest request of the pipe's pins, as for a pair (the two pins of a
//!    connection are two views of one hand-off), plus each in-place transform's own request: it
//!    holds its frames while the source fills others and the sink consumes others (a choice: the
//!    documents are silent; the codecs page asks for at least three frames on both pins of a
//!    codec, which only adds up if the stages hold frames at once).
//! 6. **Sizes across a copying transform** follow its output pin's `OutputCompression` applied to
//!    the input pipe's frame size, `ceil(size * numerator / denominator) + margin` (integer
//!    arithmetic, no overflow): that size is taken when every pin of the output pipe allows it,
//!    and required when an item insists (`KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO`);
//!    otherwise the output pipe is negotiated from its own ranges. The output pin's ranges are
//!    sizes of its own frames (after compression); only the chain's source applies its
//!    compression to its own ranges, as the pair negotiation does.
//! 7. **A fan-out** (a splitter: one output pin feeding several) is outside a chain: each of its
//!    outputs would start a pipe of its own, with an allocator each (the splitters page: "each
//!    queue may have its own requester and allocator per pipe section"), and the frames of one
//!    input pipe would be copied into all of them; [`plan_chain`] takes chains only.
//!
//! Every plan names the pins ("filter.pin") in its decisions and errors.

use core::fmt;

use super::{AllocatorPlan, NegotiationError, Side, common_memory, negotiate};
use crate::framing::{
    Compression, Framing, FramingExView, FramingItem, FramingRange, ItemFlags, LegacyRole,
};

use super::size::Grid;

/// Most filters in a chain.
pub const MAX_CHAIN: usize = 8;
/// Most pins of one pipe.
pub const MAX_PIPE_PINS: usize = 2 * MAX_CHAIN - 2;
/// Most combinations of items the other pins of one pipe offer together.
pub const MAX_COMBINATIONS: usize = 64;

/// One pin of a chain: its name in plans and errors ("filter.pin") and its framing.
#[derive(Clone, Copy, Debug)]
pub struct ChainPin<'a> {
    /// "filter.pin".
    pub name: &'a str,
    /// The pin's `KSALLOCATOR_FRAMING_EX`.
    pub framing: FramingExView<'a>,
}

/// One filter of a chain, by the pins it has in the chain.
#[derive(Clone, Copy, Debug)]
pub enum ChainFilter<'a> {
    /// The first filter: its output pin.
    Source {
        /// Its output pin.
        output: ChainPin<'a>,
    },
    /// A filter in between: its input and output pins.
    Transform {
        /// Its input pin.
        input: ChainPin<'a>,
        /// Its output pin.
        output: ChainPin<'a>,
    },
    /// The last filter: its input pin.
    Sink {
        /// Its input pin.
        input: ChainPin<'a>,
    },
}

/// What decided a pipe, beyond the pair negotiation's own reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeReason<'a> {
    /// A transform passes frames through: its two connections share this pipe.
    InPlace {
        /// The transform's input pin.
        input: &'a str,
    },
    /// The frame size is the input pipe's through a copying transform's compression.
    Compressed {
        /// The input pipe's frame size.
        from: u32,
        /// The compression.
        compression: Compression,
        /// Whether an item insists on the ratio.
        insist: bool,
    },
    /// The frame size could not follow the compression (some pin's ranges exclude it), so the
    /// pipe was negotiated from its own ranges.
    CompressionNotKept {
        /// The size the compression gave.
        wanted: u32,
    },
    /// The frames: the largest request plus what in-place transforms hold.
    Frames {
        /// The pipe's frames.
        frames: u32,
        /// The largest request of its pins.
        largest: u32,
        /// Frames its in-place transforms hold besides.
        held: u32,
    },
}

impl fmt::Display for PipeReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InPlace { input } => {
                write!(f, "{input} modifies frames in place: its connections share this pipe")
            }
            Self::Compressed { from, compression, insist } => {
                let how = if insist { "required (an item insists)" } else { "preferred" };
                write!(f, "frame size from the input pipe's {from} through ")?;
                write_compression(f, compression)?;
                write!(f, ", {how}")
            }
            Self::CompressionNotKept { wanted } => write!(
                f,
                "the compression's {wanted} bytes is outside the pipe's ranges: its own ranges \
                 decide"
            ),
            Self::Frames { frames, largest, held } => write!(
                f,
                "frames {frames}: the largest request of the pipe's pins, {largest}, plus {held} \
                 its in-place transforms hold"
            ),
        }
    }
}

fn write_compression(f: &mut fmt::Formatter<'_>, c: Compression) -> fmt::Result {
    write!(f, "{}:{} + {}", c.numerator, c.denominator, c.constant_margin)
}

/// One pipe of a chain's plan.
#[derive(Clone, Copy, Debug)]
pub struct Pipe<'a> {
    /// The pair negotiation's plan for the pipe: its first pin (`upstream`) against the others
    /// merged (`downstream`), with the pipe's frame count. Its create request is the pipe's.
    pub plan: AllocatorPlan,
    /// The pin whose allocator serves the pipe.
    pub owner: &'a str,
    /// The connections of the chain it serves: from filter `first` to filter `last + 1`.
    pub first_connection: usize,
    /// The last connection it serves.
    pub last_connection: usize,
    pins: [Option<(&'a str, usize)>; MAX_PIPE_PINS],
    reasons: [Option<PipeReason<'a>>; MAX_CHAIN + 2],
}

impl<'a> Pipe<'a> {
    /// The pipe's pins in the order frames travel, each with the index of its item the plan
    /// chose.
    pub fn pins(&self) -> impl Iterator<Item = (&'a str, usize)> + '_ {
        self.pins.iter().flatten().copied()
    }

    /// The decisions beyond the pair negotiation's reasons (`plan.reasons()`), in order.
    pub fn reasons(&self) -> impl Iterator<Item = &PipeReason<'a>> {
        self.reasons.iter().flatten()
    }
}

/// The pipes of a chain, in order from the source.
#[derive(Clone, Copy, Debug)]
pub struct ChainPlan<'a> {
    pipes: [Option<Pipe<'a>>; MAX_CHAIN - 1],
}

impl<'a> ChainPlan<'a> {
    /// The pipes, in order from the source.
    pub fn pipes(&self) -> impl Iterator<Item = &Pipe<'a>> {
        self.pipes.iter().flatten()
    }
}

/// Why a chain could not be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeError<'a> {
    /// The chain is not a source, transforms and a sink, or longer than [`MAX_CHAIN`].
    Shape,
    /// Two pins of one pipe must allocate its frames.
    BothMustAllocate {
        /// One of them.
        first: &'a str,
        /// The other.
        second: &'a str,
    },
    /// The other pins of a pipe offer more than [`MAX_COMBINATIONS`] combinations of items.
    TooManyCombinations {
        /// The pipe's first pin.
        pipe: &'a str,
    },
    /// A pipe's negotiation failed: between `first` (the pipe's first pin) and the rest, of
    /// which `last` is the last.
    Pipe {
        /// The pipe's first pin.
        first: &'a str,
        /// The pipe's last pin.
        last: &'a str,
        /// Why.
        error: NegotiationError,
    },
}

impl fmt::Display for PipeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shape => {
                write!(f, "a chain is a source, up to {} transforms and a sink", MAX_CHAIN - 2)
            }
            Self::BothMustAllocate { first, second } => {
                write!(f, "{first} and {second} are in one pipe and both must allocate its frames")
            }
            Self::TooManyCombinations { pipe } => write!(
                f,
                "the pipe from {pipe}: its pins offer more than {MAX_COMBINATIONS} combinations \
                 of items"
            ),
            Self::Pipe { first, last, error } => {
                write!(f, "the pipe from {first} to {last}: {error}")
            }
        }
    }
}

impl core::error::Error for PipeError<'_> {}

/// A pin of a pipe while it is planned: its name, its items (the in-place ones only, for an
/// in-place transform's pins) and its framing.
#[derive(Clone, Copy)]
struct Member<'a> {
    pin: ChainPin<'a>,
    in_place_only: bool,
}

impl Member<'_> {
    /// The items the pipe may choose, by index.
    fn items(&self) -> impl Iterator<Item = (usize, FramingItem)> + '_ {
        self.pin.framing.items().enumerate().filter(move |(_, item)| {
            !self.in_place_only || item.flags.contains(ItemFlags::INPLACE_MODIFIER)
        })
    }
}

/// Whether a transform modifies frames in place (rule 1).
fn in_place(input: &ChainPin<'_>, output: &ChainPin<'_>) -> bool {
    let has = |pin: &ChainPin<'_>| {
        pin.framing.items().any(|item| item.flags.contains(ItemFlags::INPLACE_MODIFIER))
    };
    has(input) && has(output) && output.framing.header().output_compression.is_identity()
}

fn hard(item: &FramingItem) -> bool {
    item.flags.contains(ItemFlags::MUST_ALLOCATE)
        && !item.flags.contains(ItemFlags::PREFERENCES_ONLY)
}

fn range_of(grid: Grid) -> FramingRange {
    let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
    FramingRange::new(clamp(grid.min), clamp(grid.max)).with_stepping(clamp(grid.step))
}

/// The merged item of one combination of the other pins' items (rule 3), or why there is none.
fn merge<'a>(
    members: &[Member<'a>],
    choice: &[(usize, FramingItem)],
) -> Result<FramingItem, Option<PipeError<'a>>> {
    let mut memory = None;
    let mut bus = None;
    let mut hard_pin: Option<&'a str> = None;
    for (member, (_, item)) in members.iter().zip(choice) {
        memory = match memory {
            None => Some(item.memory_type),
            Some(m) => Some(common_memory(m, item.memory_type).ok_or(None)?),
        };
        bus = match bus {
            None => Some(item.bus_type),
            Some(b) if b == item.bus_type || item.bus_type.is_wildcard() => Some(b),
            Some(b) if b.is_wildcard() => Some(item.bus_type),
            Some(_) => return Err(None),
        };
        if hard(item) {
            if let Some(first) = hard_pin {
                return Err(Some(PipeError::BothMustAllocate { first, second: member.pin.name }));
            }
            hard_pin = Some(member.pin.name);
        }
    }
    let items = || choice.iter().map(|(_, item)| item);
    let any = |flag| items().any(|item: &FramingItem| item.flags.contains(flag));
    let all = |flag| items().all(|item: &FramingItem| item.flags.contains(flag));
    let mut flags = ItemFlags::empty();
    for flag in [
        ItemFlags::FRAME_INTEGRITY,
        ItemFlags::INSIST_ON_FRAMESIZE_RATIO,
        ItemFlags::BUFFER_2D_REQUIRED,
        ItemFlags::SYSTEM_MEMORY,
    ] {
        flags.set(flag, any(flag));
    }
    flags.set(ItemFlags::INPLACE_MODIFIER, all(ItemFlags::INPLACE_MODIFIER));
    if hard_pin.is_some() {
        flags |= ItemFlags::MUST_ALLOCATE;
    } else {
        flags.set(ItemFlags::MUST_ALLOCATE, any(ItemFlags::MUST_ALLOCATE));
        flags.set(ItemFlags::PREFERENCES_ONLY, all(ItemFlags::PREFERENCES_ONLY));
    }
    let mut physical = Grid::of(FramingRange::DONT_CARE);
    for item in items() {
        physical = physical.intersect(Grid::of(item.physical_range)).ok_or(None)?;
    }
    // The optimal ranges, all of them; failing that, without those of items with only
    // preferences.
    let optimal = |with_preferences: bool| {
        let mut grid = Grid::of(FramingRange::DONT_CARE);
        for item in items() {
            if with_preferences || !item.flags.contains(ItemFlags::PREFERENCES_ONLY) {
                grid = grid.intersect(Grid::of(item.framing_range.range))?;
            }
        }
        Some(grid)
    };
    let optimal = optimal(true).or_else(|| optimal(false)).ok_or(None)?;
    let frames = items().map(|item| item.frames).max().unwrap_or(0);
    let alignment = items().fold(0, |mask, item| mask | item.file_alignment);
    let weight = items().fold(0_u32, |sum, item| sum.saturating_add(item.memory_type_weight));
    let (Some(memory), Some(bus)) = (memory, bus) else { return Err(None) };
    Ok(FramingItem::new(memory)
        .with_bus(bus)
        .with_flags(flags)
        .with_frames(frames)
        .with_alignment(alignment)
        .with_weight(weight)
        .with_physical_range(range_of(physical))
        .with_optimal_range(range_of(optimal)))
}

/// The combinations of the other pins' items: each merged item with the item index it took on
/// each pin, or the first conflict when none merges.
struct Merged<'a> {
    items: [FramingItem; MAX_COMBINATIONS],
    choices: [[usize; MAX_PIPE_PINS]; MAX_COMBINATIONS],
    count: usize,
    conflict: Option<PipeError<'a>>,
}

fn merged<'a>(first: &'a str, members: &[Member<'a>]) -> Result<Merged<'a>, PipeError<'a>> {
    let counts: [usize; MAX_PIPE_PINS] =
        core::array::from_fn(|i| members.get(i).map_or(1, |m| m.items().count()));
    let total = counts.iter().try_fold(1_usize, |acc, count| acc.checked_mul(*count));
    if total.is_none_or(|total| total > MAX_COMBINATIONS) {
        return Err(PipeError::TooManyCombinations { pipe: first });
    }
    let total = total.unwrap_or(0);
    let mut out = Merged {
        items: [FramingItem::new(crate::framing::MemoryType::DONT_CARE); MAX_COMBINATIONS],
        choices: [[0; MAX_PIPE_PINS]; MAX_COMBINATIONS],
        count: 0,
        conflict: None,
    };
    for combination in 0..total {
        // The combination's item on each pin, by mixed radix (the first pin varies slowest, so
        // that combinations come in the pins' order of preference).
        let mut rest = combination;
        let mut choice =
            [(0, FramingItem::new(crate::framing::MemoryType::DONT_CARE)); MAX_PIPE_PINS];
        for index in (0..members.len()).rev() {
            let count = counts.get(index).copied().unwrap_or(1).max(1);
            let nth = rest % count;
            rest /= count;
            if let (Some(slot), Some(member)) = (choice.get_mut(index), members.get(index)) {
                *slot = member.items().nth(nth).unwrap_or(*slot);
            }
        }
        let choice = choice.get(..members.len()).unwrap_or_default();
        match merge(members, choice) {
            Ok(item) => {
                if let (Some(slot), Some(indices)) =
                    (out.items.get_mut(out.count), out.choices.get_mut(out.count))
                {
                    *slot = item;
                    for (index, (item_index, _)) in choice.iter().enumerate() {
                        if let Some(target) = indices.get_mut(index) {
                            *target = *item_index;
                        }
                    }
                    out.count += 1;
                }
            }
            Err(conflict) => {
                if out.conflict.is_none() {
                    out.conflict = conflict;
                }
            }
        }
    }
    Ok(out)
}

/// `pin`'s framing as the first pin of a pipe after a copying transform (rule 6): its
/// compression taken as the identity (its ranges are its own frames' sizes) and, with `size`,
/// every item's optimal range exactly that size; kept in `storage`.
fn own_sizes<'s>(
    pin: &ChainPin<'_>,
    size: Option<u32>,
    storage: &'s mut [FramingItem; 64],
) -> Option<FramingExView<'s>> {
    let mut count = 0;
    for item in pin.framing.items() {
        let slot = storage.get_mut(count)?;
        *slot = match size {
            Some(size) => item.with_optimal_range(FramingRange::new(size, size)),
            None => item,
        };
        count += 1;
    }
    FramingExView::from_parts(Compression::IDENTITY, storage.get(..count)?)
}

/// Each pin of a pipe with the index of the item chosen for it.
type PinChoices<'a> = [Option<(&'a str, usize)>; MAX_PIPE_PINS];

/// Plans one pipe: `first` against `members` (rules 2 to 6). `input_size`: the frame size of the
/// pipe before a copying transform, with its output compression.
fn plan_pipe<'a>(
    first: ChainPin<'a>,
    members: &[Member<'a>],
    input: Option<(u32, Compression)>,
) -> Result<(AllocatorPlan, PinChoices<'a>, Option<PipeReason<'a>>), PipeError<'a>> {
    let last = members.last().map_or(first.name, |m| m.pin.name);
    let failed = |error| PipeError::Pipe { first: first.name, last, error };
    // Every framing is checked first, as the pair negotiation checks its two.
    let invalid = |side| move |finding| failed(NegotiationError::InvalidFraming { side, finding });
    first.framing.check().map_err(invalid(Side::Upstream))?;
    for member in members {
        member.pin.framing.check().map_err(invalid(Side::Downstream))?;
    }
    // One pin after the first: its own framing, so that the plan is the pair negotiation's;
    // more: their items merged (rule 3).
    let single = members.len() == 1 && !members.iter().any(|m| m.in_place_only);
    let merged = if single { None } else { Some(merged(first.name, members)?) };
    let rest = match (&merged, members.first()) {
        (None, Some(member)) => member.pin.framing,
        (Some(merged), _) => {
            let items = merged.items.get(..merged.count).unwrap_or_default();
            if items.is_empty() {
                return Err(merged
                    .conflict
                    .unwrap_or_else(|| failed(NegotiationError::MemoryTypesDisjoint)));
            }
            FramingExView::from_parts(Compression::IDENTITY, items).ok_or(PipeError::Shape)?
        }
        (None, None) => return Err(PipeError::Shape),
    };
    let mut storage = [FramingItem::new(crate::framing::MemoryType::DONT_CARE); 64];
    let (plan, reason) = match input {
        None => (negotiate(&first.framing, &rest).map_err(failed)?, None),
        Some((from, compression)) => {
            let wanted = compression.apply(from).unwrap_or(u32::MAX);
            let insist = first
                .framing
                .items()
                .any(|i| i.flags.contains(ItemFlags::INSIST_ON_FRAMESIZE_RATIO))
                || rest.items().any(|i| i.flags.contains(ItemFlags::INSIST_ON_FRAMESIZE_RATIO));
            let at_ratio = match own_sizes(&first, Some(wanted), &mut storage)
                .map(|view| negotiate(&view, &rest))
            {
                Some(Ok(plan)) => Some(plan).filter(|plan| plan.framing.frame_size == wanted),
                // A conflict that is not about sizes (memory, ownership, ...) is the pipe's,
                // whatever its size: reported as it is, not as a compression that failed.
                Some(Err(error)) if !about_size(&error) => return Err(failed(error)),
                Some(Err(_)) | None => None,
            };
            match at_ratio {
                Some(plan) => (plan, Some(PipeReason::Compressed { from, compression, insist })),
                None if insist => {
                    let downstream =
                        rest.item(0).map_or(FramingRange::DONT_CARE, |i| i.framing_range.range);
                    return Err(failed(NegotiationError::CompressionImpossible {
                        compression,
                        downstream,
                    }));
                }
                None => {
                    let own = own_sizes(&first, None, &mut storage).ok_or(PipeError::Shape)?;
                    let plan = negotiate(&own, &rest).map_err(failed)?;
                    (plan, Some(PipeReason::CompressionNotKept { wanted }))
                }
            }
        }
    };
    let mut pins = [None; MAX_PIPE_PINS];
    if let Some(slot) = pins.get_mut(0) {
        *slot = Some((first.name, plan.upstream_item));
    }
    for (index, member) in members.iter().enumerate() {
        let item = match &merged {
            None => plan.downstream_item,
            Some(merged) => merged
                .choices
                .get(plan.downstream_item)
                .and_then(|choice| choice.get(index))
                .copied()
                .unwrap_or(0),
        };
        if let Some(slot) = pins.get_mut(index + 1) {
            *slot = Some((member.pin.name, item));
        }
    }
    Ok((plan, pins, reason))
}

/// Whether a pair negotiation failed over frame sizes (which a pipe after a copying transform
/// may retry with its own ranges) rather than over memory, ownership or the framings.
const fn about_size(error: &NegotiationError) -> bool {
    matches!(
        error,
        NegotiationError::RangesDisjoint { .. }
            | NegotiationError::OwnerCannotHold { .. }
            | NegotiationError::CompressionImpossible { .. }
            | NegotiationError::NoFrameSize
            | NegotiationError::InvalidPlan(_)
    )
}

/// The pin of `pins` whose allocator serves a pipe whose plan names `side` the owner (rule 4):
/// the first pin for the upstream side; of the others, the one that requires `MUST_ALLOCATE`,
/// else one that prefers to, else the last.
fn owner_of<'a>(side: Side, pins: &[Option<(&'a str, usize)>], members: &[Member<'a>]) -> &'a str {
    let pinned = |index: usize| -> Option<(&'a str, FramingItem)> {
        let (name, item) = pins.get(index).copied().flatten()?;
        Some((name, members.get(index.checked_sub(1)?)?.pin.framing.item(item)?))
    };
    let first = pins.first().copied().flatten().map_or("", |(name, _)| name);
    if side == Side::Upstream {
        return first;
    }
    let others = 1..=members.len();
    others
        .clone()
        .filter_map(pinned)
        .find(|(_, item)| hard(item))
        .or_else(|| {
            others
                .clone()
                .filter_map(pinned)
                .find(|(_, item)| item.flags.contains(ItemFlags::MUST_ALLOCATE))
        })
        .or_else(|| pinned(members.len()))
        .map_or(first, |(name, _)| name)
}

/// Plans the pipes of a chain (module documentation).
///
/// ```
/// use ks_allocator::{
///     framing::{Compression, FramingEx, FramingItem, FramingRange, ItemFlags, MemoryType},
///     negotiate::{ChainFilter, ChainPin, plan_chain},
/// };
///
/// // A capture pin, an in-place overlay, a 4:1 scaler and a sink.
/// let frame = 640 * 480 * 2;
/// let any = FramingRange::new(1, u32::MAX);
/// let item = |flags| FramingItem::new(MemoryType::KERNEL_NONPAGED).with_flags(flags).with_frames(2);
/// let capture = FramingEx::new([item(ItemFlags::MUST_ALLOCATE).with_exact_size(frame)]);
/// let overlay = FramingEx::new([item(ItemFlags::INPLACE_MODIFIER).with_optimal_range(any)]);
/// let scale_in = FramingEx::new([item(ItemFlags::empty()).with_optimal_range(any)]);
/// let scale_out = FramingEx::new([item(ItemFlags::MUST_ALLOCATE).with_optimal_range(any)])
///     .with_compression(Compression::new(1, 4, 0));
/// let sink = FramingEx::new([item(ItemFlags::empty()).with_optimal_range(any)]);
///
/// fn pin<'a>(name: &'a str, framing: &'a FramingEx<1>) -> ChainPin<'a> {
///     ChainPin { name, framing: framing.view() }
/// }
/// let chain = [
///     ChainFilter::Source { output: pin("capture.out", &capture) },
///     ChainFilter::Transform { input: pin("overlay.in", &overlay), output: pin("overlay.out", &overlay) },
///     ChainFilter::Transform { input: pin("scale.in", &scale_in), output: pin("scale.out", &scale_out) },
///     ChainFilter::Sink { input: pin("sink.in", &sink) },
/// ];
/// let plan = plan_chain(&chain).map_err(|error| error.to_string())?;
/// let pipes: Vec<_> = plan.pipes().collect();
/// assert_eq!(pipes.len(), 2);
/// // The capture pin allocates the first pipe, through the overlay to the scaler's input; the
/// // overlay holds two frames of its own besides the two the others ask for.
/// assert_eq!(pipes[0].owner, "capture.out");
/// assert_eq!(pipes[0].pins().count(), 4);
/// assert_eq!((pipes[0].plan.framing.frame_size, pipes[0].plan.framing.frames), (frame, 4));
/// // The scaler's output pipe: a quarter of the size, from the scaler's own allocator.
/// assert_eq!(pipes[1].owner, "scale.out");
/// assert_eq!(pipes[1].plan.framing.frame_size, frame / 4);
/// for reason in pipes[1].reasons() {
///     println!("{reason}");
/// }
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
///
/// A [`PipeError`] naming the pins in conflict.
///
/// # IRQL
///
/// Any (pure computation, no allocation).
pub fn plan_chain<'a>(chain: &[ChainFilter<'a>]) -> Result<ChainPlan<'a>, PipeError<'a>> {
    let shaped = chain.len() >= 2
        && chain.len() <= MAX_CHAIN
        && matches!(chain.first(), Some(ChainFilter::Source { .. }))
        && matches!(chain.last(), Some(ChainFilter::Sink { .. }))
        && chain.get(1..chain.len() - 1).is_some_and(|middle| {
            middle.iter().all(|f| matches!(f, ChainFilter::Transform { .. }))
        });
    let Some(ChainFilter::Source { output }) = chain.first().copied().filter(|_| shaped) else {
        return Err(PipeError::Shape);
    };
    let mut plan = ChainPlan { pipes: [None; MAX_CHAIN - 1] };
    let mut pipe_count = 0;
    let mut gathering = Gathering::new(output, 0, None);
    for (connection, filter) in chain.iter().enumerate().skip(1) {
        let (input_pin, output_pin, joins) = match *filter {
            ChainFilter::Transform { input: i, output: o } => (i, Some(o), in_place(&i, &o)),
            ChainFilter::Sink { input: i } => (i, None, false),
            ChainFilter::Source { .. } => return Err(PipeError::Shape),
        };
        gathering.push(Member { pin: input_pin, in_place_only: joins });
        if let (true, Some(o)) = (joins, output_pin) {
            gathering.pass_through(input_pin, o);
            continue;
        }
        // The pipe ends at this filter's input.
        let pipe = gathering.finish(connection - 1)?;
        if let Some(slot) = plan.pipes.get_mut(pipe_count) {
            *slot = Some(pipe);
            pipe_count += 1;
        }
        // The next pipe starts at this transform's output.
        if let Some(o) = output_pin {
            let compression = o.framing.header().output_compression;
            gathering =
                Gathering::new(o, connection, Some((pipe.plan.framing.frame_size, compression)));
        }
    }
    Ok(plan)
}

/// A pipe being gathered along the chain: its first pin, the connection it starts at, its
/// other pins, the frames its in-place transforms hold and its reasons so far.
#[derive(Clone, Copy)]
struct Gathering<'a> {
    first: ChainPin<'a>,
    start: usize,
    input: Option<(u32, Compression)>,
    members: [Option<Member<'a>>; MAX_PIPE_PINS],
    count: usize,
    held: u32,
    reasons: [Option<PipeReason<'a>>; MAX_CHAIN + 2],
    reason_count: usize,
}

impl<'a> Gathering<'a> {
    fn new(first: ChainPin<'a>, start: usize, input: Option<(u32, Compression)>) -> Self {
        Self {
            first,
            start,
            input,
            members: [None; MAX_PIPE_PINS],
            count: 0,
            held: 0,
            reasons: [None; MAX_CHAIN + 2],
            reason_count: 0,
        }
    }

    fn push(&mut self, member: Member<'a>) {
        if let Some(slot) = self.members.get_mut(self.count) {
            *slot = Some(member);
            self.count += 1;
        }
    }

    fn note(&mut self, reason: PipeReason<'a>) {
        if let Some(slot) = self.reasons.get_mut(self.reason_count) {
            *slot = Some(reason);
            self.reason_count += 1;
        }
    }

    /// An in-place transform joins the pipe: its output pin, and the frames it holds (rule 5).
    fn pass_through(&mut self, input: ChainPin<'a>, output: ChainPin<'a>) {
        self.push(Member { pin: output, in_place_only: true });
        let frames = |pin: &ChainPin<'_>| pin.framing.items().map(|i| i.frames).max().unwrap_or(0);
        self.held = self.held.saturating_add(frames(&input).max(frames(&output)));
        self.note(PipeReason::InPlace { input: input.name });
    }

    /// Plans the gathered pipe, which serves the connections up to `last_connection`.
    fn finish(mut self, last_connection: usize) -> Result<Pipe<'a>, PipeError<'a>> {
        let first = self.first;
        let members: [Member<'a>; MAX_PIPE_PINS] = core::array::from_fn(|i| {
            self.members
                .get(i)
                .copied()
                .flatten()
                .unwrap_or(Member { pin: first, in_place_only: false })
        });
        let members = members.get(..self.count).ok_or(PipeError::Shape)?;
        let last = members.last().map_or(first.name, |m| m.pin.name);
        let (mut plan, pins, size_reason) = plan_pipe(first, members, self.input)?;
        if let Some(reason) = size_reason {
            self.note(reason);
        }
        let largest = plan.framing.frames;
        if self.held > 0 {
            let f = plan.framing;
            let frames = largest.saturating_add(self.held);
            plan.framing =
                Framing::request(f.options(), f.pool_type, frames, f.frame_size, f.file_alignment);
            plan.framing.check(LegacyRole::Request).map_err(|finding| PipeError::Pipe {
                first: first.name,
                last,
                error: NegotiationError::InvalidPlan(finding),
            })?;
            self.note(PipeReason::Frames { frames, largest, held: self.held });
        }
        Ok(Pipe {
            owner: owner_of(plan.owner, &pins, members),
            plan,
            first_connection: self.start,
            last_connection,
            pins,
            reasons: self.reasons,
        })
    }
}
