//! Framing negotiation: every step of the algorithm with a passing and a failing case, the
//! symmetry and self-negotiation properties, and the Microsoft sample framings against a typical
//! sink.

use ks_allocator::{
    NegotiationError,
    framing::{
        BusType, Compression, FramingEx, FramingExView, FramingItem, FramingRange, ItemFlags,
        MemoryType, OptionFlags, PoolType,
    },
    negotiate,
    negotiate::{AllocatorPlan, Ownership, Reason, Side, SizeBasis},
};
use proptest::prelude::*;

fn item(memory_type: MemoryType) -> FramingItem {
    FramingItem::new(memory_type)
}

fn sized(memory_type: MemoryType, size: u32) -> FramingItem {
    item(memory_type).with_exact_size(size)
}

fn run<const U: usize, const D: usize>(
    upstream: &FramingEx<U>,
    downstream: &FramingEx<D>,
) -> Result<AllocatorPlan, NegotiationError> {
    negotiate(&upstream.view(), &downstream.view())
}

fn one(item: FramingItem) -> FramingEx<1> {
    FramingEx::new([item])
}

/// A typical sink: any memory, system memory preferred, no count, no size, preferences only.
fn sink() -> FramingEx<1> {
    FramingEx::simple(
        MemoryType::DONT_CARE,
        ItemFlags::SYSTEM_MEMORY | ItemFlags::PREFERENCES_ONLY,
        0,
        0,
        0,
        u32::MAX,
    )
}

fn size_reason(plan: &AllocatorPlan) -> Reason {
    *plan.reasons().find(|r| matches!(r, Reason::FrameSize { .. })).unwrap()
}

mod items {
    use super::*;

    #[test]
    fn wildcards_and_weights_choose_the_pair() {
        let upstream = FramingEx::new([
            sized(MemoryType::KERNEL_NONPAGED, 4096),
            sized(MemoryType::DEVICE_UNKNOWN, 4096).with_weight(10),
        ]);
        let downstream = FramingEx::new([
            item(MemoryType::DONT_CARE).with_exact_size(4096),
            sized(MemoryType::DEVICE_UNKNOWN, 4096).with_weight(5),
        ]);
        let plan = run(&upstream, &downstream).unwrap();
        assert_eq!((plan.upstream_item, plan.downstream_item), (1, 1), "weight 15 beats weight 0");
        assert_eq!(plan.memory_type, MemoryType::DEVICE_UNKNOWN);
        assert!(!plan.framing.options().contains(OptionFlags::SYSTEM_MEMORY), "device memory");
        let Reason::Items { candidates, weight, .. } = plan.reasons().next().copied().unwrap()
        else {
            panic!()
        };
        assert_eq!((candidates, weight), (3, 15));
    }

    #[test]
    fn system_memory_accepts_kernel_pool() {
        let plan =
            run(&one(sized(MemoryType::KERNEL_PAGED, 100)), &one(sized(MemoryType::SYSTEM, 100)))
                .unwrap();
        assert_eq!(plan.memory_type, MemoryType::KERNEL_PAGED);
        assert_eq!(plan.framing.pool_type, PoolType::PAGED);
    }

    #[test]
    fn disjoint_memory_or_bus_types_fail() {
        let result =
            run(&one(sized(MemoryType::KERNEL_NONPAGED, 100)), &one(sized(MemoryType::USER, 100)));
        assert_eq!(result, Err(NegotiationError::MemoryTypesDisjoint));
        let pci = one(sized(MemoryType::DEVICE_UNKNOWN, 100).with_bus(BusType::PCI));
        let usb = one(sized(MemoryType::DEVICE_UNKNOWN, 100).with_bus(BusType::USB));
        assert_eq!(run(&pci, &usb), Err(NegotiationError::MemoryTypesDisjoint));
        assert!(run(&pci, &one(sized(MemoryType::DEVICE_UNKNOWN, 100))).is_ok(), "any bus matches");
    }

    /// Every compatible pair is considered, however many: the heaviest pair is the 100th here,
    /// and the reason counts all of them.
    #[test]
    fn every_pair_is_considered() {
        let items = |heavy: u32| -> Vec<FramingItem> {
            (0..10)
                .map(|i| {
                    let weight = if i == 9 { heavy } else { 0 };
                    sized(MemoryType::KERNEL_NONPAGED, 4096 + i * 64).with_weight(weight)
                })
                .collect()
        };
        let (up, down) = (items(7), items(8));
        let upstream = FramingExView::from_parts(Compression::IDENTITY, &up).unwrap();
        let downstream = FramingExView::from_parts(Compression::IDENTITY, &down).unwrap();
        let plan = negotiate(&upstream, &downstream).unwrap();
        assert_eq!((plan.upstream_item, plan.downstream_item), (9, 9));
        assert_eq!(plan.framing.frame_size, 4096 + 9 * 64);
        let Reason::Items { candidates, weight, .. } = plan.reasons().next().copied().unwrap()
        else {
            panic!()
        };
        assert_eq!((candidates, weight), (100, 15), "all 100 pairs counted");
        assert!(plan.reasons().next().unwrap().to_string().contains("100 compatible pairs"));
    }

    /// Among items of equal weight the order is the preference: each ordering picks its own
    /// item 0.
    #[test]
    fn item_order_is_the_preference_among_equal_weights() {
        let a = sized(MemoryType::KERNEL_NONPAGED, 8192).with_frames(2);
        let b = sized(MemoryType::KERNEL_NONPAGED, 4096).with_frames(4);
        let down = one(item(MemoryType::DONT_CARE));
        let ab = run(&FramingEx::new([a, b]), &down).unwrap();
        let ba = run(&FramingEx::new([b, a]), &down).unwrap();
        assert_eq!((ab.upstream_item, ba.upstream_item), (0, 0));
        assert_eq!((ab.framing.frame_size, ba.framing.frame_size), (8192, 4096));
    }

    /// The plan's framing, as a request for the library's own allocator, keeps the plan's shape
    /// and is held against the owner's pin and budget.
    #[test]
    fn a_plan_becomes_an_allocator_request() {
        let upstream = one(sized(MemoryType::KERNEL_NONPAGED, 230_400).with_frames(3));
        let plan = run(&upstream, &sink()).unwrap();
        let none = ks_allocator::PinConstraints::NONE;
        let request = plan.request(&none, &ks_allocator::PoolConfig::DEFAULT).unwrap();
        assert_eq!((request.frames(), request.frame_size()), (3, 230_400));
        assert_eq!(request.framing(), plan.framing);
        let tight = ks_allocator::PoolConfig::DEFAULT.with_max_frames(2);
        assert!(matches!(
            plan.request(&none, &tight),
            Err(ks_allocator::request::RequestError::TooManyFrames { frames: 3, budget: 2 })
        ));
    }

    #[test]
    #[cfg_attr(miri, ignore = "65536 item pairs: minutes under Miri's interpreter")]
    fn huge_framings_are_refused_with_the_item_counts() {
        let many = vec![sized(MemoryType::KERNEL_NONPAGED, 4096); 300];
        let view = FramingExView::from_parts(Compression::IDENTITY, &many).unwrap();
        let result = negotiate(&view, &view);
        assert_eq!(
            result,
            Err(NegotiationError::TooManyPairs { upstream_items: 300, downstream_items: 300 })
        );
        let message = result.unwrap_err().to_string();
        assert!(message.contains("300 upstream items times 300 downstream items"), "{message}");
        let few = vec![sized(MemoryType::KERNEL_NONPAGED, 4096); 256];
        let view = FramingExView::from_parts(Compression::IDENTITY, &few).unwrap();
        assert!(negotiate(&view, &view).is_ok(), "256 x 256 = MAX_PAIRS is allowed");
    }

    #[test]
    fn invalid_framings_are_named() {
        let bad = one(sized(MemoryType::SYSTEM, 100).with_alignment(5));
        let result = run(&sink(), &bad);
        assert!(
            matches!(result, Err(NegotiationError::InvalidFraming { side: Side::Downstream, .. })),
            "{result:?}"
        );
    }
}

mod owner {
    use super::*;

    fn owner(plan: &AllocatorPlan) -> (Side, Ownership) {
        plan.reasons()
            .find_map(|r| {
                if let Reason::Owner { owner, why } = r { Some((*owner, *why)) } else { None }
            })
            .unwrap()
    }

    #[test]
    fn must_allocate_wins_and_the_sink_owns_by_default() {
        let plain = one(sized(MemoryType::SYSTEM, 100));
        let must = one(sized(MemoryType::SYSTEM, 100).with_flags(ItemFlags::MUST_ALLOCATE));
        let wish = one(sized(MemoryType::SYSTEM, 100)
            .with_flags(ItemFlags::MUST_ALLOCATE | ItemFlags::PREFERENCES_ONLY));
        assert_eq!(owner(&run(&must, &plain).unwrap()), (Side::Upstream, Ownership::MustAllocate));
        assert_eq!(
            owner(&run(&plain, &must).unwrap()),
            (Side::Downstream, Ownership::MustAllocate)
        );
        assert_eq!(owner(&run(&must, &wish).unwrap()), (Side::Upstream, Ownership::MustAllocate));
        assert_eq!(
            owner(&run(&wish, &plain).unwrap()),
            (Side::Upstream, Ownership::PrefersToAllocate)
        );
        let default = run(&plain, &plain).unwrap();
        assert_eq!(owner(&default), (Side::Downstream, Ownership::Default));
        assert!(
            default
                .reasons()
                .any(|r| r.to_string().contains("the sink of the connection owns the allocator"))
        );
    }

    #[test]
    fn both_must_allocate_fails() {
        let must = one(sized(MemoryType::SYSTEM, 100).with_flags(ItemFlags::MUST_ALLOCATE));
        assert_eq!(
            run(&must, &must),
            Err(NegotiationError::BothMustAllocate { upstream_item: 0, downstream_item: 0 })
        );
    }
}

mod frame_size {
    use super::*;

    fn ranged(optimal: FramingRange, physical: FramingRange) -> FramingEx<1> {
        one(item(MemoryType::SYSTEM).with_optimal_range(optimal).with_physical_range(physical))
    }

    /// Found by the `negotiate` fuzz target: an optimal range whose stepping differs from the
    /// physical range's offered sizes the hardware cannot take. A size must lie on the physical
    /// grids too.
    #[test]
    fn an_optimal_size_is_also_on_both_physical_grids() {
        let physical = FramingRange::new(0, 4_294_967_040).with_stepping(511);
        let downstream = ranged(FramingRange::new(0, 2_097_184).with_stepping(256), physical);
        // 230400 is on the downstream's optimal grid (900 * 256) but not its physical one.
        let exact = one(sized(MemoryType::SYSTEM, 230_400));
        assert!(matches!(run(&exact, &downstream), Err(NegotiationError::RangesDisjoint { .. })));
        // A range: the smallest size on the optimal grid of both and the physical grid (an
        // lcm of 256 and 511 = 130816 from 0).
        let upstream = ranged(FramingRange::new(100_000, 400_000), FramingRange::DONT_CARE);
        let plan = run(&upstream, &downstream).unwrap();
        assert_eq!(plan.framing.frame_size, 130_816);
        assert!(matches!(size_reason(&plan), Reason::FrameSize { basis: SizeBasis::Optimal, .. }));
    }

    #[test]
    fn optimal_ranges_and_both_steppings() {
        let upstream =
            ranged(FramingRange::new(1000, 10_000).with_stepping(1000), FramingRange::DONT_CARE);
        let downstream =
            ranged(FramingRange::new(1500, 9000).with_stepping(500), FramingRange::DONT_CARE);
        let plan = run(&upstream, &downstream).unwrap();
        assert_eq!(plan.framing.frame_size, 2000);
        assert!(matches!(size_reason(&plan), Reason::FrameSize { basis: SizeBasis::Optimal, .. }));
        assert!(
            size_reason(&plan)
                .to_string()
                .starts_with("frame size 2000: the smallest size both optimal ranges allow")
        );
    }

    #[test]
    fn physical_ranges_when_the_optimal_ones_miss() {
        let upstream = ranged(FramingRange::new(100, 200), FramingRange::new(100, 1000));
        let downstream = ranged(FramingRange::new(500, 600), FramingRange::new(300, 2000));
        let plan = run(&upstream, &downstream).unwrap();
        assert_eq!(
            plan.framing.frame_size, 500,
            "the larger optimal minimum, which both physical ranges allow"
        );
        assert!(matches!(size_reason(&plan), Reason::FrameSize { basis: SizeBasis::Physical, .. }));
        // If the physical ranges stop below it, their smallest common size.
        let capped = ranged(FramingRange::new(500, 600), FramingRange::new(300, 400));
        assert_eq!(run(&upstream, &capped).unwrap().framing.frame_size, 300);
    }

    #[test]
    fn physical_limits_bound_the_optimal_choice() {
        // The downstream optimal range starts below its own physical minimum.
        let upstream = ranged(FramingRange::new(100, 1000), FramingRange::DONT_CARE);
        let downstream = ranged(FramingRange::new(100, 1000), FramingRange::new(400, 1000));
        assert_eq!(run(&upstream, &downstream).unwrap().framing.frame_size, 400);
    }

    #[test]
    fn preferences_only_gives_way() {
        let hard = ranged(FramingRange::new(100, 200), FramingRange::new(100, 200));
        let soft = one(item(MemoryType::SYSTEM)
            .with_flags(ItemFlags::PREFERENCES_ONLY)
            .with_optimal_range(FramingRange::new(500, 600))
            .with_physical_range(FramingRange::new(500, 600)));
        let plan = run(&hard, &soft).unwrap();
        assert_eq!(plan.framing.frame_size, 100);
        assert!(matches!(
            size_reason(&plan),
            Reason::FrameSize {
                basis: SizeBasis::PreferencesOnly { taken_from: Side::Upstream },
                ..
            }
        ));
        assert_eq!(
            run(&soft, &soft.clone()).unwrap().framing.frame_size,
            500,
            "both soft: larger, here equal"
        );
    }

    #[test]
    fn disjoint_ranges_fail_without_preferences() {
        let a = ranged(FramingRange::new(100, 200), FramingRange::new(100, 200));
        let b = ranged(FramingRange::new(500, 600), FramingRange::new(500, 600));
        assert_eq!(
            run(&a, &b),
            Err(NegotiationError::RangesDisjoint {
                upstream: FramingRange::new(100, 200),
                downstream: FramingRange::new(500, 600)
            })
        );
        let even = FramingRange::new(0, 100).with_stepping(4);
        let odd = FramingRange::new(1, 99).with_stepping(4);
        let (no_common_step, odd) = (ranged(even, even), ranged(odd, odd));
        assert!(matches!(run(&no_common_step, &odd), Err(NegotiationError::RangesDisjoint { .. })));
    }

    #[test]
    fn nobody_states_a_size() {
        let anything = one(item(MemoryType::SYSTEM));
        assert_eq!(run(&anything, &anything), Err(NegotiationError::NoFrameSize));
    }

    #[test]
    fn output_compression_scales_upstream_sizes() {
        // out = ceil(in * 2 / 1) + 0: upstream 100..=200 gives 200..=400 on the connection.
        let upstream =
            one(item(MemoryType::SYSTEM).with_optimal_range(FramingRange::new(100, 200)))
                .with_compression(Compression::new(2, 1, 0));
        let downstream = ranged(FramingRange::new(300, 1000), FramingRange::DONT_CARE);
        let plan = run(&upstream, &downstream).unwrap();
        assert_eq!(plan.framing.frame_size, 300);
        assert!(
            size_reason(&plan).to_string().contains("scaled by its output compression 2/1 + 0")
        );
        // ceil(in / 3) + 7 with in = 100 gives 41.
        let shrinking = one(item(MemoryType::SYSTEM).with_exact_size(100))
            .with_compression(Compression::new(1, 3, 7));
        let wide = ranged(FramingRange::new(1, 1000), FramingRange::DONT_CARE);
        assert_eq!(run(&shrinking, &wide).unwrap().framing.frame_size, 41);
    }

    #[test]
    fn an_insisted_ratio_is_kept_exactly_or_fails() {
        let insist = ItemFlags::INSIST_ON_FRAMESIZE_RATIO;
        let upstream = one(item(MemoryType::SYSTEM)
            .with_flags(insist)
            .with_optimal_range(FramingRange::new(100, 200).with_stepping(10))
            .with_physical_range(FramingRange::new(100, 200).with_stepping(10)))
        .with_compression(Compression::new(2, 1, 0));
        let downstream = ranged(FramingRange::new(310, 1000), FramingRange::DONT_CARE);
        assert_eq!(run(&upstream, &downstream).unwrap().framing.frame_size, 320, "2 * 160");
        let narrow = ranged(FramingRange::new(301, 309), FramingRange::new(301, 309));
        assert_eq!(
            run(&upstream, &narrow),
            Err(NegotiationError::CompressionImpossible {
                compression: Compression::new(2, 1, 0),
                downstream: FramingRange::new(301, 309)
            })
        );
    }
}

mod frames_alignment_pool_options {
    use super::*;

    #[test]
    fn frames_are_the_larger_request() {
        let a = one(sized(MemoryType::SYSTEM, 100).with_frames(2));
        let b = one(sized(MemoryType::SYSTEM, 100).with_frames(5));
        assert_eq!(run(&a, &b).unwrap().framing.frames, 5);
        let none = one(sized(MemoryType::SYSTEM, 100));
        let plan = run(&none, &none).unwrap();
        assert_eq!(plan.framing.frames, 0);
        assert!(
            plan.reasons()
                .any(|r| r.to_string() == "frames 0 (no cap): neither pin asks for a count")
        );
    }

    #[test]
    fn alignment_is_the_stricter_mask_and_must_stay_within_a_page() {
        let a = one(sized(MemoryType::SYSTEM, 100).with_alignment(0x7));
        let b = one(sized(MemoryType::SYSTEM, 100).with_alignment(0x3F));
        assert_eq!(run(&a, &b).unwrap().framing.file_alignment, 0x3F);
        let huge = one(sized(MemoryType::SYSTEM, 100).with_alignment(0x1FFF));
        assert!(
            matches!(run(&a, &huge), Err(NegotiationError::InvalidPlan(finding)) if finding.field == "FileAlignment")
        );
    }

    #[test]
    fn pool_type_follows_the_memory_type() {
        let paged = one(sized(MemoryType::KERNEL_PAGED, 100));
        let nonpaged = one(sized(MemoryType::KERNEL_NONPAGED, 100));
        assert_eq!(run(&paged, &sink()).unwrap().framing.pool_type, PoolType::PAGED);
        assert_eq!(run(&nonpaged, &sink()).unwrap().framing.pool_type, PoolType::NON_PAGED);
        assert_eq!(run(&paged, &nonpaged), Err(NegotiationError::MemoryTypesDisjoint));
    }

    #[test]
    fn in_place_needs_both_modifiers_and_no_integrity() {
        let modifier = one(sized(MemoryType::SYSTEM, 100).with_flags(ItemFlags::INPLACE_MODIFIER));
        let plan = run(&modifier, &modifier).unwrap();
        assert!(plan.in_place);
        assert_eq!(plan.framing.options(), OptionFlags::SYSTEM_MEMORY | OptionFlags::COMPATIBLE);
        let integrity = one(sized(MemoryType::SYSTEM, 100)
            .with_flags(ItemFlags::INPLACE_MODIFIER | ItemFlags::FRAME_INTEGRITY));
        let plan = run(&modifier, &integrity).unwrap();
        assert!(!plan.in_place);
        assert!(
            plan.reasons().any(|r| r
                .to_string()
                .contains("not COMPATIBLE: a pin insists on FRAME_INTEGRITY"))
        );
        assert!(!run(&modifier, &sink()).unwrap().in_place);
    }
}

fn arb_item() -> impl Strategy<Value = FramingItem> {
    let memory = prop_oneof![
        Just(MemoryType::DONT_CARE),
        Just(MemoryType::SYSTEM),
        Just(MemoryType::KERNEL_NONPAGED),
        Just(MemoryType::KERNEL_PAGED),
        Just(MemoryType::DEVICE_UNKNOWN),
    ];
    let flags = prop::sample::subsequence(
        vec![
            ItemFlags::MUST_ALLOCATE,
            ItemFlags::PREFERENCES_ONLY,
            ItemFlags::INPLACE_MODIFIER,
            ItemFlags::FRAME_INTEGRITY,
            ItemFlags::SYSTEM_MEMORY,
        ],
        0..=3,
    )
    .prop_map(|flags| flags.into_iter().fold(ItemFlags::empty(), |a, b| a | b));
    let range = (1u32..5000, 0u32..5000, prop_oneof![Just(0u32), Just(1), 1u32..600])
        .prop_map(|(min, extra, step)| FramingRange::new(min, min + extra).with_stepping(step));
    (
        memory,
        flags,
        0u32..6,
        0u32..7,
        0u32..4,
        range.clone(),
        prop_oneof![Just(FramingRange::DONT_CARE), range],
    )
        .prop_map(|(memory, flags, frames, align_bits, weight, optimal, physical)| {
            item(memory)
                .with_flags(flags)
                .with_frames(frames)
                .with_alignment((1 << align_bits) - 1)
                .with_weight(weight)
                .with_optimal_range(optimal)
                .with_physical_range(physical)
        })
}

/// The owner allocates the frames: a preferences-only owner gives way on what it accepts, not
/// on what it can allocate (review finding: a plan beyond the owner's physical maximum, which its
/// own allocator then refused).
mod owner_holds_the_frames {
    use super::*;
    use ks_allocator::{PinConstraints, PoolConfig};

    fn small_preferring_owner() -> FramingEx<1> {
        one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::MUST_ALLOCATE | ItemFlags::PREFERENCES_ONLY)
            .with_physical_range(FramingRange::new(1, 10))
            .with_optimal_range(FramingRange::new(1, 10)))
    }

    #[test]
    fn a_preferring_owner_that_cannot_hold_them_passes_the_allocator_on() {
        let downstream = one(item(MemoryType::KERNEL_NONPAGED)
            .with_physical_range(FramingRange::new(100, 200))
            .with_optimal_range(FramingRange::new(100, 200)));
        let plan = run(&small_preferring_owner(), &downstream).unwrap();
        assert_eq!(plan.framing.frame_size, 100);
        assert_eq!(plan.owner, Side::Downstream);
        let owner = plan.reasons().find(|r| matches!(r, Reason::Owner { .. })).unwrap();
        assert_eq!(
            owner.to_string(),
            "owner: downstream: neither pin must allocate, and only this one can hold frames of \
             100 bytes (the other's physical maximum is 10)"
        );
        // The owner's own allocator takes the plan's create request.
        let pin = PinConstraints::from_declaration(0, Some(&downstream.view()));
        assert!(plan.request(&pin, &PoolConfig::DEFAULT).is_ok());
    }

    #[test]
    fn when_neither_can_hold_them_the_owner_is_named() {
        // The sink takes 100 to 200 bytes only as a preference of its optimal range, and holds
        // no more than 50.
        let downstream = one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::PREFERENCES_ONLY)
            .with_physical_range(FramingRange::new(100, 200))
            .with_optimal_range(FramingRange::new(100, 200)));
        let upstream = one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::MUST_ALLOCATE)
            .with_physical_range(FramingRange::new(1, 10))
            .with_optimal_range(FramingRange::new(1, 10)));
        // The upstream item must allocate and holds 10 at most; the downstream gives way to 1.
        let plan = run(&upstream, &downstream).unwrap();
        assert_eq!((plan.owner, plan.framing.frame_size), (Side::Upstream, 1));
        // A hard owner that cannot hold what a hard sink needs is a named conflict.
        let hard_sink = one(item(MemoryType::KERNEL_NONPAGED)
            .with_physical_range(FramingRange::new(100, 200))
            .with_optimal_range(FramingRange::new(100, 200)));
        let preferring_upstream = one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::MUST_ALLOCATE | ItemFlags::PREFERENCES_ONLY)
            .with_physical_range(FramingRange::new(1, 10)));
        let error = run(&upstream, &hard_sink).unwrap_err();
        assert!(matches!(error, NegotiationError::RangesDisjoint { .. }), "{error}");
        let plan = run(&preferring_upstream, &hard_sink).unwrap();
        assert_eq!(plan.owner, Side::Downstream);
        let tiny_sink = one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::MUST_ALLOCATE)
            .with_physical_range(FramingRange::new(1, 50))
            .with_optimal_range(FramingRange::new(1, 50)));
        let big_preference = one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::PREFERENCES_ONLY)
            .with_physical_range(FramingRange::new(100, 200))
            .with_optimal_range(FramingRange::new(100, 200)));
        // The sink must allocate and holds 50; the upstream prefers 100 and gives way: 1.
        let plan = run(&big_preference, &tiny_sink).unwrap();
        assert_eq!((plan.owner, plan.framing.frame_size), (Side::Downstream, 1));
    }
}

/// The bytes of an extended framing with `items` (identity compression).
fn framing_bytes(items: &[FramingItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut one = [0u8; 112];
        FramingEx::new([*item]).encode(&mut one).unwrap();
        if i == 0 {
            out.extend_from_slice(&one[..24]);
        }
        out.extend_from_slice(&one[24..]);
    }
    out[..4].copy_from_slice(&u32::try_from(items.len()).unwrap().to_le_bytes());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 16 } else { 3000 }, failure_persistence: None, ..ProptestConfig::default() })]

    /// Without compression, swapping the sides changes only the placement.
    #[test]
    fn swapping_sides_changes_only_the_placement(u in prop::collection::vec(arb_item(), 1..=3), d in prop::collection::vec(arb_item(), 1..=3)) {
        let (ub, db) = (framing_bytes(&u), framing_bytes(&d));
        let (uv, dv) = (FramingExView::parse(&ub).unwrap(), FramingExView::parse(&db).unwrap());
        let forward = negotiate(&uv, &dv);
        let backward = negotiate(&dv, &uv);
        match (forward, backward) {
            (Ok(f), Ok(b)) => {
                prop_assert_eq!(f.framing, b.framing);
                // The same items (by content: mirror-image pairs of equal items are the same choice).
                prop_assert_eq!(uv.item(f.upstream_item), uv.item(b.downstream_item));
                prop_assert_eq!(dv.item(f.downstream_item), dv.item(b.upstream_item));
                prop_assert_eq!(f.memory_type, b.memory_type);
                let owner_pin = |plan: &AllocatorPlan, swapped: bool| (plan.owner == Side::Upstream) != swapped;
                let must = |plan: &AllocatorPlan| plan.reasons().any(|r| matches!(r, Reason::Owner { why: Ownership::MustAllocate | Ownership::PrefersToAllocate | Ownership::OnlyOneHolds { .. }, .. }));
                if must(&f) || must(&b) {
                    // The same pin owns the allocator whichever side it is on.
                    prop_assert_eq!(owner_pin(&f, false), owner_pin(&b, true));
                } else {
                    prop_assert_eq!(f.owner, Side::Downstream);
                    prop_assert_eq!(b.owner, Side::Downstream);
                }
            }
            (Err(f), Err(b)) => {
                prop_assert_eq!(std::mem::discriminant(&f), std::mem::discriminant(&b));
            }
            (f, b) => prop_assert!(false, "one direction failed: {:?} / {:?}", f, b),
        }
    }

    /// A user-mode client's buffers satisfy the first item that does not need the pin's own
    /// memory: items before it are each refused, the one chosen states a real size, and its
    /// buffers are at least one.
    #[test]
    fn a_user_client_gets_the_first_item_it_can_fill(u in prop::collection::vec(arb_item(), 1..=4)) {
        use ks_allocator::negotiate::{ClientRefusal, plan_for_user_client};
        let bytes = framing_bytes(&u);
        let view = FramingExView::parse(&bytes).unwrap();
        let pins_own = |item: &FramingItem| {
            let preferences = item.flags.contains(ItemFlags::PREFERENCES_ONLY);
            !preferences
                && (item.flags.contains(ItemFlags::MUST_ALLOCATE)
                    || item.memory_type == MemoryType::DEVICE_UNKNOWN)
        };
        match plan_for_user_client(&view) {
            Ok(plan) => {
                let chosen = &u[plan.item];
                prop_assert!(!pins_own(chosen));
                prop_assert!(plan.frame_size != 0 && plan.frame_size != u32::MAX);
                prop_assert!(plan.frames >= 1);
                prop_assert_eq!(plan.file_alignment, chosen.file_alignment);
                prop_assert_eq!(plan.skipped().count(), plan.item);
                for (index, refusal) in plan.skipped().enumerate() {
                    let item = match *refusal {
                        ClientRefusal::MustAllocate { item }
                        | ClientRefusal::Memory { item, .. }
                        | ClientRefusal::NoFrameSize { item } => item,
                    };
                    prop_assert_eq!(item, index);
                }
            }
            Err(error) => {
                prop_assert_eq!(error.refusals().count(), u.len());
                prop_assert!(u.iter().all(|item| pins_own(item) || item.physical_range.max_frame_size == u32::MAX));
            }
        }
    }

    /// Every plan's create request fits the owner: the owner's own allocator never refuses it
    /// for its size.
    #[test]
    fn the_owner_s_allocator_takes_every_plan(u in prop::collection::vec(arb_item(), 1..=3), d in prop::collection::vec(arb_item(), 1..=3)) {
        let (ub, db) = (framing_bytes(&u), framing_bytes(&d));
        let (uv, dv) = (FramingExView::parse(&ub).unwrap(), FramingExView::parse(&db).unwrap());
        if let Ok(plan) = negotiate(&uv, &dv) {
            let owner = if plan.owner == Side::Upstream { &uv } else { &dv };
            let pin = ks_allocator::PinConstraints::from_declaration(0, Some(owner));
            let request = plan.request(&pin, &ks_allocator::PoolConfig::DEFAULT);
            prop_assert!(
                !matches!(request, Err(ks_allocator::request::RequestError::FrameTooLarge { .. })),
                "{:?}: {:?}", plan, request
            );
        }
    }

    /// A framing negotiated with itself gives its own values.
    #[test]
    fn a_framing_negotiated_with_itself_gives_its_own_values(frames in 1u32..10, size in 1u32..1_000_000, align_bits in 0u32..13, memory in prop_oneof![Just(MemoryType::KERNEL_NONPAGED), Just(MemoryType::SYSTEM)]) {
        let framing = one(sized(memory, size).with_frames(frames).with_alignment((1 << align_bits) - 1).with_flags(ItemFlags::SYSTEM_MEMORY));
        let plan = run(&framing, &framing).unwrap();
        prop_assert_eq!(plan.framing.frame_size, size);
        prop_assert_eq!(plan.framing.frames, frames);
        prop_assert_eq!(plan.framing.file_alignment, (1 << align_bits) - 1);
        prop_assert_eq!((plan.upstream_item, plan.downstream_item), (0, 0));
    }
}

#[test]
fn microsoft_sample_framings_against_a_typical_sink() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/framings");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains(".runtime") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let view = FramingExView::parse(&bytes).unwrap();
        let declared = view.item(0).unwrap();
        let sink = sink();
        let plan = negotiate(&view, &sink.view()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plan.framing.frame_size, declared.framing_range.range.min_frame_size, "{name}");
        assert_eq!(plan.framing.frames, declared.frames, "{name}");
        assert_eq!(plan.framing.file_alignment, declared.file_alignment, "{name}");
        assert_eq!(plan.owner, Side::Downstream, "{name}");
        assert_eq!(plan.framing.pool_type, PoolType::NON_PAGED, "{name}");
        checked += 1;
    }
    assert!(checked >= 9, "{checked}");
    // The avshws capture pin at 320x240 RGB24: 2 frames of 230400 bytes.
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/framings/wds-avshws-capture.runtime-rgb24-320x240.bin"),
    )
    .unwrap();
    let plan = negotiate(&FramingExView::parse(&bytes).unwrap(), &sink().view()).unwrap();
    assert_eq!((plan.framing.frames, plan.framing.frame_size), (2, 230_400));
}

/// Chains of filters: the pipe planner (`plan_chain`).
mod chains {
    use ks_allocator::negotiate::{ChainFilter, ChainPin, PipeError, PipeReason, plan_chain};

    use super::*;

    fn pin<'a>(name: &'a str, bytes: &'a [u8]) -> ChainPin<'a> {
        ChainPin { name, framing: FramingExView::parse(bytes).unwrap() }
    }

    /// A chain's framings as bytes: source, transforms (input, output), sink.
    struct Chain {
        source: Vec<u8>,
        transforms: Vec<(Vec<u8>, Vec<u8>)>,
        sink: Vec<u8>,
    }

    const NAMES: [(&str, &str); 4] =
        [("t0.in", "t0.out"), ("t1.in", "t1.out"), ("t2.in", "t2.out"), ("t3.in", "t3.out")];

    impl Chain {
        fn filters(&self) -> Vec<ChainFilter<'_>> {
            let mut filters = vec![ChainFilter::Source { output: pin("source.out", &self.source) }];
            for ((input, output), (i, o)) in self.transforms.iter().zip(NAMES) {
                filters
                    .push(ChainFilter::Transform { input: pin(i, input), output: pin(o, output) });
            }
            filters.push(ChainFilter::Sink { input: pin("sink.in", &self.sink) });
            filters
        }
    }

    fn bytes<const N: usize>(framing: &FramingEx<N>) -> Vec<u8> {
        let mut out = vec![0; framing.byte_len()];
        framing.encode(&mut out).unwrap();
        out
    }

    fn in_place(frames: u32) -> Vec<u8> {
        bytes(&one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::INPLACE_MODIFIER)
            .with_frames(frames)
            .with_optimal_range(FramingRange::new(1, u32::MAX))))
    }

    fn capture(size: u32) -> Vec<u8> {
        bytes(&one(sized(MemoryType::KERNEL_NONPAGED, size)
            .with_flags(ItemFlags::MUST_ALLOCATE)
            .with_frames(2)))
    }

    #[test]
    fn an_in_place_transform_joins_one_pipe_and_holds_its_own_frames() {
        let chain = Chain {
            source: capture(4096),
            transforms: vec![(in_place(3), in_place(3))],
            sink: bytes(&sink()),
        };
        let plan = plan_chain(&chain.filters()).unwrap();
        let pipes: Vec<_> = plan.pipes().collect();
        assert_eq!(pipes.len(), 1);
        let pipe = pipes[0];
        let names: Vec<&str> = pipe.pins().map(|(name, _)| name).collect();
        assert_eq!(names, ["source.out", "t0.in", "t0.out", "sink.in"]);
        assert_eq!((pipe.first_connection, pipe.last_connection), (0, 1));
        assert_eq!(pipe.owner, "source.out");
        // The largest request (3) plus the three the transform holds.
        assert_eq!((pipe.plan.framing.frame_size, pipe.plan.framing.frames), (4096, 6));
        assert!(pipe.reasons().any(|r| matches!(r, PipeReason::InPlace { input: "t0.in" })));
        let text: Vec<String> = pipe.reasons().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("plus 3 its in-place transforms hold")), "{text:?}");
    }

    #[test]
    fn a_copying_transform_splits_the_chain_and_its_compression_sizes_the_next_pipe() {
        let copy_in =
            bytes(&one(item(MemoryType::KERNEL_NONPAGED)
                .with_optimal_range(FramingRange::new(1, u32::MAX))));
        let quarter = |flags| {
            let framing = one(item(MemoryType::KERNEL_NONPAGED)
                .with_flags(flags)
                .with_optimal_range(FramingRange::new(1, u32::MAX)))
            .with_compression(Compression::new(1, 4, 16));
            bytes(&framing)
        };
        let chain = Chain {
            source: capture(4000),
            transforms: vec![(copy_in.clone(), quarter(ItemFlags::MUST_ALLOCATE))],
            sink: bytes(&sink()),
        };
        let plan = plan_chain(&chain.filters()).unwrap();
        let pipes: Vec<_> = plan.pipes().collect();
        assert_eq!(pipes.len(), 2);
        assert_eq!(pipes[0].plan.framing.frame_size, 4000);
        // ceil(4000 / 4) + 16.
        assert_eq!(pipes[1].plan.framing.frame_size, 1016);
        assert_eq!(pipes[1].owner, "t0.out");
        assert!(pipes[1].reasons().any(|r| matches!(r, PipeReason::Compressed { from: 4000, .. })));

        // A sink that cannot take the compressed size: the output pipe's own ranges decide,
        // unless an item insists on the ratio.
        let picky = bytes(&one(sized(MemoryType::KERNEL_NONPAGED, 2048)));
        let chain = Chain {
            source: capture(4000),
            transforms: vec![(copy_in.clone(), quarter(ItemFlags::empty()))],
            sink: picky.clone(),
        };
        let plan = plan_chain(&chain.filters()).unwrap();
        let second = plan.pipes().nth(1).unwrap();
        assert_eq!(second.plan.framing.frame_size, 2048);
        assert!(
            second.reasons().any(|r| matches!(r, PipeReason::CompressionNotKept { wanted: 1016 }))
        );
        let chain = Chain {
            source: capture(4000),
            transforms: vec![(copy_in, quarter(ItemFlags::INSIST_ON_FRAMESIZE_RATIO))],
            sink: picky,
        };
        let error = plan_chain(&chain.filters()).unwrap_err();
        assert!(
            matches!(
                error,
                PipeError::Pipe {
                    first: "t0.out",
                    last: "sink.in",
                    error: NegotiationError::CompressionImpossible { .. }
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_conflict_after_a_copying_transform_is_reported_as_itself_not_as_the_compression() {
        let copy_in =
            bytes(&one(item(MemoryType::KERNEL_NONPAGED)
                .with_optimal_range(FramingRange::new(1, u32::MAX))));
        let quarter = bytes(
            &one(item(MemoryType::KERNEL_NONPAGED)
                .with_flags(ItemFlags::MUST_ALLOCATE | ItemFlags::INSIST_ON_FRAMESIZE_RATIO)
                .with_optimal_range(FramingRange::new(1, u32::MAX)))
            .with_compression(Compression::new(1, 4, 0)),
        );
        let owner = |memory_type| {
            bytes(&one(item(memory_type)
                .with_flags(ItemFlags::MUST_ALLOCATE)
                .with_optimal_range(FramingRange::new(1, u32::MAX))))
        };
        // The compressed size fits the sink; what fails is ownership, then memory.
        for (sink, expected) in [
            (owner(MemoryType::KERNEL_NONPAGED), "both sides must allocate"),
            (owner(MemoryType::KERNEL_PAGED), "no pair of items"),
        ] {
            let chain = Chain {
                source: capture(4000),
                transforms: vec![(copy_in.clone(), quarter.clone())],
                sink,
            };
            let error = plan_chain(&chain.filters()).unwrap_err();
            assert!(
                matches!(error, PipeError::Pipe { first: "t0.out", last: "sink.in", error }
                    if !matches!(error, NegotiationError::CompressionImpossible { .. })),
                "{error}"
            );
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[test]
    fn two_pins_of_one_pipe_that_must_allocate_are_named() {
        let greedy = bytes(&one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::INPLACE_MODIFIER | ItemFlags::MUST_ALLOCATE)
            .with_optimal_range(FramingRange::new(1, u32::MAX))));
        let must_sink = bytes(&one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::MUST_ALLOCATE)
            .with_optimal_range(FramingRange::new(1, u32::MAX))));
        let chain = Chain {
            source: bytes(&one(sized(MemoryType::KERNEL_NONPAGED, 4096))),
            transforms: vec![(greedy.clone(), greedy)],
            sink: must_sink,
        };
        let error = plan_chain(&chain.filters()).unwrap_err();
        assert_eq!(error, PipeError::BothMustAllocate { first: "t0.in", second: "t0.out" });
        assert_eq!(
            error.to_string(),
            "t0.in and t0.out are in one pipe and both must allocate its frames"
        );
    }

    #[test]
    fn an_in_place_transform_s_input_range_bounds_the_pipe() {
        // The transform takes at most 2000 bytes: the capture pin's 4096-byte frames cannot pass.
        let small = bytes(&one(item(MemoryType::KERNEL_NONPAGED)
            .with_flags(ItemFlags::INPLACE_MODIFIER)
            .with_optimal_range(FramingRange::new(1, 2000))
            .with_physical_range(FramingRange::new(1, 2000))));
        let chain = Chain {
            source: capture(4096),
            transforms: vec![(small.clone(), small)],
            sink: bytes(&sink()),
        };
        let error = plan_chain(&chain.filters()).unwrap_err();
        assert!(
            matches!(error, PipeError::Pipe { first: "source.out", last: "sink.in", .. }),
            "{error}"
        );
    }

    /// Found by the fuzz target: an invalid framing is reported as the pair negotiation reports
    /// it (the framing's first error, on its side), whatever the pipe's length.
    #[test]
    fn an_invalid_framing_is_reported_as_the_pair_negotiation_reports_it() {
        let inverted = bytes(&one(item(MemoryType::KERNEL_NONPAGED)
            .with_optimal_range(FramingRange::new(4_255_318_016, 39_387_135))));
        let chain = Chain { source: capture(4096), transforms: vec![], sink: inverted.clone() };
        let pair = negotiate(
            &FramingExView::parse(&chain.source).unwrap(),
            &FramingExView::parse(&inverted).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(pair, NegotiationError::InvalidFraming { side: Side::Downstream, .. }));
        let error = plan_chain(&chain.filters()).unwrap_err();
        assert_eq!(error, PipeError::Pipe { first: "source.out", last: "sink.in", error: pair });
        // In a pipe of four pins, likewise.
        let chain = Chain {
            source: capture(4096),
            transforms: vec![(in_place(2), in_place(2))],
            sink: inverted,
        };
        let error = plan_chain(&chain.filters()).unwrap_err();
        assert_eq!(error, PipeError::Pipe { first: "source.out", last: "sink.in", error: pair });
    }

    #[test]
    fn chains_that_are_not_chains_are_refused() {
        let any = bytes(&sink());
        let source = ChainFilter::Source { output: pin("a.out", &any) };
        let sink = ChainFilter::Sink { input: pin("b.in", &any) };
        assert_eq!(plan_chain(&[source]).unwrap_err(), PipeError::Shape);
        assert_eq!(plan_chain(&[sink, source]).unwrap_err(), PipeError::Shape);
        assert_eq!(plan_chain(&[source, source, sink]).unwrap_err(), PipeError::Shape);
        let long = [
            source,
            ChainFilter::Transform { input: pin("t.in", &any), output: pin("t.out", &any) },
        ];
        let mut filters: Vec<_> = long.iter().copied().cycle().skip(1).take(8).collect();
        filters.insert(0, source);
        filters.push(sink);
        assert_eq!(plan_chain(&filters).unwrap_err(), PipeError::Shape, "longer than MAX_CHAIN");
    }

    #[test]
    fn microsoft_sample_framings_plan_as_they_negotiate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/framings");
        let framings: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .filter(|bytes| FramingExView::parse(bytes).is_ok())
            .collect();
        assert!(framings.len() >= 9);
        for upstream in &framings {
            for downstream in &framings {
                let filters = [
                    ChainFilter::Source { output: pin("u.out", upstream) },
                    ChainFilter::Sink { input: pin("d.in", downstream) },
                ];
                let pair = negotiate(
                    &FramingExView::parse(upstream).unwrap(),
                    &FramingExView::parse(downstream).unwrap(),
                );
                match (plan_chain(&filters), pair) {
                    (Ok(chain), Ok(pair)) => assert_eq!(chain.pipes().next().unwrap().plan, pair),
                    (Err(PipeError::Pipe { error, .. }), Err(pair)) => assert_eq!(error, pair),
                    (chain, pair) => panic!("{chain:?} / {pair:?}"),
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 16 } else { 2000 }, failure_persistence: None, ..ProptestConfig::default() })]

        /// The two-pin negotiation is the one-connection case of the planner.
        #[test]
        fn one_connection_is_the_pair_negotiation(u in prop::collection::vec(arb_item(), 1..=3), d in prop::collection::vec(arb_item(), 1..=3)) {
            let (ub, db) = (framing_bytes(&u), framing_bytes(&d));
            let filters = [
                ChainFilter::Source { output: pin("u.out", &ub) },
                ChainFilter::Sink { input: pin("d.in", &db) },
            ];
            let pair = negotiate(&FramingExView::parse(&ub).unwrap(), &FramingExView::parse(&db).unwrap());
            match (plan_chain(&filters), pair) {
                (Ok(chain), Ok(pair)) => {
                    let pipe = chain.pipes().next().unwrap();
                    prop_assert_eq!(pipe.plan, pair);
                    let owner = if pair.owner == Side::Upstream { "u.out" } else { "d.in" };
                    prop_assert_eq!(pipe.owner, owner);
                }
                (Err(PipeError::Pipe { error, .. }), Err(pair)) => prop_assert_eq!(error, pair),
                (chain, pair) => prop_assert!(false, "{:?} / {:?}", chain, pair),
            }
        }

        /// A chain whose transforms modify frames in place and accept whatever the others do
        /// (any memory, any size, preferences only) plans like the pair of its ends: the same
        /// items, size, alignment, memory, pool type, options and owner; frames as rule 5 counts
        /// them.
        #[test]
        fn transparent_in_place_transforms_plan_like_the_pair_of_their_ends(
            u in prop::collection::vec(arb_item(), 1..=2),
            d in prop::collection::vec(arb_item(), 1..=2),
            held in prop::collection::vec((0u32..4, 0u32..4), 1..=3),
        ) {
            let transparent = |frames| framing_bytes(&[item(MemoryType::DONT_CARE)
                .with_flags(ItemFlags::INPLACE_MODIFIER | ItemFlags::PREFERENCES_ONLY)
                .with_frames(frames)]);
            let chain = Chain {
                source: framing_bytes(&u),
                transforms: held.iter().map(|&(i, o)| (transparent(i), transparent(o))).collect(),
                sink: framing_bytes(&d),
            };
            let pair = negotiate(&FramingExView::parse(&chain.source).unwrap(), &FramingExView::parse(&chain.sink).unwrap());
            match (plan_chain(&chain.filters()), pair) {
                (Ok(plan), Ok(pair)) => {
                    let pipes: Vec<_> = plan.pipes().collect();
                    prop_assert_eq!(pipes.len(), 1);
                    let pipe = pipes[0];
                    let (f, p) = (pipe.plan.framing, pair.framing);
                    prop_assert_eq!((f.frame_size, f.file_alignment, f.pool_type, f.flags), (p.frame_size, p.file_alignment, p.pool_type, p.flags));
                    prop_assert_eq!(pipe.plan.memory_type, pair.memory_type);
                    // Rule 5: the largest request of the pipe's pins (the transforms' among
                    // them) plus what each transform holds.
                    let own: u32 = held.iter().map(|&(i, o)| i.max(o)).sum();
                    let largest = held.iter().map(|&(i, o)| i.max(o)).fold(p.frames, u32::max);
                    prop_assert_eq!(f.frames, largest + own);
                    let items: Vec<usize> = pipe.pins().map(|(_, item)| item).collect();
                    prop_assert_eq!(items.first(), Some(&pair.upstream_item));
                    prop_assert_eq!(items.last(), Some(&pair.downstream_item));
                    let owner = if pair.owner == Side::Upstream { "source.out" } else { "sink.in" };
                    prop_assert_eq!(pipe.owner, owner);
                }
                (Err(_), Err(_)) => {}
                (chain, pair) => prop_assert!(false, "{:?} / {:?}", chain, pair),
            }
        }

        /// The order of a chain's in-place transforms changes nothing of its pipe but which of
        /// two pins that both prefer to allocate is named the owner.
        #[test]
        fn reversing_in_place_transforms_changes_nothing(
            u in prop::collection::vec(arb_item(), 1..=2),
            d in prop::collection::vec(arb_item(), 1..=2),
            transforms in prop::collection::vec((arb_item(), arb_item()), 2..=3),
        ) {
            let in_place = |i: &FramingItem| framing_bytes(&[i.with_flags(i.flags | ItemFlags::INPLACE_MODIFIER)]);
            let forward = Chain {
                source: framing_bytes(&u),
                transforms: transforms.iter().map(|(i, o)| (in_place(i), in_place(o))).collect(),
                sink: framing_bytes(&d),
            };
            let backward = Chain {
                source: forward.source.clone(),
                transforms: forward.transforms.iter().rev().cloned().collect(),
                sink: forward.sink.clone(),
            };
            match (plan_chain(&forward.filters()), plan_chain(&backward.filters())) {
                (Ok(a), Ok(b)) => {
                    let (a, b) = (a.pipes().next().unwrap(), b.pipes().next().unwrap());
                    prop_assert_eq!(a.plan.framing, b.plan.framing);
                    prop_assert_eq!(a.plan.memory_type, b.plan.memory_type);
                    let ends = |p: &ks_allocator::negotiate::Pipe<'_>| {
                        let items: Vec<usize> = p.pins().map(|(_, item)| item).collect();
                        (items[0], items[items.len() - 1])
                    };
                    prop_assert_eq!(ends(a), ends(b));
                }
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{:?} / {:?}", a, b),
            }
        }

        /// Through a copying transform and then one with the inverse ratio, a frame comes back
        /// to its size, rounded up by at most what the two ceilings and margins add:
        /// `s <= s'' <= s + (1 + m1) * d / n + 1 + m2`, each step exactly
        /// `ceil(size * numerator / denominator) + margin`.
        #[test]
        fn compression_then_its_inverse_gives_the_size_back_within_the_margins(
            size in 1u32..(1 << 22),
            (n, d) in (1u32..16, 1u32..16),
            (m1, m2) in (0u32..64, 0u32..64),
        ) {
            let any = FramingRange::new(1, u32::MAX);
            let copy_in = framing_bytes(&[item(MemoryType::KERNEL_NONPAGED).with_optimal_range(any)]);
            let out = |c| bytes(&one(item(MemoryType::KERNEL_NONPAGED)
                .with_flags(ItemFlags::MUST_ALLOCATE | ItemFlags::INSIST_ON_FRAMESIZE_RATIO)
                .with_optimal_range(any)).with_compression(c));
            let chain = Chain {
                source: capture(size),
                transforms: vec![
                    (copy_in.clone(), out(Compression::new(n, d, m1))),
                    (copy_in, out(Compression::new(d, n, m2))),
                ],
                sink: bytes(&sink()),
            };
            let plan = plan_chain(&chain.filters()).unwrap();
            let sizes: Vec<u64> = plan.pipes().map(|p| u64::from(p.plan.framing.frame_size)).collect();
            let step = |s: u64, n: u32, d: u32, m: u32| (s * u64::from(n)).div_ceil(u64::from(d)) + u64::from(m);
            let s = u64::from(size);
            prop_assert_eq!(sizes.len(), 3);
            prop_assert_eq!(sizes[0], s);
            prop_assert_eq!(sizes[1], step(s, n, d, m1));
            prop_assert_eq!(sizes[2], step(sizes[1], d, n, m2));
            prop_assert!(sizes[2] >= s);
            prop_assert!(sizes[2] <= s + (1 + u64::from(m1)) * u64::from(d) / u64::from(n) + 1 + u64::from(m2), "{:?}", sizes);
        }

        /// Every chain plan is consistent: the pipes cover the connections in order, each pipe's
        /// chosen items are items of its pins, every pin's chosen item accepts the pipe's memory
        /// type, its frames are at least each pin's request, and its create request is valid.
        #[test]
        fn chain_plans_are_consistent(
            source in prop::collection::vec(arb_item(), 1..=2),
            transforms in prop::collection::vec((prop::collection::vec(arb_item(), 1..=2), prop::collection::vec(arb_item(), 1..=2)), 0..=3),
            sink in prop::collection::vec(arb_item(), 1..=2),
        ) {
            let chain = Chain {
                source: framing_bytes(&source),
                transforms: transforms.iter().map(|(i, o)| (framing_bytes(i), framing_bytes(o))).collect(),
                sink: framing_bytes(&sink),
            };
            let filters = chain.filters();
            if let Ok(plan) = plan_chain(&filters) {
                let mut next = 0;
                for pipe in plan.pipes() {
                    prop_assert_eq!(pipe.first_connection, next);
                    prop_assert!(pipe.last_connection >= pipe.first_connection);
                    next = pipe.last_connection + 1;
                    prop_assert!(pipe.plan.framing.check(ks_allocator::framing::LegacyRole::Request).is_ok());
                    prop_assert!(pipe.pins().any(|(name, _)| name == pipe.owner));
                    for (name, index) in pipe.pins() {
                        let framing = filters
                            .iter()
                            .flat_map(|f| match *f {
                                ChainFilter::Source { output } => vec![output],
                                ChainFilter::Transform { input, output } => vec![input, output],
                                ChainFilter::Sink { input } => vec![input],
                            })
                            .find(|pin| pin.name == name)
                            .unwrap()
                            .framing;
                        let item = framing.item(index).unwrap();
                        prop_assert!(pipe.plan.framing.frames >= item.frames, "{} asks for {}", name, item.frames);
                    }
                }
                prop_assert_eq!(next, filters.len() - 1, "every connection is in a pipe");
            }
        }
    }
}
