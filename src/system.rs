//! The kernel services the library calls directly: system pool allocation, debug output and
//! debugger breaks.
//!
//! C header: `wdm.h`. `ExAllocatePool2` exists from Windows 10 version 2004; a driver that
//! imported it would not load on older versions. As Microsoft documents for such drivers, the
//! routine is looked up with `MmGetSystemRoutineAddress` at PASSIVE_LEVEL, once per driver (the
//! answer cannot change while the system runs), and where it is missing `ExAllocatePoolWithTag`
//! is used instead and the memory zeroed, so both paths hand out the same thing.

use core::{
    fmt,
    ptr::NonNull,
    sync::atomic::{AtomicUsize, Ordering},
};

use ks_sys::{POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED, UNICODE_STRING};

/// Paged or non-paged system pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolKind {
    /// `POOL_FLAG_NON_PAGED` / `NonPagedPoolNx`: usable at DISPATCH_LEVEL.
    NonPaged,
    /// `POOL_FLAG_PAGED` / `PagedPool`: PASSIVE_LEVEL and APC_LEVEL only.
    Paged,
}

static EX_ALLOCATE_POOL2: [u16; 15] = ks_sys::ascii_wide(b"ExAllocatePool2");

/// `ALLOCATE_POOL2` before the lookup.
const UNRESOLVED: usize = 0;
/// `ALLOCATE_POOL2` when the kernel lacks the routine.
const ABSENT: usize = 1;

/// What the lookup of `ExAllocatePool2` found: [`UNRESOLVED`], [`ABSENT`], or the routine's
/// address. A driver-wide cache: one image, one kernel, one answer. (`core`'s atomic even under
/// loom: the lookup is not part of the concurrency model.)
static ALLOCATE_POOL2: AtomicUsize = AtomicUsize::new(UNRESOLVED);

type AllocatePool2 =
    unsafe extern "system" fn(ks_sys::POOL_FLAGS, ks_sys::SIZE_T, ks_sys::ULONG) -> ks_sys::PVOID;

/// `ExAllocatePool2`, if the kernel has it. The driver's first call looks it up, so it must run
/// at PASSIVE_LEVEL: every path that can make the first call (creating a pool or an allocator
/// context) does, by its own contract.
fn allocate_pool2() -> Option<AllocatePool2> {
    // ORDERING: Acquire pairs with the Release store below; the value is a plain address, so
    // seeing it is all that is needed.
    let address = match ALLOCATE_POOL2.load(Ordering::Acquire) {
        UNRESOLVED => {
            let address = look_up_allocate_pool2();
            // Two CPUs may race here; both store the same answer.
            // ORDERING: Release pairs with the Acquire load above.
            ALLOCATE_POOL2.store(if address == 0 { ABSENT } else { address }, Ordering::Release);
            address
        }
        ABSENT => 0,
        address => address,
    };
    if address == 0 {
        return None;
    }
    // SAFETY: a non-zero value other than ABSENT is only ever stored from the kernel's
    // `MmGetSystemRoutineAddress(L"ExAllocatePool2")`, whose prototype is `AllocatePool2`.
    Some(unsafe { core::mem::transmute::<usize, AllocatePool2>(address) })
}

/// `MmGetSystemRoutineAddress(L"ExAllocatePool2")` as an address, 0 if absent. PASSIVE_LEVEL.
fn look_up_allocate_pool2() -> usize {
    #[expect(clippy::cast_possible_truncation, reason = "30 bytes")]
    let length = (EX_ALLOCATE_POOL2.len() * 2) as u16;
    let mut name = UNICODE_STRING {
        Length: length,
        MaximumLength: length,
        Buffer: EX_ALLOCATE_POOL2.as_ptr().cast_mut(),
    };
    // SAFETY: `name` is a valid UNICODE_STRING over a static buffer of `Length` bytes; the
    // routine only reads it. The caller runs at PASSIVE_LEVEL (this function's contract).
    let address = unsafe { ks_sys::MmGetSystemRoutineAddress(&raw mut name) };
    address as usize
}

/// Whether the kernel has `ExAllocatePool2` (false: the `ExAllocatePoolWithTag` fallback of
/// Windows before 10 version 2004 is used). Looks the routine up if that has not happened yet.
///
/// # IRQL
///
/// PASSIVE_LEVEL for the first call of the driver; any IRQL after that.
#[must_use]
pub fn uses_allocate_pool2() -> bool {
    allocate_pool2().is_some()
}

/// `bytes` zeroed bytes of pool memory with `tag`, or `None`. IRQL <= DISPATCH_LEVEL for
/// non-paged pool, <= APC_LEVEL for paged pool (PASSIVE_LEVEL for the driver's first
/// allocation, which looks up `ExAllocatePool2`). Allocations of `PAGE_SIZE` bytes or more are
/// page aligned, smaller ones 16-byte aligned on 64-bit Windows.
pub(crate) fn allocate(kind: PoolKind, bytes: usize, tag: u32) -> Option<NonNull<u8>> {
    let memory = allocate_from_system(kind, bytes, tag)?;
    LIVE_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    Some(memory)
}

/// Pool allocations made through the library (by its pools, their bookkeeping, allocator
/// contexts and [`PoolBox`]es, whatever the tag) and not yet freed.
static LIVE_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// How many pool allocations the library has made and not yet freed: frame memory, pool
/// bookkeeping, allocator contexts and [`PoolBox`]es, whatever their tag. Zero once every pool,
/// allocator and box is gone, so a driver can check it in `DriverUnload` (the library's own
/// self-test does). Counted with a relaxed atomic on each system allocation and free, never per
/// frame handed out.
///
/// # IRQL
///
/// Any.
#[must_use]
pub fn live_allocations() -> usize {
    LIVE_ALLOCATIONS.load(Ordering::Relaxed)
}

fn allocate_from_system(kind: PoolKind, bytes: usize, tag: u32) -> Option<NonNull<u8>> {
    if let Some(allocate2) = allocate_pool2() {
        let flags = match kind {
            PoolKind::NonPaged => POOL_FLAG_NON_PAGED,
            PoolKind::Paged => POOL_FLAG_PAGED,
        };
        // SAFETY: `allocate2` is ExAllocatePool2 (see `allocate_pool2`); the arguments are plain
        // values.
        return NonNull::new(unsafe { allocate2(flags, bytes as ks_sys::SIZE_T, tag) }.cast());
    }
    let pool_type = match kind {
        PoolKind::NonPaged => ks_sys::NonPagedPoolNx,
        PoolKind::Paged => ks_sys::PagedPool,
    };
    // SAFETY: plain-value arguments; the caller's IRQL suits `kind`.
    let memory = NonNull::new(
        unsafe { ks_sys::ExAllocatePoolWithTag(pool_type, bytes as ks_sys::SIZE_T, tag) }
            .cast::<u8>(),
    )?;
    // SAFETY: `memory` is a fresh allocation of `bytes` bytes.
    unsafe { memory.as_ptr().write_bytes(0, bytes) };
    Some(memory)
}

/// Frees what [`allocate`] returned (the same routine serves both allocation paths).
///
/// # Safety
///
/// `memory` came from `allocate` with `tag` and is freed once; IRQL as for `allocate`.
pub(crate) unsafe fn free(memory: NonNull<u8>, tag: u32) {
    // SAFETY: the caller's contract.
    unsafe { ks_sys::ExFreePoolWithTag(memory.as_ptr().cast(), tag) };
    LIVE_ALLOCATIONS.fetch_sub(1, Ordering::Relaxed);
}

/// The system-wide index of the processor the caller runs on (`KeGetCurrentProcessorNumberEx`).
/// Any IRQL; below DISPATCH_LEVEL the thread may be on another processor by the time this
/// returns, so callers use it as a hint their correctness does not depend on.
#[cfg_attr(loom, expect(dead_code, reason = "loom models use their own processors"))]
#[inline]
pub(crate) fn current_processor() -> u32 {
    // SAFETY: NULL asks for the index only.
    unsafe { ks_sys::KeGetCurrentProcessorNumberEx(core::ptr::null_mut()) }
}

/// How many processors are active in all groups (`KeQueryActiveProcessorCountEx`), at least 1.
/// Any IRQL. Processors added later make it grow; callers that size something by it must
/// work with any processor index.
#[cfg_attr(loom, expect(dead_code, reason = "loom models use their own processors"))]
pub(crate) fn active_processors() -> u32 {
    #[expect(clippy::cast_possible_truncation, reason = "0xFFFF, a USHORT by definition")]
    let all = ks_sys::ALL_PROCESSOR_GROUPS as ks_sys::USHORT;
    // SAFETY: a plain-value argument.
    unsafe { ks_sys::KeQueryActiveProcessorCountEx(all) }.max(1)
}

/// A NUL-terminated message of at most `N - 1` bytes; longer text is cut.
struct Message<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> fmt::Write for Message<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            // Keep the last byte for the terminator.
            let Some(slot) = self.bytes.get_mut(self.len).filter(|_| self.len + 1 < N) else {
                break;
            };
            *slot = byte;
            self.len += 1;
        }
        Ok(())
    }
}

/// Sends `ks-allocator: <message>\n` to the kernel debugger. IRQL <= DIRQL.
pub(crate) fn debug_print(level: u32, message: fmt::Arguments<'_>) {
    debug_print_as("ks-allocator", level, message);
}

/// Sends `<source>: <message>\n` to the kernel debugger: `DbgPrintEx` with the streaming
/// component id (`DPFLTR_IHVSTREAMING_ID`) and `level` (`DPFLTR_ERROR_LEVEL`, …), formatted
/// without allocating; at most 255 bytes are sent, longer text is cut.
///
/// ```
/// # extern crate ks_host;
/// # let host = ks_host::Session::begin();
/// ks_allocator::debug_print_as("my-driver", ks_sys::DPFLTR_INFO_LEVEL, format_args!("{} frames", 30));
/// # assert_eq!(host.take_output()[0].text, "my-driver: 30 frames\n");
/// ```
///
/// # IRQL
///
/// <= DIRQL (the message is formatted into a stack buffer).
pub fn debug_print_as(source: &str, level: u32, message: fmt::Arguments<'_>) {
    let mut text = Message::<256> { bytes: [0; 256], len: 0 };
    let _ = fmt::write(&mut text, format_args!("{source}: {message}\n"));
    // SAFETY: "%s" consumes one pointer to a NUL-terminated string: `text.bytes` is zeroed past
    // `len` and `len <= 255`, so it is terminated; it lives until the call returns.
    unsafe {
        ks_sys::DbgPrintEx(
            ks_sys::DPFLTR_IHVSTREAMING_ID,
            level,
            c"%s".as_ptr(),
            text.bytes.as_ptr(),
        );
    }
}

/// In debug builds, stops in the kernel debugger if one is attached; nothing otherwise (a
/// breakpoint without a debugger is a bugcheck). Any IRQL. Callers print why first.
pub(crate) fn debug_break() {
    if !cfg!(debug_assertions) {
        return;
    }
    // SAFETY: no arguments; callable at any IRQL.
    if unsafe { ks_sys::KdRefreshDebuggerNotPresent() } == 0 {
        // SAFETY: a debugger is attached, so the breakpoint exception is handled by it.
        unsafe { ks_sys::DbgBreakPoint() };
    }
}

/// A `T` in non-paged system pool, owned: what KS stores as a `PVOID` context (the allocator
/// contexts of [`dispatch`](crate::dispatch), a driver's device or pin contexts).
///
/// ```
/// # extern crate ks_host;
/// # let _host = ks_host::Session::begin();
/// use ks_allocator::PoolBox;
///
/// struct PinContext {
///     frames_seen: u32,
/// }
///
/// const TAG: u32 = u32::from_le_bytes(*b"Smpl");
/// let context = PoolBox::new(PinContext { frames_seen: 0 }, TAG)
///     .unwrap_or_else(|_| panic!("no pool memory"));
/// assert_eq!(context.frames_seen, 0);
/// // Handed to KS as a `PVOID`, and taken back when KS gives it up (e.g. from an object bag's
/// // free callback), with the tag it was made with.
/// let raw = PoolBox::into_raw(context);
/// // SAFETY: `raw` came from `into_raw` with TAG and is taken back once.
/// drop(unsafe { PoolBox::from_raw_with_tag(core::ptr::NonNull::new(raw).unwrap(), TAG) });
/// ```
///
/// # Invariants
///
/// `block` points at a live, initialised `T` at the start of a non-paged pool block allocated
/// with `tag`, owned by this value.
pub struct PoolBox<T> {
    block: NonNull<T>,
    tag: u32,
}

// SAFETY: the box owns its `T` exclusively, like `Box<T>`.
unsafe impl<T: Send> Send for PoolBox<T> {}
// SAFETY: `&PoolBox<T>` only gives `&T`, like `Box<T>`.
unsafe impl<T: Sync> Sync for PoolBox<T> {}

impl<T> PoolBox<T> {
    /// Moves `value` into non-paged pool with `tag`, or gives it back when the pool has no
    /// memory.
    ///
    /// # Errors
    ///
    /// `value`, when the pool has no memory.
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL; PASSIVE_LEVEL for the driver's first pool allocation (which looks up
    /// `ExAllocatePool2`).
    pub fn new(value: T, tag: u32) -> Result<Self, T> {
        const {
            assert!(align_of::<T>() <= 16, "pool blocks are 16-byte aligned");
        }
        let Some(block) = allocate(PoolKind::NonPaged, size_of::<T>().max(1), tag) else {
            return Err(value);
        };
        let block = block.cast::<T>();
        // SAFETY: `block` is a fresh allocation of at least `size_of::<T>()` bytes, 16-byte
        // aligned (enough, asserted above).
        unsafe { block.write(value) };
        // INVARIANT: initialised just now, in a block with `tag`.
        Ok(Self { block, tag })
    }

    /// The raw pointer, ownership passed to the caller (what KS stores as a context). The tag
    /// must be given back to [`from_raw`](Self::from_raw).
    #[must_use]
    pub fn into_raw(this: Self) -> *mut T {
        let raw = this.block.as_ptr();
        core::mem::forget(this);
        raw
    }

    /// The tag the block was allocated with.
    #[must_use]
    pub fn tag(this: &Self) -> u32 {
        this.tag
    }

    /// Takes back ownership of what [`into_raw`](Self::into_raw) returned for a box made with
    /// `tag`.
    ///
    /// # Safety
    ///
    /// `raw` came from `into_raw` of a box made with `tag` and is taken back once.
    #[must_use]
    pub unsafe fn from_raw_with_tag(raw: NonNull<T>, tag: u32) -> Self {
        // INVARIANT: the caller's contract; `into_raw` kept the block alive and initialised.
        Self { block: raw, tag }
    }

    /// Takes back ownership of what [`into_raw`](Self::into_raw) returned for a box made with
    /// [`CONTEXT_TAG`](crate::tags::CONTEXT_TAG).
    ///
    /// # Safety
    ///
    /// As for [`from_raw_with_tag`](Self::from_raw_with_tag), with that tag.
    #[must_use]
    pub unsafe fn from_raw(raw: NonNull<T>) -> Self {
        // SAFETY: the caller's contract.
        unsafe { Self::from_raw_with_tag(raw, crate::tags::CONTEXT_TAG) }
    }

    /// The `T` behind a pointer from [`into_raw`](Self::into_raw), borrowed.
    ///
    /// # Safety
    ///
    /// `raw` came from `into_raw` and is not taken back while the borrow lives.
    #[must_use]
    pub unsafe fn borrow<'a>(raw: NonNull<T>) -> &'a T {
        // SAFETY: the caller's contract: a live, initialised `T`.
        unsafe { raw.as_ref() }
    }
}

impl<T> core::ops::Deref for PoolBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the type invariant: a live `T` owned by this box.
        unsafe { self.block.as_ref() }
    }
}

impl<T> Drop for PoolBox<T> {
    /// Drops the `T` and frees the block. IRQL as `T`'s drop needs, at most DISPATCH_LEVEL.
    fn drop(&mut self) {
        // SAFETY: the type invariant: a live `T`, dropped exactly once, here.
        unsafe { self.block.drop_in_place() };
        // SAFETY: the type invariant: the block came from the pool with `tag`; freed once.
        unsafe { free(self.block.cast(), self.tag) };
    }
}

/// A zeroed byte buffer in non-paged pool with a tag of the driver's: scratch memory a driver
/// reads or writes at DISPATCH_LEVEL (a line buffer, a picture its simulated device copies from).
///
/// ```
/// # extern crate ks_host;
/// # let _host = ks_host::Session::begin();
/// use ks_allocator::PoolBytes;
///
/// let mut scratch = PoolBytes::new(4096, u32::from_le_bytes(*b"Scr0")).expect("pool memory");
/// assert!(scratch.iter().all(|b| *b == 0));
/// scratch[..4].copy_from_slice(b"RIFF");
/// assert_eq!(&scratch[..4], b"RIFF");
/// ```
///
/// # Invariants
///
/// `block` points at `len` (at least 1) initialised bytes at the start of a non-paged pool block
/// allocated with `tag`, owned by this value.
pub struct PoolBytes {
    block: NonNull<u8>,
    len: usize,
    tag: u32,
}

// SAFETY: the buffer owns its bytes exclusively, like `Box<[u8]>`.
unsafe impl Send for PoolBytes {}
// SAFETY: `&PoolBytes` only gives `&[u8]`.
unsafe impl Sync for PoolBytes {}

impl PoolBytes {
    /// `len` zeroed bytes (at least 1) of non-paged pool with `tag`, or `None` when the pool has
    /// no memory. Buffers of `PAGE_SIZE` bytes or more are page aligned, smaller ones 16-byte
    /// aligned.
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL; PASSIVE_LEVEL for the driver's first pool allocation.
    #[must_use]
    pub fn new(len: usize, tag: u32) -> Option<Self> {
        let len = len.max(1);
        let block = allocate(PoolKind::NonPaged, len, tag)?;
        // SAFETY: a fresh allocation of `len` bytes; `allocate` zeroes it, written again so that
        // the invariant does not rest on the allocator's flags.
        unsafe { block.write_bytes(0, len) };
        // INVARIANT: `len` initialised bytes of a block with `tag`.
        Some(Self { block, len, tag })
    }
}

impl PoolBytes {
    /// The buffer's first byte, for code that shares the buffer between contexts in parts (a
    /// ring one side writes while the other reads): the pointer stays valid as long as the
    /// buffer, and accesses through it must not overlap a slice borrowed from the buffer.
    #[must_use]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.block.as_ptr()
    }
}

impl core::ops::Deref for PoolBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the type invariant: `len` initialised bytes owned by this value.
        unsafe { core::slice::from_raw_parts(self.block.as_ptr(), self.len) }
    }
}

impl core::ops::DerefMut for PoolBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed exclusively through `&mut self`.
        unsafe { core::slice::from_raw_parts_mut(self.block.as_ptr(), self.len) }
    }
}

impl Drop for PoolBytes {
    /// Frees the buffer. IRQL <= DISPATCH_LEVEL.
    fn drop(&mut self) {
        // SAFETY: the type invariant: the block came from the pool with `tag`; freed once.
        unsafe { free(self.block, self.tag) };
    }
}
