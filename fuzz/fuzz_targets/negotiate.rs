//! `negotiate()` on two arbitrary framings (the first two bytes say where the first ends).
//!
//! Nothing may panic. When there is a plan: its items exist; without PREFERENCES_ONLY on either
//! chosen item and without compression, its frame size lies in both items' physical ranges and
//! steppings; its frame count is the larger of the two (0 is no preference); its alignment is
//! the OR of the two masks; it becomes a request or a typed refusal, and never one the owner's
//! own allocator refuses for its size (the owner holds its frames). Swapping the sides,
//! without compression, changes only the placement: the same framing and memory type, or the
//! same kind of failure.
//!
//! Chains too: the two framings as a source and a sink plan exactly as they negotiate, and as a
//! source, an in-place or copying transform (the first framing on both of its pins) and a sink
//! they plan without panicking into pipes that cover every connection, each with a valid create
//! request.

#![no_main]

use ks_allocator::{
    PinConstraints, PoolConfig,
    framing::{Compression, FramingExView, FramingItem, FramingRange, ItemFlags, LegacyRole},
    negotiate,
    negotiate::{ChainFilter, ChainPin, PipeError, plan_chain},
};
use libfuzzer_sys::fuzz_target;

fn in_grid(range: FramingRange, size: u32) -> bool {
    let step = range.effective_stepping().max(1);
    size >= range.min_frame_size
        && size <= range.max_frame_size
        && (size - range.min_frame_size) % step == 0
}

fn preferences_only(item: &FramingItem) -> bool {
    item.flags.contains(ItemFlags::PREFERENCES_ONLY)
}

fuzz_target!(|data: &[u8]| {
    let Some((split, rest)) = data.split_first_chunk::<2>() else { return };
    let split = usize::from(u16::from_le_bytes(*split)).min(rest.len());
    let (first, second) = rest.split_at(split);
    let (Ok(upstream), Ok(downstream)) = (FramingExView::parse(first), FramingExView::parse(second))
    else {
        return;
    };
    let forward = negotiate(&upstream, &downstream);
    let backward = negotiate(&downstream, &upstream);
    let plain = upstream.header().output_compression == Compression::IDENTITY
        && downstream.header().output_compression == Compression::IDENTITY;

    if let Ok(plan) = &forward {
        let u = upstream.item(plan.upstream_item).expect("the plan's upstream item exists");
        let d = downstream.item(plan.downstream_item).expect("the plan's downstream item exists");
        let framing = plan.framing;
        if plain && !preferences_only(&u) && !preferences_only(&d) {
            assert!(in_grid(u.physical_range, framing.frame_size), "{plan:?} outside {u:?}");
            assert!(in_grid(d.physical_range, framing.frame_size), "{plan:?} outside {d:?}");
        }
        assert_eq!(framing.frames, u.frames.max(d.frames), "{plan:?}");
        assert_eq!(framing.file_alignment, u.file_alignment | d.file_alignment, "{plan:?}");
        let _ = plan.request(&PinConstraints::NONE, &PoolConfig::DEFAULT);
        let owner = if plan.owner == negotiate::Side::Upstream { &upstream } else { &downstream };
        let pin = PinConstraints::from_declaration(0, Some(owner));
        let request = plan.request(&pin, &PoolConfig::DEFAULT);
        assert!(
            !matches!(request, Err(ks_allocator::request::RequestError::FrameTooLarge { .. })),
            "{plan:?}: {request:?}"
        );
        for reason in plan.reasons() {
            let _ = reason.to_string();
        }
    }
    // The one-connection chain is the pair negotiation.
    let pin = |name, framing| ChainPin { name, framing };
    let pair = [
        ChainFilter::Source { output: pin("u.out", upstream) },
        ChainFilter::Sink { input: pin("d.in", downstream) },
    ];
    match (plan_chain(&pair), &forward) {
        (Ok(chain), Ok(plan)) => assert_eq!(chain.pipes().next().map(|p| p.plan), Some(*plan)),
        (Err(PipeError::Pipe { error, .. }), Err(expected)) => assert_eq!(error, *expected),
        (chain, expected) => panic!("{chain:?} / {expected:?}"),
    }
    // A transform between them, with the upstream framing on both of its pins.
    let chain = [
        ChainFilter::Source { output: pin("u.out", upstream) },
        ChainFilter::Transform { input: pin("t.in", upstream), output: pin("t.out", upstream) },
        ChainFilter::Sink { input: pin("d.in", downstream) },
    ];
    if let Ok(plan) = plan_chain(&chain) {
        let mut next = 0;
        for pipe in plan.pipes() {
            assert_eq!(pipe.first_connection, next);
            next = pipe.last_connection + 1;
            assert!(pipe.plan.framing.check(LegacyRole::Request).is_ok(), "{pipe:?}");
            for reason in pipe.reasons() {
                let _ = reason.to_string();
            }
        }
        assert_eq!(next, 2, "every connection is in a pipe");
    }
    if plain {
        match (&forward, &backward) {
            (Ok(f), Ok(b)) => {
                assert_eq!(f.framing, b.framing);
                assert_eq!(f.memory_type, b.memory_type);
                assert_eq!(upstream.item(f.upstream_item), upstream.item(b.downstream_item));
                assert_eq!(downstream.item(f.downstream_item), downstream.item(b.upstream_item));
            }
            (Err(f), Err(b)) => {
                assert_eq!(std::mem::discriminant(f), std::mem::discriminant(b));
            }
            (f, b) => panic!("one direction failed: {f:?} / {b:?}"),
        }
    }
});
