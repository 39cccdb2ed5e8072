//! The atomics the pool is built on: `core`'s, or `loom`'s when the crate is compiled with
//! `--cfg loom` so a model checker can explore every interleaving of the free map.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;
