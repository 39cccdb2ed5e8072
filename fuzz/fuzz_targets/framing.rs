//! The framing parser, the validator and the legacy and request views on arbitrary bytes.
//!
//! Nothing may panic; a framing that parses must report its findings and give the same verdict
//! through `check()`; a 24-byte framing that becomes an allocator request must satisfy every
//! promise `AllocatorRequest` makes (frames within the budget, a frame size, the stride a
//! multiple of the alignment, the frames' bytes within the budget).

#![no_main]

use ks_allocator::{
    AllocatorRequest, PinConstraints, PoolConfig,
    framing::{Framing, FramingExView, LegacyRole, Severity},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = FramingExView::parse(data) {
        let mut errors = 0_usize;
        view.validate(|finding| errors += usize::from(finding.severity == Severity::Error));
        assert_eq!(view.check().is_ok(), errors == 0, "check() agrees with validate()");
        assert_eq!(view.items().count(), view.count());
        let _ = view.summary();
    }
    if let Ok(framing) = Framing::parse(data) {
        for role in [LegacyRole::Query, LegacyRole::Request, LegacyRole::RequestLenient] {
            let mut errors = 0_usize;
            framing.validate(role, |finding| errors += usize::from(finding.severity == Severity::Error));
            assert_eq!(framing.check(role).is_ok(), errors == 0, "check() agrees with validate()");
            let _ = framing.summary(role);
        }
        let budget = PoolConfig::DEFAULT;
        for constraints in [PinConstraints::NONE, PinConstraints::NONE.with_nonpaged_only(true)] {
            if let Ok(request) = AllocatorRequest::new(&framing, &constraints, &budget) {
                assert!(request.frame_size() > 0);
                assert!(request.frames() > 0);
                assert!(request.frames() <= budget.max_frames);
                assert!(request.frame_bytes() <= budget.max_bytes);
                assert_eq!(request.stride() & request.align_mask() as usize, 0);
                assert!(request.stride() >= request.frame_size() as usize);
                if constraints.nonpaged_only {
                    assert!(!request.is_paged());
                }
            }
        }
    }
});
