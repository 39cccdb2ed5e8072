//! A test's exclusive use of the host, with a leak and violation check at the end.

use std::sync::{Mutex, MutexGuard};

static SESSION: Mutex<()> = Mutex::new(());

/// Exclusive use of the host's global state for one test.
///
/// Beginning a session waits for any other session to end, then clears the pool accounting,
/// the DMA address space, the failure schedule, the debug output, the violations, the hidden routines, the handle
/// table and the processor count, and attaches the simulated debugger. Ending it (drop) checks that no pool allocation is
/// outstanding, no DMA adapter, common buffer or mapping is left, no object reference taken by
/// a driver is still held and no violation was recorded, and panics with a report naming each
/// leaked tag and size or object otherwise (unless the test is already panicking). Call
/// [`Session::take_violations`] for violations a test provokes on purpose.
pub struct Session {
    _exclusive: MutexGuard<'static, ()>,
}

impl Session {
    /// Begins a session.
    #[must_use]
    pub fn begin() -> Self {
        let exclusive = crate::lock(&SESSION);
        reset_all();
        Self { _exclusive: exclusive }
    }

    /// Outstanding pool allocations.
    #[must_use]
    pub fn live(&self) -> crate::pool::Live {
        crate::pool::live()
    }

    /// Violations so far; the record is emptied.
    #[must_use]
    pub fn take_violations(&self) -> Vec<crate::verifier::Violation> {
        crate::verifier::take_violations()
    }

    /// Debug output so far; the record is emptied.
    #[must_use]
    pub fn take_output(&self) -> Vec<crate::debug::DebugRecord> {
        crate::debug::take_output()
    }
}

struct Leftovers {
    timers: usize,
    retired: ks_allocator::RetiredStats,
    pool: crate::pool::Live,
    dma: crate::dma::Leftovers,
    references: Vec<(crate::object::ObjectKind, usize)>,
    violations: Vec<crate::verifier::Violation>,
}

fn reset_all() -> Leftovers {
    let timers = crate::ke::reset();
    // Allocators the library kept because they were deleted with frames out live in pool memory
    // the pool reset below frees: release them first (no consumer of this session is left).
    // SAFETY: the session is over, so nothing uses a frame of a retired allocator.
    let retired = unsafe { ks_allocator::release_retired_allocators() };
    let dma = crate::dma::reset();
    let pool = crate::pool::reset();
    let references = crate::object::reset();
    let violations = crate::verifier::take_violations();
    let _ = crate::debug::take_output();
    crate::debug::reset();
    crate::routines::unhide_all();
    crate::avstream::fail_leading_edge_locks(0);
    crate::processor::reset();
    Leftovers { timers, retired, pool, dma, references, violations }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Leftovers { timers, retired, pool, dma, references, violations } = reset_all();
        if std::thread::panicking() {
            return;
        }
        let mut problems = Vec::new();
        if timers > 0 {
            problems.push(format!("{timers} kernel timer(s) still set"));
        }
        if retired.allocators > 0 {
            problems.push(format!(
                "{} allocator(s) deleted with frames out and never released \
                 (ks_allocator::release_retired_allocators)",
                retired.allocators
            ));
        }
        if !pool.is_empty() {
            problems.push(format!("pool memory leaked: {pool}"));
        }
        if dma.adapters > 0 {
            problems
                .push(format!("{} DMA adapter(s) never given back (PutDmaAdapter)", dma.adapters));
        }
        for (logical, bytes) in &dma.common_buffers {
            problems.push(format!("common buffer leaked: {bytes} bytes at logical {logical:#x}"));
        }
        if dma.mapping_sets > 0 {
            problems.push(format!("{} mapping set(s) still programmed", dma.mapping_sets));
        }
        if dma.views > 0 {
            problems.push(format!(
                "{} device view(s) of memory never committed (ks_host::dma::commit)",
                dma.views
            ));
        }
        for (kind, count) in references {
            problems.push(format!("object reference leaked: {count} on a {kind:?} object"));
        }
        for violation in violations {
            problems.push(format!("violation: {violation}"));
        }
        assert!(problems.is_empty(), "ks-host session ended with:\n  {}", problems.join("\n  "));
    }
}
