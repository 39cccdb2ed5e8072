//! `static` C tables that hold raw pointers.
//!
//! AVStream descriptors and dispatch tables (`KSPIN_DISPATCH`, `KSPIN_DESCRIPTOR_EX`,
//! `KSFILTER_DESCRIPTOR`, …) are immutable data full of pointers to other immutable data. Rust
//! does not let raw pointers into a `static` because it cannot know they are never used to
//! mutate shared state; [`SyncStatic`] is the one place that promise is made.

use core::ops::Deref;

/// A value that may live in a `static` although it holds raw pointers.
///
/// `T` must be `Copy`: plain data without a destructor and without interior mutability of its
/// own (`UnsafeCell`, and so `Cell`, `RefCell` and the atomics, is not `Copy`). Sharing such a
/// value between threads can only race through what it points at, and that is what the unsafe
/// constructor's contract rules out. The C descriptors and dispatch tables of ks-sys are all
/// `Copy`.
///
/// # Invariants
///
/// The wrapped value is never mutated through the pointers it holds, and those pointers point at
/// data that lives for the whole program and is itself immutable (or synchronised).
#[repr(transparent)]
pub struct SyncStatic<T: Copy>(T);

impl<T: Copy> SyncStatic<T> {
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

impl<T: Copy> Deref for SyncStatic<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

// SAFETY: `T: Copy` rules out interior mutability of the value itself, and the type invariant
// makes everything it points at immutable (or synchronised), so sharing a reference between
// threads cannot race. `Send` is not needed: a `static` is never moved to another thread.
unsafe impl<T: Copy> Sync for SyncStatic<T> {}
