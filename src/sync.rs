//! What the pool is built on that a model checker replaces: `core`'s atomics, or `loom`'s when
//! the crate is compiled with `--cfg loom` so a model checker can explore every interleaving of
//! the free map; and the processor a thread runs on, which under loom is a per-model-thread
//! value a test sets ([`model`]), so that a model can put its threads on different shards.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;

/// The processor the calling thread runs on, and how many processors are active.
#[cfg(not(loom))]
pub(crate) use crate::system::{active_processors, current_processor};

#[cfg(loom)]
pub(crate) use model::{active_processors, current_processor};

/// The processors of a loom model: each model thread runs on processor 0 until it calls
/// [`run_on`](model::run_on); pools created on a thread see the count it set with
/// [`set_active`](model::set_active) (1 by default).
#[cfg(loom)]
pub mod model {
    use core::cell::Cell;

    loom::thread_local! {
        static CURRENT: Cell<u32> = Cell::new(0);
        static ACTIVE: Cell<u32> = Cell::new(1);
    }

    /// Puts the calling model thread on `processor`.
    pub fn run_on(processor: u32) {
        CURRENT.with(|current| current.set(processor));
    }

    /// Makes pools created on the calling model thread see `count` processors.
    pub fn set_active(count: u32) {
        ACTIVE.with(|active| active.set(count));
    }

    pub(crate) fn current_processor() -> u32 {
        CURRENT.with(Cell::get)
    }

    pub(crate) fn active_processors() -> u32 {
        ACTIVE.with(Cell::get)
    }
}
