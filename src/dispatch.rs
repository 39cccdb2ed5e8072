//! `KSALLOCATOR_DISPATCH` tables built from Rust types.
//!
//! C header: `ks.h` (`KSALLOCATOR_DISPATCH`, `KsCreateDefaultAllocatorEx`).
//!
//! A pin-specific allocator is four callbacks AVStream calls through `KSPIN_DISPATCH.Allocator`.
//! Implement [`PinAllocator`] for a type and [`dispatch_table`] builds the `'static` table at
//! compile time; its trampolines only recover the context, call the trait and convert the
//! result. The library's own frame-pool allocator is [`DefaultAllocator`], ready as
//! [`DEFAULT_DISPATCH`]:
//!
//! ```
//! # extern crate ks_host;
//! use ks_allocator::DEFAULT_DISPATCH;
//!
//! let pin_dispatch = ks_sys::KSPIN_DISPATCH {
//!     Create: None,
//!     Close: None,
//!     Process: None,
//!     Reset: None,
//!     SetDataFormat: None,
//!     SetDeviceState: None,
//!     Connect: None,
//!     Disconnect: None,
//!     Clock: core::ptr::null(),
//!     Allocator: DEFAULT_DISPATCH,
//! };
//! # assert!(pin_dispatch.Allocator.is_aligned());
//! ```
//!
//! The same callbacks also serve allocator objects a filter creates itself from an allocator
//! create IRP (the stream-class path): [`create_allocator_object`].
//!
//! # Contexts
//!
//! The context KS stores is a small non-paged block ([`CONTEXT_TAG`]) holding the implementor.
//! `InitializeAllocator` writes it last, after everything succeeded; `DeleteAllocator` drops the
//! implementor (for [`DefaultAllocator`]: every frame, outstanding or not, and the pool) and
//! frees the block.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};

use ks_sys::{KSALLOCATOR_DISPATCH, KSPIN, NTSTATUS, PIRP, PKSALLOCATOR_FRAMING, PVOID};

use crate::{
    Error, Result,
    framing::{Framing, LegacyRole},
    from_result,
    pool::{FRAME_TAG, FramePool, PoolConfig, SystemMemory},
    system::{PoolKind, SystemPool},
    to_result,
};

/// Pool tag of allocator contexts: `KsAc` in a debugger.
pub const CONTEXT_TAG: u32 = u32::from_le_bytes(*b"KsAc");

/// What the allocator serves: the `KSPIN` when AVStream calls `InitializeAllocator`, or the
/// `InitializeContext` a filter passed to [`create_allocator_object`]. Kept for diagnostics;
/// the library never dereferences it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocatorOwner(*mut c_void);

impl AllocatorOwner {
    /// An owner from a raw pointer (what KS passes).
    #[must_use]
    pub const fn from_ptr(owner: *mut c_void) -> Self {
        Self(owner)
    }

    /// The raw pointer.
    #[must_use]
    pub const fn as_ptr(self) -> *mut c_void {
        self.0
    }

    /// The pin, when AVStream created the allocator.
    #[must_use]
    pub const fn as_pin(self) -> *mut KSPIN {
        self.0.cast()
    }
}

/// A pin-specific frame allocator.
///
/// Implementors are the per-allocator context: one value per allocator object, created by
/// [`initialize`](PinAllocator::initialize) and dropped by `DeleteAllocator`. Several may exist
/// for one pin.
pub trait PinAllocator: Sized + Send + Sync {
    /// Creates the allocator from the negotiated framing (already copied and validated against
    /// the allocator-request rules). PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// The status `InitializeAllocator` returns; KS then fails the allocator's creation.
    fn initialize(owner: AllocatorOwner, framing: &Framing) -> Result<Self>;

    /// A frame, or `None` at once when there is none. IRQL <= DISPATCH_LEVEL; any CPU,
    /// concurrently with `allocate` and `free`.
    fn allocate(&self) -> Option<NonNull<u8>>;

    /// Takes back a frame `allocate` returned. IRQL <= DISPATCH_LEVEL; any CPU, concurrently.
    /// A bad pointer must be detected and ignored, never corrupt the allocator.
    fn free(&self, frame: NonNull<u8>);
}

/// The library's allocator: a [`FramePool`] over system memory of the framing's `PoolType`
/// (paged for `PagedPool`, non-paged otherwise), frames tagged [`FRAME_TAG`].
pub struct DefaultAllocator {
    pool: FramePool<SystemMemory>,
}

impl DefaultAllocator {
    /// The pool, for statistics.
    #[must_use]
    pub fn pool(&self) -> &FramePool<SystemMemory> {
        &self.pool
    }
}

impl PinAllocator for DefaultAllocator {
    fn initialize(owner: AllocatorOwner, framing: &Framing) -> Result<Self> {
        let memory = SystemMemory::for_pool_type(framing.pool_type, FRAME_TAG);
        let config = PoolConfig::DEFAULT.with_owner(owner.as_ptr() as usize);
        Ok(Self { pool: FramePool::new(framing, memory, config)? })
    }

    #[inline]
    fn allocate(&self) -> Option<NonNull<u8>> {
        self.pool.allocate()
    }

    #[inline]
    fn free(&self, frame: NonNull<u8>) {
        // A bad free is counted and reported by the pool, which stays intact.
        let _ = self.pool.free(frame);
    }
}

/// Copies and validates the framing, creates `T`, boxes it and writes `*context` last.
///
/// # Safety
///
/// `framing` is NULL or points at a readable `KSALLOCATOR_FRAMING`; `context` is NULL or
/// writable. PASSIVE_LEVEL.
unsafe fn initialize<T: PinAllocator>(
    owner: PVOID,
    framing: PKSALLOCATOR_FRAMING,
    context: *mut PVOID,
) -> Result {
    if framing.is_null() || context.is_null() {
        return Err(Error::INVALID_PARAMETER);
    }
    // SAFETY: `framing` is non-NULL and readable (this function's contract); the copy means its
    // lifetime ends with the call, as KS expects.
    let raw = unsafe { framing.read_unaligned() };
    let framing = Framing::from_raw(&raw);
    framing.check(LegacyRole::RequestLenient).map_err(|_| Error::INVALID_PARAMETER)?;
    let value = T::initialize(AllocatorOwner(owner), &framing)?;
    const {
        assert!(align_of::<T>() <= 16, "allocator contexts must fit pool alignment");
    }
    // On failure `value` is dropped here, releasing whatever it holds.
    let block = SystemPool::resolve()
        .allocate(PoolKind::NonPaged, size_of::<T>().max(1), CONTEXT_TAG)
        .ok_or(Error::INSUFFICIENT_RESOURCES)?
        .cast::<T>();
    // SAFETY: `block` is a fresh non-paged allocation of at least `size_of::<T>()` bytes,
    // 16-byte aligned (enough, asserted above).
    unsafe { block.write(value) };
    // SAFETY: `context` is non-NULL and writable (this function's contract); written last.
    unsafe { context.write(block.as_ptr().cast()) };
    Ok(())
}

/// The trampolines of [`dispatch_table`]; one instance per implementor.
struct Trampolines<T>(PhantomData<T>);

impl<T: PinAllocator> Trampolines<T> {
    const TABLE: KSALLOCATOR_DISPATCH = KSALLOCATOR_DISPATCH {
        InitializeAllocator: Some(Self::initialize_allocator),
        DeleteAllocator: Some(Self::delete_allocator),
        Allocate: Some(Self::allocate),
        Free: Some(Self::free),
    };

    /// `InitializeAllocator`. PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, through `KSALLOCATOR_DISPATCH`: `framing` points at the allocator
    /// request's framing and `context` at where to store the context.
    unsafe extern "C" fn initialize_allocator(
        pin: *mut KSPIN,
        framing: PKSALLOCATOR_FRAMING,
        context: *mut PVOID,
    ) -> NTSTATUS {
        // SAFETY: forwarded from KS (this function's contract).
        from_result(unsafe { initialize::<T>(pin.cast(), framing, context) })
    }

    /// `PFNKSINITIALIZEALLOCATOR` for `KsCreateDefaultAllocatorEx`. PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, from `KsCreateDefaultAllocatorEx`, with the same pointers as above.
    unsafe extern "C" fn initialize_ex(
        owner: PVOID,
        framing: PKSALLOCATOR_FRAMING,
        context: *mut PVOID,
    ) -> NTSTATUS {
        // SAFETY: forwarded from KS (this function's contract).
        from_result(unsafe { initialize::<T>(owner, framing, context) })
    }

    /// `DeleteAllocator`: drops the implementor and frees the context. PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, once, with a context `InitializeAllocator` produced; no Allocate or
    /// Free follows.
    unsafe extern "C" fn delete_allocator(context: PVOID) {
        let Some(block) = NonNull::new(context.cast::<T>()) else {
            return;
        };
        // SAFETY: the context is a live `T` written by `initialize`, deleted exactly once.
        drop(unsafe { block.read() });
        // SAFETY: the block came from the system pool with CONTEXT_TAG and is freed exactly once.
        unsafe { SystemPool::free(block.cast(), CONTEXT_TAG) };
    }

    /// `Allocate`. IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, with a live context.
    unsafe extern "C" fn allocate(context: PVOID) -> PVOID {
        // SAFETY: KS passes a context from `initialize` that is not yet deleted.
        let Some(context) = (unsafe { context.cast::<T>().as_ref() }) else {
            return core::ptr::null_mut();
        };
        context.allocate().map_or(core::ptr::null_mut(), |frame| frame.as_ptr().cast())
    }

    /// `Free`. IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, with a live context.
    unsafe extern "C" fn free(context: PVOID, frame: PVOID) {
        // SAFETY: KS passes a context from `initialize` that is not yet deleted.
        let Some(context) = (unsafe { context.cast::<T>().as_ref() }) else {
            return;
        };
        if let Some(frame) = NonNull::new(frame.cast::<u8>()) {
            context.free(frame);
        }
    }
}

/// The `KSALLOCATOR_DISPATCH` of `T`, built at compile time.
#[must_use]
pub const fn dispatch_table<T: PinAllocator>() -> &'static KSALLOCATOR_DISPATCH {
    &Trampolines::<T>::TABLE
}

/// The library's frame-pool allocator as a `KSALLOCATOR_DISPATCH`, for
/// `KSPIN_DISPATCH.Allocator`.
pub const DEFAULT_DISPATCH: &KSALLOCATOR_DISPATCH = dispatch_table::<DefaultAllocator>();

/// Creates an allocator object for an allocator create IRP (`IRP_MJ_CREATE` of the allocator
/// object class on a pin), served by `T` through `KsCreateDefaultAllocatorEx`: the stream-class
/// or filter-specific path. `initialize_context` reaches `T::initialize` as the owner.
/// PASSIVE_LEVEL.
///
/// # Errors
///
/// The status of `KsCreateDefaultAllocatorEx`: request validation or `T::initialize`'s error.
///
/// # Safety
///
/// `irp` is the allocator create IRP being dispatched, as KS requires
/// (`KSCREATE_ITEM_IRP_STORAGE` set to the allocator create item).
pub unsafe fn create_allocator_object<T: PinAllocator>(
    irp: PIRP,
    initialize_context: PVOID,
) -> Result {
    // SAFETY: the caller's contract; the callbacks are this module's trampolines for `T`.
    let status = unsafe {
        ks_sys::KsCreateDefaultAllocatorEx(
            irp,
            initialize_context,
            Some(Trampolines::<T>::allocate),
            Some(Trampolines::<T>::free),
            Some(Trampolines::<T>::initialize_ex),
            Some(Trampolines::<T>::delete_allocator),
        )
    };
    to_result(status)
}
