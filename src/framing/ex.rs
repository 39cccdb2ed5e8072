//! Owned, `const`-constructible extended framing (`KSALLOCATOR_FRAMING_EX`) and its parts.

use core::ptr;

use super::{
    BusType, ItemFlags, MemoryType,
    codec::{Reader, Writer},
    parse::{FramingExView, HEADER_LEN, ITEM_LEN},
};

/// A range of frame sizes (`KS_FRAMING_RANGE`): the sizes `min + k * stepping <= max`.
///
/// A stepping of 0 is treated as 1 (any size in the range); the WDK samples write 0 when
/// `min == max`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FramingRange {
    /// Smallest frame size in bytes.
    pub min_frame_size: u32,
    /// Largest frame size in bytes.
    pub max_frame_size: u32,
    /// Granularity of the sizes in between.
    pub stepping: u32,
}

impl FramingRange {
    /// Every size (`SetDontCareKsFramingRange`): 0 to `u32::MAX`, stepping 1.
    pub const DONT_CARE: Self = Self { min_frame_size: 0, max_frame_size: u32::MAX, stepping: 1 };

    /// `min..=max` with stepping 1 (`SetKsFramingRange`).
    #[must_use]
    pub const fn new(min_frame_size: u32, max_frame_size: u32) -> Self {
        Self { min_frame_size, max_frame_size, stepping: 1 }
    }

    /// Exactly one size, as the WDK capture samples write it at pin creation (stepping 0).
    #[must_use]
    pub const fn exact(size: u32) -> Self {
        Self { min_frame_size: size, max_frame_size: size, stepping: 0 }
    }

    /// The same range with another stepping.
    #[must_use]
    pub const fn with_stepping(self, stepping: u32) -> Self {
        Self { stepping, ..self }
    }

    /// The stepping that applies: `stepping`, or 1 when it is 0.
    #[must_use]
    pub const fn effective_stepping(self) -> u32 {
        if self.stepping == 0 { 1 } else { self.stepping }
    }

    /// Whether `size` is one of the range's sizes.
    #[must_use]
    pub const fn contains(self, size: u32) -> bool {
        size >= self.min_frame_size
            && size <= self.max_frame_size
            && (size - self.min_frame_size).is_multiple_of(self.effective_stepping())
    }

    /// Whether `self` lies entirely inside `outer` (bounds only).
    #[must_use]
    pub const fn is_within(self, outer: Self) -> bool {
        self.min_frame_size >= outer.min_frame_size && self.max_frame_size <= outer.max_frame_size
    }

    /// From the raw structure.
    #[must_use]
    pub const fn from_raw(raw: &ks_sys::KS_FRAMING_RANGE) -> Self {
        Self {
            min_frame_size: raw.MinFrameSize,
            max_frame_size: raw.MaxFrameSize,
            stepping: raw.Stepping,
        }
    }

    /// To the raw structure.
    #[must_use]
    pub const fn to_raw(self) -> ks_sys::KS_FRAMING_RANGE {
        ks_sys::KS_FRAMING_RANGE {
            MinFrameSize: self.min_frame_size,
            MaxFrameSize: self.max_frame_size,
            Stepping: self.stepping,
        }
    }
}

/// The optimal range of frame sizes with its weights (`KS_FRAMING_RANGE_WEIGHTED`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeightedRange {
    /// The range.
    pub range: FramingRange,
    /// Weight for in-place use; documented as unsupported, keep 0.
    pub in_place_weight: u32,
    /// Weight for copying use; documented as unsupported, keep 0.
    pub not_in_place_weight: u32,
}

impl WeightedRange {
    /// `range` with both weights 0 (`SetKsFramingRangeWeighted`).
    #[must_use]
    pub const fn new(range: FramingRange) -> Self {
        Self { range, in_place_weight: 0, not_in_place_weight: 0 }
    }

    /// The same range with weights.
    #[must_use]
    pub const fn with_weights(self, in_place_weight: u32, not_in_place_weight: u32) -> Self {
        Self { in_place_weight, not_in_place_weight, ..self }
    }

    /// From the raw structure.
    #[must_use]
    pub const fn from_raw(raw: &ks_sys::KS_FRAMING_RANGE_WEIGHTED) -> Self {
        Self {
            range: FramingRange::from_raw(&raw.Range),
            in_place_weight: raw.InPlaceWeight,
            not_in_place_weight: raw.NotInPlaceWeight,
        }
    }

    /// To the raw structure.
    #[must_use]
    pub const fn to_raw(self) -> ks_sys::KS_FRAMING_RANGE_WEIGHTED {
        ks_sys::KS_FRAMING_RANGE_WEIGHTED {
            Range: self.range.to_raw(),
            InPlaceWeight: self.in_place_weight,
            NotInPlaceWeight: self.not_in_place_weight,
        }
    }
}

/// Output/input frame size ratio of a transform pin (`KS_COMPRESSION`):
/// `output = ceil(input * numerator / denominator) + constant_margin`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Compression {
    /// Numerator of the ratio.
    pub numerator: u32,
    /// Denominator of the ratio; never 0 in a valid framing.
    pub denominator: u32,
    /// Constant added to the scaled size.
    pub constant_margin: u32,
}

impl Compression {
    /// No size change (`SetDefaultKsCompression`): {1, 1, 0}.
    pub const IDENTITY: Self = Self { numerator: 1, denominator: 1, constant_margin: 0 };

    /// A ratio with margin.
    #[must_use]
    pub const fn new(numerator: u32, denominator: u32, constant_margin: u32) -> Self {
        Self { numerator, denominator, constant_margin }
    }

    /// Whether this is the identity {1, 1, 0}.
    #[must_use]
    pub const fn is_identity(self) -> bool {
        self.numerator == 1 && self.denominator == 1 && self.constant_margin == 0
    }

    /// The output size for an input size, or `None` if the ratio is invalid (denominator 0)
    /// or the result does not fit 32 bits.
    #[must_use]
    pub const fn apply(self, input: u32) -> Option<u32> {
        if self.denominator == 0 {
            return None;
        }
        let scaled = (input as u64 * self.numerator as u64).div_ceil(self.denominator as u64);
        let out = scaled + self.constant_margin as u64;
        if out > u32::MAX as u64 {
            return None;
        }
        #[expect(clippy::cast_possible_truncation, reason = "checked against u32::MAX above")]
        Some(out as u32)
    }

    /// From the raw structure.
    #[must_use]
    pub const fn from_raw(raw: &ks_sys::KS_COMPRESSION) -> Self {
        Self {
            numerator: raw.RatioNumerator,
            denominator: raw.RatioDenominator,
            constant_margin: raw.RatioConstantMargin,
        }
    }

    /// To the raw structure.
    #[must_use]
    pub const fn to_raw(self) -> ks_sys::KS_COMPRESSION {
        ks_sys::KS_COMPRESSION {
            RatioNumerator: self.numerator,
            RatioDenominator: self.denominator,
            RatioConstantMargin: self.constant_margin,
        }
    }
}

/// One memory-type alternative of an extended framing (`KS_FRAMING_ITEM`), with the exact C
/// layout.
///
/// Build one with [`FramingItem::new`] and the `const` `with_*` methods:
///
/// ```
/// use ks_allocator::framing::{FramingItem, FramingRange, ItemFlags, MemoryType};
///
/// const ITEM: FramingItem = FramingItem::new(MemoryType::KERNEL_NONPAGED)
///     .with_flags(ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY))
///     .with_frames(4)
///     .with_alignment(ks_sys::FILE_64_BYTE_ALIGNMENT)
///     .with_optimal_range(FramingRange::new(0x1_0000, 0x4_0000).with_stepping(0x1000));
/// assert_eq!(ITEM.frames, 4);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FramingItem {
    /// Memory type (`MemoryType::DONT_CARE` for any).
    pub memory_type: MemoryType,
    /// Bus type (`BusType::DONT_CARE` for any).
    pub bus_type: BusType,
    /// Memory flags; the Microsoft macros write 0.
    pub memory_flags: u32,
    /// Bus flags; unused, 0.
    pub bus_flags: u32,
    /// Requirement and item flags.
    pub flags: ItemFlags,
    /// Allowable outstanding frames (0: no requirement).
    pub frames: u32,
    /// Alignment mask (`FILE_*_ALIGNMENT`), or the pitch with `ItemFlags::BUFFER_2D_REQUIRED`.
    pub file_alignment: u32,
    /// Pin-wide weight of this memory type.
    pub memory_type_weight: u32,
    /// Hard limits on the frame size.
    pub physical_range: FramingRange,
    /// Optimal frame sizes.
    pub framing_range: WeightedRange,
}

const _: () = {
    use core::mem::offset_of;
    use ks_sys::{
        KS_COMPRESSION, KS_FRAMING_ITEM as Raw, KS_FRAMING_RANGE, KS_FRAMING_RANGE_WEIGHTED,
    };
    assert!(size_of::<FramingItem>() == size_of::<Raw>());
    assert!(align_of::<FramingItem>() == align_of::<Raw>());
    assert!(offset_of!(FramingItem, memory_type) == offset_of!(Raw, MemoryType));
    assert!(offset_of!(FramingItem, bus_type) == offset_of!(Raw, BusType));
    assert!(offset_of!(FramingItem, memory_flags) == offset_of!(Raw, MemoryFlags));
    assert!(offset_of!(FramingItem, bus_flags) == offset_of!(Raw, BusFlags));
    assert!(offset_of!(FramingItem, flags) == offset_of!(Raw, Flags));
    assert!(offset_of!(FramingItem, frames) == offset_of!(Raw, Frames));
    assert!(offset_of!(FramingItem, file_alignment) == offset_of!(Raw, FileAlignment));
    assert!(offset_of!(FramingItem, memory_type_weight) == offset_of!(Raw, MemoryTypeWeight));
    assert!(offset_of!(FramingItem, physical_range) == offset_of!(Raw, PhysicalRange));
    assert!(offset_of!(FramingItem, framing_range) == offset_of!(Raw, FramingRange));
    assert!(size_of::<FramingItem>() == ITEM_LEN);
    assert!(size_of::<FramingRange>() == size_of::<KS_FRAMING_RANGE>());
    assert!(offset_of!(FramingRange, min_frame_size) == offset_of!(KS_FRAMING_RANGE, MinFrameSize));
    assert!(offset_of!(FramingRange, max_frame_size) == offset_of!(KS_FRAMING_RANGE, MaxFrameSize));
    assert!(offset_of!(FramingRange, stepping) == offset_of!(KS_FRAMING_RANGE, Stepping));
    assert!(size_of::<WeightedRange>() == size_of::<KS_FRAMING_RANGE_WEIGHTED>());
    assert!(offset_of!(WeightedRange, range) == offset_of!(KS_FRAMING_RANGE_WEIGHTED, Range));
    assert!(
        offset_of!(WeightedRange, in_place_weight)
            == offset_of!(KS_FRAMING_RANGE_WEIGHTED, InPlaceWeight)
    );
    assert!(
        offset_of!(WeightedRange, not_in_place_weight)
            == offset_of!(KS_FRAMING_RANGE_WEIGHTED, NotInPlaceWeight)
    );
    assert!(size_of::<Compression>() == size_of::<KS_COMPRESSION>());
    assert!(size_of::<ItemFlags>() == size_of::<u32>());
};

impl FramingItem {
    /// An item for `memory_type` with the macro defaults: any bus, no flags, no frame
    /// requirement, byte alignment, weight 0, physical range "don't care", optimal range
    /// "don't care".
    #[must_use]
    pub const fn new(memory_type: MemoryType) -> Self {
        Self {
            memory_type,
            bus_type: BusType::DONT_CARE,
            memory_flags: 0,
            bus_flags: 0,
            flags: ItemFlags::empty(),
            frames: 0,
            file_alignment: ks_sys::FILE_BYTE_ALIGNMENT,
            memory_type_weight: 0,
            physical_range: FramingRange::DONT_CARE,
            framing_range: WeightedRange::new(FramingRange::DONT_CARE),
        }
    }

    /// With a bus type.
    #[must_use]
    pub const fn with_bus(self, bus_type: BusType) -> Self {
        Self { bus_type, ..self }
    }

    /// With flags.
    #[must_use]
    pub const fn with_flags(self, flags: ItemFlags) -> Self {
        Self { flags, ..self }
    }

    /// With a frame count.
    #[must_use]
    pub const fn with_frames(self, frames: u32) -> Self {
        Self { frames, ..self }
    }

    /// With an alignment mask (`FILE_*_ALIGNMENT`, or `PAGE_SIZE - 1`).
    #[must_use]
    pub const fn with_alignment(self, file_alignment: u32) -> Self {
        Self { file_alignment, ..self }
    }

    /// With a memory-type weight.
    #[must_use]
    pub const fn with_weight(self, memory_type_weight: u32) -> Self {
        Self { memory_type_weight, ..self }
    }

    /// With a physical (hard) range.
    #[must_use]
    pub const fn with_physical_range(self, physical_range: FramingRange) -> Self {
        Self { physical_range, ..self }
    }

    /// With an optimal range, weights 0.
    #[must_use]
    pub const fn with_optimal_range(self, range: FramingRange) -> Self {
        Self { framing_range: WeightedRange::new(range), ..self }
    }

    /// With an optimal range and its weights.
    #[must_use]
    pub const fn with_weighted_range(self, framing_range: WeightedRange) -> Self {
        Self { framing_range, ..self }
    }

    /// With the physical and optimal ranges both set to exactly `size` (stepping 0), as a
    /// capture pin does once its format is known.
    #[must_use]
    pub const fn with_exact_size(self, size: u32) -> Self {
        Self {
            physical_range: FramingRange::exact(size),
            framing_range: WeightedRange::new(FramingRange::exact(size)),
            ..self
        }
    }

    /// The `FramePitch` reading of `file_alignment` (meaningful with
    /// `ItemFlags::BUFFER_2D_REQUIRED`).
    #[must_use]
    pub const fn frame_pitch(self) -> i32 {
        self.file_alignment.cast_signed()
    }

    /// From the raw structure.
    #[must_use]
    pub const fn from_raw(raw: &ks_sys::KS_FRAMING_ITEM) -> Self {
        // SAFETY: the two types have the same layout, field for field (asserted at compile time
        // above, nested structures included), and every field of both is plain integers (the
        // flags keep unknown bits), so every bit pattern of one is a valid value of the other.
        unsafe { core::mem::transmute::<ks_sys::KS_FRAMING_ITEM, Self>(*raw) }
    }

    /// To the raw structure.
    #[must_use]
    pub const fn to_raw(self) -> ks_sys::KS_FRAMING_ITEM {
        // SAFETY: as in `from_raw`, the other way.
        unsafe { core::mem::transmute::<Self, ks_sys::KS_FRAMING_ITEM>(self) }
    }
}

/// The fields of `KS_FRAMING_ITEM` in their C order, each with how it is stored: the one place
/// the list is written. Calls `$callback!` with `kind field.path;` entries, where the kind is
/// `guid(Wrapper)`, `flags(Type)` or `u32`.
macro_rules! framing_item_fields {
    ($callback:ident) => {
        $callback! {
            guid(MemoryType) memory_type;
            guid(BusType) bus_type;
            u32 memory_flags;
            u32 bus_flags;
            flags(ItemFlags) flags;
            u32 frames;
            u32 file_alignment;
            u32 memory_type_weight;
            u32 physical_range.min_frame_size;
            u32 physical_range.max_frame_size;
            u32 physical_range.stepping;
            u32 framing_range.range.min_frame_size;
            u32 framing_range.range.max_frame_size;
            u32 framing_range.range.stepping;
            u32 framing_range.in_place_weight;
            u32 framing_range.not_in_place_weight;
        }
    };
}

/// Reads one field of the given kind.
macro_rules! read_field {
    ($reader:ident, guid($wrapper:ident)) => {
        $reader.guid().map($wrapper)
    };
    ($reader:ident, flags($flags:ident)) => {
        $reader.u32().map($flags::from_bits_retain)
    };
    ($reader:ident, u32) => {
        $reader.u32()
    };
}

/// Writes one field of the given kind.
macro_rules! write_field {
    ($writer:ident, $value:expr, guid($wrapper:ident)) => {
        $writer.guid($value.0)
    };
    ($writer:ident, $value:expr, flags($flags:ident)) => {
        $writer.u32($value.bits())
    };
    ($writer:ident, $value:expr, u32) => {
        $writer.u32($value)
    };
}

/// The little-endian codec of an item, in C field order.
macro_rules! item_codec {
    ($( $kind:ident $(($arg:ident))? $($field:ident).+; )*) => {
        impl FramingItem {
            pub(crate) fn decode(reader: &mut Reader<'_>) -> Option<Self> {
                let mut item = Self::new(MemoryType::DONT_CARE);
                $( item.$($field).+ = read_field!(reader, $kind $(($arg))?)?; )*
                Some(item)
            }

            pub(crate) fn encode(&self, writer: &mut Writer<'_>) -> Option<()> {
                $( write_field!(writer, self.$($field).+, $kind $(($arg))?)?; )*
                Some(())
            }
        }
    };
}

framing_item_fields!(item_codec);

/// The fixed 24-byte header of an extended framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FramingExHeader {
    /// `CountItems` as stored.
    pub count_items: u32,
    /// `PinFlags` (reserved, 0).
    pub pin_flags: u32,
    /// `OutputCompression`.
    pub output_compression: Compression,
    /// `PinWeight` (reserved, 0).
    pub pin_weight: u32,
}

/// An extended framing (`KSALLOCATOR_FRAMING_EX`) with `N` items, laid out exactly as C lays
/// out an instance with `N` items, so a `static` of it can be handed to AVStream as the pin's
/// `AllocatorFraming` ([`FramingEx::as_raw`]).
///
/// # Invariants
///
/// `count_items == N` and `1 <= N <= MAX_ITEMS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FramingEx<const N: usize> {
    count_items: u32,
    pin_flags: u32,
    output_compression: Compression,
    pin_weight: u32,
    items: [FramingItem; N],
}

const _: () = {
    use core::mem::offset_of;
    use ks_sys::KSALLOCATOR_FRAMING_EX as Raw;
    assert!(size_of::<FramingEx<1>>() == size_of::<Raw>());
    assert!(align_of::<FramingEx<1>>() == align_of::<Raw>());
    assert!(offset_of!(FramingEx<1>, count_items) == offset_of!(Raw, CountItems));
    assert!(offset_of!(FramingEx<1>, pin_flags) == offset_of!(Raw, PinFlags));
    assert!(offset_of!(FramingEx<1>, output_compression) == offset_of!(Raw, OutputCompression));
    assert!(offset_of!(FramingEx<1>, pin_weight) == offset_of!(Raw, PinWeight));
    assert!(offset_of!(FramingEx<1>, items) == offset_of!(Raw, FramingItem));
    assert!(size_of::<FramingEx<3>>() == HEADER_LEN + 3 * ITEM_LEN);
};

impl FramingEx<1> {
    /// The exact equivalent of `DECLARE_SIMPLE_FRAMING_EX(Name, MemoryType, Flags, Frames,
    /// Alignment, MinFrameSize, MaxFrameSize)`: one item, identity compression, any bus,
    /// physical range "don't care", optimal range `min..=max` with stepping 1.
    ///
    /// ```
    /// use ks_allocator::framing::{FramingEx, ItemFlags, MemoryType};
    ///
    /// static FRAMING: FramingEx<1> = FramingEx::simple(
    ///     MemoryType::KERNEL_NONPAGED,
    ///     ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY),
    ///     2,
    ///     ks_sys::FILE_QUAD_ALIGNMENT,
    ///     2 * ks_sys::PAGE_SIZE,
    ///     2 * ks_sys::PAGE_SIZE,
    /// );
    /// assert_eq!(FRAMING.items()[0].frames, 2);
    /// ```
    #[must_use]
    pub const fn simple(
        memory_type: MemoryType,
        flags: ItemFlags,
        frames: u32,
        alignment: u32,
        min_frame_size: u32,
        max_frame_size: u32,
    ) -> Self {
        Self::new([FramingItem::new(memory_type)
            .with_flags(flags)
            .with_frames(frames)
            .with_alignment(alignment)
            .with_optimal_range(FramingRange::new(min_frame_size, max_frame_size))])
    }
}

impl<const N: usize> FramingEx<N> {
    /// A framing with these items (item 0 is the preferred one), identity compression and
    /// reserved fields 0.
    #[must_use]
    pub const fn new(items: [FramingItem; N]) -> Self {
        const {
            assert!(N >= 1, "a framing needs at least one item");
            assert!(N <= super::MAX_ITEMS as usize, "too many framing items");
        }
        #[expect(clippy::cast_possible_truncation, reason = "N <= MAX_ITEMS, checked above")]
        let count_items = N as u32;
        // INVARIANT: count_items is N, and N is in range by the assertions above.
        Self {
            count_items,
            pin_flags: 0,
            output_compression: Compression::IDENTITY,
            pin_weight: 0,
            items,
        }
    }

    /// The same framing with an output compression (transform pins).
    #[must_use]
    pub const fn with_compression(self, output_compression: Compression) -> Self {
        Self { output_compression, ..self }
    }

    /// The header fields.
    #[must_use]
    pub const fn header(&self) -> FramingExHeader {
        FramingExHeader {
            count_items: self.count_items,
            pin_flags: self.pin_flags,
            output_compression: self.output_compression,
            pin_weight: self.pin_weight,
        }
    }

    /// The items.
    #[must_use]
    pub const fn items(&self) -> &[FramingItem; N] {
        &self.items
    }

    /// The items, writable (the count cannot change).
    pub const fn items_mut(&mut self) -> &mut [FramingItem; N] {
        &mut self.items
    }

    /// The output compression.
    #[must_use]
    pub const fn output_compression(&self) -> Compression {
        self.output_compression
    }

    /// Size of the C structure: `24 + 88 * N` bytes.
    #[must_use]
    pub const fn byte_len(&self) -> usize {
        size_of::<Self>()
    }

    /// A pointer to use as `KSPIN_DESCRIPTOR_EX.AllocatorFraming`.
    ///
    /// The memory behind it has the C layout of a `KSALLOCATOR_FRAMING_EX` with `N` items.
    #[must_use]
    pub const fn as_raw(&self) -> *const ks_sys::KSALLOCATOR_FRAMING_EX {
        ptr::from_ref(self).cast()
    }

    /// A borrowed view, the form the validator and the property handlers work on.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn view(&self) -> FramingExView<'_> {
        FramingExView::from_items(self.header(), &self.items)
    }

    /// Writes the `24 + 88 * N` bytes of the structure into `out` and returns their number.
    ///
    /// # Errors
    ///
    /// [`Error::BUFFER_TOO_SMALL`](crate::Error::BUFFER_TOO_SMALL) if `out` is shorter; `out` is then
    /// left unchanged.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn encode(&self, out: &mut [u8]) -> crate::Result<usize> {
        self.view().encode(out)
    }
}

impl<const N: usize> Default for FramingEx<N> {
    /// `N` items of any memory with "don't care" ranges.
    fn default() -> Self {
        Self::new([FramingItem::new(MemoryType::DONT_CARE); N])
    }
}
