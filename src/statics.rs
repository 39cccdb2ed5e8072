//! `static` C tables that hold raw pointers.
//!
//! AVStream descriptors and dispatch tables (`KSPIN_DISPATCH`, `KSPIN_DESCRIPTOR_EX`,
//! `KSFILTER_DESCRIPTOR`, …) are immutable data full of pointers to other immutable data. Rust
//! does not let raw pointers into a `static` because it cannot know they are never used to
//! mutate shared state; [`SyncStatic`] is the one place that promise is made.

use core::ops::Deref;

/// A value that may live in a `static` although it holds raw pointers.
///
/// # Invariants
///
/// The wrapped value is never mutated through the pointers it holds, and those pointers point at
/// data that lives for the whole program and is itself immutable (or synchronised).
#[repr(transparent)]
pub struct SyncStatic<T>(T);

impl<T> SyncStatic<T> {
    /// Wraps a table for a `static`.
    ///
    /// # Safety
    ///
    /// Every pointer in `value` points at `'static` data that nothing mutates without
    /// synchronisation, and `value` itself is not mutated through them: what C descriptors and
    /// dispatch tables are.
    pub const unsafe fn new(value: T) -> Self {
        // INVARIANT: the caller's contract.
        Self(value)
    }

    /// The table.
    pub const fn get(&self) -> &T {
        &self.0
    }

    /// A pointer to the table, for the C structures that point at it.
    pub const fn as_ptr(&self) -> *const T {
        &raw const self.0
    }
}

impl<T> Deref for SyncStatic<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

// SAFETY: the type invariant: the value and everything it points at are immutable, so sharing a
// reference between threads cannot race.
unsafe impl<T> Sync for SyncStatic<T> {}
