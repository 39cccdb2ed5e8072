//! Framing types: the golden `DECLARE_SIMPLE_FRAMING_EX` vector, conversions, the parser's
//! errors and every validation rule of specification section 7.4, each with a passing and a
//! failing case.

use ks_allocator::{
    Error,
    framing::{
        BusType, Compression, Finding, Framing, FramingEx, FramingExView, FramingItem,
        FramingRange, ItemFlags, LegacyRole, MemoryType, OptionFlags, ParseError, PoolType,
        Problem, RequirementFlags, Severity, WeightedRange,
    },
};

/// Specification section 2.17: the bytes the C compiler emits for
/// `DECLARE_SIMPLE_FRAMING_EX(x, STATICGUIDOF(KSMEMORY_TYPE_KERNEL_NONPAGED),
/// KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY|KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY, 2,
/// FILE_QUAD_ALIGNMENT, 0x2000, 0x2000)`, as 32-bit little-endian words.
const GOLDEN_WORDS: [u32; 28] = [
    0x0000_0001,
    0x0000_0000,
    0x0000_0001,
    0x0000_0001, //
    0x0000_0000,
    0x0000_0000,
    0x4a6d_5fc4,
    0x11d1_7895, //
    0xa000_69b0,
    0x0228_06c9,
    0x0000_0000,
    0x0000_0000, //
    0x0000_0000,
    0x0000_0000,
    0x0000_0000,
    0x0000_0000, //
    0x8000_0002,
    0x0000_0002,
    0x0000_0007,
    0x0000_0000, //
    0x0000_0000,
    0xffff_ffff,
    0x0000_0001,
    0x0000_2000, //
    0x0000_2000,
    0x0000_0001,
    0x0000_0000,
    0x0000_0000, //
];

/// The hex dump of section 2.17, word by word as printed there (bytes in memory order).
const GOLDEN_HEX: &str = "01000000 00000000 01000000 01000000
00000000 00000000 c45f6d4a 9578d111
b06900a0 c9062802 00000000 00000000
00000000 00000000 00000000 00000000
02000080 02000000 07000000 00000000
00000000 ffffffff 01000000 00200000
00200000 01000000 00000000 00000000";

fn golden_bytes() -> Vec<u8> {
    let hex: String = GOLDEN_HEX.split_whitespace().collect();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

static GOLDEN: FramingEx<1> = FramingEx::simple(
    MemoryType::KERNEL_NONPAGED,
    ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY),
    2,
    ks_sys::FILE_QUAD_ALIGNMENT,
    0x2000,
    0x2000,
);

#[test]
fn simple_framing_matches_the_golden_vector_byte_for_byte() {
    let golden = golden_bytes();
    assert_eq!(golden.len(), 112);
    let words: Vec<u8> = GOLDEN_WORDS.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(words, golden, "the two transcriptions of section 2.17 agree");

    // Encoded through the codec.
    let mut encoded = [0u8; 112];
    assert_eq!(GOLDEN.encode(&mut encoded), Ok(112));
    assert_eq!(encoded.as_slice(), golden.as_slice());

    // And the static itself, as AVStream reads it through `AllocatorFraming`.
    // SAFETY: `as_raw` points at the 112 initialised bytes of `GOLDEN`, which has no padding
    // (every field is a u32 or a 4-aligned GUID) and lives for the whole program.
    let in_memory =
        unsafe { std::slice::from_raw_parts(GOLDEN.as_raw().cast::<u8>(), GOLDEN.byte_len()) };
    assert_eq!(in_memory, golden.as_slice());
}

#[test]
fn raw_structures_convert_both_ways() {
    let item = GOLDEN.items()[0];
    let raw = item.to_raw();
    assert_eq!(raw.Flags, 0x8000_0002);
    assert_eq!(raw.FramingRange.Range.MaxFrameSize, 0x2000);
    assert_eq!(FramingItem::from_raw(&raw), item);

    // SAFETY: `as_raw` points at a live `FramingEx<1>`, which has the layout of the C struct.
    let raw_ex = unsafe { &*GOLDEN.as_raw() };
    assert_eq!(raw_ex.CountItems, 1);
    assert_eq!(FramingItem::from_raw(&raw_ex.FramingItem[0]), item);

    let legacy = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 4, 0x1000, 0x3F);
    assert_eq!(Framing::from_raw(&legacy.to_raw()), legacy);
    assert_eq!(Framing::parse(&legacy.to_bytes()), Ok(legacy));
    assert_eq!(legacy.options(), OptionFlags::SYSTEM_MEMORY);
}

#[test]
fn multi_item_framings_build_and_round_trip() {
    let framing = FramingEx::new([
        FramingItem::new(MemoryType::DEVICE_UNKNOWN)
            .with_bus(BusType::PCI)
            .with_flags(
                ItemFlags::MUST_ALLOCATE | ItemFlags::DEVICE_SPECIFIC | ItemFlags::CAN_ALLOCATE,
            )
            .with_frames(8)
            .with_alignment(ks_sys::PAGE_SIZE - 1)
            .with_weight(10)
            .with_physical_range(FramingRange::new(0x1000, 0x10_0000).with_stepping(0x1000))
            .with_optimal_range(FramingRange::new(0x4000, 0x8000).with_stepping(0x1000)),
        FramingItem::new(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::SYSTEM_MEMORY)
            .with_frames(4)
            .with_exact_size(0x6000),
        FramingItem::new(MemoryType::DONT_CARE)
            .with_weighted_range(WeightedRange::new(FramingRange::new(1, 2)).with_weights(0, 0)),
    ])
    .with_compression(Compression::new(3, 2, 16));
    let mut bytes = [0u8; 288];
    assert_eq!(framing.encode(&mut bytes), Ok(288));
    let view = FramingExView::parse(&bytes).unwrap();
    assert_eq!(view.count(), 3);
    assert_eq!(view.byte_len(), 288);
    assert_eq!(view.header(), framing.header());
    assert!(view.items().eq(framing.items().iter().copied()));
    assert_eq!(view.item(3), None);

    let mut short = [0u8; 287];
    assert_eq!(framing.encode(&mut short), Err(Error::BUFFER_TOO_SMALL));
    assert!(short.iter().all(|b| *b == 0), "a failed encode writes nothing");
}

#[test]
fn compression_follows_the_documented_formula() {
    assert_eq!(Compression::IDENTITY.apply(1234), Some(1234));
    assert_eq!(Compression::new(1, 3, 0).apply(10), Some(4), "ceil(10/3)");
    assert_eq!(Compression::new(3, 1, 100).apply(10), Some(130));
    assert_eq!(Compression::new(1, 0, 0).apply(10), None);
    assert_eq!(Compression::new(2, 1, 0).apply(u32::MAX), None);
}

#[test]
fn ranges_honour_stepping() {
    let range = FramingRange::new(100, 200).with_stepping(25);
    assert!(range.contains(100) && range.contains(175) && range.contains(200));
    assert!(!range.contains(110) && !range.contains(99) && !range.contains(225));
    assert!(FramingRange::exact(64).contains(64), "stepping 0 counts as 1");
}

mod parser {
    use super::*;

    fn header(count: u32) -> Vec<u8> {
        [count, 0, 1, 1, 0, 0].iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn too_short_for_the_header() {
        for len in [0, 1, 23] {
            assert_eq!(
                FramingExView::parse(&vec![1; len]).unwrap_err(),
                ParseError::TooShort { len, needed: 24 }
            );
        }
        assert_eq!(Framing::parse(&[0; 23]), Err(ParseError::TooShort { len: 23, needed: 24 }));
    }

    #[test]
    fn zero_items() {
        let mut bytes = header(0);
        bytes.resize(112, 0);
        assert_eq!(FramingExView::parse(&bytes).unwrap_err(), ParseError::NoItems);
    }

    #[test]
    fn count_whose_size_overflows() {
        let max = ks_allocator::framing::MAX_ITEMS;
        assert_eq!(ks_allocator::framing::ex_len(max), Some(24 + 88 * max));
        assert_eq!(ks_allocator::framing::ex_len(max + 1), None);
        for count in [max + 1, u32::MAX / 88 + 1, u32::MAX] {
            assert_eq!(
                FramingExView::parse(&header(count)).unwrap_err(),
                ParseError::TooManyItems { count }
            );
        }
        // The largest count that fits is a truncation, not an overflow.
        assert!(matches!(FramingExView::parse(&header(max)), Err(ParseError::Truncated { .. })));
    }

    #[test]
    fn shorter_than_the_count_claims() {
        let mut bytes = header(2);
        bytes.resize(199, 0);
        assert_eq!(
            FramingExView::parse(&bytes).unwrap_err(),
            ParseError::Truncated { count: 2, len: 199, needed: 200 }
        );
        bytes.push(0);
        assert_eq!(FramingExView::parse(&bytes).unwrap().count(), 2);
    }

    #[test]
    fn trailing_bytes_are_counted_not_read() {
        let mut bytes = vec![0u8; 112];
        GOLDEN.encode(&mut bytes).unwrap();
        bytes.extend_from_slice(&[0xAA; 5]);
        let view = FramingExView::parse(&bytes).unwrap();
        assert_eq!(view.trailing_len(), 5);
        assert_eq!(view.item(0), Some(GOLDEN.items()[0]));
    }

    #[test]
    fn errors_map_to_ntstatus() {
        assert_eq!(Error::from(ParseError::NoItems), Error::INVALID_PARAMETER);
        assert_eq!(
            Error::from(ParseError::TooShort { len: 0, needed: 24 }),
            Error::BUFFER_TOO_SMALL
        );
    }
}

/// Findings of an extended framing with one item.
fn findings_of(item: FramingItem, compression: Compression) -> Vec<Finding> {
    let framing = FramingEx::new([item]).with_compression(compression);
    let mut out = Vec::new();
    framing.view().validate(|f| out.push(f));
    out
}

fn base() -> FramingItem {
    GOLDEN.items()[0]
}

/// Exactly one finding, on this field, with this severity; returns its problem.
fn single(findings: &[Finding], field: &str, severity: Severity) -> Problem {
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].field, field);
    assert_eq!(findings[0].severity, severity);
    findings[0].problem
}

mod extended_rules {
    use super::*;

    #[test]
    fn the_golden_framing_is_clean() {
        assert!(findings_of(base(), Compression::IDENTITY).is_empty());
    }

    #[test]
    fn reserved_header_fields_warn() {
        let mut bytes = [0u8; 112];
        GOLDEN.encode(&mut bytes).unwrap();
        bytes[4] = 1; // PinFlags
        bytes[20] = 2; // PinWeight
        let view = FramingExView::parse(&bytes).unwrap();
        let mut findings = Vec::new();
        view.validate(|f| findings.push(f));
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings.iter().all(|f| f.severity == Severity::Warning && f.item.is_none()));
        assert_eq!(findings[0].field, "PinFlags");
        assert_eq!(findings[1].field, "PinWeight");
    }

    #[test]
    fn zero_ratio_terms_are_errors() {
        let f = findings_of(base(), Compression::new(1, 0, 0));
        assert_eq!(
            single(&f, "OutputCompression.RatioDenominator", Severity::Error),
            Problem::ZeroRatio
        );
        let f = findings_of(base(), Compression::new(0, 1, 0));
        assert_eq!(
            single(&f, "OutputCompression.RatioNumerator", Severity::Error),
            Problem::ZeroRatio
        );
    }

    #[test]
    fn non_identity_compression_warns() {
        let f = findings_of(base(), Compression::new(2, 1, 0));
        assert!(matches!(
            single(&f, "OutputCompression", Severity::Warning),
            Problem::NonIdentityCompression { .. }
        ));
    }

    #[test]
    fn alignment_must_be_a_mask() {
        for good in [0, 1, 3, 7, 0xF, 0x1FF, 0xFFF] {
            assert!(
                findings_of(base().with_alignment(good), Compression::IDENTITY).is_empty(),
                "{good:#x}"
            );
        }
        for bad in [2, 5, 6, 0x10, 0x1000, 0xFFFE] {
            let f = findings_of(base().with_alignment(bad), Compression::IDENTITY);
            assert_eq!(
                single(&f, "FileAlignment", Severity::Error),
                Problem::NotAlignmentMask { value: bad }
            );
            assert_eq!(f[0].item, Some(0));
        }
        let f = findings_of(base().with_alignment(0x1FFF), Compression::IDENTITY);
        assert_eq!(
            single(&f, "FileAlignment", Severity::Warning),
            Problem::AlignmentAbovePage { value: 0x1FFF }
        );
    }

    #[test]
    fn a_2d_pitch_is_not_a_mask() {
        let item = base()
            .with_flags(base().flags | ItemFlags::BUFFER_2D_REQUIRED)
            .with_alignment(1280 * 2);
        assert!(findings_of(item, Compression::IDENTITY).is_empty());
        let f = findings_of(item.with_alignment((-640i32).cast_unsigned()), Compression::IDENTITY);
        assert_eq!(
            single(&f, "FramePitch", Severity::Warning),
            Problem::NonPositivePitch { pitch: -640 }
        );
    }

    #[test]
    fn inverted_ranges_are_errors() {
        let range = FramingRange::new(200, 100);
        let f = findings_of(base().with_physical_range(range), Compression::IDENTITY);
        assert_eq!(single(&f, "PhysicalRange", Severity::Error), Problem::InvertedRange { range });
        let f = findings_of(base().with_optimal_range(range), Compression::IDENTITY);
        assert_eq!(
            single(&f, "FramingRange.Range", Severity::Error),
            Problem::InvertedRange { range }
        );
    }

    #[test]
    fn stepping_rules() {
        // 0 with min == max is how the WDK samples write an exact size: clean.
        assert!(findings_of(base().with_exact_size(153_600), Compression::IDENTITY).is_empty());
        // 0 over a span is treated as 1, with a warning.
        let range = FramingRange::new(100, 200).with_stepping(0);
        let f = findings_of(base().with_optimal_range(range), Compression::IDENTITY);
        assert_eq!(
            single(&f, "FramingRange.Range", Severity::Warning),
            Problem::ZeroStepping { range }
        );
        // Larger than the span: only the minimum is reachable.
        let range = FramingRange::new(100, 200).with_stepping(101);
        let f = findings_of(base().with_optimal_range(range), Compression::IDENTITY);
        assert_eq!(
            single(&f, "FramingRange.Range", Severity::Warning),
            Problem::SteppingExceedsSpan { range }
        );
        // Equal to the span is fine.
        let range = FramingRange::new(100, 200).with_stepping(100);
        assert!(findings_of(base().with_optimal_range(range), Compression::IDENTITY).is_empty());
    }

    #[test]
    fn optimal_range_outside_physical_warns() {
        let physical = FramingRange::new(0x1000, 0x2000);
        let optimal = FramingRange::new(0x1000, 0x3000);
        let item = base().with_physical_range(physical).with_optimal_range(optimal);
        let f = findings_of(item, Compression::IDENTITY);
        assert_eq!(
            single(&f, "FramingRange.Range", Severity::Warning),
            Problem::OptimalOutsidePhysical { optimal, physical }
        );
        let inside = base()
            .with_physical_range(physical)
            .with_optimal_range(FramingRange::new(0x1800, 0x2000));
        assert!(findings_of(inside, Compression::IDENTITY).is_empty());
    }

    #[test]
    fn a_zero_physical_maximum_warns() {
        let item = base()
            .with_physical_range(FramingRange::new(0, 0))
            .with_optimal_range(FramingRange::new(0, 0));
        let f = findings_of(item, Compression::IDENTITY);
        assert_eq!(
            single(&f, "PhysicalRange.MaxFrameSize", Severity::Warning),
            Problem::ZeroMaxFrameSize
        );
    }

    #[test]
    fn weights_and_bus_flags_warn() {
        let mut item = base();
        item.framing_range = item.framing_range.with_weights(1, 0);
        let f = findings_of(item, Compression::IDENTITY);
        assert_eq!(
            single(&f, "FramingRange.InPlaceWeight", Severity::Warning),
            Problem::UnsupportedWeight { value: 1 }
        );
        let mut item = base();
        item.framing_range = item.framing_range.with_weights(0, 3);
        let f = findings_of(item, Compression::IDENTITY);
        assert_eq!(
            single(&f, "FramingRange.NotInPlaceWeight", Severity::Warning),
            Problem::UnsupportedWeight { value: 3 }
        );
        let mut item = base();
        item.bus_flags = 4;
        let f = findings_of(item, Compression::IDENTITY);
        assert_eq!(
            single(&f, "BusFlags", Severity::Warning),
            Problem::ReservedNotZero { value: 4 }
        );
        // MemoryTypeWeight is a real field: no finding.
        assert!(findings_of(base().with_weight(7), Compression::IDENTITY).is_empty());
    }

    #[test]
    fn unknown_flag_bits() {
        let item = base().with_flags(ItemFlags::from_bits_retain(0x8001_0002));
        let f = findings_of(item, Compression::IDENTITY);
        assert_eq!(
            single(&f, "Flags", Severity::Error),
            Problem::UnknownFlags { bits: 0x0001_0000 }
        );
        // Every documented bit, the newer-SDK ones included, is known.
        let all = base().with_flags(ItemFlags::all() - ItemFlags::BUFFER_2D_REQUIRED);
        assert!(findings_of(all, Compression::IDENTITY).is_empty());
        let mut item = base();
        item.memory_flags = ks_sys::KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE;
        assert!(findings_of(item, Compression::IDENTITY).is_empty());
        item.memory_flags = 0x100;
        let f = findings_of(item, Compression::IDENTITY);
        assert_eq!(
            single(&f, "MemoryFlags", Severity::Warning),
            Problem::UnknownFlags { bits: 0x100 }
        );
    }

    #[test]
    fn findings_name_the_item_and_field() {
        let framing = FramingEx::new([base(), base().with_alignment(5)]);
        let mut findings = Vec::new();
        framing.view().validate(|f| findings.push(f));
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].to_string(),
            "error: FramingItem[1].FileAlignment: 0x5 is not an alignment mask (2^k - 1, e.g. FILE_QUAD_ALIGNMENT = 7)"
        );
        let summary = framing.view().summary();
        assert_eq!((summary.errors, summary.warnings), (1, 0));
        assert_eq!(framing.view().check().map_err(Error::from), Err(Error::INVALID_PARAMETER));
    }
}

mod legacy_rules {
    use super::*;

    fn request() -> Framing {
        Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 2, 153_600, 0)
    }

    fn findings(framing: Framing, role: LegacyRole) -> Vec<Finding> {
        let mut out = Vec::new();
        framing.validate(role, |f| out.push(f));
        out
    }

    #[test]
    fn a_plain_request_is_clean() {
        assert!(findings(request(), LegacyRole::Request).is_empty());
        let uncapped = Framing { frames: 0, ..request() };
        assert!(findings(uncapped, LegacyRole::Request).is_empty(), "Frames 0 = no cap");
    }

    #[test]
    fn requests_need_a_frame_size() {
        let f = findings(Framing { frame_size: 0, ..request() }, LegacyRole::Request);
        assert_eq!(single(&f, "FrameSize", Severity::Error), Problem::ZeroFrameSize);
        // In a query, 0 means "no requirement".
        assert!(
            findings(Framing { frame_size: 0, flags: 0, ..request() }, LegacyRole::Query)
                .is_empty()
        );
    }

    #[test]
    fn option_bits_strict_and_lenient() {
        let with_requirement_bit = Framing { flags: 0x2 | 0x8, ..request() };
        let f = findings(with_requirement_bit, LegacyRole::Request);
        assert_eq!(
            single(&f, "OptionsFlags", Severity::Error),
            Problem::UnknownFlags { bits: 0x8 }
        );
        assert!(findings(with_requirement_bit, LegacyRole::RequestLenient).is_empty());
        let f = findings(Framing { flags: 0x8000_0002, ..request() }, LegacyRole::RequestLenient);
        assert_eq!(
            single(&f, "OptionsFlags", Severity::Error),
            Problem::UnknownFlags { bits: 0x8000_0000 }
        );
    }

    #[test]
    fn pool_types() {
        for ok in [
            PoolType::NON_PAGED,
            PoolType::PAGED,
            PoolType::NON_PAGED_NX,
            PoolType::NON_PAGED_NX_CACHE_ALIGNED,
        ] {
            assert!(
                findings(Framing { pool_type: ok, ..request() }, LegacyRole::Request).is_empty(),
                "{ok}"
            );
        }
        let f = findings(Framing { pool_type: PoolType(2), ..request() }, LegacyRole::Request);
        assert_eq!(
            single(&f, "PoolType", Severity::Error),
            Problem::UnsupportedPoolType { pool_type: PoolType(2) }
        );
    }

    #[test]
    fn alignment_in_requests_and_queries() {
        let f = findings(Framing { file_alignment: 6, ..request() }, LegacyRole::Request);
        assert_eq!(
            single(&f, "FileAlignment", Severity::Error),
            Problem::NotAlignmentMask { value: 6 }
        );
        let f = findings(Framing { file_alignment: 0x1FFF, ..request() }, LegacyRole::Request);
        assert_eq!(
            single(&f, "FileAlignment", Severity::Error),
            Problem::AlignmentAbovePage { value: 0x1FFF }
        );
        let query = Framing { file_alignment: 0x1FFF, flags: 0, ..request() };
        let f = findings(query, LegacyRole::Query);
        assert_eq!(
            single(&f, "FileAlignment", Severity::Warning),
            Problem::AlignmentAbovePage { value: 0x1FFF }
        );
    }

    #[test]
    fn query_requirement_bits() {
        let query = Framing::query(
            RequirementFlags::SYSTEM_MEMORY | RequirementFlags::SYSTEM_MEMORY_CUSTOM_ALLOCATION,
            PoolType::NON_PAGED,
            0,
            0,
            0,
        );
        assert!(findings(query, LegacyRole::Query).is_empty());
        let f = findings(Framing { flags: 0x40, ..query }, LegacyRole::Query);
        assert_eq!(
            single(&f, "RequirementsFlags", Severity::Error),
            Problem::UnknownFlags { bits: 0x40 }
        );
    }

    #[test]
    fn reserved_warns() {
        let f = findings(Framing { reserved: 9, ..request() }, LegacyRole::Request);
        assert_eq!(
            single(&f, "Reserved", Severity::Warning),
            Problem::ReservedNotZero { value: 9 }
        );
        assert!(request().check(LegacyRole::Request).is_ok());
    }
}

/// Specification section 7.4 (A) 5: the `KsValidateAllocatorFramingEx` profile, kept apart
/// from the validator because it rejects ordinary framings.
mod ks_validate_profile {
    use super::*;
    use ks_allocator::framing::KsValidateRejection;

    fn partial_read() -> FramingItem {
        base().with_flags(base().flags.union(ItemFlags::PARTIAL_READ_SUPPORT))
    }

    fn profile(item: FramingItem, compression: Compression) -> Result<(), KsValidateRejection> {
        FramingEx::new([item]).with_compression(compression).view().check_ks_validate_profile()
    }

    #[test]
    fn accepts_an_expanding_partial_read_framing() {
        assert_eq!(profile(partial_read(), Compression::new(2, 1, 0)), Ok(()));
        assert_eq!(profile(partial_read(), Compression::new(0xFFFF_FFFE, 1, 0)), Ok(()));
    }

    #[test]
    fn rejects_each_broken_rule_in_the_routine_order() {
        assert_eq!(
            profile(base(), Compression::new(2, 1, 0)),
            Err(KsValidateRejection::NoPartialReadSupport)
        );
        // The flag is read from item 0 only.
        let framing =
            FramingEx::new([base(), partial_read()]).with_compression(Compression::new(2, 1, 0));
        assert_eq!(
            framing.view().check_ks_validate_profile(),
            Err(KsValidateRejection::NoPartialReadSupport)
        );
        assert_eq!(
            profile(partial_read(), Compression::new(u32::MAX, 1, 0)),
            Err(KsValidateRejection::UnboundedNumerator)
        );
        assert_eq!(
            profile(partial_read(), Compression::new(2, 0, 0)),
            Err(KsValidateRejection::ZeroDenominator)
        );
        for compression in [Compression::IDENTITY, Compression::new(1, 2, 0)] {
            assert_eq!(
                profile(partial_read(), compression),
                Err(KsValidateRejection::NotExpanding { compression })
            );
        }
    }

    #[test]
    fn the_golden_simple_framing_is_rejected_though_it_validates() {
        assert_eq!(GOLDEN.view().summary().errors, 0);
        let rejection = GOLDEN.view().check_ks_validate_profile().unwrap_err();
        assert_eq!(rejection, KsValidateRejection::NoPartialReadSupport);
        assert_eq!(Error::from(rejection), Error::INVALID_DEVICE_REQUEST);
        assert_eq!(
            rejection.to_string(),
            "item 0: Flags lacks KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT"
        );
    }
}
