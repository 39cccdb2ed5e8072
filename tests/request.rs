//! Allocator requests held against the pin and the budget: every refusal with its status, the
//! edges of each limit, the pin constraints read from a declaration, and the shape a request
//! resolves to.

use ks_allocator::{
    AllocatorRequest, Error, PinConstraints, PoolConfig,
    framing::{
        Framing, FramingEx, FramingItem, FramingRange, MemoryType, OptionFlags, PoolType, Problem,
        RequirementFlags,
    },
    request::{MAX_POOL_BYTES, RequestError},
};
use proptest::prelude::*;

fn framing(frames: u32, frame_size: u32, alignment: u32) -> Framing {
    Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, frames, frame_size, alignment)
}

fn check(
    framing: &Framing,
    pin: &PinConstraints,
    budget: &PoolConfig,
) -> Result<AllocatorRequest, RequestError> {
    AllocatorRequest::new(framing, pin, budget)
}

const NONE: PinConstraints = PinConstraints::NONE;
const BUDGET: PoolConfig = PoolConfig::DEFAULT;

#[test]
fn a_valid_request_resolves_its_shape() {
    let request = check(&framing(3, 1000, 0x3F), &NONE, &BUDGET).unwrap();
    assert_eq!((request.frames(), request.frame_size(), request.align_mask()), (3, 1000, 0x3F));
    assert_eq!(request.stride(), 1024, "1000 rounded up to 64");
    assert_eq!(request.frame_bytes(), 3 * 1024);
    assert!(!request.is_paged() && !request.is_uncapped());
    assert_eq!(request.options(), OptionFlags::SYSTEM_MEMORY);
    assert_eq!(request.framing(), framing(3, 1000, 0x3F));
    assert_eq!(request.with_owner(0x1234).owner(), 0x1234);
    // A 1-byte frame gets a 2-byte stride (see the pool's exact divider).
    assert_eq!(check(&framing(1, 1, 0), &NONE, &BUDGET).unwrap().stride(), 2);
}

#[test]
fn malformed_framings_are_invalid_parameter_with_the_field() {
    let cases = [
        (framing(2, 0, 0), "FrameSize", Problem::ZeroFrameSize),
        (framing(2, 100, 5), "FileAlignment", Problem::NotAlignmentMask { value: 5 }),
        (framing(2, 100, 0x1FFF), "FileAlignment", Problem::AlignmentAbovePage { value: 0x1FFF }),
        (
            Framing { pool_type: PoolType(2), ..framing(2, 100, 0) },
            "PoolType",
            Problem::UnsupportedPoolType { pool_type: PoolType(2) },
        ),
        (
            Framing { flags: 0x8000_0000, ..framing(2, 100, 0) },
            "OptionsFlags",
            Problem::UnknownFlags { bits: 0x8000_0000 },
        ),
    ];
    for (framing, field, problem) in cases {
        let Err(RequestError::Invalid(finding)) = check(&framing, &NONE, &BUDGET) else {
            panic!("{framing:?} accepted");
        };
        assert_eq!((finding.field, finding.problem), (field, problem));
        assert_eq!(Error::from(RequestError::Invalid(finding)), Error::INVALID_PARAMETER);
    }
    // Lenient: the requirement bits ReactOS accepts in OptionsFlags pass.
    let lenient = Framing { flags: RequirementFlags::MUST_ALLOCATE.bits(), ..framing(2, 100, 0) };
    assert!(check(&lenient, &NONE, &BUDGET).is_ok());
}

#[test]
fn paged_frames_only_for_pins_that_allow_them() {
    let dispatch = NONE.with_nonpaged_only(true);
    let paged = Framing { pool_type: PoolType::PAGED, ..framing(2, 4096, 0) };
    assert_eq!(
        check(&paged, &dispatch, &BUDGET),
        Err(RequestError::PagedForDispatchPin { pool_type: PoolType::PAGED })
    );
    assert!(check(&paged, &NONE, &BUDGET).unwrap().is_paged());
    for pool_type in
        [ks_sys::NonPagedPool, ks_sys::NonPagedPoolNx, ks_sys::NonPagedPoolNxCacheAligned]
    {
        let framing = Framing { pool_type: PoolType(pool_type), ..framing(2, 4096, 0) };
        assert!(!check(&framing, &dispatch, &BUDGET).unwrap().is_paged());
    }
    let error = RequestError::PagedForDispatchPin { pool_type: PoolType::PAGED };
    assert_eq!(Error::from(error), Error::INVALID_PARAMETER);
    assert!(error.to_string().contains("must be non-paged"), "{error}");
}

#[test]
fn frames_up_to_the_pins_physical_maximum() {
    let pin = NONE.with_max_frame_size(Some(153_600));
    assert!(check(&framing(2, 153_600, 0), &pin, &BUDGET).is_ok());
    assert_eq!(
        check(&framing(2, 153_601, 0), &pin, &BUDGET),
        Err(RequestError::FrameTooLarge { frame_size: 153_601, pin_maximum: 153_600 })
    );
    assert_eq!(
        Error::from(RequestError::FrameTooLarge { frame_size: 2, pin_maximum: 1 }),
        Error::INVALID_PARAMETER
    );
}

#[test]
fn the_budget_bounds_frames_and_bytes() {
    let budget = PoolConfig::DEFAULT.with_max_frames(8).with_max_bytes(8 * 4096);
    assert!(check(&framing(8, 4096, 0), &NONE, &budget).is_ok());
    assert_eq!(
        check(&framing(9, 16, 0), &NONE, &budget),
        Err(RequestError::TooManyFrames { frames: 9, budget: 8 })
    );
    assert_eq!(
        check(&framing(8, 4097, 0), &NONE, &budget),
        Err(RequestError::TooManyBytes { bytes: 8 * 4097, budget: 8 * 4096 })
    );
    // The aligned size counts: 8 frames of 4000 bytes page-aligned take 8 pages.
    assert!(check(&framing(8, 4000, 0xFFF), &NONE, &budget).is_ok());
    assert!(check(&framing(8, 4001, 0xFFF), &NONE, &budget.with_max_bytes(8 * 4096 - 1)).is_err());
    // 65535 frames of 64 KiB: 4 GiB of non-paged pool, refused by the default budget.
    assert_eq!(
        check(&framing(65_535, 64 << 10, 0), &NONE, &BUDGET),
        Err(RequestError::TooManyFrames { frames: 65_535, budget: 1024 })
    );
    for error in [
        RequestError::TooManyFrames { frames: 9, budget: 8 },
        RequestError::TooManyBytes { bytes: 1, budget: 0 },
        RequestError::UncappedRefused,
    ] {
        assert_eq!(Error::from(error), Error::INSUFFICIENT_RESOURCES, "{error}");
    }
}

#[test]
fn no_budget_lifts_the_4_gib_limit_of_a_pool() {
    let unlimited = PoolConfig::DEFAULT.with_max_frames(u32::MAX).with_max_bytes(usize::MAX);
    assert_eq!(unlimited.max_bytes, MAX_POOL_BYTES, "with_max_bytes caps at MAX_POOL_BYTES");
    let huge = PoolConfig { max_bytes: usize::MAX, ..unlimited };
    let over = framing(2, u32::MAX, 0xFFF);
    let Err(RequestError::TooManyBytes { bytes, budget }) = check(&over, &NONE, &huge) else {
        panic!("a stride over 4 GiB was accepted");
    };
    assert_eq!((bytes, budget), (2 * (u64::from(u32::MAX) + 1), MAX_POOL_BYTES));
    assert!(check(&framing(1, u32::MAX, 0), &NONE, &huge).is_ok(), "exactly 4 GiB - 1");
}

#[test]
fn uncapped_requests_take_the_budgets_count_or_are_refused() {
    let request = check(&framing(0, 4096, 0), &NONE, &BUDGET).unwrap();
    assert!(request.is_uncapped());
    assert_eq!(request.frames(), BUDGET.uncapped_frames);
    let request = check(&framing(0, 4096, 0), &NONE, &BUDGET.with_uncapped_frames(3)).unwrap();
    assert_eq!(request.frames(), 3);
    assert_eq!(
        check(&framing(0, 4096, 0), &NONE, &BUDGET.with_uncapped_frames(0)),
        Err(RequestError::UncappedRefused)
    );
    // The uncapped count is held against the budget like any other.
    let budget = BUDGET.with_uncapped_frames(20).with_max_frames(10);
    assert_eq!(
        check(&framing(0, 64, 0), &NONE, &budget),
        Err(RequestError::TooManyFrames { frames: 20, budget: 10 })
    );
}

#[test]
fn pin_constraints_come_from_the_flags_and_the_largest_physical_size() {
    let flags = [
        (0, false),
        (ks_sys::KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING, true),
        (ks_sys::KSPIN_FLAG_GENERATE_MAPPINGS, true),
        (
            ks_sys::KSPIN_FLAG_PROCESS_IN_RUN_STATE_ONLY | ks_sys::KSPIN_FLAG_CRITICAL_PROCESSING,
            false,
        ),
    ];
    for (flags, nonpaged) in flags {
        assert_eq!(PinConstraints::from_declaration(flags, None).nonpaged_only, nonpaged);
    }
    let two = FramingEx::new([
        FramingItem::new(MemoryType::KERNEL_NONPAGED).with_exact_size(4096),
        FramingItem::new(MemoryType::KERNEL_PAGED)
            .with_physical_range(FramingRange::new(0, 65_536)),
    ]);
    let pin = PinConstraints::from_declaration(0, Some(&two.view()));
    assert_eq!(pin.max_frame_size, Some(65_536), "the largest item decides");
    let open = FramingEx::new([
        FramingItem::new(MemoryType::KERNEL_NONPAGED).with_exact_size(4096),
        FramingItem::new(MemoryType::KERNEL_PAGED),
    ]);
    assert_eq!(
        PinConstraints::from_declaration(0, Some(&open.view())).max_frame_size,
        None,
        "an item that takes any size states no maximum"
    );
    assert_eq!(PinConstraints::from_declaration(0, None), NONE);
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { PinConstraints::from_pin(std::ptr::null()) }, NONE);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 16 } else { 256 }, ..ProptestConfig::default() })]

    /// Whatever the 24 bytes and the budget, a request is refused or satisfies every promise
    /// its type makes.
    #[test]
    fn accepted_requests_keep_every_invariant(
        words in prop::array::uniform6(prop_oneof![any::<u32>(), 0u32..5000, Just(0)]),
        max_frames in prop_oneof![Just(u32::MAX), 0u32..2000],
        max_bytes in prop_oneof![Just(usize::MAX), 0usize..(1 << 30)],
        uncapped in 0u32..20,
        nonpaged in any::<bool>(),
        max_frame_size in prop::option::of(any::<u32>()),
    ) {
        let mut bytes = [0u8; 24];
        for (chunk, word) in bytes.chunks_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let framing = Framing::parse(&bytes).unwrap();
        let budget = PoolConfig { max_frames, max_bytes, uncapped_frames: uncapped, ..PoolConfig::DEFAULT };
        let pin = PinConstraints { nonpaged_only: nonpaged, max_frame_size };
        if let Ok(request) = AllocatorRequest::new(&framing, &pin, &budget) {
            prop_assert!(request.frames() >= 1 && request.frames() <= max_frames);
            prop_assert!(request.frame_size() >= 1);
            prop_assert!(request.align_mask() <= 0xFFF && request.align_mask() & (request.align_mask() + 1) == 0);
            prop_assert!(request.stride() >= request.frame_size() as usize && request.stride() >= 2);
            prop_assert_eq!(request.stride() & request.align_mask() as usize, 0);
            prop_assert!(request.frame_bytes() <= max_bytes.min(MAX_POOL_BYTES));
            prop_assert!(!(nonpaged && request.is_paged()));
            prop_assert!(max_frame_size.is_none_or(|max| request.frame_size() <= max));
        }
    }
}
