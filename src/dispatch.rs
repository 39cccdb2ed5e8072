//! `KSALLOCATOR_DISPATCH` tables built from Rust types.
//!
//! C header: `ks.h` (`KSALLOCATOR_DISPATCH`, `KsCreateDefaultAllocatorEx`).
//!
//! A pin-specific allocator is four callbacks AVStream calls through `KSPIN_DISPATCH.Allocator`.
//! Implement [`PinAllocator`] for a type and [`dispatch_table`] builds the `'static` table at
//! compile time. The library's own frame-pool allocator is [`DefaultAllocator`], ready as
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
//! # What the callbacks do
//!
//! - `InitializeAllocator` (PASSIVE_LEVEL) copies the 24-byte framing KS passes, holds it against
//!   the pin ([`AllocatorRequest::new`] with the pin's [`PinConstraints`] and the implementor's
//!   [`PinAllocator::BUDGET`]), takes a place under the budget's ceilings of allocators per pin
//!   and per driver ([`live_allocators`](crate::live_allocators)), creates the implementor,
//!   boxes it in non-paged pool ([`CONTEXT_TAG`](crate::tags::CONTEXT_TAG)) and writes
//!   `*Context` last. A refused request is reported with `DbgPrintEx` (error level) and fails
//!   with the status [`RequestError`] maps to; `*Context` is untouched on every failure and
//!   nothing is leaked.
//! - `Allocate` and `Free` (IRQL <= DISPATCH_LEVEL, any CPU, concurrently) recover the context
//!   and call the trait.
//! - `DeleteAllocator` (PASSIVE_LEVEL) drops the implementor (for [`DefaultAllocator`]: every
//!   frame and the pool) and frees the context, giving its place back. Unless frames are still
//!   out ([`PinAllocator::outstanding`]): see below.
//!
//! # Frames still out when the allocator is deleted
//!
//! Frames a consumer still holds when KS deletes the allocator are a bug of the consumer, which
//! may still write them. Freeing their memory would let those writes land in whatever the pool
//! hands out next: corruption found far from its cause, the worst kind of kernel bug. So the
//! allocator is *retired* instead: reported (error level, with its owner, the frames out and the
//! bytes kept; a stop in the debugger in debug builds), kept whole, memory and all, off its
//! pin's count but still counted against the driver's ceiling of allocators (so a consumer that
//! does it again and again gets allocator creation refused, not all of non-paged pool), and
//! counted in [`retired_allocators`]. The driver reclaims the memory
//! with [`release_retired_allocators`] once no consumer can
//! hold a frame any more: at unload, or once the device is removed and every pin closed.
//!
//! [`RequestError`]: crate::request::RequestError

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};

use ks_sys::{KSALLOCATOR_DISPATCH, KSPIN, NTSTATUS, PIRP, PKSALLOCATOR_FRAMING, PVOID};

use crate::{
    AllocatorRequest, Error, PinConstraints, PoolConfig, Result,
    ceiling::Lease,
    framing::Framing,
    from_result,
    pool::{FramePool, SystemMemory},
    system::PoolBox,
    to_result,
};

mod retire;

use retire::RetiredLink;
pub use retire::{RetiredStats, release_retired_allocators, retired_allocators};

/// Frames an allocator still has out, and the bytes of memory they keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Outstanding {
    /// Frames handed out and not taken back.
    pub frames: u32,
    /// Bytes of frame memory the allocator holds (all of it: the frames out share their
    /// allocator's memory with the free ones).
    pub bytes: usize,
}

/// A pin-specific frame allocator.
///
/// Implementors are the per-allocator context: one value per allocator object, created by
/// [`initialize`](PinAllocator::initialize) and dropped by `DeleteAllocator`. Several may exist
/// for one pin.
///
/// A driver's own allocator, here a frame pool that also counts what it handed out, with a
/// budget of its own:
///
/// ```
/// # extern crate ks_host;
/// use core::{ptr::NonNull, sync::atomic::{AtomicU64, Ordering}};
///
/// use ks_allocator::{
///     AllocatorRequest, FramePool, PinAllocator, PoolConfig, dispatch_table, pool::SystemMemory,
/// };
///
/// struct CountingAllocator {
///     pool: FramePool,
///     handed_out: AtomicU64,
/// }
///
/// impl PinAllocator for CountingAllocator {
///     const BUDGET: PoolConfig = PoolConfig::DEFAULT.with_max_frames(16).with_max_bytes(1 << 20);
///
///     fn initialize(request: &AllocatorRequest) -> ks_allocator::Result<Self> {
///         let pool = FramePool::new(request, SystemMemory::for_request(request))?;
///         Ok(Self { pool, handed_out: AtomicU64::new(0) })
///     }
///
///     fn allocate(&self) -> Option<NonNull<u8>> {
///         let frame = self.pool.allocate()?;
///         self.handed_out.fetch_add(1, Ordering::Relaxed);
///         Some(frame)
///     }
///
///     fn free(&self, frame: NonNull<u8>) {
///         // A bad free is counted and reported by the pool, which stays intact.
///         let _ = self.pool.free(frame);
///     }
/// }
///
/// // What the pin's `KSPIN_DISPATCH.Allocator` points at.
/// static COUNTING_DISPATCH: &ks_sys::KSALLOCATOR_DISPATCH = dispatch_table::<CountingAllocator>();
///
/// // Driven as AVStream drives it, on the user-mode host.
/// # let _host = ks_host::Session::begin();
/// use ks_allocator::framing::{Framing, OptionFlags, PoolType};
/// let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 2, 4096, 0);
/// // SAFETY: a NULL pin (no constraints) and a table built for this purpose.
/// let allocator = unsafe {
///     ks_host::ks::DispatchAllocator::initialize(COUNTING_DISPATCH, core::ptr::null_mut(), &framing.to_raw())
/// }
/// .expect("InitializeAllocator succeeds");
/// let frame = allocator.allocate().expect("a frame");
/// allocator.free(frame);
/// # drop(allocator);
/// ```
pub trait PinAllocator: Sized + Send + Sync + 'static {
    /// The budget allocator requests for this type are held against before
    /// [`initialize`](PinAllocator::initialize) is called.
    const BUDGET: PoolConfig = PoolConfig::DEFAULT;

    /// Creates the allocator for a checked request (the negotiated framing, held against the pin
    /// and [`BUDGET`](PinAllocator::BUDGET)).
    ///
    /// # Errors
    ///
    /// The status `InitializeAllocator` returns; KS then fails the allocator's creation.
    ///
    /// # IRQL
    ///
    /// PASSIVE_LEVEL.
    fn initialize(request: &AllocatorRequest) -> Result<Self>;

    /// A frame, or `None` at once when there is none. Must not block or allocate.
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL; any CPU, concurrently with `allocate` and `free`.
    fn allocate(&self) -> Option<NonNull<u8>>;

    /// Takes back a frame `allocate` returned. A bad pointer must be detected and ignored, never
    /// corrupt the allocator.
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL; any CPU, concurrently.
    fn free(&self, frame: NonNull<u8>);

    /// Frames handed out and not taken back, asked when KS deletes the allocator: any makes the
    /// library keep the allocator and its memory instead of dropping it (module documentation).
    /// The default, for an allocator that cannot tell, is none.
    ///
    /// # IRQL
    ///
    /// PASSIVE_LEVEL.
    fn outstanding(&self) -> Outstanding {
        Outstanding::default()
    }

    /// Called on a retired allocator just before
    /// [`release_retired_allocators`] drops it: the frames
    /// still out are to be treated as given back (the default does nothing).
    ///
    /// # Safety
    ///
    /// No consumer uses a frame of this allocator any more.
    ///
    /// # IRQL
    ///
    /// PASSIVE_LEVEL.
    unsafe fn reclaim(&self) {}
}

/// The budget of a [`DefaultAllocator`]: a type whose constant is the [`PoolConfig`].
pub trait Budget: 'static {
    /// The budget.
    const CONFIG: PoolConfig;
}

/// [`PoolConfig::DEFAULT`] as a [`Budget`].
#[derive(Debug)]
pub struct DefaultBudget;

impl Budget for DefaultBudget {
    const CONFIG: PoolConfig = PoolConfig::DEFAULT;
}

/// The library's allocator: a [`FramePool`] over system memory of the request's `PoolType`
/// (paged for `PagedPool`, non-paged otherwise), within the budget `B`.
///
/// A driver sets its own budget with a [`Budget`] type:
///
/// ```
/// use ks_allocator::{Budget, DefaultAllocator, PoolConfig, dispatch_table};
///
/// /// 640x480 RGB24 at most, up to 8 frames.
/// struct CaptureBudget;
/// impl Budget for CaptureBudget {
///     const CONFIG: PoolConfig =
///         PoolConfig::DEFAULT.with_max_frames(8).with_max_bytes(8 * 640 * 480 * 3);
/// }
///
/// static CAPTURE_ALLOCATOR: &ks_sys::KSALLOCATOR_DISPATCH =
///     dispatch_table::<DefaultAllocator<CaptureBudget>>();
/// # assert!(CAPTURE_ALLOCATOR.Allocate.is_some());
/// ```
pub struct DefaultAllocator<B = DefaultBudget> {
    pool: FramePool<SystemMemory>,
    budget: PhantomData<fn() -> B>,
}

impl<B> DefaultAllocator<B> {
    /// The pool, for statistics.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn pool(&self) -> &FramePool<SystemMemory> {
        &self.pool
    }
}

impl<B: Budget> PinAllocator for DefaultAllocator<B> {
    const BUDGET: PoolConfig = B::CONFIG;

    fn initialize(request: &AllocatorRequest) -> Result<Self> {
        let pool = FramePool::new(request, SystemMemory::for_request(request))?;
        Ok(Self { pool, budget: PhantomData })
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

    fn outstanding(&self) -> Outstanding {
        let stats = self.pool.stats();
        let bytes = stats.frames_total as usize * self.pool.stride();
        Outstanding { frames: stats.frames_outstanding, bytes }
    }

    unsafe fn reclaim(&self) {
        // SAFETY: the caller's contract: no consumer uses a frame any more.
        unsafe { self.pool.reclaim_outstanding() };
    }
}

/// What KS holds as an allocator's context: the implementor first, so that the context pointer
/// is a pointer to it (what `Allocate` and `Free` recover, and what code that knows the
/// allocator's type may read, such as statistics), then its place under the ceilings and its
/// link in the list of retired allocators.
#[repr(C)]
struct Context<T> {
    value: T,
    lease: Lease,
    link: RetiredLink,
}

const _: () = assert!(core::mem::offset_of!(Context<DefaultAllocator>, value) == 0);

/// The context a filter passes through `KsCreateDefaultAllocatorEx` to
/// [`Trampolines::initialize_ex`].
struct ObjectContext {
    owner: *mut c_void,
    constraints: PinConstraints,
}

/// Checks the framing, creates `T`, boxes it and writes `*context` last. PASSIVE_LEVEL.
///
/// # Safety
///
/// `framing` is NULL or points at a readable `KSALLOCATOR_FRAMING`; `context` is NULL or
/// writable.
unsafe fn initialize<T: PinAllocator>(
    owner: *mut c_void,
    constraints: &PinConstraints,
    framing: PKSALLOCATOR_FRAMING,
    context: *mut PVOID,
) -> Result {
    if framing.is_null() || context.is_null() {
        return Err(Error::INVALID_PARAMETER);
    }
    // SAFETY: `framing` is non-NULL and readable (this function's contract); the copy means its
    // lifetime ends with the call, as KS expects.
    let framing = Framing::from_raw(&unsafe { framing.read_unaligned() });
    let refused = |error: crate::request::RequestError| {
        crate::system::debug_print(
            ks_sys::DPFLTR_ERROR_LEVEL,
            format_args!("allocator request for {owner:p} refused: {error}"),
        );
        Error::from(error)
    };
    let request = AllocatorRequest::new(&framing, constraints, &T::BUDGET).map_err(refused)?;
    let lease = Lease::take(owner.addr(), &T::BUDGET).map_err(refused)?;
    let value = T::initialize(&request.with_owner(owner as usize))?;
    let allocator = Context { value, lease, link: RetiredLink::new::<T>() };
    // On failure the context comes back and is dropped here, releasing what it holds.
    let context_box = PoolBox::new(allocator, crate::tags::CONTEXT_TAG)
        .map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
    // SAFETY: `context` is non-NULL and writable (this function's contract); written last.
    unsafe { context.write(PoolBox::into_raw(context_box).cast()) };
    Ok(())
}

/// The trampolines of [`dispatch_table`]: recover the context, call the trait, convert the
/// result. One instance per implementor.
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
    /// Only KS calls it, through `KSALLOCATOR_DISPATCH`: `pin` is the pin (or NULL), `framing`
    /// points at the allocator request's framing and `context` at where to store the context.
    unsafe extern "C" fn initialize_allocator(
        pin: *mut KSPIN,
        framing: PKSALLOCATOR_FRAMING,
        context: *mut PVOID,
    ) -> NTSTATUS {
        // SAFETY: `pin` is NULL or the live pin the allocator is created for, with its
        // descriptor (this function's contract).
        let constraints = unsafe { PinConstraints::from_pin(pin) };
        // SAFETY: forwarded from KS (this function's contract).
        from_result(unsafe { initialize::<T>(pin.cast(), &constraints, framing, context) })
    }

    /// `PFNKSINITIALIZEALLOCATOR` for `KsCreateDefaultAllocatorEx`. PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, from the `KsCreateDefaultAllocatorEx` of [`create_allocator_object`],
    /// with that function's `ObjectContext` as `owner` and pointers as above.
    unsafe extern "C" fn initialize_ex(
        owner: PVOID,
        framing: PKSALLOCATOR_FRAMING,
        context: *mut PVOID,
    ) -> NTSTATUS {
        // SAFETY: `owner` is the `ObjectContext` of `create_allocator_object`, live for the call.
        let Some(object) = (unsafe { owner.cast::<ObjectContext>().as_ref() }) else {
            return Error::INVALID_PARAMETER.to_status();
        };
        // SAFETY: forwarded from KS (this function's contract).
        from_result(unsafe { initialize::<T>(object.owner, &object.constraints, framing, context) })
    }

    /// `DeleteAllocator`: drops the implementor and frees the context, or retires it when
    /// frames are still out (module documentation). PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, once, with a context `InitializeAllocator` produced; no Allocate or
    /// Free follows.
    unsafe extern "C" fn delete_allocator(context: PVOID) {
        if let Some(context) = NonNull::new(context.cast::<Context<T>>()) {
            // SAFETY: the context is a `PoolBox<Context<T>>` from `initialize`, deleted once.
            let context = unsafe { PoolBox::from_raw(context) };
            let outstanding = context.value.outstanding();
            if outstanding.frames > 0 {
                retire::retire(context, outstanding);
            }
        }
    }

    /// `Allocate`. IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, with a live context.
    unsafe extern "C" fn allocate(context: PVOID) -> PVOID {
        let Some(context) = NonNull::new(context.cast::<T>()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: KS passes a context from `initialize` that is not yet deleted.
        let allocator = unsafe { PoolBox::borrow(context) };
        allocator.allocate().map_or(core::ptr::null_mut(), |frame| frame.as_ptr().cast())
    }

    /// `Free`. IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// Only KS calls it, with a live context.
    unsafe extern "C" fn free(context: PVOID, frame: PVOID) {
        let (Some(context), Some(frame)) =
            (NonNull::new(context.cast::<T>()), NonNull::new(frame.cast::<u8>()))
        else {
            return;
        };
        // SAFETY: KS passes a context from `initialize` that is not yet deleted.
        unsafe { PoolBox::borrow(context) }.free(frame);
    }
}

/// The `KSALLOCATOR_DISPATCH` of `T`, built at compile time.
#[must_use]
pub const fn dispatch_table<T: PinAllocator>() -> &'static KSALLOCATOR_DISPATCH {
    &Trampolines::<T>::TABLE
}

/// The library's frame-pool allocator within [`PoolConfig::DEFAULT`] as a
/// `KSALLOCATOR_DISPATCH`, for `KSPIN_DISPATCH.Allocator`.
pub const DEFAULT_DISPATCH: &KSALLOCATOR_DISPATCH = dispatch_table::<DefaultAllocator>();

/// Creates an allocator object for an allocator create IRP (`IRP_MJ_CREATE` of the allocator
/// object class on a pin), served by `T` through `KsCreateDefaultAllocatorEx`: the stream-class
/// or filter-specific path. The request is held against `constraints` (what the pin the IRP
/// addresses declares) and `T::BUDGET`; `owner` is recorded for diagnostics.
///
/// # Errors
///
/// The status of `KsCreateDefaultAllocatorEx`: its own validation of the request, or the
/// refusal or failure of `InitializeAllocator`.
///
/// # Safety
///
/// `irp` is the allocator create IRP being dispatched, as KS requires
/// (`KSCREATE_ITEM_IRP_STORAGE` set to the allocator create item).
///
/// # IRQL
///
/// PASSIVE_LEVEL.
pub unsafe fn create_allocator_object<T: PinAllocator>(
    irp: PIRP,
    owner: *mut c_void,
    constraints: PinConstraints,
) -> Result {
    let mut object = ObjectContext { owner, constraints };
    // SAFETY: the caller's contract; the callbacks are this module's trampolines for `T`, and
    // `object` outlives the call, during which KS calls `initialize_ex` with it.
    let status = unsafe {
        ks_sys::KsCreateDefaultAllocatorEx(
            irp,
            (&raw mut object).cast(),
            Some(Trampolines::<T>::allocate),
            Some(Trampolines::<T>::free),
            Some(Trampolines::<T>::initialize_ex),
            Some(Trampolines::<T>::delete_allocator),
        )
    };
    to_result(status)
}
