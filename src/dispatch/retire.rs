//! Allocators KS deleted while frames were still out: kept whole, memory and all, on a
//! lock-free list until the driver releases them ([`release_retired_allocators`]). The module
//! documentation of [`dispatch`](super) says why.

use core::{
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};

use super::{Context, Outstanding, PinAllocator};
use crate::system::PoolBox;

/// An allocator context's place in the retired list.
#[derive(Debug)]
pub(super) struct RetiredLink {
    /// The next retired allocator (written before the link is published, read after the list is
    /// taken).
    next: *mut RetiredLink,
    /// Reclaims and drops the context this link is part of (`release::<T>`).
    release: unsafe fn(NonNull<RetiredLink>),
    /// What was out when it was retired.
    outstanding: Outstanding,
}

impl RetiredLink {
    /// The link of a context of `T`, not on the list.
    pub(super) fn new<T: PinAllocator>() -> Self {
        Self { next: ptr::null_mut(), release: release::<T>, outstanding: Outstanding::default() }
    }
}

/// The retired list's head.
static RETIRED: AtomicPtr<RetiredLink> = AtomicPtr::new(ptr::null_mut());
/// Retired allocators, their frames out and the bytes they keep.
static ALLOCATORS: AtomicU32 = AtomicU32::new(0);
static FRAMES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

/// Allocators kept after KS deleted them with frames out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RetiredStats {
    /// Allocators kept.
    pub allocators: u32,
    /// Frames that were out when they were deleted.
    pub frames: u64,
    /// Bytes of frame memory they keep.
    pub bytes: usize,
}

/// The allocators the library's `KSALLOCATOR_DISPATCH` callbacks keep because KS deleted them
/// with frames still out (see [`dispatch`](crate::dispatch)), read without locks.
///
/// # IRQL
///
/// Any.
#[must_use]
pub fn retired_allocators() -> RetiredStats {
    RetiredStats {
        allocators: ALLOCATORS.load(Ordering::Acquire),
        frames: FRAMES.load(Ordering::Acquire),
        bytes: BYTES.load(Ordering::Acquire),
    }
}

/// Frees every retired allocator and its memory, treating its frames still out as given back,
/// and returns what was released. Call it when no consumer can hold one of those frames any
/// more: at unload, or once the device is removed and every pin closed. Until then the frames'
/// memory stays the consumers', however long they keep writing it.
///
/// # Safety
///
/// No consumer uses a frame of a retired allocator any more.
///
/// # IRQL
///
/// PASSIVE_LEVEL.
pub unsafe fn release_retired_allocators() -> RetiredStats {
    let released = retired_allocators();
    let mut next = RETIRED.swap(ptr::null_mut(), Ordering::AcqRel);
    while let Some(link) = NonNull::new(next) {
        // SAFETY: every link on the list belongs to a live retired context; the swap took the
        // whole list, so this thread alone walks it, and each link is released once.
        let RetiredLink { next: after, release, .. } = unsafe { link.read() };
        // SAFETY: as above; `release` is `release::<T>` for the context's own `T`.
        unsafe { release(link) };
        next = after;
    }
    released
}

/// Keeps `context` (whose allocator has frames out) on the retired list, off its pin's count,
/// and reports it. PASSIVE_LEVEL.
pub(super) fn retire<T: PinAllocator>(context: PoolBox<Context<T>>, outstanding: Outstanding) {
    let raw = PoolBox::into_raw(context);
    // SAFETY: `raw` is the live context `into_raw` just gave up; nothing else refers to it (KS
    // deleted the allocator), so this thread has it alone until it is published below.
    let context = unsafe { &mut *raw };
    context.lease.leave_pin();
    context.link.outstanding = outstanding;
    let owner = raw.cast::<u8>();
    ALLOCATORS.fetch_add(1, Ordering::AcqRel);
    FRAMES.fetch_add(u64::from(outstanding.frames), Ordering::AcqRel);
    BYTES.fetch_add(outstanding.bytes, Ordering::AcqRel);
    let link = NonNull::from(&mut context.link);
    let mut head = RETIRED.load(Ordering::Acquire);
    loop {
        // SAFETY: the link is ours until the exchange below publishes it.
        unsafe { (*link.as_ptr()).next = head };
        match RETIRED.compare_exchange_weak(
            head,
            link.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
    crate::system::debug_print(
        ks_sys::DPFLTR_ERROR_LEVEL,
        format_args!(
            "allocator {owner:p} deleted with {} frames outstanding: its {} bytes are kept \
             until release_retired_allocators(); {} allocators retired",
            outstanding.frames,
            outstanding.bytes,
            ALLOCATORS.load(Ordering::Relaxed),
        ),
    );
    crate::system::debug_break();
}

/// Reclaims the frames of the retired context `link` is part of, and drops it (its memory, and
/// its place under the driver's ceiling). PASSIVE_LEVEL.
///
/// # Safety
///
/// `link` is the `link` field of a retired, live `Context<T>` from a `PoolBox` with
/// `CONTEXT_TAG`, released once; no consumer uses its frames any more.
unsafe fn release<T: PinAllocator>(link: NonNull<RetiredLink>) {
    let offset = core::mem::offset_of!(Context<T>, link);
    let Some(context) =
        NonNull::new(link.as_ptr().cast::<u8>().wrapping_sub(offset).cast::<Context<T>>())
    else {
        return;
    };
    // SAFETY: the caller's contract: the context of `link`, boxed with CONTEXT_TAG.
    let context = unsafe { PoolBox::from_raw(context) };
    let outstanding = context.link.outstanding;
    // SAFETY: the caller's contract: no consumer uses the frames.
    unsafe { context.value.reclaim() };
    ALLOCATORS.fetch_sub(1, Ordering::AcqRel);
    FRAMES.fetch_sub(u64::from(outstanding.frames), Ordering::AcqRel);
    BYTES.fetch_sub(outstanding.bytes, Ordering::AcqRel);
    drop(context);
}
