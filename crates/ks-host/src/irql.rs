//! The IRQL of each thread.
//!
//! A thread starts at PASSIVE_LEVEL. A test that plays a DPC or a spin-lock holder raises its
//! thread to DISPATCH_LEVEL with [`raise`] (or [`at_dispatch`]); the host's routines check the
//! IRQL their contract allows and record a [`Violation`](crate::verifier::Violation) otherwise.
//! There is no preemption to model: the IRQL is a checked label, which is what the contracts
//! are about.

use std::cell::Cell;

use ks_sys::KIRQL;

/// Normal thread execution, as a [`KIRQL`]. (`ks_sys::PASSIVE_LEVEL` is typed as wdk-sys types
/// the `#define`, a `u32`; the host's IRQL bookkeeping works in `KIRQL`.)
pub const PASSIVE_LEVEL: KIRQL = 0;
/// APCs masked, as a [`KIRQL`].
pub const APC_LEVEL: KIRQL = 1;
/// DPCs and the dispatcher masked, as a [`KIRQL`].
pub const DISPATCH_LEVEL: KIRQL = 2;

// The host's levels are ks-sys's, narrowed.
const _: () = assert!(
    PASSIVE_LEVEL as u32 == ks_sys::PASSIVE_LEVEL
        && APC_LEVEL as u32 == ks_sys::APC_LEVEL
        && DISPATCH_LEVEL as u32 == ks_sys::DISPATCH_LEVEL
);

thread_local! {
    static IRQL: Cell<KIRQL> = const { Cell::new(PASSIVE_LEVEL) };
}

/// The calling thread's IRQL.
#[must_use]
#[inline]
pub fn current() -> KIRQL {
    IRQL.with(Cell::get)
}

/// Restores the previous IRQL when dropped (`KeLowerIrql`).
#[derive(Debug)]
#[must_use = "the IRQL is lowered again when the guard is dropped"]
pub struct IrqlGuard {
    previous: KIRQL,
}

impl Drop for IrqlGuard {
    fn drop(&mut self) {
        IRQL.with(|irql| irql.set(self.previous));
    }
}

/// Raises the calling thread to `level` (`KeRaiseIrql`) until the guard is dropped.
///
/// Raising to a lower level than the current one is a contract violation (a bugcheck on
/// Windows); it is recorded and the IRQL is left unchanged.
pub fn raise(level: KIRQL) -> IrqlGuard {
    let previous = current();
    if level < previous {
        crate::verifier::report(
            "KeRaiseIrql",
            format!("raise from {previous} to lower level {level}"),
        );
        return IrqlGuard { previous };
    }
    IRQL.with(|irql| irql.set(level));
    IrqlGuard { previous }
}

/// Runs `f` at DISPATCH_LEVEL, as a DPC or a spin-lock holder would.
pub fn at_dispatch<R>(f: impl FnOnce() -> R) -> R {
    let _guard = raise(DISPATCH_LEVEL);
    f()
}
