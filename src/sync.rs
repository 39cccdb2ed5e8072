//! The atomics the pool is built on: `core`'s, or `loom`'s when the crate is compiled with
//! `--cfg loom` so a model checker can explore every interleaving of the free map.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;
