//! The framing validator (specification section 7.4).
//!
//! Findings are reported one by one to a callback, so validation needs no allocation and works
//! on framings of any size. An **error** makes a framing unusable: an allocator cannot be built
//! from it, or a peer could not interpret it. A **warning** is merely unusual (a reserved field
//! set, a stepping of 0, an optimal range outside the physical one, …); real drivers ship such
//! framings and they work.

use core::fmt;

use super::{
    Compression, Framing, FramingExView, FramingRange, ItemFlags, OptionFlags, PoolType,
    RequirementFlags,
};
use crate::Error;

/// The largest alignment mask the default allocator honours: page alignment.
pub const MAX_ALIGNMENT_MASK: u32 = ks_sys::PAGE_SIZE - 1;

/// How serious a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Unusual but usable.
    Warning,
    /// The framing is unusable.
    Error,
}

/// What is wrong with one field.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    /// A reserved or unused field is not 0.
    ReservedNotZero {
        /// Its value.
        value: u32,
    },
    /// A compression ratio term is 0.
    ZeroRatio,
    /// The compression is not the identity {1, 1, 0}; only transform pins change frame sizes.
    NonIdentityCompression {
        /// The compression.
        compression: Compression,
    },
    /// Flag bits that no header defines.
    UnknownFlags {
        /// The unknown bits.
        bits: u32,
    },
    /// An alignment that is not of the form `2^k - 1`.
    NotAlignmentMask {
        /// The value.
        value: u32,
    },
    /// An alignment coarser than a page, which the default allocator cannot honour.
    AlignmentAbovePage {
        /// The value.
        value: u32,
    },
    /// A 2-D pitch (`FramePitch`) that is not positive.
    NonPositivePitch {
        /// The pitch.
        pitch: i32,
    },
    /// A range whose minimum exceeds its maximum.
    InvertedRange {
        /// The range.
        range: FramingRange,
    },
    /// Stepping 0 in a range of several sizes; treated as 1.
    ZeroStepping {
        /// The range.
        range: FramingRange,
    },
    /// Stepping larger than the span of the range, so only the minimum is reachable.
    SteppingExceedsSpan {
        /// The range.
        range: FramingRange,
    },
    /// A range whose largest size is 0: no frame could hold data.
    ZeroMaxFrameSize,
    /// The optimal range reaches outside the physical range.
    OptimalOutsidePhysical {
        /// The optimal range.
        optimal: FramingRange,
        /// The physical range.
        physical: FramingRange,
    },
    /// A weight the documentation says is unsupported is set.
    UnsupportedWeight {
        /// Its value.
        value: u32,
    },
    /// A frame size of 0 in an allocator create request.
    ZeroFrameSize,
    /// A pool type the default allocator does not serve.
    UnsupportedPoolType {
        /// Its value.
        pool_type: PoolType,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ReservedNotZero { value } => write!(f, "reserved, should be 0 but is {value:#x}"),
            Self::ZeroRatio => f.write_str("is 0; a compression ratio needs non-zero terms"),
            Self::NonIdentityCompression { compression: c } => write!(
                f,
                "{}/{} + {} changes frame sizes; only transform pins should (identity is 1/1 + 0)",
                c.numerator, c.denominator, c.constant_margin
            ),
            Self::UnknownFlags { bits } => write!(f, "has undefined bits {bits:#010x}"),
            Self::NotAlignmentMask { value } => {
                write!(
                    f,
                    "{value:#x} is not an alignment mask (2^k - 1, e.g. FILE_QUAD_ALIGNMENT = 7)"
                )
            }
            Self::AlignmentAbovePage { value } => write!(
                f,
                "{value:#x} asks for more than page alignment ({MAX_ALIGNMENT_MASK:#x}), which the default allocator cannot honour"
            ),
            Self::NonPositivePitch { pitch } => write!(f, "2-D pitch {pitch} is not positive"),
            Self::InvertedRange { range } => write!(
                f,
                "minimum {} exceeds maximum {}",
                range.min_frame_size, range.max_frame_size
            ),
            Self::ZeroStepping { range } => write!(
                f,
                "stepping 0 in {}..={} (treated as 1)",
                range.min_frame_size, range.max_frame_size
            ),
            Self::SteppingExceedsSpan { range } => write!(
                f,
                "stepping {} exceeds the span {}..={}, so only {} is reachable",
                range.stepping, range.min_frame_size, range.max_frame_size, range.min_frame_size
            ),
            Self::ZeroMaxFrameSize => {
                f.write_str("largest frame size is 0: no frame could hold data")
            }
            Self::OptimalOutsidePhysical { optimal, physical } => write!(
                f,
                "optimal range {}..={} reaches outside the physical range {}..={}",
                optimal.min_frame_size,
                optimal.max_frame_size,
                physical.min_frame_size,
                physical.max_frame_size
            ),
            Self::UnsupportedWeight { value } => {
                write!(f, "is {value}; weights are documented as unsupported (0)")
            }
            Self::ZeroFrameSize => f.write_str("is 0; an allocator needs a frame size"),
            Self::UnsupportedPoolType { pool_type } => write!(
                f,
                "{pool_type} is not NonPagedPool, PagedPool, NonPagedPoolNx or NonPagedPoolNxCacheAligned"
            ),
        }
    }
}

/// One thing the validator found, with where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The framing item the field belongs to, or `None` for the header or a legacy framing.
    pub item: Option<usize>,
    /// The C name of the field (`"FileAlignment"`, `"PhysicalRange"`, …).
    pub field: &'static str,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.item {
            Some(item) => {
                write!(f, "{severity}: FramingItem[{item}].{}: {}", self.field, self.problem)
            }
            None => write!(f, "{severity}: {}: {}", self.field, self.problem),
        }
    }
}

/// Counts of a validation run and its first error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
    /// The first error found.
    pub first_error: Option<Finding>,
}

impl Summary {
    fn add(&mut self, finding: Finding) {
        match finding.severity {
            Severity::Error => {
                self.errors += 1;
                self.first_error.get_or_insert(finding);
            }
            Severity::Warning => self.warnings += 1,
        }
    }

    /// `Ok` if there is no error.
    ///
    /// # Errors
    ///
    /// The first error.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn into_result(self) -> Result<(), Finding> {
        self.first_error.map_or(Ok(()), Err)
    }
}

impl core::error::Error for Finding {}

impl From<Finding> for Error {
    /// `STATUS_INVALID_PARAMETER`: a framing with a validation error cannot be used.
    fn from(_: Finding) -> Self {
        Self::INVALID_PARAMETER
    }
}

/// The role a legacy 24-byte framing plays, which decides how its first word is read and how
/// strict the rules are (specification section 7.4 (B) and (C)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegacyRole {
    /// An allocator create request or `InitializeAllocator` argument: `OptionsFlags` may hold
    /// only `KSALLOCATOR_OPTIONF_VALID` bits (what the header's mask implies Windows accepts).
    Request,
    /// Like [`LegacyRole::Request`] but accepting the four requirement bits in `OptionsFlags`
    /// too, as ReactOS' ks.sys does.
    RequestLenient,
    /// A `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` reply: `RequirementsFlags`; a frame size or
    /// count of 0 means "no requirement".
    Query,
}

const fn is_alignment_mask(value: u32) -> bool {
    value & value.wrapping_add(1) == 0
}

const fn is_allocator_pool_type(pool_type: PoolType) -> bool {
    matches!(
        pool_type.0,
        ks_sys::NonPagedPool
            | ks_sys::PagedPool
            | ks_sys::NonPagedPoolNx
            | ks_sys::NonPagedPoolNxCacheAligned
    )
}

struct Sink<'f, F: FnMut(Finding)> {
    report: &'f mut F,
    item: Option<usize>,
}

impl<F: FnMut(Finding)> Sink<'_, F> {
    fn error(&mut self, field: &'static str, problem: Problem) {
        (self.report)(Finding { severity: Severity::Error, item: self.item, field, problem });
    }

    fn warning(&mut self, field: &'static str, problem: Problem) {
        (self.report)(Finding { severity: Severity::Warning, item: self.item, field, problem });
    }

    fn reserved(&mut self, field: &'static str, value: u32) {
        if value != 0 {
            self.warning(field, Problem::ReservedNotZero { value });
        }
    }

    /// Range rules shared by the physical and the optimal range. Returns whether the range is
    /// well-formed (min <= max).
    fn range(&mut self, field: &'static str, range: FramingRange) -> bool {
        if range.min_frame_size > range.max_frame_size {
            self.error(field, Problem::InvertedRange { range });
            return false;
        }
        let span = range.max_frame_size - range.min_frame_size;
        if span > 0 && range.stepping == 0 {
            self.warning(field, Problem::ZeroStepping { range });
        } else if span > 0 && range.stepping > span {
            self.warning(field, Problem::SteppingExceedsSpan { range });
        }
        true
    }

    /// The alignment field of an extended item or a legacy framing.
    fn alignment(&mut self, value: u32, above_page: Severity) {
        if !is_alignment_mask(value) {
            self.error("FileAlignment", Problem::NotAlignmentMask { value });
        } else if value > MAX_ALIGNMENT_MASK {
            let problem = Problem::AlignmentAbovePage { value };
            match above_page {
                Severity::Error => self.error("FileAlignment", problem),
                Severity::Warning => self.warning("FileAlignment", problem),
            }
        }
    }
}

impl FramingExView<'_> {
    /// Reports every finding of rules (A) to `report`, header first, then each item in order.
    /// Nothing is allocated, so it works on framings of any size, at any IRQL.
    ///
    /// ```
    /// use ks_allocator::framing::{
    ///     FramingEx, FramingItem, FramingRange, MemoryType, Problem, Severity,
    /// };
    ///
    /// // Item 1 asks for a 5-byte "alignment" and has its sizes the wrong way round.
    /// let framing = FramingEx::new([
    ///     FramingItem::new(MemoryType::KERNEL_NONPAGED).with_exact_size(4096),
    ///     FramingItem::new(MemoryType::KERNEL_PAGED)
    ///         .with_alignment(5)
    ///         .with_physical_range(FramingRange::new(8192, 4096)),
    /// ]);
    /// let mut findings = Vec::new();
    /// framing.view().validate(|finding| findings.push(finding));
    ///
    /// let errors: Vec<String> = findings
    ///     .iter()
    ///     .filter(|finding| finding.severity == Severity::Error)
    ///     .map(ToString::to_string)
    ///     .collect();
    /// assert_eq!(errors, [
    ///     "error: FramingItem[1].FileAlignment: 0x5 is not an alignment mask (2^k - 1, e.g. FILE_QUAD_ALIGNMENT = 7)",
    ///     "error: FramingItem[1].PhysicalRange: minimum 8192 exceeds maximum 4096",
    /// ]);
    /// assert!(matches!(findings[0].problem, Problem::NotAlignmentMask { value: 5 }));
    /// assert_eq!(framing.view().check(), Err(findings[0]));
    /// ```
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn validate(&self, mut report: impl FnMut(Finding)) {
        let header = self.header();
        let mut sink = Sink { report: &mut report, item: None };
        sink.reserved("PinFlags", header.pin_flags);
        sink.reserved("PinWeight", header.pin_weight);
        let compression = header.output_compression;
        if compression.numerator == 0 {
            sink.error("OutputCompression.RatioNumerator", Problem::ZeroRatio);
        }
        if compression.denominator == 0 {
            sink.error("OutputCompression.RatioDenominator", Problem::ZeroRatio);
        }
        if compression.numerator != 0 && compression.denominator != 0 && !compression.is_identity()
        {
            sink.warning("OutputCompression", Problem::NonIdentityCompression { compression });
        }

        for (index, item) in self.items().enumerate() {
            sink.item = Some(index);
            let unknown = item.flags.bits() & !ItemFlags::all().bits();
            if unknown != 0 {
                sink.error("Flags", Problem::UnknownFlags { bits: unknown });
            }
            let unknown = item.memory_flags & !RequirementFlags::all().bits();
            if unknown != 0 {
                sink.warning("MemoryFlags", Problem::UnknownFlags { bits: unknown });
            }
            sink.reserved("BusFlags", item.bus_flags);
            if item.flags.contains(ItemFlags::BUFFER_2D_REQUIRED) {
                let pitch = item.frame_pitch();
                if pitch <= 0 {
                    sink.warning("FramePitch", Problem::NonPositivePitch { pitch });
                }
            } else {
                sink.alignment(item.file_alignment, Severity::Warning);
            }

            let physical = item.physical_range;
            let optimal = item.framing_range.range;
            let physical_ok = sink.range("PhysicalRange", physical);
            let optimal_ok = sink.range("FramingRange.Range", optimal);
            if physical_ok && physical.max_frame_size == 0 {
                sink.warning("PhysicalRange.MaxFrameSize", Problem::ZeroMaxFrameSize);
            }
            if physical_ok && optimal_ok && !optimal.is_within(physical) {
                sink.warning(
                    "FramingRange.Range",
                    Problem::OptimalOutsidePhysical { optimal, physical },
                );
            }
            for (field, value) in [
                ("FramingRange.InPlaceWeight", item.framing_range.in_place_weight),
                ("FramingRange.NotInPlaceWeight", item.framing_range.not_in_place_weight),
            ] {
                if value != 0 {
                    sink.warning(field, Problem::UnsupportedWeight { value });
                }
            }
        }
    }

    /// Counts errors and warnings.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        self.validate(|finding| summary.add(finding));
        summary
    }

    /// `Ok` if the framing has no error (warnings allowed).
    ///
    /// # Errors
    ///
    /// The first error found.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn check(&self) -> Result<(), Finding> {
        self.summary().into_result()
    }
}

impl Framing {
    /// Reports every finding of rules (B) or (C), depending on `role`, to `report`.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn validate(&self, role: LegacyRole, mut report: impl FnMut(Finding)) {
        let mut sink = Sink { report: &mut report, item: None };
        match role {
            LegacyRole::Request | LegacyRole::RequestLenient => {
                let valid = if role == LegacyRole::Request {
                    OptionFlags::all().bits()
                } else {
                    RequirementFlags::INPLACE_MODIFIER.bits()
                        | RequirementFlags::SYSTEM_MEMORY.bits()
                        | RequirementFlags::FRAME_INTEGRITY.bits()
                        | RequirementFlags::MUST_ALLOCATE.bits()
                };
                let unknown = self.flags & !valid;
                if unknown != 0 {
                    sink.error("OptionsFlags", Problem::UnknownFlags { bits: unknown });
                }
                if self.frame_size == 0 {
                    sink.error("FrameSize", Problem::ZeroFrameSize);
                }
                sink.alignment(self.file_alignment, Severity::Error);
            }
            LegacyRole::Query => {
                let unknown = self.flags & !RequirementFlags::all().bits();
                if unknown != 0 {
                    sink.error("RequirementsFlags", Problem::UnknownFlags { bits: unknown });
                }
                sink.alignment(self.file_alignment, Severity::Warning);
            }
        }
        if !is_allocator_pool_type(self.pool_type) {
            sink.error("PoolType", Problem::UnsupportedPoolType { pool_type: self.pool_type });
        }
        sink.reserved("Reserved", self.reserved);
    }

    /// Counts errors and warnings for `role`.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn summary(&self, role: LegacyRole) -> Summary {
        let mut summary = Summary::default();
        self.validate(role, |finding| summary.add(finding));
        summary
    }

    /// `Ok` if the framing has no error for `role` (warnings allowed).
    ///
    /// # Errors
    ///
    /// The first error found.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn check(&self, role: LegacyRole) -> Result<(), Finding> {
        self.summary(role).into_result()
    }
}

/// Why the `KsValidateAllocatorFramingEx` profile rejects a framing
/// ([`FramingExView::check_ks_validate_profile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KsValidateRejection {
    /// Item 0 lacks `KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT`.
    NoPartialReadSupport,
    /// `OutputCompression.RatioNumerator` is `0xFFFFFFFF`.
    UnboundedNumerator,
    /// `OutputCompression.RatioDenominator` is 0.
    ZeroDenominator,
    /// The compression does not expand (`RatioNumerator <= RatioDenominator`).
    NotExpanding {
        /// The framing's output compression.
        compression: Compression,
    },
}

impl fmt::Display for KsValidateRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPartialReadSupport => {
                f.write_str("item 0: Flags lacks KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT")
            }
            Self::UnboundedNumerator => {
                f.write_str("OutputCompression.RatioNumerator is 0xFFFFFFFF")
            }
            Self::ZeroDenominator => f.write_str("OutputCompression.RatioDenominator is 0"),
            Self::NotExpanding { compression } => write!(
                f,
                "OutputCompression {}/{} does not expand (the numerator must exceed the \
                 denominator)",
                compression.numerator, compression.denominator
            ),
        }
    }
}

impl core::error::Error for KsValidateRejection {}

impl From<KsValidateRejection> for Error {
    /// `STATUS_INVALID_DEVICE_REQUEST`, as the routine returns it.
    fn from(_: KsValidateRejection) -> Self {
        Self::INVALID_DEVICE_REQUEST
    }
}

impl FramingExView<'_> {
    /// The acceptance rule of ks.sys's `KsValidateAllocatorFramingEx` as ReactOS implements it
    /// (specification sections 3.5 and 7.4 (A) 5): item 0 supports partial reads and the output
    /// compression strictly expands, with a numerator below `0xFFFFFFFF`. (The routine's first
    /// rule, a buffer of at least 112 bytes, holds for every view.)
    ///
    /// This is **not** a framing validator: it rejects nearly every framing real drivers ship,
    /// [`DECLARE_SIMPLE_FRAMING_EX`](super::FramingEx::simple) included. Use
    /// [`validate`](Self::validate) to decide whether a framing is usable; use this only to
    /// predict what the system routine answers.
    ///
    /// # Errors
    ///
    /// The first rule the framing breaks, in the order the routine checks them.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn check_ks_validate_profile(&self) -> Result<(), KsValidateRejection> {
        let first = self.item(0).ok_or(KsValidateRejection::NoPartialReadSupport)?;
        if !first.flags.contains(ItemFlags::PARTIAL_READ_SUPPORT) {
            return Err(KsValidateRejection::NoPartialReadSupport);
        }
        let compression = self.header().output_compression;
        if compression.numerator == u32::MAX {
            return Err(KsValidateRejection::UnboundedNumerator);
        }
        if compression.denominator == 0 {
            return Err(KsValidateRejection::ZeroDenominator);
        }
        if compression.numerator <= compression.denominator {
            return Err(KsValidateRejection::NotExpanding { compression });
        }
        Ok(())
    }
}
