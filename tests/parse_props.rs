//! The framing parser on untrusted input: more than 100,000 random, mutated and truncated
//! buffers, each of which must give `Ok` with a consistent view or exactly the typed error the
//! bytes call for. No input may panic or read out of bounds.

use ks_allocator::framing::{
    Compression, Framing, FramingEx, FramingExView, FramingItem, FramingRange, Guid, ItemFlags,
    LEGACY_LEN, MAX_ITEMS, MemoryType, ParseError,
};
use proptest::prelude::*;

/// What the parser must answer for `bytes`, computed independently of it.
fn expected(bytes: &[u8]) -> Result<usize, ParseError> {
    if bytes.len() < 24 {
        return Err(ParseError::TooShort { len: bytes.len(), needed: 24 });
    }
    let count = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    if count == 0 {
        return Err(ParseError::NoItems);
    }
    let needed = 24u64 + 88 * u64::from(count);
    if needed > u64::from(u32::MAX) {
        return Err(ParseError::TooManyItems { count });
    }
    let needed = usize::try_from(needed).unwrap();
    if bytes.len() < needed {
        return Err(ParseError::Truncated { count, len: bytes.len(), needed });
    }
    Ok(needed)
}

/// Parses, checks the answer and, for a view, that everything it offers is consistent.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = FramingExView::parse(bytes);
    match (&parsed, expected(bytes)) {
        (Ok(view), Ok(needed)) => {
            prop_assert_eq!(view.byte_len(), needed);
            prop_assert_eq!(view.trailing_len(), bytes.len() - needed);
            prop_assert_eq!(view.items().count(), view.count());
            prop_assert!(view.item(view.count()).is_none());
            let mut out = vec![0u8; needed];
            prop_assert_eq!(view.encode(&mut out), Ok(needed));
            prop_assert_eq!(&out[..], &bytes[..needed], "encode gives back the parsed bytes");
            let mut findings = 0usize;
            view.validate(|_| findings += 1);
            let summary = view.summary();
            prop_assert_eq!(summary.errors + summary.warnings, findings);
        }
        (Err(got), Err(want)) => prop_assert_eq!(*got, want),
        (got, want) => {
            prop_assert!(false, "parse gave {:?}, expected {:?}", got.map(|v| v.count()), want);
        }
    }
    // The legacy parser on the same bytes.
    match Framing::parse(bytes) {
        Ok(framing) => {
            prop_assert!(bytes.len() >= LEGACY_LEN);
            prop_assert_eq!(&framing.to_bytes()[..], &bytes[..LEGACY_LEN]);
        }
        Err(error) => {
            prop_assert_eq!(error, ParseError::TooShort { len: bytes.len(), needed: LEGACY_LEN });
        }
    }
    Ok(())
}

fn arb_range() -> impl Strategy<Value = FramingRange> {
    (any::<u32>(), any::<u32>(), prop_oneof![Just(0u32), Just(1), any::<u32>()])
        .prop_map(|(a, b, s)| FramingRange::new(a.min(b), a.max(b)).with_stepping(s))
}

fn arb_item() -> impl Strategy<Value = FramingItem> {
    (any::<u128>(), any::<u32>(), any::<u32>(), 0u32..64, 0u32..13, arb_range(), arb_range())
        .prop_map(|(guid, flags, frames, weight, align_bits, physical, optimal)| {
            FramingItem::new(MemoryType(Guid::from_u128(guid)))
                .with_flags(ItemFlags::from_bits_retain(flags))
                .with_frames(frames)
                .with_alignment((1u32 << align_bits) - 1)
                .with_weight(weight)
                .with_physical_range(physical)
                .with_optimal_range(optimal)
        })
}

/// Encoded framings of 1 to 4 items.
fn arb_framing_bytes() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(arb_item(), 1..=4), any::<(u32, u32, u32)>()).prop_map(
        |(items, (n, d, m))| {
            let compression = Compression::new(n, d, m);
            let mut out = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let mut one = [0u8; 112];
                FramingEx::new([*item]).with_compression(compression).encode(&mut one).unwrap();
                if index == 0 {
                    out.extend_from_slice(&one[..24]);
                }
                out.extend_from_slice(&one[24..]);
            }
            out[..4].copy_from_slice(&u32::try_from(items.len()).unwrap().to_le_bytes());
            out
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 16 } else { 40_000 }, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes of any length up to a few items.
    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes)?;
    }

    /// Valid framings cut at every kind of length, with trailing bytes, or with their count
    /// changed.
    #[test]
    fn truncated_and_mutated_framings(
        bytes in arb_framing_bytes(),
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 0..8),
        count in prop_oneof![Just(None), (0u32..6).prop_map(Some), any::<u32>().prop_map(Some)],
    ) {
        let mut bytes = bytes;
        if let Some(count) = count {
            bytes[..4].copy_from_slice(&count.to_le_bytes());
        }
        check(&bytes)?;
        let cut = cut.index(bytes.len() + 1);
        check(&bytes[..cut])?;
        bytes.extend_from_slice(&extra);
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 16 } else { 25_000 }, failure_persistence: None, ..ProptestConfig::default() })]

    /// Headers claiming any count, near the overflow boundary in particular, over short bodies.
    #[test]
    fn hostile_counts(
        count in prop_oneof![any::<u32>(), (MAX_ITEMS - 2)..=(MAX_ITEMS + 2), 0u32..4],
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = count.to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        check(&bytes)?;
    }
}

/// Every prefix of every sample framing, and of a three-item framing.
#[test]
fn every_truncation_of_the_sample_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/framings");
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let item = FramingItem::new(MemoryType::SYSTEM).with_frames(3);
    let mut three = [0u8; 288];
    FramingEx::new([item; 3]).encode(&mut three).unwrap();
    files.push(three.to_vec());
    for bytes in &files {
        for cut in 0..=bytes.len() {
            check(&bytes[..cut]).unwrap();
        }
    }
}
